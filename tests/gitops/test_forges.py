"""The pull-request clients against loopback stand-ins of the five forges' HTTP APIs."""

from __future__ import annotations

import asyncio
import base64
import email.utils
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from canary.adapters.gitops import forges
from canary.adapters.gitops.forges import (
    ForgeClient,
    ForgeError,
    ForgeFailure,
    ForgeTarget,
    NewPullRequest,
    PullRequest,
    forge_target,
)
from tests.gitops.forge_servers import KINDS, MESSAGES, ForgeServer, Kind
from tests.http_fixtures import RecordingServer, Reply, free_port

TOKEN = "forge-token-S3cr3t-0123456789abcdef"
READONLY = "forge-readonly-S3cr3t-0123456789"
PASSWORD = "app-password-S3cr3t-0123456789"
SECRETS = (TOKEN, READONLY, PASSWORD)

HEAD = "canary/revert-podinfo-6f1c2e9"
BASE = "main"
SPEC = NewPullRequest(
    head=HEAD,
    base=BASE,
    title="Revert podinfo to 4d2a9b1",
    body="The canary **failed**; this restores the last good revision.",
)


@pytest.fixture(params=KINDS)
async def forge(request: pytest.FixtureRequest) -> AsyncIterator[ForgeServer]:
    kind: Kind = request.param
    server = ForgeServer(kind, token=TOKEN, readonly_token=READONLY, password=PASSWORD)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def target_of(server: ForgeServer) -> ForgeTarget:
    return forge_target(server.clone_url, kind=server.kind, api_url=server.api_url)


def client_of(server: ForgeServer, **options: Any) -> ForgeClient:
    options.setdefault("token", TOKEN)
    options.setdefault("timeout", 5.0)
    return ForgeClient(target_of(server), **options)


@pytest.fixture
async def scripted() -> AsyncIterator[RecordingServer]:
    """A loopback server that plays scripted answers (for shapes no forge stand-in makes)."""
    server = await RecordingServer().start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
async def client(forge: ForgeServer) -> AsyncIterator[ForgeClient]:
    async with client_of(forge) as forge_client:
        yield forge_client


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text
            assert base64.b64encode(secret.encode()).decode().rstrip("=") not in text


def assert_safe(error: ForgeError, client: ForgeClient | None = None) -> None:
    assert_no_secret(str(error), repr(error), error.message, *([repr(client)] if client else []))


# ----------------------------------------------------------------------------- surface


def test_the_module_exports_exactly_its_public_surface() -> None:
    assert sorted(forges.__all__) == sorted(
        [
            "ForgeClient",
            "ForgeError",
            "ForgeFailure",
            "ForgeKind",
            "ForgeTarget",
            "PullRequest",
            "NewPullRequest",
            "PullRequestState",
            "forge_target",
        ]
    )


@pytest.mark.parametrize(
    ("failure", "retriable"),
    [
        (ForgeFailure.UNAUTHORIZED, True),
        (ForgeFailure.FORBIDDEN, True),
        (ForgeFailure.NOT_FOUND, True),
        (ForgeFailure.RATE_LIMITED, True),
        (ForgeFailure.UNAVAILABLE, True),
        (ForgeFailure.TIMEOUT, True),
        (ForgeFailure.INVALID, False),
        (ForgeFailure.FAILED, False),
    ],
)
def test_only_invalid_and_failed_are_not_retried(failure: ForgeFailure, retriable: bool) -> None:
    assert failure.retriable is retriable
    assert ForgeError(failure, "x").retriable is retriable


# ---------------------------------------------------------------------------- creating


def expected_create_body(kind: Kind) -> dict[str, Any]:
    if kind in ("github", "gitea"):
        return {"title": SPEC.title, "head": HEAD, "base": BASE, "body": SPEC.body}
    if kind == "gitlab":
        return {
            "source_branch": HEAD,
            "target_branch": BASE,
            "title": SPEC.title,
            "description": SPEC.body,
            "remove_source_branch": True,
        }
    if kind == "bitbucket-server":
        repository = {"slug": "podinfo", "project": {"key": "PLAT"}}
        return {
            "title": SPEC.title,
            "description": SPEC.body,
            "fromRef": {"id": f"refs/heads/{HEAD}", "repository": repository},
            "toRef": {"id": f"refs/heads/{BASE}", "repository": repository},
        }
    return {
        "title": SPEC.title,
        "description": SPEC.body,
        "source": {"branch": {"name": HEAD}},
        "destination": {"branch": {"name": BASE}},
        "close_source_branch": True,
    }


