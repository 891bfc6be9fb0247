"""The Canary spec as typed, frozen data, parsed the way Flagger reads it.

`parse_canary` turns a Canary manifest (a dict from YAML or the API server) into
a `Canary` with Flagger's defaults applied (reference/flagger.md section 1), and
reports every problem with its field path. Field names in the manifest are
Flagger's ``flagger.app/v1beta1`` names so that a Flagger manifest works after
changing ``apiVersion`` alone; our extensions are new fields (``gitops``,
``metrics[].compare``). Semantic rules that a schema cannot express live here
too: a canary strategy that would never advance, equal session cookie names,
a provider we do not drive, a metric with nothing to run.

Each ``analysis.metrics[]`` entry is parsed by `analysis`'s own parser
(`analysis.spec.parse_metric`), so the `MetricCheck` the controller evaluates is
the one made here, and a metric that passes `canary lint` runs by the same rules.

Mesh-shaped sub-objects (Istio match, trafficPolicy, CORS, Gateway API refs) are
kept as plain dicts: the routers render them into their objects verbatim.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from analysis.spec import BUILTIN_METRICS as BUILTIN_METRICS  # re-exported by canary.model
from analysis.spec import (
    FLAGGER_ONLY_PROVIDERS,
    AnalysisSpecError,
    CompareSpec,
    MetricCheck,
    MetricKind,
    QueryContext,
    parse_metric,
)
from canary.model.duration import DurationError, parse_duration
from canary.model.errors import SpecIssue
from canary.model.reader import Issues, Reader, describe

API_GROUP = "canary.gitops.dev"
API_VERSION = f"{API_GROUP}/v1beta1"
FLAGGER_API_VERSION = "flagger.app/v1beta1"

DEFAULT_INTERVAL_SECONDS = 60
MIN_INTERVAL_SECONDS = 10
DEFAULT_PROGRESS_DEADLINE_SECONDS = 600
DEFAULT_WEBHOOK_TIMEOUT_SECONDS = 10.0
TOTAL_WEIGHT = 100

# Providers whose routing this controller implements (canary.adapters.routers has a router
# for each, and lists them in this order).
SUPPORTED_PROVIDERS: tuple[str, ...] = (
    "kubernetes",
    "nginx",
    "istio",
    "gatewayapi:v1",
    "gatewayapi:v1beta1",
    "linkerd",
    "smi:v1alpha1",
    "smi:v1alpha2",
    "smi:v1alpha3",
    "contour",
    "gloo",
    "traefik",
    "apisix",
    "skipper",
    "kuma",
    "osm",
    "appmesh",
    "appmesh:v1beta2",
    "knative",
)


class Strategy(StrEnum):
    CANARY = "canary"
    BLUE_GREEN = "blue-green"
    AB_TESTING = "ab-testing"


class HookType(StrEnum):
    CONFIRM_ROLLOUT = "confirm-rollout"
    PRE_ROLLOUT = "pre-rollout"
    ROLLOUT = "rollout"
    CONFIRM_TRAFFIC_INCREASE = "confirm-traffic-increase"
    CONFIRM_PROMOTION = "confirm-promotion"
    POST_ROLLOUT = "post-rollout"
    ROLLBACK = "rollback"
    EVENT = "event"


class Severity(StrEnum):
    INFO = "info"
    WARN = "warn"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """A reference to another object (targetRef, ingressRef, templateRef, ...)."""

    kind: str
    name: str
    api_version: str = ""
    namespace: str | None = None


@dataclass(frozen=True, slots=True)
class AutoscalerRef:
    kind: str
    name: str
    api_version: str = ""
    primary_scaler_queries: Mapping[str, str] = field(default_factory=dict)
    primary_min_replicas: int | None = None
    primary_max_replicas: int | None = None


@dataclass(frozen=True, slots=True)
class ServiceMetadata:
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """``spec.service``: the Services and routing objects the controller generates."""

    name: str
    port: int
    port_name: str = "http"
    target_port: int | str | None = None
    app_protocol: str | None = None
    traffic_distribution: str | None = None
    port_discovery: bool = False
    headless: bool = False
    timeout: str | None = None
    backend_timeout: str | None = None
    gateways: tuple[str, ...] = ()
    gateway_refs: tuple[dict[str, Any], ...] = ()
    hosts: tuple[str, ...] = ()
    delegation: bool = False
    traffic_policy: dict[str, Any] | None = None
    match: tuple[dict[str, Any], ...] = ()
    rewrite: dict[str, Any] | None = None
    retries: dict[str, Any] | None = None
    headers: dict[str, Any] | None = None
    mirror: tuple[dict[str, Any], ...] = ()
    cors_policy: dict[str, Any] | None = None
    mesh_name: str | None = None
    backends: tuple[str, ...] = ()
    apex: ServiceMetadata = field(default_factory=ServiceMetadata)
    primary: ServiceMetadata = field(default_factory=ServiceMetadata)
    canary: ServiceMetadata = field(default_factory=ServiceMetadata)
    unmanaged_labels: tuple[str, ...] = ()
    unmanaged_annotations: tuple[str, ...] = ()

    @property
    def effective_target_port(self) -> int | str:
        return self.target_port if self.target_port not in (None, "", 0) else self.port  # type: ignore[return-value]

    @property
    def primary_name(self) -> str:
        return f"{self.name}-primary"

    @property
    def canary_name(self) -> str:
        return f"{self.name}-canary"


@dataclass(frozen=True, slots=True)
class ThresholdRange:
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One ``analysis.metrics[]`` entry: the check `analysis` runs, and its template's reference.

    ``check`` comes from `analysis`'s own parser, so it is the very object the
    controller evaluates (with the MetricTemplate's query filled in).
    ``template_ref`` keeps the reference's namespace, which only the controller
    needs.  The properties read the check for the model's other users.
    """

    check: MetricCheck
    template_ref: ObjectRef | None = None

    @property
    def name(self) -> str:
        return self.check.name

    @property
    def interval(self) -> str:
        return self.check.interval

    @property
    def threshold(self) -> float | None:
        """The deprecated single bound (Flagger's ``threshold``)."""
        return self.check.threshold

    @property
    def threshold_range(self) -> ThresholdRange | None:
        if self.check.min is None and self.check.max is None:
            return None
        return ThresholdRange(min=self.check.min, max=self.check.max)

    @property
    def query(self) -> str | None:
        """The inline PromQL (deprecated in Flagger); ``None`` when a templateRef wins."""
        return self.check.query if self.check.kind is MetricKind.INLINE else None

    @property
    def template_variables(self) -> Mapping[str, str]:
        return self.check.variables_map

    @property
    def compare(self) -> CompareSpec | None:
        """Our extension: judge the canary against the primary."""
        return self.check.compare

    @property
    def dry_run(self) -> bool:
        """``dryRun: true``: advisory, reported but never failing, holding or rolling back."""
        return self.check.dry_run

    @property
    def path(self) -> str:
        """The entry's field path, for messages (``spec.analysis.metrics[1]``)."""
        return self.check.path

    @property
    def is_builtin(self) -> bool:
        return self.check.kind is MetricKind.BUILTIN


