"""What `canary run` does with each answer at start-up: retry, or one line and stop.

The process-level behaviour is in tests/e2e/test_operator_errors.py; these pin the decision
for answers a test cannot easily get from the sandbox (401, 403, an untrusted certificate).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import ssl

import aiohttp
import pytest

from canary.controller.startup import OperatorError, cause, listen_error, wait_for_api
from canary.ports import Forbidden, KubeError, NotFound, Unavailable

HOST = "https://k8s.example:6443"


def unavailable(root: BaseException | None = None, status: int | None = None) -> Unavailable:
    error = Unavailable(f"GET /apis failed: {root!r}", status=status)
    error.__cause__ = root
    return error


class Script:
    """A start-up check that raises the scripted errors, then passes."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)


async def wait(script: Script, *, timeout: float = 60.0) -> bool:
    return await wait_for_api(HOST, script, timeout=timeout, stopping=asyncio.Event())


@pytest.fixture(autouse=True)
def instant_delays(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("canary.controller.startup.STARTUP_DELAYS", (0.001, 0.002))


async def test_transient_failures_are_tried_again_with_one_line_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="canary.operator")
    script = Script(
        unavailable(status=500),
        unavailable(aiohttp.ServerDisconnectedError()),
        unavailable(status=429),
    )
    assert await wait(script) is True
    assert script.calls == 4
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3
    assert messages[1] == (
        f"the API server at {HOST}: the server closed the connection; trying again in "
        "0.002s (giving up after 60s)"
    )


async def test_a_server_that_keeps_failing_is_given_up_on_in_one_line() -> None:
    script = Script(*[unavailable(status=503)] * 1000)
    with pytest.raises(OperatorError) as caught:
        await wait(script, timeout=0.05)
    assert str(caught.value).startswith(f"cannot reach the API server at {HOST} (HTTP 503: ")
    assert str(caught.value).endswith("(--kubeconfig, --context)")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (Forbidden("Unauthorized", status=401), "does not accept the kubeconfig's credentials"),
        (Forbidden("forbidden: cannot get crds", status=403), "grant it the RBAC of deploy/"),
        (KubeError("teapot", status=418), f"the API server at {HOST} answered HTTP 418: teapot"),
        (
            unavailable(
                aiohttp.ClientConnectorCertificateError(
                    aiohttp.client_reqrep.ConnectionKey(  # type: ignore[call-arg]
                        "k8s.example", 6443, True, True, None, None, None
                    ),
                    ssl.SSLCertVerificationError("certificate verify failed"),
                )
            ),
            "check the kubeconfig's certificate-authority",
        ),
    ],
)
async def test_a_definite_answer_stops_at_once(error: Exception, expected: str) -> None:
    script = Script(error)
    with pytest.raises(OperatorError) as caught:
        await wait(script)
    assert script.calls == 1
    assert expected in str(caught.value)


async def test_missing_crds_pass_through_as_they_are() -> None:
    script = Script(OperatorError("the CustomResourceDefinitions are not installed: x"))
    with pytest.raises(OperatorError, match="not installed"):
        await wait(script)
    assert script.calls == 1


async def test_stopping_while_waiting_ends_quietly() -> None:
    stopping = asyncio.Event()

    async def check() -> None:
        stopping.set()
        raise unavailable(status=500)

    assert await wait_for_api(HOST, check, timeout=60, stopping=stopping) is False


def test_causes_are_words_not_reprs() -> None:
    refused = aiohttp.ClientConnectorError(
        aiohttp.client_reqrep.ConnectionKey(  # type: ignore[call-arg]
            "127.0.0.1", 1, False, True, None, None, None
        ),
        ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed ('127.0.0.1', 1)"),
    )
    assert cause(unavailable(refused)) == "cannot connect: connection refused"
    assert cause(unavailable(TimeoutError())) == "no answer in time"
    assert cause(unavailable(status=500)).startswith("HTTP 500: GET /apis failed")
    assert cause(NotFound("gone")) == "gone"


def test_a_port_in_use_names_the_address_and_the_flag() -> None:
    error = listen_error("0.0.0.0", 8080, OSError(errno.EADDRINUSE, "address already in use"))
    assert str(error) == (
        "cannot serve /metrics, /healthz and /readyz on 0.0.0.0:8080: address already in use "
        "(another canary run on this host?); choose another address with --listen HOST:PORT"
    )
    denied = listen_error("0.0.0.0", 80, OSError(errno.EACCES, "permission denied"))
    assert "ports below 1024 need privileges" in str(denied)
