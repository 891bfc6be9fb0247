"""The operator commands' fixtures (a CLI runner, a sandbox holding canaries) for the report."""

from __future__ import annotations

from tests.cli.conftest import app, cli, cluster  # noqa: F401
from tests.sandbox_fixtures import *  # noqa: F403
