"""`canary demo --fast` end to end: the README's first command, checked the way a user would.

The demo starts real processes (the controller, Prometheus, two demo-app processes) around
the sandbox and a local Git repository, releases v2 and v3 and writes a JSON summary. The
test runs it as a subprocess of the real command line, then checks the outcome against the
primary sources rather than the demo's own claims where it can: the Git history of the
demo repository (v1, v2, v3 and a revert commit whose trailers name v3, nothing rewritten),
the Slack messages the receiver printed, and the process table (every child gone).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
OUTER_LIMIT = 900.0  # a guard against a hung demo, not a speed target (the demo prints its times)


def demo_argv() -> list[str]:
    """``canary demo``, run through this interpreter (the script may not be on PATH)."""
    return [sys.executable, "-m", "canary.cli", "demo"]


def git(repo: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1")
    return subprocess.run(
        ["git", "--git-dir", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            line = cmdline(int(entry.name))
            if text in line:
                found.append(f"{entry.name}: {line}")
    return found


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run the fast demo once for the module; its summary, output, workdir and duration."""
    import json

    base = tmp_path_factory.mktemp("demo")
    workdir, summary_path, log = base / "work", base / "summary.json", base / "output.log"
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env.update(PYTHONUNBUFFERED="1", COLUMNS="160")
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.run(
            [*demo_argv(), "--fast", "--workdir", str(workdir), "--summary", str(summary_path)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=OUTER_LIMIT,
            check=False,
        )
    elapsed = time.monotonic() - started
    output = log.read_text(errors="replace")
    assert proc.returncode == 0, f"canary demo exited {proc.returncode}:\n{output[-6000:]}"
    summary = json.loads(summary_path.read_text())
    return {"summary": summary, "output": output, "workdir": workdir, "elapsed": elapsed}


def test_the_demo_ends_with_v2_promoted_and_v3_rolled_back(demo_run: dict[str, Any]) -> None:
    summary = demo_run["summary"]
    assert summary["ok"], summary.get("error")
    assert summary["v2"]["promoted"]
    assert summary["v3"]["rolledBack"]
    assert summary["v3"]["gitRevert"]["state"] == "Reverted"
    phases = [(phase, revision) for _, phase, revision in summary["phases"]]
    v2 = f"main@sha1:{summary['repository']['releases']['v2']}"
    v3 = f"main@sha1:{summary['repository']['releases']['v3']}"
    assert ("Succeeded", v2) in phases
    assert ("Failed", v3) in phases
    assert ("Succeeded", v3) not in phases
    checks = {name: (ok, detail) for name, ok, detail in summary["checks"]}
    ok, detail = checks["v3 rolled back for its errors"]
    assert ok and "on its error rate: request-success-rate Fail" in detail, detail


def test_git_has_the_three_releases_and_a_revert_naming_v3(demo_run: dict[str, Any]) -> None:
    repo = demo_run["workdir"] / "git" / "demo.git"
    history = [
        line.split(" ", 1) for line in git(repo, "log", "--format=%H %s", "main").splitlines()
    ]
    assert [subject for _, subject in history[1:]] == [
        "Release podinfo v3",
        "Release podinfo v2",
        "Deploy podinfo v1 with a canary",
    ]
    revert_sha, revert_subject = history[0]
    v3_sha, v2_sha = history[1][0], history[2][0]
    assert revert_subject.startswith("Revert podinfo to ")
    # nothing rewritten: one straight line of history, the revert on top of v3
    assert git(repo, "rev-list", "--parents", "-1", revert_sha).split() == [revert_sha, v3_sha]
    assert git(repo, "rev-list", "--merges", "main").strip() == ""

    def trailer(key: str) -> list[str]:
        out = git(repo, "log", "-1", f"--format=%(trailers:key={key},valueonly)", revert_sha)
        return [line.strip() for line in out.splitlines() if line.strip()]

    assert trailer("Canary-Bad-Revision") == [v3_sha]
    assert trailer("Canary-Good-Revision") == [v2_sha]
    assert v3_sha in trailer("Canary-Reverts")
    assert trailer("Canary") == ["demo/podinfo"]
    manifest = git(repo, "show", f"{revert_sha}:deploy/podinfo.yaml")
    assert "image: podinfo:v2" in manifest and "podinfo:v3" not in manifest
    assert summary_release(demo_run, "revert") == revert_sha


def summary_release(demo_run: dict[str, Any], name: str) -> str:
    return str(demo_run["summary"]["repository"]["releases"][name])


def test_the_slack_receiver_got_the_promotion_and_the_rollback(demo_run: dict[str, Any]) -> None:
    messages = demo_run["summary"]["slack"]
    by_kind = {m["kind"]: m for m in messages}
    # v3 is rolled back by the statistical judge: conclusively worse than the primary
    promoted, rolled_back = by_kind.get("Promoted"), by_kind.get("Regression")
    assert promoted is not None, [m["title"] for m in messages]
    assert rolled_back is not None, [m["title"] for m in messages]
    assert promoted["title"] == "Promoted: podinfo.demo"
    assert ["Image", "podinfo:v2"] in promoted["facts"]
    assert rolled_back["title"] == "Rolled back: conclusively worse than the primary: podinfo.demo"
    assert ["Image", "podinfo:v3"] in rolled_back["facts"]
    assert any("request-success-rate" in line for line in rolled_back["analysis"])
    assert all(m["channel"] == "releases" for m in messages)
    # ... and the receiver printed them as they arrived
    output = demo_run["output"]
    assert "slack #releases: Promoted: podinfo.demo" in output
    assert "slack #releases: Rolled back: conclusively worse than the primary: podinfo.demo" in (
        output
    )


def test_every_process_the_demo_started_is_gone(demo_run: dict[str, Any]) -> None:
    pids = demo_run["summary"]["processes"]
    assert set(pids) == {"operator", "prometheus", "demoapp-primary", "demoapp-canary"}
    alive = {name: cmdline(pid) for name, pid in pids.items() if cmdline(pid)}
    # a reused pid would run something else: only our own command lines count
    alive = {
        name: line
        for name, line in alive.items()
        if "canary" in line or "prometheus" in line or "demoapp" in line
    }
    assert alive == {}
    assert processes_mentioning(str(demo_run["workdir"])) == []


def test_a_missing_prometheus_is_reported_with_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import typer

    from canary.demo import prometheus
    from canary.demo import story as demo

    def not_installed(binary: str | None = None) -> str:
        raise prometheus.PrometheusNotInstalled()

    monkeypatch.setattr(prometheus, "find_prometheus", not_installed)
    with pytest.raises(typer.Exit) as exit_info:
        demo.demo_command(workdir=tmp_path / "work")
    assert exit_info.value.exit_code == 2
    out = capsys.readouterr().out
    assert "sudo apt-get install -y --no-install-recommends prometheus" in " ".join(out.split())
    assert not (tmp_path / "work").exists()  # nothing was started or written
