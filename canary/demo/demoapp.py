"""A tiny HTTP service with a known error rate and latency, exporting mesh-shaped metrics.

It exists so tests, demos and benchmarks can run a *real* process per version
(canary, primary) and a real Prometheus can scrape it: the builtin queries of
every supported provider then read numbers whose true values are known.

``/`` answers 500 with probability ``--error-rate`` after a log-normal delay
(median ``--latency-ms``, shape ``--latency-sigma``); ``/metrics`` exports the
HTTP observer's ``http_request_duration_seconds`` histogram (``status`` label;
pod and namespace come from the scrape config's target labels) and stand-ins
for Istio, Linkerd and NGINX ingress metrics with their real label names.
``--self-load RPS`` generates Poisson-distributed synthetic requests inside the
process (recorded as if served, without waiting), so metrics flow without any
traffic generator; ``--retries N`` makes that load's client retry a failed request
``N`` times at once, every retry failing too, so errors come in clusters of ``N + 1``
as behind a retrying client or mesh.  ``POST /admin/config`` changes ``errorRate``,
``latencyMs``, ``latencySigma``, ``selfLoad`` and ``retries`` at runtime.  Stdlib only;
it starts in well under a second and exits cleanly on SIGTERM.

Example::

    python -m canary.demo.demoapp --port 9101 --version v2 --error-rate 0.05 \\
        --latency-ms 20 --namespace test --workload podinfo --self-load 50

The file is self-contained (stdlib only, nothing else from ``canary``), so
``python canary/demo/demoapp.py ...`` works too and skips importing the
``kubesandbox`` package.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

SECONDS_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.0125, 0.015, 0.0175, 0.02, 0.025, 0.03, 0.035,
    0.04, 0.05, 0.06, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5,
    2.0, 2.5, 5.0, 10.0,
)  # fmt: skip
MS_BUCKETS: tuple[float, ...] = tuple(round(b * 1000, 3) for b in SECONDS_BUCKETS)

# The layouts the real proxies ship with (``--mesh-buckets default``): coarse, so a
# p99 often lies far from any boundary, which is what the latency judge must handle.
ISTIO_MS_BUCKETS: tuple[float, ...] = (
    0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000,
    600000, 1800000, 3600000,
)  # fmt: skip
LINKERD_MS_BUCKETS: tuple[float, ...] = (
    1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500, 1000, 2000, 3000, 4000,
    5000, 10000, 20000, 30000, 40000, 50000,
)  # fmt: skip
NGINX_SECONDS_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
)  # fmt: skip


@dataclass
class Config:
    """Mutable knobs of the running app (guarded by the app's lock)."""

    error_rate: float
    latency_ms: float
    latency_sigma: float
    self_load: float
    retries: float = 0.0


def _fmt(x: float) -> str:
    if math.isinf(x):
        return "+Inf"
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


def _labels(pairs: Sequence[tuple[str, str]]) -> str:
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in pairs) + "}"


class _Histogram:
    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        for i, b in enumerate(self.bounds):
            if value <= b:
                self.counts[i] += 1
                break
        else:
            self.counts[-1] += 1
        self.total += value

    def lines(self, name: str, labels: Sequence[tuple[str, str]]) -> list[str]:
        out = []
        running = 0
        for b, c in zip((*self.bounds, math.inf), self.counts, strict=True):
            running += c
            out.append(f"{name}_bucket{_labels([*labels, ('le', _fmt(b))])} {running}")
        out.append(f"{name}_sum{_labels(labels)} {_fmt(self.total)}")
        out.append(f"{name}_count{_labels(labels)} {running}")
        return out


