"""``canary dashboard``: a local web UI — the canaries live, the decision picture, the gates.

Why: Argo Rollouts users open ``kubectl argo rollouts dashboard``; Flagger users build Grafana
panels; neither shows *why* a release was judged as it was. The dashboard serves, with the
user's kubeconfig, a live list of the canaries and a page per canary with the decision picture
of ``canary report``, its verdicts, the Git revert with links, and the gates with the CLI's
exact semantics (:mod:`canary.dashboard`).

Safe by default: it listens on loopback (``127.0.0.1:2345``); another address must be given
with ``--listen`` on the command line (a warning says who can reach it then; from the
environment variable it is refused). Write actions (the gates) are off unless
``--enable-write``. aiohttp and the rest load only when the command runs.
"""

from __future__ import annotations

import ipaddress
import sys
from typing import Annotated

import typer

from canary.commands._common import EXIT_USAGE, fail, out, warn
from canary.commands.cluster import ClusterOptions, ContextOpt, KubeconfigOpt

__all__ = ["DEFAULT_LISTEN", "dashboard_command", "parse_listen"]

DEFAULT_LISTEN = "127.0.0.1:2345"
LISTEN_ENV = "CANARY_DASHBOARD_LISTEN"


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6, ``:PORT`` for loopback) → (host, port)."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"the port of {text!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"the port of {text!r} is out of range")
    return host, port


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str, port: int) -> frozenset[str] | None:
    """The Host headers to answer: the loopback names and the listen host (None: any, for a
    wildcard address, whose names are not known)."""
    try:
        if ipaddress.ip_address(host).is_unspecified:
            return None
    except ValueError:
        pass
    names = {"127.0.0.1", "localhost", "[::1]", f"[{host}]" if ":" in host else host}
    return frozenset(f"{name.lower()}:{port}" for name in names)


def dashboard_command(
    ctx: typer.Context,
    listen: Annotated[
        str,
        typer.Option(
            "--listen",
            envvar=LISTEN_ENV,
            metavar="HOST:PORT",
            help="Where to serve; loopback by default. Another address only when given here, "
            "on the command line.",
        ),
    ] = DEFAULT_LISTEN,
    namespaces: Annotated[
        list[str] | None,
        typer.Option(
            "--namespace",
            "-n",
            metavar="NAMESPACE",
            help="Show this namespace (repeat for more; default: all).",
        ),
    ] = None,
    enable_write: Annotated[
        bool,
        typer.Option(
            "--enable-write",
            help="Enable the gates (promote, abort, retry, pause, resume); read-only without.",
        ),
    ] = False,
    open_browser: Annotated[
        bool | None,
        typer.Option(
            "--open/--no-open",
            help="Open the dashboard in a web browser (default: when run in a terminal).",
        ),
    ] = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
) -> None:
    """A local web UI: canaries live, each one's decision picture and verdicts, the gates."""
    try:
        host, port = parse_listen(listen)
    except ValueError as exc:
        raise fail(f"--listen: {exc}") from None
    if not is_loopback(host):
        source = ctx.get_parameter_source("listen")
        if getattr(source, "name", "") != "COMMANDLINE":  # typer's click or click's enum
            raise fail(
                f"refusing to serve on {listen} (not loopback) from ${LISTEN_ENV}: give "
                "--listen on the command line to mean it",
                EXIT_USAGE,
            )
        warn(
            f"serving on {listen}, not loopback: whoever reaches it sees your canaries with "
            "your kubeconfig's rights"
            + (" and can use the gates (--enable-write)" if enable_write else "")
        )
    from canary.commands.cluster import resolve_context

    options = ClusterOptions(kubeconfig, context)
    user = resolve_context(options).user  # also: a kubeconfig that cannot be used, exit 2
    _serve(
        options,
        host,
        port,
        tuple(dict.fromkeys(namespaces)) if namespaces else None,
        enable_write,
        f"{user} (dashboard)",
        sys.stdout.isatty() if open_browser is None else open_browser,
    )


def _serve(
    options: ClusterOptions,
    host: str,
    port: int,
    namespaces: tuple[str, ...] | None,
    enable_write: bool,
    user: str,
    open_browser: bool,
) -> None:
    import asyncio
    import signal

    from aiohttp import web

    from canary.dashboard.server import Settings, make_app

    async def connect() -> object:
        from kubernetes.aio.config.config_exception import ConfigException

        from canary.adapters.kube import connect as kube_connect

        try:
            return await kube_connect(options.kubeconfig_path, options.context)
        except ConfigException as exc:
            raise fail(f"cannot use the kubeconfig: {exc}") from None

    settings = Settings(namespaces, enable_write, user, allowed_hosts(host, port))
    app = make_app(settings, connect)  # type: ignore[arg-type]

    async def main() -> None:
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}", 1) from None
        shown_host = f"[{host}]" if ":" in host else host
        url = f"http://{shown_host}:{port}/"
        mode = (
            "write actions enabled" if enable_write else "read-only; --enable-write for the gates"
        )
        out.print(f"canary dashboard: {url} ({mode}); Ctrl-C stops it", highlight=False)
        sys.stdout.flush()
        if open_browser:
            import webbrowser

            webbrowser.open(url)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    asyncio.run(main())