EXPECTED_CREATE_PATH: dict[Kind, str] = {
    "github": "/api/v3/repos/acme/podinfo/pulls",
    "gitlab": "/api/v4/projects/platform%2Fapps%2Fpodinfo/merge_requests",
    "gitea": "/api/v1/repos/acme/podinfo/pulls",
    "bitbucket-server": "/rest/api/1.0/projects/PLAT/repos/podinfo/pull-requests",
    "bitbucket-cloud": "/2.0/repositories/acme/podinfo/pullrequests",
}

EXPECTED_AUTH: dict[Kind, tuple[str, str]] = {
    "github": ("authorization", f"Bearer {TOKEN}"),
    "gitlab": ("private-token", TOKEN),
    "gitea": ("authorization", f"token {TOKEN}"),
    "bitbucket-server": ("authorization", f"Bearer {TOKEN}"),
    "bitbucket-cloud": ("authorization", f"Bearer {TOKEN}"),
}


async def test_creating_a_pull_request_sends_the_documented_request_and_returns_the_web_url(
    forge: ForgeServer, client: ForgeClient
) -> None:
    pr = await client.create(SPEC)

    assert pr == PullRequest(number=1, url=forge.pull_url(1), state="open", head=HEAD, base=BASE)
    [post] = forge.posts()
    assert post.raw_path == EXPECTED_CREATE_PATH[forge.kind]
    assert post.json() == expected_create_body(forge.kind)
    assert post.header("content-type") == "application/json"
    name, value = EXPECTED_AUTH[forge.kind]
    assert post.header(name) == value
    if forge.kind == "github":
        assert post.header("accept") == "application/vnd.github+json"
        assert post.header("x-github-api-version") == "2022-11-28"
    else:
        assert post.header("accept") == "application/json"
    assert len(forge.pulls) == 1
    assert forge.pulls[0].title == SPEC.title
    assert forge.pulls[0].body == SPEC.body


EXPECTED_LIST_QUERY: dict[Kind, list[tuple[str, str]]] = {
    "github": [
        ("head", f"acme:{HEAD}"),
        ("base", BASE),
        ("state", "all"),
        ("per_page", "100"),
        ("page", "1"),
    ],
    "gitlab": [
        ("source_branch", HEAD),
        ("target_branch", BASE),
        ("state", "all"),
        ("order_by", "created_at"),
        ("sort", "desc"),
        ("per_page", "100"),
        ("page", "1"),
    ],
    "gitea": [("state", "all"), ("base_branch", BASE), ("page", "1"), ("limit", "50")],
    "bitbucket-server": [
        ("direction", "OUTGOING"),
        ("at", f"refs/heads/{HEAD}"),
        ("state", "ALL"),
        ("order", "NEWEST"),
        ("start", "0"),
        ("limit", "100"),
    ],
    "bitbucket-cloud": [
        ("q", f'source.branch.name = "{HEAD}" AND destination.branch.name = "{BASE}"'),
        ("state", "OPEN"),
        ("state", "MERGED"),
        ("state", "DECLINED"),
        ("state", "SUPERSEDED"),
        ("sort", "-created_on"),
        ("pagelen", "50"),
        ("page", "1"),
    ],
}


async def test_find_sends_the_documented_query(forge: ForgeServer, client: ForgeClient) -> None:
    assert await client.find(HEAD, BASE) is None

    [get] = forge.gets()
    assert get.raw_path == EXPECTED_CREATE_PATH[forge.kind]
    assert list(get.query) == EXPECTED_LIST_QUERY[forge.kind]


async def test_ensure_twice_and_after_a_restart_finds_the_same_pull_request(
    forge: ForgeServer, client: ForgeClient
) -> None:
    first, created = await client.ensure(SPEC)
    assert created is True
    second, created_again = await client.ensure(SPEC)
    assert (second, created_again) == (first, False)

    async with client_of(forge) as restarted:  # a fresh client, as after a controller restart
        third, created_after_restart = await restarted.ensure(SPEC)
    assert (third, created_after_restart) == (first, False)

    assert len(forge.pulls) == 1
    assert len(forge.posts()) == 1


