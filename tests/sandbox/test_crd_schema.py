"""CRD structural schemas: pruning, defaulting, validation — as functions and over HTTP."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from kubesandbox.apiserver import schema

from .conftest import GROUP, WIDGET_CRD, widget

SCHEMA: dict[str, Any] = WIDGET_CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def fields(causes: list[Any]) -> dict[str, str]:
    return {c.field: c.reason for c in causes}


class TestPruning:
    def test_unknown_fields_are_removed_and_reported(self) -> None:
        obj = widget("w", size=1, extra=True)
        obj["spec"]["items"] = [{"key": "a", "junk": 1}]
        obj["topLevel"] = 1
        pruned = schema.prune(obj, SCHEMA)
        assert sorted(pruned) == ["spec.extra", "spec.items[0].junk", "topLevel"]
        assert obj["spec"] == {"size": 1, "items": [{"key": "a"}]}
        assert "topLevel" not in obj

    def test_preserved_and_additional_properties_are_kept(self) -> None:
        obj = widget("w", free={"any": {"thing": [1]}}, labels={"a": "b"})
        obj["status"] = {"kopf": {"progress": {}}, "anything": 1}
        assert schema.prune(obj, SCHEMA) == []
        assert obj["spec"]["free"] == {"any": {"thing": [1]}}
        assert obj["status"]["kopf"] == {"progress": {}}

    def test_embedded_resources_keep_api_version_kind_and_metadata(self) -> None:
        embedded = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "weird": 1},
            "spec": {"x": 1},
            "other": 2,
        }
        obj = widget("w", template=embedded)
        pruned = schema.prune(obj, SCHEMA)
        assert sorted(pruned) == ["spec.template.metadata.weird", "spec.template.other"]
        assert obj["spec"]["template"] == {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": {"x": 1},
        }

    def test_an_object_without_properties_or_preservation_is_emptied(self) -> None:
        bare = {"type": "object", "properties": {"spec": {"type": "object"}}}
        obj = {"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n"}, "spec": {"a": 1}}
        assert schema.prune(obj, bare) == ["spec.a"]
        assert obj["spec"] == {}


class TestDefaulting:
    def test_defaults_fill_missing_fields_at_every_level(self) -> None:
        obj = widget("w", items=[{"key": "a"}, {"key": "b", "value": 5}])
        schema.apply_defaults(obj, SCHEMA)
        assert obj["spec"]["color"] == "red"
        assert obj["spec"]["items"] == [{"key": "a", "value": 1}, {"key": "b", "value": 5}]

    def test_null_for_a_non_nullable_field_is_defaulted_or_dropped(self) -> None:
        obj = widget("w", color=None, name=None, note=None)
        schema.apply_defaults(obj, SCHEMA)
        assert obj["spec"]["color"] == "red"
        assert "name" not in obj["spec"]
        assert obj["spec"]["note"] is None  # nullable: kept


class TestValidation:
    def test_a_valid_object_has_no_causes(self) -> None:
        obj = widget(
            "w",
            size=5,
            color="blue",
            name="abc",
            port="http",
            items=[{"key": "a", "value": 2}],
            choice={"a": "x"},
        )
        assert schema.validate(obj, SCHEMA) == []

    def test_every_failing_field_is_reported_with_its_path(self) -> None:
        obj = widget(
            "w",
            size=0,
            color="green",
            name="ABC",
            port=1.5,
            items=[{"key": "a"}, {"key": "a"}, {}, {"key": "d"}],
            choice={"a": "x", "b": "y"},
            labels={"k": 1},
        )
        causes = fields(schema.validate(obj, SCHEMA))
        assert causes == {
            "spec.size": "FieldValueInvalid",
            "spec.color": "FieldValueNotSupported",
            "spec.name": "FieldValueInvalid",
            "spec.port": "FieldValueTypeInvalid",
            "spec.items": "FieldValueTooMany",
            "spec.items[1]": "FieldValueDuplicate",
            "spec.items[2].key": "FieldValueRequired",
            "spec.choice": "FieldValueInvalid",
            "spec.labels[k]": "FieldValueTypeInvalid",
        }

    def test_required_and_type_messages_read_like_a_real_server(self) -> None:
        causes = schema.validate(
            {"apiVersion": "a/v1", "kind": "K", "metadata": {}, "spec": {"size": "3"}}, SCHEMA
        )
        assert [(c.field, c.message) for c in causes] == [
            (
                "spec.size",
                'Invalid value: "string": spec.size in body must be of type integer: "string"',
            )
        ]
        missing = schema.validate(
            {"apiVersion": "a/v1", "kind": "K", "metadata": {}, "spec": {}}, SCHEMA
        )
        assert [(c.field, c.message) for c in missing] == [("spec.size", "Required value")]

    def test_int_or_string_accepts_both_and_nothing_else(self) -> None:
        for ok in (8080, "http"):
            assert schema.validate(widget("w", port=ok), SCHEMA) == []
        assert fields(schema.validate(widget("w", port=True), SCHEMA)) == {
            "spec.port": "FieldValueTypeInvalid"
        }

    def test_any_of_and_not(self) -> None:
        s = {
            "type": "object",
            "properties": {
                "v": {
                    "anyOf": [{"type": "integer"}, {"type": "string", "pattern": "^x"}],
                    "not": {"enum": ["xx"]},
                }
            },
        }
        assert schema.validate({"v": 3}, s) == []
        assert schema.validate({"v": "xa"}, s) == []
        assert [c.field for c in schema.validate({"v": "ya"}, s)] == ["v"]
        assert [c.field for c in schema.validate({"v": "xx"}, s)] == ["v"]


async def post(
    url: str, path: str, body: dict[str, Any], **params: str
) -> tuple[int, dict[str, Any], list[str]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}{path}", json=body, params=params) as rsp,
    ):
        return rsp.status, json.loads(await rsp.text()), rsp.headers.getall("Warning", [])


PATH = f"/apis/{GROUP}/v1/namespaces/default/widgets"


class TestOverHttp:
    async def test_create_prunes_defaults_and_warns_by_default(self, api: Any) -> None:
        code, body, warnings = await post(api.url, PATH, widget("w", size=2, bogus=1))
        assert code == 201
        assert body["spec"] == {"size": 2, "color": "red"}
        assert warnings == ['299 - "unknown field \\"spec.bogus\\""']

    async def test_strict_field_validation_rejects_unknown_fields(self, api: Any) -> None:
        code, body, _ = await post(api.url, PATH, widget("w", bogus=1), fieldValidation="Strict")
        assert code == 400
        assert 'unknown field "spec.bogus"' in body["message"]
        code, body, warnings = await post(
            api.url, PATH, widget("w", bogus=1), fieldValidation="Ignore"
        )
        assert code == 201 and warnings == []

    async def test_invalid_objects_are_422_with_causes(self, api: Any) -> None:
        code, body, _ = await post(api.url, PATH, widget("w", size=500, color="pink"))
        assert code == 422
        assert body["reason"] == "Invalid"
        assert body["details"]["kind"] == "Widget" and body["details"]["group"] == GROUP
        assert {c["field"] for c in body["details"]["causes"]} == {"spec.size", "spec.color"}
        assert body["message"].startswith(f'Widget.{GROUP} "w" is invalid: [')

    async def test_updates_are_validated_too(self, api: Any) -> None:
        await post(api.url, PATH, widget("w"))
        async with (
            aiohttp.ClientSession() as session,
            session.patch(
                f"{api.url}{PATH}/w",
                data=json.dumps({"spec": {"size": -1}}),
                headers={"Content-Type": "application/merge-patch+json"},
            ) as rsp,
        ):
            assert rsp.status == 422

    async def test_a_crd_without_a_schema_or_with_a_bad_name_is_rejected(self, api: Any) -> None:
        bad = json.loads(json.dumps(WIDGET_CRD))
        bad["metadata"]["name"] = "wrong.example.gitops.dev"
        del bad["spec"]["versions"][0]["schema"]
        code, body, _ = await post(
            api.url, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", bad
        )
        assert code == 422
        assert {c["field"] for c in body["details"]["causes"]} == {
            "metadata.name",
            "spec.versions[0].schema.openAPIV3Schema",
        }

    @pytest.mark.parametrize("version_served", [True, False])
    async def test_other_served_versions_rewrite_api_version(
        self, api: Any, version_served: bool
    ) -> None:
        crd = json.loads(json.dumps(WIDGET_CRD))
        extra = json.loads(json.dumps(crd["spec"]["versions"][0]))
        extra.update({"name": "v1beta1", "storage": False, "served": version_served})
        crd["spec"]["versions"].append(extra)
        await api.apply_manifest(crd)
        await post(api.url, PATH, widget("w"))
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{api.url}/apis/{GROUP}/v1beta1/namespaces/default/widgets/w") as rsp,
        ):
            if version_served:
                assert rsp.status == 200
                assert (await rsp.json())["apiVersion"] == f"{GROUP}/v1beta1"
            else:
                assert rsp.status == 404
