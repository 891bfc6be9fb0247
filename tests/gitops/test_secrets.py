"""A credential given to the GitOps adapters never shows up anywhere it could leak.

Not in log records (any logger, DEBUG included), exception or result text, status conditions,
git's command lines, the request URLs the server saw, or files in the Git cache; also when the
remote refuses the token (401) or cannot be reached.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from canary.adapters.gitops import (
    Git,
    GitCredentials,
    GitRepository,
    GitRevertRequest,
    GitSourceReconciler,
    Reverted,
    Reverter,
    RevertFailed,
    SourceRef,
    Workspace,
    parse_gitsource_spec,
)
from tests.git_fixtures import GIT_HTTP_TOKEN, BareRepo, SmartHttpServer, free_port
from tests.gitops.conftest import deployment
from tests.gitops.test_reconciler import FakeKube

DEPLOY = "deploy/podinfo.yaml"
WRONG_TOKEN = "tok-wrong-5a8e1c0f9b7d2e64"
PASSWORD = "pw-Quartz-71e0c9"


class RecordingGit(Git):
    """Keeps every argv (including ``-c`` pairs) git was started with."""

    def __init__(self) -> None:
        super().__init__()
        self.argvs: list[list[str]] = []

    async def run(self, *args: str, **kwargs: Any) -> Any:
        config = kwargs.get("config") or {}
        self.argvs.append([*(f"{k}={v}" for k, v in config.items()), *args])
        return await super().run(*args, **kwargs)


def forms(secret: str) -> list[str]:
    raw = secret.encode()
    return [
        secret,
        base64.b64encode(raw).decode().rstrip("="),
        base64.b64encode(b"tester:" + raw).decode().rstrip("="),
    ]


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    yield caplog


def assert_nowhere(
    secret: str, *texts: object, logs: pytest.LogCaptureFixture, cache: Path
) -> None:
    haystack = [str(t) for t in texts]
    for record in logs.records:
        haystack.append(record.getMessage())
        haystack.append(str(record.args))
        if record.exc_info and record.exc_info[1] is not None:
            haystack.append(str(record.exc_info[1]))
    for path in cache.rglob("*") if cache.exists() else []:
        if path.is_file():
            haystack.append(path.read_bytes().decode("latin-1"))
    for form in forms(secret):
        leaked = [h for h in haystack if form in h]
        assert not leaked, f"credential form {form!r} leaked into {leaked[0][:200]!r}"


@pytest.fixture
def app(bare_repo: Callable[..., BareRepo]) -> BareRepo:
    return bare_repo("app", {DEPLOY: deployment("6.0.0")})


def revert_request(url: str, creds: GitCredentials, good: str, bad: str) -> GitRevertRequest:
    return GitRevertRequest(GitRepository(url, "main", creds), (DEPLOY,), good, bad, "test/podinfo")


class TestToken:
    async def test_working_token_travels_only_as_a_header(
        self,
        app: BareRepo,
        git_http: SmartHttpServer,
        tmp_path: Path,
        all_logs: pytest.LogCaptureFixture,
    ) -> None:
        good = app.head()
        bad = app.commit({DEPLOY: deployment("6.0.1")}, "bump")
        git = RecordingGit()
        reverter = Reverter(Workspace(tmp_path / "cache", git=git))

        result = await reverter.revert(
            revert_request(git_http.url_for(app), GitCredentials(token=GIT_HTTP_TOKEN), good, bad)
        )

        assert isinstance(result, Reverted)
        assert {r.authorization for r in git_http.requests} == {f"Bearer {GIT_HTTP_TOKEN}"}
        assert any(r.method == "POST" and "receive-pack" in r.path for r in git_http.requests)
        assert_nowhere(
            GIT_HTTP_TOKEN,
            result,
            *git.argvs,
            *(r.path for r in git_http.requests),
            logs=all_logs,
            cache=tmp_path / "cache",
        )

    async def test_refused_token_fails_without_showing_it(
        self,
        app: BareRepo,
        git_http: SmartHttpServer,
        tmp_path: Path,
        all_logs: pytest.LogCaptureFixture,
    ) -> None:
        good = app.head()
        bad = app.commit({DEPLOY: deployment("6.0.1")}, "bump")
        reverter = Reverter(Workspace(tmp_path / "cache"))

        result = await reverter.revert(
            revert_request(git_http.url_for(app), GitCredentials(token=WRONG_TOKEN), good, bad)
        )

        assert isinstance(result, RevertFailed)
        # Retried at a backoff until the Secret is fixed; the reason says what to fix.
        assert result.retriable and "check the Secret" in result.reason
        assert git_http.requests and {r.status for r in git_http.requests} == {401}
        assert_nowhere(WRONG_TOKEN, result, logs=all_logs, cache=tmp_path / "cache")

    async def test_unreachable_remote_fails_without_showing_it(
        self, tmp_path: Path, all_logs: pytest.LogCaptureFixture
    ) -> None:
        url = f"https://127.0.0.1:{free_port()}/git/app.git"
        reverter = Reverter(Workspace(tmp_path / "cache"))

        result = await reverter.revert(
            revert_request(url, GitCredentials(token=WRONG_TOKEN), "a" * 40, "b" * 40)
        )

        assert isinstance(result, RevertFailed) and result.retriable
        assert_nowhere(WRONG_TOKEN, result, logs=all_logs, cache=tmp_path / "cache")

    async def test_reconciler_conditions_never_show_it(
        self,
        app: BareRepo,
        git_http: SmartHttpServer,
        tmp_path: Path,
        all_logs: pytest.LogCaptureFixture,
    ) -> None:
        reconciler = GitSourceReconciler(Workspace(tmp_path / "cache"), FakeKube())
        spec = parse_gitsource_spec({"url": git_http.url_for(app), "secretRef": {"name": "git"}})

        refused = await reconciler.reconcile(
            SourceRef("test", "apps"), spec, credentials=GitCredentials(token=WRONG_TOKEN)
        )
        accepted = await reconciler.reconcile(
            SourceRef("test", "apps"), spec, credentials=GitCredentials(token=GIT_HTTP_TOKEN)
        )

        condition = refused.status.condition("Ready")
        assert condition is not None and condition.reason == "CloneFailed"
        assert accepted.ready
        for secret in (WRONG_TOKEN, GIT_HTTP_TOKEN):
            assert_nowhere(
                secret,
                refused.status.to_dict(),
                accepted.status.to_dict(),
                refused.notes,
                logs=all_logs,
                cache=tmp_path / "cache",
            )


class TestBasicAuth:
    async def test_refused_password_and_its_header_form_never_appear(
        self,
        app: BareRepo,
        git_http: SmartHttpServer,
        tmp_path: Path,
        all_logs: pytest.LogCaptureFixture,
    ) -> None:
        good = app.head()
        bad = app.commit({DEPLOY: deployment("6.0.1")}, "bump")
        reverter = Reverter(Workspace(tmp_path / "cache"))

        result = await reverter.revert(
            revert_request(
                git_http.url_for(app),
                GitCredentials(username="tester", password=PASSWORD),
                good,
                bad,
            )
        )

        assert isinstance(result, RevertFailed)
        assert {r.status for r in git_http.requests} == {401}
        assert_nowhere(PASSWORD, result, logs=all_logs, cache=tmp_path / "cache")

    async def test_accepted_password_works(
        self,
        app: BareRepo,
        git_http: SmartHttpServer,
        tmp_path: Path,
        all_logs: pytest.LogCaptureFixture,
    ) -> None:
        good = app.head()
        bad = app.commit({DEPLOY: deployment("6.0.1")}, "bump")
        reverter = Reverter(Workspace(tmp_path / "cache"))

        result = await reverter.revert(
            revert_request(
                git_http.url_for(app),
                GitCredentials(username="tester", password="s3cret-Pa55word"),
                good,
                bad,
            )
        )

        assert isinstance(result, Reverted)
        assert_nowhere("s3cret-Pa55word", result, logs=all_logs, cache=tmp_path / "cache")
