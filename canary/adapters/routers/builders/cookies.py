"""Session-affinity cookies, kept in the routing object itself.

With ``analysis.sessionAffinity`` a user who once reached the canary keeps reaching
it: while the canary gets traffic, its responses carry
``Set-Cookie: <cookieName>=<10 random letters>; Max-Age=...`` and a sticky route sends
requests that present that cookie to the canary only. After the run the cookie is
expired (``Max-Age=-1``) on a route that matches it. With ``primaryCookieName`` the
primary's responses carry a short-lived cookie (``Max-Age`` = the analysis interval)
that pins those users to the primary in the same way.

Flagger keeps the cookie values in the Canary status; here the routing object is the
truth, so the values are read back from the object (`SessionCookies`) and the next
values follow from them (`next_cookies`). The controller may copy them into
``status.sessionAffinityCookie`` for display.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Callable
from dataclasses import dataclass

from canary.model.canary import Canary, SessionAffinity

COOKIE_HEADER = "Cookie"
SET_COOKIE_HEADER = "Set-Cookie"
STICKY_ROUTE_NAME = "sticky-route"
PRIMARY_STICKY_ROUTE_NAME = "sticky-route-primary"

CookieFactory = Callable[[], str]

_LETTERS = string.ascii_letters
_system_random = random.SystemRandom()


def random_cookie_value() -> str:
    """Ten random ASCII letters, as Flagger generates them."""
    return "".join(_system_random.choice(_LETTERS) for _ in range(10))


def seeded_cookie_factory(seed: int) -> CookieFactory:
    """A deterministic cookie factory for tests and simulations."""
    rng = random.Random(seed)
    return lambda: "".join(rng.choice(_LETTERS) for _ in range(10))


@dataclass(frozen=True, slots=True)
class SessionCookies:
    """The session cookies a routing object holds, each as ``name=value`` ('' if none)."""

    canary: str = ""  # handed out by the canary while it gets traffic
    previous: str = ""  # the cookie of the last run, being expired
    primary: str = ""  # handed out by the primary while the canary gets traffic


def _named(cookie: str, name: str | None) -> bool:
    return bool(name) and cookie.startswith(f"{name}=")


def next_cookies(
    affinity: SessionAffinity | None,
    current: SessionCookies,
    canary_weight: int,
    new_value: CookieFactory,
) -> SessionCookies:
    """The cookies after routing ``canary_weight`` percent to the canary."""
    if affinity is None:
        return SessionCookies()
    if canary_weight > 0:
        canary = current.canary if _named(current.canary, affinity.cookie_name) else ""
        canary = canary or f"{affinity.cookie_name}={new_value()}"
        primary = ""
        if affinity.primary_cookie_name:
            primary = (
                current.primary if _named(current.primary, affinity.primary_cookie_name) else ""
            )
            primary = primary or f"{affinity.primary_cookie_name}={new_value()}"
        return SessionCookies(canary=canary, primary=primary)
    return SessionCookies(previous=current.canary or current.previous)


def set_cookie_value(cookie: str, affinity: SessionAffinity, max_age: int) -> str:
    """The ``Set-Cookie`` header value: ``name=value; Max-Age=...`` plus the attributes."""
    parts = [cookie, f"Max-Age={max_age}"]
    if affinity.domain:
        parts.append(f"Domain={affinity.domain}")
    if affinity.http_only:
        parts.append("HttpOnly")
    if affinity.partitioned:
        parts.append("Partitioned")
    if affinity.path:
        parts.append(f"Path={affinity.path}")
    if affinity.same_site:
        parts.append(f"SameSite={affinity.same_site}")
    if affinity.secure:
        parts.append("Secure")
    return "; ".join(parts)


def canary_set_cookie(canary: Canary, cookie: str) -> str:
    affinity = canary.spec.analysis_or_default.session_affinity
    assert affinity is not None
    return set_cookie_value(cookie, affinity, affinity.max_age)


def primary_set_cookie(canary: Canary, cookie: str) -> str:
    affinity = canary.spec.analysis_or_default.session_affinity
    assert affinity is not None
    return set_cookie_value(cookie, affinity, canary.spec.interval_seconds)


def expire_set_cookie(cookie: str) -> str:
    return f"{cookie}; Max-Age=-1"


def cookie_regex(cookie: str) -> str:
    """The ``Cookie`` header regex of a sticky route (Flagger's ``.*name.*value.*``)."""
    name, _, value = cookie.partition("=")
    return f".*{name}.*{value}.*"


def cookie_of_set_cookie(value: str) -> str:
    """``name=value`` from a ``Set-Cookie`` header value ('' if malformed)."""
    first = value.split(";", 1)[0].strip()
    return first if "=" in first else ""


def is_expiry(value: str) -> bool:
    return re.search(r";\s*Max-Age=-1\b", value) is not None
