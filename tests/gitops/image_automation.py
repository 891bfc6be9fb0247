"""A stand-in for Flux's image-reflector and image-automation controllers, for tests.

It re-enacts what the two controllers do with the objects, from their documentation and code,
without a cluster or a registry:

* the reflector drops the tags that match any regular expression of the ImageRepository's
  ``spec.exclusionList`` (searched anywhere in the tag; ``^.*\\.sig$`` when the list is unset
  or empty), applies the ImagePolicy's ``filterTags`` (``pattern``, and ``extract`` with Go's
  ``$name``/``${name}``/``$1`` expansion) and picks the latest tag by the policy: ``semver``
  (Masterminds/semver v3 constraints, tags parsed strictly with an optional ``v``),
  ``alphabetical`` or ``numerical`` (``order`` ``asc`` by default);
* the automation rewrites every scalar marked ``# {"$imagepolicy": "<ns>:<policy>"}`` (whole
  image), ``...:tag`` or ``...:name`` (also the long ``{"$ref": "#/definitions/
  io.k8s.cli.setters.<ns>:<policy>"}``) to the policy's latest image, in YAML files under its
  path that contain the ``"$imagepolicy"`` token, and commits as ``fluxcdbot`` when something
  changed. A marker naming only the policy is resolved in the automation's namespace.

Differences from the real controllers, all harmless for tests: regular expressions run on
Python's ``re`` (Go's ``(?<name>...)`` is accepted); the rewrite is line-based (the real one
re-serialises the file with kyaml); ties between equal versions keep the first tag given (Flux's
order comes from a map); an ImageRepository's ``accessFrom`` is not checked. This module does
not import the product code it is used to check.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import yaml

from tests.git_fixtures import run_git

__all__ = [
    "FLUX_AUTHOR",
    "PlayedImageAutomation",
    "select_tag",
    "update_setters",
]

FLUX_AUTHOR = ("fluxcdbot", "fluxcdbot@users.noreply.github.com")
DEFAULT_EXCLUSION = r"^.*\.sig$"
SETTER_REF_PREFIX = "#/definitions/io.k8s.cli.setters."


# -- semver, as Masterminds/semver v3 ---------------------------------------------------------


@dataclass(frozen=True)
class _Version:
    major: int
    minor: int
    patch: int
    pre: str = ""


def _compare_pre_part(s: str, o: str) -> int:
    if s == o:
        return 0
    if s == "":
        return -1
    if o == "":
        return 1
    s_num = s.isascii() and s.isdigit()
    o_num = o.isascii() and o.isdigit()
    if not s_num and not o_num:
        return 1 if s > o else -1
    if not o_num:  # a number sorts before an identifier
        return -1
    if not s_num:
        return 1
    return 1 if int(s) > int(o) else -1


def _compare_pre(s: str, o: str) -> int:
    s_parts, o_parts = s.split("."), o.split(".")
    for i in range(max(len(s_parts), len(o_parts))):
        d = _compare_pre_part(
            s_parts[i] if i < len(s_parts) else "", o_parts[i] if i < len(o_parts) else ""
        )
        if d:
            return d
    return 0


def _compare(v: _Version, o: _Version) -> int:
    for a, b in ((v.major, o.major), (v.minor, o.minor), (v.patch, o.patch)):
        if a != b:
            return 1 if a > b else -1
    if v.pre == o.pre == "":
        return 0
    if v.pre == "":
        return 1
    if o.pre == "":
        return -1
    return _compare_pre(v.pre, o.pre)


_IDENT = re.compile(r"[0-9A-Za-z-]+")


def parse_tag_version(tag: str) -> _Version | None:
    """Flux's ``version.ParseVersion``: ``semver.StrictNewVersion`` after an optional ``v``."""
    core = tag[1:] if tag.startswith("v") else tag
    parts = core.split(".", 2)
    if len(parts) != 3:
        return None
    last = parts[2]
    if "+" in last:
        last, meta = last.split("+", 1)
        if not all(_IDENT.fullmatch(p) for p in meta.split(".")):
            return None
    pre = ""
    if "-" in last:
        last, pre = last.split("-", 1)
        for p in pre.split("."):
            if not _IDENT.fullmatch(p) or (p.isdigit() and len(p) > 1 and p[0] == "0"):
                return None
    numbers = [parts[0], parts[1], last]
    for n in numbers:
        if not (n.isascii() and n.isdigit()) or (len(n) > 1 and n[0] == "0"):
            return None
    return _Version(int(numbers[0]), int(numbers[1]), int(numbers[2]), pre)


