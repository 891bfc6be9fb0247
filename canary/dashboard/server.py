"""The dashboard's web server (aiohttp): pages, the event stream, the gates, the safety rules.

Safety, in the order a request meets it:

* **Host**: only the names the server was started for are answered (``127.0.0.1:PORT``,
  ``localhost:PORT``, ``[::1]:PORT``, or the ``--listen`` host): a web page that rebinds its
  own DNS name to 127.0.0.1 cannot read the dashboard.
* **Writes off by default**: a gate request is refused with 403 unless ``--enable-write``, and
  the pages show no gate buttons then.
* **Cross-site requests**: state changes are POST only and need the per-process CSRF token both
  in a ``SameSite=Strict`` cookie and in the form, and an ``Origin`` (when the browser sends
  one, as they do for POST) equal to the server's own; ``Sec-Fetch-Site: cross-site`` is
  refused too.
* **Headers**: ``Content-Security-Policy`` (``default-src 'self'``: no inline script, nothing
  external), ``X-Frame-Options: DENY``, ``X-Content-Type-Options: nosniff``,
  ``Referrer-Policy: same-origin``, and ``Cache-Control: no-store`` on pages.
* **Data**: Canaries, their Events and workloads, and the GitOps source's URL are read; Secrets
  never are. Every value is escaped (:mod:`canary.dashboard.views`).

Failures become pages, never tracebacks: an error inside a handler is logged and answered
with a short 500 page; a cluster that cannot be reached or a missing CRD is a banner
(:meth:`canary.dashboard.board.Board.problem`).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import typer
from aiohttp import web

from canary.adapters.kube import KubeClient
from canary.dashboard import views
from canary.dashboard.assets import SCRIPT, STYLE
from canary.dashboard.board import API_VERSION, Board, Problem
from canary.dashboard.links import commit_url, source_web_url
from canary.ports import KubeError

__all__ = ["CSRF_COOKIE", "Settings", "make_app"]

log = logging.getLogger("canary.dashboard")

CSRF_COOKIE = "canary_dashboard_csrf"
CSRF_FIELD = "csrf"
HEARTBEAT_SECONDS = 15.0
SETTLE_SECONDS = 5.0  # how long a page waits for the first list after the start
EVENTS_SHOWN = 10
EVENTS_READ = 200
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
GATE_NAMES = {name for name, _ in views.GATES}
NOTICES = {
    "promote": "promote requested: the controller opens the waiting gate on its next tick.",
    "abort": "abort requested: the controller rolls back on its next tick.",
    "retry": "retry requested: the controller runs the failed revision again on its next tick.",
    "pause": "pause requested: the canary holds at its current step until resumed.",
    "resume": "resume requested: the canary continues from where it stopped.",
}
SOURCE_KINDS = {
    "GitSource": "canary.gitops.dev/v1beta1",
    "Kustomization": "kustomize.toolkit.fluxcd.io/v1",
    "GitRepository": "source.toolkit.fluxcd.io/v1",
    "Application": "argoproj.io/v1alpha1",
}


@dataclass(frozen=True, slots=True)
class Settings:
    """How the dashboard was started."""

    namespaces: tuple[str, ...] | None
    write_enabled: bool
    user: str  # who the gate tokens name (the kubeconfig user)
    allowed_hosts: frozenset[str] | None  # Host headers answered; None: any (0.0.0.0)
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))


BOARD: web.AppKey[Board] = web.AppKey("board", Board)
CLIENT: web.AppKey[KubeClient] = web.AppKey("client", KubeClient)
SETTINGS: web.AppKey[Settings] = web.AppKey("settings", Settings)


def make_app(settings: Settings, connect: Callable[[], Awaitable[KubeClient]]) -> web.Application:
    """The application; ``connect`` makes the API client once the event loop runs."""
    app = web.Application(middlewares=[_guard])
    app[SETTINGS] = settings

    async def start(app: web.Application) -> None:
        client = await connect()
        app[CLIENT] = client
        board = Board(client, settings.namespaces)
        app[BOARD] = board
        board.start()

    async def stop(app: web.Application) -> None:
        if BOARD in app:
            await app[BOARD].stop()
        if CLIENT in app:
            await app[CLIENT].aclose()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app.router.add_get("/", _list_page)
    app.router.add_get("/events", _list_stream)
    app.router.add_get("/canaries/{namespace}/{name}", _canary_page)
    app.router.add_get("/canaries/{namespace}/{name}/events", _canary_stream)
    app.router.add_post("/canaries/{namespace}/{name}/gates/{gate}", _gate)
    app.router.add_get("/assets/live.js", _asset(SCRIPT, "text/javascript"))
    app.router.add_get("/assets/dashboard.css", _asset(STYLE, "text/css"))
    return app


# --------------------------------------------------------------------------- middleware


def _html(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/html", charset="utf-8")


def _refuse(status: int, title: str, message: str) -> web.Response:
    return _html(status, views.error_page(status, title, message))


def _secure(response: web.StreamResponse) -> None:
    headers = response.headers
    headers["Content-Security-Policy"] = CSP
    headers["X-Frame-Options"] = "DENY"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "same-origin"
    headers.setdefault("Cache-Control", "no-store")


@web.middleware
async def _guard(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    allowed = settings.allowed_hosts
    if allowed is not None and request.host.lower() not in allowed:
        response: web.StreamResponse = _refuse(
            403,
            "Unexpected host",
            f"this dashboard answers only {', '.join(sorted(allowed))}, not {request.host!r}.",
        )
    else:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if exc.status >= 400:
                response = _refuse(exc.status, exc.reason, exc.text or exc.reason)
            else:
                response = exc
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug or an unexpected answer: a page, never a traceback
            log.error("%s %s failed: %s: %s", request.method, request.path, type(exc).__name__, exc)
            log.debug("the failure", exc_info=exc)
            response = _refuse(
                500, "The dashboard failed", f"{type(exc).__name__}: {exc} (see its log)"
            )
    if not response.prepared:
        _secure(response)
    return response


def _asset(text: str, content_type: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def serve(_: web.Request) -> web.Response:
        response = web.Response(text=text, content_type=content_type, charset="utf-8")
        response.headers["Cache-Control"] = "no-cache"
        return response

    return serve


def _with_cookie(response: web.Response, settings: Settings) -> web.Response:
    response.set_cookie(
        CSRF_COOKIE, settings.csrf, httponly=True, samesite="Strict", path="/", secure=False
    )
    return response


# --------------------------------------------------------------------------- rendering


def _now() -> datetime:
    return datetime.now(UTC)


def _list_live(app: web.Application) -> str:
    board, settings = app[BOARD], app[SETTINGS]
    return views.list_live(board.canaries(), board.problem(), settings.namespaces, _now())


async def _canary_live(app: web.Application, namespace: str, name: str) -> str:
    board, settings, client = app[BOARD], app[SETTINGS], app[CLIENT]
    problem = board.problem()
    if not board.covers(namespace):
        return views.banner(
            Problem(
                "Namespace not shown",
                f"this dashboard shows only {', '.join(settings.namespaces or ())}.",
                "Start it with -n for this namespace too.",
            )
        )
    obj = board.canary(namespace, name)
    if obj is None:
        if not board.synced:
            return views.banner(problem) or views.banner(
                Problem("Connecting to the cluster…", "listing the Canaries.")
            )
        return views.banner(problem) + (
            f'<h2 id="title" data-phase="">{views.e(name)}.{views.e(namespace)}</h2>'
            '<p class="muted" id="missing">This canary does not exist (any more).</p>'
        )
    from canary.commands.show import event_row

    events, workloads, links = await asyncio.gather(
        _read_events(client, namespace, name),
        _read_workloads(client, obj, namespace),
        _revert_links(client, obj),
    )
    detail = views.Detail(
        obj=obj,
        picture=_picture(obj, events),
        workloads=workloads,
        events=[event_row(ev) for ev in events[-EVENTS_SHOWN:]],
        links=links,
        gates=_plan_gates(obj, settings) if settings.write_enabled else (),
        write_enabled=settings.write_enabled,
        csrf=settings.csrf,
    )
    return views.detail_live(detail, problem, _now())


def _picture(obj: Mapping[str, Any], events: Sequence[Mapping[str, Any]]) -> str:
    """The decision picture of :mod:`canary.report` (its SVG), or why there is none."""
    try:
        from canary.report.model import build_report
        from canary.report.picture import decision_svg

        return decision_svg(build_report(obj, events))
    except Exception as exc:  # the picture must not take the page down
        log.error("the decision picture failed: %s: %s", type(exc).__name__, exc)
        log.debug("the failure", exc_info=exc)
        return f'<p class="muted">No picture: {views.e(type(exc).__name__)}: {views.e(exc)}</p>'


def _plan_gates(obj: Mapping[str, Any], settings: Settings) -> list[views.Gate]:
    """What each gate would do now, as ``canary <gate>`` plans it (moot ones are disabled)."""
    from canary.commands.gates import plan

    gates = []
    for command, label in views.GATES:
        request = plan(command, obj, settings.user, _now())
        refused = request.moot or ("" if request.patch is not None else request.effect)
        gates.append(views.Gate(command, label, request.effect, refused))
    return gates


async def _read_events(client: KubeClient, namespace: str, name: str) -> list[dict[str, Any]]:
    from canary.commands.show import read_events

    return await read_events(client, name, namespace, EVENTS_READ)


async def _read_workloads(
    client: KubeClient, obj: Mapping[str, Any], namespace: str
) -> list[dict[str, Any]]:
    from canary.commands.show import read_workloads

    try:
        return await read_workloads(client, obj, namespace)
    except (KubeError, KeyError, TypeError):
        return []


async def _revert_links(client: KubeClient, obj: Mapping[str, Any]) -> views.RevertLinks:
    """The repository's web page for the Git revert's links: from the GitOps source the Canary
    names (``spec.gitops.source``), else from the one that manages its target."""
    status = obj.get("status") if isinstance(obj.get("status"), Mapping) else {}
    revert = (status or {}).get("gitRevert")
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
    namespace = str((meta or {}).get("namespace") or "")
    try:
        kind, name, ns = await _source_of(client, obj, namespace)
        if not kind:
            return views.RevertLinks()
        source = await client.get(SOURCE_KINDS[kind], kind, name, ns)
        if kind == "Kustomization" and source is not None:  # Flux: its GitRepository
            ref = (source.get("spec") or {}).get("sourceRef") or {}
            if ref.get("kind") == "GitRepository" and ref.get("name"):
                source = await client.get(
                    SOURCE_KINDS["GitRepository"],
                    "GitRepository",
                    str(ref["name"]),
                    str(ref.get("namespace") or ns),
                )
    except KubeError:
        return views.RevertLinks()
    web_url, found = source_web_url(source)
    commit = str((revert or {}).get("commit") or "") if isinstance(revert, Mapping) else ""
    return views.RevertLinks(web_url, found, commit_url(web_url, commit), f"{kind}/{name}")


async def _source_of(
    client: KubeClient, obj: Mapping[str, Any], namespace: str
) -> tuple[str, str, str]:
    spec = obj.get("spec") if isinstance(obj.get("spec"), Mapping) else {}
    gitops = (spec or {}).get("gitops")
    source = gitops.get("source") if isinstance(gitops, Mapping) else None
    if isinstance(source, Mapping) and source.get("kind") in SOURCE_KINDS and source.get("name"):
        return str(source["kind"]), str(source["name"]), str(source.get("namespace") or namespace)
    target = (spec or {}).get("targetRef")
    if not isinstance(target, Mapping) or not target.get("name"):
        return "", "", ""
    from canary.adapters.gitops.revision import manager_of

    found = await client.get(
        str(target.get("apiVersion") or "apps/v1"),
        str(target.get("kind") or "Deployment"),
        str(target["name"]),
        namespace,
    )
    manager = manager_of(found) if found is not None else None
    if manager is None:
        return "", "", ""
    kind = {"gitsource": "GitSource", "flux": "Kustomization", "argocd": "Application"}[
        manager.manager
    ]
    return kind, manager.name, manager.namespace or namespace


# --------------------------------------------------------------------------- pages


async def _list_page(request: web.Request) -> web.Response:
    app = request.app
    settings = app[SETTINGS]
    await app[BOARD].settle(SETTLE_SECONDS)
    current = views.Page(
        "Canaries",
        _list_live(app),
        stream="/events",
        write_enabled=settings.write_enabled,
        version=app[BOARD].version,
    )
    return _with_cookie(_html(200, views.page(current)), settings)


async def _canary_page(request: web.Request) -> web.Response:
    app = request.app
    settings = app[SETTINGS]
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    await app[BOARD].settle(SETTLE_SECONDS)
    notice = NOTICES.get(request.query.get("requested", ""), "")
    unchanged = request.query.get("unchanged", "")
    if unchanged in GATE_NAMES:
        notice = f"{unchanged}: nothing to do (already in that state)."
    version = app[BOARD].version
    live = await _canary_live(app, namespace, name)
    current = views.Page(
        f"{name}.{namespace}",
        live,
        stream=f"{views.canary_path(namespace, name)}/events",
        write_enabled=settings.write_enabled,
        version=version,
        notice=notice,
    )
    return _with_cookie(_html(200, views.page(current)), settings)


async def _stream(request: web.Request, render: Callable[[], Awaitable[str]]) -> web.StreamResponse:
    """Server-Sent Events: the page's live part each time it changes (a comment keeps the
    connection open in between)."""
    board = request.app[BOARD]
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
    )
    _secure(response)
    await response.prepare(request)
    sent = ""
    version = -1
    try:
        while True:
            await board.changed(version, HEARTBEAT_SECONDS)
            version = board.version
            html = await render()
            if html != sent:
                data = json.dumps({"html": html, "version": version})
                await response.write(f"event: update\ndata: {data}\n\n".encode())
                sent = html
            else:
                await response.write(b": still here\n\n")
    except (ConnectionResetError, ConnectionError):
        pass  # the page went away
    return response


async def _list_stream(request: web.Request) -> web.StreamResponse:
    async def render() -> str:
        return _list_live(request.app)

    return await _stream(request, render)


async def _canary_stream(request: web.Request) -> web.StreamResponse:
    namespace, name = request.match_info["namespace"], request.match_info["name"]

    async def render() -> str:
        return await _canary_live(request.app, namespace, name)

    return await _stream(request, render)


# --------------------------------------------------------------------------- the gates


def _cross_site(request: web.Request, settings: Settings, token: str) -> str:
    """Why a state-changing request is refused as cross-site, or "" when it is our own page's."""
    origin = request.headers.get("Origin")
    if origin is not None and origin != f"{request.scheme}://{request.host}":
        return f"the request comes from another origin ({origin!r})"
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        return f"the browser marked it {request.headers['Sec-Fetch-Site']}"
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not token or not hmac.compare_digest(token, settings.csrf):
        return "the form's CSRF token is missing or wrong (reload the page)"
    if not cookie or not hmac.compare_digest(cookie, settings.csrf):
        return "the CSRF cookie is missing or wrong (reload the page)"
    return ""


