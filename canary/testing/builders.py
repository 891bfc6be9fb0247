"""Manifests for tests: a Deployment to target, a Canary for it, and a new release.

Plain dicts, as a user would write them, so a test reads like the YAML it stands for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canary.model import API_VERSION
from canary.ports import Obj
from canary.testing.kube import FakeKube

__all__ = ["DEFAULT_ANALYSIS", "canary_manifest", "deployment", "set_image"]

DEFAULT_ANALYSIS: Mapping[str, Any] = {
    "interval": "1m",
    "threshold": 2,
    "stepWeight": 10,
    "maxWeight": 30,
    "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"}],
}


def deployment(
    name: str = "podinfo",
    namespace: str = "test",
    *,
    image: str = "ghcr.io/stefanprodan/podinfo:6.0.0",
    replicas: int = 2,
) -> Obj:
    """A Deployment selecting its pods by ``app: <name>`` (the label the controller uses)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {"name": "app", "image": image, "ports": [{"containerPort": 9898}]}
                    ]
                },
            },
        },
    }


def canary_manifest(
    name: str = "podinfo",
    namespace: str = "test",
    *,
    target: str | None = None,
    provider: str = "istio",
    analysis: Mapping[str, Any] | None = None,
    **spec: Any,
) -> Obj:
    """A Canary for the Deployment ``target`` (default: ``name``).

    ``analysis`` defaults to `DEFAULT_ANALYSIS` (10% steps to 30%, threshold 2, one
    metric); extra keyword arguments are spec fields as written (``revertOnDeletion=True``).
    """
    body: dict[str, Any] = {
        "provider": provider,
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target or name},
        "service": {"port": 9898},
        "analysis": dict(analysis if analysis is not None else DEFAULT_ANALYSIS),
    }
    body.update(spec)
    return {
        "apiVersion": API_VERSION,
        "kind": "Canary",
        "metadata": {"name": name, "namespace": namespace},
        "spec": body,
    }


def set_image(kube: FakeKube, name: str, namespace: str, image: str) -> None:
    """A new release of the Deployment ``namespace/name`` (``kubectl set image``)."""

    def change(obj: Obj) -> None:
        obj["spec"]["template"]["spec"]["containers"][0]["image"] = image

    kube.edit("apps/v1", "Deployment", name, namespace, change)
