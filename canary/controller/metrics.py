"""The controller's own Prometheus metrics.

Flagger's metric names and meanings (reference/flagger.md 6.1) under our
prefix ``canary_engine_`` (``flagger_canary_status`` becomes
``canary_engine_canary_status``, with the same 0 running / 1 ok / 2 failed
encoding), plus ours: each metric's threshold bounds, decisions by outcome, Git reverts,
notification failures and tick lateness. Labels are bounded (no revision or message labels).

With ``flagger=True`` (``canary run --flagger-metrics``, the default) the same
registry also serves Flagger's own families under Flagger's names
(``flagger_canary_status``, ``flagger_info``, ...; :class:`FlaggerMetrics`), with
Flagger's label names and values, so Flagger's dashboards and alerts keep working.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from analysis.spec import MetricKind
from canary.controller.series import GaugeFamily, HistogramFamily
from canary.model import Canary, CanaryStatus, Phase

PREFIX = "canary_engine"
FLAGGER_PREFIX = "flagger"
REQUEST_DURATION = "request-duration"  # the builtin Flagger records in seconds

# flagger_canary_phase: one value per phase (Flagger's canaryPhaseValues).
_FLAGGER_PHASES = {
    Phase.INITIALIZING: 0,
    Phase.INITIALIZED: 1,
    Phase.WAITING: 2,
    Phase.PROGRESSING: 3,
    Phase.WAITING_PROMOTION: 4,
    Phase.PROMOTING: 5,
    Phase.FINALISING: 6,
    Phase.SUCCEEDED: 7,
    Phase.FAILED: 8,
    Phase.TERMINATING: 9,
    Phase.TERMINATED: 10,
}


class FlaggerMetrics:
    """Flagger's families (``pkg/metrics/recorder.go``): names, help, labels and values.

    Where Flagger's meaning differs from ours, Flagger's wins here: ``name`` is the
    target's name (``spec.targetRef.name``) in every family, ``flagger_canary_status``
    is 0 only while Progressing, and ``request-duration`` is recorded in seconds.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        version: str,
        provider: str,
        series: CollectorRegistry | None = None,
    ) -> None:
        """``series``: where the per-Canary families are registered (``registry`` if None;
        `Metrics` keeps them apart to write them itself, see `Metrics.exposition`)."""
        f, r = FLAGGER_PREFIX, registry
        per_canary = series or registry
        self.info = Gauge(
            f"{f}_info",
            "Flagger version and mesh provider information",
            ["version", "mesh_provider"],
            registry=r,
        )
        self.info.labels(version, provider).set(1)
        self.duration = HistogramFamily(
            f"{f}_canary_duration_seconds",
            "Seconds spent performing canary analysis.",
            ["name", "namespace"],
            per_canary,
        )  # prometheus_client's default buckets are Go's DefBuckets
        self.total = Gauge(
            f"{f}_canary_total", "Total number of canary object", ["namespace"], registry=r
        )
        self.status = GaugeFamily(
            f"{f}_canary_status", "Last canary analysis result", ["name", "namespace"], per_canary
        )
        self.phase = GaugeFamily(
            f"{f}_canary_phase",
            "Current canary phase (0=Initializing, 1=Initialized, 2=Waiting, 3=Progressing, "
            "4=WaitingPromotion, 5=Promoting, 6=Finalising, 7=Succeeded, 8=Failed, "
            "9=Terminating, 10=Terminated)",
            ["name", "namespace"],
            registry=per_canary,
        )
        self.weight = GaugeFamily(
            f"{f}_canary_weight",
            "The virtual service destination weight current value",
            ["workload", "namespace"],
            registry=per_canary,
        )
        self.metric_analysis = GaugeFamily(
            f"{f}_canary_metric_analysis",
            "Last canary analysis result per metric",
            ["name", "namespace", "metric"],
            registry=per_canary,
        )
        labels = ["name", "namespace", "deployment_strategy", "analysis_status"]
        self.successes = Counter(
            f"{f}_canary_successes", "Total number of canary successes", labels, registry=r
        )
        self.failures = Counter(
            f"{f}_canary_failures", "Total number of canary failures", labels, registry=r
        )

    def record(self, canary: Canary, before: CanaryStatus, after: CanaryStatus) -> None:
        target, ns = canary.spec.target_ref.name, canary.namespace
        self.status.labels(target, ns).set(
            0 if after.phase is Phase.PROGRESSING else 2 if after.phase is Phase.FAILED else 1
        )
        if after.phase in _FLAGGER_PHASES:
            self.phase.labels(target, ns).set(_FLAGGER_PHASES[after.phase])
        self.weight.labels(f"{target}-primary", ns).set(100 - after.canary_weight)
        self.weight.labels(target, ns).set(after.canary_weight)
        analysis = canary.spec.analysis_or_default
        builtin_ms = {
            m.name
            for m in analysis.metrics
            if m.name == REQUEST_DURATION and m.check.kind is MetricKind.BUILTIN
        }
        for metric in after.analysis:
            if metric.value is not None:
                value = metric.value / 1000 if metric.name in builtin_ms else metric.value
                self.metric_analysis.labels(target, ns, metric.name).set(value)
        strategy = analysis.strategy.value
        if after.phase is Phase.SUCCEEDED and before.phase is not Phase.SUCCEEDED:
            status = "skipped" if canary.spec.skips_analysis else "completed"
            self.successes.labels(target, ns, strategy, status).inc()
        if after.phase is Phase.FAILED and before.phase is not Phase.FAILED:
            self.failures.labels(target, ns, strategy, "completed").inc()


