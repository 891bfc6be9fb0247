"""The graphite provider against Debian's real graphite-web, fed by a real carbon-cache.

Both run on loopback from a temporary directory: carbon-cache (``graphite-carbon``) takes
datapoints over its plaintext protocol on a free port and keeps them at 1 s resolution;
graphite-web (``graphite-web``, Django under wsgiref) reads the whisper files and asks
carbon-cache over carbonlink for the points not yet flushed. This proves against the real
render API what the stand-in in tests/vendors/graphite.py only follows from its
documentation: the JSON shape, the trailing null of the bucket still filling, ``now=``
moving the window, and graphite-web's time units (``from=-1m`` is its HTTP 400).

Skipped when the Debian packages are missing: ``apt-get install -y --no-install-recommends
graphite-web graphite-carbon``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from analysis import (
    BadQueryError,
    MetricCheck,
    MultipleSeriesError,
    NoDataError,
    Outcome,
    ProviderConfig,
    QueryContext,
    evaluate,
    metric_check_from_spec,
)
from analysis._graphite import MINUTES_HINT, GraphiteProvider
from tests.prometheus_fixtures import LOOPBACK, free_port, wait_until
from tests.vendors.graphite import GraphiteServer

pytestmark = pytest.mark.slow

INSTALL_HINT = "apt-get install -y --no-install-recommends graphite-web graphite-carbon"
CARBON = Path("/usr/bin/carbon-cache")
SYSTEM_PYTHON = Path("/usr/bin/python3")
CTX = QueryContext(name="podinfo", namespace="test", target="podinfo", provider="kubernetes")
APP = "stats.timers.httpServerRequests.app.test.podinfo.exception.none.method.GET"
OK = f"{APP}.outcome.SUCCESS.status.200.uri.root.count"
ERRORS = f"{APP}.outcome.SERVER_ERROR.status.500.uri.root.count"


def _graphite_web_installed() -> bool:
    """carbon-cache and Debian's Python with graphite-web, Django and whisper."""
    if not (CARBON.exists() and SYSTEM_PYTHON.exists()):
        return False
    probe = [str(SYSTEM_PYTHON), "-c", "import carbon, django, graphite.render, whisper"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


if not _graphite_web_installed():
    pytest.skip(
        f"Debian's graphite-web and graphite-carbon are not installed ({INSTALL_HINT})",
        allow_module_level=True,
    )

_RUNNER = """
import os, sys
from wsgiref.simple_server import WSGIRequestHandler, make_server
os.environ["DJANGO_SETTINGS_MODULE"] = "graphite.settings"
os.environ["GRAPHITE_SETTINGS_MODULE"] = "canary_test_settings"
from graphite.wsgi import application

class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass

make_server("127.0.0.1", int(sys.argv[1]), application, handler_class=Quiet).serve_forever()
"""


@dataclass
class Graphite:
    """A carbon-cache and a graphite-web process sharing one temporary storage."""

    web_port: int
    line_port: int
    procs: list[subprocess.Popen[bytes]]

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.web_port}"

    def send(self, *lines: tuple[str, float, float]) -> None:
        """Datapoints ``(metric, value, unix s)`` over carbon's plaintext protocol."""
        text = "".join(f"{metric} {value} {int(ts)}\n" for metric, value, ts in lines)
        with socket.create_connection((LOOPBACK, self.line_port), timeout=5) as conn:
            conn.sendall(text.encode())

    def render(self, target: str, since: str = "-60s") -> Any:
        params = {"target": target, "from": since, "format": "json"}
        return httpx.get(f"{self.url}/render", params=params, timeout=5).json()

    def provider(self) -> GraphiteProvider:
        return GraphiteProvider(ProviderConfig(type="graphite", address=self.url))


