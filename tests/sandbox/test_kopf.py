"""kopf runs unmodified against the sandbox: discovery, watch, status patches, finalizers, events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kopf.testing import KopfRunner

from kubesandbox import SandboxThread

from .conftest import WIDGET_CRD, wait_until, widget

pytestmark = pytest.mark.slow

OPERATOR = Path(__file__).parent / "operators" / "widget_operator.py"
FINALIZER = "example.gitops.dev/test-operator"


def status_of(sb: SandboxThread, name: str) -> dict[str, Any]:
    obj = sb.call(sb.store.get, "widgets", name, "default")
    return (obj or {}).get("status") or {}


def test_operator_patches_status_and_honours_its_finalizer(
    sandbox_thread: SandboxThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    sb = sandbox_thread
    sb.apply_manifest(WIDGET_CRD)
    monkeypatch.setenv("KUBECONFIG", str(sb.kubeconfig_path))
    with KopfRunner(
        ["run", "--standalone", "--namespace", "default", str(OPERATOR)], timeout=60
    ) as runner:
        sb.call(sb.store.create, "widgets", "default", widget("w", size=3), manager="test")
        wait_until(lambda: status_of(sb, "w").get("phase") == "Ready", within=20)
        live = sb.call(sb.store.fetch, "widgets", "w", "default")
        assert live["status"]["observedSize"] == 3
        assert live["status"]["created"] == {
            "handled": True
        }  # kopf's handler result kept (preserved status)
        assert FINALIZER in live["metadata"]["finalizers"]

        sb.call(
            lambda: sb.store.update_with(
                "widgets", "default", "w", lambda o: o["spec"].__setitem__("size", 5)
            )
        )
        wait_until(lambda: status_of(sb, "w").get("observedSize") == 5, within=20)

        result = sb.call(sb.store.delete, "widgets", "default", "w")
        assert not result.removed  # kopf's finalizer holds it
        wait_until(lambda: sb.call(sb.store.get, "widgets", "w", "default") is None, within=20)

        events = wait_until(lambda: sb.call(sb.store.list, "events", "default"), within=10)
        reasons = {e["reason"] for e in events}
        assert {"Seen", "Goodbye"} <= reasons
        assert all(
            e["metadata"]["name"].startswith("kopf-event-")
            for e in events
            if e["reason"] in ("Seen", "Goodbye")
        )
    assert runner.exit_code == 0, runner.output
    assert runner.exception is None
    kopf_requests = [e for e in sb.audit if e.user_agent.startswith("kopf")]
    assert {"list", "watch", "patch", "create"} <= {e.verb for e in kopf_requests}
