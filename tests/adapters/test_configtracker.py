"""ConfigMap/Secret tracking: discovery, filters, checksum, -primary copies (flagger.md 2.14)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from canary.adapters.configtracker import (
    ConfigRef,
    config_checksum,
    config_refs,
    go_json,
    is_tracked,
    primary_config,
    rename_config_refs,
    tracking_disabled,
)
from tests.adapters.builders import canary

EVERY_PLACE: dict[str, Any] = {
    "volumes": [
        {"name": "a", "configMap": {"name": "cm-volume"}},
        {"name": "b", "secret": {"secretName": "secret-volume"}},
        {
            "name": "c",
            "projected": {
                "sources": [
                    {"configMap": {"name": "cm-projected"}},
                    {"secret": {"name": "secret-projected"}},
                    {"serviceAccountToken": {"path": "token"}},
                ]
            },
        },
        {"name": "d", "emptyDir": {}},
    ],
    "initContainers": [
        {
            "name": "init",
            "env": [
                {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cm-init-env", "key": "x"}}}
            ],
            "envFrom": [{"secretRef": {"name": "secret-init-envfrom"}}],
        }
    ],
    "containers": [
        {
            "name": "app",
            "env": [
                {"name": "PLAIN", "value": "1"},
                {"name": "Y", "valueFrom": {"secretKeyRef": {"name": "secret-env", "key": "y"}}},
                {"name": "Z", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            ],
            "envFrom": [{"configMapRef": {"name": "cm-envfrom"}}],
        }
    ],
}


class TestDiscovery:
    def test_finds_every_kind_of_reference_in_containers_and_init_containers(self) -> None:
        assert {r.key for r in config_refs(EVERY_PLACE)} == {
            "configmap/cm-volume",
            "secret/secret-volume",
            "configmap/cm-projected",
            "secret/secret-projected",
            "configmap/cm-init-env",
            "secret/secret-init-envfrom",
            "secret/secret-env",
            "configmap/cm-envfrom",
        }

    def test_a_configmap_and_a_secret_with_one_name_are_two_refs(self) -> None:
        spec = {
            "volumes": [
                {"name": "a", "configMap": {"name": "same"}},
                {"name": "b", "secret": {"secretName": "same"}},
            ]
        }
        assert config_refs(spec) == {ConfigRef("configmap", "same"), ConfigRef("secret", "same")}

    @pytest.mark.parametrize(
        ("optional_flags", "expected"),
        [
            ((True, True), True),
            ((True, False), False),
            ((False, None), False),
            ((None,), False),
            ((True,), True),
        ],
    )
    def test_optional_only_when_every_reference_is_optional(
        self, optional_flags: tuple[bool | None, ...], expected: bool
    ) -> None:
        envs = []
        for index, flag in enumerate(optional_flags):
            ref: dict[str, Any] = {"name": "cfg", "key": f"k{index}"}
            if flag is not None:
                ref["optional"] = flag
            envs.append({"name": f"E{index}", "valueFrom": {"configMapKeyRef": ref}})
        (found,) = config_refs({"containers": [{"name": "c", "env": envs}]})
        assert found.optional is expected

    def test_nothing_referenced(self) -> None:
        assert config_refs({"containers": [{"name": "c", "image": "x"}]}) == frozenset()
        assert config_refs({}) == frozenset()


class TestFilters:
    @pytest.mark.parametrize(
        ("annotations", "disabled"),
        [
            ({"flagger.app/config-tracking": "disabled"}, True),
            ({"canary.gitops.dev/config-tracking": "disabled"}, True),
            ({"canary.gitops.dev/config-tracking": "disable"}, True),
            ({"canary.gitops.dev/config-tracking": "enabled"}, False),
            ({"other/config-tracking": "disabled"}, False),
            ({}, False),
        ],
    )
    def test_opt_out_annotation(self, annotations: dict[str, str], disabled: bool) -> None:
        obj = {"kind": "ConfigMap", "metadata": {"name": "x", "annotations": annotations}}
        assert tracking_disabled(obj) is disabled
        assert is_tracked(obj) is not disabled

    @pytest.mark.parametrize(
        ("secret_type", "tracked"),
        [
            ("Opaque", True),
            (None, True),
            ("kubernetes.io/basic-auth", True),
            ("kubernetes.io/ssh-auth", True),
            ("kubernetes.io/tls", True),
            ("kubernetes.io/dockerconfigjson", False),
            ("kubernetes.io/dockercfg", False),
            ("kubernetes.io/service-account-token", False),
            ("bootstrap.kubernetes.io/token", False),
        ],
    )
    def test_secret_types(self, secret_type: str | None, tracked: bool) -> None:
        obj: dict[str, Any] = {"kind": "Secret", "metadata": {"name": "s"}, "data": {}}
        if secret_type is not None:
            obj["type"] = secret_type
        assert is_tracked(obj) is tracked


class TestChecksum:
    def test_is_sha256_prefix_of_go_json_of_data(self) -> None:
        obj = {"kind": "ConfigMap", "data": {"b": "2", "a": "1"}}
        expected = hashlib.sha256(b'{"a":"1","b":"2"}').hexdigest()[:16]
        assert config_checksum(obj) == expected

    def test_go_json_escapes_html_characters_like_go(self) -> None:
        assert go_json({"k": "<a&b>"}) == '{"k":"\\u003ca\\u0026b\\u003e"}'
        assert json.loads(go_json({"k": "<a&b>é"})) == {"k": "<a&b>é"}

    def test_changes_with_data_not_with_metadata_or_key_order(self) -> None:
        base = {"kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "1", "b": "2"}}
        reordered = {
            "kind": "ConfigMap",
            "metadata": {"name": "x", "labels": {"l": "v"}},
            "data": {"b": "2", "a": "1"},
        }
        changed = {"kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "1", "b": "3"}}
        assert config_checksum(base) == config_checksum(reordered)
        assert config_checksum(base) != config_checksum(changed)
        assert len(config_checksum(base)) == 16

    def test_binary_data_of_a_configmap_counts(self) -> None:
        one = {"kind": "ConfigMap", "data": {"a": "1"}, "binaryData": {"b": "AAE="}}
        two = {"kind": "ConfigMap", "data": {"a": "1"}, "binaryData": {"b": "AAI="}}
        assert config_checksum(one) != config_checksum(two)

    def test_empty_data(self) -> None:
        assert config_checksum({"kind": "Secret"}) == hashlib.sha256(b"null").hexdigest()[:16]


class TestPrimaryCopies:
    def source(self) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": {
                "name": "tls",
                "namespace": "test",
                "uid": "source-uid",
                "resourceVersion": "42",
                "labels": {"app": "podinfo", "kustomize.toolkit.fluxcd.io/name": "apps"},
                "annotations": {"note": "x"},
                "ownerReferences": [
                    {
                        "apiVersion": "bitnami.com/v1alpha1",
                        "kind": "SealedSecret",
                        "name": "tls",
                        "uid": "ss",
                        "controller": True,
                    }
                ],
            },
            "data": {"tls.crt": "Y2VydA==", "tls.key": "a2V5"},
        }

    def test_copy_has_primary_name_data_type_and_canary_as_controller(self) -> None:
        c = canary()
        copy_ = primary_config(self.source(), c)
        assert copy_["metadata"]["name"] == "tls-primary"
        assert copy_["metadata"]["namespace"] == "test"
        assert copy_["data"] == self.source()["data"]
        assert copy_["type"] == "kubernetes.io/tls"
        owners = copy_["metadata"]["ownerReferences"]
        assert owners[0]["uid"] == c.uid and owners[0]["controller"] is True
        assert owners[1]["uid"] == "ss" and owners[1]["controller"] is False
        assert "resourceVersion" not in copy_["metadata"] and "uid" not in copy_["metadata"]

    def test_gitops_labels_are_not_copied(self) -> None:
        copy_ = primary_config(self.source(), canary())
        assert copy_["metadata"]["labels"] == {"app": "podinfo"}

    def test_include_prefixes_filter_labels(self) -> None:
        copy_ = primary_config(self.source(), canary(), ("team.example.com/",))
        assert copy_["metadata"]["labels"] == {}


class TestRename:
    def test_renames_only_the_given_refs_and_leaves_the_input_alone(self) -> None:
        renamed = rename_config_refs(
            EVERY_PLACE,
            {
                ("configmap", "cm-volume"): "cm-volume-primary",
                ("secret", "secret-env"): "secret-env-primary",
            },
        )
        assert renamed["volumes"][0]["configMap"]["name"] == "cm-volume-primary"
        assert (
            renamed["containers"][0]["env"][1]["valueFrom"]["secretKeyRef"]["name"]
            == "secret-env-primary"
        )
        assert renamed["containers"][0]["envFrom"][0]["configMapRef"]["name"] == "cm-envfrom"
        assert EVERY_PLACE["volumes"][0]["configMap"]["name"] == "cm-volume"

    def test_renaming_every_ref_leaves_none_of_the_old_names(self) -> None:
        renamed = rename_config_refs(EVERY_PLACE, lambda kind, name: f"{name}-primary")
        assert all(r.name.endswith("-primary") for r in config_refs(renamed))
        assert len(config_refs(renamed)) == len(config_refs(EVERY_PLACE))