@dataclass(frozen=True, slots=True)
class WebhookSpec:
    """One ``analysis.webhooks[]`` entry."""

    name: str
    url: str
    type: HookType = HookType.ROLLOUT
    mute_alert: bool = False
    timeout_seconds: float = DEFAULT_WEBHOOK_TIMEOUT_SECONDS
    metadata: Mapping[str, str] = field(default_factory=dict)
    retries: int = 0
    disable_tls: bool = False


@dataclass(frozen=True, slots=True)
class AlertRef:
    """One ``analysis.alerts[]`` entry: where to send which severities."""

    name: str
    provider_name: str
    provider_namespace: str | None = None
    severity: Severity = Severity.INFO  # Flagger quirk fixed: empty means info

    def accepts(self, severity: Severity) -> bool:
        """Flagger's routing: info gets everything, warn gets warn+error, error only error."""
        if self.severity is Severity.INFO:
            return True
        if self.severity is Severity.WARN:
            return severity in (Severity.WARN, Severity.ERROR)
        return severity is Severity.ERROR


@dataclass(frozen=True, slots=True)
class SessionAffinity:
    cookie_name: str
    primary_cookie_name: str | None = None
    max_age: int = 86400
    domain: str | None = None
    http_only: bool = False
    partitioned: bool = False
    path: str | None = None
    same_site: str | None = None
    secure: bool = False


@dataclass(frozen=True, slots=True)
class AnalysisSpec:
    """``spec.analysis`` with Flagger's defaults applied."""

    interval_seconds: int = DEFAULT_INTERVAL_SECONDS
    interval: str = "1m"
    iterations: int = 0
    threshold: int = 1
    max_weight_field: int = 0
    step_weight: int = 0
    step_weights: tuple[int, ...] = ()
    step_weight_promotion: int = 0
    mirror: bool = False
    mirror_weight: int = 0
    match: tuple[dict[str, Any], ...] = ()
    primary_ready_threshold: int = 100
    canary_ready_threshold: int = 100
    metrics: tuple[MetricSpec, ...] = ()
    webhooks: tuple[WebhookSpec, ...] = ()
    alerts: tuple[AlertRef, ...] = ()
    session_affinity: SessionAffinity | None = None

    @property
    def strategy(self) -> Strategy:
        if self.match and self.iterations > 0:
            return Strategy.AB_TESTING
        if self.iterations > 0:
            return Strategy.BLUE_GREEN
        return Strategy.CANARY

    @property
    def max_weight(self) -> int:
        """Flagger's maxWeight(): last stepWeights entry, else maxWeight, else 100."""
        if self.step_weights:
            return min(TOTAL_WEIGHT, self.step_weights[-1])
        if self.max_weight_field > 0:
            return self.max_weight_field
        return TOTAL_WEIGHT

    def next_step_weight(self, weight: int) -> int:
        """Flagger's nextStepWeight(): how much weight the next advance adds."""
        if self.step_weight > 0 or not self.step_weights:
            return self.step_weight
        max_step = TOTAL_WEIGHT - weight
        if max_step == 0:
            return 1
        if weight == 0:
            return min(max_step, self.step_weights[0])
        for index, value in enumerate(self.step_weights[:-1]):
            if weight == value:
                return min(max_step, self.step_weights[index + 1] - weight)
        return max_step

    def hooks(self, kind: HookType) -> tuple[WebhookSpec, ...]:
        return tuple(h for h in self.webhooks if h.type is kind)


FORGE_PROVIDERS = ("github", "gitlab", "gitea", "forgejo", "bitbucket-server", "bitbucket-cloud")
PUSH_MODE, PULL_REQUEST_MODE = "push", "pullRequest"
REVERT_MODES = (PUSH_MODE, PULL_REQUEST_MODE)


@dataclass(frozen=True, slots=True)
class PullRequestSpec:
    """``spec.gitops.revert.pullRequest`` (ours): where to open the revert's pull request.

    ``provider`` None: guessed from the repository URL. ``api_url`` None: the forge's
    public API for that host. ``secret_name`` None: the token of the Git credentials' Secret.
    """

    provider: str | None = None
    api_url: str | None = None
    secret_name: str | None = None


@dataclass(frozen=True, slots=True)
class GitOpsSpec:
    """``spec.gitops`` (ours): revert in Git on rollback, and where the target comes from.

    ``spec.gitops.revert`` is ``true``/``false`` or an object ``{enabled, mode,
    pullRequest}``; ``mode: pullRequest`` proposes the revert instead of pushing it."""

    revert: bool = True
    source: ObjectRef | None = None
    paths: tuple[str, ...] = ()
    mode: str = PUSH_MODE
    pull_request: PullRequestSpec = field(default_factory=PullRequestSpec)


