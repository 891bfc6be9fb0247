"""Loopback stand-ins for the pull-request APIs of five forges, for the forge client's tests.

`ForgeServer(kind)` (``await server.start()`` returns the API URL, ``await server.stop()``)
is an aiohttp server on 127.0.0.1 that implements, the way each vendor
documents them, just the endpoints the client uses:

======================  ========================================================================
github                  ``GET|POST /api/v3/repos/{owner}/{repo}/pulls`` (GitHub Enterprise paths)
gitlab                  ``GET|POST /api/v4/projects/{url-encoded path}/merge_requests``
gitea                   ``GET|POST /api/v1/repos/{owner}/{repo}/pulls``
bitbucket-server        ``GET|POST /rest/api/1.0/projects/{KEY}/repos/{slug}/pull-requests``
bitbucket-cloud         ``GET|POST /2.0/repositories/{workspace}/{slug}/pullrequests``
======================  ========================================================================

Each keeps its own store of pull requests (`ForgeServer.pulls`), checks the vendor's
authentication header, answers the vendor's status codes and JSON error bodies (401, 403, 404,
400/422 for a missing title, the vendor's "already exists" for a second open pull request with
the same branches), lists newest first with the vendor's filters and pagination at a small page
size (`page_size`, 2 by default, whatever the client asks for), and records every request
(`ForgeServer.requests`, `ForgeServer.wait_for`).

Test switches: `rate_limited` (the vendor's 429, or GitHub's 403, with its headers),
`fail_status` (answer every request with that status), `stalled` (accept and never answer),
`race_next_create()` (another creator opens the same pull request just before the next create
arrives), and `add`, `merge`, `close` to arrange the store.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote, urlencode

import pytest
from aiohttp import web

from tests.http_fixtures import LOOPBACK

Kind = Literal["github", "gitlab", "gitea", "bitbucket-server", "bitbucket-cloud"]
KINDS: tuple[Kind, ...] = ("github", "gitlab", "gitea", "bitbucket-server", "bitbucket-cloud")
State = Literal["open", "merged", "closed"]

#: The project each server hosts, as the client's ForgeTarget.project spells it.
PROJECTS: Mapping[Kind, str] = {
    "github": "acme/podinfo",
    "gitlab": "platform/apps/podinfo",
    "gitea": "acme/podinfo",
    "bitbucket-server": "PLAT/podinfo",
    "bitbucket-cloud": "acme/podinfo",
}

API_PREFIXES: Mapping[Kind, str] = {
    "github": "/api/v3",
    "gitlab": "/api/v4",
    "gitea": "/api/v1",
    "bitbucket-server": "/rest/api/1.0",
    "bitbucket-cloud": "/2.0",
}

#: The vendor's own words for each refusal (the client must pass them on).
MESSAGES: Mapping[Kind, Mapping[int, str]] = {
    "github": {
        401: "Bad credentials",
        403: "Resource not accessible by personal access token",
        404: "Not Found",
    },
    "gitlab": {401: "401 Unauthorized", 403: "403 Forbidden", 404: "404 Project Not Found"},
    "gitea": {
        401: "user does not exist [uid: 0, name: ]",
        403: "user should have a permission to write to a repository",
        404: "The target couldn't be found.",
    },
    "bitbucket-server": {
        401: "Authentication failed. Please check your credentials and try again.",
        403: "You are not permitted to access this resource",
        404: "Repository PLAT/podinfo does not exist.",
    },
    "bitbucket-cloud": {
        401: "Unauthorized",
        403: "Your credentials lack one or more required privilege scopes.",
        404: "Repository acme/podinfo not found",
    },
}

_BBS_EXCEPTIONS = {
    400: "com.atlassian.bitbucket.validation.ArgumentValidationException",
    401: "com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException",
    403: "com.atlassian.bitbucket.AuthorisationException",
    404: "com.atlassian.bitbucket.repository.NoSuchRepositoryException",
    409: "com.atlassian.bitbucket.pull.DuplicatePullRequestException",
    429: "com.atlassian.bitbucket.throttle.RateLimitedException",
}


@dataclass
class StoredPull:
    """A pull request as the server keeps it, whatever the vendor."""

    number: int
    head: str
    base: str
    title: str
    body: str
    state: State = "open"
    author: str = "canary-bot"
    created: float = field(default_factory=time.time)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ForgeRequest:
    """What reached the server."""

    method: str
    path: str  # decoded
    raw_path: str  # as sent, with its percent-escapes
    query: tuple[tuple[str, str], ...]
    headers: Mapping[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def param(self, name: str) -> str | None:
        values = self.params(name)
        return values[0] if values else None

    def params(self, name: str) -> list[str]:
        return [v for k, v in self.query if k == name]


class ForgeServer:
    """One forge's pull-request API on loopback (see the module docstring)."""

    def __init__(
        self,
        kind: Kind,
        *,
        token: str = "forge-token-0123456789abcdef",
        readonly_token: str = "forge-readonly-token-0123456789",
        username: str = "canary-bot",
        password: str = "app-password-0123456789abcdef",
        page_size: int = 2,
    ) -> None:
        self.kind: Kind = kind
        self.token = token
        self.readonly_token = readonly_token
        self.username = username
        self.password = password
        self.page_size = page_size
        self.project = PROJECTS[kind]
        self.owner, _, self.repo = self.project.rpartition("/")
        self.pulls: list[StoredPull] = []
        self.requests: list[ForgeRequest] = []
        self.rate_limited = False
        self.rate_limit_status = 403 if kind == "github" else 429
        self.retry_after = 30
        self.fail_status: int | None = None
        self.stalled = False
        self._race = False
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self._changed = asyncio.Condition()
        self.port = 0

    # ------------------------------------------------------------------------ lifecycle

    async def start(self) -> str:
        """Start listening; return the API URL."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, LOOPBACK, 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self.api_url

    async def stop(self) -> None:
        """Stop listening; answers held by `stalled` are released first."""
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def web_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def api_url(self) -> str:
        return self.web_url + API_PREFIXES[self.kind]

    @property
    def clone_url(self) -> str:
        """The repository's HTTP clone URL, as the forge shows it."""
        if self.kind == "bitbucket-server":
            return f"{self.web_url}/scm/{self.owner.lower()}/{self.repo}.git"
        return f"{self.web_url}/{self.project}.git"

    def pull_url(self, number: int) -> str:
        """The web page of a pull request, as the forge links it."""
        web_url = self.web_url
        return {
            "github": f"{web_url}/{self.project}/pull/{number}",
            "gitlab": f"{web_url}/{self.project}/-/merge_requests/{number}",
            "gitea": f"{web_url}/{self.project}/pulls/{number}",
            "bitbucket-server": (
                f"{web_url}/projects/{self.owner}/repos/{self.repo}/pull-requests/{number}"
            ),
            "bitbucket-cloud": f"{web_url}/{self.project}/pull-requests/{number}",
        }[self.kind]

    # -------------------------------------------------------------------------- the store

    def add(
        self,
        head: str,
        base: str,
        *,
        state: State = "open",
        title: str = "Revert a failed release",
        author: str = "someone-else",
    ) -> StoredPull:
        number = len(self.pulls) + 1
        pull = StoredPull(number, head, base, title, "", state=state, author=author)
        self.pulls.append(pull)
        return pull

    def get(self, number: int) -> StoredPull:
        for pull in self.pulls:
            if pull.number == number:
                return pull
        raise KeyError(number)

    def merge(self, number: int) -> None:
        self.get(number).state = "merged"

    def close(self, number: int) -> None:
        """Close (decline) a pull request without merging it."""
        self.get(number).state = "closed"

    def race_next_create(self) -> None:
        """Just before the next create is handled, another creator opens the same pull request."""
        self._race = True

    def posts(self) -> list[ForgeRequest]:
        return [r for r in self.requests if r.method == "POST"]

    def gets(self) -> list[ForgeRequest]:
        return [r for r in self.requests if r.method == "GET"]

    async def wait_for(self, count: int, *, within: float = 5.0) -> list[ForgeRequest]:
        """Wait until ``count`` requests arrived; fail the test after ``within`` seconds."""
        try:
            async with asyncio.timeout(within), self._changed:
                await self._changed.wait_for(lambda: len(self.requests) >= count)
        except TimeoutError:
            pytest.fail(f"expected {count} request(s) within {within}s, got {len(self.requests)}")
        return self.requests

    # ------------------------------------------------------------------------- handling

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        recorded = ForgeRequest(
            method=request.method,
            path=request.path,
            raw_path=request.raw_path.split("?", 1)[0],
            query=tuple(request.query.items()),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
        )
        async with self._changed:
            self.requests.append(recorded)
            self._changed.notify_all()
        if self.stalled:
            await self._closing.wait()
            return web.Response(status=503)
        if self.fail_status is not None:
            return self._error(self.fail_status, "the server is having a bad day")
        route = self._route(recorded)
        if route is None:
            return self._error(404, MESSAGES[self.kind][404])
        operation, project = route
        access = self._access(recorded)
        if access == "bad":
            return self._error(401, MESSAGES[self.kind][401])
        if access == "none":
            # A private repository: GitHub, GitLab and Gitea do not admit that it exists.
            if self.kind in ("github", "gitlab", "gitea"):
                return self._error(404, MESSAGES[self.kind][404])
            return self._error(401, MESSAGES[self.kind][401])
        if self.rate_limited:
            return self._rate_limit()
        if project != self.project:
            return self._error(404, MESSAGES[self.kind][404])
        if operation == "create" and access == "read":
            return self._error(403, MESSAGES[self.kind][403])
        if operation == "list":
            return self._list(recorded)
        try:
            payload = recorded.json()
        except ValueError:
            return self._error(400, "Invalid JSON")
        if not isinstance(payload, dict):
            return self._error(400, "Invalid JSON")
        return self._create(payload)

    def _route(self, req: ForgeRequest) -> tuple[Literal["list", "create"], str] | None:
        prefix = API_PREFIXES[self.kind]
        if not req.raw_path.startswith(prefix + "/"):
            return None
        rest = req.raw_path[len(prefix) :]
        patterns = {
            "github": r"^/repos/([^/]+)/([^/]+)/pulls$",
            "gitea": r"^/repos/([^/]+)/([^/]+)/pulls$",
            # GitLab takes the project path as ONE url-encoded segment (group%2Fsub%2Frepo).
            "gitlab": r"^/projects/([^/]+)/merge_requests$",
            "bitbucket-server": r"^/projects/([^/]+)/repos/([^/]+)/pull-requests$",
            "bitbucket-cloud": r"^/repositories/([^/]+)/([^/]+)/pullrequests$",
        }
        match = re.match(patterns[self.kind], rest)
        if match is None or req.method not in ("GET", "POST"):
            return None
        project = "/".join(unquote(g) for g in match.groups())
        if self.kind in ("github", "gitea", "bitbucket-cloud") and (
            project.lower() == self.project.lower()
        ):
            project = self.project  # these forges ignore the case of owner and repository
        return ("list" if req.method == "GET" else "create"), project

    def _access(self, req: ForgeRequest) -> Literal["none", "bad", "read", "write"]:
        presented: list[str] = []
        if self.kind == "gitlab" and req.header("private-token") is not None:
            presented.append("token " + (req.header("private-token") or ""))
        authorization = req.header("authorization")
        if authorization is not None:
            scheme, _, value = authorization.partition(" ")
            scheme = scheme.lower()
            schemes = {
                "github": ("bearer", "token"),
                "gitlab": ("bearer",),
                "gitea": ("token", "bearer", "basic"),
                "bitbucket-server": ("bearer", "basic"),
                "bitbucket-cloud": ("bearer", "basic"),
            }[self.kind]
            if scheme not in schemes:
                return "bad"
            if scheme == "basic":
                try:
                    user, _, secret = base64.b64decode(value).decode().partition(":")
                except ValueError:
                    return "bad"
                if user == self.username and secret in (self.password, self.token):
                    return "write"
                return "bad"
            presented.append("token " + value)
        if not presented:
            return "none"
        for text in presented:
            value = text.removeprefix("token ")
            if value == self.token:
                return "write"
            if value == self.readonly_token:
                return "read"
        return "bad"

    # ---------------------------------------------------------------------------- answers

    def _json(
        self, data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> web.Response:
        return web.Response(
            status=status,
            body=json.dumps(data).encode(),
            headers={"Content-Type": "application/json", **(headers or {})},
        )

    def _error(self, status: int, message: str | list[str], **extra: Any) -> web.Response:
        """An error in the vendor's JSON shape."""
        text = message if isinstance(message, str) else "; ".join(message)
        body: Any
        if self.kind == "github":
            body = {
                "message": text,
                "documentation_url": "https://docs.github.com/rest",
                "status": str(status),
                **extra,
            }
        elif self.kind == "gitlab":
            body = {"message": message, **extra}
        elif self.kind == "gitea":
            body = {"message": text, "url": f"{self.web_url}/api/swagger", **extra}
        elif self.kind == "bitbucket-server":
            entry = {
                "context": extra.pop("context", None),
                "message": text,
                "exceptionName": _BBS_EXCEPTIONS.get(status),
                **extra,
            }
            body = {"errors": [entry]}
        else:
            body = {"type": "error", "error": {"message": text, **extra}}
        return self._json(body, status=status)

    def _rate_limit(self) -> web.Response:
        now = int(time.time())
        reset = now + self.retry_after
        if self.kind == "github":
            headers = {
                "x-ratelimit-limit": "5000",
                "x-ratelimit-remaining": "0",
                "x-ratelimit-used": "5000",
                "x-ratelimit-reset": str(reset),
                "x-ratelimit-resource": "core",
            }
            if self.rate_limit_status == 429:
                # A secondary rate limit: retry-after, and a message that says so.
                headers = {"retry-after": str(self.retry_after)}
                message = (
                    "You have exceeded a secondary rate limit. Please wait a few minutes "
                    "before you try again."
                )
            else:
                message = "API rate limit exceeded for user ID 1."
            response = self._error(self.rate_limit_status, message)
            response.headers.update(headers)
            return response
        if self.kind == "gitlab":
            # Rack::Attack's throttle: plain text, RateLimit-* headers (Retry-After is missing
            # on some GitLab versions, so the reset time is all a client gets).
            return web.Response(
                status=429,
                text="Retry later\n",
                headers={
                    "RateLimit-Limit": "600",
                    "RateLimit-Observed": "601",
                    "RateLimit-Remaining": "0",
                    "RateLimit-Reset": str(reset),
                    "RateLimit-ResetTime": email.utils.formatdate(reset, usegmt=True),
                },
            )
        if self.kind == "gitea":
            response = self._error(429, "rate limit exceeded")
            response.headers["Retry-After"] = str(self.retry_after)
            return response
        if self.kind == "bitbucket-server":
            response = self._error(
                429, "You have made too many requests. Wait a moment, then try again."
            )
            response.headers.update(
                {
                    "Retry-After": str(self.retry_after),
                    "X-RateLimit-Limit": "60",
                    "X-RateLimit-Interval-Seconds": "1",
                    "X-RateLimit-Fill-Rate": "5",
                }
            )
            return response
        # Bitbucket Cloud: no hint when to come back, only which limit was hit.
        return web.Response(
            status=429,
            text="Rate limit for this resource has been exceeded",
            headers={
                "X-RateLimit-Limit": "1000",
                "X-RateLimit-Resource": "api-repository-pullrequests",
                "X-RateLimit-NearLimit": "true",
            },
        )

    # ------------------------------------------------------------------------- rendering

    def _render(self, pull: StoredPull) -> dict[str, Any]:
        number, url = pull.number, self.pull_url(pull.number)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(pull.created))
        if self.kind in ("github", "gitea"):
            repo = {"full_name": self.project, "name": self.repo, "owner": {"login": self.owner}}
            data: dict[str, Any] = {
                "id": 1000 + number,
                "number": number,
                "html_url": url,
                "url": f"{self.api_url}/repos/{self.project}/pulls/{number}",
                "state": "open" if pull.state == "open" else "closed",
                "title": pull.title,
                "body": pull.body,
                "user": {"login": pull.author},
                "created_at": stamp,
                "merged_at": stamp if pull.state == "merged" else None,
                "head": {"ref": pull.head, "label": f"{self.owner}:{pull.head}", "repo": repo},
                "base": {"ref": pull.base, "label": f"{self.owner}:{pull.base}", "repo": repo},
            }
            if self.kind == "gitea":
                data["merged"] = pull.state == "merged"
            return data
        if self.kind == "gitlab":
            return {
                "id": 5000 + number,
                "iid": number,
                "project_id": 42,
                "source_project_id": 42,
                "target_project_id": 42,
                "title": pull.title,
                "description": pull.body,
                "state": {"open": "opened", "merged": "merged", "closed": "closed"}[pull.state],
                "source_branch": pull.head,
                "target_branch": pull.base,
                "author": {"username": pull.author},
                "created_at": stamp,
                "web_url": url,
                "force_remove_source_branch": bool(pull.extra.get("remove_source_branch")),
            }
        if self.kind == "bitbucket-server":
            repository = {"slug": self.repo, "name": self.repo, "project": {"key": self.owner}}
            state = {"open": "OPEN", "merged": "MERGED", "closed": "DECLINED"}[pull.state]
            return {
                "id": number,
                "version": 0,
                "title": pull.title,
                "description": pull.body,
                "state": state,
                "open": pull.state == "open",
                "closed": pull.state != "open",
                "createdDate": int(pull.created * 1000),
                "fromRef": {
                    "id": f"refs/heads/{pull.head}",
                    "displayId": pull.head,
                    "repository": repository,
                },
                "toRef": {
                    "id": f"refs/heads/{pull.base}",
                    "displayId": pull.base,
                    "repository": repository,
                },
                "author": {"user": {"name": pull.author}, "role": "AUTHOR"},
                "links": {"self": [{"href": url}]},
            }
        state = {"open": "OPEN", "merged": "MERGED", "closed": "DECLINED"}[pull.state]
        repository = {"full_name": self.project, "type": "repository"}
        return {
            "type": "pullrequest",
            "id": number,
            "title": pull.title,
            "description": pull.body,
            "summary": {"raw": pull.body, "markup": "markdown"},
            "state": state,
            "author": {"display_name": pull.author},
            "created_on": stamp,
            "source": {"branch": {"name": pull.head}, "repository": repository},
            "destination": {"branch": {"name": pull.base}, "repository": repository},
            "close_source_branch": bool(pull.extra.get("close_source_branch")),
            "links": {
                "self": {
                    "href": f"{self.api_url}/repositories/{self.project}/pullrequests/{number}"
                },
                "html": {"href": url},
            },
        }

    # ------------------------------------------------------------------------------ list

    def _newest_first(self, pulls: Sequence[StoredPull]) -> list[StoredPull]:
        return sorted(pulls, key=lambda p: p.number, reverse=True)

    def _list(self, req: ForgeRequest) -> web.Response:
        if self.kind == "github":
            return self._list_github(req)
        if self.kind == "gitlab":
            return self._list_gitlab(req)
        if self.kind == "gitea":
            return self._list_gitea(req)
        if self.kind == "bitbucket-server":
            return self._list_bitbucket_server(req)
        return self._list_bitbucket_cloud(req)

    def _size(self, asked: str | None, default: int) -> int:
        size = int(asked) if asked and asked.isdigit() and int(asked) > 0 else default
        return min(size, self.page_size)

    def _link(self, req: ForgeRequest, page: int, last: int, key: str = "page") -> str:
        links = []
        for rel, number in (("next", page + 1), ("last", last)):
            if rel == "next" and page >= last:
                continue
            query = [(k, v) for k, v in req.query if k != key] + [(key, str(number))]
            links.append(f'<{self.web_url}{req.raw_path}?{urlencode(query)}>; rel="{rel}"')
        return ", ".join(links)

    def _list_github(self, req: ForgeRequest) -> web.Response:
        state = req.param("state") or "open"
        pulls = [
            p for p in self.pulls if state == "all" or (p.state == "open") == (state == "open")
        ]
        head = req.param("head")
        if head is not None:
            owner, colon, branch = head.partition(":")
            if colon:  # documented format user:ref-name
                pulls = [p for p in pulls if owner == self.owner and p.head == branch]
        base = req.param("base")
        if base is not None:
            pulls = [p for p in pulls if p.base == base]
        size = self._size(req.param("per_page"), 30)
        page = int(req.param("page") or "1")
        pulls = self._newest_first(pulls)
        last = max(1, -(-len(pulls) // size))
        chunk = pulls[(page - 1) * size : page * size]
        headers = {"Link": self._link(req, page, last)} if last > 1 else {}
        return self._json([self._render(p) for p in chunk], headers=headers)

    def _list_gitlab(self, req: ForgeRequest) -> web.Response:
        state = req.param("state") or "all"
        wanted = {"opened": "open", "merged": "merged", "closed": "closed"}.get(state)
        pulls = [p for p in self.pulls if state == "all" or p.state == wanted]
        if (source := req.param("source_branch")) is not None:
            pulls = [p for p in pulls if p.head == source]
        if (target := req.param("target_branch")) is not None:
            pulls = [p for p in pulls if p.base == target]
        pulls = self._newest_first(pulls)
        size = self._size(req.param("per_page"), 20)
        page = int(req.param("page") or "1")
        pages = max(1, -(-len(pulls) // size))
        chunk = pulls[(page - 1) * size : page * size]
        headers = {
            "X-Page": str(page),
            "X-Per-Page": str(size),
            "X-Total": str(len(pulls)),
            "X-Total-Pages": str(pages),
            "X-Next-Page": str(page + 1) if page < pages else "",
            "X-Prev-Page": str(page - 1) if page > 1 else "",
        }
        if pages > 1:
            headers["Link"] = self._link(req, page, pages)
        return self._json([self._render(p) for p in chunk], headers=headers)

    def _list_gitea(self, req: ForgeRequest) -> web.Response:
        state = req.param("state") or "open"
        pulls = [
            p for p in self.pulls if state == "all" or (p.state == "open") == (state == "open")
        ]
        if base := req.param("base_branch"):
            pulls = [p for p in pulls if p.base == base]
        pulls = self._newest_first(pulls)
        size = self._size(req.param("limit"), 30)
        page = max(1, int(req.param("page") or "1"))
        pages = max(1, -(-len(pulls) // size))
        chunk = pulls[(page - 1) * size : page * size]
        headers = {"X-Total-Count": str(len(pulls))}
        if pages > 1:
            headers["Link"] = self._link(req, page, pages)
        return self._json([self._render(p) for p in chunk], headers=headers)

    def _list_bitbucket_server(self, req: ForgeRequest) -> web.Response:
        state = (req.param("state") or "OPEN").upper()
        wanted = {"OPEN": "open", "MERGED": "merged", "DECLINED": "closed"}.get(state)
        pulls = [p for p in self.pulls if state == "ALL" or p.state == wanted]
        at = req.param("at")
        if at is not None:
            branch = at.removeprefix("refs/heads/")
            # INCOMING (the default) filters on the target, OUTGOING on the source.
            if (req.param("direction") or "INCOMING").upper() == "OUTGOING":
                pulls = [p for p in pulls if p.head == branch]
            else:
                pulls = [p for p in pulls if p.base == branch]
        pulls = self._newest_first(pulls)
        if (req.param("order") or "NEWEST").upper() == "OLDEST":
            pulls.reverse()
        start = int(req.param("start") or "0")
        size = self._size(req.param("limit"), 25)
        chunk = pulls[start : start + size]
        last = start + size >= len(pulls)
        page: dict[str, Any] = {
            "size": len(chunk),
            "limit": size,
            "isLastPage": last,
            "values": [self._render(p) for p in chunk],
            "start": start,
        }
        if not last:
            page["nextPageStart"] = start + size
        return self._json(page)

    _BBQL = re.compile(r'\s*([\w.]+)\s*=\s*"((?:[^"\\]|\\.)*)"\s*')

    def _list_bitbucket_cloud(self, req: ForgeRequest) -> web.Response:
        states = [s.upper() for s in req.params("state")] or ["OPEN"]
        mapped = {"OPEN": "open", "MERGED": "merged", "DECLINED": "closed"}
        wanted = {mapped[s] for s in states if s in mapped}
        pulls = [p for p in self.pulls if p.state in wanted]
        query = req.param("q")
        if query:
            for clause in re.split(r"\s+AND\s+", query.strip()):
                match = self._BBQL.fullmatch(clause)
                if match is None:
                    return self._error(400, f"Invalid query: {clause}")
                name, value = match[1], re.sub(r"\\(.)", r"\1", match[2])
                if name == "source.branch.name":
                    pulls = [p for p in pulls if p.head == value]
                elif name == "destination.branch.name":
                    pulls = [p for p in pulls if p.base == value]
                else:
                    return self._error(400, f"Invalid field name: {name}")
        pulls = self._newest_first(pulls)
        size = self._size(req.param("pagelen"), 10)
        page = int(req.param("page") or "1")
        chunk = pulls[(page - 1) * size : page * size]
        data: dict[str, Any] = {
            "size": len(pulls),
            "page": page,
            "pagelen": size,
            "values": [self._render(p) for p in chunk],
        }
        if page * size < len(pulls):
            rest = [(k, v) for k, v in req.query if k != "page"] + [("page", str(page + 1))]
            data["next"] = f"{self.web_url}{req.raw_path}?{urlencode(rest)}"
        return self._json(data)

    # ---------------------------------------------------------------------------- create

    def _open_with(self, head: str, base: str) -> StoredPull | None:
        for pull in self.pulls:
            if pull.state == "open" and pull.head == head and pull.base == base:
                return pull
        return None

    def _create(self, payload: dict[str, Any]) -> web.Response:
        head, base, title, body, extra = self._read_create(payload)
        if head is None or base is None:
            return self._error(400 if self.kind != "github" else 422, "head and base are required")
        if self._race:
            self._race = False
            self.add(head, base, title="Opened by another creator", author="another-controller")
        if not title:
            return self._missing_title()
        existing = self._open_with(head, base)
        if existing is not None:
            return self._duplicate(existing)
        pull = self.add(head, base, title=title, author="canary-bot")
        pull.body = body
        pull.extra.update(extra)
        return self._json(self._render(pull), status=201)

    def _read_create(
        self, data: dict[str, Any]
    ) -> tuple[str | None, str | None, str, str, dict[str, Any]]:
        def text(value: Any) -> str | None:
            return value if isinstance(value, str) and value else None

        if self.kind in ("github", "gitea"):
            head = text(data.get("head"))
            if head is not None and ":" in head:
                owner, _, head = head.partition(":")
                head = head if owner == self.owner else None
            return head, text(data.get("base")), data.get("title") or "", data.get("body") or "", {}
        if self.kind == "gitlab":
            return (
                text(data.get("source_branch")),
                text(data.get("target_branch")),
                data.get("title") or "",
                data.get("description") or "",
                {"remove_source_branch": data.get("remove_source_branch")},
            )
        if self.kind == "bitbucket-server":

            def ref(side: str) -> str | None:
                value = data.get(side)
                ref_id = text(value.get("id")) if isinstance(value, dict) else None
                return ref_id.removeprefix("refs/heads/") if ref_id else None

            return (
                ref("fromRef"),
                ref("toRef"),
                data.get("title") or "",
                data.get("description") or "",
                {},
            )

        def branch(side: str) -> str | None:
            value = data.get(side)
            inner = value.get("branch") if isinstance(value, dict) else None
            return text(inner.get("name")) if isinstance(inner, dict) else None

        return (
            branch("source"),
            branch("destination"),
            data.get("title") or "",
            data.get("description") or "",
            {"close_source_branch": data.get("close_source_branch")},
        )

    def _missing_title(self) -> web.Response:
        if self.kind == "github":
            return self._error(
                422,
                "Validation Failed",
                errors=[{"resource": "PullRequest", "field": "title", "code": "missing_field"}],
            )
        if self.kind == "gitlab":
            return self._json({"error": "title is missing"}, status=400)
        if self.kind == "gitea":
            return self._error(422, "[Title]: Required")
        if self.kind == "bitbucket-server":
            return self._error(
                400,
                "Please enter a non-empty value less than 255 characters",
                context="title",
            )
        return self._error(
            400,
            "title: This field is required.",
            fields={"title": ["This field is required."]},
        )

    def _duplicate(self, existing: StoredPull) -> web.Response:
        if self.kind == "github":
            return self._error(
                422,
                "Validation Failed",
                errors=[
                    {
                        "resource": "PullRequest",
                        "code": "custom",
                        "message": f"A pull request already exists for {self.owner}:{existing.head}.",
                    }
                ],
            )
        if self.kind == "gitlab":
            return self._error(
                409,
                [
                    f"Another open merge request already exists for this source branch: !{existing.number}"
                ],
            )
        if self.kind == "gitea":
            return self._error(
                409,
                f"pull request already exists for these targets [id: {existing.number}, "
                f"issue_id: {existing.number}, head_repo_id: 1, base_repo_id: 1, "
                f"head_branch: {existing.head}, base_branch: {existing.base}]",
            )
        if self.kind == "bitbucket-server":
            return self._error(
                409,
                "Only one pull request may be open for a given source and target branch",
                existingPullRequest=self._render(existing),
            )
        # Bitbucket Cloud: a second create for the same branches updates the open one.
        return self._json(self._render(existing), status=200)
