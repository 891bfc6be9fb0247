"""Parsing a Canary: Flagger's defaults, and malformed canaries answered with field paths.

Reference: flagger.md 1.1 (fields and defaults), 2.6 (maxWeight / nextStepWeight),
5.2 (alert severity routing); checklist items 5, 17, 23, 24, 42.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from canary.model import (
    AlertRef,
    AnalysisSpec,
    HookType,
    Severity,
    SpecError,
    Strategy,
    parse_canary,
)
from tests.core.harness import canary_doc, hook

Spec = dict[str, Any]


def parse_spec(change: Callable[[Spec], object] | None = None, **analysis: Any) -> Any:
    doc = canary_doc(analysis or {"stepWeight": 10})
    if change is not None:
        change(doc["spec"])
    return parse_canary(doc)


# ------------------------------------------------------------------ defaults


def test_flagger_defaults_are_applied() -> None:
    canary = parse_spec()
    spec = canary.spec
    analysis = spec.analysis
    assert analysis is not None
    assert canary.namespace == "test"
    assert spec.progress_deadline_seconds == 600
    assert (
        spec.skip_analysis is False and spec.suspend is False and spec.revert_on_deletion is False
    )
    assert spec.service.name == "podinfo"  # service.name defaults to targetRef.name
    assert spec.service.port_name == "http"
    assert spec.service.effective_target_port == 9898  # targetPort defaults to port
    assert analysis.interval_seconds == 60
    assert analysis.threshold == 1
    assert analysis.max_weight == 100
    assert analysis.step_weight_promotion == 0
    assert analysis.iterations == 0
    assert analysis.primary_ready_threshold == 100 and analysis.canary_ready_threshold == 100
    assert analysis.metrics[0].interval == "1m"
    assert spec.gitops.revert is True


def test_interval_defaults_to_60s_without_the_field() -> None:
    doc = canary_doc({"stepWeight": 10})
    del doc["spec"]["analysis"]["interval"]
    assert parse_canary(doc).spec.interval_seconds == 60


@pytest.mark.parametrize(
    ("interval", "seconds", "warns"),
    [
        pytest.param("1m", 60, False, id="item5-1m"),
        pytest.param("30s", 30, False, id="item5-30s"),
        pytest.param("10s", 10, False, id="item5-minimum"),
        pytest.param("5s", 10, True, id="item5-below-minimum-clamped-to-10s"),
        pytest.param("1m30s", 90, False, id="go-duration"),
    ],
)
def test_analysis_interval(interval: str, seconds: int, warns: bool) -> None:
    """Checklist 5: default 60s, values under 10s become 10s (with a warning naming the field)."""
    canary = parse_spec(interval=interval, stepWeight=10)
    assert canary.spec.interval_seconds == seconds
    assert any(w.path == "spec.analysis.interval" for w in canary.warnings) is warns


@pytest.mark.parametrize(
    ("threshold", "effective"),
    [
        pytest.param(0, 1, id="item17-zero-means-1"),
        pytest.param(-3, 1, id="item17-negative-means-1"),
        pytest.param(1, 1, id="one"),
        pytest.param(5, 5, id="five"),
    ],
)
def test_threshold_of_zero_or_less_means_one(threshold: int, effective: int) -> None:
    """Checklist 17: threshold <= 0 => 1."""
    assert parse_spec(stepWeight=10, threshold=threshold).spec.analysis.threshold == effective


@pytest.mark.parametrize(
    ("analysis", "strategy"),
    [
        pytest.param({"stepWeight": 10}, Strategy.CANARY, id="stepWeight-canary"),
        pytest.param({"stepWeights": [1, 2]}, Strategy.CANARY, id="stepWeights-canary"),
        pytest.param({"iterations": 3}, Strategy.BLUE_GREEN, id="item26-iterations-blue-green"),
        pytest.param(
            {"iterations": 3, "match": [{"headers": {"x-canary": {"exact": "insider"}}}]},
            Strategy.AB_TESTING,
            id="item25-match-and-iterations-ab",
        ),
    ],
)
def test_strategy_derivation(analysis: dict[str, Any], strategy: Strategy) -> None:
    """Reference 1.1: match+iterations => A/B, iterations => blue/green, else canary."""
    parsed = parse_spec(**analysis).spec.analysis
    assert parsed.strategy is strategy


@pytest.mark.parametrize(
    ("analysis", "max_weight"),
    [
        pytest.param({"stepWeight": 10}, 100, id="item23-default-100"),
        pytest.param({"stepWeight": 10, "maxWeight": 50}, 50, id="item23-maxWeight"),
        pytest.param({"stepWeights": [1, 2, 10, 80]}, 80, id="item23-last-stepWeights"),
        pytest.param({"stepWeights": [5, 30], "maxWeight": 90}, 30, id="item23-stepWeights-win"),
    ],
)
def test_max_weight(analysis: dict[str, Any], max_weight: int) -> None:
    assert parse_spec(**analysis).spec.analysis.max_weight == max_weight


@pytest.mark.parametrize(
    ("analysis", "weight", "step"),
    [
        pytest.param(AnalysisSpec(step_weight=10), 0, 10, id="stepWeight-from-0"),
        pytest.param(AnalysisSpec(step_weight=10), 90, 10, id="stepWeight-at-90"),
        pytest.param(AnalysisSpec(), 0, 0, id="item24-nothing-set-never-advances"),
        pytest.param(AnalysisSpec(step_weights=(1, 2, 10, 80)), 0, 1, id="sw-first"),
        pytest.param(AnalysisSpec(step_weights=(1, 2, 10, 80)), 1, 1, id="sw-1-to-2"),
        pytest.param(AnalysisSpec(step_weights=(1, 2, 10, 80)), 2, 8, id="sw-2-to-10"),
        pytest.param(AnalysisSpec(step_weights=(1, 2, 10, 80)), 10, 70, id="sw-10-to-80"),
        pytest.param(AnalysisSpec(step_weights=(1, 2, 10, 80)), 80, 20, id="sw-last-maxstep"),
        pytest.param(AnalysisSpec(step_weights=(1, 2, 10, 80)), 5, 95, id="sw-off-path"),
        pytest.param(AnalysisSpec(step_weights=(50, 100)), 100, 1, id="sw-maxstep-0-means-1"),
        pytest.param(AnalysisSpec(step_weights=(60, 120)), 60, 40, id="sw-capped-by-100"),
        pytest.param(AnalysisSpec(step_weight=5, step_weights=(50,)), 0, 5, id="stepWeight-wins"),
    ],
)
def test_next_step_weight(analysis: AnalysisSpec, weight: int, step: int) -> None:
    """Reference 2.6, nextStepWeight (checklist 23, 24)."""
    assert analysis.next_step_weight(weight) == step


def test_webhook_defaults() -> None:
    canary = parse_spec(stepWeight=10, webhooks=[{"name": "load", "url": "http://load.test/"}])
    (webhook,) = canary.spec.analysis.webhooks
    assert webhook.type is HookType.ROLLOUT  # "" means rollout
    assert webhook.timeout_seconds == 10.0
    assert webhook.retries == 0
    assert webhook.mute_alert is False


def test_deprecated_canary_analysis_alias() -> None:
    doc = canary_doc(None)
    doc["spec"]["canaryAnalysis"] = {"interval": "30s", "stepWeight": 20, "metrics": []}
    canary = parse_canary(doc)
    assert canary.spec.analysis is not None and canary.spec.analysis.step_weight == 20
    assert any(w.path == "spec.canaryAnalysis" for w in canary.warnings)


def test_analysis_wins_over_canary_analysis() -> None:
    doc = canary_doc({"stepWeight": 10})
    doc["spec"]["canaryAnalysis"] = {"interval": "30s", "stepWeight": 20}
    assert parse_canary(doc).spec.analysis.step_weight == 10  # type: ignore[union-attr]


def test_no_analysis_means_skip_analysis() -> None:
    """Reference 1.1: analysis nil => SkipAnalysis() is true (checklist 36)."""
    assert parse_canary(canary_doc(None)).spec.skips_analysis is True
    assert parse_spec(lambda s: s.update(skipAnalysis=True)).spec.skips_analysis is True
    assert parse_spec().spec.skips_analysis is False


@pytest.mark.parametrize(
    ("subscribed", "sent", "delivered"),
    [
        pytest.param(Severity.INFO, Severity.INFO, True, id="item42-info-gets-info"),
        pytest.param(Severity.INFO, Severity.WARN, True, id="item42-info-gets-warn"),
        pytest.param(Severity.INFO, Severity.ERROR, True, id="item42-info-gets-error"),
        pytest.param(Severity.WARN, Severity.INFO, False, id="item42-warn-not-info"),
        pytest.param(Severity.WARN, Severity.WARN, True, id="item42-warn-gets-warn"),
        pytest.param(Severity.WARN, Severity.ERROR, True, id="item42-warn-gets-error"),
        pytest.param(Severity.ERROR, Severity.INFO, False, id="item42-error-not-info"),
        pytest.param(Severity.ERROR, Severity.WARN, False, id="item42-error-not-warn"),
        pytest.param(Severity.ERROR, Severity.ERROR, True, id="item42-error-gets-error"),
    ],
)
def test_alert_severity_routing(subscribed: Severity, sent: Severity, delivered: bool) -> None:
    """Reference 5.2: info ⊇ warn ⊇ error."""
    assert AlertRef("team", "slack", severity=subscribed).accepts(sent) is delivered


def test_alert_with_empty_severity_means_info() -> None:
    """Difference (reference 2.17): Flagger's empty severity never fires; ours means info."""
    canary = parse_spec(
        stepWeight=10, alerts=[{"name": "team", "severity": "", "providerRef": {"name": "slack"}}]
    )
    (alert,) = canary.spec.analysis.alerts
    assert alert.severity is Severity.INFO
    assert alert.accepts(Severity.INFO)


