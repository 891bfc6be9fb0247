"""Pull requests on five forges, through their documented HTTP APIs.

When a revert cannot be pushed to a protected branch, it goes to a side branch and a pull request
asks a person to merge it. This module opens (or finds again) that pull request on GitHub
(and GitHub Enterprise), GitLab, Gitea and Forgejo, Bitbucket Server / Data Center and
Bitbucket Cloud:

* :func:`forge_target` tells the forge, its API URL and the project from a repository URL;
* :class:`ForgeClient` lists and creates pull requests with httpx (async, a timeout on every
  call, at most ten pages per listing). :meth:`ForgeClient.ensure` is idempotent: a pull
  request that already exists for the same head and base, open, merged or closed, is returned
  instead of a second one, also when another creator wins a race.

Credentials never reach a message, a log line or a repr: every text that leaves passes through
the :class:`~canary.adapters.redaction.Redactor` of the client's credentials.

Exception tree::

    ForgeError                 kind tells what happened; message is already redacted
      kind=UNAUTHORIZED        401: the token is wrong or expired (retriable: Secrets get rotated)
      kind=FORBIDDEN           403 that is not a rate limit: the token lacks a permission (retriable)
      kind=NOT_FOUND           404: no such repository, or a private one the token cannot see (retriable)
      kind=RATE_LIMITED        429, or 403 with the vendor's rate-limit signs; retry_after when told
      kind=UNAVAILABLE         5xx, refused or broken connections (retriable)
      kind=TIMEOUT             no complete answer within the client's timeout (retriable)
      kind=INVALID             400/422, or bad input refused before any request
      kind=FAILED              anything else; also "already exists" from create (already_exists=True)
"""

from __future__ import annotations

import abc
import asyncio
import email.utils
import enum
import logging
import re
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Literal, cast, get_args
from urllib.parse import quote, urlsplit

import httpx

from canary.adapters.gitops.credentials import GitCredentials, redactor_for
from canary.adapters.gitops.git import GitError, check_branch
from canary.errors import ClassifiedError

__all__ = [
    "ForgeClient",
    "ForgeError",
    "ForgeFailure",
    "ForgeKind",
    "ForgeTarget",
    "NewPullRequest",
    "PullRequest",
    "PullRequestState",
    "forge_target",
]

logger = logging.getLogger("canary.adapters.gitops.forges")

ForgeKind = Literal["github", "gitlab", "gitea", "bitbucket-server", "bitbucket-cloud"]
PullRequestState = Literal["open", "merged", "closed"]

_KINDS: tuple[ForgeKind, ...] = get_args(ForgeKind)
_ALIASES: Mapping[str, ForgeKind] = {"forgejo": "gitea"}
_NAMES: Mapping[ForgeKind, str] = {
    "github": "GitHub",
    "gitlab": "GitLab",
    "gitea": "Gitea",
    "bitbucket-server": "Bitbucket Server",
    "bitbucket-cloud": "Bitbucket Cloud",
}

#: At most this many pages are read to find a pull request.
MAX_PAGES = 10

_PROVIDER_FIELD = "pullRequest.provider"
_API_URL_FIELD = "pullRequest.apiURL"
_URL_FIELD = "url"


# --------------------------------------------------------------------------------- errors


class ForgeFailure(enum.Enum):
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not-found"
    RATE_LIMITED = "rate-limited"
    UNAVAILABLE = "unavailable"
    TIMEOUT = "timeout"
    INVALID = "invalid"
    FAILED = "failed"

    @property
    def retriable(self) -> bool:
        """True when the same call may succeed later: also after a 401, 403 or 404, because
        credentials get rotated and forges answer 404 for a private repository that a wrong
        token cannot see. The controller retries those at a backoff."""
        return self not in (ForgeFailure.INVALID, ForgeFailure.FAILED)


class ForgeError(ClassifiedError[ForgeFailure]):
    """A forge call failed. ``str(error)`` is redacted and safe to log or show.

    ``retry_after`` is the delay in seconds the forge asked for (``Retry-After``,
    ``X-RateLimit-Reset`` or ``RateLimit-Reset``), or None. ``status`` is the HTTP status, or
    None when no answer came. ``already_exists`` is set when a create was refused because an
    open pull request for the same branches exists.
    """

    def __init__(
        self,
        kind: ForgeFailure,
        message: str,
        *,
        retry_after: float | None = None,
        status: int | None = None,
        already_exists: bool = False,
    ) -> None:
        super().__init__(kind, message)
        self.retry_after = retry_after
        self.status = status
        self.already_exists = already_exists

    def __repr__(self) -> str:
        return f"ForgeError({self.kind.name}, {self.message!r})"


# ---------------------------------------------------------------------------------- model


@dataclass(frozen=True, slots=True)
class ForgeTarget:
    """Where the repository lives on the forge.

    ``project`` is ``owner/repo`` (GitHub, Gitea), ``group/subgroup/repo`` (GitLab),
    ``PROJ/repo`` (Bitbucket Server) or ``workspace/repo`` (Bitbucket Cloud).
    """

    kind: ForgeKind
    api_url: str
    project: str


