"""No code path in the GitOps package can force-push, reset a remote branch or rewrite history.

The package source is parsed and every string literal (docstrings aside) is checked against
the git options and commands that rewrite or delete published history. The single list of
those options that the runtime push guard needs (``_FORBIDDEN_PUSH_FLAGS`` in git.py) is the
only exception, and the test checks that it is the guard's list and nothing else.
"""

from __future__ import annotations

import ast
from pathlib import Path

import canary.adapters.gitops as gitops

PACKAGE = Path(gitops.__file__).parent
GUARDS = {"_FORBIDDEN_PUSH_FLAGS", "_FORCED_REFSPEC"}

FORBIDDEN_EXACT = {
    "-f",
    "--force",
    "--force-with-lease",
    "--force-if-includes",
    "--mirror",
    "--delete",
    "-d",
    "--prune",
    "--all",
    "--amend",
    "reset",
    "rebase",
    "filter-branch",
    "filter-repo",
    "--hard",
}
FORBIDDEN_PREFIXES = ("--force", "+")
FORBIDDEN_FRAGMENTS = (":+", "+refs/", "+HEAD", "push --force", "push -f")


def literals(tree: ast.AST) -> list[tuple[int, str]]:
    """String literals outside docstrings and outside the guard's own list."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                skipped.add(id(value))
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id in GUARDS for t in node.targets
        ):
            skipped.update(id(n) for n in ast.walk(node.value))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in skipped
    ]


def sources() -> list[tuple[Path, ast.AST]]:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) >= 8, files
    return [(f, ast.parse(f.read_text(encoding="utf-8"))) for f in files]


def test_no_history_rewriting_git_argument_anywhere() -> None:
    offences = []
    for path, tree in sources():
        for line, text in literals(tree):
            stripped = text.strip()
            if (
                stripped in FORBIDDEN_EXACT
                or stripped.startswith(FORBIDDEN_PREFIXES)
                or any(fragment in text for fragment in FORBIDDEN_FRAGMENTS)
            ):
                offences.append(f"{path.name}:{line}: {text!r}")
    assert offences == []


def test_the_guard_lists_are_the_only_exception_and_hold_the_force_options() -> None:
    guards: dict[str, set[object]] = {}
    for path, tree in sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id in GUARDS:
                        assert path.name == "git.py"
                        guards[target.id] = {
                            n.value for n in ast.walk(node.value) if isinstance(n, ast.Constant)
                        }
    assert set(guards) == GUARDS
    assert {"--force", "-f", "--force-with-lease", "--mirror", "--delete"} <= guards[
        "_FORBIDDEN_PUSH_FLAGS"
    ]
    assert guards["_FORCED_REFSPEC"] == {"+"}


def test_push_happens_in_one_place_with_a_plain_fast_forward_refspec() -> None:
    pushes = []
    for path, tree in sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and any(
                isinstance(a, ast.Constant) and a.value == "push" for a in node.args
            ):
                pushes.append((path.name, node))
    assert [name for name, _ in pushes] == ["workspace.py"]
    (_, call) = pushes[0]
    refspecs = [a for a in call.args if isinstance(a, ast.JoinedStr)]
    assert len(refspecs) == 1
    rendered = "".join(
        str(v.value) if isinstance(v, ast.Constant) else "{}" for v in refspecs[0].values
    )
    assert rendered == "{}:refs/heads/{}"


def test_git_runs_only_through_asyncio_subprocesses() -> None:
    for path, tree in sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            tops = {m.split(".")[0] for m in modules}
            banned = tops & {"subprocess", "git", "dulwich", "pygit2", "os.system"}
            assert not banned, f"{path.name} imports {banned}"
