"""What people read: message content per alert kind, templates, and the factory's checks."""

from __future__ import annotations

import json
from dataclasses import replace

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from canary.adapters.notifiers import (
    SENDERS,
    TEMPLATE_FIELDS,
    NotificationTemplateError,
    NotifierConfigError,
    RenderContext,
    compile_template,
    make_sender,
    render_message,
    validate_provider,
    validate_template,
)
from canary.adapters.notifiers.generic import GENERIC_SCHEMA, generic_payload
from canary.adapters.notifiers.rendering import format_duration, format_number
from canary.core.actions import AlertKind
from canary.model.canary import Severity
from canary.model.status import MetricStatus, VerdictFlags
from tests.notify.samples import (
    FAILING_RATE,
    LATENCY,
    NOW,
    SUCCESS_RATE,
    alert_of,
    promoted,
    provider,
    reverted,
    threshold_reached,
)

CONTEXT = RenderContext(now=NOW, cluster="prod-eu-1")


class TestPromotionMessage:
    def test_names_canary_namespace_and_cluster(self) -> None:
        m = render_message(promoted(), CONTEXT)
        assert m.title == "Promoted: podinfo.test"
        assert ("Cluster", "prod-eu-1") in m.facts
        assert "test/podinfo" in m.context

    def test_names_new_and_previous_revision_and_images(self) -> None:
        m = render_message(promoted(), CONTEXT)
        assert ("Revision", "main@sha1:4f9c2e1ab3d2") in m.facts
        assert ("Previous revision", "main@sha1:77aa0b3c9e10") in m.facts
        assert ("Image", "ghcr.io/stefanprodan/podinfo:6.5.1") in m.facts
        assert ("Previous image", "ghcr.io/stefanprodan/podinfo:6.5.0") in m.facts
        assert "replacing main@sha1:77aa0b3c9e10" in m.text

    def test_states_the_duration(self) -> None:
        m = render_message(promoted(), CONTEXT)
        assert ("Duration", "12m34s") in m.facts
        assert "took 12m34s" in m.text

    def test_summarises_each_metric_with_its_numbers(self) -> None:
        m = render_message(promoted(), CONTEXT)
        rate, latency = m.checks
        assert rate.text.startswith("request-success-rate passed (value 99.95, threshold >= 99)")
        assert SUCCESS_RATE.summary in rate.text
        assert "value 212, threshold <= 500, primary 230" in latency.text
        assert LATENCY.summary in latency.text

    def test_keeps_flaggers_sentence(self) -> None:
        assert render_message(promoted(), CONTEXT).text.startswith(
            "Canary analysis completed successfully, promotion finished."
        )

    def test_previous_equal_to_current_is_not_repeated(self) -> None:
        alert = replace(
            promoted(), previous_revision=promoted().revision, previous_images=promoted().images
        )
        m = render_message(alert, CONTEXT)
        names = [name for name, _ in m.facts]
        assert "Previous revision" not in names and "Previous image" not in names
        assert "replacing" not in m.text

    def test_no_failed_checks_fact_when_nothing_failed(self) -> None:
        alert = replace(alert_of(AlertKind.INITIALIZED), threshold=5)
        assert "Failed checks" not in [name for name, _ in render_message(alert, CONTEXT).facts]


