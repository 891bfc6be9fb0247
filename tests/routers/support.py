"""Canaries, targets and cluster objects for the router tests, stated briefly."""

from __future__ import annotations

import copy
import math
from typing import Any

from canary.model import Canary, parse_canary

NS = "test"


def make_canary(
    provider: str,
    *,
    service: dict[str, Any] | None = None,
    analysis: dict[str, Any] | None = None,
    name: str = "podinfo",
    uid: str = "canary-uid-1",
    validate: bool = True,
    **spec_extra: Any,
) -> Canary:
    """A parsed Canary; ``validate=False`` skips the provider checks (to hand routers bad input)."""
    spec: dict[str, Any] = {
        "provider": provider,
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
        "service": {"port": 9898, **(service or {})},
        "analysis": analysis or {"interval": "1m", "threshold": 5, "stepWeight": 10},
        **spec_extra,
    }
    return parse_canary(
        {
            "apiVersion": "canary.gitops.dev/v1beta1",
            "kind": "Canary",
            "metadata": {"name": name, "namespace": NS, "uid": uid},
            "spec": spec,
        },
        check_provider=validate,
    )


def target(
    *,
    labels: dict[str, str] | None = None,
    containers: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    labels = labels if labels is not None else {"app": "podinfo"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "podinfo", "namespace": NS},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": containers
                    if containers is not None
                    else [
                        {
                            "name": "podinfo",
                            "image": "podinfo:6",
                            "ports": [{"name": "http", "containerPort": 9898}],
                        }
                    ]
                },
            },
        },
    }


def ingress(
    name: str = "podinfo", *, annotations: dict[str, str] | None = None, backend: str = "podinfo"
) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": name,
            "namespace": NS,
            "labels": {"app": "podinfo"},
            "annotations": annotations
            if annotations is not None
            else {"kubernetes.io/ingress.class": "nginx"},
        },
        "spec": {
            "ingressClassName": "nginx",
            "rules": [
                {
                    "host": "app.example.com",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": backend, "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ],
        },
    }


def pod(name: str, labels: dict[str, str], *, ready: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def strip_server_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """The object without what the API server adds (resourceVersion, uid, ...)."""
    out = copy.deepcopy(obj)
    meta = out.get("metadata", {})
    for key in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"):
        meta.pop(key, None)
    out.pop("status", None)
    return out


def binomial_tolerance(n: int, p: float, sigmas: float = 4.0) -> float:
    """Allowed |measured share - p| for n Bernoulli(p) draws: ``sigmas`` standard deviations."""
    return sigmas * math.sqrt(p * (1 - p) / n) if 0 < p < 1 else 0.0
