"""The shared HTTP helpers: Retry-After, backoff, body sanitising, redaction, the public façade."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import httpx
import pytest

import canary.adapters.notifiers as notifiers
from canary.adapters.notifiers.httpio import (
    HttpClients,
    backoff_delay,
    http_redactor,
    parse_retry_after,
    protect_http_logs,
    redact_url,
    sanitize_body,
    scrub_urls,
)

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


class TestRetryAfter:
    @pytest.mark.parametrize(
        ("header", "seconds"),
        [
            (None, None),
            ("", None),
            ("soon", None),
            ("3", 3.0),
            (" 1.5 ", 1.5),
            ("-4", 0.0),
            ("nan", None),
            ("Sun, 01 Mar 2026 12:00:30 GMT", 30.0),
            ("Sun, 01 Mar 2026 11:00:00 GMT", 0.0),
        ],
    )
    def test_seconds_or_http_date(self, header: str | None, seconds: float | None) -> None:
        assert parse_retry_after(header, NOW) == seconds


class TestBackoff:
    def test_doubles_from_base_up_to_the_cap(self) -> None:
        assert [backoff_delay(n, base=1, cap=30) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]

    def test_huge_attempt_numbers_do_not_overflow(self) -> None:
        assert backoff_delay(10_000, base=1, cap=30) == 30


class TestSanitizeBody:
    def test_one_line_without_control_characters(self) -> None:
        assert sanitize_body(b"line one\r\n\tline\x00two\x1b[31m") == "line one line two [31m"

    def test_invalid_utf8_is_replaced(self) -> None:
        assert sanitize_body(b"caf\xe9") == "caf\ufffd"

    def test_truncated_with_an_ellipsis(self) -> None:
        text = sanitize_body("a" * 50, limit=10)
        assert text == "a" * 9 + "…"


class TestRedaction:
    @pytest.mark.parametrize(
        ("url", "shown"),
        [
            ("https://hooks.slack.com/services/T/B/X", "https://hooks.slack.com/***"),
            ("https://user:pw@chat.example:8443/x?key=k", "https://chat.example:8443/***"),
            ("https://example.test/", "https://example.test/"),
            ("not a url", "***"),
        ],
    )
    def test_redact_url_keeps_only_scheme_and_host(self, url: str, shown: str) -> None:
        assert redact_url(url) == shown

    def test_scrub_urls_in_free_text(self) -> None:
        text = "POST https://hooks.slack.com/services/T/B/X failed; see http://a.example/p?q=1."
        assert (
            scrub_urls(text) == "POST https://hooks.slack.com/*** failed; see http://a.example/***"
        )

    def test_redactor_hides_secrets_and_their_fragments(self) -> None:
        redact = http_redactor(
            ["https://hooks.slack.com/services/T0/B0/SECRET", "xoxb-123456", None, ""]
        )
        text = redact(
            "token xoxb-123456 path services/T0/B0/SECRET url https://hooks.slack.com/services/T0/B0/SECRET"
        )
        assert "SECRET" not in text and "xoxb-123456" not in text
        assert text.count("***") == 3

    def test_short_fragments_are_not_treated_as_secrets(self) -> None:
        assert http_redactor(["https://a.example/x"])("x marks the spot") == "x marks the spot"

    def test_httpx_request_logs_lose_their_path(self, caplog: pytest.LogCaptureFixture) -> None:
        protect_http_logs()
        protect_http_logs()  # idempotent
        assert (
            len(
                [
                    f
                    for f in logging.getLogger("httpx").filters
                    if type(f).__name__ == "_ScrubUrlsFilter"
                ]
            )
            == 1
        )
        with caplog.at_level(logging.INFO, logger="httpx"):
            logging.getLogger("httpx").info(
                'HTTP Request: %s %s "%s"',
                "POST",
                httpx.URL("https://hooks.slack.com/services/A/B/SECRET"),
                "200 OK",
            )
        assert "SECRET" not in caplog.text and "https://hooks.slack.com/***" in caplog.text


class TestClientPool:
    async def test_one_client_per_proxy_and_verification(self) -> None:
        made: list[tuple[str | None, bool]] = []

        def factory(proxy: str | None, verify: bool) -> httpx.AsyncClient:
            made.append((proxy, verify))
            return httpx.AsyncClient()

        pool = HttpClients(factory)
        a = pool.get()
        assert pool.get() is a
        assert pool.get(verify=False) is not a
        assert pool.get(proxy="http://p:1") is not a
        assert made == [(None, True), (None, False), ("http://p:1", True)]
        await pool.aclose()
        assert a.is_closed


def test_the_facade_exports_what_it_lists() -> None:
    for name in notifiers.__all__:
        assert hasattr(notifiers, name), name
    assert sorted(notifiers.__all__) == sorted(set(notifiers.__all__))
