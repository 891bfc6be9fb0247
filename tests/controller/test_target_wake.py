"""A Canary's job is woken when its target gets a new pod template (canary/controller/targets.py),
not by the target's status updates, its first sighting, or scaling."""

from __future__ import annotations

import copy
from typing import Any

from canary.controller.targets import TargetKey, TargetWatch


def canary(name: str, target: str, *, namespace: str = "test", kind: str = "Deployment") -> Any:
    return {
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}"},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": kind, "name": target}},
    }


def workload(
    name: str,
    image: str = "podinfo:v1",
    *,
    generation: int = 1,
    replicas: int = 2,
    namespace: str = "test",
    node_selector: dict[str, str] | None = None,
) -> Any:
    pod_spec: dict[str, Any] = {"containers": [{"name": "app", "image": image}]}
    if node_selector:
        pod_spec["nodeSelector"] = node_selector
    return {
        "metadata": {"name": name, "namespace": namespace, "generation": generation},
        "spec": {
            "replicas": replicas,
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec},
        },
        "status": {"readyReplicas": 0, "observedGeneration": generation - 1},
    }


class Woken:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def __call__(self, namespace: str, name: str) -> None:
        self.calls.append((namespace, name))


def watch_with(
    *canaries: Any, peek: dict[TargetKey, Any] | None = None
) -> tuple[TargetWatch, Woken]:
    woken = Woken()
    cached = peek or {}
    targets = TargetWatch(woken, cached.get if peek is not None else None)
    for body in canaries:
        targets.canary_event("ADDED", body)
    return targets, woken


def test_a_new_pod_template_wakes_the_canary_that_targets_the_workload() -> None:
    targets, woken = watch_with(canary("podinfo", "podinfo"))
    targets.target_event("Deployment", "ADDED", workload("podinfo"))

    targets.target_event("Deployment", "MODIFIED", workload("podinfo", "podinfo:v2", generation=2))

    assert woken.calls == [("test", "podinfo")]


def test_the_first_sighting_and_status_updates_wake_nothing() -> None:
    targets, woken = watch_with(canary("podinfo", "podinfo"))
    targets.target_event("Deployment", "ADDED", workload("podinfo", generation=4))
    for ready in range(5):
        status_update = workload("podinfo", generation=4)
        status_update["status"]["readyReplicas"] = ready
        targets.target_event("Deployment", "MODIFIED", status_update)
    assert woken.calls == []


def test_scaling_is_a_new_generation_but_not_a_new_release_and_wakes_nothing() -> None:
    targets, woken = watch_with(canary("web", "web"), canary("agent", "agent", kind="DaemonSet"))
    targets.target_event("Deployment", "ADDED", workload("web", replicas=2))
    targets.target_event("DaemonSet", "ADDED", workload("agent"))

    # An autoscaler, `kubectl scale`, or the controller scaling the target to zero.
    targets.target_event("Deployment", "MODIFIED", workload("web", replicas=0, generation=2))
    # The controller's scale-to-zero node selector on a DaemonSet, and its removal.
    zero = {"canary.gitops.dev/scale-to-zero": "true"}
    targets.target_event(
        "DaemonSet", "MODIFIED", workload("agent", generation=2, node_selector=zero)
    )
    targets.target_event("DaemonSet", "MODIFIED", workload("agent", generation=3))

    assert woken.calls == []
    # A new image after the scaling is still a new release.
    targets.target_event("DaemonSet", "MODIFIED", workload("agent", "agent:v2", generation=4))
    assert woken.calls == [("test", "agent")]


def test_only_the_canaries_of_that_workload_in_that_namespace_are_woken() -> None:
    targets, woken = watch_with(
        canary("podinfo", "podinfo"),
        canary("other", "other"),
        canary("podinfo", "podinfo", namespace="prod"),
        canary("ds", "podinfo", kind="DaemonSet"),
    )
    for body in (workload("podinfo"), workload("other"), workload("podinfo", namespace="prod")):
        targets.target_event("Deployment", "ADDED", body)
    targets.target_event("DaemonSet", "ADDED", workload("podinfo"))

    targets.target_event("Deployment", "MODIFIED", workload("podinfo", "podinfo:v2", generation=2))

    assert woken.calls == [("test", "podinfo")]


def test_a_workload_no_canary_targets_is_not_tracked() -> None:
    targets, woken = watch_with(canary("podinfo", "podinfo"))
    targets.target_event("Deployment", "ADDED", workload("unrelated"))
    targets.target_event("Deployment", "MODIFIED", workload("unrelated", "x:v2", generation=2))
    assert woken.calls == []
    assert len(targets) == 1


