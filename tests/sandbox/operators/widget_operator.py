"""A tiny kopf operator used by the sandbox tests: status on create, a finalizer on delete."""

from __future__ import annotations

from typing import Any

import kopf

GROUP = "example.gitops.dev"


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    # kubernetes.config reads $KUBECONFIG when it is first imported; the test sets it later,
    # so read the kubeconfig with kopf's own loader, which looks at the variable now.
    return kopf.login_with_kubeconfig(**kwargs)


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.watching.server_timeout = 30
    settings.persistence.finalizer = f"{GROUP}/test-operator"


@kopf.on.create(GROUP, "v1", "widgets")
async def created(body: Any, spec: Any, patch: Any, **_: Any) -> dict[str, Any]:
    patch.status["phase"] = "Ready"
    patch.status["observedSize"] = spec["size"]
    kopf.info(body, reason="Seen", message=f"widget of size {spec['size']}")
    return {"handled": True}


@kopf.on.update(GROUP, "v1", "widgets", field="spec.size")
async def resized(new: Any, patch: Any, **_: Any) -> None:
    patch.status["observedSize"] = new


@kopf.on.delete(GROUP, "v1", "widgets")
async def deleted(body: Any, **_: Any) -> None:
    kopf.info(body, reason="Goodbye", message="finalizing")
