"""The root of every error canary-engine raises, and whether trying again may help.

One root, so a caller at a boundary (a reconcile pass, a CLI command) can catch "ours"
without catching Python's own bugs, and one question every error answers: ``transient`` —
may the same call succeed later without anyone changing anything (a timeout, an
unreachable server, a moved branch), or does a person have to act (a wrong field, a refused
credential for a user's own input, a conflict)?

The tree (each module keeps its own classes; they hang here)::

    CanaryError
     ├── SpecError, DocumentError, DurationError,        canary.model: bad input, with the
     │   ConversionError                                  field or document it concerns
     ├── KubeError                                        canary.ports: the API server said no
     │    ├── NotFound, Conflict, AlreadyExists,
     │    │   Invalid, Forbidden
     │    └── Unavailable                                 transient: timeouts, 429, 5xx
     ├── WorkloadError, RouterError                       an adapter cannot do what was asked
     ├── NotifierConfigError,                             a notifier's configuration
     │   NotificationTemplateError
     ├── ProcessError                                     a child process (git, kubectl)
     │    └── ProcessTimeout                              transient
     ├── ClassifiedError                                  transient as its kind says:
     │    ├── GitError                                    UNREACHABLE, TIMEOUT, REJECTED
     │    │                                               (canary.adapters.gitops.git)
     │    └── ForgeError                                  rate limits and outages
     ├── ManifestError, KustomizeError, ImagePolicyError,
     │   CredentialsError, GitSourceSpecError,
     │   KubeApplyError, Unattributable                  the GitOps adapters
     ├── UndefinedTransition                              canary.core.phases: a phase change
     │                                                    the table does not allow (a bug)
     ├── PromtoolError                                    canary lint's PromQL check
     └── OperatorError                                    canary run cannot start

``analysis`` is a library of its own that never imports ``canary``: its errors
(``analysis.AnalysisError`` and below) are translated into metric verdicts at the boundary,
in ``canary.adapters.analysis``.

An adapter whose failures come in kinds (``GitFailure``, ``ForgeFailure``: enums whose members
say whether they are ``retriable``) raises a :class:`ClassifiedError`, which answers
``transient`` from its kind.

This module imports nothing of canary-engine, so the pure layers (model, core) can use it.
"""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

__all__ = ["CanaryError", "ClassifiedError", "FailureKind"]


class CanaryError(Exception):
    """Root of canary-engine's errors."""

    @property
    def transient(self) -> bool:
        """True when trying again later, with nothing changed, may succeed."""
        return False


class FailureKind(Protocol):
    """One kind of an adapter's failures (a member of its failure enum)."""

    @property
    def retriable(self) -> bool: ...


K = TypeVar("K", bound=FailureKind)


class ClassifiedError(CanaryError, Generic[K]):
    """A failure of kind ``kind``; ``message`` (also ``str(error)``) is safe to log or show."""

    def __init__(self, kind: K, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message

    @property
    def transient(self) -> bool:
        return self.retriable

    @property
    def retriable(self) -> bool:
        return self.kind.retriable
