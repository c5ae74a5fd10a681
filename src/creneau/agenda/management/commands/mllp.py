"""``creneau mllp``: the listener the hospital information system sends its SIU to (HL7 v2
over MLLP): the appointments its desk books, moves and cancels occupy the practitioners' time
in Créneau, each message acknowledged (agenda.sources.his). Run it beside the worker, under the
same supervisor (systemd, a container's restart policy); any number may run, each message is
applied in its own transaction."""

import logging

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from creneau.agenda.sources.his import siu_receive
from creneau.agenda.sources.mllp import Listener, host_port

log = logging.getLogger("creneau.mllp")


def receive(message: str) -> str:
    received = siu_receive(message)
    # The ACK's code and text name the fields, never the patient.
    log.info("SIU %s: %s", received.code, received.text)
    return received.ack


class Command(BaseCommand):
    help = "Listen for the hospital information system's SIU messages (HL7 v2 over MLLP)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--bind",
            default=None,
            help="HOST:PORT to listen on (default CRENEAU_MLLP_BIND, 127.0.0.1:2575)",
        )

    def handle(self, *args, bind, **options):
        try:
            address = host_port(bind or settings.CRENEAU_MLLP_BIND)
        except ValueError as error:
            raise CommandError(f"--bind: {bind!r} is not HOST:PORT") from error
        try:
            server = Listener(address, receive)
        except OSError as error:
            raise CommandError(f"cannot listen on {address[0]}:{address[1]}: {error}") from error
        host, port = server.server_address[:2]
        self.stdout.write(f"Listening for HL7 SIU (MLLP) on {host}:{port}", ending="\n")
        self.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
