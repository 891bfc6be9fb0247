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
     ├── NotifierConfigError, TemplateError               a notifier's configuration
     ├── ProcessError                                     a child process (git, kubectl)
     │    └── ProcessTimeout                              transient
     ├── GitError                                         transient for UNREACHABLE, TIMEOUT,
     │                                                    REJECTED (canary.adapters.gitops.git)
     ├── ForgeError                                       transient for rate limits and outages
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

This module imports nothing, so the pure layers (model, core) can use it.
"""

from __future__ import annotations

__all__ = ["CanaryError"]


class CanaryError(Exception):
    """Root of canary-engine's errors."""

    @property
    def transient(self) -> bool:
        """True when trying again later, with nothing changed, may succeed."""
        return False
