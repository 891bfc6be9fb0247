"""One rule for keeping secrets out of every text that leaves canary-engine.

Git credentials and chat webhooks leak in different disguises: a token comes back from git
base64-encoded or URL-quoted, a Slack address comes back as the bare path of an httpx log
line. The rule for both is the same, and it lives here once: collect the secret values and
the forms they may take, then replace each form, longest first (a value that contains
another is removed whole), with ``***``. What differs is said by the caller: how a value
expands into its forms, how short a form may be before it would hide ordinary words, and
what else to hide afterwards (the notifiers hide every URL's path). The Git side builds its
redactors in :mod:`canary.adapters.gitops.credentials`, the HTTP side in
:mod:`canary.adapters.notifiers.httpio`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["REDACTED", "Redactor"]

REDACTED = "***"


def _as_is(value: str) -> Iterable[str]:
    return (value,)


@dataclass(frozen=True, slots=True)
class Redactor:
    """Replaces every form in ``secrets`` with ``***``, then applies ``scrub`` (if any)."""

    secrets: tuple[str, ...] = ()
    scrub: Callable[[str], str] | None = None

    @classmethod
    def of(
        cls,
        values: Iterable[str | None],
        *,
        forms: Callable[[str], Iterable[str]] = _as_is,
        min_length: int = 1,
        scrub: Callable[[str], str] | None = None,
    ) -> Redactor:
        """A redactor of every form of every non-empty value at least ``min_length`` long."""
        seen: set[str] = set()
        for value in values:
            if value:
                seen.update(form for form in forms(value) if len(form) >= min_length)
        return cls(_longest_first(seen), scrub)

    def merge(self, other: Redactor) -> Redactor:
        """Both redactors' secrets (and the first ``scrub`` of the two)."""
        return Redactor(_longest_first({*self.secrets, *other.secrets}), self.scrub or other.scrub)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return self.scrub(text) if self.scrub is not None else text

    def __repr__(self) -> str:
        return f"Redactor({len(self.secrets)} values)"


def _longest_first(secrets: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(secrets, key=lambda s: (-len(s), s)))
