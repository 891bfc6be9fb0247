"""``canary dashboard`` in a real browser against the sandbox (issue 18, item 2).

The real operator (``canary run``, a process) moves a canary through a promotion and a rollback
while headless Chromium, driven by Selenium, watches the list and the canary's page update
without reloading: the phase, the weights, the verdicts and the decision picture. A gate is
clicked with write actions enabled and its effect seen; without ``--enable-write`` the gate is
refused (403) and nothing is written; cross-site requests are refused; a Canary field holding
``<script>`` stays text; an unreachable cluster or a missing CRD is a banner, not a traceback.

Every wait is on a condition, with a generous outer limit (no sleeps). Screenshots of the pages
are written into the test's tmp_path (their paths are printed).
"""

from __future__ import annotations

import asyncio
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from canary.adapters.kube import KubeClient
from kubesandbox import SandboxThread
from tests.dashboard.conftest import OUTER, DashboardProcess
from tests.e2e.support import (
    OperatorProcess,
    canary_manifest,
    deployment_manifest,
    eventually,
    start_operator,
)
from tests.http_fixtures import RecordingServer, Reply

pytestmark = pytest.mark.slow

NS = "default"
API_VERSION = "canary.gitops.dev/v1beta1"
PROMETHEUS_QUERY = "/api/v1/query"
ABORT = "canary.gitops.dev/abort"


def prometheus_answer(value: float) -> Reply:
    return Reply(
        body={
            "status": "success",
            "data": {"resultType": "vector", "result": [{"metric": {}, "value": [0, str(value)]}]},
        }
    )


def canary(**analysis: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"interval": "10s", "threshold": 1, "stepWeight": 20, "maxWeight": 40}
    spec.update(analysis)
    # istio: a router with weights (the kubernetes provider is blue-green, always 0%)
    return canary_manifest("podinfo", NS, spec, provider="istio", progressDeadlineSeconds=120)


SUCCESS_RATE = {
    "name": "success-rate",
    "interval": "1m",
    "thresholdRange": {"min": 99},
    "query": "vector(1)",
}


async def set_image(kube: KubeClient, image: str) -> None:
    template = deployment_manifest("podinfo", NS, image)["spec"]["template"]
    await kube.patch("apps/v1", "Deployment", "podinfo", NS, {"spec": {"template": template}})


async def phase(kube: KubeClient) -> str:
    obj = await kube.get(API_VERSION, "Canary", "podinfo", NS)
    return str(((obj or {}).get("status") or {}).get("phase") or "")


async def wait_phase(kube: KubeClient, wanted: str) -> None:
    async def reached() -> bool:
        return await phase(kube) == wanted

    await eventually(reached, timeout=OUTER, what=f"the canary to be {wanted}")


async def canary_annotations(kube: KubeClient) -> dict[str, str]:
    obj = await kube.get(API_VERSION, "Canary", "podinfo", NS)
    return dict(((obj or {}).get("metadata") or {}).get("annotations") or {})


async def until(browser: Any, condition: Callable[[Any], Any], what: str) -> Any:
    """Wait (polling the page, no sleeps) until ``condition`` holds; fail naming ``what``.

    In a thread: the test's event loop keeps serving the loopback Prometheus and webhooks. The
    page replaces its live part as the canary moves, so an element found by one WebDriver call
    may be gone by the next: a stale element is "not yet", and the condition is asked again."""
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(
        browser, OUTER, poll_frequency=0.1, ignored_exceptions=[StaleElementReferenceException]
    )
    try:
        return await asyncio.to_thread(wait.until, condition)
    except TimeoutException:
        raise AssertionError(
            f"timed out after {OUTER:g}s waiting for {what}; the page shows:\n"
            + str((query(browser, "#live") or {}).get("text"))
        ) from None


def row(browser: Any) -> dict[str, str] | None:
    """The list's row of podinfo: its phase and canary weight (None: not shown)."""
    found: dict[str, str] | None = browser.execute_script(
        "var r = document.querySelector('tr[data-canary=\"default/podinfo\"]');"
        "return r ? {phase: r.dataset.phase, weight: r.dataset.weight,"
        " text: r.innerText} : null;"
    )
    return found


def title(browser: Any) -> dict[str, str] | None:
    found: dict[str, str] | None = browser.execute_script(
        "var t = document.getElementById('title');"
        "return t ? {phase: t.dataset.phase, weight: t.dataset.weight} : null;"
    )
    return found


def query(browser: Any, selector: str) -> dict[str, Any] | None:
    """The first element matching ``selector``, read at once (the live part may be replaced
    between two WebDriver calls): its text, its data attributes, whether it is disabled."""
    found: dict[str, Any] | None = browser.execute_script(
        "var el = document.querySelector(arguments[0]);"
        "return el ? {text: el.innerText, data: Object.assign({}, el.dataset),"
        " disabled: !!el.disabled} : null;",
        selector,
    )
    return found


