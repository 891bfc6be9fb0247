"""Server-side printing: ``meta.k8s.io/v1`` Tables for ``kubectl get``.

kubectl asks for ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io`` and prints
whatever columns the server returns. A CRD's ``additionalPrinterColumns`` (JSONPath like
``.status.phase`` or ``.status.conditions[?(@.type=="Ready")].status``) are evaluated here,
so ``kubectl get canaries`` shows Status/Weight/LastTransitionTime as on a real cluster;
built-in types get the usual columns (Deployments: Ready, Up-to-date, Available, ...).
The JSONPath evaluator supports the subset printer columns use: child fields, ``['key']``,
indexes, ``[*]`` and ``[?(@.a.b=="x")]`` filters (``==`` / ``!=`` / existence).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from ._util import age
from .registry import PrinterColumn, ResourceType

JsonObj = dict[str, Any]


# --- JSONPath subset -------------------------------------------------------------------------


class JsonPathError(ValueError):
    """The expression uses syntax outside the supported subset."""


_TOKEN = re.compile(
    r"""\.(?P<field>[A-Za-z0-9_$\-/]+)
      | \[\s*'(?P<quoted>[^']*)'\s*\]
      | \[\s*"(?P<dquoted>[^"]*)"\s*\]
      | \[\s*(?P<index>-?\d+)\s*\]
      | \[\s*\*\s*\]
      | \[\s*\?\(\s*@(?P<fpath>(?:\.[A-Za-z0-9_\-]+)+)\s*(?:(?P<op>==|!=)\s*(?P<fval>"[^"]*"|'[^']*'|[^)\s]+))?\s*\)\s*\]
    """,
    re.VERBOSE,
)


def _compile(expr: str) -> list[tuple[str, Any]]:
    text = expr.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if text.startswith("$"):
        text = text[1:]
    steps: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise JsonPathError(f"unsupported JSONPath {expr!r} at {text[pos:]!r}")
        if m["field"] is not None:
            steps.append(("field", m["field"]))
        elif m["quoted"] is not None:
            steps.append(("field", m["quoted"]))
        elif m["dquoted"] is not None:
            steps.append(("field", m["dquoted"]))
        elif m["index"] is not None:
            steps.append(("index", int(m["index"])))
        elif m["fpath"] is not None:
            raw = m["fval"]
            value = raw[1:-1] if raw and raw[0] in "\"'" else raw
            steps.append(("filter", (m["fpath"][1:].split("."), m["op"], value)))
        else:
            steps.append(("all", None))
        pos = m.end()
    return steps


def _compare_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def jsonpath(obj: Any, expr: str) -> list[Any]:
    """All values ``expr`` selects in ``obj`` (an empty list when nothing matches)."""
    current = [obj]
    for kind, arg in _compile(expr):
        nxt: list[Any] = []
        for value in current:
            if kind == "field":
                if isinstance(value, dict) and arg in value:
                    nxt.append(value[arg])
            elif kind == "index":
                if isinstance(value, list) and -len(value) <= arg < len(value):
                    nxt.append(value[arg])
            elif kind == "all":
                if isinstance(value, list):
                    nxt.extend(value)
                elif isinstance(value, dict):
                    nxt.extend(value.values())
            else:
                path, op, wanted = arg
                for item in value if isinstance(value, list) else []:
                    cur: Any = item
                    for part in path:
                        cur = cur.get(part) if isinstance(cur, dict) else None
                    if op is None:
                        ok = cur is not None
                    elif op == "==":
                        ok = cur is not None and _compare_value(cur) == wanted
                    else:
                        ok = cur is None or _compare_value(cur) != wanted
                    if ok:
                        nxt.append(item)
        current = nxt
    return current


# --- columns ---------------------------------------------------------------------------------

Cell = Any
RowFn = Callable[[JsonObj], list[Cell]]


def _col(
    name: str, type_: str = "string", priority: int = 0, fmt: str = "", description: str = ""
) -> JsonObj:
    return {
        "name": name,
        "type": type_,
        "format": fmt,
        "description": description or name,
        "priority": priority,
    }


def _meta(o: JsonObj) -> JsonObj:
    meta: JsonObj = o.get("metadata") or {}
    return meta


def _spec(o: JsonObj) -> JsonObj:
    spec = o.get("spec")
    return spec if isinstance(spec, dict) else {}


def _status(o: JsonObj) -> JsonObj:
    status = o.get("status")
    return status if isinstance(status, dict) else {}


def _containers(o: JsonObj) -> list[JsonObj]:
    template = _spec(o).get("template") or {}
    return [
        c for c in ((template.get("spec") or {}).get("containers") or []) if isinstance(c, dict)
    ]


def _selector_text(selector: Any) -> str:
    if not isinstance(selector, dict):
        return "<none>"
    parts = [f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or []:
        values = ",".join(expr.get("values") or [])
        parts.append(f"{expr.get('key')} {str(expr.get('operator', '')).lower()} ({values})")
    return ",".join(parts) or "<none>"


def _wide_cells(o: JsonObj) -> list[Cell]:
    """The ``-o wide`` cells of a workload with a pod template (see :data:`_WIDE`)."""
    containers = _containers(o)
    return [
        ",".join(str(c.get("name")) for c in containers),
        ",".join(str(c.get("image")) for c in containers),
        _selector_text(_spec(o).get("selector")),
    ]


def _deployment(o: JsonObj) -> list[Cell]:
    s, st = _spec(o), _status(o)
    return [
        _meta(o).get("name"),
        f"{st.get('readyReplicas', 0)}/{s.get('replicas', 1)}",
        st.get("updatedReplicas", 0),
        st.get("availableReplicas", 0),
        age(_meta(o).get("creationTimestamp")),
        *_wide_cells(o),
    ]


def _replicaset(o: JsonObj) -> list[Cell]:
    s, st = _spec(o), _status(o)
    return [
        _meta(o).get("name"),
        s.get("replicas", 1),
        st.get("replicas", 0),
        st.get("readyReplicas", 0),
        age(_meta(o).get("creationTimestamp")),
        *_wide_cells(o),
    ]


def _daemonset(o: JsonObj) -> list[Cell]:
    st = _status(o)
    node_selector = ((_spec(o).get("template") or {}).get("spec") or {}).get("nodeSelector") or {}
    return [
        _meta(o).get("name"),
        st.get("desiredNumberScheduled", 0),
        st.get("currentNumberScheduled", 0),
        st.get("numberReady", 0),
        st.get("updatedNumberScheduled", 0),
        st.get("numberAvailable", 0),
        ",".join(f"{k}={v}" for k, v in node_selector.items()) or "<none>",
        age(_meta(o).get("creationTimestamp")),
    ]


def _pod(o: JsonObj) -> list[Cell]:
    st = _status(o)
    statuses = [c for c in st.get("containerStatuses") or [] if isinstance(c, dict)]
    total = len(_spec(o).get("containers") or [])
    ready = sum(1 for c in statuses if c.get("ready"))
    reason = st.get("phase", "Pending")
    for c in statuses:
        waiting = (c.get("state") or {}).get("waiting")
        if isinstance(waiting, dict) and waiting.get("reason"):
            reason = waiting["reason"]
    if _meta(o).get("deletionTimestamp"):
        reason = "Terminating"
    restarts = sum(int(c.get("restartCount", 0)) for c in statuses)
    return [
        _meta(o).get("name"),
        f"{ready}/{total}",
        reason,
        restarts,
        age(_meta(o).get("creationTimestamp")),
        st.get("podIP") or "<none>",
        _spec(o).get("nodeName") or "<none>",
        "<none>",
        "<none>",
    ]


def _service(o: JsonObj) -> list[Cell]:
    s = _spec(o)
    ports = []
    for p in s.get("ports") or []:
        if isinstance(p, dict):
            text = str(p.get("port"))
            if p.get("nodePort"):
                text += f":{p['nodePort']}"
            ports.append(f"{text}/{p.get('protocol', 'TCP')}")
    ingress = ((_status(o).get("loadBalancer") or {}).get("ingress")) or []
    external = ",".join(
        str(i.get("ip") or i.get("hostname")) for i in ingress if isinstance(i, dict)
    )
    if not external:
        external = s.get("externalName") or (
            "<pending>" if s.get("type") == "LoadBalancer" else "<none>"
        )
    selector = s.get("selector") or {}
    return [
        _meta(o).get("name"),
        s.get("type", "ClusterIP"),
        s.get("clusterIP") or "<none>",
        external,
        ",".join(ports) or "<none>",
        age(_meta(o).get("creationTimestamp")),
        ",".join(f"{k}={v}" for k, v in selector.items()) or "<none>",
    ]


def _namespace(o: JsonObj) -> list[Cell]:
    return [
        _meta(o).get("name"),
        _status(o).get("phase", "Active"),
        age(_meta(o).get("creationTimestamp")),
    ]


def _node(o: JsonObj) -> list[Cell]:
    ready: JsonObj = next(
        (c for c in _status(o).get("conditions") or [] if c.get("type") == "Ready"), {}
    )
    roles = [
        k.split("/", 1)[1]
        for k in (_meta(o).get("labels") or {})
        if k.startswith("node-role.kubernetes.io/")
    ]
    return [
        _meta(o).get("name"),
        "Ready" if ready.get("status") == "True" else "NotReady",
        ",".join(roles) or "<none>",
        age(_meta(o).get("creationTimestamp")),
        ((_status(o).get("nodeInfo") or {}).get("kubeletVersion")) or "",
    ]


def _event(o: JsonObj) -> list[Cell]:
    involved = o.get("involvedObject") or {}
    last = o.get("lastTimestamp") or o.get("eventTime") or _meta(o).get("creationTimestamp")
    return [
        age(last),
        o.get("type", ""),
        o.get("reason", ""),
        f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}",
        o.get("message", ""),
    ]


def _crd(o: JsonObj) -> list[Cell]:
    return [_meta(o).get("name"), _meta(o).get("creationTimestamp")]


def _configmap(o: JsonObj) -> list[Cell]:
    count = len(o.get("data") or {}) + len(o.get("binaryData") or {})
    return [_meta(o).get("name"), count, age(_meta(o).get("creationTimestamp"))]


def _secret(o: JsonObj) -> list[Cell]:
    count = len(o.get("data") or {}) + len(o.get("stringData") or {})
    return [
        _meta(o).get("name"),
        o.get("type", "Opaque"),
        count,
        age(_meta(o).get("creationTimestamp")),
    ]


def _hpa(o: JsonObj) -> list[Cell]:
    s, st = _spec(o), _status(o)
    ref = s.get("scaleTargetRef") or {}
    return [
        _meta(o).get("name"),
        f"{ref.get('kind', '')}/{ref.get('name', '')}",
        s.get("minReplicas", 1),
        s.get("maxReplicas", 0),
        st.get("currentReplicas", 0),
        age(_meta(o).get("creationTimestamp")),
    ]


def _ingress(o: JsonObj) -> list[Cell]:
    s = _spec(o)
    hosts = [
        str(r.get("host")) for r in s.get("rules") or [] if isinstance(r, dict) and r.get("host")
    ]
    ingress = ((_status(o).get("loadBalancer") or {}).get("ingress")) or []
    address = ",".join(
        str(i.get("ip") or i.get("hostname")) for i in ingress if isinstance(i, dict)
    )
    return [
        _meta(o).get("name"),
        s.get("ingressClassName") or "<none>",
        ",".join(hosts) or "*",
        address,
        "443" if s.get("tls") else "80",
        age(_meta(o).get("creationTimestamp")),
    ]


def _lease(o: JsonObj) -> list[Cell]:
    return [
        _meta(o).get("name"),
        _spec(o).get("holderIdentity") or "",
        age(_meta(o).get("creationTimestamp")),
    ]


def _endpoints(o: JsonObj) -> list[Cell]:
    addresses = []
    for subset in o.get("subsets") or []:
        ports = [p.get("port") for p in subset.get("ports") or []] or [None]
        for a in subset.get("addresses") or []:
            for port in ports:
                addresses.append(f"{a.get('ip')}:{port}" if port else str(a.get("ip")))
    return [
        _meta(o).get("name"),
        ",".join(addresses) or "<none>",
        age(_meta(o).get("creationTimestamp")),
    ]


def _default(o: JsonObj) -> list[Cell]:
    return [_meta(o).get("name"), age(_meta(o).get("creationTimestamp"))]


_NAME = _col("Name", fmt="name", description="Name must be unique within a namespace.")
_AGE = _col(
    "Age",
    description="CreationTimestamp is a timestamp representing the server time when this object was created.",
)

# The ``-o wide`` columns of a workload with a pod template, filled by _wide_cells.
_WIDE = [_col("Containers", priority=1), _col("Images", priority=1), _col("Selector", priority=1)]

_BUILTIN: dict[str, tuple[list[JsonObj], RowFn]] = {
    "Deployment": (
        [
            _NAME,
            _col("Ready"),
            _col("Up-to-date", "integer"),
            _col("Available", "integer"),
            _AGE,
            *_WIDE,
        ],
        _deployment,
    ),
    "ReplicaSet": (
        [
            _NAME,
            _col("Desired", "integer"),
            _col("Current", "integer"),
            _col("Ready", "integer"),
            _AGE,
            *_WIDE,
        ],
        _replicaset,
    ),
    "DaemonSet": (
        [
            _NAME,
            _col("Desired", "integer"),
            _col("Current", "integer"),
            _col("Ready", "integer"),
            _col("Up-to-date", "integer"),
            _col("Available", "integer"),
            _col("Node Selector"),
            _AGE,
        ],
        _daemonset,
    ),
    "Pod": (
        [
            _NAME,
            _col("Ready"),
            _col("Status"),
            _col("Restarts", "string"),
            _AGE,
            _col("IP", priority=1),
            _col("Node", priority=1),
            _col("Nominated Node", priority=1),
            _col("Readiness Gates", priority=1),
        ],
        _pod,
    ),
    "Service": (
        [
            _NAME,
            _col("Type"),
            _col("Cluster-IP"),
            _col("External-IP"),
            _col("Port(s)"),
            _AGE,
            _col("Selector", priority=1),
        ],
        _service,
    ),
    "Namespace": ([_NAME, _col("Status"), _AGE], _namespace),
    "Node": ([_NAME, _col("Status"), _col("Roles"), _AGE, _col("Version")], _node),
    "Event": (
        [_col("Last Seen"), _col("Type"), _col("Reason"), _col("Object"), _col("Message")],
        _event,
    ),
    "CustomResourceDefinition": ([_NAME, _col("Created At", "date")], _crd),
    "ConfigMap": ([_NAME, _col("Data", "integer"), _AGE], _configmap),
    "Secret": ([_NAME, _col("Type"), _col("Data", "integer"), _AGE], _secret),
    "HorizontalPodAutoscaler": (
        [
            _NAME,
            _col("Reference"),
            _col("MinPods", "integer"),
            _col("MaxPods", "integer"),
            _col("Replicas", "integer"),
            _AGE,
        ],
        _hpa,
    ),
    "Ingress": (
        [_NAME, _col("Class"), _col("Hosts"), _col("Address"), _col("Ports"), _AGE],
        _ingress,
    ),
    "Lease": ([_NAME, _col("Holder"), _AGE], _lease),
    "Endpoints": ([_NAME, _col("Endpoints"), _AGE], _endpoints),
}


def _crd_columns(rt: ResourceType) -> list[PrinterColumn]:
    if rt.printer_columns:
        return list(rt.printer_columns)
    return [PrinterColumn("Age", "date", ".metadata.creationTimestamp")]


def _crd_cell(obj: JsonObj, column: PrinterColumn) -> Cell:
    try:
        values = jsonpath(obj, column.json_path)
    except JsonPathError:
        return None
    if not values:
        return None
    if column.type == "date":
        return age(str(values[0])) if isinstance(values[0], str) else None
    if len(values) == 1:
        value = values[0]
        if column.type in ("integer", "number", "boolean") or isinstance(
            value, (str, int, float, bool)
        ):
            return value
        return str(value)
    return ",".join(str(v) for v in values)


def _row_object(obj: JsonObj, include: str) -> JsonObj | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata") or {},
    }


def table(
    rt: ResourceType,
    objects: Iterable[JsonObj],
    *,
    resource_version: str,
    include_object: str = "Metadata",
    continue_token: str | None = None,
) -> JsonObj:
    """Render ``objects`` of type ``rt`` as a ``meta.k8s.io/v1`` Table."""
    rows: list[JsonObj] = []
    if rt.is_crd:
        columns = _crd_columns(rt)
        definitions = [_NAME] + [
            _col(c.name, c.type, c.priority, c.format, c.description or c.name) for c in columns
        ]
        for obj in objects:
            cells = [(obj.get("metadata") or {}).get("name")] + [_crd_cell(obj, c) for c in columns]
            rows.append(_row(cells, obj, include_object))
    else:
        definitions, fn = _BUILTIN.get(rt.kind, ([_NAME, _AGE], _default))
        for obj in objects:
            rows.append(_row(fn(obj), obj, include_object))
    meta: JsonObj = {"resourceVersion": resource_version}
    if continue_token:
        meta["continue"] = continue_token
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": definitions,
        "rows": rows,
    }


def _row(cells: list[Cell], obj: JsonObj, include: str) -> JsonObj:
    row: JsonObj = {"cells": cells}
    payload = _row_object(obj, include)
    if payload is not None:
        row["object"] = payload
    return row