# ------------------------------------------------------------------ malformed canaries


def _set(path: str, value: Any) -> Callable[[Spec], None]:
    """Set a dotted path below ``spec`` (creating objects on the way)."""

    def change(spec: Spec) -> None:
        node: Any = spec
        parts = path.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value

    return change


def _drop(path: str) -> Callable[[Spec], None]:
    def change(spec: Spec) -> None:
        node: Any = spec
        parts = path.split(".")
        for part in parts[:-1]:
            node = node[part]
        del node[parts[-1]]

    return change


MALFORMED: list[Any] = [
    pytest.param(
        _set("analysis.stepWeight", "ten"), "spec.analysis.stepWeight", id="wrong-type-stepWeight"
    ),
    pytest.param(
        _set("analysis.threshold", True), "spec.analysis.threshold", id="wrong-type-threshold-bool"
    ),
    pytest.param(
        _set("analysis.maxWeight", 150), "spec.analysis.maxWeight", id="maxWeight-over-100"
    ),
    pytest.param(
        _set("analysis.stepWeight", -5), "spec.analysis.stepWeight", id="negative-stepWeight"
    ),
    pytest.param(_set("analysis.metrics", "all"), "spec.analysis.metrics", id="metrics-not-a-list"),
    pytest.param(_set("analysis.mirror", "yes"), "spec.analysis.mirror", id="wrong-type-mirror"),
    pytest.param(_set("skipAnalysis", "true"), "spec.skipAnalysis", id="wrong-type-skipAnalysis"),
    pytest.param(_set("service.port", "http"), "spec.service.port", id="wrong-type-port"),
    pytest.param(_set("provider", "foo-mesh"), "spec.provider", id="unknown-provider"),
    pytest.param(_set("provider", 7), "spec.provider", id="provider-not-a-string"),
    pytest.param(_drop("targetRef"), "spec.targetRef", id="missing-targetRef"),
    pytest.param(_set("targetRef", "podinfo"), "spec.targetRef", id="targetRef-not-an-object"),
    pytest.param(_drop("targetRef.name"), "spec.targetRef.name", id="targetRef-without-name"),
    pytest.param(
        _set("targetRef.kind", "StatefulSet"), "spec.targetRef.kind", id="unsupported-target-kind"
    ),
    pytest.param(_set("analysis.interval", "soon"), "spec.analysis.interval", id="bad-interval"),
    pytest.param(_set("analysis.interval", 60), "spec.analysis.interval", id="interval-a-number"),
    pytest.param(
        _set("analysis.metrics", [{"name": "m", "interval": "1 minute", "query": "up"}]),
        "spec.analysis.metrics[0].interval",
        id="bad-metric-interval",
    ),
    pytest.param(_drop("analysis.stepWeight"), "spec.analysis", id="item24-never-advances"),
    pytest.param(
        _set("analysis.stepWeights", [10, 5]),
        "spec.analysis.stepWeights[1]",
        id="stepWeights-decrease",
    ),
    pytest.param(
        _set("analysis.stepWeights", [0, 50]), "spec.analysis.stepWeights[0]", id="stepWeights-zero"
    ),
    pytest.param(
        _set("analysis.sessionAffinity", {"cookieName": "canary", "primaryCookieName": "canary"}),
        "spec.analysis.sessionAffinity.primaryCookieName",
        id="equal-session-cookie-names",
    ),
    pytest.param(
        _set(
            "analysis.webhooks",
            [{"name": "gate", "type": "confirm-everything", "url": "http://g/"}],
        ),
        "spec.analysis.webhooks[0].type",
        id="unknown-webhook-type",
    ),
    pytest.param(
        _set("analysis.webhooks", [{"name": "gate", "type": "rollout"}]),
        "spec.analysis.webhooks[0].url",
        id="webhook-without-url",
    ),
    pytest.param(
        _set("analysis.alerts", [{"name": "a", "severity": "loud", "providerRef": {"name": "s"}}]),
        "spec.analysis.alerts[0].severity",
        id="unknown-alert-severity",
    ),
    pytest.param(
        _set("analysis.match", [{"headers": {"x": {"exact": "y"}}}]),
        "spec.analysis.match",
        id="match-without-iterations",
    ),
    pytest.param(
        lambda s: s.update(
            provider="kubernetes",
            analysis={**s["analysis"], "iterations": 2, "match": [{"headers": {}}]},
        ),
        "spec.analysis.match",
        id="item27-kubernetes-with-match",
    ),
    pytest.param(
        lambda s: s.update(provider="nginx"), "spec.ingressRef", id="nginx-without-ingressRef"
    ),
    pytest.param(_set("analysis", [1, 2]), "spec.analysis", id="analysis-not-an-object"),
]


