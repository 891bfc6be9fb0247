"""How far one controller replica goes: CPU, memory, API requests and lateness per canary.

Run it with::

    .venv/bin/python -m bench.scale                       # the sweep in docs/performance.md
    .venv/bin/python -m bench.scale --progressing 100     # one case
    .venv/bin/python -m bench.scale --registered 1000 --window 120
    .venv/bin/python -m bench.scale --progressing 1000 --registered 10000 --window 120 --pin

Each case starts the sandbox API server (with its workload simulator) in a process of its
own, creates the Deployments and Canaries directly, starts ``canary run`` as a separate
process, and measures the controller process only:

* **startup**: from the controller's start until every Canary had its first tick (its
  status has a phase), and until every Canary is initialized (its passes created the primary,
  the Services and the routes, and the primary is ready: several intervals, as in Flagger);
* **steady** (``--window`` seconds): ``progressing`` canaries (10 s interval, an analysis that
  never ends, so every pass steps and writes its status) or ``registered`` ones (1 m, idle):
  the controller's CPU seconds per wall second and CPU milliseconds per pass (from
  ``/proc``), RSS and peak RSS, the API requests per pass by verb and resource (from the
  sandbox's audit log, by the controller's own user), and tick lateness p50/p99 (from the
  controller's ``canary_engine_tick_lateness_seconds``);
* **release**: with the case's canaries still registered, the time one new revision takes
  from its commit to ``Succeeded``;
* **restart**: the controller stopped and a new one started over the initialized canaries,
  as after an upgrade or a failover: the time until every Canary had its first pass (from
  the pass metric, which has a series per Canary) and the new process's peak RSS by then.

The sandbox runs on the same machine and competes for the same cores: on a 2-core machine,
CPU seconds per wall second of the controller are what to compare, not wall times. With
``--pin`` the sandbox keeps to the first CPU and the controller to the others, as an API
server and its controller would on a cluster; the sandbox's own CPU is printed beside the
controller's, so that a saturated sandbox (slow answers, late passes) shows. So do the
sandbox's own stops: its garbage collections of 0.1 s or more in the window (it is a Python
process holding the whole cluster; a real API server has no such pauses) and the longest
time in the window in which it recorded no request at all.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CANARY = str(Path(sys.executable).parent / "canary")
API = "canary.gitops.dev/v1beta1"
CONTROLLER_USER = "canary-engine"
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


# ``--pin``: a cluster's API server does not run on its controller's cores. On a machine of
# two or more CPUs the sandbox gets the first and the controller the others, so that the
# controller's figures are its own and not the sandbox's queue for a shared core.
_CPUS = sorted(os.sched_getaffinity(0))
SANDBOX_CPUS = set(_CPUS[:1])
CONTROLLER_CPUS = set(_CPUS[1:]) or SANDBOX_CPUS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the sandbox, in its own process ----------------------------------------------------------


SANDBOX_STALL = 0.1  # a garbage collection of the sandbox this long is worth reporting
SANDBOX_FREEZE_EVERY = 10.0  # seconds between two freezes of the sandbox's heap


def stalls_path(audit: Path) -> Path:
    return audit.with_name("sandbox-gc.jsonl")


def _record_sandbox_gc(path: Path) -> None:
    """Append each long garbage collection of this (the sandbox's) process to ``path``.

    The sandbox is a Python process holding every object of the cluster; a full collection
    stops it, and every request of the controller waits meanwhile. A real API server has
    no such pauses, so they are the sandbox's, not the controller's: kept short (`keep_heap` in `serve`), and
    reported apart.
    """
    import gc

    started = [0.0]

    def callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
            return
        took = time.perf_counter() - started[0]
        if took >= SANDBOX_STALL:
            with path.open("a", encoding="utf-8") as fh:
                fh.write(
                    json.dumps({"at": time.time(), "seconds": took, "gen": info["generation"]})
                )
                fh.write("\n")

    gc.callbacks.append(callback)


def sandbox_stalls(audit: Path, since: float, until: float) -> str:
    """The sandbox's long collections between two wall-clock times: count, longest."""
    path = stalls_path(audit)
    if not path.exists():
        return "none"
    pauses = [
        float(e["seconds"])
        for e in map(json.loads, path.read_text().splitlines())
        if since <= float(e["at"]) <= until
    ]
    return f"{len(pauses)}, longest {max(pauses):.1f} s" if pauses else "none"


def longest_silence(entries: Sequence[dict[str, Any]]) -> float:
    """The longest time between two consecutive requests the API server recorded."""
    times = sorted(parse_time(e["time"]) for e in entries)
    return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


def serve(port: int, kubeconfig: Path, audit: Path) -> None:
    """The sandbox process: API server + simulator + CRDs, until SIGTERM."""
    from canary.controller.heap import keep_heap
    from kubesandbox import Sandbox

    _record_sandbox_gc(stalls_path(audit))

    async def main() -> None:
        # The sandbox stands in for an API server, which does not stop for its garbage: keep
        # what it holds out of the full collections, as the controller's heap keeper does
        # (without it, they stopped every request for 9-15 s once it held 11,000 Canaries).
        keeper = asyncio.create_task(keep_heap(freeze_every=SANDBOX_FREEZE_EVERY))
        sandbox = await Sandbox.start(
            port=port, speed=4.0, audit_path=audit, ready_delay=1.0, history_size=200_000
        )
        for crd in sorted((ROOT / "crds").glob("*.yaml")):
            await sandbox.apply_file(crd)
        sandbox.write_kubeconfig(kubeconfig, user="admin")
        sandbox.write_kubeconfig(
            kubeconfig.with_name("controller.kubeconfig"), user=CONTROLLER_USER
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        print("ready", flush=True)
        await stop.wait()
        await sandbox.stop()
        keeper.cancel()

    asyncio.run(main())


# -- measuring a process ------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_SECOND


def memory_mib(pid: int) -> tuple[float, float]:
    """(RSS, peak RSS) in MiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def scrape(port: int) -> str:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return str(response.read().decode())


def passes(metrics: str) -> int:
    return int(
        sum(
            float(m)
            for m in re.findall(
                r"^canary_engine_canary_duration_seconds_count\{.*\} (\S+)$", metrics, re.M
            )
        )
    )


def canaries_passed(metrics: str) -> int:
    """How many Canaries have had a pass since the controller started (one series each)."""
    return len(re.findall(r"^canary_engine_canary_duration_seconds_count\{", metrics, re.M))


def lateness_buckets(metrics: str) -> dict[float, float]:
    found = {}
    for bound, count in re.findall(
        r'^canary_engine_tick_lateness_seconds_bucket\{le="([^"]+)"\} (\S+)$', metrics, re.M
    ):
        found[float("inf") if bound == "+Inf" else float(bound)] = float(count)
    return found


def full_gc(before: str, after: str) -> str:
    """The controller's full (generation 2) garbage collections in the window: how many, and
    the upper bound of the bucket of the longest."""

    def buckets(text: str) -> dict[float, float]:
        return {
            float("inf") if b == "+Inf" else float(b): float(c)
            for b, c in re.findall(
                r'^canary_engine_gc_pause_seconds_bucket\{generation="2",le="([^"]+)"\} (\S+)$',
                text,
                re.M,
            )
        }

    start, end = buckets(before), buckets(after)
    counts = sorted((b, end[b] - start.get(b, 0.0)) for b in end)
    if not counts or counts[-1][1] <= 0:
        return "none"
    longest = next(b for b, c in counts if c >= counts[-1][1])
    return f"{counts[-1][1]:.0f}, longest ≤ {longest:g} s"


def quantile(before: dict[float, float], after: dict[float, float], q: float) -> str:
    """The upper bound of the histogram bucket that holds quantile ``q`` of the window."""
    counts = sorted((bound, after.get(bound, 0.0) - before.get(bound, 0.0)) for bound in after)
    total = counts[-1][1] if counts else 0.0
    if total <= 0:
        return "-"
    for bound, count in counts:
        if count >= q * total:
            return f"<= {bound:g} s" if bound != float("inf") else "> 60 s"
    return "-"


def audit_since(path: Path, offset: int) -> tuple[list[dict[str, Any]], int]:
    with path.open("rb") as fh:
        fh.seek(offset)
        data = fh.read()
    lines = data.decode("utf-8", "replace").splitlines()
    return [json.loads(line) for line in lines if line.strip()], offset + len(data)


def gap_lateness(
    entries: Sequence[dict[str, Any]], interval_s: float, names: set[str]
) -> tuple[float, float] | None:
    """Lateness seen from the API server: for each progressing canary, the gaps between its
    consecutive status writes minus the interval (p50, p99), independent of the controller's
    own metric."""
    times: dict[str, list[float]] = {}
    for e in entries:
        if e["resource"] == "canaries" and e["subresource"] == "status" and e["verb"] == "patch":
            if e["name"] in names and e["user"] == CONTROLLER_USER:
                times.setdefault(e["name"], []).append(parse_time(e["time"]))
    late = sorted(
        max(0.0, b - a - interval_s)
        for series in times.values()
        for a, b in itertools.pairwise(series)
    )
    if not late:
        return None
    return late[len(late) // 2], late[min(len(late) - 1, int(0.99 * len(late)))]


def parse_time(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def seconds(duration: str) -> float:
    from canary.model.duration import parse_duration

    return parse_duration(duration)


# -- one case ----------------------------------------------------------------------------------


@dataclass
class Case:
    progressing: int  # canaries whose analysis never ends: every pass steps and writes
    registered: int  # idle canaries (Succeeded, nothing new)
    window: float
    qps: float = 400.0  # the controller's --kube-api-qps (its default of 100 caps ~45 passes/s)
    progressing_interval: str = "10s"
    registered_interval: str = "1m"
    profile: Path | None = None  # run the controller under cProfile, writing here
    max_concurrent: int | None = None  # the controller's --max-concurrent-passes (its default)
    pin: bool = False  # the sandbox on the first CPU, the controller on the others
    release: bool = True  # measure a new revision's time to Succeeded (minutes at 1m)

    @property
    def canaries(self) -> int:
        return self.progressing + self.registered

    @property
    def title(self) -> str:
        parts = []
        if self.progressing:
            parts.append(f"{self.progressing} progressing at {self.progressing_interval}")
        if self.registered:
            parts.append(f"{self.registered} registered at {self.registered_interval}")
        return " + ".join(parts)


@dataclass
class Row:
    case: Case
    first_tick_s: float = 0.0
    startup_s: float = 0.0
    cpu_per_wall: float = 0.0
    sandbox_cpu_per_wall: float = 0.0  # the API server and its simulator, on the same cores
    cpu_ms_per_pass: float = 0.0
    rss_mib: float = 0.0
    peak_mib: float = 0.0
    passes: int = 0
    calls_per_pass: dict[str, float] = field(default_factory=dict)
    lateness_p50: str = "-"
    lateness_p99: str = "-"
    gap_lateness_p50: float | None = None  # from the audit log: gaps between status writes
    gap_lateness_p99: float | None = None
    release_s: float | None = None
    full_gc: str = "-"  # the controller's full garbage collections in the window
    sandbox_stalls: str = "-"  # the sandbox's long collections in the window
    api_silence_s: float | None = None  # the longest time without a request in the window
    restart_first_tick_s: float | None = None  # a new controller over the initialized canaries
    restart_peak_mib: float | None = None


def manifests(i: int, interval: str, iterations: int) -> tuple[dict[str, Any], dict[str, Any]]:
    name = f"app-{i:05d}"
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": f"ns-{i // 100:03d}", "labels": {"app": name}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "podinfo:1.0.0"}]},
            },
        },
    }
    canary = {
        "apiVersion": API,
        "kind": "Canary",
        "metadata": {"name": name, "namespace": f"ns-{i // 100:03d}"},
        "spec": {
            "provider": "kubernetes",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "service": {"port": 9898},
            "progressDeadlineSeconds": 3600,
            "analysis": {"interval": interval, "threshold": 5, "iterations": iterations},
        },
    }
    return deployment, canary


async def gather_limited(coros: Sequence[Any], limit: int = 16) -> None:
    gate = asyncio.Semaphore(limit)

    async def one(coro: Any) -> None:
        async with gate:
            await coro

    await asyncio.gather(*(one(c) for c in coros))


async def phases(kube: Any, count: int) -> Counter[str]:
    items = await kube.list(API, "Canary")
    return Counter(str((c.get("status") or {}).get("phase") or "") for c in items[:count])


async def start_controller(case: Case, work: Path, kubeconfig: Path, port: int) -> Any:
    argv = [
        CANARY,
        "run",
        "--kubeconfig",
        str(kubeconfig.with_name("controller.kubeconfig")),
        "--listen",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        "--git-cache",
        str(work / "git"),
        "--kube-api-qps",
        str(case.qps),
        "--kube-api-burst",
        str(int(case.qps * 2)),
    ]
    if case.max_concurrent is not None:
        argv += ["--max-concurrent-passes", str(case.max_concurrent)]
    if case.profile is not None:
        argv = [sys.executable, "-m", "cProfile", "-o", str(case.profile), *argv]
    process = await asyncio.to_thread(
        subprocess.Popen,
        argv,
        stdout=(work / "controller.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    if case.pin:
        os.sched_setaffinity(process.pid, CONTROLLER_CPUS)
    return process


def check_alive(controller: Any, work: Path) -> None:
    """Stop the case at once, saying how, when the controller process has ended."""
    code = controller.poll()
    if code is not None:
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        raise RuntimeError(f"the controller ended ({how}); its log: {work / 'controller.log'}")


async def wait_for(
    kube: Any, count: int, done: Any, what: str, controller: Any = None, work: Path = Path()
) -> None:
    started = time.monotonic()
    while True:
        if controller is not None:
            check_alive(controller, work)
        found = await phases(kube, count)
        if done(found):
            return
        if time.monotonic() - started > 1800:
            raise RuntimeError(f"{what} did not finish: {dict(found)}")
        await asyncio.sleep(2)  # polling the cluster for a benchmark's phase change


def new_image(deployment: dict[str, Any], image: str) -> tuple[Any, ...]:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}}
    meta = deployment["metadata"]
    return ("apps/v1", "Deployment", meta["name"], meta["namespace"], patch)


async def run_case(case: Case, work: Path) -> Row:
    from canary.adapters.kube import connect

    row = Row(case)
    port = free_port()
    kubeconfig, audit = work / "admin.kubeconfig", work / "audit.jsonl"
    sandbox = await asyncio.to_thread(
        subprocess.Popen,
        [sys.executable, "-m", "bench.scale", "--serve", str(port), str(kubeconfig), str(audit)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    if case.pin:
        os.sched_setaffinity(sandbox.pid, SANDBOX_CPUS)
    controller: subprocess.Popen[bytes] | None = None
    try:
        assert sandbox.stdout is not None
        assert (await asyncio.to_thread(sandbox.stdout.readline)).strip() == "ready"
        kube = await connect(str(kubeconfig), qps=None)
        namespaces = sorted({f"ns-{i // 100:03d}" for i in range(case.canaries)})
        await gather_limited(
            [
                kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
                for ns in namespaces
            ]
        )
        moving = [manifests(i, case.progressing_interval, 100_000) for i in range(case.progressing)]
        idle = [
            manifests(i, case.registered_interval, 1)
            for i in range(case.progressing, case.canaries)
        ]
        objects = moving + idle
        await gather_limited([kube.create(d) for d, _ in objects])
        await gather_limited([kube.create(c) for _, c in objects])
        metrics_port = free_port()
        controller = await start_controller(case, work, kubeconfig, metrics_port)
        started = time.monotonic()
        await wait_for(
            kube,
            case.canaries,
            lambda found: found.get("", 0) == 0,
            "first ticks",
            controller,
            work,
        )
        row.first_tick_s = time.monotonic() - started
        await wait_for(
            kube,
            case.canaries,
            lambda found: found.get("Initialized", 0) + found.get("Succeeded", 0) >= case.canaries,
            "startup",
            controller,
            work,
        )
        row.startup_s = time.monotonic() - started
        if moving:
            await gather_limited(
                [
                    kube.patch(*new_image(d, "podinfo:1.1.0"), patch_type="strategic")
                    for d, _ in moving
                ]
            )
            await wait_for(
                kube,
                case.canaries,
                lambda found: found.get("Progressing", 0) >= case.progressing,
                "the release of the progressing canaries",
                controller,
                work,
            )
        # The steady window.
        await asyncio.sleep(min(10.0, case.window / 4))  # the last changes settle first
        _, offset = audit_since(audit, 0)
        window_start = time.time()
        before_metrics = scrape(metrics_port)
        cpu_before, wall_before = cpu_seconds(controller.pid), time.monotonic()
        sandbox_before = cpu_seconds(sandbox.pid)
        rss_samples = []
        end = time.monotonic() + case.window
        while time.monotonic() < end:
            check_alive(controller, work)
            rss_samples.append(memory_mib(controller.pid)[0])
            await asyncio.sleep(1)
        cpu_after, wall_after = cpu_seconds(controller.pid), time.monotonic()
        after_metrics = scrape(metrics_port)
        entries, _ = audit_since(audit, offset)
        row.passes = passes(after_metrics) - passes(before_metrics)
        row.cpu_per_wall = (cpu_after - cpu_before) / (wall_after - wall_before)
        row.sandbox_cpu_per_wall = (cpu_seconds(sandbox.pid) - sandbox_before) / (
            wall_after - wall_before
        )
        row.cpu_ms_per_pass = 1000 * (cpu_after - cpu_before) / max(1, row.passes)
        row.rss_mib = max(rss_samples) if rss_samples else 0.0
        row.peak_mib = memory_mib(controller.pid)[1]
        calls = Counter(
            f"{e['verb']} {e['resource']}{'/' + e['subresource'] if e['subresource'] else ''}"
            for e in entries
            if e["user"] == CONTROLLER_USER and e["verb"] != "watch"
        )
        row.calls_per_pass = {k: v / max(1, row.passes) for k, v in calls.most_common()}
        buckets_before, buckets_after = (
            lateness_buckets(before_metrics),
            lateness_buckets(after_metrics),
        )
        row.full_gc = full_gc(before_metrics, after_metrics)
        row.sandbox_stalls = sandbox_stalls(audit, window_start, time.time())
        row.api_silence_s = longest_silence(entries)
        row.lateness_p50 = quantile(buckets_before, buckets_after, 0.5)
        row.lateness_p99 = quantile(buckets_before, buckets_after, 0.99)
        gaps = gap_lateness(
            entries, seconds(case.progressing_interval), {c["metadata"]["name"] for _, c in moving}
        )
        if gaps is not None:
            row.gap_lateness_p50, row.gap_lateness_p99 = gaps
        if idle and case.release:
            row.release_s = await release_one(kube, idle[0][1])
        controller.send_signal(signal.SIGTERM)
        await asyncio.to_thread(controller.wait, 60)
        controller = None
        metrics_port = free_port()
        controller = await start_controller(case, work, kubeconfig, metrics_port)
        row.restart_first_tick_s, row.restart_peak_mib = await restart(
            controller, metrics_port, case.canaries, work
        )
        await kube.aclose()
    finally:
        for proc in (controller, sandbox):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
    return row


async def restart(controller: Any, port: int, count: int, work: Path) -> tuple[float, float]:
    """Seconds from a new controller's start until each of ``count`` initialized Canaries had
    its first pass (from its pass metric: scraping a large registry costs the controller
    CPU, so it is read every few seconds), and the process's peak RSS by then."""
    started = time.monotonic()
    while time.monotonic() - started < 1800:
        check_alive(controller, work)
        try:
            seen = canaries_passed(await asyncio.to_thread(scrape, port))
        except OSError:
            seen = 0  # not listening yet
        if seen >= count:
            return time.monotonic() - started, memory_mib(controller.pid)[1]
        await asyncio.sleep(5)  # polling the controller's metrics for a benchmark figure
    raise TimeoutError(f"the restarted controller's passes did not reach {count} Canaries")


async def release_one(kube: Any, canary: dict[str, Any]) -> float | None:
    """Seconds from a new image on one idle canary's target to its Succeeded."""
    name, ns = canary["metadata"]["name"], canary["metadata"]["namespace"]
    target = {"metadata": {"name": name, "namespace": ns}}
    await kube.patch(*new_image(target, "podinfo:2.0.0"), patch_type="strategic")
    release = time.monotonic()
    left_succeeded = False
    while time.monotonic() - release < 900:
        obj = await kube.get(API, "Canary", name, ns)
        phase = ((obj or {}).get("status") or {}).get("phase")
        left_succeeded = left_succeeded or phase != "Succeeded"
        if left_succeeded and phase == "Succeeded":
            return time.monotonic() - release
        await asyncio.sleep(1)  # polling the cluster for a benchmark's phase change
    return None


SWEEP = (
    Case(progressing=10, registered=0, window=60),
    Case(progressing=100, registered=0, window=60),
    Case(progressing=1000, registered=0, window=90),
    Case(progressing=0, registered=1000, window=120),
    Case(progressing=0, registered=10_000, window=180),
    Case(progressing=1000, registered=10_000, window=120),
)


def print_row(row: Row) -> None:
    case = row.case
    calls = ", ".join(f"{v:.2f} {k}" for k, v in row.calls_per_pass.items()) or "none"
    release = f"{row.release_s:.0f} s" if row.release_s is not None else "-"
    gaps = (
        f"{row.gap_lateness_p50:.2f} / {row.gap_lateness_p99:.2f} s"
        if row.gap_lateness_p50 is not None and row.gap_lateness_p99 is not None
        else "-"
    )
    stalls = row.sandbox_stalls + (
        f"; silent {row.api_silence_s:.1f} s" if row.api_silence_s is not None else ""
    )
    restarted = (
        f"{row.restart_first_tick_s:.0f} s, {row.restart_peak_mib:.0f} MiB"
        if row.restart_first_tick_s is not None and row.restart_peak_mib is not None
        else "-"
    )
    print(
        f"| {case.title} | {row.first_tick_s:.0f} s / {row.startup_s:.0f} s | {restarted} | "
        f"{row.cpu_per_wall:.2f} ({row.sandbox_cpu_per_wall:.2f}) | {row.cpu_ms_per_pass:.1f} | {row.rss_mib:.0f} / {row.peak_mib:.0f} MiB | "
        f"{row.passes} | {calls} | {row.lateness_p50} / {row.lateness_p99} | {gaps} | "
        f"{row.full_gc} | {stalls} | {release} |",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--serve", nargs=3, metavar=("PORT", "KUBECONFIG", "AUDIT"), help=argparse.SUPPRESS
    )
    parser.add_argument("--progressing", type=int, default=0, help="this many progressing canaries")
    parser.add_argument("--registered", type=int, default=0, help="this many idle canaries")
    parser.add_argument("--window", type=float, default=60.0, help="seconds of steady measurement")
    parser.add_argument("--qps", type=float, default=400.0, help="the controller's --kube-api-qps")
    parser.add_argument("--interval", default="1m", help="the registered canaries' interval")
    parser.add_argument(
        "--profile", type=Path, help="run the controller under cProfile, into this file"
    )
    parser.add_argument(
        "--max-concurrent-passes",
        type=int,
        help="the controller's --max-concurrent-passes (default: the controller's own)",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="the sandbox on the first CPU, the controller on the others (as a cluster would)",
    )
    parser.add_argument(
        "--no-release", action="store_true", help="skip the new revision's time to Succeeded"
    )
    args = parser.parse_args(argv)
    if args.serve:
        serve(int(args.serve[0]), Path(args.serve[1]), Path(args.serve[2]))
        return 0
    if args.progressing or args.registered:
        cases: Sequence[Case] = (
            Case(
                args.progressing,
                args.registered,
                args.window,
                args.qps,
                registered_interval=args.interval,
                profile=args.profile,
                max_concurrent=args.max_concurrent_passes,
                pin=args.pin,
                release=not args.no_release,
            ),
        )
    else:
        cases = [dataclasses.replace(case, pin=args.pin) for case in SWEEP]
    where = (
        f"the sandbox on CPU {sorted(SANDBOX_CPUS)}, the controller on CPUs {sorted(CONTROLLER_CPUS)}"
        if args.pin
        else "controller and sandbox share them"
    )
    print(f"machine: {os.cpu_count()} CPUs; {where}")
    print(
        "| case | first tick / initialized | restart: every first tick, peak RSS | CPU s per s (sandbox's) | CPU ms per pass | RSS / peak | passes | "
        "API requests per pass | lateness p50 / p99 (metric) | lateness p50 / p99 (audit gaps) | "
        "full GCs in the window | the sandbox's collections ≥ 0.1 s; its longest silence | "
        "new revision to Succeeded |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|---|---|---|---|---:|")
    for case in cases:
        work = Path(tempfile.mkdtemp(prefix="canary-scale-"))
        try:
            print_row(asyncio.run(run_case(case, work)))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