async def test_find_ignores_pull_requests_of_other_branches(
    forge: ForgeServer, client: ForgeClient
) -> None:
    forge.add(HEAD, "release-1.x")
    forge.add("feature/other", BASE)

    assert await client.find(HEAD, BASE) is None

    pr, created = await client.ensure(SPEC)
    assert created is True
    assert pr.number == 3


async def test_a_merged_pull_request_is_found_as_merged_and_not_created_again(
    forge: ForgeServer, client: ForgeClient
) -> None:
    opened, _ = await client.ensure(SPEC)
    forge.merge(opened.number)

    found = await client.find(HEAD, BASE)
    assert found is not None
    assert found.state == "merged"
    assert (found.number, found.url) == (opened.number, opened.url)
    assert await client.ensure(SPEC) == (found, False)
    assert len(forge.posts()) == 1


async def test_a_closed_pull_request_is_returned_and_never_reopened_or_duplicated(
    forge: ForgeServer, client: ForgeClient
) -> None:
    opened, _ = await client.ensure(SPEC)
    forge.close(opened.number)

    pr, created = await client.ensure(SPEC)

    assert created is False
    assert pr.state == "closed"
    assert pr.number == opened.number
    assert len(forge.posts()) == 1
    assert [p.state for p in forge.pulls] == ["closed"]


async def test_find_reads_every_page_and_prefers_open_over_merged_over_closed(
    forge: ForgeServer, client: ForgeClient
) -> None:
    forge.add(HEAD, BASE, state="merged")  # 1, the oldest: on the last page
    for _ in range(4):
        forge.add(HEAD, BASE, state="closed")  # 2..5, newer

    found = await client.find(HEAD, BASE)

    assert found is not None
    assert (found.number, found.state) == (1, "merged")
    assert len(forge.gets()) == 3  # page size 2: 5 pull requests on 3 pages

    forge.add(HEAD, BASE, state="open")  # 6
    forge.add(HEAD, BASE, state="closed")  # 7, newest but closed
    found = await client.find(HEAD, BASE)
    assert found is not None
    assert (found.number, found.state) == (6, "open")


async def test_find_prefers_the_newest_of_the_same_state(
    forge: ForgeServer, client: ForgeClient
) -> None:
    forge.add(HEAD, BASE, state="closed")
    forge.add(HEAD, BASE, state="closed")

    found = await client.find(HEAD, BASE)

    assert found is not None
    assert (found.number, found.state) == (2, "closed")


async def test_find_reads_at_most_ten_pages(forge: ForgeServer, client: ForgeClient) -> None:
    forge.add(HEAD, BASE, state="merged")  # 1: beyond the tenth page
    for _ in range(22):
        forge.add(HEAD, BASE, state="closed")  # 2..23 on pages 1..11

    found = await client.find(HEAD, BASE)

    assert len(forge.gets()) == 10
    assert found is not None
    assert (found.number, found.state) == (23, "closed")


async def test_a_create_race_that_answers_already_exists_returns_the_existing_pull_request(
    forge: ForgeServer, client: ForgeClient
) -> None:
    forge.race_next_create()

    pr, created = await client.ensure(SPEC)

    [theirs] = forge.pulls
    assert theirs.author == "another-controller"
    assert pr.number == theirs.number
    assert pr.url == forge.pull_url(theirs.number)
    assert pr.state == "open"
    assert len(forge.posts()) == 1
    if forge.kind == "bitbucket-cloud":
        # Bitbucket Cloud answers the second create with the open pull request itself, so
        # the client cannot tell that it did not create it.
        assert created is True
        assert len(forge.gets()) == 1
    else:
        assert created is False
        assert len(forge.gets()) == 2  # find, create refused, find again


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "bitbucket-cloud"])
async def test_create_of_a_duplicate_is_refused_as_already_existing(kind: Kind) -> None:
    server = ForgeServer(kind, token=TOKEN)
    await server.start()
    try:
        server.add(HEAD, BASE)
        async with client_of(server) as forge_client:
            with pytest.raises(ForgeError) as caught:
                await forge_client.create(SPEC)
        error = caught.value
        assert error.already_exists is True
        assert error.kind is ForgeFailure.FAILED
        assert error.status in (409, 422)
        assert "already exists" in error.message or "Only one pull request" in error.message
    finally:
        await server.stop()


