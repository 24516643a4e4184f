"""What the command line prints and how it ends: exit codes, lines on stderr, shown text."""

from __future__ import annotations

import signal
import sys
import time

from imgdesk.core.redact import redact_text

EXIT_COMPLETED = 0
EXIT_FAILED = 1
EXIT_REJECTED = 2
# Stopped by a signal: 128 + its number, as shells report it (130 for Ctrl-C, 143 for SIGTERM).
EXIT_SIGINT = 128 + signal.SIGINT


def say(message: str) -> None:
    """One line for people, on stderr (stdout is for --json lines and status)."""
    print(message, file=sys.stderr)


def shown_text(text: str | None) -> str | None:
    """A message about images as printed: URLs without their password (queries may stay)."""
    return redact_text(text, hide_query=False) if text else text


def shown_webhook_text(text: str | None) -> str | None:
    """A message about the webhook as printed: its URL's password and query values hidden."""
    return redact_text(text) if text else text


def iso_time(timestamp: float) -> str:
    """A UTC time as ISO 8601, e.g. 2026-01-31T12:00:00Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))
