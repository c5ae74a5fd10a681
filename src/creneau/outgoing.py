"""Every request the hub makes to another server (agenda sources over ICS, CalDAV and FHIR, the
SAS feedback, the SMS gateway, the OpenID provider) goes through this one guarded client: an
address hospital IT typed, or one a server redirected to, is a door into the hospital's network
if left open (server-side request forgery).

- http and https only; the name is resolved once, **every** address it gives is checked before
  anything connects, and the connection goes to that checked address (the name is kept for the
  Host header and TLS), so a name that resolves elsewhere a second later (DNS rebinding) is
  never asked again;
- an address is refused unless it is public, or in CRENEAU_OUTGOING_ALLOWED_NETWORKS (a
  hospital's internal CalDAV server or identity provider; loopback for the demo and the tests).
  IPv6 forms that carry an IPv4 address (mapped, compatible, NAT64, 6to4, Teredo) and the old
  site-local range are refused like private ones. Every refused address gets the same answer,
  given before any connection, so the refusal tells nothing about its ports;
- redirects are followed (three at most, for a GET, or by the caller's library) only after the
  new address is checked in the same way;
- one deadline covers the whole exchange: connecting, sending, and every read of the answer
  (a server that sends a byte a second is cut off at the deadline, not at each read's timeout);
- the answer is capped in size, and nothing here logs a body.
"""

import http.client
import io
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from django.conf import settings
from django.utils.translation import gettext as _

from creneau.errors import DomainError

MAX_REDIRECTS = 3
REDIRECTS = (301, 302, 303, 307, 308)
# IPv6 ranges that carry or stand for an IPv4 address, or that are not addresses of the public
# internet though Python's ``is_global`` may call them so (RFC 6052 NAT64, RFC 8215 local-use
# NAT64, RFC 3056 6to4, RFC 4380 Teredo, RFC 4291 §2.5.5 IPv4-compatible and IPv4-mapped, RFC
# 3879 deprecated site-local).
_EMBEDDED = tuple(
    ipaddress.ip_network(n)
    for n in (
        "64:ff9b::/96",
        "64:ff9b:1::/48",
        "2002::/16",
        "2001::/32",
        "::/96",
        "::ffff:0:0/96",
        "fec0::/10",
    )
)


class OutgoingError(DomainError):
    status = 502


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    url: str
    headers: dict[str, str] = field(default_factory=dict)  # names in lower case
    reason: str = ""

    @property
    def etag(self) -> str:
        return self.headers.get("etag", "")