async def test_a_request_the_forge_rejects_is_invalid_with_its_message(
    forge: ForgeServer, client: ForgeClient
) -> None:
    with pytest.raises(ForgeError) as caught:
        await client.create(NewPullRequest(head=HEAD, base=BASE, title="", body=""))

    error = caught.value
    assert error.kind is ForgeFailure.INVALID
    assert error.retriable is False
    assert error.already_exists is False
    assert "title" in error.message.lower()
    assert error.message.startswith(
        {
            "github": "GitHub: POST /api/v3/repos/acme/podinfo/pulls answered 422",
            "gitlab": "GitLab: POST /api/v4/projects/platform%2Fapps%2Fpodinfo/merge_requests "
            "answered 400",
            "gitea": "Gitea: POST /api/v1/repos/acme/podinfo/pulls answered 422",
            "bitbucket-server": "Bitbucket Server: POST "
            "/rest/api/1.0/projects/PLAT/repos/podinfo/pull-requests answered 400",
            "bitbucket-cloud": "Bitbucket Cloud: POST /2.0/repositories/acme/podinfo/pullrequests "
            "answered 400",
        }[forge.kind]
    )


@pytest.mark.parametrize(
    ("head", "base"),
    [(BASE, BASE), ("", BASE), (HEAD, ""), ("bad branch", BASE), ("-x", BASE), (HEAD, "a..b")],
)
async def test_bad_branches_are_invalid_before_any_request(
    scripted: RecordingServer, head: str, base: str
) -> None:
    target = ForgeTarget("github", scripted.url("/api/v3"), "acme/podinfo")
    async with ForgeClient(target, token=TOKEN) as forge_client:
        with pytest.raises(ForgeError) as caught:
            await forge_client.ensure(NewPullRequest(head=head, base=base, title="t", body=""))
    assert caught.value.kind is ForgeFailure.INVALID
    assert scripted.requests == []


# ------------------------------------------------------------------------- refusals


async def test_a_wrong_token_is_unauthorized_with_the_vendors_message_and_no_token(
    forge: ForgeServer,
) -> None:
    wrong = TOKEN[::-1]
    secrets_with_wrong = (*SECRETS, wrong)
    async with client_of(forge, token=wrong) as forge_client:
        with pytest.raises(ForgeError) as caught:
            await forge_client.ensure(SPEC)
        shown = repr(forge_client)

    error = caught.value
    assert error.kind is ForgeFailure.UNAUTHORIZED
    assert error.retriable is True
    assert error.status == 401
    assert MESSAGES[forge.kind][401] in error.message
    assert " 401 " in error.message
    for text in (str(error), repr(error), error.message, shown):
        for secret in secrets_with_wrong:
            assert secret not in text


async def test_a_read_only_token_is_forbidden_to_create(forge: ForgeServer) -> None:
    async with client_of(forge, token=READONLY) as forge_client:
        assert await forge_client.find(HEAD, BASE) is None  # reading is allowed
        with pytest.raises(ForgeError) as caught:
            await forge_client.ensure(SPEC)

    error = caught.value
    assert error.kind is ForgeFailure.FORBIDDEN
    assert error.retriable is True
    assert MESSAGES[forge.kind][403] in error.message
    assert_safe(error, forge_client)
    assert forge.pulls == []


async def test_an_unknown_repository_is_not_found_with_the_vendors_message(
    forge: ForgeServer,
) -> None:
    owner = "PLAT" if forge.kind == "bitbucket-server" else "acme"
    target = ForgeTarget(forge.kind, forge.api_url, f"{owner}/no-such-repo")
    async with ForgeClient(target, token=TOKEN, timeout=5) as forge_client:
        with pytest.raises(ForgeError) as caught:
            await forge_client.ensure(SPEC)

    error = caught.value
    assert error.kind is ForgeFailure.NOT_FOUND
    assert error.retriable is True
    assert error.status == 404
    assert MESSAGES[forge.kind][404] in error.message
    assert_safe(error, forge_client)


async def test_without_a_token_a_private_repository_is_hidden_or_refused(
    forge: ForgeServer,
) -> None:
    async with ForgeClient(target_of(forge), timeout=5) as forge_client:
        with pytest.raises(ForgeError) as caught:
            await forge_client.find(HEAD, BASE)
    # GitHub, GitLab and Gitea answer 404 for a private repository; both Bitbuckets 401.
    expected = (
        ForgeFailure.NOT_FOUND
        if forge.kind in ("github", "gitlab", "gitea")
        else ForgeFailure.UNAUTHORIZED
    )
    assert caught.value.kind is expected
    assert caught.value.retriable is True


