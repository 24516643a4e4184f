"""redact: credentials never reach what imgdesk prints or logs."""

from __future__ import annotations

import logging

import pytest

from imgdesk.core.redact import RedactingFilter, redact_text, redact_url


def test_userinfo_is_hidden_and_the_rest_kept() -> None:
    assert redact_url("http://user:secret@host:8080/a.jpg?w=1") == "http://***@host:8080/a.jpg?w=1"
    assert redact_url("https://cdn.example/a.jpg") == "https://cdn.example/a.jpg"


def test_query_values_are_hidden_on_request() -> None:
    redacted = redact_url("https://h/a.jpg?token=abc123&w=100", hide_query=True)
    assert "abc123" not in redacted and "100" not in redacted
    assert redacted.startswith("https://h/a.jpg?token=")


def test_urls_inside_text_are_redacted() -> None:
    text = "could not fetch http://bob:hunter2@shop.example/x.jpg?sig=s3cr3t: refused"
    redacted = redact_text(text)
    assert "hunter2" not in redacted and "s3cr3t" not in redacted
    assert redacted.endswith(": refused")


def test_the_log_filter_redacts_messages_and_arguments(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("imgdesk.test_redact")
    handler_filter = RedactingFilter()
    caplog.handler.addFilter(handler_filter)
    try:
        with caplog.at_level(logging.INFO, logger="imgdesk.test_redact"):
            logger.info("done %s", "http://u:pw@h/a.jpg?token=t0k3n")
    finally:
        caplog.handler.removeFilter(handler_filter)
    assert "pw@" not in caplog.text and "t0k3n" not in caplog.text
    assert "http://***@h/a.jpg" in caplog.text


def test_an_unparseable_url_still_loses_its_password() -> None:
    assert redact_url("http://u:p4ss@[::1/a.jpg") == "http://***@[::1/a.jpg"