@dataclass(frozen=True, slots=True)
class NewPullRequest:
    """A pull request to open: ``head`` into ``base`` of the same repository."""

    head: str  # source branch, in the same repository
    base: str  # target branch
    title: str
    body: str  # markdown


@dataclass(frozen=True, slots=True)
class PullRequest:
    number: int
    url: str  # the web page people open
    state: PullRequestState
    head: str
    base: str


_STATE_RANK: Mapping[PullRequestState, int] = {"open": 2, "merged": 1, "closed": 0}


def _rank(pr: PullRequest) -> tuple[int, int]:
    return (_STATE_RANK[pr.state], pr.number)


# ------------------------------------------------------------------------- forge_target


@dataclass(frozen=True, slots=True)
class _RepoURL:
    scheme: str  # "http", "https" or "ssh"
    host: str  # lower-case, without port
    port: int | None
    segments: tuple[str, ...]  # path segments, ".git" removed from the last one


def _invalid(message: str) -> ForgeError:
    return ForgeError(ForgeFailure.INVALID, message)


def _shown_url(url: str) -> str:
    """The URL without user information, safe to quote in a message."""
    if "://" not in url:
        return url.split("@", 1)[-1] if "@" in url.split(":", 1)[0] else url
    scheme, _, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    path = path.split("?", 1)[0].split("#", 1)[0]
    return f"{scheme}://{authority.rsplit('@', 1)[-1]}{slash}{path}"


_SCP_RE = re.compile(r"^(?:[^@/:]+@)?(?P<host>[^@/:]+):(?P<path>[^/].*|/.+)$")


def _parse_repo_url(repo_url: str) -> _RepoURL:
    text = repo_url.strip()
    if not text or any(c in text for c in "\x00\r\n\t "):
        raise _invalid(f"{_URL_FIELD}: expected a repository URL, got {_shown_url(text)!r}")
    if "://" in text:
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError:
            raise _invalid(
                f"{_URL_FIELD}: cannot parse {_shown_url(text)!r} as a repository URL"
            ) from None
        scheme = parts.scheme.lower()
        if scheme in ("git+ssh", "ssh+git", "git"):
            scheme = "ssh"  # git:// (a forge's git daemon): the API is elsewhere, as for ssh
        if scheme not in ("http", "https", "ssh"):
            raise _invalid(
                f"{_URL_FIELD}: scheme {scheme!r} is not supported for pull requests "
                "(expected https, http, ssh or git)"
            )
        if parts.password is not None:
            raise _invalid(
                f"{_URL_FIELD}: contains a password; put credentials in the Secret, never in the URL"
            )
        host = (parts.hostname or "").lower()
        path = parts.path
    else:
        match = _SCP_RE.match(text)
        if match is None:
            raise _invalid(f"{_URL_FIELD}: expected a repository URL, got {_shown_url(text)!r}")
        scheme, host, port, path = "ssh", match["host"].lower(), None, match["path"]
    if not host:
        raise _invalid(f"{_URL_FIELD}: {_shown_url(text)!r} has no host")
    segments = [s for s in path.split("/") if s]
    if segments and segments[-1].endswith(".git"):
        segments[-1] = segments[-1][: -len(".git")]
    segments = [s for s in segments if s]
    return _RepoURL(scheme, host, port, tuple(segments))


def _parse_kind(kind: str) -> ForgeKind:
    text = kind.strip().lower()
    text = _ALIASES.get(text, text)
    for known in _KINDS:
        if text == known:
            return known
    raise _invalid(
        f"{_PROVIDER_FIELD}: unknown forge {kind!r}; expected one of {', '.join(_KINDS)} "
        "(forgejo is accepted for gitea)"
    )


def _guess_kind(url: _RepoURL, shown: str) -> ForgeKind:
    host = url.host.removeprefix("www.")
    if host == "github.com":
        return "github"
    if host == "gitlab.com":
        return "gitlab"
    if host == "bitbucket.org":
        return "bitbucket-cloud"
    if (url.scheme != "ssh" and "scm" in url.segments[:-1]) or (
        url.scheme == "ssh" and url.port == 7999
    ):
        return "bitbucket-server"
    if "gitlab" in host:
        return "gitlab"
    if any(word in host for word in ("gitea", "forgejo", "codeberg")):
        return "gitea"
    if "github" in host:
        return "github"
    raise _invalid(
        f"{_PROVIDER_FIELD}: cannot tell the forge from {shown}; set it to one of "
        f"{', '.join(_KINDS)}"
    )