@pytest.mark.parametrize("kind", ["gitea", "bitbucket-server", "bitbucket-cloud"])
async def test_username_and_password_are_sent_as_basic_authentication(kind: Kind) -> None:
    server = ForgeServer(kind, token=TOKEN, password=PASSWORD)
    await server.start()
    try:
        async with client_of(server, token=None, username="canary-bot", password=PASSWORD) as c:
            pr, created = await c.ensure(SPEC)
        assert created is True
        pair = base64.b64encode(f"canary-bot:{PASSWORD}".encode()).decode()
        assert {r.header("authorization") for r in server.requests} == {f"Basic {pair}"}

        async with client_of(server, token=None, username="canary-bot", password="nope") as c:
            with pytest.raises(ForgeError) as caught:
                await c.find(HEAD, BASE)
        assert caught.value.kind is ForgeFailure.UNAUTHORIZED
        assert "nope" not in caught.value.message
        assert pr.number == 1
    finally:
        await server.stop()


async def test_an_error_body_that_echoes_the_credentials_is_redacted(
    scripted: RecordingServer,
) -> None:
    pair = base64.b64encode(f"canary-bot:{PASSWORD}".encode()).decode()
    scripted.default(
        "/rest/api/1.0/projects/PLAT/repos/podinfo/pull-requests",
        Reply(
            status=401,
            body={
                "errors": [
                    {
                        "message": f"Authentication failed for Basic {pair} ({PASSWORD})",
                        "exceptionName": "com.atlassian.bitbucket.auth.AuthenticationException",
                    }
                ]
            },
        ),
    )
    target = ForgeTarget("bitbucket-server", scripted.url("/rest/api/1.0"), "PLAT/podinfo")
    async with ForgeClient(target, username="canary-bot", password=PASSWORD) as forge_client:
        with pytest.raises(ForgeError) as caught:
            await forge_client.find(HEAD, BASE)

    error = caught.value
    assert error.kind is ForgeFailure.UNAUTHORIZED
    assert "Authentication failed for Basic ***" in error.message
    assert_safe(error, forge_client)
    assert pair not in error.message


async def test_server_errors_are_unavailable(forge: ForgeServer, client: ForgeClient) -> None:
    forge.fail_status = 502

    with pytest.raises(ForgeError) as caught:
        await client.ensure(SPEC)

    assert caught.value.kind is ForgeFailure.UNAVAILABLE
    assert caught.value.retriable is True
    assert "the server is having a bad day" in caught.value.message


# ------------------------------------------------------------------------ rate limits


async def test_rate_limits_are_retriable_with_the_forges_retry_after(
    forge: ForgeServer, client: ForgeClient
) -> None:
    forge.rate_limited = True
    forge.retry_after = 30

    with pytest.raises(ForgeError) as caught:
        await client.ensure(SPEC)

    error = caught.value
    assert error.kind is ForgeFailure.RATE_LIMITED
    assert error.retriable is True
    assert error.status == (403 if forge.kind == "github" else 429)
    if forge.kind == "bitbucket-cloud":
        # Bitbucket Cloud's 429 names the limit but not when it resets.
        assert error.retry_after is None
        assert "Rate limit for this resource has been exceeded" in error.message
    else:
        assert error.retry_after is not None
        assert 25 <= error.retry_after <= 31
        assert "retry after" in error.message
    assert_safe(error, client)


async def test_github_secondary_rate_limit_answers_429_with_retry_after() -> None:
    server = ForgeServer("github", token=TOKEN)
    await server.start()
    try:
        server.rate_limited = True
        server.rate_limit_status = 429
        server.retry_after = 7
        async with client_of(server) as forge_client:
            with pytest.raises(ForgeError) as caught:
                await forge_client.find(HEAD, BASE)
        assert caught.value.kind is ForgeFailure.RATE_LIMITED
        assert caught.value.retry_after == 7
        assert "secondary rate limit" in caught.value.message
    finally:
        await server.stop()


def _http_date(offset: float) -> str:
    return email.utils.formatdate(time.time() + offset, usegmt=True)


