"""The primary clone, promotion copy, template hash and scaling rules (flagger.md 2.4, 2.5, 2.8)."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canary.adapters.configtracker import ConfigRef, config_refs
from canary.adapters.primary import (
    REVISION_ANNOTATION,
    SCALE_TO_ZERO_KEY,
    hpa_differs,
    images,
    primary_daemonset,
    primary_deployment,
    primary_hpa,
    promoted_primary,
    revision_id,
    scale_up_replicas,
    selector_error,
    selector_label,
    template_hash,
)
from tests.adapters.builders import canary, daemonset, deployment, pod_template

HEX16 = re.compile(r"^[0-9a-f]{16}$")


class TestTemplateHash:
    def test_is_16_hex_and_stable_under_key_order_and_copies(self) -> None:
        template = pod_template(annotations={"b": "2", "a": "1"})
        reordered = {
            "spec": template["spec"],
            "metadata": {
                "annotations": {"a": "1", "b": "2"},
                "labels": template["metadata"]["labels"],
            },
        }
        assert HEX16.match(template_hash(template))
        assert (
            template_hash(template)
            == template_hash(copy.deepcopy(template))
            == template_hash(reordered)
        )

    @pytest.mark.parametrize(
        "change",
        [
            lambda t: t["spec"]["containers"][0].__setitem__("image", "podinfo:6.0.1"),
            lambda t: (
                t["metadata"]
                .setdefault("annotations", {})
                .__setitem__("kubectl.kubernetes.io/restartedAt", "2026-01-01T00:00:00Z")
            ),
            lambda t: t["spec"]["containers"][0].__setitem__("env", [{"name": "A", "value": "1"}]),
            lambda t: t["metadata"]["labels"].__setitem__("version", "2"),
            lambda t: t["spec"].__setitem__("nodeSelector", {"disk": "ssd"}),
        ],
        ids=["image", "restart-annotation", "env", "pod-label", "node-selector"],
    )
    def test_any_template_change_changes_it(self, change: Any) -> None:
        template = pod_template()
        changed = copy.deepcopy(template)
        change(changed)
        assert template_hash(changed) != template_hash(template)

    @pytest.mark.parametrize("key", [SCALE_TO_ZERO_KEY, "flagger.app/scale-to-zero"])
    def test_scale_to_zero_node_selector_is_ignored(self, key: str) -> None:
        template = pod_template(spec={"nodeSelector": {"disk": "ssd"}})
        zeroed = copy.deepcopy(template)
        zeroed["spec"]["nodeSelector"][key] = "true"
        assert template_hash(zeroed) == template_hash(template)
        bare = pod_template()
        only_zero = pod_template(spec={"nodeSelector": {key: "true"}})
        assert template_hash(only_zero) == template_hash(bare)

    @given(
        st.dictionaries(
            st.text(min_size=1, max_size=8),
            st.one_of(st.integers(), st.text(max_size=8), st.lists(st.integers(), max_size=3)),
            max_size=8,
        )
    )
    def test_insertion_order_never_matters(self, annotations: dict[str, Any]) -> None:
        forward = {"metadata": {"annotations": annotations}, "spec": {}}
        backward = {
            "spec": {},
            "metadata": {"annotations": dict(reversed(list(annotations.items())))},
        }
        assert template_hash(forward) == template_hash(backward)


class TestRevisionId:
    def test_changes_with_template_or_config_and_nothing_else(self) -> None:
        base = revision_id("aaaa", {"configmap/a": "1", "secret/b": "2"})
        assert base == revision_id("aaaa", {"secret/b": "2", "configmap/a": "1"})
        assert base != revision_id("bbbb", {"configmap/a": "1", "secret/b": "2"})
        assert base != revision_id("aaaa", {"configmap/a": "9", "secret/b": "2"})
        assert base != revision_id("aaaa", {"configmap/a": "1"})


class TestSelectorLabel:
    @pytest.mark.parametrize(
        ("match", "expected"),
        [
            ({"app": "podinfo"}, ("app", "podinfo")),
            ({"name": "podinfo"}, ("name", "podinfo")),
            ({"app.kubernetes.io/name": "podinfo"}, ("app.kubernetes.io/name", "podinfo")),
            ({"name": "n", "app": "a"}, ("app", "a")),
            ({"app.kubernetes.io/name": "k", "name": "n"}, ("name", "n")),
            ({"tier": "web"}, None),
        ],
    )
    def test_first_configured_label_wins(
        self, match: dict[str, str], expected: tuple[str, str] | None
    ) -> None:
        assert selector_label(deployment(selector=match)) == expected

    def test_custom_labels(self) -> None:
        assert selector_label(deployment(selector={"tier": "web"}), ("tier",)) == ("tier", "web")

    def test_error_names_the_workload_and_the_labels(self) -> None:
        message = selector_error(deployment(selector={"tier": "web"}))
        assert "Deployment podinfo.test" in message
        assert "app, name, app.kubernetes.io/name" in message
        assert selector_error(deployment()) == ""


ANTI_AFFINITY = {
    "affinity": {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {
                    "labelSelector": {"matchLabels": {"app": "podinfo"}},
                    "topologyKey": "kubernetes.io/hostname",
                }
            ],
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "labelSelector": {
                            "matchExpressions": [
                                {"key": "app", "operator": "In", "values": ["podinfo", "other"]}
                            ]
                        },
                        "topologyKey": "zone",
                    },
                }
            ],
        },
        "podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "podinfo"}}, "topologyKey": "zone"}
            ]
        },
    },
    "topologySpreadConstraints": [
        {
            "maxSkew": 1,
            "topologyKey": "zone",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "podinfo"}},
        }
    ],
    "nodeSelector": {SCALE_TO_ZERO_KEY: "true"},
    "volumes": [
        {"name": "cfg", "configMap": {"name": "podinfo-config"}},
        {"name": "untracked", "configMap": {"name": "shared"}},
    ],
    "containers": [
        {
            "name": "podinfo",
            "image": "podinfo:1",
            "envFrom": [{"secretRef": {"name": "podinfo-secret"}}],
        }
    ],
}


def target_with_everything() -> dict[str, Any]:
    return deployment(
        replicas=3,
        labels={"app": "podinfo", "team": "a", "kustomize.toolkit.fluxcd.io/name": "apps"},
        annotations={
            "owner": "team-a",
            "kubectl.kubernetes.io/last-applied-configuration": "{}",
            "argocd.argoproj.io/tracking-id": "apps:apps/Deployment:test/podinfo",
        },
        template=pod_template(
            labels={"app": "podinfo", "version": "1"},
            annotations={"prometheus.io/scrape": "true"},
            spec=ANTI_AFFINITY,
        ),
        extra_spec={
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "minReadySeconds": 5,
            "revisionHistoryLimit": 3,
            "progressDeadlineSeconds": 120,
        },
    )


RENAMED = [ConfigRef("configmap", "podinfo-config"), ConfigRef("secret", "podinfo-secret")]


def build_primary(**overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "label": "app",
        "label_value": "podinfo",
        "revision": "rev1",
        "renamed": RENAMED,
    }
    kwargs.update(overrides)
    return primary_deployment(target_with_everything(), canary(), **kwargs)


class TestPrimaryDeployment:
    def test_name_selector_and_pod_labels_use_the_primary_value(self) -> None:
        primary = build_primary()
        assert primary["metadata"]["name"] == "podinfo-primary"
        assert primary["metadata"]["namespace"] == "test"
        assert primary["spec"]["selector"] == {"matchLabels": {"app": "podinfo-primary"}}
        assert primary["spec"]["template"]["metadata"]["labels"] == {
            "app": "podinfo-primary",
            "version": "1",
        }

    def test_object_metadata_is_filtered_and_owned_by_the_canary(self) -> None:
        primary = build_primary()
        assert primary["metadata"]["labels"] == {"app": "podinfo-primary", "team": "a"}
        assert primary["metadata"]["annotations"] == {"owner": "team-a"}
        (owner,) = primary["metadata"]["ownerReferences"]
        assert owner == {
            "apiVersion": "canary.gitops.dev/v1beta1",
            "kind": "Canary",
            "name": "podinfo",
            "uid": "canary-uid-1",
            "controller": True,
            "blockOwnerDeletion": True,
        }

    def test_include_label_prefix(self) -> None:
        primary = build_primary(include_label_prefixes=("team",))
        assert primary["metadata"]["labels"] == {"app": "podinfo-primary", "team": "a"}
        primary = build_primary(include_label_prefixes=("nothing/",))
        assert primary["metadata"]["labels"] == {"app": "podinfo-primary"}

    def test_pod_annotations_keep_the_targets_and_add_the_revision(self) -> None:
        annotations = build_primary()["spec"]["template"]["metadata"]["annotations"]
        assert annotations == {"prometheus.io/scrape": "true", REVISION_ANNOTATION: "rev1"}

    def test_rollout_fields_are_copied(self) -> None:
        spec = build_primary()["spec"]
        target_spec = target_with_everything()["spec"]
        for field in (
            "strategy",
            "minReadySeconds",
            "revisionHistoryLimit",
            "progressDeadlineSeconds",
        ):
            assert spec[field] == target_spec[field]

    @pytest.mark.parametrize(("replicas", "expected"), [(3, 3), (0, 1), (None, 1)])
    def test_replicas_are_the_targets_or_one(self, replicas: int | None, expected: int) -> None:
        target = deployment(replicas=replicas)
        primary = primary_deployment(
            target, canary(), label="app", label_value="podinfo", revision="r"
        )
        assert primary["spec"]["replicas"] == expected

    def test_only_tracked_config_refs_are_renamed(self) -> None:
        names = {r.key for r in config_refs(build_primary()["spec"]["template"]["spec"])}
        assert names == {
            "configmap/podinfo-config-primary",
            "secret/podinfo-secret-primary",
            "configmap/shared",
        }

    def test_anti_affinity_and_spread_select_primary_pods_but_affinity_is_kept(self) -> None:
        pod = build_primary()["spec"]["template"]["spec"]
        anti = pod["affinity"]["podAntiAffinity"]
        required = anti["requiredDuringSchedulingIgnoredDuringExecution"][0]["labelSelector"]
        assert required["matchLabels"] == {"app": "podinfo-primary"}
        expression = anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"][
            "labelSelector"
        ]["matchExpressions"][0]
        assert expression["values"] == ["podinfo-primary", "other"]
        assert pod["topologySpreadConstraints"][0]["labelSelector"]["matchLabels"] == {
            "app": "podinfo-primary"
        }
        affinity = pod["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
            0
        ]
        assert affinity["labelSelector"]["matchLabels"] == {"app": "podinfo"}

    def test_scale_to_zero_selector_is_not_cloned(self) -> None:
        assert "nodeSelector" not in build_primary()["spec"]["template"]["spec"]

    def test_target_is_not_modified(self) -> None:
        target = target_with_everything()
        before = copy.deepcopy(target)
        primary_deployment(
            target, canary(), label="app", label_value="podinfo", revision="r", renamed=RENAMED
        )
        assert target == before

    def test_label_value_differs_from_name(self) -> None:
        target = deployment(selector={"app": "web"}, template=pod_template(labels={"app": "web"}))
        primary = primary_deployment(target, canary(), label="app", label_value="web", revision="r")
        assert primary["metadata"]["name"] == "podinfo-primary"
        assert primary["spec"]["selector"]["matchLabels"] == {"app": "web-primary"}


class TestPrimaryDaemonSet:
    def test_clone_without_replicas_and_with_update_strategy(self) -> None:
        target = daemonset(
            template=pod_template(
                labels={"app": "agent"},
                spec={"nodeSelector": {SCALE_TO_ZERO_KEY: "true", "os": "linux"}},
            )
        )
        target["spec"]["updateStrategy"] = {"type": "RollingUpdate"}
        primary = primary_daemonset(
            target,
            canary(kind="DaemonSet", target="agent"),
            label="app",
            label_value="agent",
            revision="r",
        )
        assert primary["kind"] == "DaemonSet"
        assert primary["metadata"]["name"] == "agent-primary"
        assert "replicas" not in primary["spec"]
        assert primary["spec"]["updateStrategy"] == {"type": "RollingUpdate"}
        assert primary["spec"]["template"]["spec"]["nodeSelector"] == {"os": "linux"}
        assert primary["spec"]["selector"]["matchLabels"] == {"app": "agent-primary"}


class TestPromotion:
    def current_primary(self) -> dict[str, Any]:
        primary = build_primary()
        primary["metadata"].update({"resourceVersion": "17", "uid": "primary-uid"})
        primary["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "4"
        return primary

    def new_target(self) -> dict[str, Any]:
        target = target_with_everything()
        target["spec"]["template"]["spec"]["containers"][0]["image"] = "podinfo:2"
        target["spec"]["replicas"] = 5
        target["spec"]["strategy"] = {"type": "Recreate"}
        del target["spec"]["minReadySeconds"]
        return target

    def promote(self, **overrides: Any) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "label": "app",
            "label_value": "podinfo",
            "revision": "rev2",
            "renamed": RENAMED,
        }
        kwargs.update(overrides)
        return promoted_primary(self.current_primary(), self.new_target(), **kwargs)

    def test_copies_template_with_primary_refs_labels_and_new_revision(self) -> None:
        promoted = self.promote()
        template = promoted["spec"]["template"]
        assert template["spec"]["containers"][0]["image"] == "podinfo:2"
        assert template["metadata"]["labels"]["app"] == "podinfo-primary"
        assert template["metadata"]["annotations"][REVISION_ANNOTATION] == "rev2"
        assert {r.key for r in config_refs(template["spec"])} >= {
            "configmap/podinfo-config-primary"
        }

    def test_copies_rollout_fields_and_drops_removed_ones(self) -> None:
        spec = self.promote()["spec"]
        assert spec["strategy"] == {"type": "Recreate"}
        assert "minReadySeconds" not in spec
        assert spec["revisionHistoryLimit"] == 3

    def test_replicas_copied_only_without_autoscaler_and_never_zero(self) -> None:
        assert self.promote()["spec"]["replicas"] == 5
        assert self.promote(copy_replicas=False)["spec"]["replicas"] == 3
        target = self.new_target()
        target["spec"]["replicas"] = 0
        promoted = promoted_primary(
            self.current_primary(), target, label="app", label_value="podinfo", revision="r"
        )
        assert promoted["spec"]["replicas"] == 3

    def test_keeps_identity_selector_and_controller_annotations(self) -> None:
        promoted = self.promote()
        assert promoted["metadata"]["resourceVersion"] == "17"
        assert promoted["spec"]["selector"] == {"matchLabels": {"app": "podinfo-primary"}}
        assert promoted["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "4"
        assert promoted["metadata"]["ownerReferences"][0]["uid"] == "canary-uid-1"

    def test_same_inputs_give_the_same_result(self) -> None:
        assert self.promote() == self.promote()


class TestScaleUpReplicas:
    @pytest.mark.parametrize(
        ("target", "primary", "hpa_min", "expected"),
        [
            (4, 2, None, 4),
            (0, 3, None, 3),
            (None, 3, None, 3),
            (0, 0, None, 1),
            (0, None, None, 1),
            (0, 3, 2, 2),
            (0, 3, 1, 1),
            (0, 3, "missing", 1),
            (5, 3, 2, 5),
        ],
    )
    def test_flaggers_scale_from_zero_rules(
        self, target: int | None, primary: int | None, hpa_min: Any, expected: int
    ) -> None:
        hpa: dict[str, Any] | None = None
        if hpa_min is not None:
            hpa = {"spec": {"maxReplicas": 10}}
            if hpa_min != "missing":
                hpa["spec"]["minReplicas"] = hpa_min
        primary_obj = (
            deployment(name="podinfo-primary", replicas=primary) if primary is not None else None
        )
        assert scale_up_replicas(deployment(replicas=target), primary_obj, hpa) == expected


def target_hpa(min_replicas: int | None = 2) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
        "maxReplicas": 4,
        "metrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 99},
                },
            }
        ],
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 30}},
    }
    if min_replicas is not None:
        spec["minReplicas"] = min_replicas
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "podinfo", "namespace": "test", "labels": {"app": "podinfo"}},
        "spec": spec,
    }


class TestPrimaryHpa:
    def test_copy_targets_the_primary(self) -> None:
        c = canary(
            autoscaler={
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "name": "podinfo",
            }
        )
        assert c.spec.autoscaler_ref is not None
        hpa = primary_hpa(target_hpa(), c, c.spec.autoscaler_ref)
        assert hpa["metadata"]["name"] == "podinfo-primary"
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "podinfo-primary",
        }
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 4)
        assert hpa["spec"]["metrics"] == target_hpa()["spec"]["metrics"]
        assert hpa["spec"]["behavior"] == target_hpa()["spec"]["behavior"]
        assert hpa["metadata"]["ownerReferences"][0]["kind"] == "Canary"

    def test_primary_scaler_replicas_override(self) -> None:
        c = canary(
            autoscaler={
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "name": "podinfo",
                "primaryScalerReplicas": {"minReplicas": 3, "maxReplicas": 9},
            }
        )
        assert c.spec.autoscaler_ref is not None
        hpa = primary_hpa(target_hpa(), c, c.spec.autoscaler_ref)
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 9)

    @pytest.mark.parametrize(
        ("change", "differs"),
        [
            (lambda s: None, False),
            (lambda s: s.__setitem__("maxReplicas", 5), True),
            (
                lambda s: s["metrics"][0]["resource"]["target"].__setitem__(
                    "averageUtilization", 50
                ),
                True,
            ),
            (lambda s: s.__setitem__("behavior", None), True),
        ],
    )
    def test_differs(self, change: Any, differs: bool) -> None:
        desired = target_hpa()
        existing = copy.deepcopy(desired)
        change(existing["spec"])
        assert hpa_differs(existing, desired) is differs

    def test_missing_min_replicas_equals_one(self) -> None:
        assert hpa_differs(target_hpa(min_replicas=None), target_hpa(min_replicas=1)) is False
        assert hpa_differs(target_hpa(min_replicas=None), target_hpa(min_replicas=2)) is True


def test_images_in_container_order() -> None:
    target = deployment(
        template=pod_template(
            spec={"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:2"}]}
        )
    )
    assert images(target) == ("a:1", "b:2")
