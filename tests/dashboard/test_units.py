"""The dashboard's pure parts, without a cluster or a browser: links, --listen, escaping."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from canary.commands.dashboard import allowed_hosts, is_loopback, parse_listen
from canary.dashboard import views
from canary.dashboard.links import commit_url, repository_web_url, source_web_url
from tests.e2e.support import CANARY

SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    ("git_url", "web"),
    [
        ("git@github.com:org/app.git", "https://github.com/org/app"),
        ("https://github.com/org/app.git", "https://github.com/org/app"),
        ("https://token@github.com/org/app", "https://github.com/org/app"),
        (
            "ssh://git@gitlab.example.com:2222/group/sub/app.git",
            "https://gitlab.example.com/group/sub/app",
        ),
        ("http://gitea.local:3000/org/app.git", "http://gitea.local:3000/org/app"),
        (
            "https://bitbucket.example.com/scm/PROJ/app.git",
            "https://bitbucket.example.com/projects/PROJ/repos/app",
        ),
        ("file:///srv/git/app.git", ""),
        ("/srv/git/app", ""),
        ("https://github.com/org/<script>", ""),
    ],
)
def test_a_repository_web_url_is_derived_from_the_clone_url(git_url: str, web: str) -> None:
    assert repository_web_url(git_url) == web


def test_commit_links_follow_the_forge() -> None:
    assert (
        commit_url("https://github.com/org/app", SHA) == f"https://github.com/org/app/commit/{SHA}"
    )
    assert commit_url("https://gitlab.com/g/app", SHA) == f"https://gitlab.com/g/app/-/commit/{SHA}"
    assert commit_url("https://github.com/org/app", "not a sha") == ""
    assert commit_url("", SHA) == ""


def test_a_configured_web_url_wins_and_one_with_credentials_is_ignored() -> None:
    configured = {
        "spec": {"url": "git@github.com:org/app.git", "webURL": "https://git.example/app/"}
    }
    assert source_web_url(configured) == ("https://git.example/app", "spec.webURL")
    leaky = {"spec": {"url": "git@github.com:org/app.git", "webURL": "https://u:p@git.example/app"}}
    assert source_web_url(leaky) == (
        "https://github.com/org/app",
        "derived from the repository URL",
    )
    argo = {"spec": {"source": {"repoURL": "https://github.com/org/deploy.git"}}}
    assert source_web_url(argo)[0] == "https://github.com/org/deploy"


def test_listen_addresses() -> None:
    assert parse_listen("127.0.0.1:2345") == ("127.0.0.1", 2345)
    assert parse_listen("[::1]:8080") == ("::1", 8080)
    assert parse_listen(":9000") == ("127.0.0.1", 9000)
    with pytest.raises(ValueError):
        parse_listen("localhost")
    assert is_loopback("localhost") and is_loopback("::1") and is_loopback("127.0.0.2")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")
    assert allowed_hosts("0.0.0.0", 80) is None
    assert "localhost:2345" in (allowed_hosts("127.0.0.1", 2345) or ())


def test_every_cluster_value_is_escaped_in_the_list() -> None:
    hostile = "<script>alert(1)</script>"
    obj = {
        "metadata": {"name": "app", "namespace": "ns", "creationTimestamp": "2024-05-01T12:00:00Z"},
        "status": {
            "phase": hostile,
            "currentRevision": hostile,
            "analysis": [{"name": hostile, "outcome": '"><b>', "summary": hostile}],
        },
    }
    html = views.list_live([obj], None, None, datetime(2024, 5, 1, 12, 1, tzinfo=UTC))
    assert "<script>" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def _canary(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CANARY, "dashboard", "--no-open", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_a_non_loopback_address_from_the_environment_is_refused(tmp_path: Path) -> None:
    result = _canary(env={"CANARY_DASHBOARD_LISTEN": "0.0.0.0:2345"})
    assert result.returncode == 2
    assert "refusing to serve on 0.0.0.0:2345 (not loopback)" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_non_loopback_address_given_with_listen_is_warned_about(tmp_path: Path) -> None:
    missing = tmp_path / "no-kubeconfig"
    result = _canary("--listen", "0.0.0.0:2345", "--kubeconfig", str(missing))
    assert "warning: serving on 0.0.0.0:2345, not loopback" in result.stderr
    assert result.returncode == 2  # then: the kubeconfig does not exist
    assert "no kubeconfig" in result.stderr