def click(browser: Any, element_id: str) -> None:
    """A real click on the element; found again if the live part was replaced meanwhile."""
    from selenium.common.exceptions import StaleElementReferenceException

    for _ in range(10):
        try:
            browser.find_element("id", element_id).click()
            return
        except StaleElementReferenceException:
            continue
    raise AssertionError(f"#{element_id} kept being replaced before it could be clicked")


def screenshot(browser: Any, path: Path) -> None:
    browser.save_screenshot(str(path))
    print(f"screenshot: {path}")


def mark_page(browser: Any) -> None:
    """A marker that a reload would lose: the page must update in place."""
    browser.execute_script("window.__notReloaded = true;")


def not_reloaded(browser: Any) -> bool:
    return bool(browser.execute_script("return window.__notReloaded === true;"))


def http(
    url: str,
    *,
    data: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], str]:
    """A plain request (no browser): status, headers, body; never raises on 4xx/5xx."""
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def csrf_of(page: str, headers: dict[str, str]) -> tuple[str, str]:
    """(form token, cookie) of a page of the dashboard."""
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    cookie = re.search(r"canary_dashboard_csrf=([^;]+)", headers.get("Set-Cookie", ""))
    assert token and cookie, page
    return token.group(1), cookie.group(1)


def start_dashboard(
    cluster: SandboxThread, tmp_path: Path, dashboards: list[DashboardProcess], *extra: str
) -> DashboardProcess:
    dashboard = DashboardProcess(
        cluster.kubeconfig_path, tmp_path / f"dashboard-{len(dashboards)}.log", *extra
    )
    dashboards.append(dashboard.start())
    return dashboard


# --------------------------------------------------------------------------- the story


async def test_the_list_and_the_canary_page_follow_a_promotion_and_a_rollback_live(
    cluster: SandboxThread,
    kube: KubeClient,
    tmp_path: Path,
    operators: list[OperatorProcess],
    dashboards: list[DashboardProcess],
    recording_server: RecordingServer,
    browser: Any,
) -> None:
    recording_server.default(PROMETHEUS_QUERY, prometheus_answer(99.5))
    cluster.apply_manifest(deployment_manifest("podinfo", NS, "podinfo:v1"))
    cluster.apply_manifest(canary(metrics=[SUCCESS_RATE]))
    start_operator(cluster, tmp_path, operators, "--metrics-server", recording_server.base_url)
    dashboard = start_dashboard(cluster, tmp_path, dashboards)

    browser.get(dashboard.url + "/")
    mark_page(browser)
    await until(browser, lambda b: (row(b) or {}).get("phase") == "Initialized", "Initialized")

    # the promotion: the list follows the weights up, then the promotion
    await set_image(kube, "podinfo:v2")
    progressing = await until(
        browser,
        lambda b: (
            r
            if (r := row(b)) and r["phase"] == "Progressing" and r["weight"] in ("20", "40")
            else None
        ),
        "the list to show the canary Progressing at 20% or 40%",
    )
    assert f"{progressing['weight']}% / {100 - int(progressing['weight'])}%" in progressing["text"]
    await until(browser, lambda b: (row(b) or {}).get("phase") == "Succeeded", "Succeeded")
    succeeded = row(browser)
    assert succeeded is not None and succeeded["weight"] == "0"
    assert "success-rate: Pass" in succeeded["text"]
    assert not_reloaded(browser), "the list reloaded instead of updating in place"
    screenshot(browser, tmp_path / "dashboard-list.png")

    # the canary's page: the decision picture and the verdicts of the promoted run
    browser.find_element("link text", "podinfo").click()
    await until(browser, lambda b: (title(b) or {}).get("phase") == "Succeeded", "the canary page")
    assert browser.find_element("css selector", "#picture svg.canary-decision")
    assert browser.find_elements(
        "css selector", "#picture g.metric[data-metric='success-rate'] g.verdict-pass"
    ), "no pass mark for success-rate in the decision picture"
    verdict = query(browser, "#verdicts tr[data-metric='success-rate']")
    assert verdict is not None and verdict["data"]["outcome"] == "Pass"
    assert "99.5" in verdict["text"]
    assert (query(browser, "#gates") or {})["text"].startswith("Read-only")

    # the rollback, watched on the same page without reloading it
    mark_page(browser)
    recording_server.default(PROMETHEUS_QUERY, prometheus_answer(91.2))
    await set_image(kube, "podinfo:v3")
    await until(
        browser, lambda b: (title(b) or {}).get("phase") == "Failed", "the page to show Failed"
    )
    assert not_reloaded(browser), "the canary page reloaded instead of updating in place"
    await until(
        browser,
        lambda b: b.find_elements(
            "css selector", "#picture g.metric[data-metric='success-rate'] g.verdict-fail"
        ),
        "a fail mark for success-rate in the decision picture",
    )
    verdict = query(browser, "#verdicts tr[data-metric='success-rate']")
    assert verdict is not None and verdict["data"]["outcome"] == "Fail"
    assert "91.2" in verdict["text"]
    assert "failed checks threshold reached" in (query(browser, "#message") or {})["text"]
    screenshot(browser, tmp_path / "dashboard-canary.png")

    browser.get(dashboard.url + "/")
    await until(
        browser, lambda b: (row(b) or {}).get("phase") == "Failed", "the list to show Failed"
    )
    assert "success-rate: Fail" in (row(browser) or {}).get("text", "")