@dataclass(frozen=True, slots=True)
class CanarySpec:
    target_ref: ObjectRef
    service: ServiceSpec
    analysis: AnalysisSpec | None = None
    autoscaler_ref: AutoscalerRef | None = None
    ingress_ref: ObjectRef | None = None
    route_ref: ObjectRef | None = None
    upstream_ref: ObjectRef | None = None
    provider: str | None = None
    metrics_server: str | None = None
    progress_deadline_seconds: int = DEFAULT_PROGRESS_DEADLINE_SECONDS
    skip_analysis: bool = False
    suspend: bool = False
    revert_on_deletion: bool = False
    gitops: GitOpsSpec = field(default_factory=GitOpsSpec)

    @property
    def analysis_or_default(self) -> AnalysisSpec:
        return self.analysis if self.analysis is not None else AnalysisSpec()

    @property
    def skips_analysis(self) -> bool:
        """Flagger's SkipAnalysis(): the flag, or no analysis section at all."""
        return self.skip_analysis or self.analysis is None

    @property
    def interval_seconds(self) -> int:
        return self.analysis_or_default.interval_seconds


@dataclass(frozen=True, slots=True)
class Canary:
    """A parsed Canary: identity plus spec, and the warnings found while parsing."""

    name: str
    namespace: str
    spec: CanarySpec
    generation: int = 0
    uid: str = ""
    annotations: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[SpecIssue, ...] = ()

    def query_context(self, default_provider: str) -> QueryContext:
        """The Canary's names as its metric query templates see them (``{{ target }}``, ...);
        the controller renders with it, and ``canary lint`` checks the templates with it."""
        spec = self.spec
        return QueryContext(
            name=self.name,
            namespace=self.namespace,
            target=spec.target_ref.name,
            provider=spec.provider or default_provider,
            service=spec.service.name,
            ingress=spec.ingress_ref.name if spec.ingress_ref else None,
            route=spec.route_ref.name if spec.route_ref else None,
        )


# --------------------------------------------------------------------------- parsing


def _ref(r: Reader | None, *, kind_required: bool = True) -> ObjectRef | None:
    if r is None:
        return None
    return ObjectRef(
        kind=r.string("kind", required=kind_required),
        name=r.string("name", required=True),
        api_version=r.string("apiVersion"),
        namespace=r.opt_str("namespace"),
    )


def _service_metadata(r: Reader | None) -> ServiceMetadata:
    if r is None:
        return ServiceMetadata()
    return ServiceMetadata(labels=r.str_map("labels"), annotations=r.str_map("annotations"))


def _parse_service(r: Reader | None, target_name: str) -> ServiceSpec:
    if r is None:
        return ServiceSpec(name=target_name, port=0)
    target_port: int | str | None = None
    raw_tp = r.raw("targetPort")
    if raw_tp is not None:
        if isinstance(raw_tp, bool) or not isinstance(raw_tp, int | str):
            r.issues.error(
                r.at("targetPort"), f"expected a port number or name, got {describe(raw_tp)}"
            )
        else:
            target_port = raw_tp
    unmanaged = r.obj("unmanagedMetadata")
    return ServiceSpec(
        name=r.string("name") or target_name,
        port=r.integer("port", required=True, minimum=1, maximum=65535),
        port_name=r.string("portName") or "http",
        target_port=target_port,
        app_protocol=r.opt_str("appProtocol"),
        traffic_distribution=r.opt_str("trafficDistribution"),
        port_discovery=r.boolean("portDiscovery"),
        headless=r.boolean("headless"),
        timeout=r.opt_str("timeout"),
        backend_timeout=r.opt_str("backendTimeout"),
        gateways=r.str_list("gateways"),
        gateway_refs=r.obj_list("gatewayRefs"),
        hosts=r.str_list("hosts"),
        delegation=r.boolean("delegation"),
        traffic_policy=r.free("trafficPolicy"),
        match=r.obj_list("match"),
        rewrite=r.free("rewrite"),
        retries=_parse_retries(r),
        headers=r.free("headers"),
        mirror=r.obj_list("mirror"),
        cors_policy=r.free("corsPolicy"),
        mesh_name=r.opt_str("meshName"),
        backends=r.str_list("backends"),
        apex=_service_metadata(r.obj("apex")),
        primary=_service_metadata(r.obj("primary")),
        canary=_service_metadata(r.obj("canary")),
        unmanaged_labels=unmanaged.str_list("labels") if unmanaged else (),
        unmanaged_annotations=unmanaged.str_list("annotations") if unmanaged else (),
    )


def _duration_field(r: Reader, key: str, default: str) -> tuple[str, float | None]:
    raw = r.string(key, default)
    try:
        return raw, parse_duration(raw)
    except DurationError as exc:
        r.issues.error(r.at(key), str(exc))
        return raw, None


def _parse_metrics(r: Reader) -> tuple[MetricSpec, ...]:
    """Every ``metrics[]`` entry that parses; each name used once."""
    metrics = tuple(m for m in (_parse_metric(e) for e in r.objects("metrics")) if m is not None)
    seen: set[str] = set()
    for metric in metrics:
        if metric.name in seen:
            r.issues.error(f"{metric.path}.name", f'duplicate metric name "{metric.name}"')
        seen.add(metric.name)
    return metrics


def _parse_metric(r: Reader) -> MetricSpec | None:
    """One entry, read by `analysis`'s parser; ``None`` (and issues) when it has problems."""
    template_ref = _ref(r.obj("templateRef"), kind_required=False)
    try:
        check = parse_metric(
            r.data, path=r.path, template=template_ref.name if template_ref else None
        )
    except AnalysisSpecError as exc:
        for problem in exc.problems:
            r.issues.error(problem.path, problem.detail)
        return None
    if not r.has("thresholdRange") and check.threshold is None and check.compare is None:
        r.issues.warning(
            r.path,
            f'metric "{check.name}" has no thresholdRange, threshold or compare: it can never fail',
        )
    _warn_on_warmup(r, check)
    return MetricSpec(check=check, template_ref=template_ref)


def _parse_retries(r: Reader) -> dict[str, Any] | None:
    """``service.retries``, passed to the router as it is, once ``attempts`` is a count: the
    routers build it into their retry policies and the error judge reads it."""
    retries = r.free("retries")
    attempts = (retries or {}).get("attempts")
    if attempts is not None and (
        isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 0
    ):
        r.issues.error(
            f"{r.at('retries')}.attempts", f"expected an integer >= 0, got {describe(attempts)}"
        )
    return retries


