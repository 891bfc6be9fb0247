"""Notifications and gates end to end: the real operator, real HTTP receivers, real Git.

Issue 7's "Done when", checked the way a team on call would see it:

* a promotion posts one Slack message that names the canary, its namespace, the
  cluster, the new image, the new and the previous revision (Git commits), how
  long the release took and what the analysis measured; a controller killed
  with SIGKILL and replaced sends none of the messages again;
* a rollback posts one message quoting the failed check with its numbers, and
  one naming the revert commit the controller pushed; a restart repeats neither
  (and pushes no second revert);
* a receiver that rate-limits (429 + Retry-After), fails (500), hangs or does
  not exist never delays the rollout by a tick, and a delivery given up on is a
  Warning Event and a counter on /metrics, without the webhook's secret path;
* a confirm-promotion gate held closed keeps the canary waiting, ``canary
  promote`` opens it on the next tick, and ``canary abort`` rolls a progressing
  canary back on the next tick.

Everything is a real process or server on loopback: the sandbox API server,
``canary run`` (`OperatorProcess`), aiohttp receivers that check every payload
against Slack's documented format (`tests.http_fixtures`), Debian's Prometheus
answering the analysis queries, and ``git daemon`` serving the repository a
`GitSource` applies. The receivers run in the test's event loop, so the test
never blocks that loop for long (the CLI runs as an asyncio subprocess).

Timing: every analysis interval is 10 s at ``--time-scale 0.2``, so a tick is
2 s of wall time.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from canary.adapters.kube import KubeClient, connect
from kubesandbox import SandboxThread
from tests.e2e.support import CANARY, OperatorProcess, eventually
from tests.git_fixtures import BareRepo, GitDaemon, create_bare_repo
from tests.http_fixtures import RecordedRequest, RecordingServer, Reply
from tests.http_fixtures import free_port as free_loopback_port
from tests.prometheus_fixtures import PrometheusServer, prometheus_binary

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
NS = "default"
CLUSTER = "e2e-eu-1"
TICK = 2.0  # seconds: a 10 s analysis interval at --time-scale 0.2
INTERVAL = "10s"
# The part of a Slack webhook URL that is a credential; it must never show up in
# an Event, a log line or /metrics.
SECRET_SEGMENT = "xoxs-9f3c1d77e2b4a6"
SLACK_PATH = f"/services/T0CANARY/B0E2E/{SECRET_SEGMENT}"
NOTIFIER_ENV = (
    "SLACK_URL",
    "SLACK_TOKEN",
    "SLACK_CHANNEL",
    "SLACK_USER",
    "SLACK_PROXY_URL",
    "MSTEAMS_URL",
    "MSTEAMS_PROXY_URL",
    "EVENT_WEBHOOK_URL",
)


# ----------------------------------------------------------------------------- manifests


def deployment(name: str, image: str) -> dict[str, Any]:
    # No spec.replicas: the GitSource must not fight the controller over the target's scale.
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {"name": "podinfod", "image": image, "ports": [{"containerPort": 9898}]}
                    ]
                },
            },
        },
    }


def canary(
    name: str = "podinfo",
    *,
    threshold: int = 1,
    iterations: int = 2,
    metrics: Sequence[Mapping[str, Any]] = (),
    webhooks: Sequence[Mapping[str, Any]] = (),
    alerts: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    analysis: dict[str, Any] = {
        "interval": INTERVAL,
        "threshold": threshold,
        "iterations": iterations,
    }
    if metrics:
        analysis["metrics"] = [dict(m) for m in metrics]
    if webhooks:
        analysis["webhooks"] = [dict(w) for w in webhooks]
    if alerts:
        analysis["alerts"] = [dict(a) for a in alerts]
    return {
        "apiVersion": "canary.gitops.dev/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "provider": "kubernetes",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "progressDeadlineSeconds": 120,
            "service": {"port": 9898},
            "analysis": analysis,
        },
    }


def success_rate(value: float) -> dict[str, Any]:
    """A metric Prometheus answers with a constant: the release's success rate is ``value``%."""
    return {
        "name": "success-rate",
        "interval": "1m",
        "thresholdRange": {"min": 99},
        "query": f"vector({value})",
    }


def slack_provider(name: str, secret: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "canary.gitops.dev/v1beta1",
        "kind": "AlertProvider",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "type": "slack",
            "channel": "deploys",
            "username": "canary-bot",
            "secretRef": {"name": secret},
            **spec,
        },
    }


def address_secret(name: str, address: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NS},
        "type": "Opaque",
        "data": {"address": base64.b64encode(address.encode()).decode()},
    }


def gitsource(url: str) -> dict[str, Any]:
    return {
        "apiVersion": "canary.gitops.dev/v1beta1",
        "kind": "GitSource",
        "metadata": {"name": "apps", "namespace": NS},
        "spec": {
            "url": url,
            "branch": "main",
            "path": "deploy",
            "interval": "1s",
            "timeout": "20s",
        },
    }


def as_yaml(obj: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(obj), sort_keys=False)


# ------------------------------------------------------------------ Slack's documented format

SLACK_COLOURS = {"info": "#2eb886", "warn": "#daa038", "error": "#a30200"}
SLACK_TOP_LEVEL = {"text", "channel", "username", "attachments", "blocks", "icon_emoji", "icon_url"}
TEXT_TYPES = {"plain_text", "mrkdwn"}


