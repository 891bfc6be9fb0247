"""A JSON endpoint for the generic ``web`` provider: an in-house error-rate API behind a token.

There is no vendor here, so the "documented API" is the one such services usually have, and
the one Argo Rollouts' web metric examples assume::

    GET  /api/v1/error-rate?namespace=test&target=podinfo&window=1m
    POST /api/v1/error-rate   {"namespace": "test", "target": "podinfo", "window": "1m"}
    (PUT as POST)                 Authorization: Bearer <token>

    200 {"data": {"target": "podinfo", "window": "1m", "errorRate": 0.25, "healthy": true}}
    401 {"error": "missing bearer token"}      403 {"error": "invalid token"}
    400 {"error": "target is required"}        (or a body that is not a JSON object)

``errorRate`` is :attr:`VendorServer.value`, ``null`` when there is no data; ``healthy`` is
whether it is below :attr:`WebServer.healthy_below`, for the boolean paths Argo users write.
The user's side (what :meth:`provider` writes) sends the token from a Secret through
``web.secretHeaders`` and POSTs a body rendered with the canary's names.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from tests.vendors import VendorServer

PATH = "/api/v1/error-rate"
TOKEN = "web-token-7f3a91c2"


class WebServer(VendorServer):
    """An error-rate endpoint on loopback; see the module docstring."""

    type = "web"

    def __init__(self) -> None:
        super().__init__()
        self.token = TOKEN
        self.healthy_below = 1.0
        self.raw: Any = None  # when set, the whole 200 body instead of the documented shape
        self.html: str | None = None  # when set, a 200 text/html page (a login or proxy page)

    # -- what a user writes ---------------------------------------------------

    def provider(self) -> dict[str, Any]:
        return {
            "type": "web",
            "address": self.base_url,
            "web": {
                "method": "POST",
                "body": (
                    '{"namespace": "{{ namespace }}", "target": "{{ target }}", '
                    '"window": "{{ interval }}"}'
                ),
                "jsonPath": "{$.data.errorRate}",
                "secretHeaders": {"Authorization": "api-token"},
            },
        }

    def secret_data(self) -> dict[str, str] | None:
        return {"api-token": f"Bearer {self.token}"}

    def query(self, target: str, namespace: str) -> str:
        del target, namespace  # the body names them, rendered by the controller
        return PATH

    # -- the API --------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(PATH, self._error_rate)
        app.router.add_post(PATH, self._error_rate)
        app.router.add_put(PATH, self._error_rate)

    async def _error_rate(self, request: web.Request) -> web.Response:
        seen = await self.seen(request)
        auth = seen.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return web.json_response({"error": "missing bearer token"}, status=401)
        if auth != f"Bearer {self.token}":
            return web.json_response({"error": "invalid token"}, status=403)
        if request.method in ("POST", "PUT"):
            try:
                asked = json.loads(seen.body or b"null")
            except ValueError:
                asked = None
            if not isinstance(asked, dict):
                return web.json_response({"error": "body must be a JSON object"}, status=400)
        else:
            asked = dict(seen.query)
        target = asked.get("target")
        if not isinstance(target, str) or not target:
            return web.json_response({"error": "target is required"}, status=400)
        failed = await self.failure_response()
        if failed is not None:
            return failed
        if self.html is not None:
            return web.Response(text=self.html, content_type="text/html")
        if self.raw is not None:
            return web.json_response(self.raw)
        value = self.value
        return web.json_response(
            {
                "data": {
                    "target": target,
                    "window": asked.get("window", "1m"),
                    "errorRate": value,
                    "healthy": None if value is None else value < self.healthy_below,
                }
            }
        )