class AppMetrics:
    """Counters and histograms in the shapes the builtin queries read; thread-safe."""

    def __init__(
        self,
        namespace: str,
        workload: str,
        ingress: str,
        version: str,
        *,
        real_buckets: bool = False,
    ) -> None:
        self.namespace = namespace
        self.workload = workload
        self.ingress = ingress
        self.version = version
        self._lock = threading.Lock()
        self._http: dict[str, _Histogram] = {}
        self._istio_total: dict[str, int] = {}
        self._istio_hist = _Histogram(ISTIO_MS_BUCKETS if real_buckets else MS_BUCKETS)
        self._linkerd_total: dict[str, int] = {}
        self._linkerd_hist = _Histogram(LINKERD_MS_BUCKETS if real_buckets else MS_BUCKETS)
        self._nginx_buckets = NGINX_SECONDS_BUCKETS if real_buckets else SECONDS_BUCKETS
        self._nginx_total: dict[tuple[str, str], int] = {}
        self._nginx_hist: dict[str, _Histogram] = {}
        self.requests = 0

    def record(self, status: int, seconds: float, *, canary_ingress: bool) -> None:
        code = str(status)
        ms = seconds * 1000.0
        canary = f"{self.namespace}-{self.ingress}-canary-80" if canary_ingress else ""
        with self._lock:
            self.requests += 1
            self._http.setdefault(code, _Histogram(SECONDS_BUCKETS)).observe(seconds)
            self._istio_total[code] = self._istio_total.get(code, 0) + 1
            self._istio_hist.observe(ms)
            cls = "failure" if status >= 500 else "success"
            self._linkerd_total[cls] = self._linkerd_total.get(cls, 0) + 1
            self._linkerd_hist.observe(ms)
            key = (canary, code)
            self._nginx_total[key] = self._nginx_total.get(key, 0) + 1
            self._nginx_hist.setdefault(canary, _Histogram(self._nginx_buckets)).observe(seconds)

    def exposition(self) -> str:
        ns, wl = self.namespace, self.workload
        lines: list[str] = []
        with self._lock:
            lines.append("# TYPE demoapp_info gauge")
            lines.append(f"demoapp_info{_labels([('version', self.version)])} 1")
            lines.append("# TYPE http_request_duration_seconds histogram")
            for code, h in sorted(self._http.items()):
                lines += h.lines("http_request_duration_seconds", [("status", code)])
            istio = [
                ("reporter", "destination"),
                ("destination_workload", wl),
                ("destination_workload_namespace", ns),
            ]
            lines.append("# TYPE istio_requests_total counter")
            for code, n in sorted(self._istio_total.items()):
                lines.append(
                    f"istio_requests_total{_labels([*istio, ('response_code', code)])} {n}"
                )
            lines.append("# TYPE istio_request_duration_milliseconds histogram")
            lines += self._istio_hist.lines("istio_request_duration_milliseconds", istio)
            linkerd = [("deployment", wl), ("namespace", ns), ("direction", "inbound")]
            lines.append("# TYPE response_total counter")
            for cls, n in sorted(self._linkerd_total.items()):
                lines.append(f"response_total{_labels([*linkerd, ('classification', cls)])} {n}")
            lines.append("# TYPE response_latency_ms histogram")
            lines += self._linkerd_hist.lines("response_latency_ms", linkerd)
            nginx = [("namespace", ns), ("ingress", self.ingress)]
            lines.append("# TYPE nginx_ingress_controller_requests untyped")
            for (canary, code), n in sorted(self._nginx_total.items()):
                labels = [*nginx, ("canary", canary), ("status", code)]
                lines.append(f"nginx_ingress_controller_requests{_labels(labels)} {n}")
            for family in ("response_duration_seconds", "request_duration_seconds"):
                name = f"nginx_ingress_controller_{family}"
                lines.append(f"# TYPE {name} histogram")
                for canary, h in sorted(self._nginx_hist.items()):
                    lines += h.lines(name, [*nginx, ("canary", canary)])
        return "\n".join(lines) + "\n"