def slack_format_problems(request: RecordedRequest) -> list[str]:
    """Where a post departs from Slack's incoming-webhook format (Block Kit limits included).

    https://api.slack.com/messaging/webhooks, https://api.slack.com/reference/block-kit/blocks
    and https://api.slack.com/reference/messaging/attachments: a JSON POST with a ``text``
    (the notification fallback, required next to blocks), at most 50 blocks, headers of
    plain text up to 150 characters, section text up to 3000, at most 10 section fields of
    up to 2000 characters each, context elements of text objects, and legacy attachments
    whose ``color`` is a hex colour.
    """
    problems: list[str] = []
    if request.method != "POST":
        problems.append(f"method {request.method}, expected POST")
    if not (request.header("content-type") or "").startswith("application/json"):
        problems.append(f"Content-Type {request.header('content-type')!r}, expected JSON")
    try:
        body = request.json()
    except ValueError:
        return [*problems, "the body is not JSON"]
    if not isinstance(body, dict):
        return [*problems, "the body is not a JSON object"]
    unknown = set(body) - SLACK_TOP_LEVEL
    if unknown:
        problems.append(f"unknown top-level keys {sorted(unknown)}")
    if not isinstance(body.get("text"), str) or not body["text"].strip():
        problems.append("no top-level text (Slack's notification fallback)")
    for key in ("channel", "username"):
        if key in body and not isinstance(body[key], str):
            problems.append(f"{key} is not a string")
    attachments = body.get("attachments")
    if not isinstance(attachments, list) or len(attachments) != 1:
        return [*problems, f"expected one attachment, got {attachments!r}"]
    attachment = attachments[0]
    if attachment.get("color") not in SLACK_COLOURS.values():
        problems.append(f"attachment colour {attachment.get('color')!r} is not a severity colour")
    if not isinstance(attachment.get("fallback"), str) or not attachment["fallback"]:
        problems.append("attachment without a fallback text")
    blocks = attachment.get("blocks")
    if not isinstance(blocks, list) or not 1 <= len(blocks) <= 50:
        return [*problems, "attachment blocks: expected 1 to 50 blocks"]
    for index, block in enumerate(blocks):
        problems.extend(f"blocks[{index}]: {p}" for p in _block_problems(block))
    if blocks[0].get("type") != "header":
        problems.append("the first block is not the header")
    return problems


def _text_problems(obj: Any, limit: int, *, plain_only: bool = False) -> list[str]:
    if not isinstance(obj, dict):
        return [f"expected a text object, got {obj!r}"]
    allowed = {"plain_text"} if plain_only else TEXT_TYPES
    problems = []
    if obj.get("type") not in allowed:
        problems.append(f"text type {obj.get('type')!r}, expected one of {sorted(allowed)}")
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        problems.append("empty text")
    elif len(text) > limit:
        problems.append(f"text of {len(text)} characters, Slack allows {limit}")
    return problems


def _block_problems(block: Any) -> list[str]:
    if not isinstance(block, dict):
        return ["not an object"]
    kind = block.get("type")
    if kind == "header":
        return _text_problems(block.get("text"), 150, plain_only=True)
    if kind == "section":
        if "text" not in block and "fields" not in block:
            return ["a section needs text or fields"]
        problems = _text_problems(block["text"], 3000) if "text" in block else []
        fields = block.get("fields", [])
        if not isinstance(fields, list) or len(fields) > 10:
            problems.append("at most 10 fields per section")
        else:
            for f in fields:
                problems.extend(_text_problems(f, 2000))
        return problems
    if kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= 10:
            return ["context: expected 1 to 10 elements"]
        return [p for e in elements for p in _text_problems(e, 2000)]
    if kind == "divider":
        return []
    return [f"unexpected block type {kind!r}"]


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


@dataclass(frozen=True)
class SlackMessage:
    """A received Slack post, read back the way a person reads it."""

    kind: str  # the alert kind, from the context line ("default/podinfo · cluster · Promoted")
    title: str
    body: str
    facts: Mapping[str, str]
    analysis: str
    context: str
    colour: str
    fallback: str
    channel: str
    username: str

    @classmethod
    def of(cls, request: RecordedRequest) -> SlackMessage:
        payload = request.json()
        attachment = payload["attachments"][0]
        title = body = analysis = context = ""
        facts: dict[str, str] = {}
        for block in attachment["blocks"]:
            if block["type"] == "header":
                title = block["text"]["text"]
            elif block["type"] == "context":
                context = _unescape(" ".join(e["text"] for e in block["elements"]))
            elif block["type"] == "section" and "fields" in block:
                for item in block["fields"]:
                    name, _, value = item["text"].partition("\n")
                    facts[_unescape(name.strip("*"))] = _unescape(value)
            elif block["type"] == "section":
                text = _unescape(block["text"]["text"])
                if text.startswith("*Analysis*"):
                    analysis = text
                elif not body:
                    body = text
        return cls(
            kind=context.rsplit(" · ", 1)[-1],
            title=title,
            body=body,
            facts=facts,
            analysis=analysis,
            context=context,
            colour=attachment["color"],
            fallback=payload["text"],
            channel=str(payload.get("channel", "")),
            username=str(payload.get("username", "")),
        )


