"""A Kubernetes API server emulator for tests, demos and benchmarks (never for production).

:class:`Store` holds the objects and all write semantics; :class:`ApiServer` serves it over
HTTP on loopback; :class:`Registry` knows the served resource types (built-ins and CRDs).
docs/sandbox.md lists every known difference from a real kube-apiserver.
"""

from .errors import ApiError, Cause
from .registry import Registry, ResourceType
from .server import ApiServer, AuditEntry
from .store import DeleteResult, Store, StoreEvent, Subscription, WriteResult

__all__ = [
    "ApiError",
    "ApiServer",
    "AuditEntry",
    "Cause",
    "DeleteResult",
    "Registry",
    "ResourceType",
    "Store",
    "StoreEvent",
    "Subscription",
    "WriteResult",
]
