"""The workload simulator: Deployments, ReplicaSets, Pods and DaemonSets behave like a small cluster."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from kubesandbox import Sandbox
from kubesandbox.apiserver import StoreEvent
from kubesandbox.workloads import (
    BEHAVIOUR,
    READY_AFTER,
    parse_duration,
    resolve_int_or_percent,
    template_hash,
)

from .conftest import deployment, eventually

DOC_NETS = [ipaddress.ip_network("198.51.100.0/24"), ipaddress.ip_network("203.0.113.0/24")]


@pytest.fixture
async def sim(sandbox_factory: Callable[..., Awaitable[Sandbox]]) -> Sandbox:
    return await sandbox_factory(speed=10.0)


def status(sb: Sandbox, name: str, kind: str = "deployments") -> dict[str, Any]:
    obj = sb.store.get(kind, name, "default") or {}
    return obj.get("status") or {}


def condition(sb: Sandbox, name: str, ctype: str) -> dict[str, Any]:
    return next((c for c in status(sb, name).get("conditions", []) if c["type"] == ctype), {})


def rolled_out(sb: Sandbox, name: str, replicas: int) -> bool:
    st = status(sb, name)
    obj = sb.store.get("deployments", name, "default") or {}
    return (
        st.get("observedGeneration") == obj.get("metadata", {}).get("generation")
        and st.get("updatedReplicas", 0) == replicas
        and st.get("replicas", 0) == replicas
        and st.get("availableReplicas", 0) == replicas
        and condition(sb, name, "Progressing").get("reason") == "NewReplicaSetAvailable"
    )


def pods(sb: Sandbox, selector: str = "app=web") -> list[dict[str, Any]]:
    return sb.store.list("pods", "default", label_selector=selector)


class TestHelpers:
    def test_durations(self) -> None:
        assert (
            parse_duration("5s") == 5
            and parse_duration("1m30s") == 90
            and parse_duration("250ms") == 0.25
        )
        assert (
            parse_duration("2") == 2
            and parse_duration("soon") is None
            and parse_duration("5x") is None
        )

    def test_int_or_percent(self) -> None:
        assert resolve_int_or_percent("25%", 3, round_up=True) == 1
        assert resolve_int_or_percent("25%", 3, round_up=False) == 0
        assert resolve_int_or_percent(2, 10, round_up=False) == 2

    def test_template_hash_is_stable_and_sensitive(self) -> None:
        a = {"spec": {"containers": [{"name": "a", "image": "x:1"}]}}
        assert template_hash(a) == template_hash(
            {"spec": {"containers": [{"image": "x:1", "name": "a"}]}}
        )
        assert template_hash(a) != template_hash(
            {"spec": {"containers": [{"name": "a", "image": "x:2"}]}}
        )
        assert len(template_hash(a)) == 10


class TestDeployment:
    async def test_a_deployment_becomes_ready_with_replicasets_and_pods(self, sim: Sandbox) -> None:
        sim.store.create("deployments", "default", deployment("web", replicas=3), manager="t")
        await eventually(lambda: rolled_out(sim, "web", 3))
        st = status(sim, "web")
        assert st["readyReplicas"] == 3 and "unavailableReplicas" not in st
        assert condition(sim, "web", "Available")["reason"] == "MinimumReplicasAvailable"
        dep = sim.store.fetch("deployments", "web", "default")
        [rs] = sim.store.list("replicasets", "default")
        digest = rs["metadata"]["labels"]["pod-template-hash"]
        assert rs["metadata"]["name"] == f"web-{digest}"
        assert rs["metadata"]["ownerReferences"][0]["uid"] == dep["metadata"]["uid"]
        assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
        assert dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
        running = pods(sim)
        assert len(running) == 3
        for pod in running:
            assert pod["metadata"]["name"].startswith(f"web-{digest}-")
            assert len(pod["metadata"]["name"]) == len(f"web-{digest}-") + 5
            assert pod["metadata"]["ownerReferences"][0]["name"] == rs["metadata"]["name"]
            assert pod["metadata"]["labels"] == {"app": "web", "pod-template-hash": digest}
            assert pod["status"]["phase"] == "Running"
            assert any(ipaddress.ip_address(pod["status"]["podIP"]) in net for net in DOC_NETS)
            assert pod["spec"]["nodeName"].startswith("sandbox-node-")
            assert {c["type"]: c["status"] for c in pod["status"]["conditions"]}["Ready"] == "True"
        assert len({p["status"]["podIP"] for p in running}) == 3

    async def test_rolling_update_respects_surge_and_replaces_every_pod(self, sim: Sandbox) -> None:
        sim.store.create("deployments", "default", deployment("web", replicas=4), manager="t")
        await eventually(lambda: rolled_out(sim, "web", 4))
        old = {p["metadata"]["name"] for p in pods(sim)}
        peak = {"pods": 0}

        def watch_pods(event: StoreEvent) -> None:
            if event.key == ("", "pods"):
                live = [
                    p
                    for p in sim.store.peek_all("pods", "default")
                    if not p["metadata"].get("deletionTimestamp")
                ]
                peak["pods"] = max(peak["pods"], len(live))

        unlisten = sim.store.add_listener(watch_pods)
        try:
            sim.store.update_with(
                "deployments",
                "default",
                "web",
                lambda o: o["spec"]["template"]["spec"]["containers"][0].__setitem__(
                    "image", "nginx:2"
                ),
            )
            await eventually(lambda: rolled_out(sim, "web", 4))
        finally:
            unlisten()
        assert peak["pods"] <= 4 + 1  # maxSurge 25% of 4
        new = pods(sim)
        assert not old & {p["metadata"]["name"] for p in new}
        assert {p["spec"]["containers"][0]["image"] for p in new} == {"nginx:2"}
        replicasets = {r["metadata"]["name"]: r for r in sim.store.list("replicasets", "default")}
        assert sorted(r["spec"]["replicas"] for r in replicasets.values()) == [0, 4]
        assert (
            sim.store.fetch("deployments", "web", "default")["metadata"]["annotations"][
                "deployment.kubernetes.io/revision"
            ]
            == "2"
        )

    async def test_recreate_removes_old_pods_before_starting_new_ones(self, sim: Sandbox) -> None:
        sim.store.create(
            "deployments",
            "default",
            deployment("web", replicas=2, strategy={"type": "Recreate"}),
            manager="t",
        )
        await eventually(lambda: rolled_out(sim, "web", 2))
        overlap = {"seen": False}

        def check(event: StoreEvent) -> None:
            if event.key == ("", "pods"):
                images = {
                    p["spec"]["containers"][0]["image"]
                    for p in sim.store.peek_all("pods", "default")
                }
                overlap["seen"] |= len(images) > 1

        unlisten = sim.store.add_listener(check)
        try:
            sim.store.update_with(
                "deployments",
                "default",
                "web",
                lambda o: o["spec"]["template"]["spec"]["containers"][0].__setitem__(
                    "image", "nginx:3"
                ),
            )
            await eventually(lambda: rolled_out(sim, "web", 2))
        finally:
            unlisten()
        assert not overlap["seen"]

    async def test_scale_to_zero_and_back(self, sim: Sandbox) -> None:
        sim.store.create("deployments", "default", deployment("web", replicas=2), manager="t")
        await eventually(lambda: rolled_out(sim, "web", 2))
        sim.store.update_with(
            "deployments", "default", "web", lambda o: o["spec"].__setitem__("replicas", 0)
        )
        await eventually(lambda: rolled_out(sim, "web", 0) and not pods(sim))
        assert set(status(sim, "web")) == {"observedGeneration", "conditions"}
        sim.store.update_with(
            "deployments", "default", "web", lambda o: o["spec"].__setitem__("replicas", 3)
        )
        await eventually(lambda: rolled_out(sim, "web", 3))
        assert len(sim.store.list("replicasets", "default")) == 1

    async def test_deleting_the_deployment_collects_replicasets_and_pods(
        self, sim: Sandbox
    ) -> None:
        sim.store.create("deployments", "default", deployment("web", replicas=2), manager="t")
        await eventually(lambda: rolled_out(sim, "web", 2))
        sim.store.delete("deployments", "default", "web")
        await eventually(lambda: not sim.store.list("replicasets", "default") and not pods(sim))


class TestFailureInjection:
    async def test_never_ready_reaches_progress_deadline_exceeded(
        self, sandbox_factory: Callable[..., Awaitable[Sandbox]]
    ) -> None:
        sb = await sandbox_factory(speed=5.0)
        loop_time = __import__("asyncio").get_running_loop().time
        started = loop_time()
        sb.store.create(
            "deployments",
            "default",
            deployment(
                "web", replicas=2, progressDeadlineSeconds=5, annotations={BEHAVIOUR: "never-ready"}
            ),
            manager="t",
        )
        await eventually(
            lambda: condition(sb, "web", "Progressing").get("reason") == "ProgressDeadlineExceeded",
            within=30,
        )
        elapsed = loop_time() - started
        # 5 s of simulated time at speed 5 is 1 s; unscaled it would be 5 s. Below 4.5 s tells
        # the two apart and leaves a loaded machine 3.5 s of slack.
        assert 0.9 <= elapsed < 4.5
        progressing = condition(sb, "web", "Progressing")
        assert progressing["status"] == "False"
        assert condition(sb, "web", "Available") == {
            **condition(sb, "web", "Available"),
            "status": "False",
            "reason": "MinimumReplicasUnavailable",
        }
        assert status(sb, "web")["unavailableReplicas"] == 2
        assert all(p["status"]["phase"] == "Running" for p in pods(sb))

    async def test_crash_loop_counts_restarts(self, sim: Sandbox) -> None:
        sim.store.create(
            "deployments",
            "default",
            deployment("web", annotations={BEHAVIOUR: "crash-loop"}),
            manager="t",
        )

        def restarts() -> int:
            found = pods(sim)
            statuses = (found[0].get("status") or {}).get("containerStatuses") if found else None
            return int(statuses[0]["restartCount"]) if statuses else 0

        await eventually(lambda: restarts() >= 2, within=5)
        container = pods(sim)[0]["status"]["containerStatuses"][0]
        assert container["state"]["waiting"]["reason"] == "CrashLoopBackOff"
        assert container["ready"] is False

    async def test_ready_after_delays_readiness(self, sim: Sandbox) -> None:
        sim.store.create(
            "deployments",
            "default",
            deployment("web", annotations={READY_AFTER: "5s"}),
            manager="t",
        )
        await eventually(lambda: pods(sim) and pods(sim)[0].get("status", {}).get("podIP"))
        assert status(sim, "web").get("readyReplicas") is None
        await eventually(lambda: status(sim, "web").get("readyReplicas") == 1, within=3)

    async def test_unschedulable_stays_pending(self, sim: Sandbox) -> None:
        sim.store.create(
            "deployments",
            "default",
            deployment("web", annotations={BEHAVIOUR: "unschedulable"}),
            manager="t",
        )
        pod: dict[str, Any] = await eventually(
            lambda: next((p for p in pods(sim) if p["status"].get("conditions")), {})
        )
        assert pod["status"]["phase"] == "Pending"
        assert pod["status"]["conditions"][0]["reason"] == "Unschedulable"
        assert "nodeName" not in pod["spec"]


class TestDaemonSet:
    def daemonset(self, **node_selector: str) -> dict[str, Any]:
        spec: dict[str, Any] = {"containers": [{"name": "agent", "image": "agent:1"}]}
        if node_selector:
            spec["nodeSelector"] = node_selector
        return {
            "metadata": {"name": "agent"},
            "spec": {
                "selector": {"matchLabels": {"app": "agent"}},
                "template": {"metadata": {"labels": {"app": "agent"}}, "spec": spec},
            },
        }

    async def test_one_ready_pod_per_node(self, sim: Sandbox) -> None:
        sim.store.create("daemonsets", "default", self.daemonset(), manager="t")
        await eventually(lambda: status(sim, "agent", "daemonsets").get("numberAvailable") == 2)
        st = status(sim, "agent", "daemonsets")
        assert (
            st["desiredNumberScheduled"],
            st["currentNumberScheduled"],
            st["updatedNumberScheduled"],
            st["numberReady"],
        ) == (2, 2, 2, 2)
        assert st["observedGeneration"] == 1
        assert sorted(p["spec"]["nodeName"] for p in pods(sim, "app=agent")) == [
            "sandbox-node-1",
            "sandbox-node-2",
        ]

    async def test_node_selector_and_rolling_update(self, sim: Sandbox) -> None:
        sim.store.create(
            "daemonsets",
            "default",
            self.daemonset(**{"kubernetes.io/hostname": "sandbox-node-2"}),
            manager="t",
        )
        await eventually(lambda: status(sim, "agent", "daemonsets").get("numberAvailable") == 1)
        assert status(sim, "agent", "daemonsets")["desiredNumberScheduled"] == 1
        sim.store.update_with(
            "daemonsets",
            "default",
            "agent",
            lambda o: o["spec"]["template"]["spec"].pop("nodeSelector"),
        )
        sim.store.update_with(
            "daemonsets",
            "default",
            "agent",
            lambda o: o["spec"]["template"]["spec"]["containers"][0].__setitem__(
                "image", "agent:2"
            ),
        )

        def updated() -> bool:
            st = status(sim, "agent", "daemonsets")
            images = {p["spec"]["containers"][0]["image"] for p in pods(sim, "app=agent")}
            return (
                st.get("observedGeneration") == 3
                and st.get("updatedNumberScheduled") == 2
                and st.get("numberAvailable") == 2
                and images == {"agent:2"}
            )

        await eventually(updated)
