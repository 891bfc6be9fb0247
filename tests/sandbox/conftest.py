"""Fixtures for the sandbox's own tests: the shared sandbox fixtures plus a small CRD."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from tests.sandbox_fixtures import *  # noqa: F403

T = TypeVar("T")

GROUP = "example.gitops.dev"

WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"widgets.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {
            "plural": "widgets",
            "singular": "widget",
            "kind": "Widget",
            "shortNames": ["wd"],
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {
                    "status": {},
                    "scale": {
                        "specReplicasPath": ".spec.size",
                        "statusReplicasPath": ".status.size",
                    },
                },
                "additionalPrinterColumns": [
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                    {
                        "name": "Ready",
                        "type": "string",
                        "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
                    },
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["size"],
                                "properties": {
                                    "size": {"type": "integer", "minimum": 1, "maximum": 100},
                                    "color": {
                                        "type": "string",
                                        "enum": ["red", "blue"],
                                        "default": "red",
                                    },
                                    "name": {
                                        "type": "string",
                                        "pattern": "^[a-z]+$",
                                        "maxLength": 10,
                                    },
                                    "port": {"x-kubernetes-int-or-string": True},
                                    "note": {"type": "string", "nullable": True},
                                    "labels": {
                                        "type": "object",
                                        "additionalProperties": {"type": "string"},
                                    },
                                    "items": {
                                        "type": "array",
                                        "maxItems": 3,
                                        "x-kubernetes-list-type": "map",
                                        "x-kubernetes-list-map-keys": ["key"],
                                        "items": {
                                            "type": "object",
                                            "required": ["key"],
                                            "properties": {
                                                "key": {"type": "string"},
                                                "value": {"type": "integer", "default": 1},
                                            },
                                        },
                                    },
                                    "free": {
                                        "type": "object",
                                        "x-kubernetes-preserve-unknown-fields": True,
                                    },
                                    "template": {
                                        "type": "object",
                                        "x-kubernetes-embedded-resource": True,
                                        "properties": {
                                            "spec": {
                                                "type": "object",
                                                "x-kubernetes-preserve-unknown-fields": True,
                                            }
                                        },
                                    },
                                    "choice": {
                                        "type": "object",
                                        "properties": {
                                            "a": {"type": "string"},
                                            "b": {"type": "string"},
                                        },
                                        "oneOf": [{"required": ["a"]}, {"required": ["b"]}],
                                    },
                                },
                            },
                            "status": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            },
                        },
                    }
                },
            }
        ],
    },
}


def widget(name: str, /, namespace: str = "default", **spec: Any) -> dict[str, Any]:
    spec.setdefault("size", 1)
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def deployment(
    name: str,
    *,
    replicas: int = 1,
    image: str = "nginx:1.25",
    namespace: str = "default",
    annotations: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    template_meta: dict[str, Any] = {"labels": {"app": name}}
    if annotations:
        template_meta["annotations"] = annotations
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": template_meta,
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
            **spec,
        },
    }
    return body


async def eventually(
    probe: Callable[[], T | Awaitable[T]], *, within: float = 10.0, interval: float = 0.02
) -> T:
    """Poll until ``probe`` returns something truthy; fail with a clear message at the deadline."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        result = probe()
        if asyncio.iscoroutine(result) or isinstance(result, Awaitable):
            result = await result  # type: ignore[misc]
        last = result
        if result:
            return result  # type: ignore[return-value]
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {within} s (last value: {last!r})")


def wait_until(probe: Callable[[], T], *, within: float = 10.0, interval: float = 0.02) -> T:
    """Synchronous :func:`eventually` for tests that use ``sandbox_thread``."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last  # type: ignore[no-any-return]
        time.sleep(interval)
    raise AssertionError(f"condition not met within {within} s (last value: {last!r})")


@pytest.fixture
async def api(sandbox_factory: Callable[..., Awaitable[Any]]) -> Any:
    """A sandbox without workload simulation, with the Widget CRD installed."""
    sb = await sandbox_factory(simulate_workloads=False)
    await sb.apply_manifest(WIDGET_CRD)
    return sb


@pytest.fixture
async def client(api: Any) -> Any:
    """A ``kubernetes.aio`` ApiClient for the ``api`` sandbox (closed at teardown)."""
    from kubernetes.aio import client as k8s

    configuration = k8s.Configuration(host=api.url)
    configuration.api_key = {"BearerToken": api.token_for("tester")}
    configuration.api_key_prefix = {"BearerToken": "Bearer"}
    api_client: Any = k8s.ApiClient(configuration)
    try:
        yield api_client
    finally:
        await api_client.close()
