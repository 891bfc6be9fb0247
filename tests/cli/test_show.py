"""``canary get`` and ``canary status`` against the sandbox API server, and their watch mode."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from analysis import Outcome, SequentialState, Verdict
from canary.adapters.kube import connect
from canary.commands.show import age, list_canaries, short_revision, watch_loop

from .conftest import API_VERSION, CANARY_SPEC, REPO, Cluster, Invoke

GOOD = "main@sha1:fedcba9876543210fedcba9876543210fedcba98"
UNDER_TEST = "main@sha1:0123456789abcdef0123456789abcdef01234567"

PROGRESSING: dict[str, Any] = {
    "phase": "Progressing",
    "canaryWeight": 30,
    "failedChecks": 2,
    "iterations": 0,
    "currentRevision": UNDER_TEST,
    "lastGoodRevision": GOOD,
    "lastTransitionTime": "2024-05-01T12:00:00Z",
    "message": "Advancing to 30% after 2 passed checks.",
    "analysis": [
        {
            "name": "request-success-rate",
            "outcome": "Pass",
            "summary": "success rate 99.6% >= 99%",
            "value": 99.6,
            "threshold": ">= 99",
            "time": "2024-05-01T12:00:00Z",
        },
        {
            "name": "latency",
            "outcome": "Fail",
            "summary": "p99 812ms > 500ms",
            "value": 812.0,
            "threshold": "<= 500",
            "time": "2024-05-01T12:00:00Z",
        },
    ],
    "conditions": [
        {
            "type": "Promoted",
            "status": "Unknown",
            "reason": "Progressing",
            "message": "New revision detected, progressing canary analysis.",
            "lastUpdateTime": "2024-05-01T12:00:00Z",
            "lastTransitionTime": "2024-05-01T12:00:00Z",
        }
    ],
    "gitRevert": {
        "state": "Reverted",
        "goodRevision": GOOD,
        "badRevision": "main@sha1:aaaa",
        "commit": "c0ffee1234567890",
        "message": "Revert podinfo to the last good revision",
        "attempts": 1,
    },
}


def kube(cluster: Cluster, *args: str) -> list[str]:
    return [*args, "--kubeconfig", cluster.kubeconfig]


# ----------------------------------------------------------------------------- get


def test_get_lists_the_canaries_of_the_context_namespace(cli: Invoke, cluster: Cluster) -> None:
    cluster.canary("podinfo", status=PROGRESSING)
    cluster.canary("frontend", "default", status={"phase": "Succeeded", "lastGoodRevision": GOOD})

    # The sandbox kubeconfig's context namespace is "default".
    default = cli(*kube(cluster, "get"))
    assert default.exit_code == 0, default.stderr
    assert "frontend" in default.stdout and "podinfo" not in default.stdout

    result = cli(*kube(cluster, "get", "-n", "test"))
    assert result.exit_code == 0
    header, _, row = result.stdout.splitlines()[:3]
    assert header.split() == [
        "NAME", "NAMESPACE", "STATUS", "WEIGHT", "FAILED", "REVISION", "LAST", "GOOD", "LAST", "TRANSITION"
    ]  # fmt: skip
    assert row.split()[:7] == [
        "podinfo",
        "test",
        "Progressing",
        "30",
        "2",
        "main@01234567",
        "main@fedcba98",
    ]


def test_get_all_namespaces_json(cli: Invoke, cluster: Cluster) -> None:
    cluster.canary("podinfo", status=PROGRESSING)
    cluster.canary("frontend", "default")
    result = cli(*kube(cluster, "get", "-A", "-o", "json"))
    assert result.exit_code == 0
    items = json.loads(result.stdout)["items"]
    assert [(i["namespace"], i["name"], i["phase"]) for i in items] == [
        ("default", "frontend", ""),
        ("test", "podinfo", "Progressing"),
    ]
    assert items[1] | {"creationTimestamp": None} == {
        "name": "podinfo",
        "namespace": "test",
        "phase": "Progressing",
        "paused": False,
        "suspended": False,
        "canaryWeight": 30,
        "failedChecks": 2,
        "iterations": 0,
        "currentRevision": UNDER_TEST,
        "lastGoodRevision": GOOD,
        "lastTransitionTime": "2024-05-01T12:00:00Z",
        "creationTimestamp": None,
    }


def test_get_one_by_name_as_yaml(cli: Invoke, cluster: Cluster) -> None:
    cluster.canary("podinfo", status=PROGRESSING, annotations={"canary.gitops.dev/paused": "true"})
    result = cli(*kube(cluster, "get", "podinfo", "-n", "test", "-o", "yaml"))
    row = yaml.safe_load(result.stdout)
    assert (row["name"], row["paused"], row["canaryWeight"]) == ("podinfo", True, 30)
    text = cli(*kube(cluster, "get", "podinfo", "-n", "test")).stdout
    assert "Progressing (paused)" in text


def test_get_missing_canary_exits_1(cli: Invoke, cluster: Cluster) -> None:
    cluster.namespace("test")
    result = cli(*kube(cluster, "get", "nope", "-n", "test"))
    assert result.exit_code == 1
    assert "canary 'nope' not found in namespace 'test'" in result.stderr
    empty = cli(*kube(cluster, "get", "-n", "test"))
    assert (empty.exit_code, empty.stdout.strip()) == (0, "No canaries in namespace 'test'.")


def test_get_usage_errors(cli: Invoke, tmp_path: Path) -> None:
    both = cli("get", "-A", "-n", "x", "--kubeconfig", str(tmp_path / "k"))
    assert both.exit_code == 2
    missing = cli("get", "--kubeconfig", str(tmp_path / "nope"))
    assert missing.exit_code == 2
    assert "no kubeconfig" in missing.stderr


def test_without_our_crds_the_message_says_so(cli: Invoke, sandbox_thread_factory: Any) -> None:
    bare = sandbox_thread_factory(simulate_workloads=False)
    result = cli("get", "--kubeconfig", str(bare.kubeconfig_path))
    assert result.exit_code == 1
    assert "CRDs installed" in result.stderr


def test_unreachable_api_server_exits_1(cli: Invoke, tmp_path: Path) -> None:
    from kubesandbox.kubeconfig import write_kubeconfig

    path = write_kubeconfig(tmp_path / "kubeconfig", "http://127.0.0.1:9")  # discard port: refused
    result = cli("get", "--kubeconfig", str(path))
    assert result.exit_code == 1
    assert "error:" in result.stderr


# ----------------------------------------------------------------------------- status


def test_status_shows_the_whole_story(cli: Invoke, cluster: Cluster) -> None:
    cluster.canary("podinfo", status=PROGRESSING)
    cluster.event("podinfo", "Advance podinfo.test canary weight 30", count=3)
    cluster.event("podinfo", "Halt advancement podinfo.test latency 812 > 500", type="Warning")
    cluster.event("other", "not about podinfo")

    result = cli(*kube(cluster, "status", "podinfo", "-n", "test"))
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert text.splitlines()[0].split() == ["podinfo.test", "Progressing"]
    assert "weight 30/50%" in text  # the progress bar's scale is maxWeight
    assert "2/5 failed checks" in text
    assert "Deployment/podinfo" in text
    assert f"{UNDER_TEST}  (last good: {GOOD})" in text
    assert "Reverted" in text and "commit c0ffee123456" in text
    assert "Advancing to 30% after 2 passed checks." in text
    for metric in (
        "request-success-rate",
        "Pass",
        "99.6",
        "latency",
        "Fail",
        "812",
        "p99 812ms > 500ms",
    ):
        assert metric in text
    assert "Promoted" in text and "New revision detected" in text
    assert "Advance podinfo.test canary weight 30 (x3)" in text
    assert "Halt advancement" in text and "Warning" in text
    assert "not about podinfo" not in text


@pytest.mark.parametrize(("ticks", "said"), [(1, "1 tick"), (3, "3 ticks")])
def test_status_counts_inconclusive_ticks_not_a_judges_checks(
    cli: Invoke, cluster: Cluster, ticks: int, said: str
) -> None:
    # status.inconclusiveChecks counts ticks (any metric's, steps up included), while a
    # judge's verdict counts its own holds ("check 3 of 5"): said as ticks, they differ
    # without contradicting each other.
    cluster.canary("podinfo", status={**PROGRESSING, "inconclusiveChecks": ticks})
    result = cli(*kube(cluster, "status", "podinfo", "-n", "test"))
    assert result.exit_code == 0, result.stderr
    assert f"2/5 failed checks, inconclusive {said} in a row" in result.stdout


def test_status_json(cli: Invoke, cluster: Cluster) -> None:
    cluster.canary(
        "podinfo",
        status={**PROGRESSING, "handledCommands": {"promote": "2024-05-01T11:00:00Z by bob"}},
        annotations={
            "canary.gitops.dev/promote": "2024-05-01T11:00:00Z by bob",
            "canary.gitops.dev/abort": "2024-05-01T12:01:00Z by alice",
        },
    )
    cluster.event("podinfo", "Advance podinfo.test canary weight 30")
    result = cli(*kube(cluster, "status", "podinfo", "-n", "test", "-o", "json"))
    detail = json.loads(result.stdout)
    assert detail["phase"] == "Progressing"
    assert (detail["strategy"], detail["maxWeight"], detail["stepWeight"], detail["threshold"]) == (
        "canary", 50, 10, 5
    )  # fmt: skip
    assert [m["name"] for m in detail["analysis"]] == ["request-success-rate", "latency"]
    assert detail["gitRevert"]["state"] == "Reverted"
    assert detail["conditions"][0]["type"] == "Promoted"
    # The promote token was handled; the abort is still pending.
    assert detail["pendingCommands"] == {"abort": "2024-05-01T12:01:00Z by alice"}
    assert [e["message"] for e in detail["events"]] == ["Advance podinfo.test canary weight 30"]


def test_status_shows_messages_not_yet_delivered(cli: Invoke, cluster: Cluster) -> None:
    pending = {
        "key": "k1",
        "kind": "Promoted",
        "created": "2024-05-01T12:00:00Z",
        "destinations": ["test/slack"],
        "alert": {"message": "Promotion completed!"},
    }
    cluster.canary("podinfo", status={**PROGRESSING, "pendingAlerts": [pending]})
    text = cli(*kube(cluster, "status", "podinfo", "-n", "test")).stdout
    (line,) = [ln for ln in text.splitlines() if "Messages" in ln]
    assert "Promoted waiting" in line and "for test/slack" in line
    detail = json.loads(cli(*kube(cluster, "status", "podinfo", "-n", "test", "-o", "json")).stdout)
    assert detail["pendingAlerts"] == [
        {"kind": "Promoted", "created": "2024-05-01T12:00:00Z", "destinations": ["test/slack"]}
    ]


def _verdict(outcome: str, **extra: Any) -> dict[str, Any]:
    return {"name": "request-success-rate", "outcome": outcome, **extra}


HISTORY: list[dict[str, Any]] = [
    {
        "revision": GOOD,
        "started": "2024-05-01T10:00:00Z",
        "ended": "2024-05-01T10:05:00Z",
        "result": "Failed",
        "reason": "failed checks threshold reached 2",
        "ticks": [
            {"time": "2024-05-01T10:01:00Z", "weight": 10, "verdicts": [_verdict("Fail")]},
            {"time": "2024-05-01T10:02:00Z", "weight": 10, "verdicts": [_verdict("NoData")]},
        ],
    },
    {
        "revision": UNDER_TEST,
        "started": "2024-05-01T11:00:00Z",
        "ticks": [
            {"time": "2024-05-01T11:01:00Z", "weight": 10, "verdicts": [
                _verdict("Inconclusive", warmingUp=True),
                {"name": "latency", "outcome": "Fail", "advisory": True},
            ]},
            {"time": "2024-05-01T11:02:00Z", "weight": 10, "verdicts": [
                _verdict("Inconclusive", samples=40),
                {"name": "latency", "outcome": "Pass", "advisory": True},
            ]},
            {"time": "2024-05-01T11:03:00Z", "weight": 20, "verdicts": [
                _verdict("Inconclusive", samples=90, stalled=True),
            ]},
            {"time": "2024-05-01T11:04:00Z", "weight": 30, "verdicts": [
                _verdict("Pass", value=99.6, primaryValue=99.8, samples=1840),
            ]},
        ],
    },
]  # fmt: skip


def test_status_shows_the_verdicts_over_time_and_the_earlier_runs(
    cli: Invoke, cluster: Cluster
) -> None:
    compared = {
        **PROGRESSING["analysis"][0],
        "details": {
            "comparison": {"canarySamples": 1840, "primarySamples": 16000, "neededSamples": 3200}
        },
    }
    advisory = {**PROGRESSING["analysis"][1], "advisory": True}
    status = {**PROGRESSING, "analysis": [compared, advisory], "analysisHistory": HISTORY}
    cluster.canary("podinfo", status=status)
    text = cli(*kube(cluster, "status", "podinfo", "-n", "test", "--events", "0")).stdout
    assert "REQUESTS" in text and "1,840 / 16,000 (need ~3,200)" in text
    assert "latency (advisory)" in text
    assert f"Analysis of {UNDER_TEST}" in text
    history = {line.split()[0]: line.split() for line in text.splitlines() if "…" in line}
    # warm-up, inconclusive, stalled, pass; then the last verdict and the requests behind it
    assert history["request-success-rate"][:5] == [
        "request-success-rate", "~…‖✓", "Pass", "99.6", "99.8"
    ]  # fmt: skip
    assert "○✓·" in text  # advisory: not passing, passing, not measured
    assert "weights (%): 10 10 20 30" in text
    assert "failed checks threshold reached 2" not in text  # the earlier run: --history
    assert "1 earlier run(s)" in text

    everything = cli(*kube(cluster, "status", "podinfo", "-n", "test", "--history")).stdout
    assert "Earlier run" in everything and "failed checks threshold reached 2" in everything
    assert "✗✗" in everything

    detail = json.loads(cli(*kube(cluster, "status", "podinfo", "-n", "test", "-o", "json")).stdout)
    assert detail["analysisHistory"] == HISTORY


@pytest.mark.parametrize(
    ("evidence", "error", "shown"),
    [
        (
            {"canary_requests": 1840, "primary_requests": 16000},
            None,
            "1,840 / 16,000 (last compared)",
        ),
        # the first check after the warm-up: nothing compared yet, the warm-up's counts
        ({"warm": (310, 2, 2900, 14), "warm_windows": 1}, None, "310 / 2,900 (warm-up)"),
        # a failed query carries the evidence as well, but measured nothing: no column
        ({"canary_requests": 1840, "primary_requests": 16000}, "no values", None),
    ],
)
def test_requests_are_shown_when_the_threshold_range_decided_a_compared_metric(
    cli: Invoke, cluster: Cluster, evidence: dict[str, Any], error: str | None, shown: str | None
) -> None:
    # The threshold verdict of a metric with compare and thresholdRange, as the judge stores it:
    # no comparison of its own, the comparison's running evidence carried in its state.
    state = SequentialState(
        window_end=datetime(2024, 5, 1, 11, 4, tzinfo=UTC), log_lr=(0.0,), **evidence
    )
    verdict = Verdict(
        metric="request-success-rate",
        outcome=Outcome.FAIL,
        summary="success rate 98.2% < 99%",
        evaluated_at=datetime(2024, 5, 1, 11, 4, tzinfo=UTC),
        value=98.2,
        min=99.0,
        error=error,
        state=state,
    )
    analysis = [{"name": "request-success-rate", "outcome": "Fail", "details": verdict.to_status()}]
    cluster.canary("podinfo", status={**PROGRESSING, "analysis": analysis})
    text = cli(*kube(cluster, "status", "podinfo", "-n", "test", "--events", "0")).stdout
    assert ("REQUESTS" in text and shown in text) if shown else "REQUESTS" not in text


def test_status_of_a_blue_green_canary_counts_iterations(cli: Invoke, cluster: Cluster) -> None:
    spec = {
        "targetRef": {"kind": "Deployment", "name": "podinfo"},
        "service": {"port": 9898},
        "analysis": {"interval": "1m", "threshold": 2, "iterations": 10},
    }
    cluster.canary("podinfo", spec=spec, status={"phase": "Progressing", "iterations": 3})
    text = cli(*kube(cluster, "status", "podinfo", "-n", "test")).stdout
    assert "3/10 iterations" in text and "blue-green" in text
    cluster.set_status("podinfo", {"phase": "Succeeded", "iterations": 0})
    assert "promoted" in cli(*kube(cluster, "status", "podinfo", "-n", "test")).stdout


def test_status_of_a_missing_canary_exits_1(cli: Invoke, cluster: Cluster) -> None:
    cluster.namespace("test")
    result = cli(*kube(cluster, "status", "nope", "-n", "test"))
    assert result.exit_code == 1
    assert "not found" in result.stderr


# ----------------------------------------------------------------------------- watching


async def test_watch_loop_shows_each_change_once(cluster: Cluster) -> None:
    # The sandbox runs in its own thread; this loop talks to it over HTTP.
    cluster.namespace("test")
    seen: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
    async with await connect(cluster.kubeconfig) as client:
        await client.create(
            {
                "apiVersion": API_VERSION,
                "kind": "Canary",
                "metadata": {"name": "podinfo", "namespace": "test"},
                "spec": CANARY_SPEC,
            }
        )
        await client.patch(
            API_VERSION,
            "Canary",
            "podinfo",
            "test",
            {"status": {"phase": "Progressing", "canaryWeight": 10}},
            subresource="status",
        )
        task = asyncio.create_task(
            watch_loop(lambda: list_canaries(client, "test"), seen.put_nowait, interval=0.05)
        )
        try:
            first = await asyncio.wait_for(seen.get(), 10)
            assert first[0]["canaryWeight"] == 10
            await client.patch(
                API_VERSION,
                "Canary",
                "podinfo",
                "test",
                {"status": {"canaryWeight": 20}},
                subresource="status",
            )
            second = await asyncio.wait_for(seen.get(), 10)
            assert second[0]["canaryWeight"] == 20
            # Unchanged polls show nothing: the next thing seen is the next change.
            await client.patch(
                API_VERSION,
                "Canary",
                "podinfo",
                "test",
                {"status": {"phase": "Succeeded"}},
                subresource="status",
            )
            third = await asyncio.wait_for(seen.get(), 10)
            assert (third[0]["phase"], third[0]["canaryWeight"]) == ("Succeeded", 20)
        finally:
            task.cancel()


async def test_watch_loop_returns_when_the_condition_holds() -> None:
    values = iter([1, 2, 2, 3, 4])
    shown: list[int] = []

    async def fetch() -> int:
        return next(values)

    assert await watch_loop(fetch, shown.append, interval=0, until=lambda v: v >= 3) == 3
    assert shown == [1, 2, 3]


def _lines(stream: Any) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _next_line(lines: queue.Queue[str], proc: subprocess.Popen[str], limit: float = 300.0) -> str:
    """The next line the watch prints: waits as long as the process lives (a loaded machine
    may take its time starting Python), failing at once, with its stderr, if it dies."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            return lines.get(timeout=0.5)
        except queue.Empty:
            if proc.poll() is not None:
                err = proc.stderr.read() if proc.stderr else ""
                pytest.fail(f"the watch exited with {proc.returncode} before printing: {err}")
    pytest.fail(f"the watch printed nothing within {limit:g}s")


