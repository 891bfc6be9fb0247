"""How much a revert costs: attribution by rendering, on repositories of growing size.

Run it with::

    .venv/bin/python -m bench.revert_attribution            # the sweep in docs/gitops.md
    .venv/bin/python -m bench.revert_attribution --quick    # one small case, a smoke run

Each case is a real bare repository (file://) with ``apps`` kustomize overlays (a base and an
``images:`` entry per application, all under the GitSource's path) and one bad commit that
changes ``changed`` files: the target's ``images:`` line, the next application's tag in the same
kustomization (a second line of the same file, which must be kept), and unrelated files. The
reverter runs end to end (fetch, attribution, 3-way merge, commit, push) from a cold cache,
and the benchmark prints, per case: the ``kubectl kustomize`` builds it took (three whole
renderings of the path — good, bad, and the final check — plus the probes, which render only
the target's own kustomization), the wall time of the whole revert, and whether the commit
changed exactly the one expected line. Wall times depend on the machine and its load; the
build counts do not.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from canary.adapters.gitops import (
    GitRepository,
    GitRevertRequest,
    Kustomize,
    ManifestRef,
    Reverted,
    Reverter,
    WorkloadSubject,
    Workspace,
)
from canary.adapters.gitops.kustomize import Build

CASES = ((5, 3), (20, 10), (50, 50), (100, 200))
QUICK = ((5, 3),)


class CountingKustomize(Kustomize):
    """kustomize that counts its builds."""

    def __init__(self) -> None:
        super().__init__()
        self.builds = 0

    async def build(self, root: Path, directory: str) -> Build:
        self.builds += 1
        return await super().build(root, directory)


def git(*args: str, cwd: Path) -> str:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(cwd),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.test",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.test",
    }
    out = subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    )
    return out.stdout


def deployment(name: str) -> str:
    return (
        f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n"
        f"  template:\n    spec:\n      containers:\n        - name: app\n"
        f"          image: ghcr.io/acme/{name}:1.0.0\n"
    )


def kustomization(apps: int, index: int, tags: dict[int, str]) -> str:
    lines = ["namespace: prod", "resources: [../../base]", "images:"]
    for other in (index, (index + 1) % apps):
        lines += [f"  - name: ghcr.io/acme/app{other}", f"    newTag: {tags.get(other, '1.0.0')}"]
    return "\n".join(lines) + "\n"


def build_repo(root: Path, apps: int, changed: int) -> tuple[Path, str, str]:
    work = root / "work"
    work.mkdir()
    git("init", "-q", "-b", "main", cwd=work)
    files: dict[str, str] = {}
    for i in range(apps):
        files[f"apps/app{i}/base/kustomization.yaml"] = "resources: [deployment.yaml]\n"
        files[f"apps/app{i}/base/deployment.yaml"] = deployment(f"app{i}")
        files[f"apps/app{i}/overlays/prod/kustomization.yaml"] = kustomization(apps, i, {})
    for i in range(changed):
        files[f"docs/page{i}.md"] = "v1\n"
    for rel, text in files.items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_text(text)
    git("add", "-A", cwd=work)
    git("commit", "-qm", "good", cwd=work)
    good = git("rev-parse", "HEAD", cwd=work).strip()
    # The bad commit: app0's and app1's tags in app0's overlay, plus unrelated files.
    (work / "apps/app0/overlays/prod/kustomization.yaml").write_text(
        kustomization(apps, 0, {0: "1.1.0", 1: "2.0.0"})
    )
    for i in range(changed - 1):
        (work / f"docs/page{i}.md").write_text("v2\n")
    git("add", "-A", cwd=work)
    git("commit", "-qm", "bad", cwd=work)
    bad = git("rev-parse", "HEAD", cwd=work).strip()
    bare = root / "fleet.git"
    git("clone", "-q", "--bare", str(work), str(bare), cwd=root)
    return bare, good, bad


async def run_case(apps: int, changed: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bare, good, bad = build_repo(root, apps, changed)
        kustomize = CountingKustomize()
        reverter = Reverter(Workspace(root / "cache"), kustomize=kustomize)
        subject = WorkloadSubject(
            ManifestRef("apps/v1", "Deployment", "prod", "app0"),
            source_path="apps",
            default_namespace="prod",
        )
        started = time.perf_counter()
        result = await reverter.revert(
            GitRevertRequest(
                repository=GitRepository(bare.as_uri()),
                good_revision=good,
                bad_revision=bad,
                canary="prod/app0",
                subject=subject,
            )
        )
        seconds = time.perf_counter() - started
        exact = False
        if isinstance(result, Reverted):
            diff = git("show", "--format=", "-U0", result.commit_sha, cwd=bare)
            changed_lines = [
                line
                for line in diff.splitlines()
                if line[:1] in "+-" and line[:3] not in ("+++", "---")
            ]
            exact = changed_lines == ["-    newTag: 1.1.0", "+    newTag: 1.0.0"]
        return {
            "apps": apps,
            "changed": changed,
            "result": result.kind,
            "builds": kustomize.builds,
            "seconds": seconds,
            "exact": exact,
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one small case")
    args = parser.parse_args(argv)
    if shutil.which("kubectl") is None:
        print("kubectl is needed (it carries kustomize)")
        return 2
    print(
        f"{'apps':>5} {'changed files':>14} {'result':>9} {'kustomize builds':>17} "
        f"{'seconds':>8}  exact"
    )
    for apps, changed in QUICK if args.quick else CASES:
        row = asyncio.run(run_case(apps, changed))
        print(
            f"{row['apps']:>5} {row['changed']:>14} {row['result']:>9} "
            f"{row['builds']:>17} {row['seconds']:>8.2f}  {'yes' if row['exact'] else 'NO'}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