class TestRollbackMessage:
    def test_says_which_check_failed_with_its_numbers(self) -> None:
        m = render_message(threshold_reached(), CONTEXT)
        assert (
            "Failed check: request-success-rate FAILED (value 91.2, threshold >= 99, primary 99.8): "
            + FAILING_RATE.summary
        ) in m.text
        assert (
            "request-duration" not in m.text
        )  # the passing check is in the analysis, not the reason

    def test_gives_the_failed_check_count_and_weight(self) -> None:
        m = render_message(threshold_reached(), CONTEXT)
        assert "Failed checks: 5 of 5 allowed, at canary weight 20%." in m.text
        assert ("Canary weight", "20%") in m.facts
        assert ("Failed checks", "5 of 5") in m.facts

    def test_a_conclusive_regression_reads_as_a_rollback_without_a_count(self) -> None:
        # compare.failFast rolls back on one significant finding: the message says what was
        # rolled back and the finding's numbers, and no "1 of 2 failed checks" that did not
        # decide it.
        alert = replace(
            threshold_reached(),
            kind=AlertKind.REGRESSION,
            message=f"Canary is conclusively worse than the primary: {FAILING_RATE.summary}",
            failed_checks=1,
            threshold=2,
        )
        m = render_message(alert, CONTEXT)
        assert m.title == "Rolled back: conclusively worse than the primary: podinfo.test"
        assert "Rolled back main@sha1:4f9c2e1ab3d2 to main@sha1:77aa0b3c9e10." in m.text
        assert "conclusively worse, at canary weight 20%." in m.text
        assert "Failed check: request-success-rate FAILED" in m.text
        assert "Failed checks" not in m.text
        assert "Failed checks" not in [name for name, _ in m.facts]
        # The finding is told once, in its check's line with the numbers; the message that
        # repeats it stays in the payload for templates and scripts.
        assert m.text.count(FAILING_RATE.summary) == 1
        assert generic_payload(m)["message"] == alert.message

    def test_a_regression_without_its_checks_keeps_its_message(self) -> None:
        alert = replace(
            threshold_reached(), kind=AlertKind.REGRESSION, message="Canary is worse", analysis=()
        )
        assert render_message(alert, CONTEXT).text.startswith("Canary is worse\n")

    def test_every_kind_is_in_the_generic_schema(self) -> None:
        # The published schema is what receivers validate against: a kind it does not list
        # (a conclusive regression, a stall) would be rejected there.
        for kind in AlertKind:
            payload = generic_payload(render_message(alert_of(kind), CONTEXT))
            jsonschema.validate(payload, GENERIC_SCHEMA)

    def test_a_revert_names_the_commit(self) -> None:
        m = render_message(reverted(), CONTEXT)
        assert "with commit 9d1e0c5b7a3f" in m.text
        assert ("Revert commit", "9d1e0c5b7a3f") in m.facts
        assert m.commit_url is None

    def test_a_revert_links_the_commit_when_the_controller_knows_the_repository(self) -> None:
        def link(namespace: str, commit: str) -> str:
            return f"https://git.example/{namespace}/apps/commit/{commit}"

        m = render_message(reverted(), replace(CONTEXT, commit_link=link))
        url = "https://git.example/test/apps/commit/9d1e0c5b7a3f2e4d6c8b0a1f3e5d7c9b1a2f4e6d"
        assert m.commit_url == url
        assert url in m.text

    def test_inconclusive_lists_the_metrics_that_did_not_decide(self) -> None:
        unsure = MetricStatus(
            name="error-rate", outcome="Inconclusive", summary="too few requests (12 < 100)"
        )
        alert = replace(
            alert_of(AlertKind.INCONCLUSIVE, Severity.WARN), analysis=(unsure, SUCCESS_RATE)
        )
        m = render_message(alert, CONTEXT)
        assert "Not conclusive: error-rate inconclusive: too few requests (12 < 100)" in m.text
        assert "request-success-rate" not in m.text

    def test_an_inconclusive_check_is_told_once(self) -> None:
        # The alert's message is "inconclusive: <the checks' summaries>", which the lines
        # below it told again, word for word.
        unsure = MetricStatus(
            name="error-rate", outcome="Inconclusive", summary="holding (check 1 of 5)"
        )
        alert = replace(
            alert_of(AlertKind.INCONCLUSIVE, Severity.WARN),
            message=f"Canary analysis is inconclusive: {unsure.summary}",
            analysis=(unsure,),
        )
        m = render_message(alert, CONTEXT)
        assert m.text == "Not conclusive: error-rate inconclusive: holding (check 1 of 5)"

    def test_a_stall_says_what_did_not_decide_and_leaves_advisory_metrics_out(self) -> None:
        unsure = MetricStatus(name="error-rate", outcome="Inconclusive", summary="40 of 1,200")
        advisory = MetricStatus(
            name="latency", outcome="Inconclusive", summary="n/a", flags=VerdictFlags(advisory=True)
        )
        alert = replace(
            alert_of(AlertKind.ANALYSIS_STALLED, Severity.WARN), analysis=(unsure, advisory)
        )
        m = render_message(alert, CONTEXT)
        assert m.title == "Analysis stalled: podinfo.test"
        assert "Not conclusive: error-rate inconclusive: 40 of 1,200" in m.text
        assert "Not conclusive: latency" not in m.text

    def test_an_advisory_failure_is_marked_and_never_named_as_a_failed_check(self) -> None:
        advisory = replace(LATENCY, outcome="Fail", flags=VerdictFlags(advisory=True))
        alert = replace(threshold_reached(), analysis=(FAILING_RATE, advisory))
        m = render_message(alert, CONTEXT)
        assert "Failed check: request-success-rate" in m.text
        assert f"Failed check: {advisory.name}" not in m.text
        assert f"{advisory.name} FAILED (advisory, dryRun: not acted on)" in m.analysis_text
        payload = generic_payload(m)
        assert [a.get("advisory") for a in payload["analysis"]] == [None, True]


