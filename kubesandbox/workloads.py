"""A kwok-like workload simulator: the controllers and kubelets of a small fake cluster.

The sandbox has no nodes, scheduler or kubelet, yet the canary controller waits for
Deployments and DaemonSets to become ready, exactly as Flagger does (observedGeneration,
updated/ready/available replicas, the ``Available`` and ``Progressing`` conditions and
``ProgressDeadlineExceeded``). This module plays those parts inside the sandbox process,
writing through the store so every change produces the watch events a real cluster would:

* Deployment controller: ReplicaSets ``<deployment>-<pod-template-hash>``, rolling updates
  honouring ``maxSurge``/``maxUnavailable`` (or ``Recreate``), scale to/from zero, revision
  annotations, history cleanup, status with conditions and progress deadline.
* ReplicaSet controller: Pods ``<replicaset>-<5 chars>`` with labels and ownerReferences;
  status with ready/available counts (``minReadySeconds`` honoured).
* DaemonSet controller: one Pod per matching node of a fixed node list, rolling updates.
* Scheduler + kubelet: nodeName, podIP (from the documentation ranges 198.51.100.0/24 and
  203.0.113.0/24; never contacted), Running, and Ready after a delay.

Failure injection through Pod-template annotations (times are divided by ``speed``):

* ``sandbox.canary.gitops.dev/ready-after: "5s"`` — readiness delay (default ``ready_delay``);
* ``sandbox.canary.gitops.dev/behaviour``: ``never-ready`` (Running, never Ready),
  ``crash-loop`` (CrashLoopBackOff with growing restart counts), ``slow`` (Ready after five
  times the delay), ``unschedulable`` (Pending, PodScheduled=False).

The same behaviours follow a container image whose tag ends with ``-<behaviour>``
(``ghcr.io/org/app:1.1.0-crash-loop``), as a broken release would: a test can then break a
release by its image alone, the way an ``images:`` entry or image automation changes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import logging
import math
import re
from collections.abc import Iterator
from typing import Any

from .apiserver import ApiError, Store, StoreEvent
from .apiserver._util import NAME_ALPHABET, canonical, deep_copy, rfc3339
from .apiserver.selectors import SelectorError, selector_from_object

log = logging.getLogger("kubesandbox.workloads")

JsonObj = dict[str, Any]
Key = tuple[str, str, str]  # (kind, namespace, name)

ANNOTATION_PREFIX = "sandbox.canary.gitops.dev/"
READY_AFTER = ANNOTATION_PREFIX + "ready-after"
BEHAVIOUR = ANNOTATION_PREFIX + "behaviour"
BEHAVIOURS = ("normal", "never-ready", "crash-loop", "slow", "unschedulable")
SLOW_FACTOR = 5.0
CRASH_BACKOFF = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)


def _image_behaviour(spec: JsonObj) -> str:
    """A behaviour named by a container image's tag suffix (``app:1.0-never-ready``)."""
    for container in spec.get("containers") or ():
        tag = str((container or {}).get("image", "")).rpartition(":")[2]
        for behaviour in BEHAVIOURS[1:]:
            if tag.endswith(f"-{behaviour}"):
                return behaviour
    return "normal"


MANAGER = "kube-controller-manager"
KUBELET = "kubelet"
SCHEDULER = "default-scheduler"
REVISION = "deployment.kubernetes.io/revision"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
HASH_LABEL = "pod-template-hash"
DS_HASH_LABEL = "controller-revision-hash"

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def parse_duration(text: str) -> float | None:
    """``"500ms"``, ``"5s"``, ``"1m30s"``, ``"2"`` (seconds) -> seconds; None if malformed."""
    text = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            return None
        total += float(m[1]) * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[m[2]]
        pos = m.end()
    return total if pos == len(text) and pos > 0 else None


def template_hash(template: Any) -> str:
    """A stable pod-template hash in Kubernetes' alphabet (10 characters)."""
    number = int(hashlib.sha256(canonical(template).encode()).hexdigest(), 16)
    chars = []
    for _ in range(10):
        number, rest = divmod(number, len(NAME_ALPHABET))
        chars.append(NAME_ALPHABET[rest])
    return "".join(chars)


def resolve_int_or_percent(value: Any, total: int, *, round_up: bool) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text.endswith("%"):
        try:
            pct = float(text[:-1])
        except ValueError:
            return 0
        raw = pct * total / 100.0
        return math.ceil(raw) if round_up else math.floor(raw)
    try:
        return int(text)
    except ValueError:
        return 0


def _controller_ref(obj: JsonObj) -> JsonObj | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            return ref
    return None


def _owner_ref(owner: JsonObj) -> JsonObj:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _set_condition(
    conditions: list[JsonObj],
    ctype: str,
    status: str,
    reason: str,
    message: str,
    *,
    touch: bool = False,
    update_time: bool = False,
) -> None:
    """Set a condition like the deployment controller: unchanged status+reason keeps it as is
    unless ``touch``; a changed condition moves to the end of the list."""
    now = rfc3339()
    current = next((c for c in conditions if c.get("type") == ctype), None)
    if (
        current is not None
        and current.get("status") == status
        and current.get("reason") == reason
        and not touch
    ):
        return
    cond: JsonObj = {"type": ctype, "status": status}
    if update_time:
        cond["lastUpdateTime"] = now
    cond["lastTransitionTime"] = (
        current.get("lastTransitionTime", now)
        if current is not None and current.get("status") == status
        else now
    )
    cond["reason"] = reason
    cond["message"] = message
    conditions[:] = [c for c in conditions if c.get("type") != ctype] + [cond]