def _project_of(kind: ForgeKind, url: _RepoURL, shown: str) -> tuple[str, tuple[str, ...]]:
    """The project path and, for Bitbucket Server, the context path before ``/scm/``."""
    segments = url.segments
    context: tuple[str, ...] = ()
    if kind == "bitbucket-server":
        if url.scheme != "ssh" and "scm" in segments:
            at = len(segments) - 1 - segments[::-1].index("scm")
            context, segments = segments[:at], segments[at + 1 :]
        if len(segments) != 2:
            raise _invalid(
                f"{_URL_FIELD}: expected a Bitbucket Server clone URL such as "
                f"https://HOST/scm/PROJ/repo.git, got {shown}"
            )
        key, slug = segments
        if not key.startswith("~"):
            key = key.upper()  # clone URLs show the project key in lower case
        return f"{key}/{slug}", context
    if kind == "gitlab":
        if "-" in segments:  # a web URL such as group/repo/-/tree/main
            segments = segments[: segments.index("-")]
        if len(segments) < 2:
            raise _invalid(
                f"{_URL_FIELD}: expected a GitLab repository URL with group/repo, got {shown}"
            )
        return "/".join(segments), context
    what = "workspace/repo" if kind == "bitbucket-cloud" else "owner/repo"
    if len(segments) != 2:
        raise _invalid(
            f"{_URL_FIELD}: expected a {_NAMES[kind]} repository URL with {what}, got {shown}"
        )
    return "/".join(segments), context


def _default_api_url(kind: ForgeKind, url: _RepoURL, context: tuple[str, ...]) -> str:
    if kind == "bitbucket-cloud":
        return "https://api.bitbucket.org/2.0"
    if kind == "github" and url.host.removeprefix("www.") == "github.com":
        return "https://api.github.com"
    if url.scheme == "ssh":
        root = f"https://{url.host}"  # the ssh port says nothing about the web port
    else:
        root = f"{url.scheme}://{url.host}" + (f":{url.port}" if url.port else "")
    prefix = "".join(f"/{quote(s, safe='')}" for s in context)
    suffix = {
        "github": "/api/v3",
        "gitlab": "/api/v4",
        "gitea": "/api/v1",
        "bitbucket-server": "/rest/api/1.0",
    }[kind]
    return root + prefix + suffix


def _check_api_url(api_url: str) -> str:
    text = api_url.strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise _invalid(
            f"{_API_URL_FIELD}: cannot parse {_shown_url(text)!r} as an http(s) URL"
        ) from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise _invalid(
            f"{_API_URL_FIELD}: expected an http(s) URL such as https://gitlab.example.com/api/v4, "
            f"got {_shown_url(text)!r}"
        )
    if parts.username is not None or parts.password is not None:
        raise _invalid(
            f"{_API_URL_FIELD}: contains user information; put credentials in the Secret, "
            "never in the URL"
        )
    if parts.query or parts.fragment:
        raise _invalid(f"{_API_URL_FIELD}: expected no query or fragment, got {_shown_url(text)!r}")
    return text.rstrip("/")


def forge_target(
    repo_url: str, *, kind: str | None = None, api_url: str | None = None
) -> ForgeTarget:
    """Tell the forge, its API URL and the project from a Git URL.

    Accepted forms: ``https://host/owner/repo(.git)``, ``ssh://git@host[:port]/owner/repo.git``,
    ``git@host:owner/repo.git``, and Bitbucket Server's ``https://host[/context]/scm/PROJ/repo.git``
    and ``ssh://git@host:7999/proj/repo.git``. Without ``kind`` the forge is guessed from the
    host (or from ``/scm/`` and port 7999 for Bitbucket Server). ``api_url`` overrides the
    default API URL. Raises :class:`ForgeError` (kind INVALID) naming the field.
    """
    url = _parse_repo_url(repo_url)
    shown = _shown_url(repo_url.strip())
    resolved = _parse_kind(kind) if kind is not None else _guess_kind(url, shown)
    project, context = _project_of(resolved, url, shown)
    api = (
        _check_api_url(api_url) if api_url is not None else _default_api_url(resolved, url, context)
    )
    return ForgeTarget(kind=resolved, api_url=api, project=project)


# ------------------------------------------------------------------------------- vendors


@dataclass(frozen=True, slots=True)
class _Page:
    """One list request: an API path (below the API URL) and its query."""

    path: str
    params: Mapping[str, str | list[str]]
    seen: int = 0  # items on the pages before this one


def _seg(text: str) -> str:
    return quote(text, safe="")


class _Malformed(Exception):
    """An answer lacks something the client needs; the text says what."""


def _field(data: Any, *keys: str | int) -> Any:
    value = data
    for key in keys:
        present = (
            isinstance(value, list) and len(value) > key
            if isinstance(key, int)
            else isinstance(value, dict) and key in value
        )
        if not present:
            raise _Malformed(f"the field {'.'.join(map(str, keys))!r}")
        value = value[key]
    return value


def _str(data: Any, *keys: str | int) -> str:
    value = _field(data, *keys)
    if not isinstance(value, str):
        raise _Malformed(f"a string in {'.'.join(map(str, keys))!r}")
    return value


def _int(data: Any, *keys: str | int) -> int:
    value = _field(data, *keys)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Malformed(f"a number in {'.'.join(map(str, keys))!r}")
    return value


def _opt(data: Any, *keys: str | int) -> Any:
    try:
        return _field(data, *keys)
    except _Malformed:
        return None