async def _gate(request: web.Request) -> web.StreamResponse:
    """POST a gate: refused unless --enable-write and our own page sent it; then exactly what
    ``canary <gate> NAME -n NAMESPACE`` does (its code plans and writes the annotation)."""
    from canary.commands._common import Output
    from canary.commands.gates import _Ask, plan

    app = request.app
    settings = app[SETTINGS]
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    gate = request.match_info["gate"]
    if not settings.write_enabled:
        return _refuse(
            403,
            "Write actions are disabled",
            "this dashboard is read-only: start it with `canary dashboard --enable-write` to "
            "use the gates. Nothing was written.",
        )
    form = await request.post()
    token = form.get(CSRF_FIELD)
    why = _cross_site(request, settings, token if isinstance(token, str) else "")
    if why:
        return _refuse(403, "Cross-site request refused", f"{why}. Nothing was written.")
    if gate not in GATE_NAMES:
        return _refuse(
            404, "No such gate", f"{gate!r} is not one of {', '.join(sorted(GATE_NAMES))}."
        )
    if not app[BOARD].covers(namespace):
        return _refuse(403, "Namespace not shown", "this dashboard does not show that namespace.")
    client = app[CLIENT]
    ask = _Ask(gate, name, namespace, settings.user, False, False, 0.0, Output.JSON)
    try:
        result = await ask.send(client)
    except typer.Exit:
        # refused by the CLI's rules: the canary is gone, or its phase makes the gate moot
        obj = await client.get(API_VERSION, "Canary", name, namespace)
        if obj is None:
            return _refuse(
                404, "No such canary", f"{name}.{namespace} was not found: nothing written."
            )
        moot = plan(gate, obj, settings.user, _now()).moot
        return _refuse(
            409, f"{gate} refused", f"{name}.{namespace} {moot or 'refused'}; nothing written."
        )
    except KubeError as exc:
        return _refuse(502, "The API server refused", f"{exc}; nothing written.")
    log.info(
        "%s %s.%s by %s: %s",
        gate,
        name,
        namespace,
        settings.user,
        "written" if result.get("written") else "nothing to write",
    )
    outcome = "requested" if result.get("written") else "unchanged"
    raise web.HTTPSeeOther(f"{views.canary_path(namespace, name)}?{outcome}={gate}")
