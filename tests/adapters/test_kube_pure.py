"""The pure parts of the Kubernetes adapter: error translation, discovery, paths, rate limit."""

from __future__ import annotations

import json

import pytest

from canary.adapters.kube import (
    RateLimiter,
    ResourceInfo,
    error_from_response,
    parse_resource_list,
    split_api_version,
)
from canary.ports import (
    AlreadyExists,
    Conflict,
    Forbidden,
    Invalid,
    KubeError,
    NotFound,
    Unavailable,
)


def status_body(
    code: int, reason: str, message: str = "boom", causes: list[dict[str, str]] | None = None
) -> bytes:
    doc = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    }
    if causes is not None:
        doc["details"] = {"causes": causes}
    return json.dumps(doc).encode()


class TestErrorTranslation:
    @pytest.mark.parametrize(
        ("code", "reason", "expected"),
        [
            (404, "NotFound", NotFound),
            (409, "AlreadyExists", AlreadyExists),
            (409, "Conflict", Conflict),
            (410, "Gone", Conflict),
            (422, "Invalid", Invalid),
            (400, "BadRequest", Invalid),
            (401, "Unauthorized", Forbidden),
            (403, "Forbidden", Forbidden),
            (429, "TooManyRequests", Unavailable),
            (500, "InternalError", Unavailable),
            (503, "ServiceUnavailable", Unavailable),
            (418, "Teapot", KubeError),
        ],
    )
    def test_status_codes_map_to_the_tree(
        self, code: int, reason: str, expected: type[KubeError]
    ) -> None:
        error = error_from_response(code, status_body(code, reason, "the message"))
        assert type(error) is expected
        assert error.status == code
        assert str(error) == "the message"

    def test_invalid_keeps_the_field_causes(self) -> None:
        causes = [
            {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.selector"}
        ]
        error = error_from_response(422, status_body(422, "Invalid", "bad", causes))
        assert isinstance(error, Invalid)
        assert error.causes == tuple(causes)

    def test_non_json_body_becomes_the_message(self) -> None:
        error = error_from_response(502, b"<html>bad gateway</html>")
        assert isinstance(error, Unavailable)
        assert "bad gateway" in str(error)

    def test_empty_body(self) -> None:
        error = error_from_response(404, b"")
        assert isinstance(error, NotFound)
        assert str(error) == "HTTP 404"


class TestDiscovery:
    DOC = {
        "kind": "APIResourceList",
        "groupVersion": "apps/v1",
        "resources": [
            {"name": "deployments", "kind": "Deployment", "namespaced": True},
            {"name": "deployments/scale", "kind": "Scale", "namespaced": True},
            {"name": "deployments/status", "kind": "Deployment", "namespaced": True},
            {"name": "daemonsets", "kind": "DaemonSet", "namespaced": True},
        ],
    }

    def test_kinds_map_to_plural_scope_and_subresources(self) -> None:
        found = parse_resource_list("apps/v1", self.DOC)
        assert set(found) == {"Deployment", "DaemonSet"}
        assert found["Deployment"] == ResourceInfo(
            "apps/v1", "Deployment", "deployments", True, frozenset({"scale", "status"})
        )
        assert found["DaemonSet"].subresources == frozenset()

    @pytest.mark.parametrize(
        ("info", "namespace", "name", "sub", "path"),
        [
            (
                ResourceInfo("v1", "ConfigMap", "configmaps", True),
                "ns",
                "x",
                None,
                "/api/v1/namespaces/ns/configmaps/x",
            ),
            (
                ResourceInfo("v1", "ConfigMap", "configmaps", True),
                None,
                None,
                None,
                "/api/v1/configmaps",
            ),
            (
                ResourceInfo("apps/v1", "Deployment", "deployments", True),
                "ns",
                "web",
                "scale",
                "/apis/apps/v1/namespaces/ns/deployments/web/scale",
            ),
            (
                ResourceInfo("v1", "Namespace", "namespaces", False),
                "ignored",
                "ns",
                None,
                "/api/v1/namespaces/ns",
            ),
            (
                ResourceInfo("canary.gitops.dev/v1beta1", "Canary", "canaries", True),
                "a b",
                "c/d",
                None,
                "/apis/canary.gitops.dev/v1beta1/namespaces/a%20b/canaries/c%2Fd",
            ),
        ],
    )
    def test_paths(
        self,
        info: ResourceInfo,
        namespace: str | None,
        name: str | None,
        sub: str | None,
        path: str,
    ) -> None:
        assert info.path(namespace, name, sub) == path

    @pytest.mark.parametrize(
        ("api_version", "expected"),
        [("v1", ("", "v1")), ("apps/v1", ("apps", "v1")), ("a.b/v1beta1", ("a.b", "v1beta1"))],
    )
    def test_split_api_version(self, api_version: str, expected: tuple[str, str]) -> None:
        assert split_api_version(api_version) == expected


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class TestRateLimiter:
    def test_burst_passes_then_callers_wait_their_turn(self) -> None:
        clock = FakeClock()
        limiter = RateLimiter(qps=10, burst=3, clock=clock)
        assert [limiter.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
        waits = [limiter.reserve() for _ in range(3)]
        assert waits == pytest.approx([0.1, 0.2, 0.3])

    def test_tokens_refill_over_time_up_to_burst(self) -> None:
        clock = FakeClock()
        limiter = RateLimiter(qps=10, burst=2, clock=clock)
        limiter.reserve()
        limiter.reserve()
        clock.now += 0.1
        assert limiter.reserve() == 0.0
        assert limiter.reserve() == pytest.approx(0.1)
        clock.now += 60
        assert [limiter.reserve() for _ in range(2)] == [0.0, 0.0]
        assert limiter.reserve() > 0

    @pytest.mark.parametrize(("qps", "burst"), [(0, 1), (-1, 5), (10, 0)])
    def test_rejects_nonsense(self, qps: float, burst: int) -> None:
        with pytest.raises(ValueError):
            RateLimiter(qps, burst)