def _list(data: Any, *keys: str) -> list[Any]:
    value = _field(data, *keys) if keys else data
    if not isinstance(value, list):
        raise _Malformed(f"a list in {'.'.join(keys)!r}" if keys else "a JSON list")
    return value


class _Vendor(abc.ABC):
    """What differs between forges: paths, bodies, fields, paging and the "already exists"."""

    accept = "application/json"
    extra_headers: Mapping[str, str] = {}

    def __init__(self, target: ForgeTarget) -> None:
        self.target = target
        self.owner, _, self.repo = target.project.rpartition("/")

    def check_project(self) -> None:
        if not self.owner or not self.repo or "/" in self.owner:
            raise _invalid(
                f"{_URL_FIELD}: expected a {_NAMES[self.target.kind]} project such as owner/repo, "
                f"got {self.target.project!r}"
            )

    def auth_headers(self, creds: GitCredentials) -> dict[str, str]:
        header = creds.http_authorization()
        return {"Authorization": header} if header else {}

    # -- requests
    @abc.abstractmethod
    def pulls_path(self) -> str:
        raise NotImplementedError

    @abc.abstractmethod
    def create_body(self, spec: NewPullRequest) -> dict[str, Any]:
        raise NotImplementedError

    @abc.abstractmethod
    def first_page(self, head: str, base: str) -> _Page:
        raise NotImplementedError

    @abc.abstractmethod
    def next_page(
        self, page: _Page, response: httpx.Response, data: Any, count: int
    ) -> _Page | None:
        raise NotImplementedError

    def items(self, data: Any) -> list[Any]:
        return _list(data)

    # -- answers
    @abc.abstractmethod
    def parse(self, item: Any) -> PullRequest:
        raise NotImplementedError

    def same_repository(self, item: Any) -> bool:
        return True

    def already_exists(self, status: int, data: Any, text: str) -> bool:
        return status == 409


def _page_number(page: _Page, key: str) -> int:
    value = page.params.get(key, "1")
    return int(value) if isinstance(value, str) and value.isdigit() else 1


def _with(current: _Page, count: int, /, **changes: str) -> _Page:
    """The page after ``current``, which held ``count`` items."""
    return _Page(current.path, {**current.params, **changes}, current.seen + count)


class _GitHub(_Vendor):
    accept = "application/vnd.github+json"
    extra_headers = {"X-GitHub-Api-Version": "2022-11-28"}

    def pulls_path(self) -> str:
        return f"/repos/{_seg(self.owner)}/{_seg(self.repo)}/pulls"

    def create_body(self, spec: NewPullRequest) -> dict[str, Any]:
        return {"title": spec.title, "head": spec.head, "base": spec.base, "body": spec.body}

    def first_page(self, head: str, base: str) -> _Page:
        return _Page(
            self.pulls_path(),
            {
                "head": f"{self.owner}:{head}",
                "base": base,
                "state": "all",
                "per_page": "100",
                "page": "1",
            },
        )

    def next_page(
        self, page: _Page, response: httpx.Response, data: Any, count: int
    ) -> _Page | None:
        if "next" not in response.links or count == 0:
            return None
        return _with(page, count, page=str(_page_number(page, "page") + 1))

    def parse(self, item: Any) -> PullRequest:
        state = _str(item, "state")
        merged = _opt(item, "merged_at") is not None or _opt(item, "merged") is True
        return PullRequest(
            number=_int(item, "number"),
            url=_str(item, "html_url"),
            state="merged" if merged else ("open" if state == "open" else "closed"),
            head=_str(item, "head", "ref"),
            base=_str(item, "base", "ref"),
        )

    def already_exists(self, status: int, data: Any, text: str) -> bool:
        return status == 422 and "already exists" in text.lower()


class _GitLab(_Vendor):
    def check_project(self) -> None:
        if len([s for s in self.target.project.split("/") if s]) < 2:
            raise _invalid(
                f"{_URL_FIELD}: expected a GitLab project such as group/repo, "
                f"got {self.target.project!r}"
            )

    def auth_headers(self, creds: GitCredentials) -> dict[str, str]:
        secret = creds.token or creds.password
        return {"PRIVATE-TOKEN": secret} if secret else {}

    def pulls_path(self) -> str:
        return f"/projects/{_seg(self.target.project)}/merge_requests"

    def create_body(self, spec: NewPullRequest) -> dict[str, Any]:
        return {
            "source_branch": spec.head,
            "target_branch": spec.base,
            "title": spec.title,
            "description": spec.body,
            "remove_source_branch": True,
        }

    def first_page(self, head: str, base: str) -> _Page:
        return _Page(
            self.pulls_path(),
            {
                "source_branch": head,
                "target_branch": base,
                "state": "all",
                "order_by": "created_at",
                "sort": "desc",
                "per_page": "100",
                "page": "1",
            },
        )

    def next_page(
        self, page: _Page, response: httpx.Response, data: Any, count: int
    ) -> _Page | None:
        following = response.headers.get("x-next-page", "").strip()
        if following.isdigit() and count > 0:
            return _with(page, count, page=following)
        return None

    def parse(self, item: Any) -> PullRequest:
        state = _str(item, "state")
        mapped: PullRequestState = (
            "merged" if state == "merged" else "closed" if state == "closed" else "open"
        )  # "opened", and "locked" (a merge in progress)
        return PullRequest(
            number=_int(item, "iid"),
            url=_str(item, "web_url"),
            state=mapped,
            head=_str(item, "source_branch"),
            base=_str(item, "target_branch"),
        )

    def same_repository(self, item: Any) -> bool:
        source, target = _opt(item, "source_project_id"), _opt(item, "target_project_id")
        return source is None or target is None or source == target