RETRYING_PROVIDERS = frozenset({"istio", "contour", "appmesh", "appmesh:v1beta2"})
"""The providers whose routers apply ``service.retries`` (the others leave retries to the
mesh's own configuration, which the controller does not read)."""

SERVER_ERROR_RETRIES = frozenset({"5xx", "gateway-error"})
"""Envoy ``retryOn`` conditions that retry responses the error metrics count as errors."""


def _mesh_retries(service: ServiceSpec, provider: str) -> int:
    """How often the router retries a failed request: ``service.retries.attempts`` when the
    provider applies it and its ``retryOn`` retries server errors (Contour retries ``5xx``
    and App Mesh gateway errors when ``retryOn`` is unset; Istio's default retries
    connection failures and 503s, not the application's 500s); 0 otherwise.  Without
    ``attempts``, Contour and App Mesh retry once (Envoy's default, and App Mesh's router
    here); Istio's count is then not ours to guess."""
    if service.retries is None or provider not in RETRYING_PROVIDERS:
        return 0
    retries = service.retries
    attempts = retries.get("attempts")
    if attempts is None and provider != "istio":
        attempts = 1
    if not isinstance(attempts, int) or attempts <= 0:
        return 0
    retry_on = retries.get("retryOn")
    if retry_on is None:
        return attempts if provider != "istio" else 0
    conditions = {c.strip() for c in str(retry_on).split(",")}
    return attempts if conditions & SERVER_ERROR_RETRIES else 0


def _with_declared_retries(
    analysis: AnalysisSpec, service: ServiceSpec, provider: str
) -> AnalysisSpec:
    """An errorRate ``compare`` without ``retries`` of its own takes the router's retries.

    Istio, Contour and App Mesh retry a failed request ``service.retries.attempts`` times on
    the same version, and the metrics count every attempt: errors that persist come in
    clusters of up to ``attempts + 1``, and the judge starts its dispersion estimate there
    instead of at independent errors (docs/analysis.md, "Declared retries").  A metric's own
    ``compare.retries`` (0 included) wins: the client may retry too, or the metric may count
    requests before the mesh does.
    """
    attempts = _mesh_retries(service, provider)
    if attempts <= 0:
        return analysis

    def declared(metric: MetricSpec) -> MetricSpec:
        compare = metric.check.compare
        if compare is None:
            return metric
        return replace(
            metric, check=replace(metric.check, compare=compare.with_mesh_retries(attempts))
        )

    return replace(analysis, metrics=tuple(declared(m) for m in analysis.metrics))


LONG_WARMUP_INTERVALS = 10
"""A warm-up longer than this many of the metric's intervals earns a warning."""


def _warn_on_warmup(r: Reader, check: MetricCheck) -> None:
    """Why: during the warm-up the canary holds without an alert or a failed check, and even a
    failing ``thresholdRange`` is not acted on, so ``warmup: 1h`` (or a slip, ``1y``) hides a
    release that fails every request for that long after every commit. Legal, so a warning.
    A warm-up shorter than the interval is one interval (``CompareSpec.warmup_for``): said, so
    that ``warmup: 10s`` of a 30s metric does not read as ten seconds."""
    compare = check.compare
    if compare is None or compare.warmup_seconds is None:
        return
    try:
        interval = parse_duration(check.interval)
    except DurationError:
        return  # the interval's own error is reported where it is read
    if 0 < compare.warmup_seconds < interval:
        r.issues.warning(
            f"{r.path}.compare.warmup",
            f"shorter than the metric's interval ({check.interval}): the run's first window is "
            f"a whole interval long, so the warm-up is that window, {check.interval}; write "
            f"{check.interval} (or leave warmup out, the default) to say so, or 0s for none",
        )
    if interval > 0 and compare.warmup_seconds > LONG_WARMUP_INTERVALS * interval:
        r.issues.warning(
            f"{r.path}.compare.warmup",
            f"{compare.warmup_seconds / interval:,.0f} intervals of {check.interval}: after every "
            "release the canary holds this long without an alert, a failed check or acting on "
            "its thresholdRange; a warm-up covers a cold start (a minute or two)",
        )


def _parse_webhook(r: Reader) -> WebhookSpec:
    hook_type = r.choice("type", HookType, HookType.ROLLOUT, what="webhook type")
    timeout = DEFAULT_WEBHOOK_TIMEOUT_SECONDS
    raw_timeout = r.string("timeout")
    if len(raw_timeout) >= 2:  # Flagger: shorter strings mean the default
        try:
            timeout = parse_duration(raw_timeout)
        except DurationError as exc:
            r.issues.error(r.at("timeout"), str(exc))
    url = r.string("url", required=True)
    if url and not (url.startswith("http://") or url.startswith("https://")):
        # The value is not echoed: webhook URLs often carry tokens.
        r.issues.error(r.at("url"), "expected an http:// or https:// URL")
    return WebhookSpec(
        name=r.string("name", required=True),
        url=url,
        type=hook_type,
        mute_alert=r.boolean("muteAlert"),
        timeout_seconds=timeout,
        metadata=r.str_map("metadata"),
        retries=r.integer("retries", minimum=0),
        disable_tls=r.boolean("disableTLS"),
    )


def _parse_alert(r: Reader) -> AlertRef:
    severity = r.choice(
        "severity", Severity, Severity.INFO, what="severity", expected="info, warn or error"
    )
    provider = r.obj("providerRef", required=True)
    return AlertRef(
        name=r.string("name", required=True),
        provider_name=provider.string("name", required=True) if provider else "",
        provider_namespace=provider.opt_str("namespace") if provider else None,
        severity=severity,
    )


