"""``creneau ledger``: the transparency ledger from the command line.

creneau ledger checkpoint      sequence what is pending and sign a checkpoint now
creneau ledger keygen [NAME]   print a new signer key (PRIVATE+KEY+...) and its public key
creneau ledger public-key      print the hub's verifier key
"""

from django.core.management.base import BaseCommand, CommandError

from creneau.ledger.checkpoints import CheckpointError, checkpoint_make, signer, signer_new
from creneau.ledger.note import skey


class Command(BaseCommand):
    help = "The transparency ledger: checkpoint, keygen, public-key."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("checkpoint", help="sign a checkpoint now if the log grew")
        keygen = sub.add_parser("keygen", help="print a new signer key and its public key")
        keygen.add_argument("name", nargs="?", help="the log's origin (default: the setting)")
        sub.add_parser("public-key", help="print the hub's verifier key")

    def handle(self, *args, action, **options):
        if action == "keygen":
            new = signer_new(options.get("name"))
            self.stdout.write(skey(new))
            self.stderr.write(f"public key: {new.verifier.vkey()}")
        elif action == "public-key":
            self.stdout.write(signer().verifier.vkey())
        elif action == "checkpoint":
            try:
                made = checkpoint_make()
            except CheckpointError as error:
                raise CommandError(error.message) from error
            if made is None:
                self.stdout.write("The log has not grown since the last checkpoint.")
            else:
                self.stdout.write(made.note)