@pytest.mark.parametrize(
    ("status", "headers", "kind", "low", "high"),
    [
        (429, {"Retry-After": "12"}, ForgeFailure.RATE_LIMITED, 12, 12),
        (429, {"Retry-After": "HTTP-DATE+40"}, ForgeFailure.RATE_LIMITED, 35, 41),
        (429, {"X-RateLimit-Reset": "EPOCH+50"}, ForgeFailure.RATE_LIMITED, 45, 51),
        (429, {"X-RateLimit-Reset": "ISO+45"}, ForgeFailure.RATE_LIMITED, 40, 46),
        (429, {"RateLimit-Reset": "20"}, ForgeFailure.RATE_LIMITED, 20, 20),
        (403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "EPOCH+60"}, None, 55, 61),
        (503, {"Retry-After": "5"}, ForgeFailure.UNAVAILABLE, 5, 5),
        (429, {}, ForgeFailure.RATE_LIMITED, None, None),
        (403, {"X-RateLimit-Reset": "EPOCH+60"}, ForgeFailure.FORBIDDEN, None, None),
    ],
)
async def test_retry_after_comes_from_the_rate_limit_headers(
    scripted: RecordingServer,
    status: int,
    headers: dict[str, str],
    kind: ForgeFailure | None,
    low: float | None,
    high: float | None,
) -> None:
    now = time.time()
    resolved = {
        name: (
            _http_date(40)
            if value == "HTTP-DATE+40"
            else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 45))
            if value == "ISO+45"
            else str(int(now) + int(value.split("+")[1]))
            if value.startswith("EPOCH+")
            else value
        )
        for name, value in headers.items()
    }
    path = "/api/v3/repos/acme/podinfo/pulls"
    scripted.default(path, Reply(status=status, body={"message": "slow down"}, headers=resolved))
    target = ForgeTarget("github", scripted.url("/api/v3"), "acme/podinfo")
    async with ForgeClient(target, token=TOKEN) as forge_client:
        with pytest.raises(ForgeError) as caught:
            await forge_client.find(HEAD, BASE)

    assert caught.value.kind is (kind or ForgeFailure.RATE_LIMITED)
    if low is None or high is None:
        assert caught.value.retry_after is None
    else:
        assert caught.value.retry_after is not None
        assert low <= caught.value.retry_after <= high


# ----------------------------------------------------------------- network failures


async def test_a_dead_port_is_unavailable() -> None:
    target = ForgeTarget("gitlab", f"http://127.0.0.1:{free_port()}/api/v4", "group/repo")
    async with ForgeClient(target, token=TOKEN, timeout=5) as forge_client:
        with pytest.raises(ForgeError) as caught:
            await forge_client.ensure(SPEC)

    error = caught.value
    assert error.kind is ForgeFailure.UNAVAILABLE
    assert error.retriable is True
    assert error.status is None
    assert error.message.startswith(
        "GitLab: GET /api/v4/projects/group%2Frepo/merge_requests failed"
    )
    assert_safe(error, forge_client)


async def test_a_server_that_never_answers_times_out_within_the_clients_timeout(
    forge: ForgeServer,
) -> None:
    forge.stalled = True
    loop = asyncio.get_running_loop()
    async with client_of(forge, timeout=0.5) as forge_client:
        started = loop.time()
        call = asyncio.create_task(forge_client.ensure(SPEC))
        await forge.wait_for(1)  # the request arrived and is being held
        with pytest.raises(ForgeError) as caught:
            await call
        elapsed = loop.time() - started

    assert caught.value.kind is ForgeFailure.TIMEOUT
    assert caught.value.retriable is True
    assert "no answer within 0.5s" in caught.value.message
    # The client's timeout ended the call (the server holds it forever); the upper bound only
    # tells "ended by the timeout" from "hung", with room for a loaded machine.
    assert 0.4 <= elapsed < 30.0
    assert len(forge.requests) == 1


async def test_a_redirect_is_not_followed(scripted: RecordingServer) -> None:
    scripted.default(
        "/api/v3/repos/acme/podinfo/pulls",
        Reply(status=301, body=b"", headers={"Location": "https://elsewhere.example/x?t=1"}),
    )
    target = ForgeTarget("github", scripted.url("/api/v3"), "acme/podinfo")
    async with ForgeClient(target, token=TOKEN) as forge_client:
        with pytest.raises(ForgeError) as caught:
            await forge_client.find(HEAD, BASE)

    assert caught.value.kind is ForgeFailure.FAILED
    assert "moved to https://elsewhere.example/x" in caught.value.message
    assert len(scripted.requests) == 1


