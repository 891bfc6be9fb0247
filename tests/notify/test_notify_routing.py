"""Who receives an alert: Flagger's routing and severity rules, as tables."""

from __future__ import annotations

import pytest

from canary.adapters.notifiers import (
    GlobalNotifierConfig,
    NotifierConfigError,
    ProviderRef,
    ResolvedProvider,
    route,
    wanted_refs,
)
from canary.core.actions import AlertKind
from canary.model.canary import AlertRef, Severity
from canary.model.resources import AlertProvider
from tests.notify.samples import alert_of, canary, provider

SLACK_GLOBAL = GlobalNotifierConfig(
    slack_url="https://hooks.slack.com/services/G/L/OBAL", slack_channel="ops"
)
BOTH_GLOBAL = GlobalNotifierConfig(
    slack_url="https://hooks.slack.com/services/G/L/OBAL",
    msteams_url="https://teams.example/workflows/x",
)

ON_CALL = provider("slack", "https://hooks.slack.com/services/A/B/C", name="on-call")
TEAM = provider("msteams", "https://teams.example/workflows/team", name="team")
OTHER_NS = provider(
    "discord", "https://discord.example/api/webhooks/1/x", name="shared", namespace="platform"
)
PROVIDERS = {
    ProviderRef("test", "on-call"): ON_CALL,
    ProviderRef("test", "team"): TEAM,
    ProviderRef("platform", "shared"): OTHER_NS,
}


def ref(
    name: str, provider_name: str, severity: Severity = Severity.INFO, namespace: str | None = None
) -> AlertRef:
    return AlertRef(
        name=name, provider_name=provider_name, provider_namespace=namespace, severity=severity
    )


class TestSeverityFilter:
    @pytest.mark.parametrize(
        ("entry", "alert", "expected"),
        [
            (Severity.INFO, Severity.INFO, True),
            (Severity.INFO, Severity.WARN, True),
            (Severity.INFO, Severity.ERROR, True),
            (Severity.WARN, Severity.INFO, False),
            (Severity.WARN, Severity.WARN, True),
            (Severity.WARN, Severity.ERROR, True),
            (Severity.ERROR, Severity.INFO, False),
            (Severity.ERROR, Severity.WARN, False),
            (Severity.ERROR, Severity.ERROR, True),
        ],
    )
    def test_an_entry_receives_its_severity_and_worse(
        self, entry: Severity, alert: Severity, expected: bool
    ) -> None:
        c = canary(alerts=(ref("a", "on-call", entry),))
        targets = route(c, alert_of(AlertKind.STARTED, alert), PROVIDERS, None)
        assert [t.provider for t in targets] == ([ON_CALL] if expected else [])

    def test_an_entry_without_severity_means_info_not_nothing(self) -> None:
        entry = AlertRef(name="a", provider_name="on-call")  # severity left out in the manifest
        c = canary(alerts=(entry,))
        for severity in Severity:
            assert [
                t.provider for t in route(c, alert_of(AlertKind.STARTED, severity), PROVIDERS, None)
            ] == [ON_CALL]


class TestPerCanaryAlerts:
    @pytest.mark.parametrize(
        ("severity", "expected"),
        [
            (Severity.INFO, ["on-call"]),
            (Severity.WARN, ["on-call", "team"]),
            (Severity.ERROR, ["on-call", "team", "shared"]),
        ],
    )
    def test_each_entry_filters_on_its_own(self, severity: Severity, expected: list[str]) -> None:
        c = canary(
            alerts=(
                ref("all", "on-call", Severity.INFO),
                ref("warnings", "team", Severity.WARN),
                ref("pager", "shared", Severity.ERROR, namespace="platform"),
            )
        )
        targets = route(c, alert_of(AlertKind.STARTED, severity), PROVIDERS, SLACK_GLOBAL)
        assert [t.provider.provider.name for t in targets if t.provider] == expected

    def test_the_global_notifier_gets_nothing_when_the_canary_has_alerts(self) -> None:
        c = canary(alerts=(ref("pager", "on-call", Severity.ERROR),))
        assert route(c, alert_of(AlertKind.PROMOTED, Severity.INFO), PROVIDERS, SLACK_GLOBAL) == []

    def test_provider_namespace_defaults_to_the_canary_namespace(self) -> None:
        c = canary(alerts=(ref("a", "on-call"), ref("b", "shared", namespace="platform")))
        assert wanted_refs(c, alert_of(AlertKind.STARTED)) == [
            ProviderRef("test", "on-call"),
            ProviderRef("platform", "shared"),
        ]

    def test_an_unknown_provider_is_reported_not_skipped(self) -> None:
        c = canary(alerts=(ref("a", "nowhere"),))
        (target,) = route(c, alert_of(AlertKind.STARTED), PROVIDERS, None)
        assert target.missing
        assert target.ref == ProviderRef("test", "nowhere")
        assert target.via == "alerts[0] a"

    def test_two_entries_for_one_provider_deliver_once(self) -> None:
        c = canary(alerts=(ref("a", "on-call", Severity.INFO), ref("b", "on-call", Severity.ERROR)))
        assert len(route(c, alert_of(AlertKind.STARTED, Severity.ERROR), PROVIDERS, None)) == 1
        assert wanted_refs(c, alert_of(AlertKind.STARTED, Severity.ERROR)) == [
            ProviderRef("test", "on-call")
        ]

    def test_muted_alerts_go_nowhere(self) -> None:
        from dataclasses import replace

        muted = replace(alert_of(AlertKind.WAITING_APPROVAL, Severity.WARN), mute=True)
        assert route(canary(alerts=(ref("a", "on-call"),)), muted, PROVIDERS, None) == []
        assert route(canary(), muted, PROVIDERS, SLACK_GLOBAL) == []
        assert wanted_refs(canary(alerts=(ref("a", "on-call"),)), muted) == []


