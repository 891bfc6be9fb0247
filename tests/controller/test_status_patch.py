"""The status merge patch: our fields only, and keys that are gone really go.

A JSON merge patch can only add keys to a map unless the patch says null; a
ConfigMap the target stopped using must leave status.trackedConfigs, or its old
checksum makes every pass look like a new revision.
"""

from __future__ import annotations

from typing import Any

from canary.controller.reconcile import status_patch
from canary.model import CanaryStatus, Phase


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386, as the API server applies it."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge(out.get(key), value)
    return out


def test_a_renamed_configmap_replaces_the_old_key() -> None:
    old = CanaryStatus(phase=Phase.PROGRESSING, tracked_configs={"configmap/cfg-aaa": "1"})
    new = old.with_(tracked_configs={"configmap/cfg-bbb": "2"})
    raw = old.to_dict()
    patched = merge(raw, status_patch(raw, old.to_dict(), new.to_dict()))
    assert patched["trackedConfigs"] == {"configmap/cfg-bbb": "2"}


def test_an_emptied_map_is_emptied() -> None:
    old = CanaryStatus(tracked_configs={"configmap/cfg": "1"}, handled_commands={"promote": "t"})
    new = old.with_(tracked_configs={})
    raw = old.to_dict()
    patched = merge(raw, status_patch(raw, old.to_dict(), new.to_dict()))
    assert patched["trackedConfigs"] == {}
    assert patched["handledCommands"] == {"promote": "t"}


def test_fields_of_others_are_left_alone_and_unchanged_fields_not_sent() -> None:
    old = CanaryStatus(phase=Phase.PROGRESSING, canary_weight=10)
    raw = {**old.to_dict(), "kopf": {"progress": {}}}
    patch = status_patch(raw, old.to_dict(), old.with_(canary_weight=20).to_dict())
    assert patch == {"canaryWeight": 20}
    assert merge(raw, patch)["kopf"] == {"progress": {}}


def test_a_first_write_sends_everything_but_nulls() -> None:
    status = CanaryStatus(phase=Phase.INITIALIZED)
    patch = status_patch({}, CanaryStatus().to_dict(), status.to_dict())
    assert patch["phase"] == "Initialized" and patch["canaryWeight"] == 0
    assert "gitRevert" not in patch
