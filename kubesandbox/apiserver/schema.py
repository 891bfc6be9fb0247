"""Structural-schema treatment of custom resources: pruning, defaulting and validation.

A real API server runs every custom resource through its CRD's ``openAPIV3Schema`` in a
fixed order — unknown fields are *pruned* (silently dropped unless
``x-kubernetes-preserve-unknown-fields`` keeps them), ``default`` values are filled in
(nulls of non-nullable fields are dropped or defaulted first), and only then is the object
*validated*, each failure reported with its field path. The controller depends on all
three (kopf's status fields vanish without preservation; Flagger defaults such as
``spec.analysis.interval`` come from the schema), so this module implements them with the
real rules rather than a generic JSON-Schema validator, which would reject unknown fields
instead of pruning them and knows nothing of ``x-kubernetes-int-or-string``.

Not implemented (documented in docs/sandbox.md): ``format`` checks, CEL
``x-kubernetes-validations``, and schema checks of ``metadata`` beyond name validity.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from ._util import deep_copy
from .errors import Cause

_ROOT_KEEP = ("apiVersion", "kind", "metadata")

#: The metadata fields the server sets and keeps (managed fields never track them).
SYSTEM_METADATA = frozenset(
    {
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
        "managedFields",
        "generateName",
    }
)
#: Every field of ObjectMeta: the server's and the ones a client writes.
OBJECT_META_FIELDS = SYSTEM_METADATA | {"labels", "annotations", "ownerReferences", "finalizers"}

Schema = Mapping[str, Any]


# --- pruning ---------------------------------------------------------------------------------


def prune_metadata(meta: Any, path: str = "metadata", pruned: list[str] | None = None) -> Any:
    """Drop fields ObjectMeta does not have (a real server drops them while decoding)."""
    if not isinstance(meta, dict):
        return meta
    for key in [k for k in meta if k not in OBJECT_META_FIELDS]:
        del meta[key]
        if pruned is not None:
            pruned.append(_child(path, key))
    return meta


def prune(obj: dict[str, Any], schema: Schema | None) -> list[str]:
    """Remove fields the schema does not declare, in place; returns the removed field paths."""
    pruned: list[str] = []
    if schema is not None:
        _prune_value(obj, schema, "", pruned, root=True)
    return pruned


def _prune_value(
    value: Any, schema: Schema, path: str, pruned: list[str], *, root: bool = False
) -> None:
    if isinstance(value, dict):
        preserve = schema.get("x-kubernetes-preserve-unknown-fields") is True
        embedded = schema.get("x-kubernetes-embedded-resource") is True
        props = schema.get("properties")
        props = props if isinstance(props, Mapping) else {}
        addl = schema.get("additionalProperties")
        addl_schema = addl if isinstance(addl, Mapping) else None
        keep_meta = root or embedded
        for key in list(value):
            child = _child(path, key)
            if keep_meta and key in _ROOT_KEEP:
                if key == "metadata":
                    prune_metadata(value[key], child, pruned)
                continue
            if key in props:
                sub = props[key]
                if isinstance(sub, Mapping):
                    _prune_value(value[key], sub, child, pruned)
            elif addl_schema is not None:
                _prune_value(value[key], addl_schema, child, pruned)
            elif addl is True or preserve:
                continue
            else:
                del value[key]
                pruned.append(child)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, Mapping):
            for i, item in enumerate(value):
                _prune_value(item, items, f"{path}[{i}]", pruned)


# --- defaulting ------------------------------------------------------------------------------


def apply_defaults(obj: dict[str, Any], schema: Schema | None) -> dict[str, Any]:
    """Fill in ``default`` values (and drop nulls of non-nullable fields), in place."""
    if schema is None:
        return obj
    _default_value(obj, schema, root=True)
    return obj


def _default_value(value: Any, schema: Schema, *, root: bool = False) -> None:
    if isinstance(value, dict):
        props = schema.get("properties")
        props = props if isinstance(props, Mapping) else {}
        for key, sub in props.items():
            if root and key in _ROOT_KEEP:
                continue
            if not isinstance(sub, Mapping):
                continue
            if key in value and value[key] is None and not sub.get("nullable"):
                if "default" in sub:
                    value[key] = deep_copy(sub["default"])
                else:
                    del value[key]
            elif key not in value and "default" in sub:
                value[key] = deep_copy(sub["default"])
        addl = schema.get("additionalProperties")
        for key, item in value.items():
            if root and key in _ROOT_KEEP:
                continue
            sub = props.get(key)
            if isinstance(sub, Mapping):
                _default_value(item, sub)
            elif isinstance(addl, Mapping):
                _default_value(item, addl)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, Mapping):
            for item in value:
                _default_value(item, items)


# --- validation ------------------------------------------------------------------------------


def validate(obj: Mapping[str, Any], schema: Schema | None) -> list[Cause]:
    """Check ``obj`` against the schema; one :class:`Cause` per failing field."""
    if schema is None:
        return []
    out: list[Cause] = []
    _validate_value(obj, schema, "", out, root=True)
    return out


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _type_ok(value: Any, expected: str) -> bool:
    actual = _json_type(value)
    if expected == "number":
        return actual in ("integer", "number")
    return actual == expected


def _show(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _child(path: str, key: str) -> str:
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", key):
        return f"{path}.{key}" if path else key
    return f"{path}[{key}]"


def _display(path: str) -> str:
    return path or "<root>"


@lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _validate_value(
    value: Any, schema: Schema, path: str, out: list[Cause], *, root: bool = False
) -> None:
    shown = _display(path)
    if value is None:
        if schema.get("nullable") or (
            schema.get("x-kubernetes-preserve-unknown-fields") is True and "type" not in schema
        ):
            return
        expected = schema.get("type") or (
            "integer or string" if schema.get("x-kubernetes-int-or-string") else None
        )
        if expected:
            out.append(
                Cause(
                    shown,
                    "FieldValueTypeInvalid",
                    f'Invalid value: "null": {shown} in body must be of type {expected}: "null"',
                )
            )
        return

    if schema.get("x-kubernetes-int-or-string") is True:
        if _json_type(value) not in ("integer", "string"):
            t = _json_type(value)
            out.append(
                Cause(
                    shown,
                    "FieldValueTypeInvalid",
                    f'Invalid value: "{t}": {shown} in body must be of type integer or string: "{t}"',
                )
            )
            return
    expected_type = schema.get("type")
    if isinstance(expected_type, str) and expected_type and not _type_ok(value, expected_type):
        t = _json_type(value)
        out.append(
            Cause(
                shown,
                "FieldValueTypeInvalid",
                f'Invalid value: "{t}": {shown} in body must be of type {expected_type}: "{t}"',
            )
        )
        return

    enum = schema.get("enum")
    if isinstance(enum, list) and value not in enum:
        supported = ", ".join(_show(e) for e in enum)
        out.append(
            Cause(
                shown,
                "FieldValueNotSupported",
                f"Unsupported value: {_show(value)}: supported values: {supported}",
            )
        )

    if isinstance(value, str):
        _validate_string(value, schema, shown, out)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        _validate_number(value, schema, shown, out)
    elif isinstance(value, list):
        _validate_array(value, schema, path, out)
    elif isinstance(value, dict):
        _validate_object(value, schema, path, out, root=root)

    _validate_combinators(value, schema, path, out, root=root)


def _validate_string(value: str, schema: Schema, shown: str, out: list[Cause]) -> None:
    min_len = schema.get("minLength")
    if isinstance(min_len, int) and len(value) < min_len:
        out.append(
            Cause(
                shown,
                "FieldValueInvalid",
                f"Invalid value: {_show(value)}: {shown} in body should be at least {min_len} chars long",
            )
        )
    max_len = schema.get("maxLength")
    if isinstance(max_len, int) and len(value) > max_len:
        out.append(
            Cause(shown, "FieldValueTooLong", f"Too long: may not be more than {max_len} bytes")
        )
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        try:
            matched = _regex(pattern).search(value) is not None
        except re.error:
            matched = True  # an unsupported regex dialect: do not reject the object for it
        if not matched:
            out.append(
                Cause(
                    shown,
                    "FieldValueInvalid",
                    f"Invalid value: {_show(value)}: {shown} in body should match '{pattern}'",
                )
            )


def _validate_number(value: float, schema: Schema, shown: str, out: list[Cause]) -> None:
    minimum = schema.get("minimum")
    if isinstance(minimum, (int, float)):
        if schema.get("exclusiveMinimum") is True and value <= minimum:
            out.append(
                Cause(
                    shown,
                    "FieldValueInvalid",
                    f"Invalid value: {_show(value)}: {shown} in body should be greater than {_show(minimum)}",
                )
            )
        elif value < minimum:
            out.append(
                Cause(
                    shown,
                    "FieldValueInvalid",
                    f"Invalid value: {_show(value)}: {shown} in body should be greater than or equal to {_show(minimum)}",
                )
            )
    maximum = schema.get("maximum")
    if isinstance(maximum, (int, float)):
        if schema.get("exclusiveMaximum") is True and value >= maximum:
            out.append(
                Cause(
                    shown,
                    "FieldValueInvalid",
                    f"Invalid value: {_show(value)}: {shown} in body should be less than {_show(maximum)}",
                )
            )
        elif value > maximum:
            out.append(
                Cause(
                    shown,
                    "FieldValueInvalid",
                    f"Invalid value: {_show(value)}: {shown} in body should be less than or equal to {_show(maximum)}",
                )
            )
    multiple = schema.get("multipleOf")
    if isinstance(multiple, (int, float)) and multiple > 0:
        quotient = value / multiple
        if not math.isclose(quotient, round(quotient), rel_tol=0, abs_tol=1e-9):
            out.append(
                Cause(
                    shown,
                    "FieldValueInvalid",
                    f"Invalid value: {_show(value)}: {shown} in body should be a multiple of {_show(multiple)}",
                )
            )


def _check_size(
    size: int, schema: Schema, keys: tuple[str, str, str], shown: str, out: list[Cause]
) -> None:
    """``minItems``/``maxItems`` or ``minProperties``/``maxProperties`` (``keys``: the two
    bounds and the noun), worded as the API server words them: its upper-bound message says
    "items" for properties too."""
    low_key, high_key, noun = keys
    low, high = schema.get(low_key), schema.get(high_key)
    if isinstance(low, int) and size < low:
        out.append(
            Cause(
                shown,
                "FieldValueInvalid",
                f"Invalid value: {size}: {shown} in body should have at least {low} {noun}",
            )
        )
    if isinstance(high, int) and size > high:
        out.append(
            Cause(shown, "FieldValueTooMany", f"Too many: {size}: must have at most {high} items")
        )


def _validate_array(value: list[Any], schema: Schema, path: str, out: list[Cause]) -> None:
    _check_size(len(value), schema, ("minItems", "maxItems", "items"), _display(path), out)
    list_type = schema.get("x-kubernetes-list-type")
    if schema.get("uniqueItems") is True or list_type == "set":
        seen: set[str] = set()
        for i, item in enumerate(value):
            key = json.dumps(item, sort_keys=True)
            if key in seen:
                out.append(
                    Cause(f"{path}[{i}]", "FieldValueDuplicate", f"Duplicate value: {_show(item)}")
                )
            seen.add(key)
    if list_type == "map":
        keys = schema.get("x-kubernetes-list-map-keys") or []
        seen_keys: set[str] = set()
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                continue
            key = json.dumps([item.get(k) for k in keys])
            if key in seen_keys:
                shown_key = ", ".join(f"{k}={_show(item.get(k))}" for k in keys)
                out.append(
                    Cause(
                        f"{path}[{i}]", "FieldValueDuplicate", f"Duplicate value: map[{shown_key}]"
                    )
                )
            seen_keys.add(key)
    items = schema.get("items")
    if isinstance(items, Mapping):
        for i, item in enumerate(value):
            _validate_value(item, items, f"{path}[{i}]", out)


def _validate_object(
    value: dict[str, Any], schema: Schema, path: str, out: list[Cause], *, root: bool
) -> None:
    shown = _display(path)
    props = schema.get("properties")
    props = props if isinstance(props, Mapping) else {}
    for key in schema.get("required") or []:
        if key not in value:
            out.append(Cause(_child(path, key), "FieldValueRequired", "Required value"))
    _check_size(len(value), schema, ("minProperties", "maxProperties", "properties"), shown, out)
    if (
        schema.get("x-kubernetes-embedded-resource") is True
        and schema.get("x-kubernetes-preserve-unknown-fields") is not True
    ):
        for key in ("apiVersion", "kind"):
            if not value.get(key):
                out.append(
                    Cause(
                        _child(path, key), "FieldValueRequired", "Required value: must not be empty"
                    )
                )
    addl = schema.get("additionalProperties")
    for key, item in value.items():
        if root and key in _ROOT_KEEP:
            continue
        sub = props.get(key)
        if isinstance(sub, Mapping):
            _validate_value(item, sub, _child(path, key), out)
        elif isinstance(addl, Mapping):
            _validate_value(item, addl, f"{path}[{key}]", out)
        elif addl is False and key not in props:
            out.append(
                Cause(
                    _child(path, key),
                    "FieldValueForbidden",
                    "Forbidden: additional properties are not allowed",
                )
            )


def _passes(value: Any, schema: Schema, path: str, root: bool) -> bool:
    trial: list[Cause] = []
    _validate_value(value, schema, path, trial, root=root)
    return not trial


def _validate_combinators(
    value: Any, schema: Schema, path: str, out: list[Cause], *, root: bool
) -> None:
    shown = _display(path)
    for sub in schema.get("allOf") or []:
        if isinstance(sub, Mapping):
            _validate_value(value, sub, path, out, root=root)
    any_of = [s for s in schema.get("anyOf") or [] if isinstance(s, Mapping)]
    if any_of and not any(_passes(value, s, path, root) for s in any_of):
        out.append(
            Cause(
                shown,
                "FieldValueInvalid",
                f"Invalid value: {_show(value)}: {shown} in body must validate at least one schema (anyOf)",
            )
        )
    one_of = [s for s in schema.get("oneOf") or [] if isinstance(s, Mapping)]
    if one_of:
        passing = sum(1 for s in one_of if _passes(value, s, path, root))
        if passing != 1:
            out.append(
                Cause(
                    shown,
                    "FieldValueInvalid",
                    f"Invalid value: {_show(value)}: {shown} in body must validate one and only one schema (oneOf)",
                )
            )
    not_schema = schema.get("not")
    if isinstance(not_schema, Mapping) and _passes(value, not_schema, path, root):
        out.append(
            Cause(
                shown,
                "FieldValueInvalid",
                f"Invalid value: {_show(value)}: {shown} in body must not validate the schema (not)",
            )
        )
