"""Starting `canary run`: reaching the API server, and saying in one line why it cannot.

What can stop the operator before it runs, and what the person running it reads (one line on
stderr, exit code 1, no traceback; `canary.cli` prints :class:`OperatorError`):

* no kubeconfig, or one that cannot be used: which file, and how to give another;
* an API server that does not answer, or answers 5xx or 429: a *transient* failure, asked
  again with a growing delay (one log line per attempt) for ``Settings.startup_timeout``
  seconds, then given up on, naming the server and the last cause;
* a *definite* answer: the CRDs are not installed (404), the credentials are refused
  (401/403), the server's TLS certificate is not trusted: at once, without retrying;
* the ``--listen`` port is taken: which address, and the flag that changes it.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from collections.abc import Awaitable, Callable

import aiohttp

from canary.adapters.kube import KubeClient, connect, kubeconfig_file
from canary.errors import CanaryError
from canary.ports import Forbidden, KubeError, Unavailable
from canary.settings import Settings

__all__ = [
    "STARTUP_DELAYS",
    "OperatorError",
    "cause",
    "connect_api",
    "listen_error",
    "wait_for_api",
]

log = logging.getLogger("canary.operator")

#: Seconds between two attempts to reach the API server at start-up (the last one repeats).
STARTUP_DELAYS = (1.0, 2.0, 4.0, 8.0, 15.0)
WHICH_CLUSTER = "check that the cluster is running and that the kubeconfig points at it (--kubeconfig, --context)"


class OperatorError(CanaryError):
    """A reason the operator cannot start, meant for the person running it."""


# ----------------------------------------------------------------------------- connecting


def _kubeconfig(options: Settings) -> str | None:
    """The kubeconfig file to read (None: in a pod, the service account); OperatorError
    when it does not exist."""
    path = kubeconfig_file(options.kubeconfig)
    if path is not None and not os.path.isfile(path):
        given = " (from --kubeconfig or KUBECONFIG)" if options.kubeconfig else ""
        raise OperatorError(
            f"no kubeconfig: {path}{given} does not exist; give one with --kubeconfig FILE or "
            "KUBECONFIG (in a pod, canary run uses its service account instead)"
        )
    return path


async def connect_api(options: Settings) -> KubeClient:
    """The client for the kubeconfig (or the pod's service account), or an OperatorError
    naming the file and what to do."""
    path = _kubeconfig(options)
    try:
        return await connect(
            options.kubeconfig,
            options.context,
            qps=options.kube_api_qps or None,
            burst=options.kube_api_burst,
        )
    except Exception as exc:  # the client's loader raises a zoo: ConfigException, YAML, OSError
        where = f"the kubeconfig {path}" if path else "the in-cluster configuration"
        context = f" (context {options.context})" if options.context else ""
        raise OperatorError(
            f"cannot use {where}{context}: {' '.join(str(exc).split()) or type(exc).__name__}; "
            "fix it, or choose another with --kubeconfig and --context"
        ) from None


# ----------------------------------------------------------------------------- waiting


def cause(exc: KubeError) -> str:
    """What went wrong, in words (``connection refused``, ``HTTP 500: ...``), not reprs."""
    root = exc.__cause__
    if isinstance(root, aiohttp.ClientSSLError | aiohttp.ClientConnectorCertificateError):
        return f"TLS failed: {' '.join(str(root).split())}"
    if isinstance(root, aiohttp.ClientConnectorError):
        number = root.os_error.errno
        said = (
            os.strerror(number)
            if number and number > 0
            else root.os_error.strerror or str(root.os_error)
        )
        return f"cannot connect: {said.lower()}"
    if isinstance(root, aiohttp.ServerDisconnectedError):
        return "the server closed the connection"
    if isinstance(root, TimeoutError):
        return "no answer in time"
    if isinstance(root, aiohttp.ClientError | OSError):
        return " ".join(str(root).split()) or type(root).__name__
    message = " ".join(str(exc).split())
    return f"HTTP {exc.status}: {message}" if exc.status else message


def _definite(exc: Unavailable) -> bool:
    """An unavailable server that will not become available by waiting: an untrusted TLS
    certificate."""
    return isinstance(
        exc.__cause__, aiohttp.ClientSSLError | aiohttp.ClientConnectorCertificateError
    )


def _refused(host: str, exc: Forbidden) -> OperatorError:
    if exc.status == 401:
        return OperatorError(
            f"the API server at {host} does not accept the kubeconfig's credentials "
            f"({cause(exc)}); log in again, or choose another --kubeconfig / --context"
        )
    return OperatorError(
        f"the API server at {host} refuses this identity ({cause(exc)}); grant it the RBAC "
        "of deploy/ (kubectl apply -k deploy/base), or choose another --kubeconfig / --context"
    )


async def wait_for_api(
    host: str,
    check: Callable[[], Awaitable[None]],
    *,
    timeout: float,
    stopping: asyncio.Event,
) -> bool:
    """Run ``check`` (the start-up check against the API server) until it gives a definite
    answer: True when it passed, False when ``stopping`` was set meanwhile. A transient failure
    (no connection, a timeout, 5xx, 429) is tried again after :data:`STARTUP_DELAYS`, one
    log line each, for ``timeout`` seconds; then, or on a definite failure, OperatorError."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    attempt = 0
    while True:
        try:
            await check()
            return True
        except Forbidden as exc:
            raise _refused(host, exc) from None
        except Unavailable as exc:
            delay = STARTUP_DELAYS[min(attempt, len(STARTUP_DELAYS) - 1)]
            _give_up_unless_transient(host, exc, timeout, past=loop.time() + delay > deadline)
            log.warning(
                "the API server at %s: %s; trying again in %.3gs (giving up after %.3gs)",
                host,
                cause(exc),
                delay,
                timeout,
            )
        except KubeError as exc:  # any other answer is definite
            raise OperatorError(f"the API server at {host} answered {cause(exc)}") from None
        attempt += 1
        try:
            await asyncio.wait_for(stopping.wait(), timeout=delay)
        except TimeoutError:
            continue
        return False


def _give_up_unless_transient(host: str, exc: Unavailable, timeout: float, *, past: bool) -> None:
    """OperatorError when waiting cannot help: an untrusted certificate, or no time left."""
    if _definite(exc):
        raise OperatorError(
            f"cannot talk to the API server at {host}: {cause(exc)}; check the "
            "kubeconfig's certificate-authority (or the server's certificate)"
        ) from None
    if past:
        raise OperatorError(
            f"cannot reach the API server at {host} ({cause(exc)}; tried for "
            f"{timeout:.0f}s); {WHICH_CLUSTER}"
        ) from None


# ----------------------------------------------------------------------------- listening


def listen_error(host: str, port: int, exc: OSError) -> OperatorError:
    """The one line for a ``--listen`` address the operator cannot bind."""
    if exc.errno == errno.EADDRINUSE:
        why = "address already in use (another canary run on this host?)"
    elif exc.errno == errno.EACCES:
        why = "permission denied (ports below 1024 need privileges)"
    else:
        why = exc.strerror or str(exc)
    return OperatorError(
        f"cannot serve /metrics, /healthz and /readyz on {host}:{port}: {why}; "
        "choose another address with --listen HOST:PORT"
    )