def _accepts(port: int) -> bool:
    with socket.create_connection((LOOPBACK, port), timeout=1):
        return True


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def graphite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Graphite]:
    root = tmp_path_factory.mktemp("graphite")
    storage, conf, web = root / "storage", root / "conf", root / "web"
    for d in (storage / "whisper", storage / "log" / "webapp", conf, root / "log", web):
        d.mkdir(parents=True, exist_ok=True)
    line_port, pickle_port, query_port, web_port = (free_port() for _ in range(4))
    (conf / "carbon.conf").write_text(
        textwrap.dedent(f"""\
        [cache]
        STORAGE_DIR = {storage}/
        LOCAL_DATA_DIR = {storage}/whisper/
        CONF_DIR = {conf}/
        LOG_DIR = {root}/log/
        PID_DIR = {root}/
        DATABASE = whisper
        MAX_CACHE_SIZE = inf
        MAX_UPDATES_PER_SECOND = inf
        MAX_CREATES_PER_MINUTE = inf
        LINE_RECEIVER_INTERFACE = {LOOPBACK}
        LINE_RECEIVER_PORT = {line_port}
        ENABLE_UDP_LISTENER = False
        PICKLE_RECEIVER_INTERFACE = {LOOPBACK}
        PICKLE_RECEIVER_PORT = {pickle_port}
        CACHE_QUERY_INTERFACE = {LOOPBACK}
        CACHE_QUERY_PORT = {query_port}
        """)
    )
    (conf / "storage-schemas.conf").write_text("[all]\npattern = .*\nretentions = 1s:2h\n")
    (web / "canary_test_settings.py").write_text(
        textwrap.dedent(f"""\
        SECRET_KEY = "test-only"
        TIME_ZONE = "UTC"
        STORAGE_DIR = "{storage}/"
        WHISPER_DIR = "{storage}/whisper/"
        LOG_DIR = "{storage}/log/webapp/"
        CARBONLINK_HOSTS = ["{LOOPBACK}:{query_port}"]
        DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3",
                                   "NAME": "{storage}/graphite.db"}}}}
        """)
    )
    (web / "run.py").write_text(_RUNNER)
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(web), "HOME": str(root)}
    carbon_log = (root / "carbon.out").open("wb")
    web_log = (root / "web.out").open("wb")
    procs = [
        subprocess.Popen(
            [str(SYSTEM_PYTHON), str(CARBON), f"--config={conf}/carbon.conf", "--debug", "start"],
            stdout=carbon_log, stderr=subprocess.STDOUT, env=env, cwd=root,
        ),
        subprocess.Popen(
            [str(SYSTEM_PYTHON), str(web / "run.py"), str(web_port)],
            stdout=web_log, stderr=subprocess.STDOUT, env=env, cwd=web,
        ),
    ]  # fmt: skip
    server = Graphite(web_port=web_port, line_port=line_port, procs=procs)
    try:
        wait_until(lambda: _accepts(line_port), timeout=30, what="carbon-cache's line receiver")
        wait_until(
            lambda: server.render("nothing.here") == [], timeout=60, what="graphite-web's /render"
        )
    except BaseException:
        for proc in procs:
            _stop(proc)
        print((root / "carbon.out").read_text(), (root / "web.out").read_text())
        raise
    try:
        yield server
    finally:
        for proc in procs:
            _stop(proc)
        carbon_log.close()
        web_log.close()
        shutil.rmtree(root, ignore_errors=True)


def written(graphite: Graphite, target: str, value: float) -> None:
    """Wait until graphite-web's render shows ``value`` for ``target`` (via carbonlink)."""

    def shown() -> bool:
        series = graphite.render(target)
        return any(p[0] == value for s in series for p in s["datapoints"])

    wait_until(shown, timeout=30, what=f"{target}={value} in graphite-web")


@pytest.fixture(scope="module")
def traffic(graphite: Graphite) -> float:
    """97 ok and 3 failed requests a second over the last few seconds; returns the last second."""
    now = float(int(time.time()))
    points = []
    for ago in (6, 5, 4, 3, 2):
        points += [(OK, 97.0, now - ago), (ERRORS, 3.0, now - ago)]
    graphite.send(*points)
    written(graphite, OK, 97.0)
    written(graphite, ERRORS, 3.0)
    return now - 2