async def test_an_answer_without_the_expected_fields_is_failed(
    scripted: RecordingServer,
) -> None:
    scripted.default("/api/v1/repos/acme/podinfo/pulls", Reply(body=[{"number": 1}]))
    target = ForgeTarget("gitea", scripted.url("/api/v1"), "acme/podinfo")
    async with ForgeClient(target, token=TOKEN) as forge_client:
        with pytest.raises(ForgeError) as caught:
            await forge_client.find(HEAD, BASE)

    assert caught.value.kind is ForgeFailure.FAILED
    assert "answered without the field 'state'" in caught.value.message


async def test_the_client_repr_names_the_target_and_no_secret() -> None:
    target = ForgeTarget("bitbucket-cloud", "https://api.bitbucket.org/2.0", "acme/podinfo")
    async with ForgeClient(target, username="bot", password=PASSWORD, token=TOKEN) as forge_client:
        shown = repr(forge_client)
    assert shown == "ForgeClient(bitbucket-cloud, https://api.bitbucket.org/2.0, acme/podinfo)"
    assert_no_secret(shown, str(vars(forge_client).keys()))


# --------------------------------------------------------------------- forge_target


@pytest.mark.parametrize(
    ("url", "kind", "api_url", "project"),
    [
        ("https://github.com/acme/podinfo", "github", "https://api.github.com", "acme/podinfo"),
        ("https://github.com/acme/podinfo.git", "github", "https://api.github.com", "acme/podinfo"),
        ("https://github.com/acme/podinfo/", "github", "https://api.github.com", "acme/podinfo"),
        ("git@github.com:acme/podinfo.git", "github", "https://api.github.com", "acme/podinfo"),
        (
            "ssh://git@github.com/acme/podinfo.git",
            "github",
            "https://api.github.com",
            "acme/podinfo",
        ),
        (
            "https://github.example.com/acme/podinfo.git",
            "github",
            "https://github.example.com/api/v3",
            "acme/podinfo",
        ),
        (
            "https://gitlab.com/platform/apps/podinfo.git",
            "gitlab",
            "https://gitlab.com/api/v4",
            "platform/apps/podinfo",
        ),
        (
            "git@gitlab.example.com:platform/podinfo.git",
            "gitlab",
            "https://gitlab.example.com/api/v4",
            "platform/podinfo",
        ),
        (
            "ssh://git@gitlab.example.com:2222/a/b/c/podinfo.git",
            "gitlab",
            "https://gitlab.example.com/api/v4",
            "a/b/c/podinfo",
        ),
        (
            "http://gitlab.internal:8080/platform/podinfo",
            "gitlab",
            "http://gitlab.internal:8080/api/v4",
            "platform/podinfo",
        ),
        (
            "https://gitea.example.com/acme/podinfo.git",
            "gitea",
            "https://gitea.example.com/api/v1",
            "acme/podinfo",
        ),
        (
            "https://forgejo.example.com:3000/acme/podinfo.git",
            "gitea",
            "https://forgejo.example.com:3000/api/v1",
            "acme/podinfo",
        ),
        (
            "git@codeberg.org:acme/podinfo.git",
            "gitea",
            "https://codeberg.org/api/v1",
            "acme/podinfo",
        ),
        (
            "https://bitbucket.example.com/scm/plat/podinfo.git",
            "bitbucket-server",
            "https://bitbucket.example.com/rest/api/1.0",
            "PLAT/podinfo",
        ),
        (
            "https://git.example.com/bitbucket/scm/PLAT/podinfo.git",
            "bitbucket-server",
            "https://git.example.com/bitbucket/rest/api/1.0",
            "PLAT/podinfo",
        ),
        (
            "ssh://git@bitbucket.example.com:7999/plat/podinfo.git",
            "bitbucket-server",
            "https://bitbucket.example.com/rest/api/1.0",
            "PLAT/podinfo",
        ),
        (
            "ssh://git@git.example.com:7999/~jdoe/podinfo.git",
            "bitbucket-server",
            "https://git.example.com/rest/api/1.0",
            "~jdoe/podinfo",
        ),
        (
            "https://bitbucket.org/acme/podinfo.git",
            "bitbucket-cloud",
            "https://api.bitbucket.org/2.0",
            "acme/podinfo",
        ),
        (
            "https://jdoe@bitbucket.org/acme/podinfo.git",
            "bitbucket-cloud",
            "https://api.bitbucket.org/2.0",
            "acme/podinfo",
        ),
        (
            "git@bitbucket.org:acme/podinfo.git",
            "bitbucket-cloud",
            "https://api.bitbucket.org/2.0",
            "acme/podinfo",
        ),
    ],
)
def test_forge_target_reads_every_url_form_and_guesses_the_forge(
    url: str, kind: str, api_url: str, project: str
) -> None:
    assert forge_target(url) == ForgeTarget(kind, api_url, project)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "kind", "expected"),
    [
        (
            "https://git.example.com/acme/podinfo.git",
            "github",
            ForgeTarget("github", "https://git.example.com/api/v3", "acme/podinfo"),
        ),
        (
            "https://git.example.com/acme/podinfo.git",
            "forgejo",
            ForgeTarget("gitea", "https://git.example.com/api/v1", "acme/podinfo"),
        ),
        (
            "https://git.example.com/acme/podinfo.git",
            " GitLab ",
            ForgeTarget("gitlab", "https://git.example.com/api/v4", "acme/podinfo"),
        ),
        (
            "https://git.example.com/scm/plat/podinfo.git",
            "bitbucket-server",
            ForgeTarget("bitbucket-server", "https://git.example.com/rest/api/1.0", "PLAT/podinfo"),
        ),
    ],
)
def test_forge_target_takes_the_kind_when_given(url: str, kind: str, expected: ForgeTarget) -> None:
    assert forge_target(url, kind=kind) == expected


