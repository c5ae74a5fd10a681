"""The hub's one guarded client for every outgoing request (creneau.outgoing), against real HTTP
servers on loopback addresses of their own (127.0.0.0/8 is all loopback on Linux), so that one
address may be allowed and its neighbour forbidden (issue 27, points 2, 12 and 15)."""

import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_network

import pytest

from creneau import outgoing
from creneau.agenda.sources.services import agenda_source_connect, agenda_source_sync
from creneau.outgoing import OutgoingError

ALLOWED = "127.0.0.2"
FORBIDDEN = "127.0.0.3"


class Server:
    """Answers every request with ``answer(handler)``; remembers each request it saw."""

    def __init__(self, address: str, answer, port: int = 0) -> None:
        seen = self.seen = []

        class Handler(BaseHTTPRequestHandler):
            def _any(self):
                seen.append((self.command, self.path))
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                answer(self)

            do_GET = do_POST = do_PUT = do_PROPFIND = do_REPORT = do_OPTIONS = _any

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((address, port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{address}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def send(handler, status: int, body: bytes = b"", **headers) -> None:
    handler.send_response(status)
    for name, value in {"Content-Length": str(len(body)), **headers}.items():
        handler.send_header(name.replace("_", "-"), value)
    handler.end_headers()
    handler.wfile.write(body)


@pytest.fixture
def metadata():
    """The cloud metadata service's shape, on an address the hub may not reach."""
    server = Server(FORBIDDEN, lambda h: send(h, 200, b'{"secret": "instance-credentials"}'))
    yield server
    server.close()


@pytest.fixture
def only_allowed(settings):
    settings.CRENEAU_OUTGOING_ALLOWED_NETWORKS = (ip_network(f"{ALLOWED}/32"),)


@pytest.mark.django_db
def test_a_caldav_server_s_redirect_to_a_forbidden_address_is_never_followed(
    pitie_neurosurgeon, clock, metadata, only_allowed
):
    target = metadata.url + "/latest/meta-data/"
    redirecting = Server(ALLOWED, lambda h: send(h, 302, Location=target))
    try:
        source = agenda_source_connect(
            role=pitie_neurosurgeon, kind="caldav", url=redirecting.url + "/calendars/dr/"
        )
        outcome = agenda_source_sync(source=source)
    finally:
        redirecting.close()
    assert not outcome.ok and "CRENEAU_OUTGOING_ALLOWED_NETWORKS" in outcome.error
    assert redirecting.seen  # asked, and its redirect read
    assert metadata.seen == []  # never reached


@pytest.mark.django_db
def test_an_answer_that_is_not_xml_is_refused_and_its_body_never_logged(
    pitie_neurosurgeon, clock, caplog, settings
):
    settings.CRENEAU_OUTGOING_ALLOWED_NETWORKS = (ip_network("127.0.0.0/8"),)
    page = b"<html>patient Durand Camille, 1968-09-21</html>"
    server = Server(ALLOWED, lambda h: send(h, 207, page, Content_Type="text/html"))
    try:
        source = agenda_source_connect(role=pitie_neurosurgeon, kind="caldav", url=server.url)
        with caplog.at_level(logging.DEBUG):
            outcome = agenda_source_sync(source=source)
    finally:
        server.close()
    assert not outcome.ok and "XML" in outcome.error
    assert "Durand" not in caplog.text


@pytest.mark.django_db
def test_a_name_that_resolves_elsewhere_later_is_not_asked_again(
    pitie_neurosurgeon, clock, only_allowed, monkeypatch
):
    """DNS rebinding: the name's first answer is checked, later ones would lead elsewhere.
    Only the resolver is played here; both servers are real, on the same port."""
    allowed = Server(ALLOWED, lambda h: send(h, 404))
    port = allowed.server.server_address[1]
    forbidden = Server(FORBIDDEN, lambda h: send(h, 200, b"secret"), port=port)
    real = socket.getaddrinfo
    answers = iter([ALLOWED])

    def rebinding(host, *args, **kwargs):
        if host == "agenda.hopital.example":
            address = next(answers, FORBIDDEN)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    try:
        source = agenda_source_connect(
            role=pitie_neurosurgeon, kind="caldav", url=f"http://agenda.hopital.example:{port}/"
        )
        agenda_source_sync(source=source)
    finally:
        allowed.close()
        forbidden.close()
    assert forbidden.seen == []


def test_the_deadline_holds_while_a_server_sends_a_byte_a_second(settings):
    settings.CRENEAU_OUTGOING_ALLOWED_NETWORKS = (ip_network("127.0.0.0/8"),)

    def trickle(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", "30")
        handler.end_headers()
        for _ in range(30):
            try:
                handler.wfile.write(b"x")
                handler.wfile.flush()
            except OSError:
                return
            time.sleep(1)

    server = Server(ALLOWED, trickle)
    started = time.monotonic()
    try:
        with pytest.raises(OutgoingError) as refused:
            outgoing.request(server.url, timeout=2)
    finally:
        server.close()
    assert refused.value.code == "too_slow"
    # Cut at the deadline, not re-armed by every byte (30 s before the guard read by deadline).
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.5",
        "169.254.169.254",
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "2002:a9fe:a9fe::1",  # 6to4
        "2001:0:a9fe:a9fe::1",  # Teredo
        "fec0::1",  # site-local
        "::127.0.0.1",  # IPv4-compatible
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::1",
        "fd00::1",
    ],
)
def test_forbidden_forms_are_refused_before_connecting(settings, address):
    settings.CRENEAU_OUTGOING_ALLOWED_NETWORKS = ()
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(OutgoingError) as refused:
        outgoing.request(f"http://{host}:9/latest/meta-data/", timeout=2)
    assert refused.value.code == "address_refused"


def test_an_open_and_a_closed_forbidden_port_answer_the_same(settings):
    """The guard is no port scanner: it refuses before it connects."""
    settings.CRENEAU_OUTGOING_ALLOWED_NETWORKS = ()
    server = Server("127.0.0.1", lambda h: send(h, 200, b"open"))
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    answers = []
    try:
        for url in (server.url, f"http://127.0.0.1:{closed_port}"):
            with pytest.raises(OutgoingError) as refused:
                outgoing.request(url + "/", timeout=2)
            answers.append((refused.value.code, refused.value.message))
    finally:
        server.close()
    assert answers[0] == answers[1] and answers[0][0] == "address_refused"
    assert server.seen == []


def test_a_public_name_with_one_private_address_is_refused(settings, monkeypatch):
    settings.CRENEAU_OUTGOING_ALLOWED_NETWORKS = ()
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda *a, **k: [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", 80)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", 80)),
        ],
    )
    with pytest.raises(OutgoingError) as refused:
        outgoing.request("http://mixed.example/", timeout=2)
    assert refused.value.code == "address_refused"