def _pace_histograms(registry: CollectorRegistry) -> tuple[Histogram, Histogram]:
    """Whether the controller keeps up: how late passes start, and the garbage collections
    that hold every pass up while they run."""
    lateness = Histogram(
        f"{PREFIX}_tick_lateness_seconds",
        "How late a pass started after it was due",
        buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60),
        registry=registry,
    )
    gc_pauses = Histogram(
        f"{PREFIX}_gc_pause_seconds",
        "Python garbage collections by generation: every pass waits while one runs",
        ["generation"],
        buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5),
        registry=registry,
    )
    return lateness, gc_pauses


def _metric_gauges(registry: CollectorRegistry) -> tuple[GaugeFamily, GaugeFamily]:
    """Each analysis metric's last value, and its thresholdRange bounds beside it."""
    value = GaugeFamily(
        f"{PREFIX}_canary_metric_analysis",
        "Last value of each analysis metric",
        ["name", "namespace", "metric"],
        registry,
    )
    threshold = GaugeFamily(
        f"{PREFIX}_canary_metric_threshold",
        "Each analysis metric's bound (thresholdRange min or max), in the metric's unit",
        ["name", "namespace", "metric", "bound"],
        registry,
    )
    return value, threshold


class _Collected(Collector):
    """Another registry's metrics, collected into this one."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        yield from self._registry.collect()


class Metrics:
    """Our families; ``flagger`` holds Flagger's (``--flagger-metrics``), or is None.

    ``registry`` collects every family (for tests and any other reader); the scrape is
    `exposition`, which writes the per-Canary families itself (`canary.controller.series`)
    and leaves the others to prometheus_client, kept in a registry of their own for it.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        version: str = "",
        provider: str = "",
        flagger: bool = False,
    ) -> None:
        per_canary = self.registry = registry or CollectorRegistry()
        r = self._classic = CollectorRegistry()
        per_canary.register(_Collected(r))
        self.flagger = (
            FlaggerMetrics(r, version=version, provider=provider, series=per_canary)
            if flagger
            else None
        )
        self.info = Gauge(
            f"{PREFIX}_info",
            "canary-engine version and default provider",
            ["version", "mesh_provider"],
            registry=r,
        )
        self.info.labels(version, provider).set(1)
        self.total = Gauge(
            f"{PREFIX}_canary_total", "Canaries per namespace", ["namespace"], registry=r
        )
        self.status = GaugeFamily(
            f"{PREFIX}_canary_status",
            "0 running, 1 successful or idle, 2 failed",
            ["name", "namespace"],
            registry=per_canary,
        )
        self.weight = GaugeFamily(
            f"{PREFIX}_canary_weight",
            "Traffic weight per workload",
            ["workload", "namespace"],
            registry=per_canary,
        )
        self.duration = HistogramFamily(
            f"{PREFIX}_canary_duration_seconds",
            "Wall time of one analysis pass",
            ["name", "namespace"],
            per_canary,
        )
        self.metric_analysis, self.metric_threshold = _metric_gauges(per_canary)
        self.successes = Counter(
            f"{PREFIX}_canary_successes_total",
            "Promotions",
            ["name", "namespace", "deployment_strategy", "analysis_status"],
            registry=r,
        )
        self.failures = Counter(
            f"{PREFIX}_canary_failures_total",
            "Rollbacks and failed promotions",
            ["name", "namespace", "deployment_strategy", "analysis_status"],
            registry=r,
        )
        self.decisions = Counter(
            f"{PREFIX}_decisions_total", "Passes by outcome", ["outcome"], registry=r
        )
        self.git_reverts = Counter(
            f"{PREFIX}_git_reverts_total", "Git revert attempts by result", ["result"], registry=r
        )
        self.notification_failures = Counter(
            f"{PREFIX}_notification_failures_total",
            "Notifications given up on",
            ["provider_type"],
            registry=r,
        )
        self.notifications = Counter(
            f"{PREFIX}_notifications_total",
            "Notification deliveries by outcome",
            ["provider_type", "outcome"],
            registry=r,
        )
        self.lateness, self.gc_pauses = _pace_histograms(r)

    def exposition(self) -> bytes:
        """The scrape: what `generate_latest` would write for ``registry``, written faster."""
        families: list[GaugeFamily | HistogramFamily] = [
            self.status,
            self.weight,
            self.duration,
            self.metric_analysis,
            self.metric_threshold,
        ]
        if self.flagger is not None:
            f = self.flagger
            families += [f.status, f.phase, f.weight, f.duration, f.metric_analysis]
        text = "".join(family.render() for family in families)
        return generate_latest(self._classic) + text.encode()

    def time_gc(self) -> Callable[[], None]:
        """Time the process's garbage collections into ``gc_pauses`` until the returned
        function is called. A collection stops the event loop: with the caches of ten
        thousand Canaries a full one took 1 to 2 s (`canary.controller.heap`)."""
        started: list[float] = []

        def callback(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                started[:] = [time.perf_counter()]
            elif started:
                self.gc_pauses.labels(str(info.get("generation", ""))).observe(
                    time.perf_counter() - started[0]
                )

        gc.callbacks.append(callback)
        return lambda: gc.callbacks.remove(callback)

    def forget(self, name: str, namespace: str, target: str) -> None:
        """A deleted Canary's series (named by the Canary or by its target, as each family
        is) leave the scrape instead of reporting its last state for ever."""
        for family, label in (
            (self.status, target),
            (self.duration, name),
            (self.metric_analysis, name),
            (self.metric_threshold, name),
        ):
            family.remove_where(name=label, namespace=namespace)
        for workload in (target, f"{target}-primary"):
            self.weight.remove_where(workload=workload, namespace=namespace)
        if self.flagger is not None:
            f = self.flagger
            for family in (f.status, f.phase, f.duration, f.metric_analysis):
                family.remove_where(name=target, namespace=namespace)
            for workload in (target, f"{target}-primary"):
                f.weight.remove_where(workload=workload, namespace=namespace)

    def set_total(self, namespace: str, count: int) -> None:
        """Canaries in ``namespace`` (set by the scheduler at every count)."""
        self.total.labels(namespace).set(count)
        if self.flagger is not None:
            self.flagger.total.labels(namespace).set(count)

    def observe_duration(self, canary: Canary, seconds: float) -> None:
        """Wall time of one pass of ``canary``."""
        self.duration.labels(canary.name, canary.namespace).observe(seconds)
        if self.flagger is not None:
            self.flagger.duration.labels(canary.spec.target_ref.name, canary.namespace).observe(
                seconds
            )

    def _threshold(self, canary: Canary, metric: str) -> None:
        """``metric``'s thresholdRange bounds, beside its value; a bound no longer set goes."""
        spec = next((m for m in canary.spec.analysis_or_default.metrics if m.name == metric), None)
        bounds = spec.threshold_range if spec is not None else None
        low, high = (bounds.min, bounds.max) if bounds is not None else (None, None)
        for bound, value in (("min", low), ("max", high)):
            labels = (canary.name, canary.namespace, metric, bound)
            if value is None:
                self.metric_threshold.remove(*labels)
            else:
                self.metric_threshold.labels(*labels).set(value)

    def record(
        self, canary: Canary, before: CanaryStatus, after: CanaryStatus, outcome: str
    ) -> None:
        if self.flagger is not None:
            self.flagger.record(canary, before, after)
        name, ns = canary.spec.target_ref.name, canary.namespace
        self.decisions.labels(outcome).inc()
        if after.phase in (
            Phase.PROGRESSING,
            Phase.WAITING,
            Phase.WAITING_PROMOTION,
            Phase.PROMOTING,
            Phase.FINALISING,
        ):
            code = 0
        elif after.phase is Phase.FAILED:
            code = 2
        else:
            code = 1
        self.status.labels(name, ns).set(code)
        self.weight.labels(name, ns).set(after.canary_weight)
        self.weight.labels(f"{name}-primary", ns).set(100 - after.canary_weight)
        for metric in after.analysis:
            if metric.value is not None:
                self.metric_analysis.labels(canary.name, ns, metric.name).set(metric.value)
                self._threshold(canary, metric.name)
        strategy = canary.spec.analysis_or_default.strategy.value
        if after.phase is Phase.SUCCEEDED and before.phase is not Phase.SUCCEEDED:
            status = "skipped" if canary.spec.skips_analysis else "completed"
            self.successes.labels(canary.name, ns, strategy, status).inc()
        if after.phase is Phase.FAILED and before.phase is not Phase.FAILED:
            self.failures.labels(canary.name, ns, strategy, "completed").inc()
        revert_before = before.git_revert.state if before.git_revert else None
        revert_after = after.git_revert.state if after.git_revert else None
        if revert_after is not None and (
            revert_after != revert_before or after.git_revert != before.git_revert
        ):
            if after.git_revert and after.git_revert.attempts != (
                before.git_revert.attempts if before.git_revert else 0
            ):
                self.git_reverts.labels(revert_after.value).inc()
