"""Reading a Secret's values: the one place that decodes ``data`` and ``stringData``.

Every consumer (Git credentials, notifier addresses and tokens, metric-provider
credentials, forge tokens) reads Secrets through :func:`read_secret`, so decoding and its
failure modes are handled once: ``data`` values are base64 (a value that is not base64 text
is skipped with a warning that names the key, never the value), and ``stringData`` values,
which a real API server folds into ``data`` on write, are taken as written for clients that
hand a manifest over without a server round trip.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping
from typing import Any

from canary.ports import Kube

__all__ = ["read_secret", "secret_values"]

log = logging.getLogger("canary.adapters.secrets")


def secret_values(secret: Mapping[str, Any], where: str = "Secret") -> dict[str, str]:
    """The values of a Secret object as text."""
    out: dict[str, str] = {}
    data = secret.get("data")
    for key, value in (data if isinstance(data, Mapping) else {}).items():
        try:
            out[str(key)] = base64.b64decode(str(value), validate=True).decode()
        except (binascii.Error, ValueError, UnicodeDecodeError):
            log.warning("%s key %s is not base64-encoded text; ignored", where, key)
    string_data = secret.get("stringData")
    for key, value in (string_data if isinstance(string_data, Mapping) else {}).items():
        out[str(key)] = str(value)
    return out


async def read_secret(kube: Kube, name: str, namespace: str) -> dict[str, str] | None:
    """The Secret's values as text, or None when it does not exist."""
    secret = await kube.get("v1", "Secret", name, namespace)
    if secret is None:
        return None
    return secret_values(secret, f"Secret {namespace}/{name}")
