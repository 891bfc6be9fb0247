"""One place that maps an AlertProvider ``spec.type`` to its sender.

An unknown type is an error that names ``spec.type`` (design principle 6: never
a silent fallback). The address and the messageTemplate are checked here too, so
the controller can report a broken AlertProvider at the right field path as
soon as it reads it, instead of discovering it when a rollback needs to be
announced.
"""

from __future__ import annotations

from collections.abc import Mapping

from canary.adapters.notifiers.base import (
    NotifierConfigError,
    ResolvedProvider,
    Sender,
    WebhookSender,
    check_address,
    check_proxy,
)
from canary.adapters.notifiers.discord import DiscordSender
from canary.adapters.notifiers.gchat import GoogleChatSender
from canary.adapters.notifiers.generic import GenericSender
from canary.adapters.notifiers.msteams import MSTeamsSender
from canary.adapters.notifiers.rendering import (
    MessageTemplate,
    NotificationTemplateError,
    compile_template,
)
from canary.adapters.notifiers.rocket import RocketSender
from canary.adapters.notifiers.slack import SlackSender
from canary.model.errors import SpecIssue

__all__ = ["SENDERS", "make_sender", "validate_provider"]

SENDERS: Mapping[str, type[WebhookSender]] = {
    cls.provider_type: cls
    for cls in (
        SlackSender,
        MSTeamsSender,
        DiscordSender,
        RocketSender,
        GoogleChatSender,
        GenericSender,
    )
}


def _check(
    resolved: ResolvedProvider,
) -> tuple[type[WebhookSender] | None, MessageTemplate | None, list[SpecIssue]]:
    issues: list[SpecIssue] = []
    cls = SENDERS.get(resolved.type)
    if cls is None:
        issues.append(
            SpecIssue(
                "spec.type",
                f'unknown alert provider type "{resolved.type}"; expected one of: {", ".join(sorted(SENDERS))}',
            )
        )
    check_address(resolved.address, issues)
    if resolved.proxy:
        check_proxy(resolved.proxy, issues)
    template = None
    if resolved.provider.message_template is not None:
        try:
            template = compile_template(resolved.provider.message_template)
        except NotificationTemplateError as exc:
            issues.extend(SpecIssue("spec.messageTemplate", problem) for problem in exc.problems)
    return cls, template, issues


def validate_provider(resolved: ResolvedProvider) -> list[SpecIssue]:
    """Every problem of a resolved AlertProvider, with field paths (empty when usable)."""
    return _check(resolved)[2]


def make_sender(resolved: ResolvedProvider) -> Sender:
    """The sender for ``resolved``; `NotifierConfigError` names every bad field."""
    cls, template, issues = _check(resolved)
    if issues or cls is None:
        raise NotifierConfigError(issues)
    return cls(resolved=resolved, template=template)
