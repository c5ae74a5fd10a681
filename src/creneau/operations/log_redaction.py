"""Secrets out of every log line. Some addresses are capabilities: whoever has them may act. A
manage token opens a patient's appointment: it travels in the SMS short link (``/a/TOKEN``,
``/w/TOKEN``), in ``?token=`` of the manage pages and in the ``X-Manage-Token`` header; a
practitioner's agenda feed is ``/agenda/SECRET.ics``; a platform's signed link is
``/p/KEY/link/TOKEN/``; a hold's id opens its booking form (``/book/HOLD/``, the API's
``/holds/HOLD``). gunicorn's access log and Django's own log lines (a 404 names its path) get
them redacted before they are written; ``CAPABILITIES`` names the routes' parameters that are
such secrets (tests/test_operations.py checks every route's parameters against it)."""

import json
import logging
import re
from datetime import UTC, datetime

from gunicorn.glogging import Logger

REDACTED = "[redacted]"
# The URL parameters that are secrets, and the path segments that carry them.
CAPABILITIES = frozenset({"token", "hold_id"})
_IN_PATH = re.compile(r"(/(?:[aw]|link|book|holds)/)[^/?#\s\"']+")
_FEED = re.compile(r"(/agenda/)[^/?#\s\"']+?(?=\.ics)")
_IN_QUERY = re.compile(
    r"((?:^|[?&;])(?:token|manage_token|access_token|client_secret|code|otp_token)=)[^&;#\s\"']*",
    re.IGNORECASE,
)
# Request headers that carry a credential: never written, whatever the log format asks for.
_SECRET_HEADERS = ("authorization", "cookie", "x-manage-token", "idempotency-key")


def redact(text: str) -> str:
    for pattern in (_IN_PATH, _FEED, _IN_QUERY):
        text = pattern.sub(rf"\1{REDACTED}", text)
    return text


class RedactingLogger(Logger):
    """gunicorn's logger, with every atom of the access log redacted."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key, value in atoms.items():
            if any(key == f"{{{name}}}i" for name in _SECRET_HEADERS):
                atoms[key] = REDACTED
            elif isinstance(value, str):
                atoms[key] = redact(value)
        return atoms


class RedactSecrets(logging.Filter):
    """For Django's and Créneau's log records: the message with its secrets redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message (already
    redacted by RedactSecrets), and the exception's text if any."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False)