def test_forge_target_takes_the_api_url_when_given() -> None:
    target = forge_target(
        "git@example.com:acme/podinfo.git", kind="gitea", api_url="http://127.0.0.1:3000/api/v1/"
    )
    assert target == ForgeTarget("gitea", "http://127.0.0.1:3000/api/v1", "acme/podinfo")


def test_an_unknown_host_without_a_kind_is_invalid_naming_the_field() -> None:
    with pytest.raises(ForgeError) as caught:
        forge_target("https://example.com/x.git")
    assert caught.value.kind is ForgeFailure.INVALID
    assert caught.value.message == (
        "pullRequest.provider: cannot tell the forge from https://example.com/x.git; set it to "
        "one of github, gitlab, gitea, bitbucket-server, bitbucket-cloud"
    )


@pytest.mark.parametrize(
    ("url", "options", "field"),
    [
        ("https://example.com/acme/podinfo.git", {"kind": "gitbucket"}, "pullRequest.provider:"),
        ("https://github.com/acme", {}, "url:"),
        ("https://github.com/acme/podinfo/tree/main", {}, "url:"),
        ("https://gitlab.com/podinfo.git", {}, "url:"),
        ("https://bitbucket.example.com/scm/podinfo.git", {}, "url:"),
        ("ftp://github.com/acme/podinfo.git", {}, "url:"),
        ("", {}, "url:"),
        ("not a url", {}, "url:"),
        ("https://github.com/acme/podinfo.git", {"api_url": "ftp://x/api"}, "pullRequest.apiURL:"),
        (
            "https://github.com/acme/podinfo.git",
            {"api_url": "https://api.github.com/?x=1"},
            "pullRequest.apiURL:",
        ),
    ],
)
def test_bad_input_is_invalid_naming_the_field(
    url: str, options: dict[str, str], field: str
) -> None:
    with pytest.raises(ForgeError) as caught:
        forge_target(url, **options)
    assert caught.value.kind is ForgeFailure.INVALID
    assert caught.value.message.startswith(field)


def test_a_password_in_a_url_is_refused_and_never_repeated() -> None:
    for url, options in (
        (f"https://bot:{PASSWORD}@github.com/acme/podinfo.git", {}),
        (
            "https://github.com/acme/podinfo.git",
            {"api_url": f"https://bot:{PASSWORD}@ghe.local/api/v3"},
        ),
    ):
        with pytest.raises(ForgeError) as caught:
            forge_target(url, **options)
        assert caught.value.kind is ForgeFailure.INVALID
        assert_safe(caught.value)
