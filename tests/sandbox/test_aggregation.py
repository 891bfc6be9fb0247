"""API aggregation: an APIService makes the sandbox proxy a group-version to a Service.

A loopback external-metrics adapter (tests/vendors/externalmetrics.py) is registered the way
an adapter's installation does it — a selector-less Service, its Endpoints at 127.0.0.1 and
the ``v1beta1.external.metrics.k8s.io`` APIService — and read through the sandbox with httpx
and the Kubernetes client, as a controller would read it from a real cluster.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from kubesandbox import Sandbox
from tests.vendors.externalmetrics import (
    ADAPTER_NAMESPACE,
    ADAPTER_SERVICE,
    API_PATH,
    APISERVICE_NAME,
    GROUP,
    METRIC,
    ExternalMetricsAdapter,
)

METRIC_PATH = f"{API_PATH}/namespaces/test/{METRIC}"


@pytest.fixture
async def adapter() -> AsyncIterator[ExternalMetricsAdapter]:
    server = ExternalMetricsAdapter()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def registered(sandbox: Sandbox, adapter: ExternalMetricsAdapter) -> ExternalMetricsAdapter:
    for obj in adapter.registration():
        await sandbox.apply_manifest(obj)
    return adapter


@pytest.fixture
async def client(sandbox: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {sandbox.token_for('metrics-reader')}"}
    async with httpx.AsyncClient(base_url=sandbox.url, headers=headers) as http:
        yield http


async def test_a_registered_metric_is_read_through_the_api_server(
    registered: ExternalMetricsAdapter, client: httpx.AsyncClient
) -> None:
    registered.answer(0.25)
    response = await client.get(METRIC_PATH, params={"labelSelector": "app=podinfo"})
    assert response.status_code == 200
    body = response.json()
    assert body["kind"] == "ExternalMetricValueList"
    assert [i["value"] for i in body["items"]] == ["250m"]
    seen = registered.requests[-1]
    assert seen.path == METRIC_PATH and seen.param("labelSelector") == "app=podinfo"
    # kube-aggregator's request-header authentication: the caller's name, not its token.
    assert seen.headers.get("X-Remote-User") == "metrics-reader"
    assert "Authorization" not in seen.headers


async def test_discovery_lists_the_aggregated_group_and_proxies_its_resource_list(
    registered: ExternalMetricsAdapter, client: httpx.AsyncClient
) -> None:
    groups = (await client.get("/apis")).json()["groups"]
    external = next(g for g in groups if g["name"] == GROUP)
    assert external["preferredVersion"] == {
        "groupVersion": f"{GROUP}/v1beta1",
        "version": "v1beta1",
    }
    group = (await client.get(f"/apis/{GROUP}")).json()
    assert group["kind"] == "APIGroup" and group["versions"][0]["version"] == "v1beta1"
    listing = (await client.get(API_PATH)).json()
    assert listing["kind"] == "APIResourceList"
    assert [r["name"] for r in listing["resources"]] == [METRIC]
    assert registered.requests[-1].path == API_PATH


async def test_the_kubernetes_client_reads_the_aggregated_api(
    registered: ExternalMetricsAdapter, kube_api: Any
) -> None:
    registered.answer_quantity("2Mi")
    request = await kube_api.param_serialize(
        "GET",
        METRIC_PATH,
        query_params=[("labelSelector", "app=podinfo")],
        header_params={"Accept": "application/json"},
        auth_settings=["BearerToken"],
    )
    rest = await kube_api.call_api(*request)
    body = json.loads(await rest.response.read())
    assert rest.response.status == 200
    assert body["items"][0]["value"] == "2Mi"
    assert registered.requests[-1].headers.get("X-Remote-User") == "admin"


async def test_the_adapters_own_errors_come_back_as_they_are(
    registered: ExternalMetricsAdapter, client: httpx.AsyncClient
) -> None:
    unknown = await client.get(f"{API_PATH}/namespaces/test/nope")
    assert unknown.status_code == 404
    assert unknown.json()["reason"] == "NotFound" and "nope" in unknown.json()["message"]
    bad = await client.get(METRIC_PATH, params={"labelSelector": "app in (a"})
    assert bad.status_code == 400 and bad.json()["reason"] == "BadRequest"


async def test_a_backend_that_is_down_is_a_503_status(
    registered: ExternalMetricsAdapter, client: httpx.AsyncClient
) -> None:
    await registered.close()
    response = await client.get(METRIC_PATH)
    assert response.status_code == 503
    body = response.json()
    assert body["kind"] == "Status" and body["reason"] == "ServiceUnavailable"
    assert body["message"].startswith("the server is currently unable to handle the request")
    assert f"{ADAPTER_NAMESPACE}/{ADAPTER_SERVICE}" in body["message"]


async def test_a_service_without_endpoints_is_a_503_naming_it(
    sandbox: Sandbox, adapter: ExternalMetricsAdapter, client: httpx.AsyncClient
) -> None:
    namespace, service, _endpoints, apiservice = adapter.registration()
    for obj in (namespace, service, apiservice):
        await sandbox.apply_manifest(obj)
    response = await client.get(METRIC_PATH)
    assert response.status_code == 503
    assert "no endpoints available" in response.json()["message"]
    assert adapter.requests == []


async def test_a_missing_service_is_a_503(
    sandbox: Sandbox, adapter: ExternalMetricsAdapter, client: httpx.AsyncClient
) -> None:
    await sandbox.apply_manifest(adapter.apiservice())
    response = await client.get(METRIC_PATH)
    assert response.status_code == 503
    assert (
        f'service "{ADAPTER_NAMESPACE}/{ADAPTER_SERVICE}" not found' in response.json()["message"]
    )


async def test_endpoints_off_this_machine_are_never_proxied_to(
    sandbox: Sandbox, adapter: ExternalMetricsAdapter, client: httpx.AsyncClient
) -> None:
    objects = adapter.registration()
    objects[2]["subsets"][0]["addresses"] = [{"ip": "10.0.0.7"}]
    for obj in objects:
        await sandbox.apply_manifest(obj)
    response = await client.get(METRIC_PATH)
    assert response.status_code == 503
    assert "10.0.0.7" in response.json()["message"] and "loopback" in response.json()["message"]


async def test_an_endpoint_slice_resolves_the_service_too(
    sandbox: Sandbox, adapter: ExternalMetricsAdapter, client: httpx.AsyncClient
) -> None:
    namespace, service, _endpoints, apiservice = adapter.registration()
    for obj in (namespace, service, apiservice):
        await sandbox.apply_manifest(obj)
    await sandbox.apply_manifest(
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": f"{ADAPTER_SERVICE}-abcde",
                "namespace": ADAPTER_NAMESPACE,
                "labels": {"kubernetes.io/service-name": ADAPTER_SERVICE},
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}],
            "ports": [{"name": "api", "port": adapter.port, "appProtocol": "http"}],
        }
    )
    adapter.answer(3)
    response = await client.get(METRIC_PATH)
    assert response.status_code == 200 and response.json()["items"][0]["value"] == "3"


async def test_removing_the_apiservice_unregisters_the_group(
    sandbox: Sandbox, registered: ExternalMetricsAdapter, client: httpx.AsyncClient
) -> None:
    assert (await client.get(METRIC_PATH)).status_code == 200
    deleted = await client.delete(f"/apis/apiregistration.k8s.io/v1/apiservices/{APISERVICE_NAME}")
    assert deleted.status_code == 200
    assert (await client.get(METRIC_PATH)).status_code == 404
    groups = (await client.get("/apis")).json()["groups"]
    assert GROUP not in {g["name"] for g in groups}


async def test_apiservices_are_a_cluster_scoped_builtin(client: httpx.AsyncClient) -> None:
    listing = (await client.get("/apis/apiregistration.k8s.io/v1")).json()
    entry = next(r for r in listing["resources"] if r["name"] == "apiservices")
    assert entry["kind"] == "APIService" and entry["namespaced"] is False


async def test_the_audit_log_names_the_aggregated_resource(
    sandbox: Sandbox, registered: ExternalMetricsAdapter, client: httpx.AsyncClient
) -> None:
    await client.get(METRIC_PATH)
    entry = sandbox.audit[-1]
    assert (entry.api_group, entry.resource, entry.namespace, entry.verb, entry.code) == (
        GROUP,
        METRIC,
        "test",
        "list",
        200,
    )