def _interruptible() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("command", ["get", "status"])
def test_watch_streams_one_json_document_per_change_until_ctrl_c(
    cluster: Cluster, command: str
) -> None:
    cluster.canary("podinfo", status={"phase": "Progressing", "canaryWeight": 10})
    args = ["podinfo", "-n", "test", "-w", "-o", "json", "--kubeconfig", cluster.kubeconfig]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.cli._app", command, *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        # Ctrl-C in a terminal: a test run started in the background of a shell without job
        # control inherits SIGINT ignored, and would hand that on.
        preexec_fn=_interruptible,
    )
    try:
        lines = _lines(proc.stdout)
        first = json.loads(_next_line(lines, proc))
        assert (first["phase"], first["canaryWeight"]) == ("Progressing", 10)
        cluster.set_status("podinfo", {"phase": "WaitingPromotion", "canaryWeight": 50})
        second = json.loads(_next_line(lines, proc))
        assert (second["phase"], second["canaryWeight"]) == ("WaitingPromotion", 50)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=300) == 0  # an outer limit: it exits as soon as it reads ^C
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ----------------------------------------------------------------------------- formatting


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (5, "5s"),
        (119, "119s"),
        (150, "2m30s"),
        (600, "10m"),
        (3 * 3600 + 60, "3h1m"),
        (9 * 3600, "9h"),
        (3 * 86400, "3d"),
        (30 * 86400, "30d"),
    ],
)
def test_age_reads_like_kubectl(seconds: int, expected: str) -> None:
    now = datetime(2024, 5, 10, tzinfo=UTC)
    then = datetime.fromtimestamp(now.timestamp() - seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert age(then, now) == expected
    assert age("", now) == age("yesterday", now) == "-"


@pytest.mark.parametrize(
    ("revision", "expected"),
    [
        (UNDER_TEST, "main@01234567"),
        ("0123456789abcdef0123456789abcdef01234567", "01234567"),
        ("v1.2.3", "v1.2.3"),
        ("", "-"),
    ],
)
def test_short_revision(revision: str, expected: str) -> None:
    assert short_revision(revision) == expected