def _allowed(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if any(ip in network for network in settings.CRENEAU_OUTGOING_ALLOWED_NETWORKS):
        return True
    if ip.version == 6 and any(ip in network for network in _EMBEDDED):
        return False
    return ip.is_global and not ip.is_multicast


def _refused(host: str) -> OutgoingError:
    return OutgoingError(
        "address_refused",
        _(
            "%(host)s leads to a private, local or reserved address: set "
            "CRENEAU_OUTGOING_ALLOWED_NETWORKS to allow it."
        )
        % {"host": host[:100]},
        status=422,
    )


def checked_address(host: str, port: int, deadline: float) -> tuple[int, str]:
    """The address to connect to for ``host``: every address the name resolves to must be
    allowed (a name with one private address among public ones is refused)."""
    try:
        literal = ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        literal = None
    if literal is not None:
        found = [literal]
    else:
        _left(deadline)
        try:
            found = [
                ipaddress.ip_address(info[4][0].split("%")[0])
                for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
            ]
        except (OSError, UnicodeError) as error:
            raise _unreachable(host, error) from error
    if not found or not all(_allowed(ip) for ip in found):
        raise _refused(host)
    first = found[0]
    return (socket.AF_INET6 if first.version == 6 else socket.AF_INET), str(first)


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise OutgoingError("too_slow", _("The answer took too long."))
    return left


def _unreachable(host: str, error: BaseException) -> OutgoingError:
    return OutgoingError(
        "unreachable",
        _("%(host)s did not answer: %(error)s")
        % {"host": host[:100], "error": type(error).__name__},
    )


class _DeadlineReader(io.RawIOBase):
    """The answer's bytes, each read given only the time left before the deadline."""

    def __init__(self, owner: "_DeadlineSocket") -> None:
        self.owner = owner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        left = self.owner.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the exchange's deadline has passed")
        self.owner.sock.settimeout(left)
        return self.owner.sock.recv_into(buffer)

    def close(self) -> None:
        if not self.closed:
            self.owner.reader_closed()
        super().close()


class _DeadlineSocket:
    """What http.client needs of a socket, with the deadline on every read and write. As a
    socket's own files do, an open reader keeps the socket open after ``close`` (http.client
    closes the connection before the caller has read an answer that ends it)."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock, self.deadline = sock, deadline
        self.readers, self.closing = 0, False

    def makefile(self, mode: str, *args, **kwargs):
        self.readers += 1
        return io.BufferedReader(_DeadlineReader(self))

    def sendall(self, data) -> None:
        self.sock.settimeout(max(0.001, self.deadline - time.monotonic()))
        self.sock.sendall(data)

    def reader_closed(self) -> None:
        self.readers -= 1
        if self.closing and not self.readers:
            self.sock.close()

    def close(self) -> None:
        self.closing = True
        if not self.readers:
            self.sock.close()

    def __getattr__(self, name):
        return getattr(self.sock, name)


class _Connection(http.client.HTTPConnection):
    def __init__(self, host, port, *, address, family, deadline, context=None) -> None:
        super().__init__(host, port, timeout=max(0.001, deadline - time.monotonic()))
        self.address, self.family, self.deadline, self.context = address, family, deadline, context

    def connect(self) -> None:
        sock = socket.socket(self.family, socket.SOCK_STREAM)
        try:
            sock.settimeout(_left(self.deadline))
            sock.connect((self.address, self.port))
            if self.context is not None:
                sock.settimeout(_left(self.deadline))
                sock = self.context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        self.sock = _DeadlineSocket(sock, self.deadline)


def exchange(
    url: str,
    *,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    deadline: float,
    max_bytes: int,
    context: ssl.SSLContext | None = None,
) -> Answer:
    """One request and its answer, no redirect followed (a library that follows them calls
    this again for the new address)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutgoingError(
            "address_invalid", _("Only http and https addresses can be read."), status=422
        )
    secure = parts.scheme == "https"
    try:
        port = parts.port or (443 if secure else 80)
    except ValueError as error:
        raise OutgoingError("address_invalid", _("The address's port is not valid.")) from error
    family, address = checked_address(parts.hostname, port, deadline)
    connection = _Connection(
        parts.hostname,
        port,
        address=address,
        family=family,
        deadline=deadline,
        context=(context or ssl.create_default_context()) if secure else None,
    )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    answer = None
    try:
        connection.request(
            method, path, body=body, headers={"User-Agent": "Creneau", **(headers or {})}
        )
        answer = connection.getresponse()
        chunks, size = [], 0
        while chunk := answer.read1(65536):
            size += len(chunk)
            if size > max_bytes:
                raise OutgoingError(
                    "too_large",
                    _("The answer is larger than %(size)s bytes.") % {"size": max_bytes},
                )
            chunks.append(chunk)
        return Answer(
            status=answer.status,
            body=b"".join(chunks),
            url=url,
            headers={name.lower(): value for name, value in answer.getheaders()},
            reason=answer.reason or "",
        )
    except TimeoutError as error:
        raise OutgoingError("too_slow", _("The answer took too long.")) from error
    except (OSError, http.client.HTTPException) as error:
        raise _unreachable(parts.hostname, error) from error
    finally:
        if answer is not None:
            answer.close()
        connection.close()


def request(
    url: str,
    *,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    max_bytes: int | None = None,
    timeout: float | None = None,
    context: ssl.SSLContext | None = None,
) -> Answer:
    """``method`` ``url`` under the rules above, within ``timeout`` seconds in all. Only a GET
    follows redirects."""
    max_bytes = max_bytes or settings.CRENEAU_AGENDA_MAX_BYTES
    deadline = time.monotonic() + (timeout or settings.CRENEAU_AGENDA_TIMEOUT_SECONDS)
    for _hop in range(MAX_REDIRECTS + 1):
        answer = exchange(
            url,
            method=method,
            body=body,
            headers=headers,
            deadline=deadline,
            max_bytes=max_bytes,
            context=context,
        )
        location = answer.headers.get("location")
        if method != "GET" or answer.status not in REDIRECTS or not location:
            return answer
        url = urljoin(url, location)
    raise OutgoingError("too_many_redirects", _("More than three redirections."))
