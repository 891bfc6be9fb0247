"""The controller's own Prometheus metrics.

Flagger's metric names and meanings (reference/flagger.md 6.1) under our
prefix ``canary_engine_`` (``flagger_canary_status`` becomes
``canary_engine_canary_status``, with the same 0 running / 1 ok / 2 failed
encoding), plus ours: decisions by outcome, Git reverts, notification failures
and tick lateness. Labels are bounded (no revision or message labels).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from canary.model import Canary, CanaryStatus, Phase

PREFIX = "canary_engine"


class Metrics:
    def __init__(
        self, registry: CollectorRegistry | None = None, *, version: str = "", provider: str = ""
    ) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
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
        self.status = Gauge(
            f"{PREFIX}_canary_status",
            "0 running, 1 successful or idle, 2 failed",
            ["name", "namespace"],
            registry=r,
        )
        self.weight = Gauge(
            f"{PREFIX}_canary_weight",
            "Traffic weight per workload",
            ["workload", "namespace"],
            registry=r,
        )
        self.duration = Histogram(
            f"{PREFIX}_canary_duration_seconds",
            "Wall time of one analysis pass",
            ["name", "namespace"],
            registry=r,
        )
        self.metric_analysis = Gauge(
            f"{PREFIX}_canary_metric_analysis",
            "Last value of each analysis metric",
            ["name", "namespace", "metric"],
            registry=r,
        )
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
        self.lateness = Histogram(
            f"{PREFIX}_tick_lateness_seconds",
            "How late a pass started after it was due",
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60),
            registry=r,
        )

    def record(
        self, canary: Canary, before: CanaryStatus, after: CanaryStatus, outcome: str
    ) -> None:
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
