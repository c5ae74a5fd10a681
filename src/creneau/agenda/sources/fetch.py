"""Fetching a URL that hospital IT typed for an agenda source, from the hub itself: a door into
the hospital's network if left open (SSRF). So: http and https only; the address actually
connected to (after DNS, so a name that turns into 10.0.0.5 later is caught) must not be a
private, loopback, link-local or reserved one unless CRENEAU_AGENDA_ALLOWED_NETWORKS lists it
(a hospital's CalDAV server may be internal; the demo and the tests allow loopback); redirects
are followed three times at most, each hop checked the same way; the body is capped in size and
the whole exchange in time."""

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from django.conf import settings
from django.utils.translation import gettext as _

from creneau.errors import DomainError

MAX_REDIRECTS = 3


class FetchError(DomainError):
    status = 502


@dataclass(frozen=True)
class Fetched:
    status: int
    body: bytes
    etag: str


def _allowed(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if any(ip in network for network in settings.CRENEAU_AGENDA_ALLOWED_NETWORKS):
        return True
    return ip.is_global and not ip.is_multicast


def check_address(host: str, address: str) -> None:
    """Refuse ``address`` (where ``host`` leads) unless it is public or allowed."""
    if not _allowed(address):
        raise FetchError(
            "address_refused",
            _(
                "%(host)s leads to %(address)s, a private or local address: set "
                "CRENEAU_AGENDA_ALLOWED_NETWORKS to allow it."
            )
            % {"host": host[:100], "address": address},
            status=422,
        )


def _checked(sock: socket.socket, host: str) -> None:
    try:
        check_address(host, sock.getpeername()[0])
    except FetchError:
        sock.close()
        raise


class _HTTP(http.client.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _checked(self.sock, self.host)


class _HTTPS(http.client.HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _checked(self.sock, self.host)


def fetch(
    url: str,
    *,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    max_bytes: int | None = None,
    timeout: float | None = None,
) -> Fetched:
    """``method`` (GET by default) ``url`` under the rules above; a 304 comes back with an empty
    body. Only a GET follows redirects."""
    max_bytes = max_bytes or settings.CRENEAU_AGENDA_MAX_BYTES
    timeout = timeout or settings.CRENEAU_AGENDA_TIMEOUT_SECONDS
    deadline = time.monotonic() + timeout
    for _hop in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FetchError(
                "address_invalid", _("Only http and https addresses can be read."), status=422
            )
        kind = _HTTPS if parts.scheme == "https" else _HTTP
        left = max(0.1, deadline - time.monotonic())
        options = {"context": ssl.create_default_context()} if kind is _HTTPS else {}
        connection = kind(parts.hostname, parts.port, timeout=left, **options)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            connection.request(
                method, path, body=body, headers={"User-Agent": "Creneau", **(headers or {})}
            )
            answer = connection.getresponse()
            redirected = answer.status in (301, 302, 303, 307, 308)
            if method == "GET" and redirected and answer.getheader("Location"):
                url = urljoin(url, answer.getheader("Location", ""))
                continue
            body = answer.read(max_bytes + 1)
            if len(body) > max_bytes:
                raise FetchError(
                    "too_large",
                    _("The answer is larger than %(size)s bytes.") % {"size": max_bytes},
                )
            if time.monotonic() > deadline:
                raise FetchError("too_slow", _("The answer took too long."))
            return Fetched(status=answer.status, body=body, etag=answer.getheader("ETag", "") or "")
        except TimeoutError as error:
            raise FetchError("too_slow", _("The answer took too long.")) from error
        except (OSError, http.client.HTTPException) as error:
            raise FetchError(
                "unreachable",
                _("%(host)s did not answer: %(error)s")
                % {"host": parts.hostname[:100], "error": type(error).__name__},
            ) from error
        finally:
            connection.close()
    raise FetchError("too_many_redirects", _("More than three redirections."))