# --------------------------------------------------------------------------- the gates


async def test_abort_clicked_with_write_actions_enabled_rolls_the_run_back(
    cluster: SandboxThread,
    kube: KubeClient,
    tmp_path: Path,
    operators: list[OperatorProcess],
    dashboards: list[DashboardProcess],
    recording_server: RecordingServer,
    browser: Any,
) -> None:
    # a confirm-promotion gate that says no: the run waits at its last step until aborted
    recording_server.default("/gate", Reply(status=403, body="not yet"))
    gate = {"name": "wait", "type": "confirm-promotion", "url": recording_server.url("/gate")}
    cluster.apply_manifest(deployment_manifest("podinfo", NS, "podinfo:v1"))
    cluster.apply_manifest(canary(webhooks=[gate]))
    start_operator(cluster, tmp_path, operators)
    dashboard = start_dashboard(cluster, tmp_path, dashboards, "--enable-write")
    await wait_phase(kube, "Initialized")
    await set_image(kube, "podinfo:v2")

    browser.get(dashboard.url + "/canaries/default/podinfo")
    await until(
        browser,
        lambda b: (
            (title(b) or {}).get("phase") in ("Progressing", "WaitingPromotion")
            and (query(b, "#gate-abort") or {}).get("disabled") is False
        ),
        "the abort button to be enabled on a running canary",
    )
    assert (query(browser, "#gate-retry") or {})["disabled"]  # moot: not Failed
    click(browser, "gate-abort")

    await until(
        browser,
        lambda b: "abort requested" in (query(b, "main") or {}).get("text", ""),
        "the notice of the abort request",
    )
    written = await canary_annotations(kube)
    assert written[ABORT].endswith("(dashboard)"), written
    await until(
        browser, lambda b: (title(b) or {}).get("phase") == "Failed", "the page to show Failed"
    )
    obj = await kube.get(API_VERSION, "Canary", "podinfo", NS)
    assert obj is not None
    assert obj["status"]["handledCommands"]["abort"] == written[ABORT]
    assert obj["status"]["canaryWeight"] == 0
    screenshot(browser, tmp_path / "dashboard-aborted.png")


async def test_without_enable_write_there_are_no_gates_and_a_post_is_refused_unwritten(
    cluster: SandboxThread,
    kube: KubeClient,
    tmp_path: Path,
    dashboards: list[DashboardProcess],
    browser: Any,
) -> None:
    cluster.apply_manifest(deployment_manifest("podinfo", NS, "podinfo:v1"))
    cluster.apply_manifest(canary())
    dashboard = start_dashboard(cluster, tmp_path, dashboards)

    browser.get(dashboard.url + "/canaries/default/podinfo")
    await until(browser, lambda b: title(b) is not None, "the canary page")
    assert not browser.find_elements("css selector", "#gates button")
    assert "--enable-write" in (query(browser, "#gates") or {})["text"]

    # the browser posts anyway (from the dashboard's own page, with its cookie)
    answer = browser.execute_async_script(
        "var done = arguments[arguments.length - 1];"
        "var form = new FormData(); form.append('csrf', 'anything');"
        "fetch('/canaries/default/podinfo/gates/abort', {method: 'POST', body: form})"
        ".then(function (r) { return r.text().then(function (t) { done([r.status, t]); }); });"
    )
    assert answer[0] == 403
    assert "Write actions are disabled" in answer[1]
    assert ABORT not in await canary_annotations(kube)