class DemoApp:
    """The service: configuration, metrics, request simulation and self-load."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.config = Config(
            error_rate=args.error_rate,
            latency_ms=args.latency_ms,
            latency_sigma=args.latency_sigma,
            self_load=args.self_load,
            retries=getattr(args, "retries", 0),
        )
        self.version = args.version
        self.canary_ingress = args.ingress_canary
        self.metrics = AppMetrics(
            args.namespace,
            args.workload,
            args.ingress or args.workload,
            args.version,
            real_buckets=getattr(args, "mesh_buckets", "fine") == "default",
        )
        self._rng = random.Random(args.seed)
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def sample(self) -> tuple[int, float]:
        """Draw one request's status and latency (seconds) from the current configuration."""
        with self._lock:
            cfg = self.config
            failed = self._rng.random() < cfg.error_rate
            seconds = (
                cfg.latency_ms / 1000.0 * math.exp(cfg.latency_sigma * self._rng.gauss(0.0, 1.0))
            )
        return (500 if failed else 200), seconds

    def update(self, changes: dict[str, Any]) -> dict[str, float]:
        fields = {
            "errorRate": ("error_rate", 0.0, 1.0),
            "latencyMs": ("latency_ms", 0.0, 60000.0),
            "latencySigma": ("latency_sigma", 0.0, 5.0),
            "selfLoad": ("self_load", 0.0, 100000.0),
            "retries": ("retries", 0.0, 100.0),
        }
        new: dict[str, float] = {}
        for key, value in changes.items():
            if key not in fields:
                raise ValueError(f"{key}: unknown field; expected one of {', '.join(fields)}")
            attr, lo, hi = fields[key]
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not lo <= value <= hi
            ):
                raise ValueError(f"{key}: expected a number in [{lo:g}, {hi:g}], got {value!r}")
            if key == "retries" and value != int(value):
                raise ValueError(f"{key}: expected a whole number, got {value!r}")
            new[attr] = float(value)
        with self._lock:
            for attr, value in new.items():
                setattr(self.config, attr, value)
        return self.snapshot()

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            c = self.config
            return {
                "errorRate": c.error_rate,
                "latencyMs": c.latency_ms,
                "latencySigma": c.latency_sigma,
                "selfLoad": c.self_load,
                "retries": c.retries,
            }

    def self_load_loop(self) -> None:
        """Poisson arrivals at ``selfLoad`` requests/s, recorded without waiting for latency."""
        tick = 0.02
        next_arrival = time.monotonic()
        while not self._stop.wait(tick):
            with self._lock:
                rate = self.config.self_load
            now = time.monotonic()
            if rate <= 0:
                next_arrival = now
                continue
            next_arrival = max(next_arrival, now - 1.0)  # do not replay a long pause
            while next_arrival <= now:
                self._self_request()
                with self._lock:
                    next_arrival += self._rng.expovariate(rate)

    def _self_request(self) -> None:
        """One synthetic request, and its client's retries if it failed (each fails too)."""
        status, seconds = self.sample()
        self.metrics.record(status, seconds, canary_ingress=self.canary_ingress)
        if status < 500:
            return
        with self._lock:
            retries = int(self.config.retries)
        for _ in range(retries):
            _, again = self.sample()
            self.metrics.record(500, again, canary_ingress=self.canary_ingress)

    def stop(self) -> None:
        self._stop.set()