class TestGlobalNotifier:
    @pytest.mark.parametrize("severity", list(Severity))
    @pytest.mark.parametrize("with_analysis", [True, False])
    def test_gets_every_alert_of_a_canary_without_alerts(
        self, severity: Severity, with_analysis: bool
    ) -> None:
        (target,) = route(
            canary(analysis=with_analysis), alert_of(AlertKind.STARTED, severity), {}, SLACK_GLOBAL
        )
        assert target.via == "global"
        assert target.provider is not None
        assert target.provider.type == "slack"
        assert target.provider.provider.channel == "ops"

    def test_msteams_wins_over_slack(self) -> None:
        (target,) = route(canary(), alert_of(AlertKind.STARTED), {}, BOTH_GLOBAL)
        assert target.provider is not None and target.provider.type == "msteams"

    @pytest.mark.parametrize("config", [None, GlobalNotifierConfig()])
    def test_nothing_configured_means_no_delivery(
        self, config: GlobalNotifierConfig | None
    ) -> None:
        assert route(canary(), alert_of(AlertKind.STARTED), {}, config) == []

    def test_repr_hides_urls_and_token(self) -> None:
        config = GlobalNotifierConfig(
            slack_url="https://hooks.slack.com/services/SEC/RET/X", slack_token="tok-secret"
        )
        text = repr(config) + repr(config.provider())
        assert "SEC/RET" not in text and "tok-secret" not in text


class TestResolvedProvider:
    spec = AlertProvider(
        name="p", namespace="test", type="slack", address="https://spec.example/a", secret_name="s"
    )

    def test_secret_address_overrides_spec_address(self) -> None:
        resolved = ResolvedProvider.from_secret(
            self.spec,
            {
                "address": "https://secret.example/b\n",
                "token": " t0k ",
                "proxy": "http://proxy:8080",
            },
        )
        assert (resolved.address, resolved.token, resolved.proxy) == (
            "https://secret.example/b",
            "t0k",
            "http://proxy:8080",
        )

    def test_spec_address_is_used_without_a_secret_address(self) -> None:
        resolved = ResolvedProvider.from_secret(self.spec, {"token": "t"})
        assert resolved.address == "https://spec.example/a"

    def test_no_address_at_all_names_the_field_and_the_secret(self) -> None:
        spec = AlertProvider(name="p", namespace="test", type="slack", secret_name="creds")
        with pytest.raises(NotifierConfigError) as caught:
            ResolvedProvider.from_secret(spec, {})
        assert caught.value.issues[0].path == "spec.address"
        assert "creds" in str(caught.value)

    def test_repr_hides_the_secret_values(self) -> None:
        resolved = ResolvedProvider.from_secret(
            self.spec, {"address": "https://x.example/SECRETPATH", "token": "TOKEN42"}
        )
        assert "SECRETPATH" not in repr(resolved) and "TOKEN42" not in repr(resolved)
        assert "test/p" in repr(resolved)

    def test_destination_id_is_stable_and_not_secret(self) -> None:
        a = ResolvedProvider.from_secret(self.spec, {"address": "https://x.example/SECRETPATH"})
        b = ResolvedProvider.from_secret(self.spec, {"address": "https://x.example/SECRETPATH"})
        c = ResolvedProvider.from_secret(self.spec, {"address": "https://x.example/OTHER"})
        assert a.destination_id == b.destination_id != c.destination_id
        assert "SECRETPATH" not in a.destination_id
