"""``spec.provider.web``: the request the generic ``web`` provider sends, and where its number is.

Argo Rollouts' web metric, on a MetricTemplate::

    spec:
      provider:
        type: web
        address: https://checks.example.com      # optional: a relative query joins it
        secretRef: {name: checks}                # keys named by secretHeaders
        headers: {Accept: [application/json]}
        web:
          method: POST                           # GET (default), POST or PUT
          body: '{"app": "{{ target }}", "window": "{{ interval }}"}'
          jsonPath: "{$.data.errorRate}"
          secretHeaders: {Authorization: token}  # header -> key of the Secret
      query: /api/v1/errors?ns={{ namespace }}   # the URL, absolute or relative to address

The URL is the template's ``query`` (rendered like every query); the body is rendered with the
same variables when the metric runs (:func:`analysis.provider_config` with ``render``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from analysis._spec.fields import Problems, type_name

__all__ = ["WEB_METHODS", "WebSpec", "parse_web_spec"]

WEB_METHODS = ("GET", "POST", "PUT")


@dataclass(frozen=True, slots=True)
class WebSpec:
    """The parsed ``spec.provider.web``; ``body`` is a template until rendered."""

    json_path: str
    method: str = "GET"
    body: str | None = None
    secret_headers: tuple[tuple[str, str], ...] = ()  # (header, Secret key)

    def with_body(self, body: str | None) -> WebSpec:
        return replace(self, body=body)


def parse_web_spec(raw: object, path: str, problems: Problems) -> WebSpec | None:
    """``spec.provider.web``, with each bad field added to ``problems``; None when absent."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        problems.add(path, f"expected a map with jsonPath, got {type_name(raw)}")
        return None
    json_path = raw.get("jsonPath")
    if not isinstance(json_path, str) or not json_path.strip():
        problems.add(
            f"{path}.jsonPath",
            f"expected a JSONPath such as {{$.data.value}}, got {type_name(json_path)}",
        )
        json_path = ""
    method = raw.get("method", "GET")
    if not isinstance(method, str) or method.upper() not in WEB_METHODS:
        problems.add(f"{path}.method", f"expected one of {', '.join(WEB_METHODS)}, got {method!r}")
        method = "GET"
    body = raw.get("body")
    if body is not None and not isinstance(body, str):
        problems.add(f"{path}.body", f"expected a string (a template), got {type_name(body)}")
        body = None
    headers: list[tuple[str, str]] = []
    raw_headers = raw.get("secretHeaders") or {}
    if not isinstance(raw_headers, Mapping):
        problems.add(f"{path}.secretHeaders", "expected a map of header name to Secret key")
    else:
        for name, key in raw_headers.items():
            if not isinstance(name, str) or not name or not isinstance(key, str) or not key:
                problems.add(
                    f"{path}.secretHeaders",
                    f"expected header name: Secret key, both strings, got {name!r}: {key!r}",
                )
                continue
            headers.append((name, key))
    known = {"jsonPath", "method", "body", "secretHeaders"}
    for extra in sorted(set(map(str, raw)) - known):
        problems.add(
            f"{path}.{extra}", f"unknown field; expected one of {', '.join(sorted(known))}"
        )
    return WebSpec(
        json_path=json_path.strip(),
        method=method.upper() if isinstance(method, str) else "GET",
        body=body,
        secret_headers=tuple(headers),
    )