class TestFlaggersTemplate:
    def check(self, interval: str, **threshold: float) -> MetricCheck:
        return metric_check_from_spec(
            {"name": "success-rate", "interval": interval, "thresholdRange": threshold},
            path="spec.analysis.metrics[0]",
            template_query=GraphiteServer().query(CTX.target, CTX.namespace),
        )

    async def test_success_rate_passes_and_fails_on_its_threshold(
        self, graphite: Graphite, traffic: float
    ) -> None:
        good = await evaluate(
            self.check("60s", min=95), CTX, graphite.provider(), now=datetime.now(UTC)
        )
        assert good.outcome is Outcome.PASS and good.value == pytest.approx(97.0)
        bad = await evaluate(
            self.check("60s", min=99), CTX, graphite.provider(), now=datetime.now(UTC)
        )
        assert bad.outcome is Outcome.FAIL and bad.value == pytest.approx(97.0)

    @pytest.mark.parametrize("interval", ["1m", "1min"])
    async def test_a_minute_interval_reaches_graphite_web_in_seconds(
        self, graphite: Graphite, traffic: float, interval: str
    ) -> None:
        verdict = await evaluate(
            self.check(interval, min=95), CTX, graphite.provider(), now=datetime.now(UTC)
        )
        assert verdict.outcome is Outcome.PASS and verdict.value == pytest.approx(97.0)

    async def test_a_literal_minute_unit_is_refused_by_graphite_web_with_a_hint(
        self, graphite: Graphite, traffic: float
    ) -> None:
        with pytest.raises(BadQueryError) as info:
            await graphite.provider().run_query(f"target=sumSeries({OK})&from=-1m")
        assert "Invalid offset unit 'm'" in str(info.value) and MINUTES_HINT in str(info.value)

    async def test_minutes_written_as_min_work(self, graphite: Graphite, traffic: float) -> None:
        query = f"target=summarize(sumSeries({OK}), '1min', 'sum')&from=-1min"
        assert await graphite.provider().run_query(query) >= 97.0


class TestPoints:
    async def test_last_non_null_point_despite_trailing_nulls(self, graphite: Graphite) -> None:
        metric = "canary.test.points"
        now = float(int(time.time()))
        graphite.send((metric, 1.0, now - 4), (metric, 2.0, now - 3))
        written(graphite, metric, 2.0)
        series = graphite.render(metric)
        assert series[0]["datapoints"][-1][0] is None  # the bucket still filling
        assert await graphite.provider().run_query(f"target={metric}&from=-60s") == 2.0

    async def test_now_moves_the_window_before_the_points(
        self, graphite: Graphite, traffic: float
    ) -> None:
        query = f"target={OK}&from=-60s"
        assert await graphite.provider().run_query(query) == 97.0
        an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
        with pytest.raises(NoDataError, match="only null datapoints"):
            await graphite.provider().run_query(query, at=an_hour_ago)

    async def test_a_wildcard_of_two_series_is_an_error_and_sum_series_is_one(
        self, graphite: Graphite, traffic: float
    ) -> None:
        wildcard = f"{APP}.outcome.*.status.*.uri.root.count"
        with pytest.raises(MultipleSeriesError, match="returned 2 series") as info:
            await graphite.provider().run_query(f"target={wildcard}&from=-60s")
        assert info.value.series == 2
        assert await graphite.provider().run_query(f"target=sumSeries({wildcard})&from=-60s") == 100

    async def test_an_unknown_metric_is_no_data(self, graphite: Graphite) -> None:
        with pytest.raises(NoDataError, match="no series"):
            await graphite.provider().run_query("target=no.such.metric&from=-60s")

    async def test_an_unknown_function_is_graphites_400(self, graphite: Graphite) -> None:
        with pytest.raises(BadQueryError, match="unknown function: nosuchFunction"):
            await graphite.provider().run_query("target=nosuchFunction(a.b)&from=-60s")

    async def test_is_online(self, graphite: Graphite) -> None:
        assert await graphite.provider().is_online() is True