@pytest.mark.parametrize(("change", "path"), MALFORMED)
def test_malformed_canary_names_the_field(change: Callable[[Spec], None], path: str) -> None:
    doc = canary_doc({"stepWeight": 10})
    change(doc["spec"])
    with pytest.raises(SpecError) as caught:
        parse_canary(doc)
    paths = [issue.path for issue in caught.value.errors]
    assert path in paths, caught.value.issues
    assert all(issue.message for issue in caught.value.errors)


def test_every_error_is_reported_at_once() -> None:
    doc = canary_doc({"stepWeight": "ten", "interval": "soon"}, provider="foo")
    with pytest.raises(SpecError) as caught:
        parse_canary(doc)
    paths = {i.path for i in caught.value.errors}
    assert {"spec.analysis.stepWeight", "spec.analysis.interval", "spec.provider"} <= paths


def test_flagger_api_version_is_answered_with_the_fix() -> None:
    doc = canary_doc({"stepWeight": 10})
    doc["apiVersion"] = "flagger.app/v1beta1"
    with pytest.raises(SpecError) as caught:
        parse_canary(doc)
    (issue,) = caught.value.errors
    assert issue.path == "apiVersion" and "canary.gitops.dev/v1beta1" in issue.message


def test_spec_missing_entirely() -> None:
    with pytest.raises(SpecError) as caught:
        parse_canary(
            {"apiVersion": "canary.gitops.dev/v1beta1", "kind": "Canary", "metadata": {"name": "x"}}
        )
    assert "spec" in [i.path for i in caught.value.errors]


