"""Notifications that are never lost, end to end (issue 15): the operator as a process.

Under kill -9, 8 of 32 runs once lost a message: it waited behind Slack's pacing in the
controller's memory when the process died. Now an alert is recorded in the Canary's
status (``status.pendingAlerts``) by the write that records its transition and leaves it
once delivered, so:

* a controller killed while Slack stalls (one message in flight, the next waiting behind
  it) delivers both after its restart, and the receiver accepts each message exactly once;
* one 500 from the API server while the AlertProvider is read is tried again: the message
  arrives (the API server is reached through a proxy that fails that one request).

A receiver "accepts" a message when it answers 2xx to a client still waiting for the
answer (`RecordingServer.accepted`): a post whose sender died or gave up before the answer
is what a sender can never know the fate of, and the receiver's log counts it apart.
No test sleeps for synchronisation: each waits for a condition with a generous limit.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.e2e.fault_proxy import Fault, FaultProxy, kubeconfig_through
from tests.e2e.support import eventually
from tests.e2e.test_notifications_and_gates import (
    CLUSTER,
    NS,
    SECRET_SEGMENT,
    SLACK_PATH,
    Env,
    Operator,
    SlackMessage,
    address_secret,
    assert_all_well_formed,
    canary,
    deployment,
    env,
    receiver,
    slack_provider,
)
from tests.http_fixtures import RecordingServer, Reply

pytestmark = pytest.mark.slow

__all__ = ["env", "receiver"]  # fixtures, used by name

ALERT_PROVIDER = f"/apis/canary.gitops.dev/v1beta1/namespaces/{NS}/alertproviders/on-call"


def accepted(receiver: RecordingServer) -> list[str]:
    """The kinds of the messages the receiver accepted, in order."""
    return [SlackMessage.of(r).kind for r in receiver.accepted_to(SLACK_PATH)]


def install(env: Env, receiver: RecordingServer, **spec: Any) -> None:
    """A Deployment, and its Canary alerting to a Slack-shaped receiver via an AlertProvider."""
    env.cluster.apply_manifest(address_secret("on-call-webhook", receiver.url(SLACK_PATH)))
    env.cluster.apply_manifest(slack_provider("on-call", "on-call-webhook", **spec))
    env.cluster.apply_manifest(deployment("podinfo", "podinfo:6.0.0"))
    alerts = [{"name": "on-call", "providerRef": {"name": "on-call"}}]
    env.cluster.apply_manifest(canary(alerts=alerts))


async def pending_kinds(env: Env) -> list[str]:
    return [str(p.get("kind")) for p in (await env.status()).get("pendingAlerts") or []]


class TestKilledWhileSlackStalls:
    async def test_each_message_is_accepted_exactly_once_after_the_restart(
        self, env: Env, receiver: RecordingServer
    ) -> None:
        # One post of Started hangs for the whole run (instead of timing out every 5 s and
        # being tried again), well inside the delivery budget (120 s x --time-scale 0.2).
        install(env, receiver, timeout="30s")
        first = await env.start_operator()
        await env.wait_phase("Initialized", timeout=180)
        await receiver.wait_accepted(1, path=SLACK_PATH, within=30)

        receiver.default(SLACK_PATH, Reply(200, hold=asyncio.Event()))  # Slack stalls
        await env.set_image("podinfo", "podinfo:6.0.1")

        async def both_waiting() -> bool:
            # The rollout went on: Started is in flight, Promoted waits behind it.
            return await pending_kinds(env) == ["Started", "Promoted"] and receiver.in_flight > 0

        await eventually(both_waiting, timeout=180, what="Started in flight and Promoted behind it")
        assert await env.phase() == "Succeeded"
        first.kill()  # SIGKILL: what was in the controller's memory is gone
        receiver.default(SLACK_PATH, Reply(200))  # Slack answers again

        second = await env.start_operator()

        async def delivered() -> bool:
            return accepted(receiver) == ["Initialized", "Started", "Promoted"] and not (
                await pending_kinds(env)
            )

        await eventually(delivered, timeout=180, what="both messages, and the status emptied")
        after = await second.passes()
        await eventually(
            lambda: _at_least(second, after + 3), timeout=180, what="three more passes"
        )
        assert accepted(receiver) == ["Initialized", "Started", "Promoted"]
        assert await second.counter("canary_engine_notifications_total", outcome="sent") == 2
        assert not [m for m in await env.event_messages() if m.startswith("Notification")]
        assert_all_well_formed(receiver)
        promoted = SlackMessage.of(receiver.accepted_to(SLACK_PATH)[-1])
        assert promoted.facts["Image"] == "podinfo:6.0.1"
        assert promoted.context == f"{NS}/podinfo · {CLUSTER} · Promoted"
        assert SECRET_SEGMENT not in env.logs()


class TestApiServerErrors:
    async def test_a_500_while_reading_the_alert_provider_still_delivers_the_message(
        self, env: Env, receiver: RecordingServer
    ) -> None:
        install(env, receiver)
        proxy = await FaultProxy(
            env.cluster.url, faults=[Fault("GET", ALERT_PROVIDER, status=500)]
        ).start()
        try:
            kubeconfig = kubeconfig_through(
                env.cluster.write_kubeconfig(env.tmp_path / "kubeconfig-direct", user="controller"),
                proxy.url,
                env.tmp_path / "kubeconfig-proxied",
            )
            op = Operator(
                kubeconfig, env.tmp_path / "operator-proxied.log", "--cluster-name", CLUSTER
            )
            env.operators.append(op.start())
            assert await op.healthy(within=30), op.output()[-3000:]
            await env.wait_phase("Initialized", timeout=180)
            await receiver.wait_accepted(1, path=SLACK_PATH, within=30)
            assert proxy.faulted() == [("GET", ALERT_PROVIDER, 500)]
        finally:
            await proxy.close()
        assert accepted(receiver) == ["Initialized"]
        assert not [m for m in await env.event_messages() if m.startswith("Notification")]
        assert "AlertProvider default/on-call could not be read" in op.output(), op.output()
        assert "Traceback" not in op.output()


async def _at_least(op: Operator, count: float) -> bool:
    return await op.passes() >= count
