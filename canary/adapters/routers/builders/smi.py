"""The SMI TrafficSplit, computed without I/O (``smi:v1alpha1``, ``smi:v1alpha2``, ``smi:v1alpha3``).

TrafficSplit ``<svc>`` (``split.smi-spec.io/<version>``) with ``spec.service`` = the
first of ``service.hosts`` or ``<svc>``, and ``spec.backends`` =
``[{service: <svc>-canary, weight: c}, {service: <svc>-primary, weight: p}]`` in that
order (reference/flagger.md section 3). In ``v1alpha1`` a weight is a Kubernetes
quantity, which Flagger writes as a string (``"100"``); ``v1alpha2`` and ``v1alpha3``
use integers. A provider name may carry the mesh, ``smi:v1alpha3:istio``; for
``istio`` with gateways Flagger adds the
``VirtualService.v1alpha3.networking.istio.io/spec.gateways`` annotation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from canary.adapters.routers.builders._common import Obj, RouterError, managed_object, percentages
from canary.core.observations import Routes
from canary.model.canary import Canary

SMI_GROUP = "split.smi-spec.io"
SMI_VERSIONS = ("v1alpha1", "v1alpha2", "v1alpha3")
ISTIO_GATEWAYS_ANNOTATION = "VirtualService.v1alpha3.networking.istio.io/spec.gateways"


@dataclass(frozen=True, slots=True)
class SmiProvider:
    """``smi:<version>[:<mesh>]`` taken apart."""

    version: str
    mesh: str = ""

    @property
    def api_version(self) -> str:
        return f"{SMI_GROUP}/{self.version}"

    @classmethod
    def parse(cls, provider: str) -> SmiProvider:
        parts = provider.split(":")
        if len(parts) < 2 or parts[0] != "smi" or parts[1] not in SMI_VERSIONS or len(parts) > 3:
            raise RouterError(
                f'unknown SMI provider "{provider}"; expected smi:<version>[:<mesh>] with version '
                f"{', '.join(SMI_VERSIONS)}",
                field="spec.provider",
            )
        return cls(parts[1], parts[2] if len(parts) == 3 else "")


def _weight(value: int, version: str) -> int | str:
    return str(value) if version == "v1alpha1" else value


def _annotations(canary: Canary, provider: SmiProvider) -> dict[str, str]:
    gateways = canary.spec.service.gateways
    if provider.mesh == "istio" and gateways:
        return {ISTIO_GATEWAYS_ANNOTATION: json.dumps(list(gateways), separators=(",", ":"))}
    return {}


def traffic_split(
    canary: Canary, current: Obj | None, routes: Routes | None = None, *, provider: SmiProvider
) -> Obj:
    """TrafficSplit ``<svc>``; with ``routes`` None (reconcile) the current weights are kept."""
    if canary.spec.analysis_or_default.match:
        raise RouterError(
            "SMI TrafficSplit cannot route by header or cookie (A/B testing)",
            field="spec.analysis.match",
        )
    if routes is not None and routes.mirrored:
        raise RouterError("SMI TrafficSplit cannot mirror traffic", field="spec.analysis.mirror")
    if routes is None:
        try:
            routes = read_routes(canary, current) or Routes(100, 0)
        except RouterError:  # routes nowhere (0/0): start over from primary 100 / canary 0
            routes = Routes(100, 0)
    service = canary.spec.service
    host = service.hosts[0] if service.hosts else service.name
    spec = {
        "service": host,
        "backends": [
            {"service": service.canary_name, "weight": _weight(routes.canary, provider.version)},
            {"service": service.primary_name, "weight": _weight(routes.primary, provider.version)},
        ],
    }
    return managed_object(
        canary,
        current,
        api_version=provider.api_version,
        kind="TrafficSplit",
        name=service.name,
        spec=spec,
        annotations=_annotations(canary, provider),
        mark_for_flux=False,
    )


_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_SUFFIX = {
    None: Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}


def parse_quantity(text: str) -> Decimal:
    """A Kubernetes quantity (``"100"``, ``"500m"``, ``"1Ki"``) as an exact number; a
    ValueError when ``text`` is none. The demo's simulated mesh reads weights with it too."""
    match = _QUANTITY.match(text.strip())
    if not match:
        raise ValueError(f"not a quantity: {text!r}")
    try:
        return Decimal(match.group(1)) * _SUFFIX[match.group(2)]
    except InvalidOperation:
        raise ValueError(f"not a quantity: {text!r}") from None


def quantity(value: Any) -> int:
    """A TrafficSplit weight (an int, or a Kubernetes quantity such as ``"100"`` or ``"500m"``), rounded."""
    if isinstance(value, bool):
        raise ValueError(f"not a weight: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return round(value)
    try:
        number = parse_quantity(str(value))
    except ValueError:
        raise ValueError(f"not a quantity: {value!r}") from None
    return int(number.to_integral_value())


def read_routes(canary: Canary, obj: Mapping[str, Any] | None) -> Routes | None:
    """The weights of a TrafficSplit; None if it has neither backend."""
    if not obj:
        return None
    service = canary.spec.service
    p = c = 0
    seen = False
    for backend in (obj.get("spec") or {}).get("backends") or ():
        name = backend.get("service")
        if name not in (service.primary_name, service.canary_name):
            continue
        try:
            weight = quantity(backend.get("weight", 0))
        except ValueError as exc:
            raise RouterError(f'TrafficSplit "{service.name}": {exc}') from None
        seen = True
        if name == service.primary_name:
            p = weight
        else:
            c = weight
    return percentages(p, c, False, f'TrafficSplit "{service.name}"') if seen else None