# ------------------------------------------------------------------ never a traceback

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-1000, 1000)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)

FIELDS = [
    "provider",
    "targetRef",
    "targetRef.kind",
    "targetRef.name",
    "service",
    "service.port",
    "service.targetPort",
    "service.gatewayRefs",
    "service.match",
    "autoscalerRef",
    "autoscalerRef.primaryScalerReplicas",
    "progressDeadlineSeconds",
    "skipAnalysis",
    "gitops",
    "gitops.source",
    "analysis",
    "analysis.interval",
    "analysis.threshold",
    "analysis.maxWeight",
    "analysis.stepWeight",
    "analysis.stepWeights",
    "analysis.iterations",
    "analysis.match",
    "analysis.metrics",
    "analysis.webhooks",
    "analysis.alerts",
    "analysis.sessionAffinity",
    "analysis.mirror",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(FIELDS), JSON), min_size=1, max_size=4))
def test_garbage_in_any_field_is_a_spec_error_never_a_traceback(
    garbage: list[tuple[str, Any]],
) -> None:
    doc = canary_doc({"stepWeight": 10, "webhooks": [hook("gate", "confirm-rollout")]})
    for path, value in garbage:
        spec = doc["spec"]
        node: Any = spec
        parts = path.split(".")
        for part in parts[:-1]:
            child = node.get(part) if isinstance(node, dict) else None
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[parts[-1]] = copy.deepcopy(value)
    try:
        parse_canary(doc)
    except SpecError as error:
        assert error.errors, "a SpecError must carry at least one error"
        for issue in error.errors:
            assert issue.message
            assert issue.path == "" or issue.path.startswith(
                ("spec", "apiVersion", "kind", "metadata")
            )


