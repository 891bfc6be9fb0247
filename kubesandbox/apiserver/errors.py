"""API errors of the sandbox API server, rendered as Kubernetes ``Status`` objects.

Every failure a client can see leaves the server as a ``meta/v1 Status`` with the HTTP
code, ``reason`` and ``details`` a real kube-apiserver would send, because kopf, the
Kubernetes client and kubectl all branch on those fields (kopf retries a 422 from a failed
JSON-patch ``test``, kubectl prints ``message``, clients read ``details.causes[].field``).
The store raises :class:`ApiError`; the HTTP layer renders :meth:`ApiError.status`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Cause:
    """One reason of a failure, usually one invalid field (``details.causes[]``)."""

    field: str
    reason: str
    message: str

    def as_dict(self) -> dict[str, str]:
        out = {"reason": self.reason, "message": self.message}
        if self.field:  # omitted when empty, as metav1.StatusCause serializes it
            out["field"] = self.field
        return out

    def describe(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class ApiError(Exception):
    """A request failed; carries everything needed to render a ``Status``."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        name: str | None = None,
        group: str | None = None,
        kind: str | None = None,
        causes: tuple[Cause, ...] = (),
        retry_after: int | None = None,
        list_continue: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.name = name
        self.group = group
        self.kind = kind
        self.causes = causes
        self.retry_after = retry_after  # details.retryAfterSeconds and a Retry-After header
        self.list_continue = list_continue  # metadata.continue (an expired list's way on)

    def status(self) -> dict[str, Any]:
        details: dict[str, Any] = {}
        if self.name is not None:
            details["name"] = self.name
        if self.group:
            details["group"] = self.group
        if self.kind is not None:
            details["kind"] = self.kind
        if self.causes:
            details["causes"] = [c.as_dict() for c in self.causes]
        if self.retry_after:
            details["retryAfterSeconds"] = self.retry_after
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {"continue": self.list_continue} if self.list_continue else {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if details:
            body["details"] = details
        return body


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def _about(code: int, reason: str, resource: str, group: str, name: str, what: str) -> ApiError:
    """An error about one object, its details naming it (as the API server's do)."""
    return ApiError(code, reason, what, name=name, group=group, kind=resource)


def not_found(resource: str, group: str, name: str) -> ApiError:
    what = f'{_qualified(resource, group)} "{name}" not found'
    return _about(404, "NotFound", resource, group, name, what)


def already_exists(resource: str, group: str, name: str) -> ApiError:
    what = f'{_qualified(resource, group)} "{name}" already exists'
    return _about(409, "AlreadyExists", resource, group, name, what)


def conflict(resource: str, group: str, name: str, detail: str) -> ApiError:
    what = f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {detail}'
    return _about(409, "Conflict", resource, group, name, what)


def stale(resource: str, group: str, name: str) -> ApiError:
    return conflict(
        resource,
        group,
        name,
        "the object has been modified; please apply your changes to the latest version "
        "and try again",
    )


def invalid(kind: str, group: str, name: str, causes: list[Cause] | tuple[Cause, ...]) -> ApiError:
    causes = tuple(causes)
    described = [c.describe() for c in causes]
    joined = described[0] if len(described) == 1 else "[" + ", ".join(described) + "]"
    return ApiError(
        422,
        "Invalid",
        f'{_qualified(kind, group)} "{name}" is invalid: {joined}',
        name=name,
        group=group,
        kind=kind,
        causes=causes,
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def unprocessable(message: str) -> ApiError:
    """A patch that cannot be applied (for example a failed JSON-patch ``test``)."""
    return ApiError(422, "UnprocessableEntity", message)


def forbidden(message: str, *, resource: str = "", group: str = "", name: str = "") -> ApiError:
    return ApiError(
        403, "Forbidden", message, name=name or None, group=group, kind=resource or None
    )


def method_not_allowed(message: str) -> ApiError:
    return ApiError(405, "MethodNotAllowed", message)


def unsupported_media_type(message: str) -> ApiError:
    return ApiError(415, "UnsupportedMediaType", message)


def not_acceptable(message: str) -> ApiError:
    return ApiError(406, "NotAcceptable", message)


def gone(message: str, *, list_continue: str | None = None) -> ApiError:
    """410 Expired: a resourceVersion (or a list's continue token) older than the history."""
    return ApiError(410, "Expired", message, list_continue=list_continue)


def too_large_resource_version(requested: int, current: int) -> ApiError:
    """504 Timeout: a read asked for a resourceVersion the server has not reached (yet).

    kube-apiserver's ``storage.NewTooLargeResourceVersionError``: clients recognise it by the
    ``ResourceVersionTooLarge`` cause and retry after ``retryAfterSeconds``.
    """
    return ApiError(
        504,
        "Timeout",
        f"Timeout: Too large resource version: {requested}, current: {current}",
        causes=(Cause("", "ResourceVersionTooLarge", "Too large resource version"),),
        retry_after=1,
    )


def invalid_list_options(causes: list[Cause]) -> ApiError:
    """422 for a forbidden combination of list/watch parameters (``ValidateListOptions``)."""
    error = invalid("ListOptions", "meta.k8s.io", "", causes)
    error.name = None  # an empty name is omitted from details, as on a real server
    return error


def path_not_found(path: str) -> ApiError:
    return ApiError(404, "NotFound", f"the server could not find the requested resource ({path})")
