"""Who gets an alert: per-canary ``alerts[]`` with severity filters, else the global notifier.

Flagger's rules (reference/flagger.md 5.2), as a pure function so they can be
checked with tables:

* a muted alert (a gate hook with ``muteAlert``) goes nowhere;
* a canary with ``analysis.alerts`` sends each alert to every entry whose
  severity accepts it (`AlertRef.accepts`: info takes everything, warn takes
  warn and error, error takes error) — with Flagger's quirk fixed, an entry
  without a severity means info instead of nothing;
* a canary without ``alerts`` sends every alert, whatever its severity, to the
  global notifier configured by flags or environment (MS Teams wins over Slack
  when both are set, as in Flagger);
* the global notifier never receives alerts of a canary that has ``alerts``.

An entry's provider namespace defaults to the canary's. Two entries naming the
same AlertProvider produce one delivery, not two.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

from canary.adapters.notifiers.base import ResolvedProvider
from canary.core.actions import Alert
from canary.model.canary import AlertRef, Canary
from canary.model.resources import AlertProvider
from canary.settings import ChatSettings

__all__ = ["GLOBAL", "GlobalNotifierConfig", "ProviderRef", "RouteTarget", "route", "wanted_refs"]

GLOBAL = "global"


@dataclass(frozen=True, slots=True, order=True)
class ProviderRef:
    """An AlertProvider's identity."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class GlobalNotifierConfig(ChatSettings):
    """The controller-wide notifier: `canary run`'s chat settings (Flagger's ``-slack-*``
    and ``-msteams-*`` flags, secrets hidden from ``repr``) and a delivery timeout.

    Unlike Flagger, a Slack URL without a channel still works: the channel is left to the
    webhook's own default instead of silently disabling the notifier.
    """

    timeout_seconds: float = 5.0

    @classmethod
    def of(cls, chat: ChatSettings) -> GlobalNotifierConfig:
        """From the settings; an empty Slack user name falls back to the default one."""
        values = {f.name: getattr(chat, f.name) for f in fields(ChatSettings)}
        values["slack_user"] = chat.slack_user or ChatSettings().slack_user
        return cls(**values)

    @property
    def enabled(self) -> bool:
        return bool(self.msteams_url or self.slack_url)

    def provider(self) -> ResolvedProvider | None:
        """The global destination, or None when neither Slack nor Teams is configured."""
        if self.msteams_url:
            spec = AlertProvider(
                name=GLOBAL,
                namespace="",
                type="msteams",
                channel="",
                username="",
                timeout_seconds=self.timeout_seconds,
            )
            return ResolvedProvider(
                spec, address=self.msteams_url, proxy=self.msteams_proxy_url or None
            )
        if self.slack_url:
            spec = AlertProvider(
                name=GLOBAL,
                namespace="",
                type="slack",
                channel=self.slack_channel,
                username=self.slack_user,
                timeout_seconds=self.timeout_seconds,
            )
            return ResolvedProvider(
                spec,
                address=self.slack_url,
                token=self.slack_token or None,
                proxy=self.slack_proxy_url or None,
            )
        return None


@dataclass(frozen=True, slots=True)
class RouteTarget:
    """One delivery an alert should get.

    ``via`` says why (``alerts[1] on-call`` or ``global``); ``provider`` is None
    when the referenced AlertProvider was not found, which the caller reports.
    """

    via: str
    ref: ProviderRef | None
    provider: ResolvedProvider | None

    @property
    def missing(self) -> bool:
        return self.provider is None


def wanted_refs(canary: Canary, alert: Alert) -> list[ProviderRef]:
    """The AlertProviders ``route`` will need for this alert, in spec order, once each."""
    if alert.mute:
        return []
    refs: list[ProviderRef] = []
    for entry in _alert_refs(canary):
        if entry.accepts(alert.severity):
            ref = ProviderRef(entry.provider_namespace or canary.namespace, entry.provider_name)
            if ref not in refs:
                refs.append(ref)
    return refs


def _alert_refs(canary: Canary) -> tuple[AlertRef, ...]:
    analysis = canary.spec.analysis
    return analysis.alerts if analysis is not None else ()


def route(
    canary: Canary,
    alert: Alert,
    providers_by_ref: Mapping[ProviderRef, ResolvedProvider],
    global_config: GlobalNotifierConfig | None,
) -> list[RouteTarget]:
    """Where ``alert`` goes, following Flagger's routing rules (see the module docstring)."""
    if alert.mute:
        return []
    entries = _alert_refs(canary)
    if not entries:
        provider = global_config.provider() if global_config is not None else None
        return [RouteTarget(GLOBAL, None, provider)] if provider is not None else []
    targets: list[RouteTarget] = []
    seen: set[ProviderRef] = set()
    for index, entry in enumerate(entries):
        if not entry.accepts(alert.severity):
            continue
        ref = ProviderRef(entry.provider_namespace or canary.namespace, entry.provider_name)
        if ref in seen:
            continue
        seen.add(ref)
        targets.append(RouteTarget(f"alerts[{index}] {entry.name}", ref, providers_by_ref.get(ref)))
    return targets
