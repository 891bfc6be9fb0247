"""Reaching the cluster from the operator commands: kubeconfig, namespace, identity, errors.

Why: ``get``, ``status``, ``promote`` and the other gate commands all need the same things —
the API server of the current kubeconfig (``--kubeconfig``/``$KUBECONFIG``, ``--context``), the
namespace kubectl would use (the context's, else ``default``), the name to sign a command with
(the kubeconfig user), and one translation of client failures into clear messages and exit
codes. The client itself is :func:`canary.adapters.kube.connect` (``kubernetes.aio``), run
under :func:`asyncio.run`.
"""

from __future__ import annotations

import asyncio
import getpass
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import yaml

from canary.commands._common import EXIT_FAILURE, fail

__all__ = [
    "API_VERSION",
    "CANARY_KIND",
    "ClusterOptions",
    "Context",
    "ContextOpt",
    "KubeconfigOpt",
    "NamespaceOpt",
    "resolve_context",
    "run_with_kube",
]

API_VERSION = "canary.gitops.dev/v1beta1"
CANARY_KIND = "Canary"
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")

T = TypeVar("T")

KubeconfigOpt = Annotated[
    str | None,
    typer.Option(
        "--kubeconfig",
        envvar="KUBECONFIG",
        help="Kubeconfig file (default: $KUBECONFIG; in a pod its service account; else ~/.kube/config).",
        show_envvar=False,
    ),
]
ContextOpt = Annotated[str | None, typer.Option("--context", help="Kubeconfig context.")]
NamespaceOpt = Annotated[
    str | None,
    typer.Option(
        "--namespace", "-n", help="Namespace (default: the kubeconfig context's, else default)."
    ),
]


@dataclass(frozen=True, slots=True)
class ClusterOptions:
    kubeconfig: str | None
    context: str | None

    @property
    def kubeconfig_path(self) -> str | None:
        """The one file to load: ``KUBECONFIG`` may be a list; like the client, use its first."""
        if not self.kubeconfig:
            return None
        first = self.kubeconfig.split(os.pathsep)[0]
        return first or None


@dataclass(frozen=True, slots=True)
class Context:
    """What the kubeconfig says about the context in use."""

    namespace: str
    user: str
    name: str


def _in_cluster() -> bool:
    return (
        bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and (SERVICE_ACCOUNT_DIR / "token").exists()
    )


def _local_user() -> str:
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):
        return ""


def resolve_context(options: ClusterOptions) -> Context:
    """Namespace and user of the selected context; exit 2 if the kubeconfig is unusable."""
    path = options.kubeconfig_path
    if path is None and _in_cluster():  # what connect() does: the service account first
        try:
            namespace = (SERVICE_ACCOUNT_DIR / "namespace").read_text().strip()
        except OSError:
            namespace = ""
        return Context(namespace or "default", _local_user(), "in-cluster")
    if path is None:
        path = str(Path.home() / ".kube" / "config")
    config = _read_kubeconfig(path)
    name = options.context or config.get("current-context") or ""
    if not name:
        raise fail(f"{path}: no current-context; choose one with --context")
    contexts = {
        entry.get("name"): entry.get("context") or {}
        for entry in config.get("contexts") or ()
        if isinstance(entry, dict)
    }
    if name not in contexts:
        known = ", ".join(sorted(str(k) for k in contexts)) or "none"
        raise fail(f"{path}: no context {name!r} (known: {known})")
    context = contexts[name] if isinstance(contexts[name], dict) else {}
    return Context(
        namespace=str(context.get("namespace") or "default"),
        user=str(context.get("user") or name or _local_user()),
        name=str(name),
    )


def _read_kubeconfig(path: str) -> dict[str, Any]:
    """The kubeconfig at ``path``, or the Exit of :func:`fail` saying what is wrong with it."""
    try:
        config = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise fail(
            f"{path}: no kubeconfig (give --kubeconfig, set KUBECONFIG, or run `canary sandbox`)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"{path}: cannot read the kubeconfig: {exc}") from None
    except yaml.YAMLError as exc:
        raise fail(f"{path}: the kubeconfig is not valid YAML: {exc}") from None
    if not isinstance(config, dict):
        raise fail(f"{path}: the kubeconfig is not a mapping")
    return config


async def _with_client(options: ClusterOptions, work: Callable[[Any], Awaitable[T]]) -> T:
    from kubernetes.aio.config.config_exception import ConfigException

    from canary.adapters.kube import connect

    try:
        client = await connect(options.kubeconfig_path, options.context)
    except ConfigException as exc:
        raise fail(f"cannot use the kubeconfig: {exc}") from None
    try:
        return await work(client)
    finally:
        await client.aclose()


def run_with_kube(options: ClusterOptions, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``work(client)`` in a fresh event loop; API failures become messages and exit codes.

    Not found / not served / forbidden / unreachable: exit 1 (the command ran, the cluster said
    no); a kubeconfig we cannot use: exit 2.
    """
    from canary.ports import Forbidden, Invalid, KubeError, NotFound, Unavailable

    try:
        return asyncio.run(_with_client(options, work))
    except NotFound as exc:
        raise fail(
            f"{exc} (are canary-engine's CRDs installed? kubectl apply -f crds/)", EXIT_FAILURE
        ) from None
    except Forbidden as exc:
        raise fail(f"the API server refused: {exc}", EXIT_FAILURE) from None
    except Invalid as exc:
        causes = "; ".join(
            f"{c.get('field', '')}: {c.get('message', '')}".strip(": ") for c in exc.causes
        )
        raise fail(
            f"the API server rejected the change: {exc}{'; ' + causes if causes else ''}",
            EXIT_FAILURE,
        ) from None
    except Unavailable as exc:
        raise fail(f"cannot reach the API server: {exc}", EXIT_FAILURE) from None
    except KubeError as exc:
        raise fail(f"Kubernetes API error: {exc}", EXIT_FAILURE) from None
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
