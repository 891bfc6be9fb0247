"""The metric-analysis seam: Canary metrics → `analysis` verdicts → core results.

For each ``analysis.metrics[]`` entry it resolves what Flagger resolves (the
MetricTemplate and its provider Secret, the Canary's ``metricsServer`` or the
controller's default Prometheus), asks the `analysis` package to query and judge
it, and translates the verdict into the core's `MetricResult`. Nothing is parsed
twice: the metric's `MetricCheck` is the one the Canary parser made, and the
MetricTemplate is read by `canary.model.parse_metric_template`, whose
`ProviderSpec` goes to `analysis.provider_config` as it is. Every metric of a
tick runs concurrently, each with its own timeout, so one slow query delays
only its own canary. A missing template, a missing Secret or a bad query is a
result (Error/NoData with a sentence saying what and where), never an
exception: the core counts it as a failed check and quotes the sentence.
Secret values are handed to the provider and never logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from analysis import (
    DEFAULT_PROMETHEUS_ADDRESS,
    AnalysisError,
    KubeReader,
    MetricCheck,
    MetricProvider,
    ProviderConfig,
    ProviderSpec,
    QueryContext,
    Verdict,
    compare_problem,
    evaluate,
    make_provider,
    provider_config,
    render_query,
)
from canary.adapters.kube_reader import SameNamespaceReader, kube_reader_for
from canary.adapters.secrets import read_secret
from canary.core import MetricResult, Outcome, threshold_text
from canary.model import (
    API_VERSION,
    Canary,
    MetricSpec,
    MetricTemplate,
    ObjectRef,
    SpecError,
    parse_metric_template,
)
from canary.ports import Kube, KubeError

log = logging.getLogger("canary.analysis")

METRIC_TIMEOUT_SECONDS = 30.0


class MetricAnalyzer:
    def __init__(
        self,
        kube: Kube,
        *,
        default_address: str = DEFAULT_PROMETHEUS_ADDRESS,
        default_provider: str = "kubernetes",
        timeout_seconds: float = METRIC_TIMEOUT_SECONDS,
        kube_reader: KubeReader | None = None,
        same_namespace_only: bool = False,
    ) -> None:
        self.kube = kube
        # The Kubernetes API by path, for the keptn and externalmetrics providers.
        self.kube_reader = kube_reader if kube_reader is not None else kube_reader_for(kube)
        self.same_namespace_only = same_namespace_only  # --no-cross-namespace-refs
        self.default_address = default_address
        self.default_provider = default_provider
        self.timeout_seconds = timeout_seconds

    async def analyze(
        self,
        canary: Canary,
        now: datetime,
        previous: Sequence[Mapping[str, Any]],
        *,
        last_step: bool = True,
    ) -> tuple[MetricResult, ...]:
        before = {str(p.get("name")): p for p in previous}
        metrics = canary.spec.analysis_or_default.metrics
        results = await asyncio.gather(
            *(
                self._guarded(canary, metric, now, before.get(metric.name), last_step)
                for metric in metrics
            )
        )
        # A dryRun metric is advisory whatever became of it (an error included); an Error
        # made here, outside the judge, carries the judge's evidence on (_keeping_evidence).
        return tuple(
            replace(_keeping_evidence(result, before.get(metric.name)), advisory=metric.dry_run)
            for metric, result in zip(metrics, results, strict=True)
        )

    async def _guarded(
        self,
        canary: Canary,
        metric: MetricSpec,
        now: datetime,
        previous: Mapping[str, Any] | None,
        last_step: bool,
    ) -> MetricResult:
        try:
            return await asyncio.wait_for(
                self._one(canary, metric, now, previous, last_step), self.timeout_seconds
            )
        except TimeoutError:
            return MetricResult(
                metric.name,
                Outcome.ERROR,
                f"metric {metric.name} did not answer within {self.timeout_seconds:g}s",
            )
        except AnalysisError as exc:
            return MetricResult(metric.name, Outcome.ERROR, f"metric {metric.name}: {exc}")
        except KubeError as exc:
            return MetricResult(metric.name, Outcome.ERROR, f"metric {metric.name}: {exc}")
        except Exception as exc:  # a provider's defect must fail one check, not the pass
            # The message may quote what a metric server sent: only its type is shown.
            log.warning(
                "metric %s of %s/%s: unexpected %s",
                metric.name,
                canary.namespace,
                canary.name,
                type(exc).__name__,
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
            return MetricResult(
                metric.name,
                Outcome.ERROR,
                f"metric {metric.name}: the answer could not be read ({type(exc).__name__})",
            )

    async def _one(
        self,
        canary: Canary,
        metric: MetricSpec,
        now: datetime,
        previous: Mapping[str, Any] | None,
        last_step: bool,
    ) -> MetricResult:
        check: MetricCheck = metric.check
        provider_spec = ProviderSpec()
        secret: dict[str, str] | None = None
        ref = metric.template_ref
        if ref is not None:
            namespace = ref.namespace or canary.namespace
            found = await self._template(metric, ref, namespace)
            if isinstance(found, MetricResult):
                return found
            check = check.with_template_query(found.query)
            provider_spec = found.provider
            if check.compare is not None:
                problem = compare_problem(provider_spec.type, check.compare.test.value)
                if problem is not None:
                    return MetricResult(
                        metric.name,
                        Outcome.ERROR,
                        f"metric {metric.name} (MetricTemplate {namespace}/{ref.name}): {problem}",
                    )
            if provider_spec.secret_name is not None:
                secret = await self._secret(namespace, provider_spec.secret_name)
                if secret is None:
                    return MetricResult(
                        metric.name,
                        Outcome.ERROR,
                        f"Secret {namespace}/{provider_spec.secret_name} of MetricTemplate {ref.name} not found",
                    )
        ctx = await self._query_context(canary)

        def render(template: str) -> str:
            return render_query(
                template, ctx, interval=check.interval, variables=check.variables_map
            )

        config: ProviderConfig = provider_config(
            provider_spec,
            path=f"MetricTemplate {ref.name} spec.provider" if ref else "spec.metricsServer",
            secret=secret,
            default_address=canary.spec.metrics_server or self.default_address,
            interval=check.interval,
            render=render,
        )
        reader = self.kube_reader
        if reader is not None and self.same_namespace_only:
            reader = SameNamespaceReader(reader, canary.namespace)
        provider: MetricProvider = make_provider(config, kube=reader)
        verdict = await evaluate(
            check,
            ctx,
            provider,
            now=now,
            previous=_previous_verdict(previous),
            last_step=last_step,
        )
        return _result(metric, verdict)

    async def _query_context(self, canary: Canary) -> QueryContext:
        """The Canary's names for its queries; for a Knative target, ``{{ route }}`` is its
        latest created revision, as in Flagger (Knative's metrics are labelled by revision)."""
        ctx = canary.query_context(self.default_provider)
        target = canary.spec.target_ref
        if ctx.provider != "knative" or not target.api_version.startswith("serving.knative.dev/"):
            return ctx
        service = await self.kube.read(
            target.api_version, target.kind, target.name, canary.namespace
        )
        revision = ((service or {}).get("status") or {}).get("latestCreatedRevisionName")
        return replace(ctx, route=str(revision)) if revision else ctx

    async def _template(
        self, metric: MetricSpec, ref: ObjectRef, namespace: str
    ) -> MetricTemplate | MetricResult:
        """The parsed MetricTemplate of ``ref``, or the Error result saying why there is none."""
        doc = await self.kube.get(API_VERSION, "MetricTemplate", ref.name, namespace)
        if doc is None:
            return MetricResult(
                metric.name,
                Outcome.ERROR,
                f"MetricTemplate {namespace}/{ref.name} not found ({metric.path}.templateRef)",
            )
        try:
            return parse_metric_template(doc)
        except SpecError as exc:
            return MetricResult(
                metric.name,
                Outcome.ERROR,
                f"MetricTemplate {namespace}/{ref.name} is invalid: {exc}",
            )

    async def _secret(self, namespace: str, name: str) -> dict[str, str] | None:
        return await read_secret(self.kube, name, namespace)


def _result(metric: MetricSpec, verdict: Verdict) -> MetricResult:
    """The core's view of a verdict; the whole verdict rides along for the status."""
    comparison = verdict.comparison
    return MetricResult(
        name=metric.name,
        outcome=verdict.outcome,
        summary=verdict.summary,
        value=verdict.value,
        threshold=threshold_text(verdict.min, verdict.max, verdict.unit),
        primary_value=verdict.primary_value,
        details=verdict.to_status(),
        fail_fast=verdict.conclusive and not metric.dry_run,
        warming_up=verdict.warming_up,
        may_advance=verdict.may_advance,
        stalled=verdict.stalled,
        advisory=metric.dry_run,
        samples=comparison.canary_samples if comparison is not None else None,
        primary_samples=comparison.primary_samples if comparison is not None else None,
        needed_samples=comparison.needed_samples if comparison is not None else None,
    )


def _keeping_evidence(result: MetricResult, previous: Mapping[str, Any] | None) -> MetricResult:
    """An Error made here, outside the judge (a timeout, a MetricTemplate or Secret not found,
    the API's error), carries the metric's last verdict, and the judge's evidence in it, on
    to the next check, as the judge carries it over its own failed queries.

    Why: stored without it, the next check found no previous verdict and started a new run:
    the evidence so far was gone, the warm-up began again (hiding a failing
    ``thresholdRange`` for an interval), the minute before the error was never counted, and
    the judge's ``maxInconclusive`` count began again, so a stall might never come. A canary
    failing 5% of its requests against 1% was rolled back at minute 8 with two timeouts on
    the way, not at minute 3. The next window starts where the last judged one ended.
    """
    if result.details:
        return result
    kept = _previous_verdict(previous)
    return result if kept is None else replace(result, details=kept)


def _previous_verdict(previous: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The verdict we stored last tick (status.analysis[].details)."""
    if not previous:
        return None
    details = previous.get("details")
    return details if isinstance(details, Mapping) and details.get("metric") else None