class TestEveryKindRendersEverywhere:
    @pytest.mark.parametrize("kind", list(AlertKind))
    @pytest.mark.parametrize("provider_type", sorted(SENDERS))
    def test_payload_is_json_and_carries_the_sentence(
        self, kind: AlertKind, provider_type: str
    ) -> None:
        alert = replace(threshold_reached(), kind=kind, message=f"sentence for {kind.value}")
        sender = make_sender(provider(provider_type, "https://example.test/hook"))
        request = sender.render(alert, CONTEXT)
        encoded = json.dumps(request.body)
        if kind in (AlertKind.REGRESSION, AlertKind.INCONCLUSIVE):
            # Their message is the checks' summaries, told once, on the checks' lines.
            assert json.dumps(FAILING_RATE.summary)[1:-1] in encoded
        else:
            assert "sentence for " + kind.value in encoded
        assert "podinfo" in encoded

    def test_every_kind_has_its_own_headline(self) -> None:
        titles = {render_message(alert_of(kind), CONTEXT).title for kind in AlertKind}
        assert len(titles) == len(AlertKind)

    def test_flagger_metadata_fields_are_kept_without_duplicates(self) -> None:
        alert = replace(
            promoted(),
            fields=(
                ("Target", "Deployment/podinfo.test"),
                ("Traffic routing", "Weight step: 10 max: 50"),
                ("Cluster", "x"),
            ),
        )
        names = [name for name, _ in render_message(alert, CONTEXT).facts]
        assert names.count("Target") == 1 and names.count("Cluster") == 1
        assert "Traffic routing" in names


class TestTemplates:
    def test_fields_are_replaced(self) -> None:
        template = compile_template(
            "{canary} in {namespace} on {cluster}: {message} [{kind}/{severity}] rev {revision}"
        )
        m = render_message(promoted(), CONTEXT, template)
        assert m.text == (
            "podinfo in test on prod-eu-1: Canary analysis completed successfully, promotion finished. "
            "[Promoted/info] rev main@sha1:4f9c2e1ab3d2"
        )

    def test_analysis_and_failed_analysis_fields(self) -> None:
        m = render_message(
            threshold_reached(), CONTEXT, compile_template("{failedAnalysis}\n--\n{analysis}")
        )
        failed, _, everything_ = m.text.partition("\n--\n")
        assert failed.startswith("request-success-rate FAILED (value 91.2")
        assert "request-duration passed" in everything_ and "request-duration" not in failed

    def test_double_braces_are_literal(self) -> None:
        m = render_message(promoted(), CONTEXT, compile_template("{{canary}} is {canary} {{}}"))
        assert m.text == "{canary} is podinfo {}"

    def test_the_template_replaces_only_the_body(self) -> None:
        m = render_message(promoted(), CONTEXT, compile_template("short: {canary}"))
        assert m.text == "short: podinfo"
        assert m.title == "Promoted: podinfo.test" and m.checks

    def test_values_are_not_interpreted_as_templates(self) -> None:
        alert = replace(promoted(), message="{revision} and {{x}}")
        assert (
            render_message(alert, CONTEXT, compile_template("{message}")).text
            == "{revision} and {{x}}"
        )

    @pytest.mark.parametrize(
        ("text", "problem"),
        [
            ("{nope}", "unknown field '{nope}' at character 1"),
            ("x {canary.__class__}", "unknown field '{canary.__class__}' at character 3"),
            ("{message!r}", "unknown field '{message!r}'"),
            ("{canary:>10}", "unknown field '{canary:>10}'"),
            ("hello {canary", "unclosed '{' at character 7"),
            ("a } b", "single '}' at character 3"),
            ("{}", "empty field '{}' at character 1"),
            ("x" * 4001, "at most 4000"),
        ],
    )
    def test_invalid_templates_are_explained(self, text: str, problem: str) -> None:
        problems = validate_template(text)
        assert any(problem in p for p in problems), problems
        with pytest.raises(NotificationTemplateError):
            compile_template(text)

    def test_all_problems_are_reported_at_once(self) -> None:
        assert len(validate_template("{a} {b} }")) == 3

    def test_unknown_field_lists_the_known_ones(self) -> None:
        (problem,) = validate_template("{revison}")
        assert "previousRevision" in problem and "revision" in problem

    def test_every_documented_field_is_accepted(self) -> None:
        text = " ".join("{" + name + "}" for name in TEMPLATE_FIELDS)
        assert validate_template(text) == []
        rendered = render_message(promoted(), CONTEXT, compile_template(text)).text
        assert "podinfo" in rendered and "2026-03-01T12:30:00Z" in rendered

    def test_spaces_inside_braces_are_tolerated(self) -> None:
        assert render_message(promoted(), CONTEXT, compile_template("{ canary }")).text == "podinfo"


