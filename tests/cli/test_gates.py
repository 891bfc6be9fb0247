"""promote, abort, retry, pause, resume: the annotations they write, refusals, and --wait."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from canary.commands.gates import make_token, plan
from canary.model.commands import ABORT, PAUSED, PROMOTE, PROMOTE_FULL, RETRY, Commands, requester
from kubesandbox.apiserver.store import PATCH_MERGE, StoreEvent

from .conftest import Cluster, Invoke

TOKEN = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z by (?P<who>.+)$")


def kube(cluster: Cluster, *args: str) -> list[str]:
    return [*args, "-n", "test", "--kubeconfig", cluster.kubeconfig]


def token_of(cluster: Cluster, annotation: str) -> str:
    value = cluster.annotations().get(annotation)
    assert value is not None, f"{annotation} was not written"
    return value


# ----------------------------------------------------------------------------- writing


@pytest.mark.parametrize(
    ("phase", "gate"),
    [
        ("Waiting", "confirm-rollout"),
        ("WaitingPromotion", "confirm-promotion"),
        ("Progressing", "confirm-traffic-increase"),
    ],
)
def test_promote_writes_a_token_the_controller_reads(
    cli: Invoke, cluster: Cluster, phase: str, gate: str
) -> None:
    cluster.canary(status={"phase": phase})
    before = datetime.now(UTC).replace(microsecond=0)
    result = cli(*kube(cluster, "promote", "podinfo"))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("promote requested: podinfo.test will open its ")
    assert gate in result.stdout

    token = token_of(cluster, PROMOTE)
    match = TOKEN.match(token)
    assert match, token
    assert match["who"] == "admin"  # the kubeconfig user of the sandbox
    assert requester(token) == "admin"
    written = datetime.fromisoformat(token.split(" by ")[0].replace("Z", "+00:00"))
    assert before <= written <= datetime.now(UTC)
    assert f"annotation {PROMOTE}={token}" in result.stdout
    # What the controller will see: a pending promote, nothing else.
    pending = Commands.from_annotations(cluster.annotations(), {})
    assert (pending.promote, pending.abort, pending.paused) == (token, None, False)


def test_promote_full_and_by(cli: Invoke, cluster: Cluster) -> None:
    cluster.canary(status={"phase": "Progressing"})
    result = cli(*kube(cluster, "promote", "podinfo", "--full", "--by", "release-bot"))
    assert result.exit_code == 0
    assert "skip the rest of the analysis" in result.stdout
    assert requester(token_of(cluster, PROMOTE_FULL)) == "release-bot"
    assert PROMOTE not in cluster.annotations()


def test_abort_during_a_run(cli: Invoke, cluster: Cluster) -> None:
    cluster.canary(status={"phase": "Progressing"})
    result = cli(*kube(cluster, "abort", "podinfo", "-o", "json"))
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report == {
        "command": "abort",
        "name": "podinfo",
        "namespace": "test",
        "phase": "Progressing",
        "annotation": ABORT,
        "token": token_of(cluster, ABORT),
        "written": True,
        "moot": None,
        "handled": None,
    }


def test_retry_of_a_failed_canary(cli: Invoke, cluster: Cluster) -> None:
    cluster.canary(status={"phase": "Failed"})
    result = cli(*kube(cluster, "retry", "podinfo"))
    assert result.exit_code == 0
    assert "will run the failed revision again" in result.stdout
    assert TOKEN.match(token_of(cluster, RETRY))


@pytest.mark.parametrize(
    ("command", "phase", "reason"),
    [
        (["abort"], "Succeeded", "is Succeeded: nothing is running"),
        (["abort"], "Promoting", "already being promoted"),
        (["retry"], "Progressing", "only a Failed canary can be retried"),
        (["promote"], "Failed", "no gate is waiting"),
        (["promote", "--full"], "Succeeded", "no analysis is running"),
        (["promote"], "", "not started"),
    ],
)
def test_a_moot_command_is_refused_unless_forced(
    cli: Invoke, cluster: Cluster, command: list[str], phase: str, reason: str
) -> None:
    cluster.canary(status={"phase": phase} if phase else None)
    refused = cli(*kube(cluster, *command, "podinfo"))
    assert refused.exit_code == 1
    assert reason in refused.stderr and "nothing written" in refused.stderr
    assert cluster.annotations() == {}

    forced = cli(*kube(cluster, *command, "podinfo", "--force"))
    assert forced.exit_code == 0
    assert "warning:" in forced.stderr and reason in forced.stderr
    assert len(cluster.annotations()) == 1


def test_a_missing_canary_is_refused(cli: Invoke, cluster: Cluster) -> None:
    cluster.namespace("test")
    for command in ("promote", "abort", "retry", "pause", "resume"):
        result = cli(*kube(cluster, command, "nope"))
        assert result.exit_code == 1, command
        assert "canary 'nope' not found in namespace 'test'" in result.stderr


def test_pause_and_resume(cli: Invoke, cluster: Cluster) -> None:
    cluster.canary(status={"phase": "Progressing"}, annotations={"team": "web"})
    paused = cli(*kube(cluster, "pause", "podinfo"))
    assert paused.exit_code == 0
    assert cluster.annotations() == {"team": "web", PAUSED: "true"}
    assert Commands.from_annotations(cluster.annotations(), {}).paused

    again = cli(*kube(cluster, "pause", "podinfo"))
    assert (again.exit_code, again.stdout.strip()) == (
        0,
        "podinfo.test is already paused: nothing to do",
    )

    resumed = cli(*kube(cluster, "resume", "podinfo"))
    assert resumed.exit_code == 0
    assert cluster.annotations() == {"team": "web"}  # the other annotations are untouched

    idle = cli(*kube(cluster, "resume", "podinfo"))
    assert (idle.exit_code, idle.stdout.strip()) == (0, "podinfo.test is not paused: nothing to do")


def test_a_second_request_in_the_same_second_gets_a_new_token(
    cli: Invoke, cluster: Cluster
) -> None:
    cluster.canary(status={"phase": "WaitingPromotion"})
    assert cli(*kube(cluster, "promote", "podinfo")).exit_code == 0
    first = token_of(cluster, PROMOTE)
    # The controller handled the first one; a second promote (e.g. for the next gate) must differ.
    cluster.set_status("podinfo", {"handledCommands": {"promote": first}})
    assert cli(*kube(cluster, "promote", "podinfo")).exit_code == 0
    assert token_of(cluster, PROMOTE) != first


def test_replacing_an_unhandled_request_warns(cli: Invoke, cluster: Cluster) -> None:
    cluster.canary(
        status={"phase": "Progressing"}, annotations={ABORT: "2024-01-01T00:00:00Z by bob"}
    )
    result = cli(*kube(cluster, "abort", "podinfo"))
    assert result.exit_code == 0
    assert "not handled yet (2024-01-01T00:00:00Z by bob)" in result.stderr


# ----------------------------------------------------------------------------- --wait


@pytest.fixture
def controller(cluster: Cluster) -> Iterator[Callable[[str, str], None]]:
    """A stand-in controller in the sandbox's loop: marks a command handled when it appears.

    It reacts to the store's change events (no polling): when the Canary carries an unhandled
    token for ``key``, it records it in status.handledCommands and moves to ``phase``.
    """
    unsubscribe: list[Callable[[], None]] = []

    def install(key: str, phase: str) -> None:
        from canary.model.commands import ONE_SHOT

        store = cluster.sandbox.store
        annotation = ONE_SHOT[key]

        def setup() -> Callable[[], None]:
            loop = asyncio.get_running_loop()

            def on_change(event: StoreEvent) -> None:
                obj: dict[str, Any] = event.obj
                if obj.get("kind") != "Canary" or event.type == "DELETED":
                    return
                token = (obj["metadata"].get("annotations") or {}).get(annotation)
                handled = (obj.get("status") or {}).get("handledCommands") or {}
                if token and handled.get(key) != token:
                    patch = {"status": {"handledCommands": {key: token}, "phase": phase}}
                    meta = obj["metadata"]
                    loop.call_soon(
                        lambda: store.patch(
                            "canaries",
                            meta["namespace"],
                            meta["name"],
                            PATCH_MERGE,
                            patch,
                            subresource="status",
                            manager="fake-controller",
                        )
                    )

            return store.add_listener(on_change)

        unsubscribe.append(cluster.sandbox.call(setup))

    yield install
    for stop in unsubscribe:
        cluster.sandbox.call(stop)


def test_wait_until_the_controller_handled_it(
    cli: Invoke, cluster: Cluster, controller: Callable[[str, str], None]
) -> None:
    cluster.canary(status={"phase": "WaitingPromotion"})
    controller("promote", "Promoting")
    result = cli(*kube(cluster, "promote", "podinfo", "--wait", "--timeout", "30", "-o", "json"))
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["handled"], report["phaseAfter"]) == (True, "Promoting")
    assert cluster.get()["status"]["handledCommands"]["promote"] == report["token"]

    controller("abort", "Failed")
    cluster.set_status("podinfo", {"phase": "Progressing"})
    text = cli(*kube(cluster, "abort", "podinfo", "--wait", "--timeout", "30"))
    assert text.exit_code == 0
    assert "handled: podinfo.test is Failed" in text.stdout


def test_wait_gives_up_after_the_timeout(cli: Invoke, cluster: Cluster) -> None:
    cluster.canary(status={"phase": "Failed"})
    result = cli(*kube(cluster, "retry", "podinfo", "--wait", "--timeout", "0.3"))
    assert result.exit_code == 1
    assert "not handled within 0.3s" in result.stdout
    assert TOKEN.match(token_of(cluster, RETRY))  # written all the same


# ----------------------------------------------------------------------------- kubectl alone


def test_kubectl_annotate_is_the_same_protocol(
    cli: Invoke, sandbox_thread: Any, kubectl: Any
) -> None:
    from .conftest import CRD_DIR

    sandbox_thread.apply_file(CRD_DIR / "canary.yaml")
    cluster = Cluster(sandbox_thread)
    cluster.canary(status={"phase": "WaitingPromotion"})
    kubectl(
        "-n", "test", "annotate", "canary", "podinfo",
        f"{PROMOTE}=2024-05-01T12:00:00Z by me", "--overwrite",
    )  # fmt: skip
    kubectl("-n", "test", "annotate", "canary", "podinfo", f"{PAUSED}=true")
    detail = json.loads(cli(*kube(cluster, "status", "podinfo", "-o", "json")).stdout)
    assert detail["pendingCommands"] == {"promote": "2024-05-01T12:00:00Z by me"}
    assert detail["paused"] is True
    # And what the CLI writes, kubectl reads back unchanged.
    assert cli(*kube(cluster, "resume", "podinfo")).exit_code == 0
    shown = kubectl(
        "-n", "test", "get", "canary", "podinfo", "-o", "jsonpath={.metadata.annotations}"
    )
    assert PAUSED not in shown.stdout and PROMOTE in shown.stdout


# ----------------------------------------------------------------------------- pure decisions


NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def canary(
    phase: str = "",
    annotations: dict[str, str] | None = None,
    handled: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "metadata": {"name": "podinfo", "namespace": "test", "annotations": annotations or {}},
        "status": {"phase": phase, "handledCommands": handled or {}},
    }


def test_token_format_and_uniqueness() -> None:
    assert make_token("alice", NOW) == "2024-05-01T12:00:00Z by alice"
    assert make_token("", NOW) == "2024-05-01T12:00:00Z by unknown"
    later = NOW.replace(microsecond=250000)
    assert make_token("alice", later, {"2024-05-01T12:00:00Z by alice"}) == (
        "2024-05-01T12:00:00.250000Z by alice"
    )


@pytest.mark.parametrize(
    ("command", "phase", "moot"),
    [
        ("promote", "Waiting", False),
        ("promote", "WaitingPromotion", False),
        ("promote", "Progressing", False),
        ("promote", "Promoting", True),
        ("promote", "Succeeded", True),
        ("promote-full", "Progressing", False),
        ("promote-full", "WaitingPromotion", False),
        ("promote-full", "Initialized", True),
        ("abort", "Waiting", False),
        ("abort", "Progressing", False),
        ("abort", "WaitingPromotion", False),
        ("abort", "Finalising", True),
        ("abort", "Failed", True),
        ("retry", "Failed", False),
        ("retry", "Succeeded", True),
        ("retry", "", True),
    ],
)
def test_which_phases_make_a_command_moot(command: str, phase: str, moot: bool) -> None:
    request = plan(command, canary(phase), "alice", NOW)
    assert bool(request.moot) is moot
    assert request.patch == {"metadata": {"annotations": {request.annotation: request.token}}}


def test_a_terminating_canary_takes_no_commands() -> None:
    obj = canary("Progressing")
    obj["metadata"]["deletionTimestamp"] = "2024-05-01T11:59:00Z"
    assert plan("abort", obj, "alice", NOW).moot == "is being deleted"


def test_resume_removes_the_annotation_with_a_merge_patch_null() -> None:
    request = plan("resume", canary("Progressing", {PAUSED: "true"}), "alice", NOW)
    assert request.patch == {"metadata": {"annotations": {PAUSED: None}}}
    assert plan("pause", canary("Progressing", {PAUSED: "True"}), "alice", NOW).patch is None
