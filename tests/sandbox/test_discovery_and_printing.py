"""Discovery documents, OpenAPI handshake, server-side Tables and JSONPath, audit and users."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from kubesandbox.apiserver.tables import JsonPathError, jsonpath

from .conftest import GROUP, deployment, widget

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


async def get(
    url: str,
    path: str,
    *,
    accept: str = "application/json",
    token: str | None = None,
    params: dict[str, str] | None = None,
) -> tuple[int, Any]:
    headers = {"Accept": accept}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{url}{path}", headers=headers, params=params) as rsp,
    ):
        text = await rsp.text()
        return rsp.status, json.loads(text) if text.startswith(("{", "[")) else text


class TestDiscovery:
    async def test_version_and_legacy_core_group(self, api: Any) -> None:
        code, version = await get(api.url, "/version")
        assert code == 200 and version["major"] == "1" and version["gitVersion"].startswith("v1.")
        code, versions = await get(api.url, "/api")
        assert versions["kind"] == "APIVersions" and versions["versions"] == ["v1"]
        code, core = await get(api.url, "/api/v1")
        resources = {r["name"]: r for r in core["resources"]}
        for name in (
            "namespaces",
            "pods",
            "services",
            "endpoints",
            "configmaps",
            "secrets",
            "serviceaccounts",
            "events",
        ):
            assert name in resources, name
        assert resources["namespaces"]["namespaced"] is False
        assert "pods/status" in resources
        assert set(resources["pods"]["verbs"]) >= {
            "get",
            "list",
            "watch",
            "create",
            "update",
            "patch",
            "delete",
        }

    @pytest.mark.parametrize(
        ("group_version", "expected"),
        [
            (
                "apps/v1",
                {
                    "deployments",
                    "deployments/status",
                    "deployments/scale",
                    "replicasets",
                    "daemonsets",
                },
            ),
            ("autoscaling/v2", {"horizontalpodautoscalers"}),
            ("networking.k8s.io/v1", {"ingresses", "ingressclasses"}),
            ("coordination.k8s.io/v1", {"leases"}),
            ("events.k8s.io/v1", {"events"}),
            (
                "apiextensions.k8s.io/v1",
                {"customresourcedefinitions", "customresourcedefinitions/status"},
            ),
            (
                "rbac.authorization.k8s.io/v1",
                {"roles", "clusterroles", "rolebindings", "clusterrolebindings"},
            ),
            ("policy/v1", {"poddisruptionbudgets"}),
        ],
    )
    async def test_builtin_groups(self, api: Any, group_version: str, expected: set[str]) -> None:
        code, listing = await get(api.url, f"/apis/{group_version}")
        assert code == 200 and listing["groupVersion"] == group_version
        assert expected <= {r["name"] for r in listing["resources"]}
        group = group_version.split("/")[0]
        code, doc = await get(api.url, f"/apis/{group}")
        assert doc["preferredVersion"]["groupVersion"] == group_version

    async def test_scale_subresource_advertises_the_scale_kind(self, api: Any) -> None:
        _, listing = await get(api.url, "/apis/apps/v1")
        scale = next(r for r in listing["resources"] if r["name"] == "deployments/scale")
        assert (scale["kind"], scale["group"], scale["version"]) == ("Scale", "autoscaling", "v1")

    async def test_unknown_paths_are_404_status(self, api: Any) -> None:
        for path in ("/apis/nope.io/v1", "/apis/apps/v1/nothings", "/api/v2", "/random"):
            code, body = await get(api.url, path)
            assert code == 404 and body["kind"] == "Status", path

    async def test_openapi_v3_advertises_field_validation_per_kind(self, api: Any) -> None:
        _, index = await get(api.url, "/openapi/v3")
        url = index["paths"][f"apis/{GROUP}/v1"]["serverRelativeURL"]
        _, doc = await get(api.url, url.split("?")[0])
        ops = [p["patch"] for p in doc["paths"].values()]
        assert ops[0]["x-kubernetes-group-version-kind"] == {
            "group": GROUP,
            "version": "v1",
            "kind": "Widget",
        }
        assert "fieldValidation" in {p["name"] for p in ops[0]["parameters"]}

    async def test_events_are_one_store_seen_through_two_groups(self, api: Any) -> None:
        api.store.create(
            "events",
            "default",
            {
                "metadata": {"name": "e1"},
                "reason": "Hello",
                "message": "world",
                "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
            },
            manager="t",
        )
        code, new = await get(api.url, "/apis/events.k8s.io/v1/namespaces/default/events/e1")
        assert code == 200
        assert (new["apiVersion"], new["note"], new["regarding"]["name"]) == (
            "events.k8s.io/v1",
            "world",
            "p",
        )
        code, listing = await get(
            api.url,
            "/apis/events.k8s.io/v1/namespaces/default/events",
            params={"fieldSelector": "regarding.name=p"},
        )
        assert [e["metadata"]["name"] for e in listing["items"]] == ["e1"]


class TestTables:
    async def test_crd_printer_columns(self, api: Any) -> None:
        api.store.create("widgets", "default", widget("w", size=3), manager="t")
        api.store.update_with(
            "widgets",
            "default",
            "w",
            lambda o: o.__setitem__(
                "status",
                {
                    "phase": "Running",
                    "conditions": [
                        {"type": "Other", "status": "False"},
                        {"type": "Ready", "status": "True"},
                    ],
                },
            ),
            subresource="status",
        )
        code, table = await get(
            api.url, f"/apis/{GROUP}/v1/namespaces/default/widgets", accept=TABLE
        )
        assert code == 200 and (table["kind"], table["apiVersion"]) == ("Table", "meta.k8s.io/v1")
        assert [c["name"] for c in table["columnDefinitions"]] == [
            "Name",
            "Size",
            "Phase",
            "Ready",
            "Age",
        ]
        row = table["rows"][0]
        assert row["cells"][:4] == ["w", 3, "Running", "True"]
        assert (
            row["object"]["kind"] == "PartialObjectMetadata"
            and row["object"]["metadata"]["name"] == "w"
        )

    async def test_deployment_columns_and_single_object_table(self, api: Any) -> None:
        api.store.create("deployments", "default", deployment("web", replicas=2), manager="t")
        code, table = await get(
            api.url,
            "/apis/apps/v1/namespaces/default/deployments/web",
            accept=TABLE,
            params={"includeObject": "Object"},
        )
        assert code == 200
        names = [c["name"] for c in table["columnDefinitions"]]
        assert names[:5] == ["Name", "Ready", "Up-to-date", "Available", "Age"]
        cells = table["rows"][0]["cells"]
        assert cells[:4] == ["web", "0/2", 0, 0]
        assert table["rows"][0]["object"]["kind"] == "Deployment"

    def test_jsonpath_subset(self) -> None:
        doc = {"a": {"b": [{"t": "x", "v": 1}, {"t": "y", "v": 2, "ok": True}]}, "m": {"k.d": 5}}
        assert jsonpath(doc, ".a.b[1].v") == [2]
        assert jsonpath(doc, "{.a.b[*].t}") == ["x", "y"]
        assert jsonpath(doc, '.a.b[?(@.t=="y")].v') == [2]
        assert jsonpath(doc, ".a.b[?(@.t!='y')].v") == [1]
        assert jsonpath(doc, ".a.b[?(@.ok)].t") == ["y"]
        assert jsonpath(doc, "$.m['k.d']") == [5]
        assert jsonpath(doc, ".missing.path") == []
        with pytest.raises(JsonPathError):
            jsonpath(doc, ".a..b")


class TestAudit:
    async def test_requests_are_attributed_to_the_tokens_user_with_rbac_verbs(
        self, api: Any
    ) -> None:
        token = api.token_for("canary-controller")
        await get(api.url, f"/apis/{GROUP}/v1/namespaces/default/widgets", token=token)
        await get(api.url, f"/apis/{GROUP}/v1/namespaces/default/widgets/missing", token=token)
        await get(
            api.url,
            "/apis/apps/v1/deployments",
            token=token,
            params={"watch": "1", "timeoutSeconds": "0.1"},
        )
        await get(api.url, "/api/v1/namespaces/default/configmaps", token="unknown-token")
        mine = [e for e in api.audit if e.user == "canary-controller" and e.resource]
        assert [(e.verb, e.api_group, e.resource, e.namespace, e.name, e.code) for e in mine] == [
            ("list", GROUP, "widgets", "default", "", 200),
            ("get", GROUP, "widgets", "default", "missing", 404),
            ("watch", "apps", "deployments", "", "", 200),
        ]
        assert api.audit[-1].user == "admin"

    async def test_the_audit_log_can_be_written_as_json_lines(
        self, sandbox_factory: Any, tmp_path: Any
    ) -> None:
        path = tmp_path / "audit.jsonl"
        sb = await sandbox_factory(simulate_workloads=False, audit_path=path)
        await get(sb.url, "/api/v1/namespaces/default/pods/nope")
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        assert (
            lines[-1]["verb"] == "get"
            and lines[-1]["resource"] == "pods"
            and lines[-1]["code"] == 404
        )


class TestTableWatch:
    async def test_watch_events_carry_one_row_tables(self, api: Any) -> None:
        rv = str(api.store.resource_version)
        api.store.create("widgets", "default", widget("a", size=2), manager="t")
        api.store.create("widgets", "default", widget("b", size=3), manager="t")
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"{api.url}/apis/{GROUP}/v1/namespaces/default/widgets",
                params={"watch": "true", "resourceVersion": rv, "timeoutSeconds": "0.3"},
                headers={"Accept": TABLE},
            ) as rsp,
        ):
            events = [json.loads(line) async for line in rsp.content if line.strip()]
        assert [e["type"] for e in events] == ["ADDED", "ADDED"]
        assert all(e["object"]["kind"] == "Table" for e in events)
        assert [e["object"]["rows"][0]["cells"][:2] for e in events] == [["a", 2], ["b", 3]]
        assert "columnDefinitions" in events[0]["object"]
        assert "columnDefinitions" not in events[1]["object"]
