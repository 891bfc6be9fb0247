"""Secrets: stringData is write-only and merged into data, as a real API server does."""

from __future__ import annotations

import base64

from kubesandbox import Sandbox


async def test_string_data_is_merged_into_data(sandbox: Sandbox) -> None:
    await sandbox.apply_manifest(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "webhook", "namespace": "default"},
            "data": {"token": base64.b64encode(b"abc").decode()},
            "stringData": {"address": "http://127.0.0.1:9/hook", "token": "xyz"},
        }
    )
    stored = sandbox.store.get("secrets", "webhook", "default")
    assert stored is not None
    assert "stringData" not in stored
    decoded = {k: base64.b64decode(v).decode() for k, v in stored["data"].items()}
    assert decoded == {"address": "http://127.0.0.1:9/hook", "token": "xyz"}  # stringData wins
