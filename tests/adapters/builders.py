"""Small builders of Kubernetes objects and Canaries for the adapter tests.

Real API objects are large; tests state only what matters to them and these
functions fill in a valid rest, so each test reads as the rule it checks.
"""

from __future__ import annotations

import copy
from typing import Any

from canary.model.canary import Canary, parse_canary


def canary(
    name: str = "podinfo",
    namespace: str = "test",
    *,
    target: str = "podinfo",
    kind: str = "Deployment",
    uid: str = "canary-uid-1",
    progress_deadline: int | None = None,
    analysis: dict[str, Any] | None = None,
    autoscaler: dict[str, Any] | None = None,
) -> Canary:
    spec: dict[str, Any] = {
        "targetRef": {"apiVersion": "apps/v1", "kind": kind, "name": target},
        "service": {"port": 9898},
        "analysis": analysis or {"interval": "10s", "threshold": 2, "iterations": 3},
    }
    if progress_deadline is not None:
        spec["progressDeadlineSeconds"] = progress_deadline
    if autoscaler is not None:
        spec["autoscalerRef"] = autoscaler
    return parse_canary(
        {
            "apiVersion": "canary.gitops.dev/v1beta1",
            "kind": "Canary",
            "metadata": {"name": name, "namespace": namespace, "uid": uid},
            "spec": spec,
        }
    )


def pod_template(
    image: str = "ghcr.io/stefanprodan/podinfo:6.0.0",
    *,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    spec: dict[str, Any] | None = None,
) -> dict[str, Any]:
    pod_spec: dict[str, Any] = {"containers": [{"name": "podinfo", "image": image}]}
    pod_spec.update(copy.deepcopy(spec or {}))
    meta: dict[str, Any] = {"labels": labels if labels is not None else {"app": "podinfo"}}
    if annotations:
        meta["annotations"] = annotations
    return {"metadata": meta, "spec": pod_spec}


def deployment(
    name: str = "podinfo",
    namespace: str = "test",
    *,
    replicas: int | None = 2,
    selector: dict[str, str] | None = None,
    template: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    status: dict[str, Any] | None = None,
    generation: int = 1,
    extra_spec: dict[str, Any] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": selector if selector is not None else {"app": name}},
        "template": template if template is not None else pod_template(labels={"app": name}),
    }
    if replicas is not None:
        spec["replicas"] = replicas
    spec.update(copy.deepcopy(extra_spec or {}))
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "generation": generation}
    if labels is not None:
        meta["labels"] = labels
    if annotations is not None:
        meta["annotations"] = annotations
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": spec,
    }
    if status is not None:
        obj["status"] = status
    return obj


def daemonset(
    name: str = "agent",
    namespace: str = "test",
    *,
    template: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
    generation: int = 1,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": namespace, "generation": generation},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": template if template is not None else pod_template(labels={"app": name}),
        },
    }
    if status is not None:
        obj["status"] = status
    return obj
