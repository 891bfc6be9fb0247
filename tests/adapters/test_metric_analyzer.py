"""The metric-analysis seam reads each spec once: the Canary's checks, the parsed MetricTemplate.

A MetricTemplate fetched from the cluster goes through ``parse_metric_template``
(a bad one is an Error result naming its field, not a query that fails later);
its parsed provider, with the Secret it names, reaches the metric server; the
Canary's own ``MetricCheck`` runs with the template's query.
"""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx

from canary.adapters.analysis import MetricAnalyzer
from canary.core import Outcome
from canary.model import Canary, parse_canary
from tests.analysis.fakes import CountsProvider

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
PROMETHEUS = "http://prom.test:9090"


class Objects:
    """Just enough of the Kube port for the analyzer: ``get`` from a dict of objects."""

    def __init__(self, *objects: dict[str, Any]) -> None:
        self.objects = {
            (o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objects
        }

    async def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        return self.objects.get((kind, namespace or "", name))


def template(spec: dict[str, Any], *, namespace: str = "ops") -> dict[str, Any]:
    return {
        "apiVersion": "canary.gitops.dev/v1beta1",
        "kind": "MetricTemplate",
        "metadata": {"name": "error-rate", "namespace": namespace},
        "spec": spec,
    }


def secret(name: str, namespace: str, **values: str) -> dict[str, Any]:
    data = {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "data": data,
    }


def canary_with(metric: dict[str, Any]) -> Canary:
    return parse_canary(
        {
            "apiVersion": "canary.gitops.dev/v1beta1",
            "kind": "Canary",
            "metadata": {"name": "podinfo", "namespace": "test"},
            "spec": {
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                "service": {"port": 9898},
                "analysis": {
                    "interval": "1m",
                    "threshold": 2,
                    "stepWeight": 10,
                    "metrics": [metric],
                },
            },
        }
    )


ERRORS = {
    "name": "errors",
    "templateRef": {"name": "error-rate", "namespace": "ops"},
    "templateVariables": {"code": "5.."},
    "thresholdRange": {"max": 1},
}
QUERY = 'sum(rate(http_requests_total{app="{{ target }}",code=~"{{ variables.code }}"}[{{ interval }}]))'


@respx.mock
async def test_a_template_metric_runs_the_templates_query_with_its_secret() -> None:
    route = respx.get(f"{PROMETHEUS}/api/v1/query").mock(
        return_value=httpx.Response(
            200,
            json={
                "status": "success",
                "data": {"resultType": "vector", "result": [{"metric": {}, "value": [0, "0.5"]}]},
            },
        )
    )
    kube = Objects(
        template(
            {
                "provider": {"address": PROMETHEUS, "secretRef": {"name": "prom-auth"}},
                "query": QUERY,
            }
        ),
        secret("prom-auth", "ops", token="tok-1"),
    )
    [result] = await MetricAnalyzer(kube).analyze(canary_with(ERRORS), NOW, ())  # type: ignore[arg-type]
    assert result.outcome is Outcome.PASS, result.summary
    request = route.calls.last.request
    assert (
        request.url.params["query"]
        == 'sum(rate(http_requests_total{app="podinfo",code=~"5.."}[1m]))'
    )
    assert request.headers["authorization"] == "Bearer tok-1"


async def test_an_invalid_metric_template_is_an_error_result_naming_its_field() -> None:
    kube = Objects(template({"provider": {"address": PROMETHEUS}}))
    [result] = await MetricAnalyzer(kube).analyze(canary_with(ERRORS), NOW, ())  # type: ignore[arg-type]
    assert result.outcome is Outcome.ERROR
    assert (
        "MetricTemplate ops/error-rate is invalid" in result.summary
        and "spec.query" in result.summary
    )


@pytest.mark.parametrize(
    ("objects", "wanted"),
    [
        ((), "MetricTemplate ops/error-rate not found (spec.analysis.metrics[0].templateRef)"),
        (
            (template({"provider": {"secretRef": {"name": "gone"}}, "query": QUERY}),),
            "Secret ops/gone of MetricTemplate error-rate not found",
        ),
    ],
)
async def test_a_missing_template_or_secret_is_an_error_result(
    objects: tuple[dict[str, Any], ...], wanted: str
) -> None:
    [result] = await MetricAnalyzer(Objects(*objects)).analyze(canary_with(ERRORS), NOW, ())  # type: ignore[arg-type]
    assert (result.outcome, result.summary) == (Outcome.ERROR, wanted)


async def test_a_dry_run_metric_is_advisory_whatever_became_of_it() -> None:
    advisory = {**ERRORS, "dryRun": True}
    [result] = await MetricAnalyzer(Objects()).analyze(canary_with(advisory), NOW, ())  # type: ignore[arg-type]
    assert result.outcome is Outcome.ERROR and result.advisory


def test_a_verdicts_hold_flags_and_request_counts_reach_the_core() -> None:
    from analysis import CompareTest, Comparison, Verdict
    from canary.adapters.analysis import _result

    metric = canary_with(
        {"name": "request-success-rate", "compare": {"maxInconclusive": 2}, "dryRun": True}
    ).spec.analysis_or_default.metrics[0]
    comparison = Comparison(
        test=CompareTest.ERROR_RATE,
        canary_value=0.0,
        primary_value=0.1,
        difference=None,
        ratio=None,
        p_value=1.0,
        likelihood_ratio=1.0,
        canary_samples=40,
        primary_samples=380,
        needed_samples=1200,
    )
    verdict = Verdict(
        metric="request-success-rate",
        outcome=Outcome.INCONCLUSIVE,
        summary="too little data",
        evaluated_at=NOW,
        judge="compare",
        comparison=comparison,
        conclusive=True,
        warming_up=True,
        may_advance=True,
        stalled=True,
    )
    result = _result(metric, verdict)
    assert (result.warming_up, result.may_advance, result.stalled, result.advisory) == (
        True,
        True,
        True,
        True,
    )
    assert (result.samples, result.primary_samples, result.needed_samples) == (40, 380, 1200)
    assert not result.fail_fast  # an advisory metric never rolls back at once
    assert result.details["comparison"]["neededSamples"] == 1200


@pytest.mark.parametrize(
    ("test", "words"),
    [
        (
            {"test": "errorRate", "requestsQuery": "count:x", "errorsQuery": "count:y"},
            "a datadog provider answers",
        ),
        ({"test": "latency", "bucketsQuery": "b"}, "compare latency reads Prometheus histogram"),
    ],
)
async def test_a_compare_on_a_provider_that_cannot_count_the_window_is_refused_by_name(
    test: dict[str, Any], words: str
) -> None:
    kube = Objects(
        template({"provider": {"type": "datadog", "secretRef": {"name": "dd"}}, "query": "avg:x"}),
        secret("dd", "ops", datadog_api_key="k" * 32, datadog_application_key="a" * 40),
    )
    metric = {"name": "errors", "templateRef": {"name": "error-rate", "namespace": "ops"}}
    [result] = await MetricAnalyzer(kube).analyze(  # type: ignore[arg-type]
        canary_with({**metric, "compare": test}), NOW, ()
    )
    assert result.outcome is Outcome.ERROR
    assert result.summary.startswith("metric errors (MetricTemplate ops/error-rate): "), result
    assert words in result.summary and "thresholdRange" in result.summary


class ObjectsToRead(Objects):
    async def read(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        return await self.get(api_version, kind, name, namespace)


@respx.mock
async def test_a_knative_canarys_route_is_its_latest_created_revision() -> None:
    route = respx.get(f"{PROMETHEUS}/api/v1/query").mock(
        return_value=httpx.Response(
            200,
            json={
                "status": "success",
                "data": {"resultType": "vector", "result": [{"metric": {}, "value": [0, "99.9"]}]},
            },
        )
    )
    ksvc = {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": "podinfo", "namespace": "test"},
        "status": {"latestCreatedRevisionName": "podinfo-00002"},
    }
    canary = parse_canary(
        {
            "apiVersion": "canary.gitops.dev/v1beta1",
            "kind": "Canary",
            "metadata": {"name": "podinfo", "namespace": "test"},
            "spec": {
                "provider": "knative",
                "targetRef": {
                    "apiVersion": "serving.knative.dev/v1",
                    "kind": "Service",
                    "name": "podinfo",
                },
                "analysis": {
                    "interval": "1m",
                    "threshold": 2,
                    "stepWeight": 10,
                    "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}}],
                },
            },
        }
    )
    analyzer = MetricAnalyzer(ObjectsToRead(ksvc), default_address=PROMETHEUS)  # type: ignore[arg-type]
    [result] = await analyzer.analyze(canary, NOW, ())
    assert result.outcome is Outcome.PASS, result.summary
    assert (
        'envoy_cluster_name=~"test/podinfo-00002"' in route.calls.last.request.url.params["query"]
    )


async def test_a_providers_defect_fails_its_check_and_not_the_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import canary.adapters.analysis as seam

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise TypeError("'int' object is not iterable: secret-ish payload")

    monkeypatch.setattr(seam, "evaluate", broken)
    [result] = await MetricAnalyzer(Objects()).analyze(  # type: ignore[arg-type]
        canary_with({"name": "request-success-rate", "thresholdRange": {"min": 99}}), NOW, ()
    )
    assert result.outcome is Outcome.ERROR
    assert result.summary == (
        "metric request-success-rate: the answer could not be read (TypeError)"
    )


class _Stalls(CountsProvider):
    """Answers a 10% canary failing 5% of its requests against a primary failing 1%, and
    never answers while ``stalled`` is set (the analyzer's own timeout ends the wait)."""

    def __init__(self) -> None:
        super().__init__(self._counts)
        self.stalled = False

    @staticmethod
    def _counts(query: str, primary: bool, errors: bool) -> float:
        requests = 9000.0 if primary else 1000.0
        return requests * (0.01 if primary else 0.05) if errors else requests

    async def run_query(self, query: str, *, at: datetime | None = None) -> float:
        if self.stalled:
            await asyncio.Event().wait()
        return await super().run_query(query, at=at)


async def test_a_check_that_times_out_keeps_the_judges_evidence_for_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An Error made outside the judge (here the analyzer's timeout) stored no verdict, and
    # the next check started a new run: its warm-up again, the evidence and the minute
    # before the error gone. It carries the last verdict on, as the judge does its own.
    import canary.adapters.analysis as seam

    provider = _Stalls()
    monkeypatch.setattr(seam, "make_provider", lambda config, kube=None: provider)
    canary = canary_with({"name": "request-success-rate", "interval": "1m", "compare": {}})
    analyzer = MetricAnalyzer(Objects(), timeout_seconds=0.2)  # type: ignore[arg-type]
    previous: list[dict[str, Any]] = []
    results = []
    for minute in range(4):
        provider.stalled = minute == 2
        [result] = await analyzer.analyze(canary, NOW + timedelta(minutes=minute), previous)
        results.append(result)
        previous = [{"name": result.name, "details": result.details}]
    warm, judged, timed_out, after = results
    assert warm.warming_up and judged.outcome is not Outcome.ERROR
    assert timed_out.outcome is Outcome.ERROR and "did not answer within" in timed_out.summary
    assert timed_out.details == judged.details  # the evidence, kept as it was
    assert not after.warming_up  # the same run goes on: no second warm-up
    assert after.details["state"]["started"] == judged.details["state"]["started"]
    assert after.details["state"]["windows"] == 2  # the window spans the minute lost
    assert after.outcome is Outcome.FAIL and after.fail_fast
