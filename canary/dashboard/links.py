"""Web links of a Git repository: the commit and the repository pages a person opens.

The GitSource may say where its repository's web pages are (``spec.webURL``); without it, the
HTTPS page is derived from the clone URL for GitHub, GitLab, Gitea/Forgejo and Bitbucket-style
remotes (``git@github.com:org/repo.git`` → ``https://github.com/org/repo``). A URL that cannot
be turned into a web page (``file://``, a bare path) gives no link. User information in a URL
(``https://token@host/...``) is never kept.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

__all__ = ["commit_url", "repository_web_url", "source_web_url"]

_SCP = re.compile(r"^(?:[^@/:]+@)?(?P<host>[A-Za-z0-9.-]+):(?P<path>[^/].*)$")
_SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9._~-]+$")
_HEX = re.compile(r"^[0-9a-f]{7,64}$")


def repository_web_url(git_url: str) -> str:
    """The https page of the repository cloned from ``git_url``, or "" when there is none."""
    text = git_url.strip()
    if not text or any(c in text for c in "\x00\r\n\t \"'<>"):
        return ""
    if "://" in text:
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError:
            return ""
        scheme = parts.scheme.lower()
        if scheme not in ("https", "http", "ssh", "git", "git+ssh", "ssh+git"):
            return ""
        host = (parts.hostname or "").lower()
        path = parts.path
        web_scheme = "http" if scheme == "http" else "https"
        # a web port only when the URL was a web URL already (ssh ports are not web ports)
        netloc = f"{host}:{port}" if port and scheme in ("https", "http") else host
    else:
        match = _SCP.match(text)
        if match is None:
            return ""
        web_scheme, netloc, path = "https", match["host"].lower(), match["path"]
    segments = [s for s in path.split("/") if s]
    if segments and segments[-1].endswith(".git"):
        segments[-1] = segments[-1][: -len(".git")]
    segments = [s for s in segments if s]
    if not netloc or len(segments) < 2 or not all(_SAFE_SEGMENT.match(s) for s in segments):
        return ""
    if segments[0] == "scm" and len(segments) == 3:  # Bitbucket Server's clone path
        return f"{web_scheme}://{netloc}/projects/{segments[1]}/repos/{segments[2]}"
    return f"{web_scheme}://{netloc}/{'/'.join(segments)}"


def commit_url(web_url: str, sha: str) -> str:
    """The page of commit ``sha`` on the repository at ``web_url`` ("" without both)."""
    sha = sha.strip().lower()
    if not web_url or not _HEX.match(sha):
        return ""
    host = urlsplit(web_url).hostname or ""
    if "gitlab" in host:
        return f"{web_url}/-/commit/{sha}"
    if "/projects/" in web_url and "/repos/" in web_url:  # Bitbucket Server
        return f"{web_url}/commits/{sha}"
    if host == "bitbucket.org":
        return f"{web_url}/commits/{sha}"
    return f"{web_url}/commit/{quote(sha)}"


def source_web_url(source: Mapping[str, Any] | None) -> tuple[str, str]:
    """(web URL, how it was found) for a GitSource, a Flux GitRepository or an Argo CD
    Application: ``spec.webURL`` if it is an http(s) URL, else derived from the clone URL."""
    if not isinstance(source, Mapping):
        return "", ""
    spec = source.get("spec")
    if not isinstance(spec, Mapping):
        return "", ""
    configured = spec.get("webURL")
    if isinstance(configured, str) and configured.startswith(("https://", "http://")):
        parts = urlsplit(configured)
        if not parts.username and not parts.password and parts.hostname:
            return configured.rstrip("/"), "spec.webURL"
    url = spec.get("url")
    inner = spec.get("source")
    if not isinstance(url, str) and isinstance(inner, Mapping):  # Argo CD Application
        url = inner.get("repoURL")
    if isinstance(url, str):
        derived = repository_web_url(url)
        if derived:
            return derived, "derived from the repository URL"
    return "", ""
