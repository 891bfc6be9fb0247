"""The Argo CD health check (deploy/argocd/health.lua), run by a real Lua interpreter.

Argo CD runs health checks with gopher-lua, a Lua 5.1: the script is run here by
``lua5.1`` (Debian's package; LuaJIT, also a 5.1, will do) against Canaries in every
phase of `Phase`, with the status the controller writes (`CanaryStatus.to_dict`, the
Promoted condition of `canary.core.status`). The script gets only what Argo CD gives it:
the global ``obj`` and the base, string, table and math libraries (no io, no os). The
argocd-cm patch must embed the script byte for byte under Argo CD's key.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from canary.core.status import PROMOTED, promoted_condition
from canary.model.status import CanaryStatus, Condition, Phase

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "argocd" / "health.lua"
PATCH = ROOT / "deploy" / "argocd" / "argocd-cm-patch.yaml"
KEY = "resource.customizations.health.canary.gitops.dev_Canary"

#: Lua 5.1 interpreters, as Argo CD's gopher-lua; the first one found runs the tests.
INTERPRETERS = ("lua5.1", "luajit")
LUA = next((found for name in INTERPRETERS if (found := shutil.which(name))), None)
needs_lua = pytest.mark.skipif(
    LUA is None,
    reason="no Lua 5.1 interpreter (lua5.1 or luajit) on PATH: `apt-get install lua5.1` "
    "to run the Argo CD health check",
)

#: Runs the script as Argo CD does: ``obj`` global, a restricted environment, `hs` back.
HARNESS = """
local source = assert(io.open(SCRIPT_PATH)):read("*a")
local env = {
  obj = OBJ, string = string, table = table, math = math, ipairs = ipairs, pairs = pairs,
  next = next, type = type, tonumber = tonumber, tostring = tostring, select = select,
  error = error, pcall = pcall, assert = assert, unpack = unpack,
}
local chunk = assert(loadstring(source, "=health.lua"))
setfenv(chunk, env)
local hs = chunk()
io.write(tostring(hs.status), "\\n", tostring(hs.message), "\\n")
"""

EXPECTED: dict[Phase, str] = {
    Phase.NONE: "Progressing",
    Phase.INITIALIZING: "Progressing",
    Phase.INITIALIZED: "Healthy",
    Phase.WAITING: "Progressing",
    Phase.PROGRESSING: "Progressing",
    Phase.WAITING_PROMOTION: "Progressing",
    Phase.PROMOTING: "Progressing",
    Phase.FINALISING: "Progressing",
    Phase.SUCCEEDED: "Healthy",
    Phase.FAILED: "Degraded",
    Phase.TERMINATING: "Progressing",
    Phase.TERMINATED: "Progressing",
}


def lua_literal(value: Any) -> str:
    """A Lua 5.1 expression for a JSON value (None is nil, as a missing field)."""
    if value is None:
        return "nil"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        # Printable ASCII as is, every other byte (UTF-8 included) as a decimal escape.
        plain = set(range(0x20, 0x7F)) - {ord('"'), ord("\\")}
        escaped = "".join(chr(b) if b in plain else f"\\{b:03d}" for b in value.encode())
        return f'"{escaped}"'
    if isinstance(value, list):
        return "{" + ", ".join(lua_literal(v) for v in value) + "}"
    if isinstance(value, dict):
        items = (f"[{lua_literal(str(k))}] = {lua_literal(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    raise TypeError(f"not a JSON value: {value!r}")


def health(obj: dict[str, Any]) -> tuple[str, str]:
    assert LUA is not None
    program = f"SCRIPT_PATH = {lua_literal(str(SCRIPT))}\nOBJ = {lua_literal(obj)}\n{HARNESS}"
    done = subprocess.run(
        [LUA, "-"], input=program, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    status, message = done.stdout.split("\n")[:2]
    return status, message


def canary(
    phase: Phase | None,
    *,
    weight: int = 0,
    message: str = "",
    generation: int = 3,
    observed: int = 3,
    spec: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    **status: Any,
) -> dict[str, Any]:
    """A Canary with the status the controller writes in ``phase`` (None: no status)."""
    obj: dict[str, Any] = {
        "apiVersion": "canary.gitops.dev/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": "test", "generation": generation},
        "spec": {"targetRef": {"kind": "Deployment", "name": "podinfo"}, **(spec or {})},
    }
    if annotations:
        obj["metadata"]["annotations"] = annotations
    if phase is None:
        return obj
    state, reason, text = promoted_condition(phase, "Deployment")
    condition = Condition(PROMOTED, state, reason, text, observed_generation=observed)
    obj["status"] = {
        **CanaryStatus(
            phase=phase,
            canary_weight=weight,
            conditions=(condition,),
            observed_generation=observed,
            message=message,
        ).to_dict(),
        **status,
    }
    return obj


@needs_lua
@pytest.mark.parametrize("phase", list(Phase), ids=lambda p: p.value or "none")
def test_every_phase_maps_to_its_health(phase: Phase) -> None:
    status, message = health(canary(phase))
    assert status == EXPECTED[phase]
    if phase is not Phase.NONE:
        assert message == f"{phase.value}: {promoted_condition(phase, 'Deployment')[2]}"


def test_the_table_names_every_phase() -> None:
    assert set(EXPECTED) == set(Phase)


@needs_lua
class TestMessages:
    def test_a_run_shows_its_weight_and_the_status_message(self) -> None:
        obj = canary(Phase.PROGRESSING, weight=20, message="Advance podinfo.test canary weight 20")
        assert health(obj) == (
            "Progressing",
            "Progressing (canary weight 20%): Advance podinfo.test canary weight 20",
        )

    def test_a_stalled_analysis_is_progressing_and_says_what_it_needs(self) -> None:
        text = "Analysis stalled: too little data; waiting for more traffic"
        obj = canary(Phase.PROGRESSING, weight=10, message=text, stalled="too little data")
        assert health(obj) == ("Progressing", f"Progressing (canary weight 10%): {text}")

    def test_a_failed_release_is_degraded(self) -> None:
        obj = canary(Phase.FAILED, message="Canary failed! Scaling down podinfo.test")
        assert health(obj) == ("Degraded", "Failed: Canary failed! Scaling down podinfo.test")

    def test_non_ascii_messages_pass_through(self) -> None:
        obj = canary(Phase.SUCCEEDED, message="Promoted \u2014 v2 ready")
        assert health(obj) == ("Healthy", "Succeeded: Promoted \u2014 v2 ready")


@needs_lua
class TestBeyondThePhase:
    def test_no_status_yet_is_progressing(self) -> None:
        assert health(canary(None)) == (
            "Progressing",
            "Waiting for the controller to initialize the canary.",
        )

    def test_a_status_older_than_the_spec_is_progressing(self) -> None:
        status, message = health(canary(Phase.SUCCEEDED, generation=4, observed=3))
        assert status == "Progressing"
        assert message == "Succeeded: the controller has not acted on generation 4 of the spec yet."

    def test_suspended_by_the_spec_or_paused_by_annotation(self) -> None:
        suspended = canary(Phase.SUCCEEDED, spec={"suspend": True})
        assert health(suspended) == (
            "Suspended",
            "Succeeded: suspended (spec.suspend), no action until it is false.",
        )
        paused = canary(Phase.PROGRESSING, annotations={"canary.gitops.dev/paused": " True "})
        assert health(paused)[0] == "Suspended"
        resumed = canary(Phase.SUCCEEDED, annotations={"canary.gitops.dev/paused": "false"})
        assert health(resumed)[0] == "Healthy"

    def test_a_refused_known_bad_release_is_degraded(self) -> None:
        obj = canary(Phase.SUCCEEDED, refused="podinfo:v3 failed its analysis at 10:02")
        assert health(obj) == (
            "Degraded",
            "Succeeded: known-bad release refused: podinfo:v3 failed its analysis at 10:02",
        )

    def test_an_unknown_phase_is_unknown(self) -> None:
        obj = canary(Phase.SUCCEEDED)
        obj["status"]["phase"] = "Paused"
        obj["status"]["message"] = "?"
        assert health(obj) == ("Unknown", "Unknown phase Paused: ?")


def test_the_argocd_cm_patch_embeds_the_script_under_argo_cds_key() -> None:
    patch = yaml.safe_load(PATCH.read_text())
    assert (patch["apiVersion"], patch["kind"]) == ("v1", "ConfigMap")
    assert (patch["metadata"]["name"], patch["metadata"]["namespace"]) == ("argocd-cm", "argocd")
    assert patch["data"] == {KEY: SCRIPT.read_text()}