# ------------------------------------------------------------------ spec.gitops.revert


def test_gitops_revert_defaults_to_push_mode() -> None:
    gitops = parse_spec().spec.gitops
    assert (gitops.revert, gitops.mode) == (True, "push")
    assert gitops.pull_request.provider is None


@pytest.mark.parametrize("value", [True, False])
def test_gitops_revert_still_takes_a_boolean(value: bool) -> None:
    spec = parse_spec(lambda s: s.update(gitops={"revert": value})).spec
    assert spec.gitops.revert is value and spec.gitops.mode == "push"


def test_gitops_revert_object_selects_pull_request_mode_and_the_forge() -> None:
    def change(spec: Spec) -> None:
        spec["gitops"] = {
            "revert": {
                "mode": "pullRequest",
                "pullRequest": {
                    "provider": "gitlab",
                    "apiURL": "https://gitlab.example.com/api/v4",
                    "secretRef": {"name": "forge-token"},
                },
            }
        }

    gitops = parse_spec(change).spec.gitops
    assert gitops.revert is True and gitops.mode == "pullRequest"
    assert gitops.pull_request.provider == "gitlab"
    assert gitops.pull_request.api_url == "https://gitlab.example.com/api/v4"
    assert gitops.pull_request.secret_name == "forge-token"