class _Gitea(_Vendor):
    def auth_headers(self, creds: GitCredentials) -> dict[str, str]:
        if creds.token and not creds.username:
            return {"Authorization": f"token {creds.token}"}
        return super().auth_headers(creds)

    def pulls_path(self) -> str:
        return f"/repos/{_seg(self.owner)}/{_seg(self.repo)}/pulls"

    def create_body(self, spec: NewPullRequest) -> dict[str, Any]:
        return {"head": spec.head, "base": spec.base, "title": spec.title, "body": spec.body}

    def first_page(self, head: str, base: str) -> _Page:
        # Gitea cannot filter by head: read the repository's pull requests newest first. Newer
        # releases filter by base_branch; older ones ignore it.
        return _Page(
            self.pulls_path(),
            {"state": "all", "base_branch": base, "page": "1", "limit": "50"},
        )

    def next_page(
        self, page: _Page, response: httpx.Response, data: Any, count: int
    ) -> _Page | None:
        # Gitea's Link header is built from its public ROOT_URL, which need not be the API URL
        # used here: count against X-Total-Count (the server may cap ``limit``) and ask for the
        # next page number ourselves.
        if count == 0:
            return None
        total = response.headers.get("x-total-count", "").strip()
        if total.isdigit():
            if page.seen + count >= int(total):
                return None
        elif "link" in response.headers and "next" not in response.links:
            return None
        return _with(page, count, page=str(_page_number(page, "page") + 1))

    def parse(self, item: Any) -> PullRequest:
        state = _str(item, "state")
        merged = _opt(item, "merged") is True or _opt(item, "merged_at") is not None
        return PullRequest(
            number=_int(item, "number"),
            url=_str(item, "html_url"),
            state="merged" if merged else ("open" if state == "open" else "closed"),
            head=_str(item, "head", "ref"),
            base=_str(item, "base", "ref"),
        )

    def same_repository(self, item: Any) -> bool:
        name = _opt(item, "head", "repo", "full_name")
        return not isinstance(name, str) or name.lower() == self.target.project.lower()


_HEADS = "refs/heads/"


def _branch_of(ref: Any) -> str:
    display = _opt(ref, "displayId")
    ref_id = _str(ref, "id")
    if ref_id.startswith(_HEADS):
        return ref_id[len(_HEADS) :]
    return display if isinstance(display, str) else ref_id


class _BitbucketServer(_Vendor):
    def pulls_path(self) -> str:
        return f"/projects/{_seg(self.owner)}/repos/{_seg(self.repo)}/pull-requests"

    def _repository(self) -> dict[str, Any]:
        return {"slug": self.repo, "project": {"key": self.owner}}

    def create_body(self, spec: NewPullRequest) -> dict[str, Any]:
        return {
            "title": spec.title,
            "description": spec.body,
            "fromRef": {"id": _HEADS + spec.head, "repository": self._repository()},
            "toRef": {"id": _HEADS + spec.base, "repository": self._repository()},
        }

    def first_page(self, head: str, base: str) -> _Page:
        return _Page(
            self.pulls_path(),
            {
                "direction": "OUTGOING",
                "at": _HEADS + head,
                "state": "ALL",
                "order": "NEWEST",
                "start": "0",
                "limit": "100",
            },
        )

    def items(self, data: Any) -> list[Any]:
        return _list(data, "values")

    def next_page(
        self, page: _Page, response: httpx.Response, data: Any, count: int
    ) -> _Page | None:
        if _opt(data, "isLastPage") is not False:
            return None
        start = _opt(data, "nextPageStart")
        if isinstance(start, bool) or not isinstance(start, int):
            return None
        return _with(page, count, start=str(start))

    def parse(self, item: Any) -> PullRequest:
        state = _str(item, "state")
        return PullRequest(
            number=_int(item, "id"),
            url=_str(item, "links", "self", 0, "href"),
            state="open" if state == "OPEN" else "merged" if state == "MERGED" else "closed",
            head=_branch_of(_field(item, "fromRef")),
            base=_branch_of(_field(item, "toRef")),
        )

    def same_repository(self, item: Any) -> bool:
        for side in ("fromRef", "toRef"):
            slug = _opt(item, side, "repository", "slug")
            key = _opt(item, side, "repository", "project", "key")
            if isinstance(slug, str) and slug.lower() != self.repo.lower():
                return False
            if isinstance(key, str) and key.lower() != self.owner.lower():
                return False
        return True

    def already_exists(self, status: int, data: Any, text: str) -> bool:
        errors = _opt(data, "errors")
        if status != 409 or not isinstance(errors, list):
            return False
        return any(
            isinstance(e, dict) and "DuplicatePullRequest" in str(e.get("exceptionName"))
            for e in errors
        )


