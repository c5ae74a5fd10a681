import email
import email.policy
from ipaddress import ip_network

import pytest
from aiosmtpd.controller import Controller

from tests.cli import free_port
from tests.notify.gateway import Gateway


class Mailbox:
    """Every e-mail the loopback SMTP server received, parsed."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 Message accepted for delivery"


@pytest.fixture
def mailbox(settings):
    """A real SMTP server on loopback (aiosmtpd), and the hub's e-mail pointed at it."""
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    yield box
    controller.stop()


@pytest.fixture
def gateway(settings):
    """The loopback SMS gateway, and the hub's SMS pointed at it."""
    server = Gateway()
    settings.CRENEAU_OUTGOING_ALLOWED_NETWORKS = (ip_network("127.0.0.0/8"),)
    settings.CRENEAU_SMS_BACKEND = "http"
    settings.CRENEAU_SMS_HTTP = {
        **settings.CRENEAU_SMS_HTTP,
        "url": server.url,
        "token": "gateway-secret",
        "sender": "APHP",
        "timeout": 2,
        "reference_field": "id",
    }
    yield server
    server.close()
