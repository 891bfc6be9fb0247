"""Fixtures of the notification and webhook tests: real HTTP servers on loopback."""

from tests.http_fixtures import dead_url, https_recording_server, recording_server  # noqa: F401