def _parse_session_affinity(r: Reader | None) -> SessionAffinity | None:
    if r is None:
        return None
    sa = SessionAffinity(
        cookie_name=r.string("cookieName", required=True),
        primary_cookie_name=r.opt_str("primaryCookieName"),
        max_age=r.integer("maxAge", 86400, minimum=1),
        domain=r.opt_str("domain"),
        http_only=r.boolean("httpOnly"),
        partitioned=r.boolean("partitioned"),
        path=r.opt_str("path"),
        same_site=r.opt_str("sameSite"),
        secure=r.boolean("secure"),
    )
    if sa.same_site and sa.same_site not in ("Strict", "Lax", "None"):
        r.issues.error(r.at("sameSite"), f'expected Strict, Lax or None, got "{sa.same_site}"')
    if sa.primary_cookie_name and sa.primary_cookie_name == sa.cookie_name:
        r.issues.error(
            r.at("primaryCookieName"),
            f'must differ from cookieName ("{sa.cookie_name}"): the canary and primary cookies would collide',
        )
    return sa


def _parse_analysis(r: Reader) -> AnalysisSpec:
    interval_text, interval = _duration_field(r, "interval", "1m")
    interval_seconds = DEFAULT_INTERVAL_SECONDS
    if interval is not None:
        if interval < MIN_INTERVAL_SECONDS:
            r.issues.warning(
                r.at("interval"),
                f"{interval_text} is shorter than the minimum of {MIN_INTERVAL_SECONDS}s; {MIN_INTERVAL_SECONDS}s is used",
            )
        interval_seconds = max(MIN_INTERVAL_SECONDS, round(interval))
    threshold = r.integer("threshold", 1)
    step_weights = r.int_list("stepWeights")
    for index, (a, b) in enumerate(itertools.pairwise(step_weights)):
        if b <= a:
            r.issues.error(
                f"{r.at('stepWeights')}[{index + 1}]",
                f"step weights must increase: {b} follows {a}",
            )
    for index, w in enumerate(step_weights):
        if not 0 < w <= TOTAL_WEIGHT:
            r.issues.error(f"{r.at('stepWeights')}[{index}]", f"must be between 1 and 100, got {w}")
    analysis = AnalysisSpec(
        interval_seconds=interval_seconds,
        interval=interval_text,
        iterations=r.integer("iterations", minimum=0),
        threshold=threshold if threshold > 0 else 1,
        max_weight_field=r.integer("maxWeight", minimum=0, maximum=TOTAL_WEIGHT),
        step_weight=r.integer("stepWeight", minimum=0, maximum=TOTAL_WEIGHT),
        step_weights=step_weights,
        step_weight_promotion=r.integer("stepWeightPromotion", minimum=0, maximum=TOTAL_WEIGHT),
        mirror=r.boolean("mirror"),
        mirror_weight=r.integer("mirrorWeight", minimum=0, maximum=TOTAL_WEIGHT),
        match=r.obj_list("match"),
        primary_ready_threshold=r.integer("primaryReadyThreshold", 100, minimum=0, maximum=100),
        canary_ready_threshold=r.integer("canaryReadyThreshold", 100, minimum=0, maximum=100),
        metrics=_parse_metrics(r),
        webhooks=tuple(_parse_webhook(w) for w in r.objects("webhooks")),
        alerts=tuple(_parse_alert(a) for a in r.objects("alerts")),
        session_affinity=_parse_session_affinity(r.obj("sessionAffinity")),
    )
    hooks = [(h.type, h.name) for h in analysis.webhooks]
    for index, key in enumerate(hooks):
        if key[1] and key in hooks[:index]:
            r.issues.error(
                f"{r.at('webhooks')}[{index}].name",
                f'duplicate {key[0].value} webhook name "{key[1]}": each hook of a type needs its own name',
            )
    return analysis


def _check_strategy(r: Reader, analysis: AnalysisSpec, provider: str) -> None:
    if analysis.strategy is Strategy.CANARY and provider != "kubernetes":
        if analysis.step_weight <= 0 and not analysis.step_weights:
            r.issues.error(
                r.path,
                "the canary would never advance: set stepWeight or stepWeights (progressive traffic), "
                "or iterations (blue/green, or A/B testing with match)",
            )
    if analysis.match and analysis.iterations <= 0:
        r.issues.error(
            r.at("match"),
            "A/B testing needs iterations: match without iterations would be ignored",
        )
    if analysis.step_weight > 0 and analysis.step_weights:
        r.issues.warning(
            r.at("stepWeights"),
            "stepWeight and stepWeights are both set; stepWeight wins (as in Flagger)",
        )
    if analysis.strategy is not Strategy.CANARY:
        _warn_on_advance_without_weights(r, analysis)


def _warn_on_advance_without_weights(r: Reader, analysis: AnalysisSpec) -> None:
    """Why: ``onInconclusive: advance`` steps the weight up to bring the canary the requests it
    lacks; the iterations of A/B testing and blue/green change no weight, so an inconclusive
    check only moves on to the next iteration with no more traffic, and the holds it skips
    all come at the last one. Legal, and harmless, but not what the option says."""
    kind = "A/B testing" if analysis.strategy is Strategy.AB_TESTING else "blue/green"
    for metric in analysis.metrics:
        compare = metric.check.compare
        if compare is not None and compare.on_inconclusive.value == "advance":
            r.issues.warning(
                f"{metric.check.path}.compare.onInconclusive",
                f"advance brings a canary more traffic by stepping its weight up, and {kind}'s "
                "iterations change no weight: an inconclusive check only moves on to the next "
                "iteration, and the checks it would hold for all come at the last one; "
                "leave onInconclusive out (hold) or use a canary's stepWeights",
            )