@pytest.mark.parametrize(
    ("revert", "path", "words"),
    [
        ("no", "spec.gitops.revert", "expected true, false or an object"),
        ({"mode": "merge"}, "spec.gitops.revert.mode", "expected push or pullRequest"),
        (
            {"mode": "pullRequest", "pullRequest": {"provider": "sourcehut"}},
            "spec.gitops.revert.pullRequest.provider",
            "expected one of github, gitlab",
        ),
        (
            {"pullRequest": {"apiURL": "ftp://x"}},
            "spec.gitops.revert.pullRequest.apiURL",
            "expected an http(s) URL",
        ),
    ],
)
def test_a_wrong_gitops_revert_names_the_field(revert: object, path: str, words: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(lambda s: s.update(gitops={"revert": revert}))
    issues = [i for i in caught.value.issues if i.path == path]
    assert issues and words in issues[0].message


def test_a_dry_run_metric_is_advisory_and_others_are_not() -> None:
    metrics = [
        {"name": "request-success-rate", "thresholdRange": {"min": 99}},
        {"name": "request-duration", "thresholdRange": {"max": 500}, "dryRun": True},
    ]
    parsed = parse_spec(stepWeight=10, metrics=metrics).spec.analysis.metrics
    assert [m.dry_run for m in parsed] == [False, True]


def test_a_dry_run_that_is_not_a_boolean_is_refused_at_its_field() -> None:
    metrics = [{"name": "request-success-rate", "thresholdRange": {"min": 99}, "dryRun": "yes"}]
    with pytest.raises(SpecError) as caught:
        parse_spec(stepWeight=10, metrics=metrics)
    (issue,) = caught.value.errors
    assert issue.path == "spec.analysis.metrics[0].dryRun"
    assert issue.message == 'expected true or false, got "yes"'


RETRIED_METRICS = [
    {"name": "request-success-rate", "compare": {}},
    {"name": "request-duration", "compare": {}},
    {
        "name": "errors-before-the-mesh",
        "query": "unused",
        "compare": {
            "test": "errorRate",
            "retries": 0,
            "requestsQuery": "sum(increase(requests[{{ interval }}]))",
            "errorsQuery": "sum(increase(errors[{{ interval }}]))",
        },
    },
]


def retried(provider: str, retries: dict[str, Any]) -> list[int | None]:
    """The ``compare.retries`` each of :data:`RETRIED_METRICS` gets behind ``retries``."""

    def change(spec: Spec) -> None:
        spec["provider"] = provider
        spec["service"]["retries"] = retries
        if provider == "appmesh":
            spec["service"]["meshName"] = "global"

    parsed = parse_spec(change, stepWeight=10, metrics=RETRIED_METRICS).spec.analysis.metrics
    return [m.compare.retries for m in parsed]


def test_the_mesh_retry_policy_tells_the_error_judge_its_clusters() -> None:
    # The router retries a failed request 3 more times on the same version and every attempt
    # is counted: an errorRate compare without retries of its own takes it; a latency test
    # and a metric that says 0 do not.
    assert retried("istio", {"attempts": 3, "retryOn": "5xx,reset"}) == [3, None, 0]
    assert retried("istio", {"attempts": 3, "retryOn": "gateway-error"}) == [3, None, 0]
    assert retried("contour", {"attempts": 2}) == [2, None, 0]  # Contour retries 5xx by default
    assert retried("appmesh", {"attempts": 2}) == [2, None, 0]  # App Mesh: gateway errors
    assert retried("contour", {}) == [1, None, 0]  # a retry policy retries once by default
    assert retried("appmesh:v1beta2", {"perTryTimeout": "1s"}) == [1, None, 0]


def test_retries_that_never_repeat_an_error_are_not_declared() -> None:
    # Istio's default retryOn (connection failures, 503s), a policy for connection failures
    # only, and a provider whose router does not apply service.retries: nothing declared.
    assert retried("istio", {"attempts": 3}) == [None, None, 0]
    assert retried("contour", {"attempts": 3, "retryOn": "connect-failure"}) == [None, None, 0]
    assert retried("linkerd", {"attempts": 3, "retryOn": "5xx"}) == [None, None, 0]
    assert retried("istio", {"attempts": 0, "retryOn": "5xx"}) == [None, None, 0]
    assert retried("istio", {"retryOn": "5xx"}) == [None, None, 0]  # Istio's count unknown


@pytest.mark.parametrize("attempts", ["3", 2.5, -1, True])
def test_retry_attempts_that_are_not_a_count_name_the_field(attempts: object) -> None:
    def change(spec: Spec) -> None:
        spec["service"]["retries"] = {"attempts": attempts, "retryOn": "5xx"}

    with pytest.raises(SpecError) as caught:
        parse_spec(change, stepWeight=10)
    (issue,) = caught.value.errors
    assert issue.path == "spec.service.retries.attempts"
    assert issue.message.startswith("expected an integer >= 0, got ")
