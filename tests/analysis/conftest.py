"""Fixtures of the analysis tests: the shared real-process fixtures plus small helpers."""

from tests.prometheus_fixtures import demo_app_factory, prometheus_server

__all__ = ["demo_app_factory", "prometheus_server"]