def _check_provider(r: Reader, provider: str, spec_has: Mapping[str, bool]) -> None:
    path = r.at("provider")
    if provider in FLAGGER_ONLY_PROVIDERS and provider not in SUPPORTED_PROVIDERS:
        r.issues.error(
            path,
            f'provider "{provider}" is valid in Flagger but not supported by canary-engine yet; '
            f"supported: {', '.join(sorted(SUPPORTED_PROVIDERS))}",
        )
    elif provider not in SUPPORTED_PROVIDERS and not provider.startswith("smi:"):
        r.issues.error(
            path,
            f'unknown provider "{provider}"; supported: {", ".join(sorted(SUPPORTED_PROVIDERS))}',
        )
    if provider == "nginx" and not spec_has["ingressRef"]:
        r.issues.error(
            r.at("ingressRef"), "the nginx provider needs ingressRef (the Ingress to clone)"
        )
    if provider.startswith("gatewayapi") and not spec_has["gatewayRefs"]:
        r.issues.error(
            r.at("service.gatewayRefs"),
            f"the {provider} provider needs service.gatewayRefs (the HTTPRoute parents)",
        )
    if provider == "skipper" and not spec_has["ingressRef"]:
        r.issues.error(
            r.at("ingressRef"), "the skipper provider needs ingressRef (the Ingress to clone)"
        )
    if provider == "apisix":
        _check_apisix_route_ref(r)
    if provider == "appmesh":
        service = r.raw("service")
        if isinstance(service, Mapping) and not service.get("meshName"):
            r.issues.error(
                r.at("service.meshName"),
                "the appmesh provider (App Mesh v1beta1) needs service.meshName (the mesh)",
            )
    if provider == "gloo":
        _check_gloo_upstream_ref(r)


def _check_gloo_upstream_ref(r: Reader) -> None:
    """``provider: gloo`` may copy settings from the Gloo Upstream ``spec.upstreamRef``
    names (gloo.solo.io/v1, optional; its namespace defaults to the Canary's)."""
    ref = r.raw("upstreamRef")
    if not isinstance(ref, Mapping):
        return  # absent, or reported where upstreamRef is parsed
    kind, api_version = ref.get("kind"), ref.get("apiVersion")
    if isinstance(kind, str) and kind and kind != "Upstream":
        r.issues.error(f"{r.at('upstreamRef')}.kind", f'expected Upstream, got "{kind}"')
    if isinstance(api_version, str) and api_version and api_version != "gloo.solo.io/v1":
        r.issues.error(
            f"{r.at('upstreamRef')}.apiVersion", f'expected gloo.solo.io/v1, got "{api_version}"'
        )


def _check_apisix_route_ref(r: Reader) -> None:
    """``provider: apisix`` clones the ApisixRoute ``spec.routeRef`` names (apisix.apache.org/v2)."""
    ref = r.raw("routeRef")
    if ref is None:
        r.issues.error(
            r.at("routeRef"), "the apisix provider needs routeRef (the ApisixRoute to clone)"
        )
        return
    if not isinstance(ref, Mapping):
        return  # reported where routeRef is parsed
    kind, api_version = ref.get("kind"), ref.get("apiVersion")
    if isinstance(kind, str) and kind and kind != "ApisixRoute":
        r.issues.error(f"{r.at('routeRef')}.kind", f'expected ApisixRoute, got "{kind}"')
    if isinstance(api_version, str) and api_version and api_version != "apisix.apache.org/v2":
        r.issues.error(
            f"{r.at('routeRef')}.apiVersion", f'expected apisix.apache.org/v2, got "{api_version}"'
        )


def _check_nginx_match(r: Reader, match: tuple[dict[str, Any], ...]) -> None:
    """NGINX canary annotations route by one header (exact or regex) and one cookie."""
    header: tuple[str, str, str] | None = None
    cookie: str | None = None
    for index, entry in enumerate(match):
        base = f"{r.at('match')}[{index}]"
        for key in entry:
            if key not in ("headers", "name"):
                r.issues.error(
                    f"{base}.{key}", "the nginx provider can only match on a header or a cookie"
                )
        headers = entry.get("headers") or {}
        if not isinstance(headers, Mapping):
            r.issues.error(
                f"{base}.headers", "expected an object of header names to string matches"
            )
            continue
        for name, rule in headers.items():
            where = f"{base}.headers.{name}"
            if not isinstance(rule, Mapping):
                r.issues.error(where, "expected a string match (exact or regex)")
            elif str(name).lower() == "cookie":
                if "exact" not in rule:
                    r.issues.error(where, "the nginx provider matches a cookie by exact value only")
                elif cookie is not None and cookie != str(rule["exact"]):
                    r.issues.error(where, "the nginx provider routes by one cookie only")
                else:
                    cookie = str(rule["exact"])
            else:
                kind = "exact" if "exact" in rule else "regex" if "regex" in rule else ""
                if not kind:
                    r.issues.error(
                        where,
                        f"the nginx provider supports exact or regex header matches, got {', '.join(sorted(rule)) or 'nothing'}",
                    )
                    continue
                wanted = (str(name), kind, str(rule[kind]))
                if header is not None and header != wanted:
                    r.issues.error(where, "the nginx provider routes by one header only")
                else:
                    header = wanted


def cross_namespace_refs(canary: Canary) -> tuple[SpecIssue, ...]:
    """Every MetricTemplate or AlertProvider reference of ``canary`` into another namespace.

    `canary run --no-cross-namespace-refs` (Flagger's ``-no-cross-namespace-refs``) refuses
    them: in a cluster shared by teams, a Canary must not read another namespace's
    templates, Secrets or chat credentials through a reference.
    """
    issues: list[SpecIssue] = []
    analysis = canary.spec.analysis_or_default
    for metric in analysis.metrics:
        ref = metric.template_ref
        if ref is not None and ref.namespace and ref.namespace != canary.namespace:
            issues.append(
                SpecIssue(
                    f"{metric.check.path}.templateRef.namespace",
                    f"MetricTemplate {ref.namespace}/{ref.name} is in another namespace, and "
                    "cross-namespace references are disabled (--no-cross-namespace-refs)",
                )
            )
    for index, alert in enumerate(analysis.alerts):
        namespace = alert.provider_namespace
        if namespace and namespace != canary.namespace:
            issues.append(
                SpecIssue(
                    f"spec.analysis.alerts[{index}].providerRef.namespace",
                    f"AlertProvider {namespace}/{alert.provider_name} is in another namespace, "
                    "and cross-namespace references are disabled (--no-cross-namespace-refs)",
                )
            )
    return tuple(issues)