def test_a_canary_whose_target_ref_moves_is_woken_by_its_new_target_only() -> None:
    targets, woken = watch_with(canary("podinfo", "old"))
    targets.target_event("Deployment", "ADDED", workload("old"))
    targets.canary_event("MODIFIED", canary("podinfo", "new"))
    targets.target_event("Deployment", "ADDED", workload("new"))

    targets.target_event("Deployment", "MODIFIED", workload("old", "podinfo:v2", generation=2))
    assert woken.calls == []
    targets.target_event("Deployment", "MODIFIED", workload("new", "podinfo:v2", generation=2))
    assert woken.calls == [("test", "podinfo")]
    assert targets.canaries(("Deployment", "test", "old")) == frozenset()


def test_a_deleted_canary_is_not_woken_and_its_target_is_forgotten() -> None:
    body = canary("podinfo", "podinfo")
    targets, woken = watch_with(body)
    targets.target_event("Deployment", "ADDED", workload("podinfo"))

    targets.canary_event("DELETED", body)
    targets.target_event("Deployment", "MODIFIED", workload("podinfo", "podinfo:v2", generation=2))

    assert woken.calls == []
    assert len(targets) == 0


def test_two_canaries_of_one_workload_are_both_woken_and_one_leaving_keeps_the_other() -> None:
    first, second = canary("a", "podinfo"), canary("b", "podinfo")
    targets, woken = watch_with(first, second)
    targets.target_event("Deployment", "ADDED", workload("podinfo"))

    targets.target_event("Deployment", "MODIFIED", workload("podinfo", "podinfo:v2", generation=2))
    assert woken.calls == [("test", "a"), ("test", "b")]

    targets.canary_event("DELETED", first)
    targets.target_event("Deployment", "MODIFIED", workload("podinfo", "podinfo:v3", generation=3))
    assert woken.calls[2:] == [("test", "b")]


def test_a_target_recreated_with_another_template_wakes_its_canary() -> None:
    targets, woken = watch_with(canary("podinfo", "podinfo"))
    targets.target_event("Deployment", "ADDED", workload("podinfo"))
    targets.target_event("Deployment", "DELETED", workload("podinfo"))

    targets.target_event("Deployment", "ADDED", workload("podinfo", "podinfo:v2", generation=1))

    assert woken.calls == [("test", "podinfo")]


def test_a_target_recreated_as_it_was_wakes_nothing() -> None:
    targets, woken = watch_with(canary("podinfo", "podinfo"))
    targets.target_event("Deployment", "ADDED", workload("podinfo"))
    targets.target_event("Deployment", "DELETED", workload("podinfo"))
    targets.target_event("Deployment", "ADDED", workload("podinfo"))
    assert woken.calls == []


def test_a_canary_created_for_a_cached_workload_is_woken_by_its_very_next_new_template() -> None:
    cached = {("Deployment", "test", "podinfo"): workload("podinfo", generation=3)}
    targets, woken = watch_with(canary("podinfo", "podinfo"), peek=cached)

    targets.target_event("Deployment", "MODIFIED", workload("podinfo", "podinfo:v2", generation=4))

    assert woken.calls == [("test", "podinfo")]


def test_status_writes_to_the_canary_keep_the_index_as_it_is() -> None:
    body = canary("podinfo", "podinfo")
    targets, woken = watch_with(body)
    targets.target_event("Deployment", "ADDED", workload("podinfo"))
    written = copy.deepcopy(body)
    written["status"] = {"phase": "Initialized"}
    targets.canary_event("MODIFIED", written)

    targets.target_event("Deployment", "MODIFIED", workload("podinfo", "podinfo:v2", generation=2))

    assert woken.calls == [("test", "podinfo")]


def test_a_canary_without_a_supported_target_is_not_indexed() -> None:
    service = canary("svc", "podinfo", kind="Service")
    nameless = canary("nameless", "")
    targets, _ = watch_with(service, nameless, {"metadata": {"name": "bare", "namespace": "t"}})
    assert len(targets) == 0


def test_a_target_ref_without_a_kind_means_a_deployment() -> None:
    body = canary("podinfo", "podinfo")
    del body["spec"]["targetRef"]["kind"]
    targets, _ = watch_with(body)
    assert targets.canaries(("Deployment", "test", "podinfo")) == frozenset({"podinfo"})
