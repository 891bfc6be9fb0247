"""Kubeconfig files pointing kubectl, kopf and the Kubernetes client at a sandbox.

The sandbox speaks plain HTTP on loopback and accepts any bearer token; the token chosen
here identifies the user in the sandbox's audit log, so tests can tell the controller's
requests from their own.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml


def token_for(user: str) -> str:
    """The bearer token the sandbox maps to ``user``."""
    return f"sandbox-token-{user}"


def render_kubeconfig(
    url: str, *, user: str = "admin", namespace: str = "default", context: str = "sandbox"
) -> str:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": url}}],
        "users": [{"name": user, "user": {"token": token_for(user)}}],
        "contexts": [
            {"name": context, "context": {"cluster": context, "user": user, "namespace": namespace}}
        ],
        "current-context": context,
        "preferences": {},
    }
    return yaml.safe_dump(config, sort_keys=False)


def write_kubeconfig(
    path: str | os.PathLike[str], url: str, *, user: str = "admin", namespace: str = "default"
) -> Path:
    """Write a kubeconfig for ``url`` (parent directories created, mode 0600)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_kubeconfig(url, user=user, namespace=namespace), encoding="utf-8")
    target.chmod(0o600)
    return target
