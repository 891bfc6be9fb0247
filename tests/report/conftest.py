"""The operator commands' fixtures (a CLI runner, a sandbox holding canaries) for the report,
and the real Prometheus scraping demo-app processes (tests.prometheus_fixtures)."""

from __future__ import annotations

from tests.cli.conftest import app, cli, cluster  # noqa: F401
from tests.prometheus_fixtures import demo_app_factory, prometheus_server  # noqa: F401
from tests.sandbox_fixtures import *  # noqa: F403