_CV = (
    r"v?([0-9|x|X|\*]+)(\.[0-9|x|X|\*]+)?(\.[0-9|x|X|\*]+)?"
    r"(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?"
    r"(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?"
)
_OPS = r"=||!=|>|<|>=|=>|<=|=<|~|~>|\^"
_CONSTRAINT = re.compile(rf"^\s*({_OPS})\s*({_CV})\s*$")
_RANGE = re.compile(rf"\s*({_CV})\s+-\s+({_CV})\s*")
_FIND = re.compile(rf"({_OPS})\s*({_CV})")
_VALID = re.compile(rf"^(\s*({_OPS})\s*({_CV})\s*)((?:\s+|,\s*)({_OPS})\s*({_CV})\s*)*$")


def _is_x(part: str) -> bool:
    return part in ("x", "X", "*")


@dataclass(frozen=True)
class _Constraint:
    op: str
    con: _Version
    dirty: bool
    minor_dirty: bool
    patch_dirty: bool

    def check(self, v: _Version) -> bool:
        c = self.con
        if v.pre and not c.pre:
            # A prerelease only satisfies constraints that mention one (Masterminds #21).
            if self.op != "!=" or self.dirty:
                return False
        op = self.op
        if op in ("", "="):
            if self.dirty:
                return self._tilde(v)
            return _compare(v, c) == 0
        if op == "!=":
            if self.dirty:
                if c.major != v.major:
                    return True
                if c.minor != v.minor and not self.minor_dirty:
                    return True
                if self.minor_dirty:
                    return False
                if c.patch != v.patch and not self.patch_dirty:
                    return True
                if self.patch_dirty:
                    if v.pre or c.pre:
                        return _compare_pre(v.pre, c.pre) != 0
                    return False
            return _compare(v, c) != 0
        if op == ">":
            if not self.dirty:
                return _compare(v, c) > 0
            if v.major != c.major:
                return v.major > c.major
            if self.minor_dirty:
                return False
            if self.patch_dirty:
                return v.minor > c.minor
            return _compare(v, c) > 0
        if op == "<":
            return _compare(v, c) < 0
        if op in (">=", "=>"):
            return _compare(v, c) >= 0
        if op in ("<=", "=<"):
            if not self.dirty:
                return _compare(v, c) <= 0
            if v.major > c.major:
                return False
            return not (v.major == c.major and v.minor > c.minor and not self.minor_dirty)
        if op in ("~", "~>"):
            return self._tilde(v)
        if op == "^":
            return self._caret(v)
        raise ValueError(f"unknown operator {op!r}")

    def _tilde(self, v: _Version) -> bool:
        c = self.con
        if _compare(v, c) < 0:
            return False
        if (
            (c.major, c.minor, c.patch) == (0, 0, 0)
            and not self.minor_dirty
            and not self.patch_dirty
        ):
            return True
        if v.major != c.major:
            return False
        return not (v.minor != c.minor and not self.minor_dirty)

    def _caret(self, v: _Version) -> bool:
        c = self.con
        if _compare(v, c) < 0:
            return False
        if c.major > 0 or self.minor_dirty:
            return v.major == c.major
        if v.major > 0:
            return False
        if c.minor > 0 or self.patch_dirty:
            return v.minor == c.minor
        if v.minor > 0:
            return False
        return v.patch == c.patch


def _parse_constraint(text: str) -> _Constraint:
    m = _CONSTRAINT.match(text)
    if m is None:
        raise ValueError(f"improper constraint: {text}")
    op, major, minor, patch, pre_part = m.group(1), m.group(3), m.group(4), m.group(5), m.group(6)
    pre = (pre_part or "")[1:]
    dirty = minor_dirty = patch_dirty = False
    if _is_x(major) or not major:
        numbers, dirty = (0, 0, 0), True
    elif not minor or _is_x(minor[1:]):
        numbers, dirty, minor_dirty = (int(major), 0, 0), True, True
    elif not patch or _is_x(patch[1:]):
        numbers, dirty, patch_dirty = (int(major), int(minor[1:]), 0), True, True
    else:
        numbers = (int(major), int(minor[1:]), int(patch[1:]))
    return _Constraint(op, _Version(*numbers, pre), dirty, minor_dirty, patch_dirty)


