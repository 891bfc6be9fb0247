"""A rollback caused by a webhook check names that check, not just a count."""

from __future__ import annotations

from dataclasses import replace

from canary.adapters.notifiers.rendering import RenderContext, render_message
from canary.core import AlertKind
from canary.model import Phase
from tests.core.harness import Script, canary_doc, hook, run
from tests.notify.samples import NOW, threshold_reached


def test_the_rollback_message_quotes_the_failed_webhook_check() -> None:
    alert = replace(
        threshold_reached(),
        analysis=(),
        failure="Halt podinfo.test advancement external check smoke-tests failed HTTP 500",
    )
    text = render_message(alert, RenderContext(now=NOW)).text
    assert (
        "Failed check: Halt podinfo.test advancement external check smoke-tests failed HTTP 500"
        in text
    )


def test_the_core_hands_the_last_failed_check_to_the_alert() -> None:
    doc = canary_doc(
        {
            "stepWeight": 10,
            "threshold": 1,
            "metrics": [],
            "webhooks": [hook("smoke-tests", "rollout")],
        }
    )
    result = run(
        doc, 6, Script(hooks={"smoke-tests": False}), until=lambda t: t.phase is Phase.FAILED
    )
    alert = next(a for a in result.alerts() if a.kind is AlertKind.THRESHOLD_REACHED)
    assert "external check smoke-tests failed" in alert.failure