def _bbql(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _BitbucketCloud(_Vendor):
    def pulls_path(self) -> str:
        return f"/repositories/{_seg(self.owner)}/{_seg(self.repo)}/pullrequests"

    def create_body(self, spec: NewPullRequest) -> dict[str, Any]:
        return {
            "title": spec.title,
            "description": spec.body,
            "source": {"branch": {"name": spec.head}},
            "destination": {"branch": {"name": spec.base}},
            "close_source_branch": True,
        }

    def first_page(self, head: str, base: str) -> _Page:
        return _Page(
            self.pulls_path(),
            {
                "q": f"source.branch.name = {_bbql(head)} AND destination.branch.name = {_bbql(base)}",
                "state": ["OPEN", "MERGED", "DECLINED", "SUPERSEDED"],
                "sort": "-created_on",
                "pagelen": "50",
                "page": "1",
            },
        )

    def items(self, data: Any) -> list[Any]:
        return _list(data, "values")

    def next_page(
        self, page: _Page, response: httpx.Response, data: Any, count: int
    ) -> _Page | None:
        if not isinstance(_opt(data, "next"), str) or count == 0:
            return None
        return _with(page, count, page=str(_page_number(page, "page") + 1))

    def parse(self, item: Any) -> PullRequest:
        state = _str(item, "state")
        return PullRequest(
            number=_int(item, "id"),
            url=_str(item, "links", "html", "href"),
            state="open" if state == "OPEN" else "merged" if state == "MERGED" else "closed",
            head=_str(item, "source", "branch", "name"),
            base=_str(item, "destination", "branch", "name"),
        )

    def same_repository(self, item: Any) -> bool:
        source = _opt(item, "source", "repository", "full_name")
        destination = _opt(item, "destination", "repository", "full_name")
        if isinstance(source, str) and isinstance(destination, str):
            return source.lower() == destination.lower()
        return True

    def already_exists(self, status: int, data: Any, text: str) -> bool:
        # Bitbucket Cloud answers a second create for the same branches with the open pull
        # request (updated), not with an error.
        return False


_VENDORS: Mapping[ForgeKind, type[_Vendor]] = {
    "github": _GitHub,
    "gitlab": _GitLab,
    "gitea": _Gitea,
    "bitbucket-server": _BitbucketServer,
    "bitbucket-cloud": _BitbucketCloud,
}


# ---------------------------------------------------------------------- error messages

_MESSAGE_KEYS = ("message", "error", "error_description", "detail", "errors", "fields")
_MAX_MESSAGE = 400


def _text(value: Any, depth: int = 0) -> str:
    """The vendor's own words from an error body, whatever its shape."""
    if value is None or depth > 5:
        return ""
    if isinstance(value, str):
        return " ".join(value.split())
    if isinstance(value, bool | int | float):
        return str(value)
    if isinstance(value, list):
        return "; ".join(t for t in (_text(v, depth + 1) for v in value) if t)
    if not isinstance(value, dict):
        return ""
    if any(key in value for key in _MESSAGE_KEYS):
        parts: list[str] = []
        for key in _MESSAGE_KEYS:
            text = _text(value.get(key), depth + 1)
            if text and text not in parts:
                parts.append(text)
        text = "; ".join(parts)
        context = value.get("context") or value.get("field")
        if isinstance(context, str) and context and not text.startswith(context):
            text = f"{context}: {text}"
        return text
    if "code" in value:  # GitHub's {"resource", "field", "code"} validation entries
        return " ".join(_text(value.get(k), depth + 1) for k in ("field", "code") if value.get(k))
    return "; ".join(
        f"{key}: {text}"
        for key, item in value.items()
        if isinstance(item, str | list) and (text := _text(item, depth + 1))
    )


def _body_message(response: httpx.Response) -> tuple[Any, str]:
    """The parsed JSON body (or None) and the vendor's message from it."""
    try:
        data: Any = response.json()
    except ValueError:
        data = None
    if data is not None:
        message = _text(data)
    else:
        raw = " ".join(response.text.split())
        message = "" if raw.startswith("<") else raw
    if len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE - 3] + "..."
    return data, message


def _seconds(value: str, now: float) -> float | None:
    """A delay from a header: delta seconds, epoch seconds, an HTTP date or an ISO 8601 time."""
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is not None:
        if number > 1e9:  # epoch seconds (GitHub x-ratelimit-reset, GitLab RateLimit-Reset)
            return max(0.0, number - now)
        return max(0.0, number)
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        try:
            parsed = datetime.fromisoformat(text)  # Python 3.11 reads a trailing Z
        except ValueError:
            return None
    if parsed.tzinfo is None:
        return None
    return max(0.0, parsed.timestamp() - now)