def _handler(app: DemoApp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "demoapp"

        def log_message(self, format: str, *args: Any) -> None:
            return  # quiet: tests run many requests

        def _send(self, code: int, body: str, ctype: str = "text/plain; charset=utf-8") -> None:
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, app.metrics.exposition(), "text/plain; version=0.0.4")
            elif path in ("/healthz", "/readyz"):
                self._send(200, "ok\n")
            elif path == "/admin/config":
                self._send(200, json.dumps(app.snapshot()) + "\n", "application/json")
            elif path == "/":
                status, seconds = app.sample()
                time.sleep(seconds)
                header = self.headers.get("X-Canary")
                canary = (
                    app.canary_ingress
                    if header is None
                    else header.strip() in ("1", "true", "always")
                )
                app.metrics.record(status, seconds, canary_ingress=canary)
                body = json.dumps({"version": app.version, "status": status}) + "\n"
                self._send(status, body, "application/json")
            else:
                self._send(404, "not found\n")

        def do_POST(self) -> None:
            if self.path.split("?", 1)[0] != "/admin/config":
                self._send(404, "not found\n")
                return
            length = int(self.headers.get("Content-Length") or 0)
            try:
                payload = json.loads(self.rfile.read(length) or b"{}")
                if not isinstance(payload, dict):
                    raise ValueError("expected a JSON object")
                snapshot = app.update(payload)
            except ValueError as exc:
                self._send(400, json.dumps({"error": str(exc)}) + "\n", "application/json")
                return
            self._send(200, json.dumps(snapshot) + "\n", "application/json")

    return Handler


_N = TypeVar("_N", int, float)


def _number(text: str, cast: Callable[[str], _N], expected: str) -> _N:
    """``cast(text)``, or argparse's error saying what was expected (not argparse's own
    ``invalid _retries value``, which names a private function)."""
    try:
        return cast(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None


def _probability(text: str) -> float:
    value = _number(text, float, "a probability in [0, 1]")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a probability in [0, 1], got {text}")
    return value


def _non_negative(text: str) -> float:
    value = _number(text, float, "a number >= 0")
    if not value >= 0.0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def _retries(text: str) -> int:
    value = _number(text, int, "a whole number from 0 to 100")
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"expected a whole number from 0 to 100, got {text}")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m canary.demo.demoapp", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument(
        "--port", type=int, default=8080, help="port (0 picks a free one; printed at start)"
    )
    p.add_argument("--version", default="v1", help="version label served and exported")
    p.add_argument("--error-rate", type=_probability, default=0.0, help="probability of a 500")
    p.add_argument("--latency-ms", type=_non_negative, default=10.0, help="median latency in ms")
    p.add_argument("--latency-sigma", type=_non_negative, default=0.3, help="log-normal shape")
    p.add_argument("--namespace", default="default", help="namespace label of mesh metrics")
    p.add_argument(
        "--workload", default="podinfo", help="workload/deployment label (e.g. podinfo-primary)"
    )
    p.add_argument(
        "--ingress", default=None, help="ingress label of NGINX metrics (default: workload)"
    )
    p.add_argument(
        "--ingress-canary",
        action="store_true",
        help="count this process's traffic as the ingress's canary traffic (header X-Canary overrides)",
    )
    p.add_argument(
        "--self-load", type=_non_negative, default=0.0, help="synthetic requests per second"
    )
    p.add_argument(
        "--retries",
        type=_retries,
        default=0,
        help="the self-load's client retries a failed request this many times, each retry "
        "failing too (errors in clusters; 0-100, default 0)",
    )
    p.add_argument("--seed", type=int, default=None, help="random seed")
    p.add_argument(
        "--mesh-buckets",
        choices=("fine", "default"),
        default="fine",
        help="histogram buckets of the Istio, Linkerd and NGINX metrics: fine (the "
        "HTTP observer's, default) or default (each proxy's own, coarse, layout)",
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    app = DemoApp(args)
    server = ThreadingHTTPServer((args.host, args.port), _handler(app))
    server.daemon_threads = True
    stopping = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        # Only set a flag: starting a thread inside a signal handler can deadlock
        # when the signal lands while the server is itself starting a thread.
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    loader = threading.Thread(target=app.self_load_loop, name="self-load", daemon=True)
    loader.start()
    host, port = server.server_address[:2]
    print(f"demoapp {args.version} listening on http://{host!s}:{port}", flush=True)
    try:
        server.timeout = 0.1
        while not stopping.is_set():
            server.handle_request()  # returns after `timeout` when idle
    finally:
        app.stop()
        loader.join(timeout=1.0)
        server.server_close()
    print(f"demoapp {args.version} stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
