"""`FakeClock`: time that moves only when a test moves it (the `canary.ports.Clock` port)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from canary.ports import Clock

__all__ = ["EPOCH", "FakeClock"]

EPOCH = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@dataclass
class FakeClock:
    """A settable, timezone-aware UTC clock starting at `EPOCH`.

    `FakeKube` stamps ``creationTimestamp`` and ``deletionTimestamp`` from it, so
    which of two objects is older is up to the test, not to the machine's speed.
    """

    current: datetime = field(default=EPOCH)

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> datetime:
        self.current += timedelta(seconds=seconds)
        return self.current


if TYPE_CHECKING:  # FakeClock satisfies the port (checked by mypy)
    _clock: Clock = FakeClock()