def _retry_after(headers: httpx.Headers, *, rate_limited: bool) -> float | None:
    now = time.time()
    value = headers.get("retry-after")
    if value:
        seconds = _seconds(value, now)
        if seconds is not None:
            return seconds
    if rate_limited:
        for name in ("x-ratelimit-reset", "ratelimit-reset"):
            value = headers.get(name)
            if value:
                seconds = _seconds(value, now)
                if seconds is not None:
                    return seconds
    return None


def _rate_limited_403(response: httpx.Response, message: str) -> bool:
    """A 403 that is a rate limit: GitHub's primary (``x-ratelimit-remaining: 0``) and
    secondary (a message naming it, often ``retry-after``) limits, and proxies doing the same."""
    headers = response.headers
    return (
        headers.get("x-ratelimit-remaining") == "0"
        or headers.get("ratelimit-remaining") == "0"
        or "retry-after" in headers
        or "rate limit" in message.lower()
    )


def _failure_for(status: int) -> ForgeFailure:
    if status == 401:
        return ForgeFailure.UNAUTHORIZED
    if status == 403:
        return ForgeFailure.FORBIDDEN
    if status == 404:
        return ForgeFailure.NOT_FOUND
    if status == 429:
        return ForgeFailure.RATE_LIMITED
    if status == 408:
        return ForgeFailure.TIMEOUT
    if status >= 500:
        return ForgeFailure.UNAVAILABLE
    if status in (400, 422):
        return ForgeFailure.INVALID
    return ForgeFailure.FAILED


# --------------------------------------------------------------------------------- client


def _ssl_verify(verify: bool | str) -> bool | ssl.SSLContext:
    if isinstance(verify, str):
        try:
            return ssl.create_default_context(cafile=verify)
        except (OSError, ssl.SSLError) as exc:
            raise _invalid(f"verify: cannot read the CA bundle {verify!r}: {exc}") from None
    return verify


