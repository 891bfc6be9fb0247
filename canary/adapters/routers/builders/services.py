"""The three Services every provider routes through, computed without I/O.

``<svc>`` (the apex, which clients call) and ``<svc>-primary`` select the primary
pods (``<label>: <value>-primary``); ``<svc>-canary`` selects the target's pods
(``<label>: <value>``). ``<label>`` is the first of ``app``, ``name`` and
``app.kubernetes.io/name`` found in the target's ``spec.selector.matchLabels``
(reference/flagger.md 2.4, checklist items 2-4). Ports: ``service.portName``
(default ``http``) on ``service.port`` to ``service.targetPort`` (default the port),
plus, with ``portDiscovery``, every other container port of the target.

An apex Service that already exists is taken over: its selector and ports are
rewritten (node ports kept), its metadata is left alone unless the Canary owns it,
and its original selector and ports are recorded so `restored_apex_service` can put
them back on ``revertOnDeletion``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, Literal

from canary.adapters.routers.builders._common import (
    KUBECTL_LAST_APPLIED_ANNOTATION,
    Obj,
    RouterError,
    annotations_of,
    is_owned_by,
    managed_object,
    original_spec,
    parse_json,
    restore_metadata,
)
from canary.jsontree import json_copy
from canary.model.canary import Canary, ServiceMetadata

DEFAULT_SELECTOR_LABELS: tuple[str, ...] = ("app", "name", "app.kubernetes.io/name")
SIDECAR_CONTAINERS = frozenset({"istio-proxy", "envoy"})


def selector_label(
    target: Mapping[str, Any], labels: Sequence[str] = DEFAULT_SELECTOR_LABELS
) -> tuple[str, str]:
    """The label that tells the target's pods apart, and its value."""
    match_labels = ((target.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    for label in labels:
        if label in match_labels:
            return label, str(match_labels[label])
    kind = target.get("kind", "target")
    name = (target.get("metadata") or {}).get("name", "")
    raise RouterError(
        f'{kind} "{name}" has none of the labels {", ".join(labels)} in spec.selector.matchLabels; '
        "the controller needs one of them to tell primary and canary pods apart",
        field="spec.targetRef",
    )


def discovered_ports(canary: Canary, target: Mapping[str, Any]) -> dict[str, int]:
    """Extra ports from the target's containers (``service.portDiscovery``), by name."""
    service = canary.spec.service
    if not service.port_discovery:
        return {}
    skip_numbers = {service.port}
    skip_names: set[str] = set()
    target_port = service.effective_target_port
    if isinstance(target_port, int):
        skip_numbers.add(target_port)
    elif isinstance(target_port, str) and target_port.isdigit():
        skip_numbers.add(int(target_port))
    else:
        skip_names.add(str(target_port))
    pod_spec = ((target.get("spec") or {}).get("template") or {}).get("spec") or {}
    found: dict[str, int] = {}
    seen: set[int] = set()
    for container in pod_spec.get("containers") or ():
        cname = str(container.get("name", ""))
        if cname in SIDECAR_CONTAINERS:
            continue
        for index, port in enumerate(container.get("ports") or ()):
            number = port.get("containerPort")
            if not isinstance(number, int) or number in skip_numbers or number in seen:
                continue
            pname = port.get("name") or f"tcp-{cname}-{index}"
            if pname in skip_names or pname == service.port_name or pname in found:
                continue
            found[str(pname)] = number
            seen.add(number)
    return found


def service_ports(canary: Canary, target: Mapping[str, Any]) -> list[Obj]:
    """The ports of all three Services: the service port first, then discovered ones."""
    service = canary.spec.service
    main: Obj = {
        "name": service.port_name or "http",
        "protocol": "TCP",
        "port": service.port,
        "targetPort": service.effective_target_port,
    }
    if service.app_protocol:
        main["appProtocol"] = service.app_protocol
    extra = [
        {"name": name, "protocol": "TCP", "port": number, "targetPort": number}
        for name, number in sorted(discovered_ports(canary, target).items())
    ]
    return [main, *extra]


def _sorted_ports(ports: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted(ports, key=lambda p: (int(p.get("port") or 0), str(p.get("name") or "")))


def _with_node_ports(wanted: list[Obj], current: Sequence[Mapping[str, Any]]) -> list[Obj]:
    by_name = {p.get("name"): p for p in current}
    out = []
    for port in wanted:
        port = dict(port)
        old = by_name.get(port["name"])
        if old and old.get("nodePort"):
            port["nodePort"] = old["nodePort"]
        out.append(port)
    return out


def _service(
    canary: Canary,
    current: Obj | None,
    *,
    name: str,
    selector: dict[str, str],
    label: str,
    metadata: ServiceMetadata,
    ports: list[Obj],
) -> Obj:
    service = canary.spec.service
    labels = {**metadata.labels, label: name}
    if current is None:
        spec: Obj = {"type": "ClusterIP", "selector": selector, "ports": ports}
        if service.headless:
            spec["clusterIP"] = "None"
    else:
        spec = json_copy(current.get("spec") or {})
        old_ports = spec.get("ports") or []
        new_ports = _with_node_ports(ports, old_ports)
        if _sorted_ports(new_ports) != _sorted_ports(old_ports) or spec.get("selector") != selector:
            spec["ports"] = new_ports
            spec["selector"] = selector
    if service.traffic_distribution:
        spec["trafficDistribution"] = service.traffic_distribution
    # A Service someone else made is taken over: its selector and ports become ours, its
    # metadata stays the user's (and its original selector and ports are recorded).
    taken_over = current is not None and not is_owned_by(current, canary)
    old = (current or {}).get("spec") or {}
    return managed_object(
        canary,
        current,
        api_version="v1",
        kind="Service",
        name=name,
        spec=spec,
        labels=None if taken_over else labels,
        annotations=None if taken_over else metadata.annotations,
        mark_for_flux=not taken_over,
        record={"selector": old.get("selector"), "ports": old.get("ports")} if taken_over else None,
        keep_labels=service.unmanaged_labels,
        keep_annotations=service.unmanaged_annotations,
    )


ServiceRole = Literal["primary", "canary", "apex"]


def service_name(canary: Canary, role: ServiceRole) -> str:
    service = canary.spec.service
    return {
        "primary": service.primary_name,
        "canary": service.canary_name,
        "apex": service.name,
    }[role]


def role_service(
    role: ServiceRole,
    canary: Canary,
    target: Mapping[str, Any],
    current: Obj | None,
    *,
    selector_labels: Sequence[str] = DEFAULT_SELECTOR_LABELS,
) -> Obj:
    """The Service of ``role``: ``<svc>-primary`` selects the primary pods, ``<svc>-canary``
    the target's (canary) pods, and ``<svc>``, what clients call, the primary pods."""
    label, value = selector_label(target, selector_labels)
    service = canary.spec.service
    selected, metadata = {
        "primary": (f"{value}-primary", service.primary),
        "canary": (value, service.canary),
        "apex": (f"{value}-primary", service.apex),
    }[role]
    return _service(
        canary,
        current,
        name=service_name(canary, role),
        selector={label: selected},
        label=label,
        metadata=metadata,
        ports=service_ports(canary, target),
    )


#: ``<svc>-primary``: selects the primary pods.
primary_service = partial(role_service, "primary")
#: ``<svc>-canary``: selects the target's (canary) pods.
canary_service = partial(role_service, "canary")
#: ``<svc>``: what clients call; selects the primary pods.
apex_service = partial(role_service, "apex")


def restored_apex_service(
    canary: Canary,
    current: Obj,
    target: Mapping[str, Any] | None = None,
    *,
    selector_labels: Sequence[str] = DEFAULT_SELECTOR_LABELS,
) -> Obj | None:
    """The apex Service as it was before the takeover (None when the Canary owns it).

    Selector and ports come from ``kubectl``'s last-applied annotation or from our
    record. Without either, the selector falls back to the target's own pods (as
    Flagger does), so the Service keeps working once the primary is gone.
    """
    if is_owned_by(current, canary):
        return None
    obj = json_copy(current)
    spec = obj.setdefault("spec", {})
    last_applied = parse_json(annotations_of(current).get(KUBECTL_LAST_APPLIED_ANNOTATION))
    recorded, ours = original_spec(current)
    source = recorded if isinstance(recorded, dict) else None
    if isinstance(last_applied, dict):
        source = last_applied.get("spec") or {}
    if source is not None and source.get("selector"):
        spec["selector"] = source["selector"]
        if source.get("ports"):
            spec["ports"] = _with_node_ports(
                [dict(p) for p in source["ports"]], spec.get("ports") or []
            )
    elif target is not None:
        label, value = selector_label(target, selector_labels)
        spec["selector"] = {label: value}
    else:
        spec["selector"] = {selector_labels[0]: canary.spec.target_ref.name}
    restore_metadata(obj, ours)
    return obj
