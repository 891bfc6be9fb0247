"""What may leave a vendor provider's HTTP client (``analysis._http.VendorHTTP``, shared by
Datadog, Graphite, InfluxDB, New Relic, Splunk, the web provider and external metrics):
only the package's errors, never later than the timeout; as for Prometheus
(tests/analysis/test_prometheus_boundary.py).
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from analysis import ProviderConfig, ProviderUnavailableError, QueryTimeoutError
from analysis._graphite import GraphiteProvider
from tests.http_fixtures import never_finishing_url

# Not a certificate, but shaped like one: its content must not reach a message.
BAD_CA = "-----BEGIN CERTIFICATE-----\nQ0VSVC1DT05URU5ULTQyCg==\n-----END CERTIFICATE-----\n"


async def test_a_bad_ca_certificate_is_an_error_naming_it_not_an_ssl_error() -> None:
    config = ProviderConfig(type="graphite", address="https://graphite.test", ca_data=BAD_CA)
    with pytest.raises(ProviderUnavailableError) as info:
        await GraphiteProvider(config).run_query("target=sumSeries(a.b)&from=-60s")
    message = str(info.value)
    assert message.startswith("cannot check the TLS certificate of Graphite at ")
    assert "ca_data is not a PEM certificate OpenSSL can load (" in message
    assert "VC1DT05URU5U" not in message and "_ssl.c" not in message


@pytest.mark.parametrize("shared_client", [False, True], ids=["own-client", "shared-client"])
async def test_a_server_that_never_finishes_its_answer_times_out(shared_client: bool) -> None:
    # httpx's timeout bounds each read: a body sent a byte at a time, each well within it,
    # kept the query going for as long as the server liked.
    async with never_finishing_url() as url, httpx.AsyncClient() as client:
        config = ProviderConfig(type="graphite", address=url, timeout_seconds=0.5)
        provider = GraphiteProvider(config, client=client if shared_client else None)
        # Only the provider's own 0.5 s deadline can end the call; the outer limit just keeps
        # a broken provider from hanging the suite.
        with pytest.raises(QueryTimeoutError) as info:
            await asyncio.wait_for(provider.run_query("target=sumSeries(a.b)&from=-60s"), 60)
    assert "did not answer within 0.5s" in str(info.value)
