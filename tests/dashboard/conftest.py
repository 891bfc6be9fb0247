"""Fixtures of the dashboard's browser tests: the sandbox, the operator, the dashboard as a
process, and a headless Chromium driven by Selenium (skipped, saying why, when missing).

``./dev`` installs Debian's ``chromium`` and ``chromium-driver``; Selenium (``.[test]``) talks
to that chromedriver, never downloading a browser of its own.
"""

from __future__ import annotations

import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import cluster, kube, operators  # noqa: F401  (the sandbox, an operator)
from tests.e2e.support import CANARY, LoggedProcess, free_port
from tests.http_fixtures import recording_server  # noqa: F401  (a loopback Prometheus)

OUTER = 180.0  # seconds: the limit no healthy run comes near, even on a loaded machine


class DashboardProcess(LoggedProcess):
    """``canary dashboard`` as a user runs it: a process on a free loopback port."""

    def __init__(self, kubeconfig: Path, log: Path, *extra: str) -> None:
        self.port = free_port()
        super().__init__(
            [
                CANARY,
                "dashboard",
                "--kubeconfig",
                str(kubeconfig),
                "--listen",
                f"127.0.0.1:{self.port}",
                "--no-open",
                *extra,
            ],
            log,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> DashboardProcess:
        self.spawn()
        deadline = time.monotonic() + OUTER
        while True:  # wait for it to answer (a condition, with an outer limit)
            try:
                with urllib.request.urlopen(self.url + "/assets/live.js", timeout=5):
                    return self
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                assert self.proc is not None
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"the dashboard did not start: {exc}\n{self.output()}"
                    ) from None
            time.sleep(0.1)


@pytest.fixture
def dashboards() -> Iterator[list[DashboardProcess]]:
    started: list[DashboardProcess] = []
    yield started
    for dashboard in started:
        dashboard.stop()
        assert "Traceback" not in dashboard.output(), dashboard.output()


def _missing_browser() -> str:
    missing = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    if missing:
        return (
            f"{' and '.join(missing)} not installed: apt-get install chromium chromium-driver "
            "(./dev setup does it)"
        )
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: pip install -e '.[test]'"
    return ""


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """A headless Chromium (Debian's) driven through its chromedriver by Selenium 4."""
    why = _missing_browser()
    if why:
        pytest.skip(why)
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = str(shutil.which("chromium"))
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in a container: Chromium's sandbox cannot start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1400",
    ):
        options.add_argument(argument)
    service = webdriver.ChromeService(
        executable_path=str(shutil.which("chromedriver")),
        log_output=str(tmp_path / "chromedriver.log"),
    )
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()
