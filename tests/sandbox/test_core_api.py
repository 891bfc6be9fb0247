"""CRUD semantics through the real ``kubernetes.aio`` client: metadata, errors, selectors, status."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.aio import client as k8s
from kubernetes.aio.client.exceptions import ApiException

from .conftest import GROUP, deployment, widget


def status_of(exc: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body or "{}")
    assert body["kind"] == "Status"
    assert body["code"] == exc.status
    return body


@pytest.fixture
def core(client: Any) -> Any:
    return k8s.CoreV1Api(client)


@pytest.fixture
def apps(client: Any) -> Any:
    return k8s.AppsV1Api(client)


@pytest.fixture
def custom(client: Any) -> Any:
    return k8s.CustomObjectsApi(client)


def cm(name: str, labels: dict[str, str] | None = None, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels or {}},
        "data": data,
    }


class TestObjectMetadata:
    async def test_create_fills_server_metadata_and_namespace_from_url(self, core: Any) -> None:
        created = await core.create_namespaced_config_map("default", cm("a", x="1"))
        meta = created.metadata
        assert meta.namespace == "default"
        assert meta.uid and len(meta.uid) == 36
        assert meta.creation_timestamp is not None
        assert int(meta.resource_version) > 0
        fetched = await core.read_namespaced_config_map("a", "default")
        assert fetched.metadata.resource_version == meta.resource_version
        assert fetched.data == {"x": "1"}

    async def test_every_write_moves_the_global_resource_version(self, core: Any) -> None:
        first = await core.create_namespaced_config_map("default", cm("a"))
        second = await core.create_namespaced_config_map("default", cm("b"))
        patched = await core.patch_namespaced_config_map("a", "default", {"data": {"k": "v"}})
        versions = [int(o.metadata.resource_version) for o in (first, second, patched)]
        assert versions == sorted(versions) and len(set(versions)) == 3
        listing = await core.list_namespaced_config_map("default")
        assert int(listing.metadata.resource_version) >= versions[-1]

    async def test_generate_name_gives_distinct_names_with_the_prefix(self, core: Any) -> None:
        body = {"metadata": {"generateName": "job-"}, "data": {}}
        names = {
            (await core.create_namespaced_config_map("default", body)).metadata.name
            for _ in range(5)
        }
        assert len(names) == 5
        assert all(n.startswith("job-") and len(n) == len("job-") + 5 for n in names)

    async def test_namespace_in_body_must_match_the_url(self, core: Any) -> None:
        body = cm("a")
        body["metadata"]["namespace"] = "kube-system"
        with pytest.raises(ApiException) as err:
            await core.create_namespaced_config_map("default", body)
        assert err.value.status == 400

    async def test_missing_namespace_is_a_404_for_the_namespace(self, core: Any) -> None:
        with pytest.raises(ApiException) as err:
            await core.create_namespaced_config_map("nowhere", cm("a"))
        status = status_of(err.value)
        assert status["reason"] == "NotFound"
        assert status["details"] == {"name": "nowhere", "kind": "namespaces"}

    async def test_unknown_metadata_fields_are_dropped(self, custom: Any) -> None:
        body = widget("w")
        body["metadata"]["bogus"] = "x"
        created = await custom.create_namespaced_custom_object(
            GROUP, "v1", "default", "widgets", body
        )
        assert "bogus" not in created["metadata"]


class TestErrors:
    async def test_get_missing_is_404_with_status_details(self, apps: Any) -> None:
        with pytest.raises(ApiException) as err:
            await apps.read_namespaced_deployment("ghost", "default")
        status = status_of(err.value)
        assert status["reason"] == "NotFound"
        assert status["message"] == 'deployments.apps "ghost" not found'
        assert status["details"] == {"name": "ghost", "group": "apps", "kind": "deployments"}

    async def test_duplicate_create_is_409_already_exists(self, core: Any) -> None:
        await core.create_namespaced_config_map("default", cm("a"))
        with pytest.raises(ApiException) as err:
            await core.create_namespaced_config_map("default", cm("a"))
        status = status_of(err.value)
        assert (err.value.status, status["reason"]) == (409, "AlreadyExists")

    async def test_stale_resource_version_on_replace_is_409_conflict(self, core: Any) -> None:
        created = await core.create_namespaced_config_map("default", cm("a"))
        await core.patch_namespaced_config_map("a", "default", {"data": {"moved": "on"}})
        stale = created.to_dict()
        stale["data"] = {"lost": "update"}
        with pytest.raises(ApiException) as err:
            await core.replace_namespaced_config_map("a", "default", stale)
        assert status_of(err.value)["reason"] == "Conflict"
        assert (await core.read_namespaced_config_map("a", "default")).data == {"moved": "on"}

    async def test_stale_resource_version_in_a_merge_patch_is_409(self, core: Any) -> None:
        created = await core.create_namespaced_config_map("default", cm("a"))
        await core.patch_namespaced_config_map("a", "default", {"data": {"x": "1"}})
        with pytest.raises(ApiException) as err:
            await core.patch_namespaced_config_map(
                "a",
                "default",
                {
                    "metadata": {"resourceVersion": created.metadata.resource_version},
                    "data": {"y": "2"},
                },
            )
        assert err.value.status == 409

    async def test_replace_without_resource_version_is_unconditional(self, core: Any) -> None:
        await core.create_namespaced_config_map("default", cm("a", x="1"))
        replaced = await core.replace_namespaced_config_map("a", "default", cm("a", y="2"))
        assert replaced.data == {"y": "2"}

    async def test_invalid_deployment_is_422_naming_the_fields(self, apps: Any) -> None:
        body = deployment("web")
        body["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
        body["spec"]["template"]["spec"]["containers"][0].pop("image")
        with pytest.raises(ApiException) as err:
            await apps.create_namespaced_deployment("default", body)
        status = status_of(err.value)
        assert status["reason"] == "Invalid"
        fields = {c["field"] for c in status["details"]["causes"]}
        assert fields == {"spec.template.metadata.labels", "spec.template.spec.containers[0].image"}

    async def test_bad_names_and_labels_are_rejected(self, core: Any) -> None:
        for body in (cm("Upper_Case"), cm("ok", labels={"bad key!": "v"})):
            with pytest.raises(ApiException) as err:
                await core.create_namespaced_config_map("default", body)
            assert err.value.status == 422

    async def test_deployment_selector_is_immutable(self, apps: Any) -> None:
        await apps.create_namespaced_deployment("default", deployment("web"))
        with pytest.raises(ApiException) as err:
            await apps.patch_namespaced_deployment(
                "web",
                "default",
                {
                    "spec": {
                        "selector": {"matchLabels": {"app": "web", "v": "2"}},
                        "template": {"metadata": {"labels": {"app": "web", "v": "2"}}},
                    }
                },
            )
        assert status_of(err.value)["details"]["causes"][0]["field"] == "spec.selector"


class TestGeneration:
    async def test_generation_moves_on_spec_changes_only(self, apps: Any) -> None:
        created = await apps.create_namespaced_deployment("default", deployment("web"))
        assert created.metadata.generation == 1
        labelled = await apps.patch_namespaced_deployment(
            "web", "default", {"metadata": {"labels": {"x": "y"}}}
        )
        assert labelled.metadata.generation == 1
        status = await apps.patch_namespaced_deployment_status(
            "web", "default", {"status": {"replicas": 1}}
        )
        assert status.metadata.generation == 1
        scaled = await apps.patch_namespaced_deployment("web", "default", {"spec": {"replicas": 3}})
        assert scaled.metadata.generation == 2

    async def test_custom_resources_track_generation_too(self, custom: Any) -> None:
        await custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("w"))
        await custom.patch_namespaced_custom_object(
            GROUP, "v1", "default", "widgets", "w", {"metadata": {"annotations": {"a": "b"}}}
        )
        await custom.patch_namespaced_custom_object_status(
            GROUP, "v1", "default", "widgets", "w", {"status": {"phase": "Ok"}}
        )
        obj = await custom.get_namespaced_custom_object(GROUP, "v1", "default", "widgets", "w")
        assert obj["metadata"]["generation"] == 1
        obj = await custom.patch_namespaced_custom_object(
            GROUP, "v1", "default", "widgets", "w", {"spec": {"size": 2}}
        )
        assert obj["metadata"]["generation"] == 2

    async def test_a_write_that_changes_nothing_keeps_the_resource_version(self, core: Any) -> None:
        created = await core.create_namespaced_config_map("default", cm("a", x="1"))
        same = await core.patch_namespaced_config_map("a", "default", {"data": {"x": "1"}})
        assert same.metadata.resource_version == created.metadata.resource_version


class TestStatusSubresource:
    async def test_main_resource_writes_ignore_status(self, custom: Any) -> None:
        body = widget("w")
        body["status"] = {"phase": "Forged"}
        created = await custom.create_namespaced_custom_object(
            GROUP, "v1", "default", "widgets", body
        )
        assert "status" not in created
        patched = await custom.patch_namespaced_custom_object(
            GROUP,
            "v1",
            "default",
            "widgets",
            "w",
            {"spec": {"size": 4}, "status": {"phase": "Forged"}},
        )
        assert patched["spec"]["size"] == 4 and "status" not in patched

    async def test_status_writes_change_only_status(self, custom: Any) -> None:
        await custom.create_namespaced_custom_object(
            GROUP, "v1", "default", "widgets", widget("w", size=2)
        )
        patched = await custom.patch_namespaced_custom_object_status(
            GROUP,
            "v1",
            "default",
            "widgets",
            "w",
            {
                "spec": {"size": 9},
                "metadata": {"labels": {"sneaky": "yes"}},
                "status": {"phase": "Ready"},
            },
        )
        assert patched["status"] == {"phase": "Ready"}
        assert patched["spec"]["size"] == 2
        assert "labels" not in patched["metadata"]

    async def test_status_get_returns_the_whole_object_and_put_replaces_status(
        self, custom: Any
    ) -> None:
        await custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("w"))
        obj = await custom.get_namespaced_custom_object_status(
            GROUP, "v1", "default", "widgets", "w"
        )
        assert obj["spec"]["size"] == 1
        obj["status"] = {"phase": "Done"}
        replaced = await custom.replace_namespaced_custom_object_status(
            GROUP, "v1", "default", "widgets", "w", obj
        )
        assert replaced["status"] == {"phase": "Done"}

    async def test_builtin_deployment_status_is_a_subresource(self, apps: Any) -> None:
        await apps.create_namespaced_deployment("default", deployment("web"))
        await apps.patch_namespaced_deployment("web", "default", {"status": {"replicas": 7}})
        assert (await apps.read_namespaced_deployment("web", "default")).status.replicas is None
        await apps.patch_namespaced_deployment_status("web", "default", {"status": {"replicas": 7}})
        assert (await apps.read_namespaced_deployment_status("web", "default")).status.replicas == 7

    async def test_scale_subresource_reads_and_writes_replicas(
        self, apps: Any, custom: Any
    ) -> None:
        await apps.create_namespaced_deployment("default", deployment("web", replicas=2))
        scale = await apps.read_namespaced_deployment_scale("web", "default")
        assert (scale.spec.replicas, scale.status.selector) == (2, "app=web")
        await apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 5}})
        assert (await apps.read_namespaced_deployment("web", "default")).spec.replicas == 5
        await custom.create_namespaced_custom_object(
            GROUP, "v1", "default", "widgets", widget("w", size=3)
        )
        wscale = await custom.get_namespaced_custom_object_scale(
            GROUP, "v1", "default", "widgets", "w"
        )
        assert wscale["spec"]["replicas"] == 3


class TestSelectorsAndPaging:
    async def test_label_selector_operators(self, core: Any) -> None:
        for name, labels in {
            "a": {"tier": "web", "env": "prod"},
            "b": {"tier": "db", "env": "prod"},
            "c": {"tier": "web"},
            "d": {},
        }.items():
            await core.create_namespaced_config_map("default", cm(name, labels))

        async def names(selector: str) -> list[str]:
            listing = await core.list_namespaced_config_map("default", label_selector=selector)
            return [i.metadata.name for i in listing.items]

        assert await names("tier=web") == ["a", "c"]
        assert await names("tier==web,env=prod") == ["a"]
        assert await names("tier!=web") == ["b", "d"]
        assert await names("tier in (web, db),env") == ["a", "b"]
        assert await names("tier notin (web)") == ["b", "d"]
        assert await names("!env") == ["c", "d"]

    async def test_malformed_label_selector_is_400(self, core: Any) -> None:
        with pytest.raises(ApiException) as err:
            await core.list_namespaced_config_map("default", label_selector="a in (b")
        assert err.value.status == 400

    async def test_field_selectors_on_name_namespace_and_event_fields(self, core: Any) -> None:
        await core.create_namespaced_config_map("default", cm("a"))
        await core.create_namespaced_config_map("kube-system", cm("a"))
        await core.create_namespaced_config_map("default", cm("b"))
        everywhere = await core.list_config_map_for_all_namespaces(field_selector="metadata.name=a")
        assert sorted(i.metadata.namespace for i in everywhere.items) == ["default", "kube-system"]
        not_default = await core.list_config_map_for_all_namespaces(
            field_selector="metadata.namespace!=default"
        )
        assert [i.metadata.name for i in not_default.items] == ["a"]
        for reason, name in (("Scaled", "web"), ("Killed", "web"), ("Scaled", "db")):
            await core.create_namespaced_event(
                "default",
                {
                    "metadata": {"generateName": "ev-"},
                    "reason": reason,
                    "message": "m",
                    "involvedObject": {"kind": "Deployment", "name": name, "namespace": "default"},
                },
            )
        events = await core.list_namespaced_event(
            "default", field_selector="involvedObject.name=web,reason=Scaled"
        )
        assert len(events.items) == 1

    async def test_unsupported_field_selector_is_400(self, core: Any) -> None:
        with pytest.raises(ApiException) as err:
            await core.list_namespaced_config_map("default", field_selector="data.x=1")
        assert err.value.status == 400
        assert "field label not supported" in status_of(err.value)["message"]

    async def test_limit_and_continue_page_through_everything_once(self, core: Any) -> None:
        for i in range(7):
            await core.create_namespaced_config_map("default", cm(f"item-{i}"))
        seen: list[str] = []
        token = None
        pages = 0
        while True:
            page = await core.list_namespaced_config_map("default", limit=3, _continue=token)
            pages += 1
            seen += [i.metadata.name for i in page.items]
            token = page.metadata._continue
            if not token:
                break
        assert pages == 3
        assert seen == [f"item-{i}" for i in range(7)]


class TestDryRunAndDelete:
    async def test_dry_run_create_persists_nothing(self, core: Any) -> None:
        result = await core.create_namespaced_config_map("default", cm("a"), dry_run="All")
        assert result.metadata.name == "a"
        with pytest.raises(ApiException) as err:
            await core.read_namespaced_config_map("a", "default")
        assert err.value.status == 404

    async def test_delete_returns_success_status_then_404(self, core: Any) -> None:
        await core.create_namespaced_config_map("default", cm("a"))
        status = await core.delete_namespaced_config_map("a", "default")
        body = status if isinstance(status, dict) else status.to_dict()
        assert (body["kind"], body["status"], body["details"]["name"]) == ("Status", "Success", "a")
        with pytest.raises(ApiException) as err:
            await core.delete_namespaced_config_map("a", "default")
        assert err.value.status == 404

    async def test_delete_precondition_on_uid_is_409(self, core: Any) -> None:
        await core.create_namespaced_config_map("default", cm("a"))
        with pytest.raises(ApiException) as err:
            await core.delete_namespaced_config_map(
                "a",
                "default",
                body=k8s.V1DeleteOptions(preconditions=k8s.V1Preconditions(uid="nope")),
            )
        assert err.value.status == 409

    async def test_delete_collection_honours_the_selector(self, core: Any) -> None:
        await core.create_namespaced_config_map("default", cm("a", {"g": "1"}))
        await core.create_namespaced_config_map("default", cm("b", {"g": "2"}))
        await core.delete_collection_namespaced_config_map("default", label_selector="g=1")
        remaining = await core.list_namespaced_config_map("default")
        assert [i.metadata.name for i in remaining.items] == ["b"]


class TestPatchKindsThroughTheClient:
    async def test_all_four_patch_content_types(self, apps: Any) -> None:
        await apps.create_namespaced_deployment("default", deployment("web"))
        merged = await apps.patch_namespaced_deployment(
            "web",
            "default",
            {"metadata": {"labels": {"m": "1"}}},
            _content_type="application/merge-patch+json",
        )
        assert merged.metadata.labels["m"] == "1"
        jsonpatched = await apps.patch_namespaced_deployment(
            "web",
            "default",
            [{"op": "replace", "path": "/spec/replicas", "value": 2}],
            _content_type="application/json-patch+json",
        )
        assert jsonpatched.spec.replicas == 2
        strategic = await apps.patch_namespaced_deployment(
            "web",
            "default",
            {"spec": {"template": {"spec": {"containers": [{"name": "side", "image": "envoy"}]}}}},
            _content_type="application/strategic-merge-patch+json",
        )
        assert [c.name for c in strategic.spec.template.spec.containers] == ["app", "side"]
        applied = await apps.patch_namespaced_deployment(
            "web",
            "default",
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web"},
                "spec": {"replicas": 4},
            },
            field_manager="tester",
            force=True,
            _content_type="application/apply-patch+yaml",
        )
        assert applied.spec.replicas == 4
        managers = {(m.manager, m.operation) for m in applied.metadata.managed_fields}
        assert ("tester", "Apply") in managers