def semver_constraints(text: str) -> Callable[[_Version], bool]:
    """Masterminds ``NewConstraint(text).Check``: ``||`` between alternatives, spaces or
    commas between conditions, ``a - b`` ranges, ``x``/``*`` wildcards, ``~``, ``^``."""
    for match in _RANGE.finditer(text):
        text = text.replace(match.group(0), f">= {match.group(1)}, <= {match.group(11)}", 1)
    alternatives: list[list[_Constraint]] = []
    for part in text.split("||"):
        if not _VALID.match(part):
            raise ValueError(f"improper constraint: {part}")
        found = [m.group(0) for m in _FIND.finditer(part)] or [part]
        alternatives.append([_parse_constraint(c) for c in found])

    def check(v: _Version) -> bool:
        return any(all(c.check(v) for c in group) for group in alternatives)

    return check


# -- the reflector's selection ----------------------------------------------------------------


def _go_regexp(pattern: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\(\?<([A-Za-z_][A-Za-z0-9_]*)>", r"(?P<\1>", pattern))


def go_expand(template: str, match: re.Match[str]) -> str:
    """Go's ``Regexp.ExpandString``: ``$name``/``${name}`` (longest name), ``$1``, ``$$``;
    unknown or unmatched groups give the empty string, a malformed ``$`` stays as it is."""
    out: list[str] = []
    i = 0
    while i < len(template):
        char = template[i]
        if char != "$" or i + 1 == len(template):
            out.append(char)
            i += 1
            continue
        if template[i + 1] == "$":
            out.append("$")
            i += 2
            continue
        if template[i + 1] == "{":
            end = template.find("}", i + 2)
            name = template[i + 2 : end] if end > 0 else ""
            length = end + 1 - i
        else:
            m = re.match(r"[A-Za-z0-9_]+", template[i + 1 :])
            name = m.group(0) if m else ""
            length = 1 + len(name)
        if not re.fullmatch(r"[A-Za-z0-9_]+", name or "-"):
            out.append("$")
            i += 1
            continue
        value: str | None
        if name.isdigit() and (len(name) == 1 or name[0] != "0"):
            number = int(name)
            value = match.group(number) if number <= (match.re.groups or 0) else None
        else:
            value = match.groupdict().get(name)
        out.append(value or "")
        i += length
    return "".join(out)


def _parse_float(text: str) -> float | None:
    """Close to Go's ``strconv.ParseFloat``: no surrounding space, no digit separators."""
    if text != text.strip() or "_" in text:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return None if math.isnan(value) and text.lower() != "nan" else value  # Go: no "+NaN"


def select_tag(
    tags: Sequence[str],
    policy_spec: Mapping[str, Any],
    exclusion_list: Sequence[str] | None,
) -> str | None:
    """The tag Flux would report as latest for an ImagePolicy ``spec`` over a repository's
    ``tags``, after the ImageRepository's ``exclusionList`` (None or empty: the default).

    None when no tag qualifies (Flux then reports a failure and keeps no latest image),
    including a numerical policy meeting a tag that is not a number, as Flux does. An invalid
    policy (no choice, an unknown order, a malformed range or pattern) raises ValueError."""
    exclusions = [_go_regexp(p) for p in (exclusion_list or [DEFAULT_EXCLUSION])]
    candidates = [t for t in tags if not any(p.search(t) for p in exclusions)]

    originals: dict[str, str] = {t: t for t in candidates}
    tag_filter = policy_spec.get("filterTags")
    if tag_filter:
        regexp = _go_regexp(str(tag_filter.get("pattern") or ""))
        extract = str(tag_filter.get("extract") or "")
        originals = {}
        for tag in candidates:
            match = regexp.search(tag)
            if match:
                originals[go_expand(extract, match) if extract else tag] = tag
    values = list(originals)

    policy = policy_spec.get("policy") or {}
    chosen: str | None
    if "semver" in policy:
        check = semver_constraints(str((policy["semver"] or {}).get("range", "")))
        best: tuple[_Version, str] | None = None
        for value in values:
            version = parse_tag_version(value)
            if version is not None and check(version):
                if best is None or _compare(version, best[0]) > 0:
                    best = (version, value)
        chosen = best[1] if best else None
    elif "alphabetical" in policy:
        order = _order(policy["alphabetical"])
        chosen = (max(values) if order == "ASC" else min(values)) if values else None
    elif "numerical" in policy:
        order = _order(policy["numerical"])
        chosen = None
        previous = 0.0
        for index, value in enumerate(values):
            number = _parse_float(value)
            if number is None:
                return None
            if index and (
                (order == "ASC" and number < previous) or (order == "DESC" and number > previous)
            ):
                continue
            chosen, previous = value, number
    else:
        raise ValueError("given ImagePolicyChoice object is invalid")
    return originals[chosen] if chosen is not None else None


def _order(choice: Mapping[str, Any] | None) -> str:
    order = str((choice or {}).get("order") or "asc").upper()
    if order not in ("ASC", "DESC"):
        raise ValueError(f"invalid order argument provided: {order!r}, must be one of: ASC, DESC")
    return order


# -- the automation's rewrite -----------------------------------------------------------------

_HEAD = re.compile(r"""\s*(?:-\s+)*(?:(?:"[^"]*"|'[^']*'|[^\s#"'-][^#]*?|-[^\s#][^#]*?):\s+)?""")
_PLAIN = re.compile(r"[^\s#\"'\[\]{}|>&*!%@`,?:-][^#]*|[-?:][^\s#][^#]*")


def _setter(comment: str) -> str | None:
    """The setter a line comment names (kyaml strips leading ``#`` and reads JSON)."""
    try:
        data = json.loads(comment.lstrip("#"))
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    name = data.get("$imagepolicy")
    if isinstance(name, str) and name and all(isinstance(v, str) for v in data.values()):
        if name.startswith("${") and name.endswith("}"):
            name = name[2:-1]
        return name
    ref = data.get("$ref")
    if isinstance(ref, str) and ref.startswith(SETTER_REF_PREFIX):
        return ref[len(SETTER_REF_PREFIX) :]
    return None


def _image_parts(image: str) -> tuple[str, str]:
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon <= slash:
        return image, ""
    return image[:colon], image[colon + 1 :]


def _needs_quotes(value: str) -> bool:
    """kyaml double-quotes a string setter value that YAML 1.1 would read as another type."""
    try:
        loaded = yaml.safe_load(value)
    except yaml.YAMLError:
        return True
    return not isinstance(loaded, str)


def _marked(body: str) -> tuple[str, str, str, str] | None:
    """``(head, value, tail, setter)`` of a line whose scalar carries a setter comment."""
    for found in re.finditer(r"[ \t]#", body):
        setter = _setter(body[found.start() + 2 :])
        if setter is None:
            continue
        before = body[: found.start()].rstrip(" \t")
        head = _HEAD.match(before)
        value = before[head.end() :] if head else ""
        quoted = len(value) > 1 and value[0] == value[-1] and value[0] in "'\""
        if not value or not (quoted or _PLAIN.fullmatch(value)) or (not quoted and ": " in value):
            return None
        return before[: len(before) - len(value)], value, body[len(before) :], setter
    return None


def _rewrite(
    text: str, policies: Mapping[tuple[str, str], str], default_namespace: str
) -> tuple[str, set[tuple[str, str]]]:
    out: list[str] = []
    used: set[tuple[str, str]] = set()
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        marked = _marked(body)
        if marked is None:
            out.append(line)
            continue
        head, old, tail, setter = marked
        parts = setter.split(":")
        part = parts.pop() if len(parts) == 3 and parts[2] in ("tag", "name") else "image"
        if len(parts) == 1:
            parts.insert(0, default_namespace)
        key = (parts[0], parts[1]) if len(parts) == 2 else None
        latest = policies.get(key) if key else None
        if key is None or latest is None:
            out.append(line)
            continue
        repository, tag = _image_parts(latest)
        new = {"image": latest, "tag": tag, "name": repository}[part]
        if old[0] == '"':
            rendered = json.dumps(new)
        elif old[0] == "'":
            rendered = "'" + new.replace("'", "''") + "'"
        else:
            rendered = json.dumps(new) if _needs_quotes(new) else new
        if rendered != old:
            used.add(key)
        out.append(head + rendered + tail + line[len(body) :])
    return "".join(out), used


def update_setters(
    text: str, policies: Mapping[tuple[str, str], str], default_namespace: str
) -> str:
    """Rewrite every setter-marked scalar of ``text`` to its policy's latest image.

    ``policies`` maps ``(namespace, policy name)`` to the latest image (``repo:tag``); a
    marker naming only the policy is looked up in ``default_namespace``. Markers naming an
    unknown policy, and every unmarked line, are left as they are; a rewritten line keeps its
    quoting and its comment (a plain value that would read as a number is double-quoted, as
    kyaml does)."""
    return _rewrite(text, policies, default_namespace)[0]


# -- one automation pass over a Git repository ------------------------------------------------


class _Repo(Protocol):
    path: Any  # the bare repository, for git ls-tree

    def head(self) -> str: ...

    def show(self, rev: str, path: str) -> str | None: ...

    def commit(
        self,
        files: Mapping[str, str | None],
        message: str,
        *,
        author: tuple[str, str] = ...,
        push: bool = ...,
    ) -> str: ...


def _meta(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


@dataclass
class PlayedImageAutomation:
    """One ``ImageUpdateAutomation`` in ``namespace`` with its reflector, over ``repo``.

    ``registry`` maps an image repository (as in ``ImageRepository.spec.image``) to the tags
    the registry holds; ``objects`` returns the live ImageRepository and ImagePolicy objects
    (read on every pass, so tests can change them). Only the policies of the automation's
    namespace are applied, as Flux does. ``path`` is ``spec.update.path``; ``passes`` records
    each pass's commit (None when it changed nothing)."""

    repo: _Repo
    registry: Mapping[str, Sequence[str]]
    objects: Callable[[], Iterable[Mapping[str, Any]]]
    namespace: str = "flux-system"
    path: str = ""
    passes: list[str | None] = field(default_factory=list)

    def latest_images(self) -> dict[tuple[str, str], str]:
        """``(namespace, policy) -> repo:tag`` as the reflector would report them now."""
        objects = list(self.objects())
        repositories = {
            _meta(o): o
            for o in objects
            if o.get("kind") == "ImageRepository"
            and str(o.get("apiVersion", "")).startswith("image.toolkit.fluxcd.io/")
        }
        latest: dict[tuple[str, str], str] = {}
        for policy in objects:
            if policy.get("kind") != "ImagePolicy":
                continue
            namespace, name = _meta(policy)
            if namespace != self.namespace:
                continue
            spec = policy.get("spec") or {}
            ref = spec.get("imageRepositoryRef") or {}
            where = (str(ref.get("namespace") or namespace), str(ref.get("name") or ""))
            repository = repositories.get(where)
            if repository is None:
                continue
            repo_spec = repository.get("spec") or {}
            image = str(repo_spec.get("image"))
            tag = select_tag(
                list(self.registry.get(image, ())), spec, repo_spec.get("exclusionList")
            )
            if tag is not None:
                latest[(namespace, name)] = f"{image}:{tag}"
        return latest

    def run_once(self) -> str | None:
        """One pass: rewrite marked files at the branch head and commit when something changed.
        Returns the new commit, or None."""
        latest = self.latest_images()
        head = self.repo.head()
        listing = run_git(
            "ls-tree", "-r", "--name-only", head, "--", self.path or ".", cwd=self.repo.path
        )
        changed: dict[str, str | None] = {}
        used: set[tuple[str, str]] = set()
        for path in listing.splitlines():
            name = path.rsplit("/", 1)[-1]
            if not path.endswith((".yaml", ".yml")) and name != "Kustomization":
                continue
            text = self.repo.show(head, path)
            if text is None or '"$imagepolicy"' not in text:
                continue
            new, policies = _rewrite(text, latest, self.namespace)
            if new != text:
                changed[path] = new
                used |= policies
        if not changed:
            self.passes.append(None)
            return None
        message = "Update image " + ", ".join(sorted({latest[key] for key in used}))
        sha = self.repo.commit(changed, message, author=FLUX_AUTHOR)
        self.passes.append(sha)
        return sha
