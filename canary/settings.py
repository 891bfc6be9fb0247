"""Every setting of `canary run`, typed and frozen, read from flags and the environment in one
place.

`canary run`'s flags arrive as keyword arguments; the environment fills what the flags leave
(and wins where Flagger's does: ``EVENT_WEBHOOK_URL`` and the ``SLACK_*``/``MSTEAMS_*``
variables override their flags).
Nothing else in the controller reads ``os.environ``: the environment is passed in
(:meth:`Settings.from_environment`), so a test states it instead of patching the process.

Variables read here, and what they set:

==========================  ==================================================================
``CANARY_GIT_CACHE``        ``git_cache``: where working copies of Git repositories are kept
``CANARY_STARTUP_TIMEOUT``  ``startup_timeout``: seconds to keep trying an API server that does
                            not answer at start-up (default 30)
``POD_NAME``                the leader-election identity (with a random suffix per process)
``POD_NAMESPACE``           the Lease's namespace, when ``--leader-election-namespace`` is unset
``EVENT_WEBHOOK_URL``       ``event_webhook`` (overrides the flag)
``SLACK_URL``, ``SLACK_TOKEN``, ``SLACK_CHANNEL``, ``SLACK_USER``, ``SLACK_PROXY_URL``,
``MSTEAMS_URL``, ``MSTEAMS_PROXY_URL``: the controller-wide notifier (override the flags)
==========================  ==================================================================
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

__all__ = ["ChatSettings", "Settings", "default_identity"]

DEFAULT_QPS = 100.0
DEFAULT_BURST = 250
DEFAULT_MAX_CONCURRENT = 32
DEFAULT_STARTUP_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class ChatSettings:
    """The controller-wide notifier (Flagger's ``-slack-*`` and ``-msteams-*`` flags).
    URLs, token and proxies are credentials: never in ``repr``."""

    slack_url: str = field(default="", repr=False)
    slack_token: str = field(default="", repr=False)
    slack_channel: str = ""
    slack_user: str = "canary-engine"
    slack_proxy_url: str = field(default="", repr=False)
    msteams_url: str = field(default="", repr=False)
    msteams_proxy_url: str = field(default="", repr=False)

    _ENV = (
        ("slack_url", "SLACK_URL"),
        ("slack_token", "SLACK_TOKEN"),
        ("slack_channel", "SLACK_CHANNEL"),
        ("slack_user", "SLACK_USER"),
        ("slack_proxy_url", "SLACK_PROXY_URL"),
        ("msteams_url", "MSTEAMS_URL"),
        ("msteams_proxy_url", "MSTEAMS_PROXY_URL"),
    )

    def with_environment(self, environ: Mapping[str, str]) -> ChatSettings:
        """Flag values overridden by non-empty environment variables (Flagger's ``fromEnv``)."""
        changes = {
            attr: environ[var].strip() for attr, var in self._ENV if environ.get(var, "").strip()
        }
        return replace(self, **changes)


def _seconds(variable: str, environ: Mapping[str, str]) -> float:
    """A number of seconds from the environment; ValueError naming the variable otherwise."""
    raw = environ[variable].strip()
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise ValueError(f"{variable} must be a number of seconds, not {raw!r}")
    return value


def default_identity(pod_name: str | None) -> str:
    """Unique per process: two replicas on one host must not share a Lease identity."""
    base = pod_name or socket.gethostname()
    return f"{base}_{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True, slots=True)
class Settings:
    """`canary run`'s settings. See docs/cli.md for each flag."""

    namespaces: tuple[str, ...] = ()  # empty: every namespace
    watch_label_selector: str | None = None  # sharding: only Canaries with matching labels
    kube_api_qps: float = DEFAULT_QPS
    kube_api_burst: int = DEFAULT_BURST
    max_concurrent_passes: int = DEFAULT_MAX_CONCURRENT
    kubeconfig: str | None = None
    context: str | None = None
    default_provider: str = "kubernetes"
    metrics_server: str = "http://prometheus:9090"
    listen_host: str = "0.0.0.0"
    listen_port: int = 8080
    leader_election: bool = False
    leader_namespace: str | None = None
    leader_election_id: str = "canary-engine-leader"  # the Lease's name (one per shard)
    identity: str = ""
    cluster_name: str = ""
    event_webhook: str | None = None
    git_cache: Path = Path("/tmp/canary-engine/git")
    git_author_name: str = "canary-engine"
    git_author_email: str = "canary-engine@users.noreply.local"
    selector_labels: tuple[str, ...] = ("app", "name", "app.kubernetes.io/name")
    include_label_prefixes: tuple[str, ...] = ("*",)
    config_tracking: bool = True
    ingress_annotations_prefix: str = "nginx.ingress.kubernetes.io"
    ingress_class: str = ""  # contour's routing objects (Flagger's -ingress-class)
    no_cross_namespace_refs: bool = False  # templateRef / providerRef only in the Canary's
    lease_seconds: float = 15.0
    lease_renew_seconds: float = 5.0
    time_scale: float = 1.0  # demos and tests: every interval multiplied by this
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT  # seconds to retry the API at start-up
    flagger_metrics: bool = True  # /metrics also serves Flagger's flagger_* families
    chat: ChatSettings = field(default_factory=ChatSettings)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str], **flags: Any) -> Settings:
        """The settings of ``flags`` (keyword names are the fields), completed from
        ``environ`` as the module docstring lists. Unknown names are a TypeError."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(flags) - known)
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(unknown)}")
        values = dict(flags)
        if not values.get("identity"):
            values["identity"] = default_identity(environ.get("POD_NAME"))
        if "git_cache" not in values and environ.get("CANARY_GIT_CACHE"):
            values["git_cache"] = Path(environ["CANARY_GIT_CACHE"])
        if "startup_timeout" not in values and environ.get("CANARY_STARTUP_TIMEOUT", "").strip():
            values["startup_timeout"] = _seconds("CANARY_STARTUP_TIMEOUT", environ)
        if environ.get("EVENT_WEBHOOK_URL", "").strip():  # wins over the flag, as in Flagger
            values["event_webhook"] = environ["EVENT_WEBHOOK_URL"].strip()
        if not values.get("leader_namespace") and environ.get("POD_NAMESPACE"):
            values["leader_namespace"] = environ["POD_NAMESPACE"]
        chat = values.get("chat", ChatSettings())
        values["chat"] = chat.with_environment(environ)
        return cls(**values)

    @property
    def watched_namespaces(self) -> tuple[str, ...] | None:
        """The namespaces to watch, or None for all of them."""
        return tuple(dict.fromkeys(self.namespaces)) or None
