"""Commands a person gives a Canary: promote, abort, retry, pause.

They are annotations on the Canary, so `kubectl annotate` works as well as the
`canary` CLI and no extra API is needed. Each command's value is a token (the
CLI writes the time and who asked); the controller records the tokens it has
acted on in ``status.handledCommands``, so a command is acted on exactly once,
also across controller restarts. Pausing is a state, not a one-shot command: the
``paused`` annotation holds while it is "true".

The annotation keys live under our API group; the same keys prefixed
``flagger.app/`` are not read (Flagger has no such commands).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

PREFIX = "canary.gitops.dev/"
PROMOTE = PREFIX + "promote"
PROMOTE_FULL = PREFIX + "promote-full"
ABORT = PREFIX + "abort"
RETRY = PREFIX + "retry"
PAUSED = PREFIX + "paused"

# Keys used in status.handledCommands.
ONE_SHOT = {"promote": PROMOTE, "promoteFull": PROMOTE_FULL, "abort": ABORT, "retry": RETRY}


@dataclass(frozen=True, slots=True)
class Commands:
    """The pending (not yet handled) commands on a Canary."""

    promote: str | None = None
    promote_full: str | None = None
    abort: str | None = None
    retry: str | None = None
    paused: bool = False

    @classmethod
    def from_annotations(
        cls, annotations: Mapping[str, str], handled: Mapping[str, str]
    ) -> Commands:
        def pending(key: str, annotation: str) -> str | None:
            value = annotations.get(annotation)
            if not value or handled.get(key) == value:
                return None
            return value

        return cls(
            promote=pending("promote", PROMOTE),
            promote_full=pending("promoteFull", PROMOTE_FULL),
            abort=pending("abort", ABORT),
            retry=pending("retry", RETRY),
            paused=annotations.get(PAUSED, "").strip().lower() in ("true", "yes", "1"),
        )

    def tokens(self) -> dict[str, str]:
        """The pending tokens by status key (what handling them all would record)."""
        out = {
            "promote": self.promote,
            "promoteFull": self.promote_full,
            "abort": self.abort,
            "retry": self.retry,
        }
        return {k: v for k, v in out.items() if v}


def requester(token: str) -> str:
    """Who asked, when the token says so (the CLI writes "<time> by <user>")."""
    _, sep, who = token.partition(" by ")
    return who.strip() if sep else ""
