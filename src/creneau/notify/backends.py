"""How an SMS leaves the hub: a small interface, a file outbox and a console for the demo, and an
HTTP gateway configured by URL, credentials and a body template (the way French SMS gateways are
driven). E-mail goes through Django's own backends (SMTP by configuration).

A backend either returns the gateway's reference, or raises ``DeliveryError`` saying whether
trying again may help. Every attempt passes the message's idempotency key: a gateway that honours
it sends a message once even when the worker dies between its request and the recording."""

import base64
import json
import sys
import urllib.parse
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from string import Template

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from creneau import outgoing


class DeliveryError(Exception):
    def __init__(self, answer: str, *, retry: bool) -> None:
        super().__init__(answer)
        self.answer = answer[:500]
        self.retry = retry


@dataclass(frozen=True)
class Sent:
    reference: str
    answer: str = ""


class SmsBackend(ABC):
    @abstractmethod
    def send(self, *, to: str, text: str, key: str) -> Sent:
        """Send one SMS with ``key`` as its idempotency key; raise DeliveryError if not sent."""


class FileSmsBackend(SmsBackend):
    """One JSON line per SMS in ``outbox/sms.jsonl``: the demo's phone."""

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / "sms.jsonl"

    def send(self, *, to: str, text: str, key: str) -> Sent:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = {"at": datetime.now(UTC).isoformat(), "to": to, "text": text, "key": key}
        with self.path.open("a", encoding="utf-8") as outbox:
            outbox.write(json.dumps(line, ensure_ascii=False) + "\n")
        return Sent(reference=f"file:{key}", answer="written to the outbox")


class ConsoleSmsBackend(SmsBackend):
    def send(self, *, to: str, text: str, key: str) -> Sent:
        sys.stdout.write(f"SMS to {to} [{key}]\n{text}\n\n")
        sys.stdout.flush()
        return Sent(reference=f"console:{key}")


class HttpSmsBackend(SmsBackend):
    """POST to the gateway's URL. The body is a template with ``$to``, ``$text``, ``$sender``
    and ``$reference`` (the idempotency key), JSON-escaped for a JSON body or URL-encoded for a
    form; the key also goes in an ``Idempotency-Key`` header. 2xx is sent; 408, 429 and 5xx or
    no answer are retried; another 4xx is a refusal that retrying will not change."""

    def __init__(
        self,
        *,
        url: str,
        body: str,
        content_type: str = "json",
        sender: str = "",
        user: str = "",
        password: str = "",
        token: str = "",
        timeout: float = 10,
        reference_field: str = "",
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ImproperlyConfigured("CRENEAU_SMS_URL must be an http(s) URL.")
        if content_type not in ("json", "form"):
            raise ImproperlyConfigured("CRENEAU_SMS_CONTENT_TYPE must be json or form.")
        self.url, self.template, self.content_type = url, Template(body), content_type
        self.sender, self.timeout, self.reference_field = sender, timeout, reference_field
        self.headers = {"User-Agent": "Creneau"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        elif user:
            pair = base64.b64encode(f"{user}:{password}".encode()).decode()
            self.headers["Authorization"] = f"Basic {pair}"

    def _body(self, values: dict[str, str]) -> bytes:
        if self.content_type == "json":
            escaped = {name: json.dumps(value)[1:-1] for name, value in values.items()}
            body = self.template.substitute(escaped)
            json.loads(body)  # a template that gives broken JSON fails here, not at the gateway
            return body.encode()
        quoted = {name: urllib.parse.quote_plus(value) for name, value in values.items()}
        return self.template.substitute(quoted).encode()

    def send(self, *, to: str, text: str, key: str) -> Sent:
        body = self._body({"to": to, "text": text, "sender": self.sender, "reference": key})
        content_type = (
            "application/json"
            if self.content_type == "json"
            else "application/x-www-form-urlencoded"
        )
        try:
            answer = outgoing.request(
                self.url,
                method="POST",
                body=body,
                headers={**self.headers, "Content-Type": content_type, "Idempotency-Key": key},
                timeout=self.timeout,
                max_bytes=64_000,
            )
        except outgoing.OutgoingError as error:
            # A refused address stays refused; anything else may answer later.
            retry = error.code not in ("address_refused", "address_invalid")
            raise DeliveryError(f"no answer: {error.code}", retry=retry) from None
        text = answer.body[:2000].decode("utf-8", "replace")
        if 200 <= answer.status < 300:
            return Sent(reference=self._reference(text) or key, answer=f"{answer.status}")
        retry = answer.status in (408, 425, 429) or answer.status >= 500
        raise DeliveryError(f"{answer.status} {text[:300]}".strip(), retry=retry)

    def _reference(self, answer: str) -> str:
        if not self.reference_field:
            return ""
        try:
            value = json.loads(answer)
            for part in self.reference_field.split("."):
                value = value[part]
        except (ValueError, KeyError, TypeError, IndexError):
            return ""
        return str(value)[:200]


@cache
def _sms_backend(kind: str, options: tuple[tuple[str, object], ...], outbox: str) -> SmsBackend:
    if kind == "file":
        return FileSmsBackend(Path(outbox))
    if kind == "console":
        return ConsoleSmsBackend()
    if kind == "http":
        return HttpSmsBackend(**dict(options))  # type: ignore[arg-type]
    raise ImproperlyConfigured(f"CRENEAU_SMS_BACKEND must be file, console or http, not {kind!r}")


def sms_backend() -> SmsBackend:
    """The configured backend (settings read on each call, so tests may change them)."""
    return _sms_backend(
        settings.CRENEAU_SMS_BACKEND,
        tuple(sorted(settings.CRENEAU_SMS_HTTP.items())),
        str(settings.CRENEAU_OUTBOX),
    )