class ForgeClient:
    """Lists and creates pull requests on one repository of one forge.

    Credentials: ``token`` alone is sent the vendor's way (``Authorization: Bearer`` for GitHub
    and Bitbucket, ``PRIVATE-TOKEN`` for GitLab, ``Authorization: token`` for Gitea);
    ``username`` with ``password`` or ``token`` is HTTP basic authentication (Bitbucket app
    passwords, Gitea). ``timeout`` bounds every HTTP call, connection included.
    """

    def __init__(
        self,
        target: ForgeTarget,
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 20.0,
        transport: httpx.AsyncBaseTransport | None = None,
        verify: bool | str = True,
    ) -> None:
        if target.kind not in _VENDORS:
            raise _invalid(
                f"{_PROVIDER_FIELD}: unknown forge {target.kind!r}; expected one of {', '.join(_KINDS)}"
            )
        if timeout <= 0:
            raise _invalid(f"timeout: expected a positive number of seconds, got {timeout!r}")
        self.target = ForgeTarget(target.kind, _check_api_url(target.api_url), target.project)
        self.timeout = float(timeout)
        creds = GitCredentials(
            token=token or None, username=username or None, password=password or None
        )
        self._redact = redactor_for(creds)
        self._vendor = _VENDORS[target.kind](self.target)
        self._vendor.check_project()
        self._name = _NAMES[target.kind]
        headers = {
            "Accept": self._vendor.accept,
            "User-Agent": "canary-engine",
            **self._vendor.extra_headers,
            **self._vendor.auth_headers(creds),
        }
        self._http = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(self.timeout),
            transport=transport,
            verify=_ssl_verify(verify),
            follow_redirects=False,  # a redirect must never carry the token to another host
        )

    def __repr__(self) -> str:
        return f"ForgeClient({self.target.kind}, {self.target.api_url}, {self.target.project})"

    async def __aenter__(self) -> ForgeClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # ------------------------------------------------------------------------ public calls

    async def find(self, head: str, base: str) -> PullRequest | None:
        """The newest pull request from ``head`` into ``base`` in any state, preferring an open
        one over a merged one over a closed one; None when there is none."""
        self._check_branches(head, base)
        page: _Page | None = self._vendor.first_page(head, base)
        best: PullRequest | None = None
        for _ in range(MAX_PAGES):
            if page is None:
                break
            response = await self._call("GET", page.path, params=page.params)
            data = self._json(response, "GET", page.path)
            try:
                items = self._vendor.items(data)
                for item in items:
                    pr = self._vendor.parse(item)
                    if pr.head != head or pr.base != base:
                        continue
                    if not self._vendor.same_repository(item):
                        continue
                    if best is None or _rank(pr) > _rank(best):
                        best = pr
            except _Malformed as missing:
                raise self._unexpected("GET", page.path, missing) from None
            if best is not None and best.state == "open":
                return best  # at most one open pull request per pair of branches
            page = self._vendor.next_page(page, response, data, len(items))
        else:
            if page is not None:
                logger.debug(
                    "%s: stopped listing %s after %d pages",
                    self._name,
                    self.target.project,
                    MAX_PAGES,
                )
        return best

    async def create(self, spec: NewPullRequest) -> PullRequest:
        """Open a pull request. A refusal because one is already open for the same branches is
        a :class:`ForgeError` with ``already_exists=True``."""
        self._check_branches(spec.head, spec.base)
        path = self._vendor.pulls_path()
        response = await self._call("POST", path, json=self._vendor.create_body(spec))
        data = self._json(response, "POST", path)
        try:
            return self._vendor.parse(data)
        except _Malformed as missing:
            raise self._unexpected("POST", path, missing) from None

    async def ensure(self, spec: NewPullRequest) -> tuple[PullRequest, bool]:
        """The pull request for ``spec``'s branches and whether this call created it.

        An existing one is returned as it is, whatever its state: open, merged, or closed by a
        person (never reopened nor duplicated; the caller decides). Otherwise it is created;
        when another creator wins the race, the forge's "already exists" leads to theirs.
        """
        existing = await self.find(spec.head, spec.base)
        if existing is not None:
            return existing, False
        try:
            return await self.create(spec), True
        except ForgeError as error:
            if not error.already_exists:
                raise
        again = await self.find(spec.head, spec.base)
        if again is None:
            raise self._error(
                ForgeFailure.FAILED,
                f"{self._name}: a pull request from {spec.head!r} into {spec.base!r} already "
                f"exists in {self.target.project}, but it is not listed",
            )
        return again, False

    # --------------------------------------------------------------------------- plumbing

    def _error(self, kind: ForgeFailure, message: str, **details: Any) -> ForgeError:
        return ForgeError(kind, self._redact(message), **details)

    def _check_branches(self, head: str, base: str) -> None:
        for what, branch in (("head", head), ("base", base)):
            try:
                check_branch(branch)
            except GitError:
                raise self._error(
                    ForgeFailure.INVALID,
                    f"pull request {what}: expected a valid branch name, got {branch!r}",
                ) from None
        if head == base:
            raise self._error(
                ForgeFailure.INVALID,
                f"pull request: head and base are the same branch {head!r}",
            )

    def _url(self, path: str) -> str:
        return self.target.api_url + path

    def _shown(self, method: str, path: str) -> str:
        # The path as sent (GitLab's group%2Frepo stays encoded), never the query.
        raw = httpx.URL(self._url(path)).raw_path.decode("ascii", errors="replace")
        return f"{method} {raw.split('?', 1)[0]}"

    def _unexpected(self, method: str, path: str, missing: _Malformed) -> ForgeError:
        return self._error(
            ForgeFailure.FAILED,
            f"{self._name}: {self._shown(method, path)} answered without {missing}",
        )

    def _json(self, response: httpx.Response, method: str, path: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise self._error(
                ForgeFailure.FAILED,
                f"{self._name}: {self._shown(method, path)} answered {response.status_code} "
                "with a body that is not JSON",
                status=response.status_code,
            ) from None

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | list[str]] | None = None,
        json: Any = None,
    ) -> httpx.Response:
        shown = self._shown(method, path)
        try:
            async with asyncio.timeout(self.timeout):
                response = await self._http.request(
                    method, self._url(path), params=cast(Any, params), json=json
                )
        except (TimeoutError, httpx.TimeoutException):
            raise self._error(
                ForgeFailure.TIMEOUT,
                f"{self._name}: {shown} got no answer within {self.timeout:g}s",
            ) from None
        except httpx.TransportError as exc:
            raise self._error(
                ForgeFailure.UNAVAILABLE,
                f"{self._name}: {shown} failed: {type(exc).__name__}: {exc}".rstrip(": "),
            ) from None
        except httpx.HTTPError as exc:
            raise self._error(
                ForgeFailure.FAILED, f"{self._name}: {shown} failed: {type(exc).__name__}: {exc}"
            ) from None
        logger.debug("%s: %s -> %d", self._name, self._redact(shown), response.status_code)
        if response.is_success:
            return response
        raise self._http_error(response, shown, creating=method == "POST")

    def _http_error(self, response: httpx.Response, shown: str, *, creating: bool) -> ForgeError:
        status = response.status_code
        data, message = _body_message(response)
        kind = _failure_for(status)
        if status == 403 and _rate_limited_403(response, message):
            kind = ForgeFailure.RATE_LIMITED
        exists = creating and self._vendor.already_exists(status, data, message)
        if exists:
            kind = ForgeFailure.FAILED
        retry_after = _retry_after(response.headers, rate_limited=kind is ForgeFailure.RATE_LIMITED)
        text = f"{self._name}: {shown} answered {status} {response.reason_phrase}".rstrip()
        if 300 <= status < 400 and response.headers.get("location"):
            moved = _shown_url(response.headers["location"])
            text += f" (moved to {moved}; set {_API_URL_FIELD} or the repository URL to it)"
        if message:
            text += f": {message}"
        if retry_after is not None:
            text += f" (retry after {retry_after:.0f}s)"
        return self._error(
            kind, text, retry_after=retry_after, status=status, already_exists=exists
        )
