"""The demo app as a real process: start time, answers, metric shapes, runtime config, SIGTERM."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import httpx
import pytest

from canary.demo.demoapp import parse_args
from tests.prometheus_fixtures import DemoApp, start_demo_app, wait_until


def scrape(app: DemoApp) -> str:
    return httpx.get(f"{app.url}/metrics", timeout=5).text


def sample(text: str, name: str, default: float | None = None, **labels: str) -> float:
    """Value of the one sample of ``name`` whose labels include ``labels`` (``default`` when
    there is none, e.g. a status no request has had yet)."""
    total = None
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            assert total is None, f"several samples match {name} {labels}"
            total = float(line.rsplit(" ", 1)[1])
    if total is None:
        assert default is not None, f"no sample {name} {labels}"
        return default
    return total


class TestProcess:
    def test_starts_within_a_second_and_exits_cleanly_on_sigterm(self) -> None:
        started = time.monotonic()
        app = start_demo_app(workload="podinfo", pod="podinfo-a-b")
        assert time.monotonic() - started < 1.0 + 0.5  # includes the interpreter; generous on CI
        assert app.stop() == 0

    def test_errors_and_latency_of_real_requests(
        self, demo_app_factory: Callable[..., DemoApp]
    ) -> None:
        app = demo_app_factory(
            workload="podinfo", pod="p-a-b", error_rate=1.0, latency_ms=30, latency_sigma=0
        )
        started = time.monotonic()
        r = httpx.get(app.url + "/", timeout=5)
        assert r.status_code == 500 and time.monotonic() - started >= 0.03
        app.set_config(errorRate=0.0)
        assert httpx.get(app.url + "/", timeout=5).status_code == 200
        text = scrape(app)
        assert sample(text, "http_request_duration_seconds_count", status="500") == 1
        assert sample(text, "http_request_duration_seconds_count", status="200") == 1
        assert (
            sample(
                text, "istio_requests_total", response_code="500", destination_workload="podinfo"
            )
            == 1
        )
        assert sample(text, "response_total", classification="failure", deployment="podinfo") == 1
        assert sample(text, "http_request_duration_seconds_bucket", status="200", le="0.025") == 0
        assert sample(text, "http_request_duration_seconds_bucket", status="200", le="0.03") == 1

    def test_canary_header_marks_nginx_canary_traffic(
        self, demo_app_factory: Callable[..., DemoApp]
    ) -> None:
        app = demo_app_factory(
            workload="podinfo",
            pod="p-a-b",
            namespace="test",
            latency_ms=1,
            extra_args=["--ingress", "web"],
        )
        httpx.get(app.url + "/", headers={"X-Canary": "1"}, timeout=5)
        httpx.get(app.url + "/", timeout=5)
        text = scrape(app)
        assert (
            sample(
                text, "nginx_ingress_controller_requests", canary="test-web-canary-80", status="200"
            )
            == 1
        )
        assert sample(text, "nginx_ingress_controller_requests", canary="", status="200") == 1
        assert "nginx_ingress_controller_requests_total" not in text

    def test_self_load_produces_poisson_traffic_at_the_configured_rate(
        self, demo_app_factory: Callable[..., DemoApp]
    ) -> None:
        app = demo_app_factory(workload="podinfo", pod="p-a-b", self_load=500, error_rate=0.2)

        def count() -> float:
            text = scrape(app)
            return sum(
                float(m.group(1))
                for m in re.finditer(
                    r'^http_request_duration_seconds_count\{status="\d+"\} (\S+)$', text, re.M
                )
            )

        wait_until(lambda: count() > 0, timeout=5, what="first synthetic requests")
        first, t1 = count(), time.monotonic()
        wait_until(lambda: time.monotonic() - t1 >= 1.0, timeout=5, what="one second to pass")
        rate = (count() - first) / (time.monotonic() - t1)
        assert rate == pytest.approx(500, rel=0.3)
        text = scrape(app)
        errors = sample(text, "http_request_duration_seconds_count", status="500")
        assert errors / count() == pytest.approx(0.2, abs=0.07)

    def test_a_retrying_client_fails_each_failed_request_again_and_again(
        self, demo_app_factory: Callable[..., DemoApp]
    ) -> None:
        # 10% of the original requests fail, and each is retried three times, failing too:
        # 4 * 0.1 errors per 1 + 3 * 0.1 requests recorded.
        app = demo_app_factory(
            workload="podinfo",
            pod="p-a-b",
            self_load=500,
            error_rate=0.1,
            extra_args=["--retries", "3"],
        )

        def counts() -> tuple[float, float]:
            text = scrape(app)
            ok = sample(text, "http_request_duration_seconds_count", 0.0, status="200")
            # The first scrape can come before the first failure: no 500 series yet.
            failed = sample(text, "http_request_duration_seconds_count", 0.0, status="500")
            return ok, failed

        wait_until(lambda: sum(counts()) > 6000, timeout=60, what="6,000 synthetic requests")
        ok, failed = counts()
        # About 460 failed originals: the share's standard deviation is about 0.013.
        assert failed / (ok + failed) == pytest.approx(0.4 / 1.3, abs=0.06)
        assert app.set_config(retries=0)["retries"] == 0.0
        for wrong in (101, 2.5):
            r = httpx.post(app.url + "/admin/config", json={"retries": wrong}, timeout=5)
            assert r.status_code == 400 and "retries" in r.json()["error"]

    def test_admin_config_validates_input(self, demo_app_factory: Callable[..., DemoApp]) -> None:
        app = demo_app_factory(workload="podinfo", pod="p-a-b")
        r = httpx.post(app.url + "/admin/config", json={"errorRate": 2}, timeout=5)
        assert r.status_code == 400 and "errorRate" in r.json()["error"]
        r = httpx.post(app.url + "/admin/config", json={"speed": 1}, timeout=5)
        assert r.status_code == 400 and "unknown field" in r.json()["error"]
        assert app.set_config(latencyMs=5, selfLoad=0)["latencyMs"] == 5.0
        assert httpx.get(app.url + "/admin/config", timeout=5).json()["latencyMs"] == 5.0


class TestArguments:
    @pytest.mark.parametrize(
        ("flag", "value", "expected"),
        [
            ("--retries", "abc", "expected a whole number from 0 to 100, got 'abc'"),
            ("--retries", "2.5", "expected a whole number from 0 to 100, got '2.5'"),
            ("--retries", "101", "expected a whole number from 0 to 100, got 101"),
            ("--error-rate", "lots", "expected a probability in [0, 1], got 'lots'"),
            ("--latency-ms", "-", "expected a number >= 0, got '-'"),
        ],
    )
    def test_a_wrong_value_is_named_with_what_was_expected(
        self, flag: str, value: str, expected: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        with pytest.raises(SystemExit) as exited:
            parse_args(["--port", "0", flag, value])
        assert exited.value.code == 2
        err = capsys.readouterr().err
        assert f"argument {flag}: {expected}" in err
        assert "invalid" not in err and "Traceback" not in err
