"""Render Flagger-style query templates into PromQL, safely.

MetricTemplates use Go ``text/template`` with functions, not fields:
``{{ name }}``, ``{{ namespace }}``, ``{{ target }}``, ``{{ service }}``,
``{{ ingress }}``, ``{{ route }}``, ``{{ interval }}`` and
``{{ variables.<key> }}`` (whitespace inside the braces optional, ``{{-`` and
``-}}`` trim like Go). As in Go, only ``{{`` opens an expression: a ``}}`` outside one
is text, as where the JSON of a CloudWatch query closes two objects at once.  Nothing else of Go templates is supported; anything
else is a :class:`~analysis.TemplateError` naming the expression.

Values are escaped according to where they land, which a plain string
substitution (Flagger) does not do: inside a quoted PromQL string, quotes and
backslashes are escaped; inside the string of a regex matcher (``=~``/``!~``)
the literal Kubernetes names are also regex-escaped, so ``my.app`` matches only
``my.app``.  ``variables.*`` are never regex-escaped: users put regexes there
on purpose.  Outside strings, values are inserted verbatim; ``interval`` must
be a PromQL duration.

:class:`QueryContext` holds the names a template can refer to; it lives here,
with the renderer that reads it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from analysis._spec.errors import TemplateError
from analysis._spec.vocabulary import PROMQL_DURATION_RE

__all__ = ["QueryContext", "escape_regex", "escape_string", "render_query", "validate_duration"]


@dataclass(frozen=True, slots=True)
class QueryContext:
    """The names a query template can refer to (Flagger's template functions).

    ``service``, ``ingress`` and ``route`` default to ``target`` as in Flagger.
    ``provider`` is the canary's mesh/ingress provider (``spec.provider`` or the
    controller default); it chooses the builtin queries.
    """

    name: str
    namespace: str
    target: str
    provider: str
    service: str | None = None
    ingress: str | None = None
    route: str | None = None

    @property
    def service_name(self) -> str:
        return self.service or self.target

    @property
    def ingress_name(self) -> str:
        return self.ingress or self.target

    @property
    def route_name(self) -> str:
        return self.route or self.target

    def for_primary(self) -> QueryContext:
        """The same context with ``target`` and ``service`` bound to their ``-primary`` twins."""
        return replace(
            self,
            target=f"{self.target}-primary",
            service=f"{self.service_name}-primary",
            ingress=self.ingress_name,
            route=self.route_name,
        )


_NAME_VARS = ("name", "namespace", "target", "service", "ingress", "route")
_REGEX_META = frozenset("\\.+*?()|[]{}^$")
_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def escape_regex(value: str) -> str:
    """Escape RE2 metacharacters so ``value`` matches itself literally."""
    return "".join("\\" + c if c in _REGEX_META else c for c in value)


def escape_string(value: str, quote: str = '"') -> str:
    """Escape ``value`` for the inside of a PromQL string literal delimited by ``quote``."""
    if quote == "`":
        if "`" in value:
            raise TemplateError(f"value {value!r} contains a backtick inside a `raw` string")
        return value
    out = value.replace("\\", "\\\\").replace(quote, "\\" + quote)
    return out.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


def validate_duration(value: str, field: str = "interval") -> str:
    """``value`` if it is a PromQL duration; a query with any other range would not parse."""
    if not PROMQL_DURATION_RE.match(value):
        raise TemplateError(f"{field}: expected a PromQL duration such as 1m or 30s, got {value!r}")
    return value


def _lookup(
    expr: str, ctx: QueryContext, interval: str, variables: Mapping[str, str]
) -> tuple[str, bool]:
    """Value of a template expression and whether it is a literal Kubernetes name."""
    values = {
        "name": ctx.name,
        "namespace": ctx.namespace,
        "target": ctx.target,
        "service": ctx.service_name,
        "ingress": ctx.ingress_name,
        "route": ctx.route_name,
    }
    if expr in values:
        return values[expr], True
    if expr == "interval":
        return validate_duration(interval), False
    if expr.startswith("variables."):
        key = expr[len("variables.") :]
        if key not in variables:
            known = ", ".join(sorted(variables)) or "none"
            raise TemplateError(
                f"unknown template variable {{{{ {expr} }}}}: templateVariables has no key "
                f"{key!r} (defined: {known})"
            )
        return variables[key], False
    if _IDENT_RE.match(expr) or expr.startswith("."):
        raise TemplateError(
            f"unknown template variable {{{{ {expr} }}}}; expected one of "
            f"{', '.join(_NAME_VARS)}, interval or variables.<key>"
        )
    raise TemplateError(f"unsupported template expression {{{{ {expr} }}}}")


def _matcher_before(text: str, quote_pos: int) -> str:
    """The label-matcher operator right before a string literal, if any."""
    i = quote_pos - 1
    while i >= 0 and text[i] in " \t\r\n":
        i -= 1
    if i >= 1 and text[i - 1 : i + 1] in ("=~", "!~"):
        return "regex"
    return "string"


def render_query(
    template: str,
    ctx: QueryContext,
    *,
    interval: str = "1m",
    variables: Mapping[str, str] | None = None,
) -> str:
    """Render ``template`` for ``ctx``; raise :class:`TemplateError` on any problem.

    One pass over the text that tracks whether it is inside a string literal
    (and whether that string is a regex matcher's), so each ``{{ ... }}`` value
    is escaped for the place it lands in.
    """
    variables = variables or {}
    out: list[str] = []
    i = 0
    n = len(template)
    quote: str | None = None  # the delimiter of the string literal we are in
    context = "code"  # "code", "string" or "regex"
    while i < n:
        if template.startswith("{{", i):
            i = _substitute(
                template, i, out, ctx, interval, variables, context=context, quote=quote
            )
            continue
        c = template[i]
        if quote is None:
            if c in "\"'`":
                quote = c
                context = _matcher_before(template, i)
        elif c == "\\" and quote != "`" and i + 1 < n:
            out.append(template[i : i + 2])
            i += 2
            continue
        elif c == quote:
            quote = None
            context = "code"
        out.append(c)
        i += 1
    if quote is not None:
        raise TemplateError(f"unterminated string literal (opened with {quote}) in query template")
    return "".join(out)


def _substitute(
    template: str,
    start: int,
    out: list[str],
    ctx: QueryContext,
    interval: str,
    variables: Mapping[str, str],
    *,
    context: str,
    quote: str | None,
) -> int:
    """Append the value of the ``{{ ... }}`` at ``start`` to ``out``, escaped for where it lands.

    ``{{-`` trims the blanks before the expression and ``-}}`` those after it, as
    in Go.  Returns the offset just after the expression and its trimmed blanks.
    """
    end = template.find("}}", start + 2)
    nxt = template.find("{{", start + 2)
    if end < 0 or (0 <= nxt < end):
        raise TemplateError(
            f"unbalanced braces: '{{{{' at offset {start} has no matching '}}}}' "
            f"(near {template[start : start + 30]!r})"
        )
    expr = template[start + 2 : end]
    trim_left = expr.startswith("-")
    trim_right = expr.endswith("-")
    expr = expr.strip("-").strip() if (trim_left or trim_right) else expr.strip()
    if not expr:
        raise TemplateError(f"empty template expression at offset {start}")
    if trim_left:
        while out and out[-1] in " \t\r\n":
            out.pop()
    value, is_name = _lookup(expr, ctx, interval, variables)
    if context == "regex" and is_name:
        value = escape_regex(value)
    if quote is not None:
        value = escape_string(value, quote)
    out.append(value)
    i = end + 2
    if trim_right:
        while i < len(template) and template[i] in " \t\r\n":
            i += 1
    return i
