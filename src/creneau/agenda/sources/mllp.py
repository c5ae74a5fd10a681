"""MLLP, the Minimal Lower Layer Protocol HL7 v2 travels on: each message framed as
``<VT> message <FS><CR>`` on a TCP connection, answered by one framed ACK. A connection carries
as many messages as the sender wants (interface engines keep theirs open). The listener takes
connections only from CRENEAU_MLLP_ALLOWED_NETWORKS (the HIS; loopback by default), at most
CRENEAU_MLLP_MAX_CONNECTIONS at once; a connection with no message begun for
CRENEAU_MLLP_IDLE_SECONDS is closed, and a message must arrive whole within
CRENEAU_MLLP_MESSAGE_SECONDS of its first byte (a byte now and then renews neither)."""

import ipaddress
import logging
import socket
import socketserver
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import close_old_connections

START, END = b"\x0b", b"\x1c\x0d"
MAX_MESSAGE = 1_000_000

log = logging.getLogger("creneau.mllp")


class FramingError(Exception):
    pass


def frame(text: str) -> bytes:
    return START + text.encode("utf-8") + END


class Pace:
    """The deadlines of a listener's connection: ``idle_seconds`` for a message to begin (from
    the end of the last one), ``message_seconds`` for it to end (from its first byte)."""

    def __init__(self, sock: socket.socket, idle_seconds: float, message_seconds: float) -> None:
        self.sock, self.idle, self.message = sock, idle_seconds, message_seconds
        self.until = time.monotonic() + idle_seconds

    def waiting(self) -> None:
        self._wait_until(self.until)

    def begun(self) -> None:
        self.until = time.monotonic() + self.message

    def reading(self) -> None:
        self._wait_until(self.until)

    def ended(self) -> None:
        self.until = time.monotonic() + self.idle

    def _wait_until(self, until: float) -> None:
        left = until - time.monotonic()
        if left <= 0:
            raise FramingError("too slow: the connection is closed")
        self.sock.settimeout(left)


def read_frame(stream, pace: Pace | None = None) -> str | None:
    """The next message of ``stream`` (a binary file), None at the end of the connection."""
    if pace:
        pace.waiting()
    first = stream.read(1)
    while first in (b"\r", b"\n"):  # stray line ends between frames
        if pace:
            pace.waiting()
        first = stream.read(1)
    if not first:
        return None
    if first != START:
        raise FramingError("a message must start with <VT> (0x0b)")
    if pace:
        pace.begun()
    data = bytearray()
    while True:
        if pace:
            pace.reading()
        byte = stream.read(1)
        if not byte:
            raise FramingError("the connection closed inside a message")
        if byte == b"\x1c":
            if pace:
                pace.reading()
            if stream.read(1) != b"\r":
                raise FramingError("<FS> must be followed by <CR>")
            if pace:
                pace.ended()
            return data.decode("utf-8", errors="replace")
        data += byte
        if len(data) > MAX_MESSAGE:
            raise FramingError("message larger than 1 MB")


def send(address: str, text: str, *, timeout: float) -> str:
    """Send one message to ``host:port`` and return the framed answer's text."""
    with socket.create_connection(host_port(address), timeout=timeout) as connection:
        connection.sendall(frame(text))
        with connection.makefile("rb") as stream:
            answer = read_frame(stream)
    if answer is None:
        raise FramingError("the connection closed without an acknowledgement")
    return answer


def _allowed(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    return any(ip in network for network in settings.CRENEAU_MLLP_ALLOWED_NETWORKS)


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        peer = self.client_address[0]
        if not _allowed(peer):
            log.warning("MLLP connection refused from %s (CRENEAU_MLLP_ALLOWED_NETWORKS)", peer)
            return
        pace = Pace(
            self.connection,
            settings.CRENEAU_MLLP_IDLE_SECONDS,
            settings.CRENEAU_MLLP_MESSAGE_SECONDS,
        )
        while True:
            try:
                message = read_frame(self.rfile, pace)
            except (FramingError, OSError) as error:
                log.warning("MLLP connection from %s dropped: %s", peer, error)
                return
            if message is None:
                return
            try:
                answer = self.server.receive(message)  # type: ignore[attr-defined]
            finally:
                self.server.tidy()  # type: ignore[attr-defined]
            self.wfile.write(frame(answer))
            self.wfile.flush()


class InlineListener(socketserver.TCPServer):
    """``receive(message) -> ack`` for each message of each connection, one connection at a
    time in the calling thread."""

    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        receive: Callable[[str], str],
        tidy: Callable[[], None] = lambda: None,
    ) -> None:
        self.receive, self.tidy = receive, tidy
        super().__init__(address, _Handler)


class Listener(socketserver.ThreadingMixIn, InlineListener):
    """The same, each connection in a thread of its own, the database connection tidied after
    each message (as Django does after each request)."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], receive: Callable[[str], str]) -> None:
        super().__init__(address, receive, close_old_connections)
        self.slots = threading.BoundedSemaphore(settings.CRENEAU_MLLP_MAX_CONNECTIONS)

    def process_request(self, request, client_address) -> None:
        if not self.slots.acquire(blocking=False):
            log.warning(
                "MLLP connection from %s refused: %s open already (CRENEAU_MLLP_MAX_CONNECTIONS)",
                client_address[0],
                settings.CRENEAU_MLLP_MAX_CONNECTIONS,
            )
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


def host_port(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:2575`` for IPv6) as a socket address; loopback when no host."""
    host, _sep, port = value.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)
