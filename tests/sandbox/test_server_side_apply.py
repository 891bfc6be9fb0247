"""Server-side apply: field ownership, conflicts, force, removal of omitted fields, create-on-apply."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import yaml

from kubesandbox.apiserver.managed import from_fields_v1

from .conftest import GROUP, deployment, widget

DEPLOY = "/apis/apps/v1/namespaces/default/deployments/web"
WIDGET = f"/apis/{GROUP}/v1/namespaces/default/widgets/w"


async def apply(
    url: str,
    path: str,
    body: dict[str, Any],
    manager: str | None,
    *,
    force: bool = False,
    as_yaml: bool = False,
) -> tuple[int, dict[str, Any]]:
    params = {"force": "true"} if force else {}
    if manager is not None:
        params["fieldManager"] = manager
    data = yaml.safe_dump(body) if as_yaml else json.dumps(body)
    async with (
        aiohttp.ClientSession() as session,
        session.patch(
            f"{url}{path}",
            data=data,
            params=params,
            headers={"Content-Type": "application/apply-patch+yaml"},
        ) as rsp,
    ):
        return rsp.status, json.loads(await rsp.text())


def owned(obj: dict[str, Any], manager: str) -> set[tuple[str, ...]]:
    out: set[tuple[str, ...]] = set()
    for entry in obj["metadata"].get("managedFields", []):
        if entry["manager"] == manager:
            out |= from_fields_v1(entry["fieldsV1"])
    return out


def small_deployment(replicas: int = 2, **labels: str) -> dict[str, Any]:
    body = deployment("web", replicas=replicas)
    body["metadata"]["labels"].update(labels)
    return body


class TestCreateAndOwnership:
    async def test_apply_creates_a_missing_object_and_records_its_fields(self, api: Any) -> None:
        code, obj = await apply(api.url, DEPLOY, small_deployment(), "gitops", as_yaml=True)
        assert code == 201
        assert obj["spec"]["replicas"] == 2
        assert obj["spec"]["progressDeadlineSeconds"] == 600  # defaulted, not owned
        fields = owned(obj, "gitops")
        assert ("f:spec", "f:replicas") in fields
        assert ("f:spec", "f:progressDeadlineSeconds") not in fields
        assert (
            "f:spec",
            "f:template",
            "f:spec",
            "f:containers",
            'k:{"name":"app"}',
            "f:image",
        ) in fields
        entry = next(e for e in obj["metadata"]["managedFields"] if e["manager"] == "gitops")
        assert (entry["operation"], entry["apiVersion"], entry["fieldsType"]) == (
            "Apply",
            "apps/v1",
            "FieldsV1",
        )

    async def test_reapplying_the_same_configuration_is_a_no_op(self, api: Any) -> None:
        _, first = await apply(api.url, DEPLOY, small_deployment(), "gitops")
        code, second = await apply(api.url, DEPLOY, small_deployment(), "gitops")
        assert code == 200
        assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]

    async def test_apply_requires_a_field_manager(self, api: Any) -> None:
        code, body = await apply(api.url, DEPLOY, small_deployment(), None)
        assert code == 400
        assert "fieldManager" in body["message"]


class TestConflicts:
    async def test_changing_another_managers_field_is_a_409_listing_the_field(
        self, api: Any
    ) -> None:
        await apply(api.url, DEPLOY, small_deployment(replicas=2), "gitops")
        code, body = await apply(api.url, DEPLOY, small_deployment(replicas=5), "hpa")
        assert (code, body["reason"]) == (409, "Conflict")
        causes = body["details"]["causes"]
        assert [(c["field"], c["reason"]) for c in causes] == [
            (".spec.replicas", "FieldManagerConflict")
        ]
        assert 'conflict with "gitops"' in body["message"]
        assert api.store.get("deployments", "web", "default")["spec"]["replicas"] == 2

    async def test_force_takes_ownership(self, api: Any) -> None:
        await apply(api.url, DEPLOY, small_deployment(replicas=2), "gitops")
        code, obj = await apply(api.url, DEPLOY, small_deployment(replicas=5), "hpa", force=True)
        assert code == 200 and obj["spec"]["replicas"] == 5
        assert ("f:spec", "f:replicas") in owned(obj, "hpa")
        assert ("f:spec", "f:replicas") not in owned(obj, "gitops")

    async def test_the_same_value_is_shared_without_conflict(self, api: Any) -> None:
        await apply(api.url, DEPLOY, small_deployment(replicas=2), "gitops")
        code, obj = await apply(api.url, DEPLOY, small_deployment(replicas=2), "other")
        assert code == 200
        assert ("f:spec", "f:replicas") in owned(obj, "gitops") & owned(obj, "other")

    async def test_an_ordinary_update_takes_ownership_and_then_conflicts(self, api: Any) -> None:
        await apply(api.url, DEPLOY, small_deployment(replicas=2), "gitops")
        async with (
            aiohttp.ClientSession() as session,
            session.patch(
                f"{api.url}{DEPLOY}/scale",
                data=json.dumps({"spec": {"replicas": 4}}),
                params={"fieldManager": "kubectl-scale"},
                headers={"Content-Type": "application/merge-patch+json"},
            ) as rsp,
        ):
            assert rsp.status == 200
        obj = api.store.get("deployments", "web", "default")
        assert ("f:spec", "f:replicas") in owned(obj, "kubectl-scale")
        code, body = await apply(api.url, DEPLOY, small_deployment(replicas=2), "gitops")
        assert code == 409 and 'conflict with "kubectl-scale"' in body["message"]


class TestRemoval:
    async def test_fields_a_manager_stops_applying_are_removed(self, api: Any) -> None:
        await apply(api.url, DEPLOY, small_deployment(tier="web", team="a"), "gitops")
        _, obj = await apply(api.url, DEPLOY, small_deployment(tier="web"), "gitops")
        assert obj["metadata"]["labels"] == {"app": "web", "tier": "web"}

    async def test_a_list_whose_last_item_is_no_longer_applied_disappears(self, api: Any) -> None:
        with_env = small_deployment()
        container = with_env["spec"]["template"]["spec"]["containers"][0]
        container["env"] = [{"name": "MODE", "value": "fast"}]
        await apply(api.url, DEPLOY, with_env, "gitops")
        _, obj = await apply(api.url, DEPLOY, small_deployment(), "gitops")
        # Not "env: []": a real server never answers with an empty list (omitempty), and a
        # pod template hash must not tell the two apart.
        assert "env" not in obj["spec"]["template"]["spec"]["containers"][0]

    async def test_fields_another_manager_owns_are_kept(self, api: Any) -> None:
        await apply(api.url, DEPLOY, small_deployment(team="a"), "gitops")
        await apply(
            api.url,
            DEPLOY,
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web", "labels": {"team": "a"}},
            },
            "labeller",
        )
        _, obj = await apply(api.url, DEPLOY, small_deployment(), "gitops")
        assert obj["metadata"]["labels"]["team"] == "a"

    async def test_list_items_merge_by_key_across_managers(self, api: Any) -> None:
        await apply(api.url, DEPLOY, small_deployment(), "gitops")
        sidecar = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {"template": {"spec": {"containers": [{"name": "proxy", "image": "envoy"}]}}},
        }
        await apply(api.url, DEPLOY, sidecar, "mesh")
        _, obj = await apply(api.url, DEPLOY, small_deployment(), "gitops")
        assert [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]] == [
            "app",
            "proxy",
        ]

    async def test_custom_resource_map_lists_and_status(self, api: Any) -> None:
        await apply(
            api.url,
            WIDGET,
            widget("w", items=[{"key": "a", "value": 1}, {"key": "b", "value": 2}]),
            "one",
        )
        await apply(
            api.url,
            WIDGET,
            {
                "apiVersion": f"{GROUP}/v1",
                "kind": "Widget",
                "metadata": {"name": "w"},
                "spec": {"items": [{"key": "c", "value": 3}]},
            },
            "two",
        )
        _, obj = await apply(api.url, WIDGET, widget("w", items=[{"key": "a", "value": 1}]), "one")
        assert [i["key"] for i in obj["spec"]["items"]] == ["a", "c"]
        code, obj = await apply(
            api.url,
            WIDGET + "/status",
            {
                "apiVersion": f"{GROUP}/v1",
                "kind": "Widget",
                "metadata": {"name": "w"},
                "status": {"phase": "Ok"},
            },
            "ctl",
        )
        assert code == 200 and obj["status"] == {"phase": "Ok"}
        status_entry = next(e for e in obj["metadata"]["managedFields"] if e["manager"] == "ctl")
        assert status_entry["subresource"] == "status"