def delivered(receiver: RecordingServer, path: str, refused: int = 0) -> list[SlackMessage]:
    """The messages a receiver accepted on ``path``, in arrival order.

    A receiver scripted to refuse its first ``refused`` posts (429, 500) sees those
    attempts again as retries; only the posts after them are messages.
    """
    return [SlackMessage.of(r) for r in receiver.requests_to(path)[refused:]]


def kinds(messages: Sequence[SlackMessage]) -> Counter[str]:
    return Counter(m.kind for m in messages)


def one(messages: Sequence[SlackMessage], kind: str) -> SlackMessage:
    matching = [m for m in messages if m.kind == kind]
    assert len(matching) == 1, (kind, [m.kind for m in messages])
    return matching[0]


def assert_all_well_formed(receiver: RecordingServer) -> None:
    """Every post to a Slack webhook path (``/services/...``) is in Slack's format."""
    for request in receiver.requests:
        if not request.path.startswith("/services/"):
            continue
        problems = slack_format_problems(request)
        assert not problems, (request.path, problems, request.body[:2000])


# ----------------------------------------------------------------------------- the operator


class Operator(OperatorProcess):
    """`canary run` with a chosen notifier environment.

    `OperatorProcess` passes the test runner's environment through; the notifier reads
    ``SLACK_URL`` and friends from it, so this subclass removes any the developer has set
    and adds the test's own.
    """

    def __init__(
        self, kubeconfig: Path, log: Path, *extra: str, env: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(kubeconfig, log, *extra)
        self.env = dict(env or {})

    def start(self) -> Operator:
        handle = self.log.open("ab")
        env = {k: v for k, v in os.environ.items() if k not in NOTIFIER_ENV}
        env.pop("KUBECONFIG", None)
        env.update(self.env, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(self.args, stdout=handle, stderr=subprocess.STDOUT, env=env)
        handle.close()
        return self

    async def healthy(self, *, within: float) -> bool:
        """True once /healthz answers; False when the process exits first or in time."""
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=1.0) as client:
            while time.monotonic() < deadline:
                if self.proc is None or self.proc.poll() is not None:
                    return False
                try:
                    if (await client.get(f"http://127.0.0.1:{self.port}/healthz")).is_success:
                        return True
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        return False

    async def metrics(self) -> str:
        async with httpx.AsyncClient(timeout=5.0) as client:
            response = await client.get(f"http://127.0.0.1:{self.port}/metrics")
            response.raise_for_status()
            return response.text

    async def counter(self, name: str, **labels: str) -> float:
        """The sum of a counter's samples whose labels include ``labels`` (0 when absent)."""
        total = 0.0
        for line in (await self.metrics()).splitlines():
            match = re.fullmatch(r"([a-z_:]+)(?:\{(.*)\})? ([0-9.eE+-]+)", line)
            if not match or match.group(1) != name:
                continue
            found = dict(re.findall(r'([a-z_]+)="([^"]*)"', match.group(2) or ""))
            if all(found.get(k) == v for k, v in labels.items()):
                total += float(match.group(3))
        return total

    async def passes(self) -> float:
        return await self.counter("canary_engine_decisions_total")


@dataclass
class Env:
    """One test's world: the sandbox, a client, the operators started, and their settings."""

    cluster: SandboxThread
    kube: KubeClient
    tmp_path: Path
    operators: list[Operator] = field(default_factory=list)

    async def start_operator(
        self, *extra: str, env: Mapping[str, str] | None = None, user: str = "controller"
    ) -> Operator:
        """Start ``canary run`` and wait until it serves /healthz.

        The listen port is picked free a moment before the process binds it, and an
        outgoing connection can take it in between; such a start is retried on a new port.
        """
        n = len(self.operators)
        kubeconfig = self.cluster.write_kubeconfig(
            self.tmp_path / f"kubeconfig-{user}-{n}", user=user
        )
        for attempt in range(3):
            op = Operator(
                kubeconfig,
                self.tmp_path / f"operator-{n}-{attempt}.log",
                "--cluster-name",
                CLUSTER,
                *extra,
                env=env,
            )
            self.operators.append(op.start())
            if await op.healthy(within=30):
                return op
            if "address already in use" not in op.output():
                break
        raise AssertionError(f"the operator did not start:\n{op.output()[-3000:]}")

    async def status(self, name: str = "podinfo") -> dict[str, Any]:
        obj = await self.kube.get("canary.gitops.dev/v1beta1", "Canary", name, NS)
        return dict((obj or {}).get("status") or {})

    async def phase(self, name: str = "podinfo") -> str:
        return str((await self.status(name)).get("phase") or "")

    async def wait_phase(self, phase: str, *, name: str = "podinfo", timeout: float) -> None:
        async def reached() -> bool:
            return await self.phase(name) == phase

        await eventually(reached, timeout=timeout, what=f"canary {name} to reach {phase}")

    async def events(self, name: str = "podinfo") -> list[dict[str, Any]]:
        return [
            e
            for e in await self.kube.list("v1", "Event", NS)
            if (e.get("involvedObject") or {}).get("kind") == "Canary"
            and (e.get("involvedObject") or {}).get("name") == name
        ]

    async def event_messages(self, name: str = "podinfo") -> list[str]:
        return [str(e.get("message")) for e in await self.events(name)]

    async def wait_delivered(self, name: str = "podinfo") -> None:
        """Until no alert waits in the status: every message delivered, and recorded so
        (between a delivery and that write, a controller killed would send it again)."""

        async def none_pending() -> bool:
            return not (await self.status(name)).get("pendingAlerts")

        await eventually(none_pending, timeout=30, what=f"the pending alerts of {name} to clear")

    async def set_image(self, name: str, image: str) -> None:
        template = deployment(name, image)["spec"]["template"]
        await self.kube.patch("apps/v1", "Deployment", name, NS, {"spec": {"template": template}})

    async def restart(self, old: Operator, *extra: str, env: Mapping[str, str] | None) -> Operator:
        """SIGKILL ``old``, start a replacement, and let it run three passes."""
        old.kill()
        new = await self.start_operator(*extra, env=env)
        await eventually(
            lambda: _at_least(new.passes(), 3),
            timeout=30,
            what="the restarted controller to run three passes",
        )
        return new

    def logs(self) -> str:
        return "\n".join(op.output() for op in self.operators)


async def settled(env: Env, operator: Operator) -> None:
    """The restarted controller's passes after its first three went by (any message they would
    queue is queued), and nothing waits in the status to be delivered."""
    seen = await operator.passes()
    await eventually(
        lambda: _at_least(operator.passes(), seen + 3),
        timeout=60,
        what="three more passes of the restarted controller",
    )
    await env.wait_delivered()


async def _at_least(value: Awaitable[float], minimum: float) -> bool:
    return float(await value) >= minimum


async def run_cli(kubeconfig: Path, *args: str) -> tuple[int, str]:
    """The real ``canary`` command, without blocking the loop the receivers run in."""
    env = dict(os.environ)
    env.pop("KUBECONFIG", None)
    proc = await asyncio.create_subprocess_exec(
        CANARY,
        *args,
        "--kubeconfig",
        str(kubeconfig),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    return int(proc.returncode or 0), out.decode(errors="replace")


# ------------------------------------------------------------------------------- fixtures


@pytest.fixture
async def env(cluster: SandboxThread, tmp_path: Path) -> AsyncIterator[Env]:
    client = await connect(str(cluster.kubeconfig_path))
    world = Env(cluster, client, tmp_path)
    try:
        yield world
    finally:
        for op in world.operators:
            op.kill()  # a graceful stop would wait out the notifier's grace for dead receivers
        await client.aclose()


@pytest.fixture
async def receiver() -> AsyncIterator[RecordingServer]:
    server = await RecordingServer().start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """Debian's Prometheus; the canaries' metrics are constant PromQL expressions."""
    server = PrometheusServer(
        workdir=tmp_path_factory.mktemp("prometheus"), binary=prometheus_binary()
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class GitServer:
    root: Path
    daemon: GitDaemon

    def repository(self, files: Mapping[str, str]) -> tuple[BareRepo, str]:
        repo = create_bare_repo(self.root, "apps", files)
        return repo, self.daemon.url_for(repo)


@pytest.fixture
def git(tmp_path: Path) -> Iterator[GitServer]:
    root = tmp_path / "srv"
    root.mkdir()
    daemon = GitDaemon(root).start()
    try:
        yield GitServer(root, daemon)
    finally:
        daemon.stop()


def revision(sha: str) -> str:
    return f"main@sha1:{sha}"


# ---------------------------------------------------------------------------------- tests


class TestPromotionAndRollbackMessages:
    async def test_a_promotion_sends_one_slack_message_with_the_release_facts_and_a_restart_sends_none_again(
        self,
        env: Env,
        receiver: RecordingServer,
        prometheus: PrometheusServer,
        git: GitServer,
    ) -> None:
        repo, url = git.repository(
            {
                "deploy/podinfo.yaml": as_yaml(deployment("podinfo", "podinfo:6.0.0")),
                "deploy/canary.yaml": as_yaml(canary(metrics=[success_rate(99.9)])),
            }
        )
        good = repo.head()
        env.cluster.apply_manifest(gitsource(url))
        slack = {"SLACK_URL": receiver.url(SLACK_PATH), "SLACK_CHANNEL": "deploys"}
        flags = ("--metrics-server", prometheus.url)
        op = await env.start_operator(*flags, env=slack)
        await env.wait_phase("Initialized", timeout=40)
        await receiver.wait_for(1, path=SLACK_PATH, within=10)

        release = repo.commit(
            {"deploy/podinfo.yaml": as_yaml(deployment("podinfo", "podinfo:6.0.1"))},
            "podinfo 6.0.1",
        )
        await env.wait_phase("Succeeded", timeout=60)

        async def promoted() -> bool:
            return "Promoted" in kinds(delivered(receiver, SLACK_PATH))

        await eventually(promoted, timeout=10, what="the promotion message")
        assert_all_well_formed(receiver)
        messages = delivered(receiver, SLACK_PATH)
        assert kinds(messages) == {"Initialized": 1, "Started": 1, "Promoted": 1}, kinds(messages)

        # The GitSource applies a commit before it reports it: a run may start while the
        # report still names the good revision. No message names it as the run's.
        started = one(messages, "Started")
        assert started.facts.get("Revision", revision(release)) == revision(release), started
        assert revision(good) not in started.body.split(" against ")[0], started.body

        message = one(messages, "Promoted")
        assert message.title == "Promoted: podinfo.default"
        assert message.colour == SLACK_COLOURS["info"]
        assert (message.channel, message.username) == ("deploys", "canary-engine")
        assert message.context == f"default/podinfo · {CLUSTER} · Promoted"
        assert message.facts["Cluster"] == CLUSTER
        assert message.facts["Target"] == "Deployment/podinfo.default"
        assert message.facts["Revision"] == revision(release)
        assert message.facts["Image"] == "podinfo:6.0.1"
        assert re.fullmatch(r"\d+(\.\d)?s|\d+m\d\ds", message.facts["Duration"]), message.facts
        assert re.search(r"The release took \d+s\.", message.body), message.body
        assert "Canary analysis completed successfully, promotion finished." in message.body
        assert "success-rate passed (value 99.9, threshold >= 99)" in message.analysis
        # The fallback text alone (what a phone notification shows) names the release too.
        assert message.fallback.startswith("Promoted: podinfo.default\n")
        assert revision(release) in message.fallback
        # ... and what it replaced.
        assert message.facts.get("Previous revision") == revision(good), message.facts
        assert f"replacing {revision(good)}" in message.body, message.body

        await env.wait_delivered()
        after_first = len(receiver.requests)
        second = await env.restart(op, *flags, env=slack)
        await settled(env, second)
        assert len(receiver.requests) == after_first, kinds(delivered(receiver, SLACK_PATH))
        assert await second.counter("canary_engine_notifications_total") == 0
        assert await env.phase() == "Succeeded"
        assert SECRET_SEGMENT not in env.logs()

    async def test_a_rollback_quotes_the_failed_check_and_names_the_revert_commit_once(
        self,
        env: Env,
        receiver: RecordingServer,
        prometheus: PrometheusServer,
        git: GitServer,
    ) -> None:
        alerts = [{"name": "on-call", "severity": "info", "providerRef": {"name": "on-call"}}]
        repo, url = git.repository(
            {
                "deploy/podinfo.yaml": as_yaml(deployment("podinfo", "podinfo:6.0.0")),
                "deploy/canary.yaml": as_yaml(
                    canary(metrics=[success_rate(91.2)], alerts=alerts, threshold=1)
                ),
            }
        )
        good = repo.head()
        env.cluster.apply_manifest(address_secret("on-call-webhook", receiver.url(SLACK_PATH)))
        env.cluster.apply_manifest(slack_provider("on-call", "on-call-webhook"))
        env.cluster.apply_manifest(gitsource(url))
        flags = ("--metrics-server", prometheus.url)
        op = await env.start_operator(*flags)
        await env.wait_phase("Initialized", timeout=40)

        bad = repo.commit(
            {"deploy/podinfo.yaml": as_yaml(deployment("podinfo", "podinfo:6.0.1"))},
            "podinfo 6.0.1",
        )
        await env.wait_phase("Failed", timeout=60)

        async def reverted() -> dict[str, Any] | None:
            state = (await env.status()).get("gitRevert") or {}
            return state if state.get("state") == "Reverted" else None

        revert = await eventually(reverted, timeout=30, what="the Git revert")
        commit = str(revert["commit"])
        assert repo.head() == commit
        assert ("Canary", f"{NS}/podinfo") in repo.trailers(commit)
        assert ("Canary-Bad-Revision", bad) in repo.trailers(commit)

        async def both() -> bool:
            seen = kinds(delivered(receiver, SLACK_PATH))
            return seen["ThresholdReached"] >= 1 and seen["GitReverted"] >= 1

        await eventually(both, timeout=10, what="the rollback and revert messages")
        assert_all_well_formed(receiver)
        messages = delivered(receiver, SLACK_PATH)
        assert kinds(messages) == {
            "Initialized": 1,
            "Started": 1,
            "ThresholdReached": 1,
            "GitReverted": 1,
        }, kinds(messages)

        rollback = one(messages, "ThresholdReached")
        assert rollback.title == "Rolled back: checks failed: podinfo.default"
        assert rollback.colour == SLACK_COLOURS["error"]
        assert (rollback.channel, rollback.username) == ("deploys", "canary-bot")
        assert rollback.context == f"default/podinfo · {CLUSTER} · ThresholdReached"
        assert "Failed checks threshold reached 1" in rollback.body
        assert "Failed check: success-rate FAILED (value 91.2, threshold >= 99)" in rollback.body
        assert f"Rolled back {revision(bad)} (podinfo:6.0.1) to {revision(good)}" in rollback.body
        assert rollback.facts["Failed checks"] == "1 of 1"
        assert rollback.facts["Revision"] == revision(bad)
        assert rollback.facts["Previous revision"] == revision(good)
        assert "success-rate FAILED (value 91.2, threshold >= 99)" in rollback.analysis

        git_message = one(messages, "GitReverted")
        assert git_message.title == "Reverted in Git: podinfo.default"
        assert git_message.facts["Revert commit"] == commit[:12]
        assert f"with commit {commit[:12]}" in git_message.body
        assert git_message.context == f"default/podinfo · {CLUSTER} · GitReverted"

        # Git is the truth again: the GitSource applies the revert to the target.
        async def reconverged() -> bool:
            target = await env.kube.get("apps/v1", "Deployment", "podinfo", NS)
            containers = ((target or {}).get("spec") or {})["template"]["spec"]["containers"]
            return bool(containers[0]["image"] == "podinfo:6.0.0")

        await eventually(reconverged, timeout=20, what="the target back on the good image")

        history = repo.log()
        await env.wait_delivered()
        after_first = len(receiver.requests)
        second = await env.restart(op, *flags, env=None)
        await settled(env, second)
        assert len(receiver.requests) == after_first, kinds(delivered(receiver, SLACK_PATH))
        assert await second.counter("canary_engine_notifications_total") == 0
        assert repo.log() == history, "the restarted controller pushed nothing"
        assert await env.phase() == "Failed"
        assert SECRET_SEGMENT not in env.logs()


# ------------------------------------------------------------------------ delivery trouble


@dataclass(frozen=True)
class Trouble:
    """A receiver misbehaving in one way, and what the test expects from it."""

    name: str
    timeout: str = "5s"  # the AlertProvider's per-attempt timeout
    refusals: tuple[Reply, ...] = ()  # scripted answers before the receiver accepts
    default: Reply | None = None  # what it answers after that (None: 200 ok)
    dead: bool = False  # nothing listens at the address
    gives_up: bool = False  # deliveries fail for good: a Warning Event and a counter

    @property
    def path(self) -> str:
        return f"/services/T0CANARY/{self.name}/{SECRET_SEGMENT}"


HEALTHY = Trouble("healthy")
TROUBLES = (
    # A burst longer than the five attempts that once dropped a message, within the budget
    # (120 s x --time-scale 0.2): the message is delivered once, after six Retry-After waits.
    Trouble(
        "ratelimited",
        refusals=(Reply(429, "rate_limited", headers={"Retry-After": "2"}),) * 6,
    ),
    # Three 500s: backoffs of 1, 2 and 4 s before the post that gets through.
    Trouble("failing", refusals=(Reply(500, "rollup_error"),) * 3),
    Trouble("hanging", timeout="1s", default=Reply(delay=30.0), gives_up=True),
    Trouble("dead", dead=True, gives_up=True),
)

# The least a pass that waited for one of TROUBLES' receivers would add to its rollout:
# the failing receiver's backoffs (1 + 2 + 4 s); the others cost more (six Retry-After
# waits of 2 s; the 24 s budget of the hanging and the dead one).
WAITING_COST = 7.0
# How much slower than the healthy canary a troubled one may finish: two ticks of
# lateness on a busy machine, well below WAITING_COST.
DELAY_MARGIN = 2 * TICK


@dataclass
class RolloutTimes:
    """When the test first saw each canary Progressing and Succeeded (monotonic seconds)."""

    progressing: dict[str, float] = field(default_factory=dict)
    succeeded: dict[str, float] = field(default_factory=dict)

    def duration(self, name: str) -> float:
        return self.succeeded[name] - self.progressing[name]


async def promote_side_by_side(env: Env, names: Sequence[str]) -> RolloutTimes:
    """Release a new image of every canary at once; time each run from start to promotion."""
    await asyncio.gather(*(env.set_image(n, "podinfo:6.0.1") for n in names))
    times = RolloutTimes()
    deadline = time.monotonic() + 90
    while len(times.succeeded) < len(names):
        assert time.monotonic() < deadline, f"not promoted in time: {times}"
        now = time.monotonic()
        phases = await asyncio.gather(*(env.phase(n) for n in names))
        for name, phase in zip(names, phases, strict=True):
            if phase == "Progressing":
                times.progressing.setdefault(name, now)
            if phase == "Succeeded" and name in times.progressing:
                times.succeeded.setdefault(name, now)
        await asyncio.sleep(0.1)
    return times


class TestDeliveryTrouble:
    async def test_a_misbehaving_receiver_never_delays_the_rollout_and_giving_up_is_reported(
        self, env: Env, receiver: RecordingServer, subtests: pytest.Subtests
    ) -> None:
        """Canaries side by side, each alerting to its own kind of receiver.

        One run (and one report per receiver, as subtests) instead of a parametrized
        test: the healthy canary is the yardstick the others are measured against in
        the same ticks, and the module stays within its time budget. One more canary
        names an AlertProvider whose Secret does not exist: nothing can be sent, and
        the Event says which field is wrong.
        """
        dead_address = f"http://127.0.0.1:{free_loopback_port()}{Trouble('dead').path}"
        cases = (HEALTHY, *TROUBLES)
        for case in cases:
            receiver.script(case.path, *case.refusals)
            if case.default is not None:
                receiver.default(case.path, case.default)
            address = dead_address if case.dead else receiver.url(case.path)
            env.cluster.apply_manifest(address_secret(f"{case.name}-webhook", address))
            env.cluster.apply_manifest(
                slack_provider(case.name, f"{case.name}-webhook", timeout=case.timeout)
            )
            env.cluster.apply_manifest(deployment(f"app-{case.name}", "podinfo:6.0.0"))
            alerts = [{"name": case.name, "providerRef": {"name": case.name}}]
            env.cluster.apply_manifest(canary(f"app-{case.name}", alerts=alerts))
        env.cluster.apply_manifest(slack_provider("misconfigured", "absent-webhook"))
        env.cluster.apply_manifest(deployment("app-misconfigured", "podinfo:6.0.0"))
        alerts = [{"name": "team", "providerRef": {"name": "misconfigured"}}]
        env.cluster.apply_manifest(canary("app-misconfigured", alerts=alerts))
        operator = await env.start_operator()
        names = [f"app-{c.name}" for c in cases] + ["app-misconfigured"]

        async def all_initialized() -> bool:
            phases = await asyncio.gather(*(env.phase(n) for n in names))
            return all(p == "Initialized" for p in phases)

        await eventually(all_initialized, timeout=40, what="every canary to initialize")
        times = await promote_side_by_side(env, names)
        healthy = times.duration(f"app-{HEALTHY.name}")
        assert healthy <= 8 * TICK, times

        async def healthy_promoted() -> bool:
            return "Promoted" in kinds(delivered(receiver, HEALTHY.path))

        await eventually(healthy_promoted, timeout=10, what="the healthy receiver's messages")
        assert [m.kind for m in delivered(receiver, HEALTHY.path)] == [
            "Initialized",
            "Started",
            "Promoted",
        ]

        for case in TROUBLES:
            with subtests.test(receiver=case.name):
                await self.check(env, receiver, operator, case, times, healthy)

        with subtests.test(receiver="missing Secret"):
            assert times.duration("app-misconfigured") <= healthy + DELAY_MARGIN, times
            wanted = (
                f"Notification Initialized for app-misconfigured.{NS} failed: alerts[0] team: "
                f"AlertProvider {NS}/misconfigured is invalid: "
                f"spec.secretRef.name: Secret {NS}/absent-webhook not found"
            )

            async def explained() -> bool:
                return wanted in await env.event_messages("app-misconfigured")

            await eventually(explained, timeout=10, what="the Event naming the missing Secret")
            unrouted = await operator.counter(
                "canary_engine_notification_failures_total", provider_type="none"
            )
            assert unrouted >= 3  # Initialized, Started and Promoted: none could be sent

        assert_all_well_formed(receiver)
        metrics = await operator.metrics()
        assert SECRET_SEGMENT not in metrics
        assert SECRET_SEGMENT not in env.logs()

    @staticmethod
    async def check(
        env: Env,
        receiver: RecordingServer,
        operator: Operator,
        case: Trouble,
        times: RolloutTimes,
        healthy: float,
    ) -> None:
        name = f"app-{case.name}"
        took = times.duration(name)
        # As fast as the healthy canary in the same ticks. A pass that waited for any of
        # these receivers would cost the canary at least WAITING_COST seconds; the margin
        # below it absorbs the lateness of a loaded machine.
        assert took <= healthy + DELAY_MARGIN, (took, healthy, times)

        if case.gives_up:
            prefix = (
                f"Notification Initialized for {name}.{NS} failed: "
                f"slack AlertProvider {NS}/{case.name}: gave up after "
            )

            async def reported() -> dict[str, Any] | None:
                for event in await env.events(name):
                    if str(event.get("message")).startswith(prefix):
                        return event
                return None

            event = await eventually(reported, timeout=45, what=f"a Warning Event for {name}")
            assert event.get("type") == "Warning", event
            expected = "connection failed" if case.dead else "no answer within 1s"
            assert expected in str(event.get("message")), event.get("message")
            failures = await operator.counter(
                "canary_engine_notification_failures_total", provider_type="slack"
            )
            assert failures >= 1
        else:
            refused = len(case.refusals)

            async def promoted_message() -> bool:
                return "Promoted" in kinds(delivered(receiver, case.path, refused))

            await eventually(promoted_message, timeout=30, what=f"{name}'s Promoted message")
            accepted = delivered(receiver, case.path, refused)
            assert [m.kind for m in accepted] == ["Initialized", "Started", "Promoted"]
            requests = receiver.requests_to(case.path)
            waited = requests[refused].received_at - requests[0].received_at
            if case.name == "ratelimited":
                # six answers of 429 with Retry-After: 2 before the first post got through
                assert waited >= 6 * 2 * 0.95, f"Retry-After not honoured: {waited:.2f}s"
            else:
                # three answers of 500, then backoffs of 1, 2 and 4 s
                assert waited >= 7 * 0.95, f"no backoff before retrying after a 500: {waited:.2f}s"
            notes = [m for m in await env.event_messages(name) if m.startswith("Notification")]
            assert not notes, notes
        # Nothing a person sees in the Events carries the webhook's secret path.
        for message in await env.event_messages(name):
            assert SECRET_SEGMENT not in message, message


# ----------------------------------------------------------------------------------- gates


class TestGates:
    async def test_a_held_confirm_promotion_gate_waits_until_canary_promote_opens_it(
        self, env: Env, receiver: RecordingServer
    ) -> None:
        receiver.default("/gate", Reply(403, "change CHG-42 not approved"))
        env.cluster.apply_manifest(deployment("podinfo", "podinfo:6.0.0"))
        env.cluster.apply_manifest(
            canary(
                webhooks=[
                    {
                        "name": "change-approval",
                        "type": "confirm-promotion",
                        "url": receiver.url("/gate"),
                    }
                ]
            )
        )
        slack = {"SLACK_URL": receiver.url(SLACK_PATH)}
        await env.start_operator(env=slack)
        await env.wait_phase("Initialized", timeout=40)
        await env.set_image("podinfo", "podinfo:6.0.1")
        await env.wait_phase("WaitingPromotion", timeout=60)

        # Held closed: the gate is asked every tick and the canary keeps waiting.
        asked = len(receiver.requests_to("/gate"))

        async def asked_three_more_times() -> bool:
            assert await env.phase() == "WaitingPromotion"  # never left waiting meanwhile
            return len(receiver.requests_to("/gate")) >= asked + 3

        await eventually(asked_three_more_times, timeout=60, what="three more gate asks")
        assert await env.phase() == "WaitingPromotion"
        gate_call = receiver.requests_to("/gate")[-1].json()
        assert gate_call["name"] == "podinfo" and gate_call["phase"] == "Progressing"
        status = await env.status()
        assert "change-approval" in str(status.get("message")), status.get("message")

        kubeconfig = env.cluster.write_kubeconfig(env.tmp_path / "kubeconfig-alice", user="alice")
        code, out = await run_cli(kubeconfig, "promote", "podinfo", "-n", NS)
        assert code == 0, out

        async def promoting() -> str | None:
            phase = await env.phase()
            return phase if phase in ("Promoting", "Finalising", "Succeeded") else None

        # Without the command the gate would hold for ever: opening at all is the proof.
        await eventually(promoting, timeout=30, what="the gate to open", interval=0.1)
        messages = await env.event_messages()
        assert "Confirm-promotion gate opened by alice" in messages, messages
        token = (await env.status()).get("handledCommands", {}).get("promote", "")
        assert token.endswith(" by alice"), token
        await env.wait_phase("Succeeded", timeout=30)
        primary = await env.kube.get("apps/v1", "Deployment", "podinfo-primary", NS)
        assert primary is not None
        assert primary["spec"]["template"]["spec"]["containers"][0]["image"] == "podinfo:6.0.1"

        assert_all_well_formed(receiver)
        seen = kinds(delivered(receiver, SLACK_PATH))
        assert seen["WaitingPromotion"] == 1, seen

    async def test_canary_abort_rolls_a_progressing_canary_back_on_the_next_tick(
        self, env: Env, receiver: RecordingServer
    ) -> None:
        env.cluster.apply_manifest(deployment("podinfo", "podinfo:6.0.0"))
        env.cluster.apply_manifest(canary(iterations=10))
        await env.start_operator(env={"SLACK_URL": receiver.url(SLACK_PATH)})
        await env.wait_phase("Initialized", timeout=40)
        await env.set_image("podinfo", "podinfo:6.0.1")

        async def under_way() -> bool:
            status = await env.status()
            return status.get("phase") == "Progressing" and int(status.get("iterations") or 0) >= 1

        await eventually(under_way, timeout=30, what="the run to be under way")
        target = await env.kube.get("apps/v1", "Deployment", "podinfo", NS)
        assert target is not None and target["spec"]["replicas"] >= 1

        kubeconfig = env.cluster.write_kubeconfig(env.tmp_path / "kubeconfig-bob", user="bob")
        before = int((await env.status()).get("iterations") or 0)
        code, out = await run_cli(kubeconfig, "abort", "podinfo", "-n", NS)
        assert code == 0, out
        # "On the next tick" counted in ticks, not seconds: the iterations seen while
        # the abort was pending grow by at most the one pass that was already due.
        seen: list[int] = []

        async def rolled_back() -> bool:
            status = await env.status()
            if status.get("phase") == "Failed":
                return True
            seen.append(int(status.get("iterations") or 0))
            return False

        await eventually(rolled_back, timeout=60, what="the abort to roll back", interval=0.1)
        assert max(seen, default=before) <= before + 1, (before, seen)

        status = await env.status()
        assert status.get("handledCommands", {}).get("abort", "").endswith(" by bob")
        assert status.get("canaryWeight") == 0
        messages = await env.event_messages()
        assert "Rolling back podinfo.default: aborted by bob" in messages, messages
        # What a rollback leaves behind: the primary keeps serving the old version, the
        # apex Service points at it and the target is scaled to zero.
        primary = await env.kube.get("apps/v1", "Deployment", "podinfo-primary", NS)
        assert primary is not None
        assert primary["spec"]["template"]["spec"]["containers"][0]["image"] == "podinfo:6.0.0"
        apex = await env.kube.get("v1", "Service", "podinfo", NS)
        assert apex is not None and apex["spec"]["selector"] == {"app": "podinfo-primary"}
        target = await env.kube.get("apps/v1", "Deployment", "podinfo", NS)
        assert target is not None and target["spec"]["replicas"] == 0

        async def aborted_message() -> bool:
            return "Aborted" in kinds(delivered(receiver, SLACK_PATH))

        await eventually(aborted_message, timeout=10, what="the Aborted message")
        assert_all_well_formed(receiver)
        aborted = one(delivered(receiver, SLACK_PATH), "Aborted")
        assert "aborted by bob" in aborted.body, aborted.body
        assert aborted.colour == SLACK_COLOURS["warn"]
