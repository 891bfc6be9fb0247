"""Every Flagger controller flag in docs/flagger-differences.md has the `canary run` flag it names."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from canary.cli import app

ROOT = Path(__file__).resolve().parents[2]


def test_every_counterpart_in_the_flag_table_is_a_flag_of_canary_run() -> None:
    text = (ROOT / "docs" / "flagger-differences.md").read_text()
    table = text.split("## Controller flags", 1)[1].split("\n## ", 1)[0]
    named = set()
    for line in table.splitlines():
        cells = line.split("|")
        if len(cells) > 3 and cells[1].strip().startswith("`-"):
            named |= set(re.findall(r"`(--[a-z-]+)`", cells[2]))
            if "same names" in cells[2]:
                named |= {f"-{flag}" for flag in re.findall(r"`(-[a-z-]+)`", cells[1])}
    assert len(named) >= 25, named
    help_text = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200"}).stdout
    missing = sorted(flag for flag in named if flag not in help_text)
    assert missing == []