def parse_canary(
    doc: Mapping[str, Any],
    *,
    default_provider: str = "kubernetes",
    check_provider: bool = True,
) -> Canary:
    """Parse a Canary manifest; raise `SpecError` listing every error (with paths).

    Warnings (valid but surprising input) are kept on the result.
    """
    issues = Issues()
    root = Reader(doc, "", issues)
    _check_kind(root)
    meta = root.obj("metadata") or Reader({}, "metadata", issues)
    spec_r = root.obj("spec", required=True) or Reader({}, "spec", issues)

    target = _parse_target(spec_r)
    service_r = spec_r.obj("service")
    # A Knative Service routes its own revisions: Flagger's Knative Canaries have no service.
    knative = target.api_version.startswith("serving.knative.dev/")
    if service_r is None and not knative:
        issues.error("spec.service", "required field is missing (an object with at least port)")
    service = (
        _parse_service(service_r, target.name)
        if service_r
        else ServiceSpec(name=target.name, port=0)
    )
    analysis_r = _analysis_reader(spec_r)
    analysis = _parse_analysis(analysis_r) if analysis_r else None
    provider = spec_r.string("provider") or default_provider
    if analysis is not None:
        analysis = _with_declared_retries(analysis, service, provider)
    autoscaler = _parse_autoscaler(spec_r.obj("autoscalerRef"))
    gitops_r = spec_r.obj("gitops")
    gitops = _parse_gitops(gitops_r) if gitops_r is not None else GitOpsSpec()
    spec = CanarySpec(
        target_ref=target,
        service=service,
        analysis=analysis,
        autoscaler_ref=autoscaler,
        ingress_ref=_ref(spec_r.obj("ingressRef")),
        route_ref=_ref(spec_r.obj("routeRef")),
        upstream_ref=_ref(spec_r.obj("upstreamRef")),
        provider=provider,
        metrics_server=spec_r.opt_str("metricsServer"),
        progress_deadline_seconds=spec_r.integer(
            "progressDeadlineSeconds", DEFAULT_PROGRESS_DEADLINE_SECONDS, minimum=1
        ),
        skip_analysis=spec_r.boolean("skipAnalysis"),
        suspend=spec_r.boolean("suspend"),
        revert_on_deletion=spec_r.boolean("revertOnDeletion"),
        gitops=gitops,
    )
    if check_provider:
        _check_provider(
            spec_r,
            provider,
            {"ingressRef": spec.ingress_ref is not None, "gatewayRefs": bool(service.gateway_refs)},
        )
        _check_service_target(spec_r, spec, provider)
    if analysis is not None and analysis_r is not None:
        _check_strategy(analysis_r, analysis, provider)
        if check_provider:
            _check_router_features(analysis_r, analysis, provider)

    issues.raise_if_errors()
    return Canary(
        name=meta.string("name", required=False),
        namespace=meta.string("namespace") or "default",
        spec=spec,
        generation=meta.integer("generation"),
        uid=meta.string("uid"),
        annotations=meta.str_map("annotations"),
        warnings=tuple(i for i in issues.items if i.severity == "warning"),
    )


def _check_kind(root: Reader) -> None:
    """``apiVersion`` and ``kind``: ours, and a Flagger manifest is told how to convert."""
    api_version = root.string("apiVersion")
    if api_version == FLAGGER_API_VERSION:
        root.issues.error(
            "apiVersion",
            f'"{FLAGGER_API_VERSION}" is Flagger\'s; change it to "{API_VERSION}" (canary convert does this)',
        )
    elif api_version and api_version != API_VERSION:
        root.issues.error("apiVersion", f'expected "{API_VERSION}", got "{api_version}"')
    kind = root.string("kind")
    if kind and kind != "Canary":
        root.issues.error("kind", f'expected "Canary", got "{kind}"')


SERVICE_TARGET_API_VERSIONS = ("v1", KNATIVE_SERVICE_API_VERSION := "serving.knative.dev/v1")


def _parse_target(spec_r: Reader) -> ObjectRef:
    """``spec.targetRef``: a Deployment, a DaemonSet, a Service (core ``v1``, the default
    for kind Service, or Knative ``serving.knative.dev/v1``); a placeholder when missing."""
    target = _ref(spec_r.obj("targetRef", required=True))
    if target is not None and target.kind == "Service":
        if not target.api_version:
            return ObjectRef("Service", target.name, "v1", target.namespace)
        if target.api_version not in SERVICE_TARGET_API_VERSIONS:
            spec_r.issues.error(
                "spec.targetRef.apiVersion",
                f"a Service target is v1 (core) or {KNATIVE_SERVICE_API_VERSION} (Knative), "
                f'got "{target.api_version}"',
            )
        return target
    if target is not None and target.kind and target.kind not in ("Deployment", "DaemonSet"):
        spec_r.issues.error(
            "spec.targetRef.kind",
            f'expected Deployment, DaemonSet or Service, got "{target.kind}"',
        )
    return target or ObjectRef(kind="Deployment", name="")


def _check_service_target(r: Reader, spec: CanarySpec, provider: str) -> None:
    """Knative Service targets go with ``provider: knative`` (and no autoscalerRef, as
    Flagger's verifyCanary), which cannot match requests; a core Service target is the
    apex its copies are named after, so ``service.name`` is the target's."""
    target = spec.target_ref
    knative = target.kind == "Service" and target.api_version == KNATIVE_SERVICE_API_VERSION
    if knative and provider != "knative":
        r.issues.error(r.at("provider"), "a Knative Service target needs provider knative")
    if provider == "knative" and not knative:
        r.issues.error(
            r.at("targetRef"),
            f"the knative provider needs a Knative Service target "
            f"(apiVersion {KNATIVE_SERVICE_API_VERSION}, kind Service)",
        )
    if target.kind == "Service" and spec.autoscaler_ref is not None:
        r.issues.error(r.at("autoscalerRef"), "a Service target has no workload to autoscale")
    if target.kind == "Service" and not knative and spec.service.name != target.name:
        r.issues.error(
            r.at("service.name"),
            f"a Service target's copies are {target.name}-primary and {target.name}-canary: "
            f'leave service.name out or set it to "{target.name}"',
        )
    if provider == "knative" and spec.analysis is not None and spec.analysis.match:
        # (mirror and sessionAffinity are refused for every router without them)
        r.issues.error(
            r.at("analysis.match"),
            "A/B testing (match) needs a router that can match requests; "
            "Knative splits traffic by percentage only",
        )


