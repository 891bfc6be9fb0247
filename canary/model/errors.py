"""Spec errors that name the field.

Every problem found while reading a manifest becomes a `SpecIssue` carrying the
Kubernetes-style field path (``spec.analysis.metrics[1].interval``) and what was
expected. Parsing collects all issues of a document instead of stopping at the
first, so a user fixes a manifest in one round trip; `SpecError` carries them to
the caller, which puts them in a status condition, an Event or `canary lint`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from canary.errors import CanaryError

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class SpecIssue:
    """One problem in a manifest: where it is and what was expected."""

    path: str
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class SpecError(CanaryError, ValueError):
    """A manifest that cannot be used; `issues` lists every error found."""

    def __init__(self, issues: Iterable[SpecIssue]) -> None:
        self.issues: tuple[SpecIssue, ...] = tuple(issues)
        super().__init__("; ".join(str(i) for i in self.issues) or "invalid spec")

    @property
    def errors(self) -> tuple[SpecIssue, ...]:
        return tuple(i for i in self.issues if i.severity == "error")