class TestTemplateProperties:
    @given(st.text(max_size=200))
    def test_validation_and_compilation_agree(self, text: str) -> None:
        problems = validate_template(text)
        if problems:
            with pytest.raises(NotificationTemplateError):
                compile_template(text)
        else:
            compile_template(text)

    @given(st.text(alphabet=st.characters(blacklist_characters="{}"), max_size=200))
    def test_text_without_braces_is_rendered_verbatim(self, text: str) -> None:
        assert compile_template(text).render({}) == text

    @given(st.lists(st.sampled_from(sorted(TEMPLATE_FIELDS)), max_size=10), st.text(max_size=50))
    def test_rendering_only_substitutes_values(self, names: list[str], value: str) -> None:
        template = compile_template("|".join("{" + n + "}" for n in names))
        assert template.render(dict.fromkeys(TEMPLATE_FIELDS, value)) == "|".join(
            value for _ in names
        )


class TestFactory:
    def test_unknown_type_names_spec_type(self) -> None:
        with pytest.raises(NotifierConfigError) as caught:
            make_sender(provider("pagerduty", "https://example.test/x"))
        (issue,) = caught.value.issues
        assert issue.path == "spec.type"
        assert '"pagerduty"' in issue.message and "slack" in issue.message

    def test_bad_template_is_reported_at_spec_message_template(self) -> None:
        issues = validate_provider(provider("slack", "https://example.test/x", template="{bogus}"))
        assert [i.path for i in issues] == ["spec.messageTemplate"]

    def test_address_must_be_http_and_is_not_quoted(self) -> None:
        issues = validate_provider(provider("slack", "ftp://secret-host/SECRETPATH"))
        assert [i.path for i in issues] == ["spec.address"]
        assert "SECRETPATH" not in str(issues[0])

    def test_proxy_must_be_http(self) -> None:
        issues = validate_provider(provider("slack", "https://example.test/x", proxy="socks9://p"))
        assert [i.path for i in issues] == ["spec.proxy"]

    def test_a_valid_provider_has_no_issues(self) -> None:
        assert (
            validate_provider(
                provider("gchat", "https://chat.googleapis.com/v1/spaces/X/messages?key=k")
            )
            == []
        )


class TestFormatting:
    @pytest.mark.parametrize(
        ("seconds", "text"),
        [
            (None, ""),
            (0, "0s"),
            (2.5, "2.5s"),
            (59, "59s"),
            (60, "1m00s"),
            (754, "12m34s"),
            (3723, "1h02m03s"),
        ],
    )
    def test_durations(self, seconds: float | None, text: str) -> None:
        assert format_duration(seconds) == text

    @pytest.mark.parametrize(
        ("value", "text"),
        [
            (None, ""),
            (99.0, "99"),
            (99.95, "99.95"),
            (0.0012345, "0.001234"),
            (float("nan"), "NaN"),
            (1e20, "1e+20"),
        ],
    )
    def test_numbers(self, value: float | None, text: str) -> None:
        assert format_number(value) == text