def _analysis_reader(spec_r: Reader) -> Reader | None:
    """``spec.analysis``, or Flagger's deprecated ``spec.canaryAnalysis`` (with a warning)."""
    analysis_r = spec_r.obj("analysis")
    if analysis_r is None and spec_r.has("canaryAnalysis"):
        analysis_r = spec_r.obj("canaryAnalysis")
        spec_r.issues.warning("spec.canaryAnalysis", "deprecated: rename it to spec.analysis")
    return analysis_r


def _parse_autoscaler(r: Reader | None) -> AutoscalerRef | None:
    if r is None:
        return None
    replicas = r.obj("primaryScalerReplicas")
    autoscaler = AutoscalerRef(
        kind=r.string("kind", required=True),
        name=r.string("name", required=True),
        api_version=r.string("apiVersion"),
        primary_scaler_queries=r.str_map("primaryScalerQueries"),
        primary_min_replicas=replicas.integer("minReplicas", minimum=0) or None
        if replicas
        else None,
        primary_max_replicas=replicas.integer("maxReplicas", minimum=1) or None
        if replicas
        else None,
    )
    if autoscaler.kind and autoscaler.kind not in ("HorizontalPodAutoscaler", "ScaledObject"):
        r.issues.error(
            "spec.autoscalerRef.kind",
            f'expected HorizontalPodAutoscaler or ScaledObject, got "{autoscaler.kind}"',
        )
    return autoscaler


def _parse_gitops(r: Reader) -> GitOpsSpec:
    """``spec.gitops`` (ours): where the target comes from and how a rollback reverts it."""
    source_r = r.obj("source")
    source = _ref(source_r) if source_r else None
    if source is not None and source.kind not in ("GitSource", "Kustomization", "Application"):
        r.issues.error(
            "spec.gitops.source.kind",
            f'expected GitSource, Kustomization or Application, got "{source.kind}"',
        )
    enabled, mode, pull_request = _parse_revert(r)
    return GitOpsSpec(
        revert=enabled,
        source=source,
        paths=r.str_list("paths"),
        mode=mode,
        pull_request=pull_request,
    )


def _parse_revert(gitops_r: Reader) -> tuple[bool, str, PullRequestSpec]:
    """``spec.gitops.revert``: ``true``/``false``, or ``{enabled, mode, pullRequest}``."""
    revert_raw = gitops_r.raw("revert", True)
    if isinstance(revert_raw, bool):
        return revert_raw, PUSH_MODE, PullRequestSpec()
    if not isinstance(revert_raw, Mapping):
        gitops_r.issues.error(
            gitops_r.at("revert"),
            "expected true, false or an object with enabled, mode and pullRequest, "
            f"got {describe(revert_raw)}",
        )
        return True, PUSH_MODE, PullRequestSpec()
    revert_r = gitops_r.obj("revert")
    assert revert_r is not None
    enabled = revert_r.boolean("enabled", True)
    mode = revert_r.string("mode", PUSH_MODE)
    if mode not in REVERT_MODES:
        revert_r.issues.error(revert_r.at("mode"), f'expected push or pullRequest, got "{mode}"')
    pr_r = revert_r.obj("pullRequest")
    pull_request = _parse_pull_request(pr_r) if pr_r is not None else PullRequestSpec()
    return enabled, mode, pull_request


def _parse_pull_request(r: Reader) -> PullRequestSpec:
    forge = r.opt_str("provider")
    if forge is not None and forge not in FORGE_PROVIDERS:
        r.issues.error(
            r.at("provider"),
            f'expected one of {", ".join(FORGE_PROVIDERS)}, got "{forge}"',
        )
    forge_api = r.opt_str("apiURL")
    if forge_api is not None and not forge_api.startswith(("https://", "http://")):
        r.issues.error(r.at("apiURL"), f'expected an http(s) URL, got "{forge_api}"')
    secret_r = r.obj("secretRef")
    forge_secret = secret_r.string("name", required=True) if secret_r else None
    return PullRequestSpec(forge, forge_api, forge_secret or None)


def _check_router_features(r: Reader, analysis: AnalysisSpec, provider: str) -> None:
    """A/B testing, mirroring and session affinity need a router that implements them."""
    path = r.path
    if provider == "kubernetes" and analysis.match:
        r.issues.error(
            f"{path}.match",
            "A/B testing (match) needs a router that can match requests; the kubernetes provider cannot",
        )
    if analysis.match and provider.startswith("smi:"):
        r.issues.error(
            f"{path}.match",
            "A/B testing (match) needs a router that can match requests; SMI TrafficSplit cannot",
        )
    if analysis.match and provider in ("kuma", "osm"):
        r.issues.error(
            f"{path}.match",
            f"A/B testing (match) is not implemented by the {provider} router (as in Flagger), "
            "which splits by weight only",
        )
    if analysis.match and provider in ("traefik", "apisix", "skipper"):
        r.issues.error(
            f"{path}.match",
            f"A/B testing (match) is not implemented by the {provider} router (as in Flagger), "
            "which splits by weight only",
        )
    if analysis.mirror and analysis.match:
        r.issues.error(f"{path}.mirror", "mirroring and A/B testing (match) cannot be combined")
    if analysis.mirror and provider.startswith("gatewayapi") and analysis.iterations <= 0:
        r.issues.error(
            f"{path}.mirror",
            "with gatewayapi, mirroring is available for blue/green (iterations) only",
        )
    if provider == "nginx":
        _check_nginx_match(r, analysis.match)
    istio_or_gatewayapi = provider == "istio" or provider.startswith("gatewayapi")
    if analysis.mirror and not istio_or_gatewayapi:
        r.issues.error(
            f"{path}.mirror",
            f'traffic mirroring is implemented by istio and gatewayapi only, not by "{provider}"',
        )
    if analysis.session_affinity is not None and not istio_or_gatewayapi:
        r.issues.error(
            f"{path}.sessionAffinity",
            f'session affinity is implemented by istio and gatewayapi only, not by "{provider}"',
        )
