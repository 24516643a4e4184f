"""Keep credentials out of what imgdesk prints and logs.

A URL's ``user:password@`` is always hidden; query values (``?token=…``) are hidden in logs,
where they are of no use to a reader. The output CSV keeps URLs exactly as given.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

HIDDEN = "***"

# An http(s) URL inside free text (a log message, an exception's words); punctuation that
# ends a sentence ("…/a.jpg: refused") is not part of it.
_URL_IN_TEXT = re.compile(r"https?://[^\s'\"<>]*[^\s'\"<>.,;:)\]]", re.IGNORECASE)


def redact_url(url: str, *, hide_query: bool = False) -> str:
    """``url`` with its userinfo (and, with ``hide_query``, its query values) replaced by ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        # Not parseable (e.g. an unclosed IPv6 bracket): hide all between scheme and last @.
        scheme, sep, rest = url.partition("://")
        if sep and "@" in rest:
            return f"{scheme}://{HIDDEN}@{rest.rpartition('@')[2]}"
        return url
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{HIDDEN}@{netloc.rpartition('@')[2]}"
    query = parts.query
    if hide_query and query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(key, HIDDEN) for key, _value in pairs], safe="*")
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit(SplitResult(parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str, *, hide_query: bool = True) -> str:
    """Every http(s) URL inside ``text`` redacted (see :func:`redact_url`)."""
    return _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0), hide_query=hide_query), text)


class RedactingFilter(logging.Filter):
    """A handler filter that redacts URLs in every record's final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Render the message once, redacted, so no handler sees the credentials."""
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        return True