class _IPPool:
    def __init__(self) -> None:
        self._addresses = [
            str(ip)
            for net in ("198.51.100.0/24", "203.0.113.0/24")
            for ip in ipaddress.ip_network(net).hosts()
        ]
        self._next = 0
        self._used: set[str] = set()

    def take(self) -> str:
        for _ in range(len(self._addresses)):
            ip = self._addresses[self._next % len(self._addresses)]
            self._next += 1
            if ip not in self._used:
                self._used.add(ip)
                return ip
        ip = self._addresses[self._next % len(self._addresses)]  # exhausted: reuse (documented)
        self._next += 1
        return ip

    def give_back(self, ip: str | None) -> None:
        if ip:
            self._used.discard(ip)


class WorkloadSimulator:
    """Runs the simulated controllers as one asyncio task reacting to store events."""

    def __init__(
        self, store: Store, *, speed: float = 1.0, nodes: int = 2, ready_delay: float = 1.0
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.store = store
        self.speed = speed
        self.node_count = nodes
        self.ready_delay = ready_delay
        self._queue: asyncio.Queue[Key] = asyncio.Queue()
        self._pending: set[Key] = set()
        self._task: asyncio.Task[None] | None = None
        self._unlisten: Any = None
        self._timers: dict[Key, asyncio.TimerHandle] = {}
        self._pod_seen: dict[str, float] = {}
        self._pod_ready_at: dict[str, float] = {}
        self._pod_ips: dict[str, str] = {}
        self._progress_at: dict[str, float] = {}
        self._ips = _IPPool()
        self._node_cursor = 0
        self.errors = 0

    # ------------------------------------------------------------------ lifecycle

    def scaled(self, seconds: float) -> float:
        return seconds / self.speed

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def start(self) -> None:
        self._ensure_nodes()
        self._unlisten = self.store.add_listener(self._on_event)
        for kind in ("Deployment", "ReplicaSet", "DaemonSet", "Pod"):
            for obj in self.store.peek_all(kind.lower() + "s"):
                self._enqueue((kind, obj["metadata"].get("namespace", ""), obj["metadata"]["name"]))
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name="sandbox-workload-simulator"
        )

    async def stop(self) -> None:
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            key = await self._queue.get()
            self._pending.discard(key)
            try:
                self._reconcile(key)
            except ApiError as exc:
                if exc.code in (404, 409):
                    self._enqueue(key)  # a race with another writer: look again
                else:
                    self.errors += 1
                    log.warning("simulator: %s %s/%s: %s", key[0], key[1], key[2], exc.message)
            except Exception:
                self.errors += 1
                log.exception("simulator failed on %s %s/%s", *key)
            await asyncio.sleep(0)

    def _enqueue(self, key: Key) -> None:
        if key not in self._pending:
            self._pending.add(key)
            self._queue.put_nowait(key)

    def _enqueue_later(self, key: Key, delay: float) -> None:
        loop = asyncio.get_running_loop()
        existing = self._timers.get(key)
        when = loop.time() + max(0.0, delay)
        if existing is not None and existing.when() <= when:
            return
        if existing is not None:
            existing.cancel()

        def fire() -> None:
            self._timers.pop(key, None)
            self._enqueue(key)

        self._timers[key] = loop.call_at(when, fire)

    def _on_event(self, event: StoreEvent) -> None:
        group, plural = event.key
        meta = event.obj["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        if (group, plural) == ("apps", "deployments"):
            self._enqueue(("Deployment", ns, name))
        elif (group, plural) == ("apps", "replicasets"):
            self._enqueue(("ReplicaSet", ns, name))
            self._enqueue_owner(event.obj, "Deployment")
        elif (group, plural) == ("apps", "daemonsets"):
            self._enqueue(("DaemonSet", ns, name))
        elif (group, plural) == ("", "pods"):
            if event.type == "DELETED":
                uid = meta["uid"]
                self._pod_seen.pop(uid, None)
                self._pod_ready_at.pop(uid, None)
                self._ips.give_back(self._pod_ips.pop(uid, None))
            else:
                self._enqueue(("Pod", ns, name))
            self._enqueue_owner(event.obj, "ReplicaSet")
            self._enqueue_owner(event.obj, "DaemonSet")
        elif (group, plural) == ("", "nodes"):
            for ds in self.store.peek_all("daemonsets"):
                self._enqueue(("DaemonSet", ds["metadata"]["namespace"], ds["metadata"]["name"]))

    def _enqueue_owner(self, obj: JsonObj, kind: str) -> None:
        ref = _controller_ref(obj)
        if ref is not None and ref.get("kind") == kind:
            self._enqueue((kind, obj["metadata"].get("namespace", ""), str(ref.get("name"))))

    def _reconcile(self, key: Key) -> None:
        kind, ns, name = key
        if kind == "Deployment":
            self._deployment(ns, name)
        elif kind == "ReplicaSet":
            self._replicaset(ns, name)
        elif kind == "DaemonSet":
            self._daemonset(ns, name)
        elif kind == "Pod":
            self._pod(ns, name)

    # ------------------------------------------------------------------ nodes

    def _ensure_nodes(self) -> None:
        for i in range(1, self.node_count + 1):
            name = f"sandbox-node-{i}"
            if self.store.peek("nodes", None, name) is not None:
                continue
            self.store.create(
                "nodes",
                None,
                {
                    "metadata": {
                        "name": name,
                        "labels": {
                            "kubernetes.io/hostname": name,
                            "kubernetes.io/os": "linux",
                            "kubernetes.io/arch": "amd64",
                            "node-role.kubernetes.io/worker": "",
                        },
                    },
                    "spec": {"podCIDR": f"10.244.{i}.0/24"},
                },
                manager=KUBELET,
            )

            def status(o: JsonObj, i: int = i) -> None:
                now = rfc3339()
                o["status"] = {
                    "addresses": [
                        {"type": "InternalIP", "address": f"192.0.2.{10 + i}"},
                        {"type": "Hostname", "address": o["metadata"]["name"]},
                    ],
                    "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"},
                    "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"},
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "True",
                            "reason": "KubeletReady",
                            "message": "kubelet is posting ready status",
                            "lastHeartbeatTime": now,
                            "lastTransitionTime": now,
                        },
                    ],
                    "nodeInfo": {
                        "kubeletVersion": "v1.32.0-canary-sandbox",
                        "operatingSystem": "linux",
                        "architecture": "amd64",
                        "containerRuntimeVersion": "sandbox://1.0",
                        "kernelVersion": "",
                        "osImage": "sandbox",
                        "kubeProxyVersion": "",
                        "machineID": "",
                        "systemUUID": "",
                        "bootID": "",
                    },
                }

            self.store.update_with(
                "nodes", None, name, status, subresource="status", manager=KUBELET
            )

    def _schedulable_nodes(self, node_selector: Any) -> list[JsonObj]:
        selector = node_selector if isinstance(node_selector, dict) else {}
        nodes = []
        for node in sorted(self.store.peek_all("nodes"), key=lambda n: n["metadata"]["name"]):
            labels = node["metadata"].get("labels") or {}
            if (node.get("spec") or {}).get("unschedulable"):
                continue
            if all(labels.get(k) == v for k, v in selector.items()):
                nodes.append(node)
        return nodes

    # ------------------------------------------------------------------ pods (scheduler + kubelet)

    def _pod(self, ns: str, name: str) -> None:
        pod = self._live("pods", ns, name)
        if pod is None:
            return
        meta, spec = pod["metadata"], pod.get("spec") or {}
        uid = meta["uid"]
        now = self._now()
        first_seen = self._pod_seen.setdefault(uid, now)
        annotations = meta.get("annotations") or {}
        behaviour = str(annotations.get(BEHAVIOUR, _image_behaviour(spec)))
        if behaviour not in BEHAVIOURS:
            log.warning(
                "pod %s/%s: unknown %s %r; treating as normal", ns, name, BEHAVIOUR, behaviour
            )
            behaviour = "normal"
        if not spec.get("nodeName"):
            self._schedule(pod, behaviour)
            return
        delay = self.ready_delay
        if READY_AFTER in annotations:
            parsed = parse_duration(str(annotations[READY_AFTER]))
            if parsed is None:
                log.warning(
                    "pod %s/%s: malformed %s %r", ns, name, READY_AFTER, annotations[READY_AFTER]
                )
            else:
                delay = parsed
        if behaviour == "slow":
            delay *= SLOW_FACTOR
        elapsed = now - first_seen
        ready_in = self.scaled(delay) - elapsed
        ready = behaviour in ("normal", "slow") and ready_in <= 0
        restarts, next_restart = 0, None
        if behaviour == "crash-loop":
            restarts, next_restart = self._crash_schedule(elapsed)
        if ready:
            self._pod_ready_at.setdefault(uid, now)
        elif behaviour in ("normal", "slow"):
            self._enqueue_later(("Pod", ns, name), ready_in)
        if next_restart is not None:
            self._enqueue_later(("Pod", ns, name), next_restart)
        ip = self._pod_ips.get(uid) or (pod.get("status") or {}).get("podIP")
        if not ip:
            ip = self._ips.take()
        self._pod_ips[uid] = ip
        desired = self._pod_status(
            pod, ready=ready, crash=behaviour == "crash-loop", restarts=restarts, ip=ip
        )
        self._set_status("pods", ns, name, desired, pod.get("status"), manager=KUBELET)

    def _set_status(
        self,
        resource: str,
        ns: str,
        name: str,
        status: JsonObj,
        current: object,
        *,
        manager: str = MANAGER,
    ) -> None:
        """Write ``status`` through the status subresource, as its controller (or the kubelet)
        does, and only when it changed: an unchanged write would still wake every watcher."""
        if status != current:
            self.store.update_with(
                resource,
                ns,
                name,
                lambda o: o.__setitem__("status", status),
                subresource="status",
                manager=manager,
            )

    def _crash_schedule(self, elapsed: float) -> tuple[int, float]:
        """Restarts so far and seconds until the next one, with a growing back-off."""
        t, restarts = 0.0, 0
        while True:
            step = self.scaled(CRASH_BACKOFF[min(restarts, len(CRASH_BACKOFF) - 1)])
            if t + step > elapsed:
                return restarts, t + step - elapsed
            t += step
            restarts += 1

    def _schedule(self, pod: JsonObj, behaviour: str) -> None:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        nodes = (
            []
            if behaviour == "unschedulable"
            else self._schedulable_nodes(spec.get("nodeSelector"))
        )
        if not nodes:
            conditions = [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "lastProbeTime": None,
                    "lastTransitionTime": rfc3339(),
                    "reason": "Unschedulable",
                    "message": f"0/{self.node_count} nodes are available: simulated scheduling failure.",
                }
            ]
            old = (pod.get("status") or {}).get("conditions") or []
            if [c.get("reason") for c in old] != ["Unschedulable"]:
                self.store.update_with(
                    "pods",
                    meta["namespace"],
                    meta["name"],
                    lambda o: o.__setitem__(
                        "status",
                        {"phase": "Pending", "conditions": conditions, "qosClass": "BestEffort"},
                    ),
                    subresource="status",
                    manager=SCHEDULER,
                )
            return
        node = nodes[self._node_cursor % len(nodes)]
        self._node_cursor += 1
        node_name = node["metadata"]["name"]
        self.store.update_with(
            "pods",
            meta["namespace"],
            meta["name"],
            lambda o: o["spec"].__setitem__("nodeName", node_name),
            manager=SCHEDULER,
        )

    def _pod_status(
        self, pod: JsonObj, *, ready: bool, crash: bool, restarts: int, ip: str
    ) -> JsonObj:
        spec = pod.get("spec") or {}
        old = pod.get("status") or {}
        old_conditions = {
            c.get("type"): c for c in old.get("conditions") or [] if isinstance(c, dict)
        }
        started = old.get("startTime") or rfc3339()
        node = self.store.peek("nodes", None, str(spec.get("nodeName")))
        host_ip = next(
            (
                a["address"]
                for a in ((node or {}).get("status") or {}).get("addresses") or []
                if a.get("type") == "InternalIP"
            ),
            "192.0.2.10",
        )

        def cond(ctype: str, ok: bool) -> JsonObj:
            status = "True" if ok else "False"
            previous = old_conditions.get(ctype)
            when = (
                previous.get("lastTransitionTime")
                if previous and previous.get("status") == status
                else rfc3339()
            )
            c: JsonObj = {
                "type": ctype,
                "status": status,
                "lastProbeTime": None,
                "lastTransitionTime": when,
            }
            if not ok and ctype in ("Ready", "ContainersReady"):
                c["reason"] = "ContainersNotReady"
                names = " ".join(
                    str(container.get("name")) for container in spec.get("containers") or []
                )
                c["message"] = f"containers with unready status: [{names}]"
            return c

        old_statuses = {
            c.get("name"): c for c in old.get("containerStatuses") or [] if isinstance(c, dict)
        }
        statuses = []
        for c in spec.get("containers") or []:
            cname = str(c.get("name"))
            previous = old_statuses.get(cname) or {}
            started_at = ((previous.get("state") or {}).get("running") or {}).get(
                "startedAt"
            ) or started
            entry: JsonObj = {
                "name": cname,
                "image": c.get("image"),
                "imageID": f"sandbox://{c.get('image')}",
                "containerID": f"sandbox://{pod['metadata']['uid'][:8]}-{cname}",
                "ready": ready,
                "restartCount": restarts,
                "started": not crash,
            }
            if crash and restarts > 0:
                entry["state"] = {
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": "back-off restarting failed container (simulated)",
                    }
                }
                entry["lastState"] = {
                    "terminated": {
                        "exitCode": 1,
                        "reason": "Error",
                        "startedAt": started,
                        "finishedAt": started,
                    }
                }
            else:
                entry["state"] = {"running": {"startedAt": started_at}}
            statuses.append(entry)
        return {
            "phase": "Running",
            "conditions": [
                cond("PodReadyToStartContainers", True),
                cond("Initialized", True),
                cond("Ready", ready),
                cond("ContainersReady", ready),
                cond("PodScheduled", True),
            ],
            "hostIP": host_ip,
            "hostIPs": [{"ip": host_ip}],
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": started,
            "containerStatuses": statuses,
            "qosClass": old.get("qosClass", "BestEffort"),
        }

    def _pod_ready(self, pod: JsonObj) -> bool:
        if pod["metadata"].get("deletionTimestamp"):
            return False
        for c in (pod.get("status") or {}).get("conditions") or []:
            if c.get("type") == "Ready":
                return bool(c.get("status") == "True")
        return False

    def _pod_available(self, pod: JsonObj, min_ready: float) -> tuple[bool, float | None]:
        """Available = ready for ``minReadySeconds``; returns (available, seconds until it is)."""
        if not self._pod_ready(pod):
            return False, None
        if min_ready <= 0:
            return True, None
        since = self._pod_ready_at.get(pod["metadata"]["uid"], self._now())
        left = self.scaled(min_ready) - (self._now() - since)
        return left <= 0, (left if left > 0 else None)

    # ------------------------------------------------------------------ replicasets

    def _owned(self, owner: JsonObj, kind: str) -> list[JsonObj]:
        return [
            o
            for o in self.store.dependents_of(owner["metadata"]["uid"])
            if o.get("kind") == kind
            and (_controller_ref(o) or {}).get("uid") == owner["metadata"]["uid"]
        ]

    def _live_pods(self, owner: JsonObj) -> list[JsonObj]:
        """The pods ``owner`` controls that are not being deleted."""
        return [p for p in self._owned(owner, "Pod") if not p["metadata"].get("deletionTimestamp")]

    def _live(self, plural: str, ns: str, name: str) -> JsonObj | None:
        """The object, unless it is gone or being deleted (there is nothing to drive then)."""
        obj = self.store.peek(plural, ns, name)
        return None if obj is None or obj["metadata"].get("deletionTimestamp") else obj

    def _replicaset(self, ns: str, name: str) -> None:
        rs = self._live("replicasets", ns, name)
        if rs is None:
            return
        spec = rs.get("spec") or {}
        desired = int(spec.get("replicas", 1))
        pods = self._live_pods(rs)
        if len(pods) < desired:
            template = spec.get("template") or {}
            tmeta = template.get("metadata") or {}
            for _ in range(desired - len(pods)):
                body: JsonObj = {
                    "metadata": {
                        "generateName": f"{name}-",
                        "namespace": ns,
                        "labels": dict(tmeta.get("labels") or {}),
                        "ownerReferences": [_owner_ref(rs)],
                    },
                    "spec": deep_copy(template.get("spec") or {}),
                }
                if tmeta.get("annotations"):
                    body["metadata"]["annotations"] = dict(tmeta["annotations"])
                self.store.create("pods", ns, body, manager=MANAGER)
        elif len(pods) > desired:
            victims = sorted(
                pods,
                key=lambda p: (
                    self._pod_ready(p),
                    p["metadata"].get("creationTimestamp", ""),
                    p["metadata"]["name"],
                ),
                reverse=False,
            )
            # unready first, then the newest
            unready = [p for p in victims if not self._pod_ready(p)]
            ready = sorted(
                (p for p in victims if self._pod_ready(p)),
                key=lambda p: (p["metadata"].get("creationTimestamp", ""), p["metadata"]["name"]),
                reverse=True,
            )
            for pod in (unready + ready)[: len(pods) - desired]:
                with contextlib.suppress(ApiError):
                    self.store.delete("pods", ns, pod["metadata"]["name"])
        pods = self._live_pods(rs)
        min_ready = float(spec.get("minReadySeconds", 0) or 0)
        available = 0
        for pod in pods:
            ok, wait = self._pod_available(pod, min_ready)
            available += ok
            if wait is not None:
                self._enqueue_later(("ReplicaSet", ns, name), wait)
        try:
            selector = selector_from_object(spec.get("selector"))
        except SelectorError:
            selector = None
        labeled = sum(
            1 for p in pods if selector is None or selector.matches(p["metadata"].get("labels"))
        )
        status: JsonObj = {"replicas": len(pods)}
        if labeled:
            status["fullyLabeledReplicas"] = labeled
        ready_count = sum(1 for p in pods if self._pod_ready(p))
        if ready_count:
            status["readyReplicas"] = ready_count
        if available:
            status["availableReplicas"] = available
        status["observedGeneration"] = rs["metadata"].get("generation", 1)
        self._set_status("replicasets", ns, name, status, rs.get("status"))

    # ------------------------------------------------------------------ deployments

    def _deployment(self, ns: str, name: str) -> None:
        dep = self._live("deployments", ns, name)
        if dep is None:
            return
        spec = dep.get("spec") or {}
        desired = int(spec.get("replicas", 1))
        template = spec.get("template") or {}
        digest = template_hash(template)
        all_rs = sorted(
            self._owned(dep, "ReplicaSet"),
            key=lambda r: (r["metadata"].get("creationTimestamp", ""), r["metadata"]["name"]),
        )
        new_rs = next(
            (r for r in all_rs if (r["metadata"].get("labels") or {}).get(HASH_LABEL) == digest),
            None,
        )
        old_rs = [r for r in all_rs if r is not new_rs]
        strategy = spec.get("strategy") or {}
        ru = strategy.get("rollingUpdate") or {}
        max_surge = resolve_int_or_percent(ru.get("maxSurge", "25%"), desired, round_up=True)
        max_unavailable = resolve_int_or_percent(
            ru.get("maxUnavailable", "25%"), desired, round_up=False
        )
        if strategy.get("type") == "Recreate":
            max_surge, max_unavailable = 0, desired
        if max_surge == 0 and max_unavailable == 0:
            max_unavailable = 1
        revisions = [
            int((r["metadata"].get("annotations") or {}).get(REVISION, "0") or 0) for r in all_rs
        ]
        max_revision = max(revisions, default=0)
        created_new = False
        paused = bool(spec.get("paused"))

        if new_rs is None and not paused:
            old_total = sum(int((r.get("spec") or {}).get("replicas", 0)) for r in old_rs)
            if strategy.get("type") == "Recreate":
                start = desired if old_total == 0 else 0
            elif not old_rs or old_total == 0:
                start = desired
            else:
                start = max(0, min(desired, desired + max_surge - old_total))
            new_rs = self._create_rs(dep, template, digest, start, max_revision + 1, max_surge)
            created_new = True
            if new_rs is None:
                return
        elif new_rs is not None and old_rs and not paused:
            revision = int((new_rs["metadata"].get("annotations") or {}).get(REVISION, "0") or 0)
            if revision < max_revision:
                self._annotate_rs(new_rs, {REVISION: str(max_revision + 1)})

        if not paused and new_rs is not None:
            self._scale(
                dep,
                new_rs,
                old_rs,
                desired,
                max_surge,
                max_unavailable,
                strategy.get("type") == "Recreate",
            )
            self._cleanup_history(dep, old_rs, int(spec.get("revisionHistoryLimit", 10)))
            revision = (
                (self.store.peek("replicasets", ns, new_rs["metadata"]["name"]) or new_rs)[
                    "metadata"
                ]
                .get("annotations", {})
                .get(REVISION)
            )
            if revision and (dep["metadata"].get("annotations") or {}).get(REVISION) != revision:
                # through /status, as the deployment controller writes it: a change of a
                # Deployment's annotations through the main resource would be a new generation
                self.store.update_with(
                    "deployments",
                    ns,
                    name,
                    lambda o: (
                        o["metadata"].setdefault("annotations", {}).__setitem__(REVISION, revision)
                    ),
                    subresource="status",
                    manager=MANAGER,
                )
        self._deployment_status(ns, name, created_new, max_unavailable)

    def _create_rs(
        self,
        dep: JsonObj,
        template: JsonObj,
        digest: str,
        replicas: int,
        revision: int,
        max_surge: int,
    ) -> JsonObj | None:
        meta = dep["metadata"]
        ns = meta["namespace"]
        name = f"{meta['name']}-{digest}"
        rs_template = deep_copy(template)
        rs_template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = digest
        selector = deep_copy((dep.get("spec") or {}).get("selector") or {})
        selector.setdefault("matchLabels", {})[HASH_LABEL] = digest
        labels = dict((template.get("metadata") or {}).get("labels") or {})
        labels[HASH_LABEL] = digest
        desired = int((dep.get("spec") or {}).get("replicas", 1))
        body = {
            "metadata": {
                "name": name,
                "namespace": ns,
                "labels": labels,
                "annotations": {
                    REVISION: str(revision),
                    DESIRED: str(desired),
                    MAX_REPLICAS: str(desired + max_surge),
                },
                "ownerReferences": [_owner_ref(dep)],
            },
            "spec": {
                "replicas": replicas,
                "minReadySeconds": int((dep.get("spec") or {}).get("minReadySeconds", 0) or 0),
                "selector": selector,
                "template": rs_template,
            },
        }
        try:
            created = self.store.create("replicasets", ns, body, manager=MANAGER)
        except ApiError as exc:
            if exc.code == 409:
                return None  # a name collision with a ReplicaSet we do not own
            raise
        self._progress_at[meta["uid"]] = self._now()
        return self.store.peek("replicasets", ns, created.obj["metadata"]["name"])

    def _annotate_rs(self, rs: JsonObj, annotations: dict[str, str]) -> None:
        current = rs["metadata"].get("annotations") or {}
        if all(current.get(k) == v for k, v in annotations.items()):
            return
        self.store.update_with(
            "replicasets",
            rs["metadata"]["namespace"],
            rs["metadata"]["name"],
            lambda o: o["metadata"].setdefault("annotations", {}).update(annotations),
            manager=MANAGER,
        )

    def _set_replicas(self, rs: JsonObj, replicas: int, desired: int, max_surge: int) -> None:
        spec_replicas = int((rs.get("spec") or {}).get("replicas", 0))
        annotations = rs["metadata"].get("annotations") or {}
        wanted = {DESIRED: str(desired), MAX_REPLICAS: str(desired + max_surge)}
        if spec_replicas == replicas and all(annotations.get(k) == v for k, v in wanted.items()):
            return

        def mutate(o: JsonObj) -> None:
            o["spec"]["replicas"] = replicas
            o["metadata"].setdefault("annotations", {}).update(wanted)

        self.store.update_with(
            "replicasets",
            rs["metadata"]["namespace"],
            rs["metadata"]["name"],
            mutate,
            manager=MANAGER,
        )

    def _scale(
        self,
        dep: JsonObj,
        new_rs: JsonObj,
        old_rs: list[JsonObj],
        desired: int,
        max_surge: int,
        max_unavailable: int,
        recreate: bool,
    ) -> None:
        def replicas(rs: JsonObj) -> int:
            return int((rs.get("spec") or {}).get("replicas", 0))

        def available(rs: JsonObj) -> int:
            return int((rs.get("status") or {}).get("availableReplicas", 0))

        active_old = [r for r in old_rs if replicas(r) > 0]
        if recreate:
            if active_old:
                for rs in active_old:
                    self._set_replicas(rs, 0, desired, max_surge)
                return
            if any(int((r.get("status") or {}).get("replicas", 0)) > 0 for r in old_rs):
                return  # wait for the old pods to go away
            self._set_replicas(new_rs, desired, desired, max_surge)
            return
        if not active_old:
            self._set_replicas(new_rs, desired, desired, max_surge)
            return
        # scale up the new ReplicaSet within maxSurge
        total = replicas(new_rs) + sum(replicas(r) for r in active_old)
        if replicas(new_rs) > desired:
            target_new = desired
        else:
            target_new = min(desired, replicas(new_rs) + max(0, desired + max_surge - total))
        if target_new != replicas(new_rs):
            self._set_replicas(new_rs, target_new, desired, max_surge)
            new_rs = (
                self.store.peek(
                    "replicasets", new_rs["metadata"]["namespace"], new_rs["metadata"]["name"]
                )
                or new_rs
            )
        # scale down old ones within maxUnavailable: unhealthy replicas first, then available ones
        min_available = desired - max_unavailable
        new_unavailable = max(0, replicas(new_rs) - available(new_rs))
        all_pods = replicas(new_rs) + sum(replicas(r) for r in active_old)
        budget = all_pods - min_available - new_unavailable
        if budget <= 0:
            return
        targets = {r["metadata"]["name"]: replicas(r) for r in active_old}
        for rs in active_old:
            if budget <= 0:
                break
            unhealthy = max(0, replicas(rs) - available(rs))
            cut = min(unhealthy, budget)
            targets[rs["metadata"]["name"]] -= cut
            budget -= cut
        available_total = available(new_rs) + sum(
            min(available(r), targets[r["metadata"]["name"]]) for r in active_old
        )
        down = max(0, available_total - min_available)
        for rs in active_old:
            if down <= 0:
                break
            cut = min(targets[rs["metadata"]["name"]], down)
            targets[rs["metadata"]["name"]] -= cut
            down -= cut
        for rs in active_old:
            target = targets[rs["metadata"]["name"]]
            if target != replicas(rs):
                self._set_replicas(rs, target, desired, max_surge)

    def _cleanup_history(self, dep: JsonObj, old_rs: list[JsonObj], limit: int) -> None:
        idle = [
            r
            for r in old_rs
            if int((r.get("spec") or {}).get("replicas", 0)) == 0
            and int((r.get("status") or {}).get("replicas", 0)) == 0
        ]
        for rs in idle[: max(0, len(idle) - limit)]:
            with contextlib.suppress(ApiError):
                self.store.delete(
                    "replicasets", rs["metadata"]["namespace"], rs["metadata"]["name"]
                )

    def _deployment_status(
        self, ns: str, name: str, created_new: bool, max_unavailable: int
    ) -> None:
        dep = self.store.peek("deployments", ns, name)
        if dep is None:
            return
        spec = dep.get("spec") or {}
        desired = int(spec.get("replicas", 1))
        digest = template_hash(spec.get("template") or {})
        all_rs = self._owned(dep, "ReplicaSet")
        new_rs = next(
            (r for r in all_rs if (r["metadata"].get("labels") or {}).get(HASH_LABEL) == digest),
            None,
        )

        def st(rs: JsonObj | None, key: str) -> int:
            return int(((rs or {}).get("status") or {}).get(key, 0))

        replicas = sum(st(r, "replicas") for r in all_rs)
        updated = st(new_rs, "replicas")
        ready = sum(st(r, "readyReplicas") for r in all_rs)
        available = sum(st(r, "availableReplicas") for r in all_rs)
        total_spec = sum(int((r.get("spec") or {}).get("replicas", 0)) for r in all_rs)
        unavailable = max(0, total_spec - available)
        old_status = dep.get("status") or {}
        status: JsonObj = {"observedGeneration": dep["metadata"].get("generation", 1)}
        for key, value in (
            ("replicas", replicas),
            ("updatedReplicas", updated),
            ("readyReplicas", ready),
            ("availableReplicas", available),
            ("unavailableReplicas", unavailable),
        ):
            if value:
                status[key] = value
        conditions = deep_copy(old_status.get("conditions") or [])
        if available >= desired - max_unavailable:
            _set_condition(
                conditions,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                update_time=True,
            )
        else:
            _set_condition(
                conditions,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                update_time=True,
            )
        rs_name = new_rs["metadata"]["name"] if new_rs else name
        uid = dep["metadata"]["uid"]
        now = self._now()
        complete = (
            new_rs is not None
            and updated == desired
            and replicas == desired
            and available == desired
            and status["observedGeneration"] >= dep["metadata"].get("generation", 1)
            and st(new_rs, "replicas") == desired
        )
        progressing = (
            updated > int(old_status.get("updatedReplicas", 0))
            or (replicas - updated)
            < (int(old_status.get("replicas", 0)) - int(old_status.get("updatedReplicas", 0)))
            or ready > int(old_status.get("readyReplicas", 0))
            or available > int(old_status.get("availableReplicas", 0))
        )
        current = next((c for c in conditions if c.get("type") == "Progressing"), None)
        deadline = spec.get("progressDeadlineSeconds")
        if spec.get("paused"):
            _set_condition(
                conditions,
                "Progressing",
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused",
                update_time=True,
            )
        elif complete:
            _set_condition(
                conditions,
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                f'ReplicaSet "{rs_name}" has successfully progressed.',
                update_time=True,
            )
        elif created_new:
            _set_condition(
                conditions,
                "Progressing",
                "True",
                "NewReplicaSetCreated",
                f'Created new replica set "{rs_name}"',
                update_time=True,
            )
            self._progress_at[uid] = now
        elif current is None:
            _set_condition(
                conditions,
                "Progressing",
                "True",
                "FoundNewReplicaSet",
                f'Found new replica set "{rs_name}"',
                update_time=True,
            )
            self._progress_at[uid] = now
        elif progressing or (current.get("reason") == "NewReplicaSetAvailable" and not complete):
            if current.get("reason") != "ProgressDeadlineExceeded" or progressing:
                _set_condition(
                    conditions,
                    "Progressing",
                    "True",
                    "ReplicaSetUpdated",
                    f'ReplicaSet "{rs_name}" is progressing.',
                    touch=True,
                    update_time=True,
                )
                self._progress_at[uid] = now
        current = next((c for c in conditions if c.get("type") == "Progressing"), None)
        if (
            not complete
            and not spec.get("paused")
            and deadline is not None
            and current is not None
            and current.get("status") == "True"
            and current.get("reason") != "NewReplicaSetAvailable"
        ):
            since = self._progress_at.setdefault(uid, now)
            left = self.scaled(float(deadline)) - (now - since)
            if left <= 0:
                _set_condition(
                    conditions,
                    "Progressing",
                    "False",
                    "ProgressDeadlineExceeded",
                    f'ReplicaSet "{rs_name}" has timed out progressing.',
                    update_time=True,
                )
            else:
                self._enqueue_later(("Deployment", ns, name), left + 0.001)
        status["conditions"] = conditions
        if old_status.get("collisionCount") is not None:
            status["collisionCount"] = old_status["collisionCount"]
        self._set_status("deployments", ns, name, status, old_status)

    # ------------------------------------------------------------------ daemonsets

    def _daemonset(self, ns: str, name: str) -> None:
        ds = self._live("daemonsets", ns, name)
        if ds is None:
            return
        spec = ds.get("spec") or {}
        template = spec.get("template") or {}
        digest = template_hash(template)
        nodes = self._schedulable_nodes((template.get("spec") or {}).get("nodeSelector"))
        node_names = [n["metadata"]["name"] for n in nodes]
        pods = self._live_pods(ds)
        by_node: dict[str, list[JsonObj]] = {}
        for pod in pods:
            by_node.setdefault(str((pod.get("spec") or {}).get("nodeName")), []).append(pod)
        # pods on nodes that no longer match, and duplicates
        for node, node_pods in by_node.items():
            extra = node_pods if node not in node_names else node_pods[1:]
            for pod in extra:
                with contextlib.suppress(ApiError):
                    self.store.delete("pods", ns, pod["metadata"]["name"])
        ru = (spec.get("updateStrategy") or {}).get("rollingUpdate") or {}
        max_unavailable = max(
            1, resolve_int_or_percent(ru.get("maxUnavailable", 1), len(node_names), round_up=False)
        )
        on_delete = (spec.get("updateStrategy") or {}).get("type") == "OnDelete"
        unavailable = sum(
            1 for n in node_names if not by_node.get(n) or not self._pod_ready(by_node[n][0])
        )
        for node in node_names:
            current = by_node.get(node, [])
            if not current:
                self._create_ds_pod(ds, template, digest, node)
                continue
            pod = current[0]
            outdated = (pod["metadata"].get("labels") or {}).get(DS_HASH_LABEL) != digest
            if outdated and not on_delete:
                if not self._pod_ready(pod) or unavailable < max_unavailable:
                    if self._pod_ready(pod):
                        unavailable += 1
                    with contextlib.suppress(ApiError):
                        self.store.delete("pods", ns, pod["metadata"]["name"])
        pods = self._live_pods(ds)
        scheduled = {str((p.get("spec") or {}).get("nodeName")) for p in pods}
        min_ready = float(spec.get("minReadySeconds", 0) or 0)
        ready = sum(1 for p in pods if self._pod_ready(p))
        available = 0
        for pod in pods:
            ok, wait = self._pod_available(pod, min_ready)
            available += ok
            if wait is not None:
                self._enqueue_later(("DaemonSet", ns, name), wait)
        updated = sum(
            1 for p in pods if (p["metadata"].get("labels") or {}).get(DS_HASH_LABEL) == digest
        )
        desired = len(node_names)
        status: JsonObj = {
            "currentNumberScheduled": len(scheduled & set(node_names)),
            "numberMisscheduled": len(scheduled - set(node_names)),
            "desiredNumberScheduled": desired,
            "numberReady": ready,
            "observedGeneration": ds["metadata"].get("generation", 1),
        }
        if updated:
            status["updatedNumberScheduled"] = updated
        if available:
            status["numberAvailable"] = available
        if desired - available > 0:
            status["numberUnavailable"] = desired - available
        self._set_status("daemonsets", ns, name, status, ds.get("status"))

    def _create_ds_pod(self, ds: JsonObj, template: JsonObj, digest: str, node: str) -> None:
        tmeta = template.get("metadata") or {}
        labels = dict(tmeta.get("labels") or {})
        labels[DS_HASH_LABEL] = digest
        pod_spec = deep_copy(template.get("spec") or {})
        pod_spec["nodeName"] = node
        body: JsonObj = {
            "metadata": {
                "generateName": f"{ds['metadata']['name']}-",
                "namespace": ds["metadata"]["namespace"],
                "labels": labels,
                "ownerReferences": [_owner_ref(ds)],
            },
            "spec": pod_spec,
        }
        if tmeta.get("annotations"):
            body["metadata"]["annotations"] = dict(tmeta["annotations"])
        self.store.create("pods", ds["metadata"]["namespace"], body, manager=MANAGER)

    # ------------------------------------------------------------------ introspection

    def pending(self) -> Iterator[Key]:
        """Keys waiting in the work queue (for tests that wait for quiescence)."""
        return iter(sorted(self._pending))