async def test_cross_site_requests_are_refused_and_nothing_is_written(
    cluster: SandboxThread,
    kube: KubeClient,
    tmp_path: Path,
    dashboards: list[DashboardProcess],
) -> None:
    cluster.apply_manifest(deployment_manifest("podinfo", NS, "podinfo:v1"))
    cluster.apply_manifest(canary())
    dashboard = start_dashboard(cluster, tmp_path, dashboards, "--enable-write")
    page = dashboard.url + "/canaries/default/podinfo"
    status, headers, body = http(page)
    assert status == 200
    token, cookie = csrf_of(body, headers)
    pause = page + "/gates/pause"
    own = {"Cookie": f"canary_dashboard_csrf={cookie}", "Origin": dashboard.url}

    refused = {
        "no token": http(pause, data={}, headers=own),
        "a wrong token": http(pause, data={"csrf": "forged"}, headers=own),
        "no cookie": http(pause, data={"csrf": token}, headers={"Origin": dashboard.url}),
        "another origin": http(
            pause, data={"csrf": token}, headers=own | {"Origin": "http://evil.example"}
        ),
        "a cross-site fetch": http(
            pause, data={"csrf": token}, headers=own | {"Sec-Fetch-Site": "cross-site"}
        ),
        "another Host (DNS rebinding)": http(
            pause, data={"csrf": token}, headers=own | {"Host": "evil.example"}
        ),
    }
    for why, (code, _, text) in refused.items():
        assert code == 403, (why, code, text)
    assert "Cross-site request refused" in refused["another origin"][2]
    assert "paused" not in json.dumps(await canary_annotations(kube))
    assert http(pause)[0] == 405  # GET never changes anything

    code, _, _ = http(pause, data={"csrf": token}, headers=own)  # the page's own form
    assert code == 200  # 303 to the page, followed
    assert (await canary_annotations(kube)).get("canary.gitops.dev/paused") == "true"


async def test_fields_are_text_never_markup_and_the_headers_are_safe(
    cluster: SandboxThread,
    kube: KubeClient,
    tmp_path: Path,
    dashboards: list[DashboardProcess],
    browser: Any,
) -> None:
    cluster.apply_manifest(deployment_manifest("podinfo", NS, "podinfo:v1"))
    cluster.apply_manifest(canary())
    hostile = "<script>window.__pwned = 1</script><img src=x onerror='window.__pwned = 2'>"
    await kube.patch(
        API_VERSION,
        "Canary",
        "podinfo",
        NS,
        {
            "status": {
                "phase": "Failed",
                "message": hostile,
                "analysis": [{"name": "<b>m</b>", "outcome": "Fail", "summary": hostile}],
            }
        },
        subresource="status",
    )
    dashboard = start_dashboard(cluster, tmp_path, dashboards)
    status, headers, body = http(dashboard.url + "/canaries/default/podinfo")
    assert status == 200
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert "SameSite=Strict" in headers["Set-Cookie"]
    assert "<script>window" not in body and "&lt;script&gt;window" in body

    browser.get(dashboard.url + "/canaries/default/podinfo")
    await until(browser, lambda b: (title(b) or {}).get("phase") == "Failed", "the canary page")
    assert (query(browser, "#message") or {})["text"] == hostile
    assert browser.execute_script("return window.__pwned === undefined;")
    browser.get(dashboard.url + "/")
    await until(browser, lambda b: row(b) is not None, "the list")
    assert "<b>m</b>: Fail" in (row(browser) or {})["text"]
    assert browser.execute_script("return window.__pwned === undefined;")


# --------------------------------------------------------------------------- trouble


async def test_a_missing_crd_and_an_unreachable_cluster_are_banners_not_tracebacks(
    cluster: SandboxThread,
    kube: KubeClient,
    tmp_path: Path,
    dashboards: list[DashboardProcess],
) -> None:
    await kube.delete(
        "apiextensions.k8s.io/v1", "CustomResourceDefinition", "canaries.canary.gitops.dev"
    )
    dashboard = start_dashboard(cluster, tmp_path, dashboards)

    async def banner() -> str:
        code, _, body = http(dashboard.url + "/")
        return body if code == 200 and "is not installed" in body else ""

    body = await eventually(banner, timeout=OUTER, what="the missing-CRD banner")
    assert "kubectl apply -f crds/" in body

    # a kubeconfig whose API server is gone
    dead = tmp_path / "dead-kubeconfig"
    text = cluster.kubeconfig_path.read_text()
    dead.write_text(re.sub(r"server: \S+", "server: https://127.0.0.1:9", text))
    gone = DashboardProcess(dead, tmp_path / "dashboard-dead.log")
    dashboards.append(gone.start())

    async def unreachable() -> str:
        code, _, body = http(gone.url + "/canaries/default/podinfo")
        return body if code == 200 and "Cannot list the Canaries" in body else ""

    body = await eventually(unreachable, timeout=OUTER, what="the unreachable-cluster banner")
    assert "Traceback" not in body
