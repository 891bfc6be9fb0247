"""A router whose kinds the API server does not serve: the pass creates nothing, says so once
(a ``RouterReady=False`` condition and a Warning Event), looks again at a growing delay, and
goes on by itself once the kinds are served (issue 15). Over fakes; the same end to end is in
tests/e2e/test_operator_errors.py."""

from __future__ import annotations

from canary.controller.reconcile import ROUTER_API_RETRY_SECONDS
from canary.model import Phase
from canary.ports import RequiredApi
from canary.testing import canary_manifest, controller, deployment

NS = "test"
NAME = "podinfo"
VS = RequiredApi("networking.istio.io/v1beta1", "VirtualService", "install Istio")


class Discovery:
    """Serves everything but the kinds in ``missing``; counts the questions."""

    def __init__(self, *missing: tuple[str, str]) -> None:
        self.missing = set(missing)
        self.asked = 0

    async def served(self, api_version: str, kind: str) -> bool:
        self.asked += 1
        return (api_version, kind) not in self.missing


async def test_nothing_is_created_until_the_routers_kinds_are_served() -> None:
    ctl, fakes = controller(deployment(), canary_manifest(provider="istio"))
    fakes.router("istio").requires = (VS,)
    discovery = Discovery((VS.api_version, VS.kind))
    ctl.discovery = discovery

    delays = [await ctl.run_pass(NS, NAME) for _ in range(3)]

    assert delays == list(ROUTER_API_RETRY_SECONDS[:3])
    assert fakes.workloads.methods() == ["find_conflicting_canaries"] * 3  # reads only
    assert fakes.services.called() == []
    assert fakes.router("istio").called() == []
    assert fakes.kube.peek("apps/v1", "Deployment", "podinfo-primary", NS) is None
    message = (
        "provider istio needs networking.istio.io/v1beta1 VirtualService, which the API server "
        "does not serve: install Istio. Nothing is created for this canary until then"
    )
    assert fakes.events.warnings(f"{NS}/{NAME}") == [message]  # once, not per check
    condition = fakes.status(NAME, NS).condition("RouterReady")
    assert condition is not None
    assert (condition.status, condition.reason, condition.message) == (
        "False",
        "APINotServed",
        message,
    )

    discovery.missing.clear()  # Istio installed
    await ctl.run_pass(NS, NAME)
    await ctl.run_pass(NS, NAME)
    status = fakes.status(NAME, NS)
    assert status.phase is Phase.INITIALIZED
    assert status.condition("RouterReady") is None
    assert fakes.kube.peek("apps/v1", "Deployment", "podinfo-primary", NS) is not None


async def test_without_discovery_or_requirements_no_question_is_asked() -> None:
    ctl, fakes = controller(deployment(), canary_manifest(provider="kubernetes"))
    discovery = Discovery()
    ctl.discovery = discovery
    await ctl.run_pass(NS, NAME)
    await ctl.run_pass(NS, NAME)
    assert discovery.asked == 0  # the kubernetes provider needs nothing but Services
    assert fakes.status(NAME, NS).phase is Phase.INITIALIZED
