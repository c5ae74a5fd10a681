"""``creneau ledger``: the transparency ledger from the command line.

creneau ledger verify URL|EXPORT --public-key KEY [--state FILE]
                               check a hub's log (or an export) with no database access
creneau ledger export FILE     write the log, its checkpoints and key to one JSON file
creneau ledger audit           check the database against the log, both ways
creneau ledger checkpoint      sequence what is pending and sign a checkpoint now
creneau ledger keygen [NAME]   print a new signer key (PRIVATE+KEY+...) and its public key
creneau ledger public-key      print the hub's verifier key
"""

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from creneau.ledger.note import NoteError, parse_vkey, skey


class Command(BaseCommand):
    help = "The transparency ledger: verify, export, audit, checkpoint, keygen, public-key."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        verify = sub.add_parser("verify", help="check a hub's log or an export (no database)")
        verify.add_argument("source", help="the hub's address (http://...) or an export file")
        verify.add_argument("--public-key", help="the log's verifier key (name+id+key)")
        verify.add_argument("--state", help="a file keeping what the last run saw")
        export = sub.add_parser("export", help="write a self-contained export of the log")
        export.add_argument("file")
        sub.add_parser("audit", help="every change in the database has its entry, and back")
        sub.add_parser("checkpoint", help="sign a checkpoint now if the log grew")
        keygen = sub.add_parser("keygen", help="print a new signer key and its public key")
        keygen.add_argument("name", nargs="?", help="the log's origin (default: the setting)")
        sub.add_parser("public-key", help="print the hub's verifier key")

    def handle(self, *args, action, **options):
        getattr(self, "_" + action.replace("-", "_"))(**options)

    def _verify(self, *, source, public_key, state, **_options):
        from creneau.ledger.verify import ExportSource, HubSource, VerifyError, verify

        reader = HubSource(source) if source.startswith(("http://", "https://")) else None
        if reader is None:
            reader = ExportSource(Path(source))
            public_key = public_key or reader.data.get("public_key")
            if public_key and "--public-key" not in sys.argv:
                self.stderr.write("Trusting the public key written inside the export.")
        if not public_key:
            raise CommandError("--public-key is required: the log's key, from the hospital.")
        try:
            verifier = parse_vkey(public_key)
        except NoteError as error:
            raise CommandError(f"--public-key: {error}") from error
        state_path = Path(state) if state else None
        previous = None
        if state_path and state_path.exists():
            try:
                previous = json.loads(state_path.read_text(encoding="utf-8"))
            except ValueError as error:
                raise CommandError(f"{state_path}: not a state file ({error})") from error
        try:
            report, new_state = verify(reader, verifier, previous)
        except VerifyError as error:
            raise CommandError(str(error)) from error
        self._report(report)
        if report.failures:
            raise CommandError(f"{len(report.failures)} problem(s): the log does not verify.")
        if state_path:
            state_path.write_text(json.dumps(new_state, indent=2) + "\n", encoding="utf-8")
        self.stdout.write(self.style.SUCCESS("The log verifies: no channel left its perimeter."))

    def _report(self, report) -> None:
        self.stdout.write(f"Log: {report.size} entries, {report.checkpoints} checkpoints checked.")
        columns = ["offers", "slots", "bookings", "moves", "cancels", "refusals", "outside"]
        # Channel names whole, however long: the column is as wide as the longest.
        names = {channel: report.names.get(channel, channel) for channel in report.channels}
        width = max([len("channel"), *(len(name) for name in names.values())])
        self.stdout.write(f"{'channel':{width}} " + " ".join(f"{c:>8}" for c in columns))
        for channel, counts in sorted(report.channels.items()):
            name = names[channel]
            values = [
                counts.offers,
                counts.slots_offered,
                counts.bookings,
                counts.moves,
                counts.cancellations,
                counts.refusals,
                counts.out_of_perimeter,
            ]
            self.stdout.write(f"{name:{width}} " + " ".join(f"{v:>8}" for v in values))
        for failure in report.failures[:100]:
            self.stderr.write(f"FAIL {failure}")
        if len(report.failures) > 100:
            self.stderr.write(f"... and {len(report.failures) - 100} more")

    def _export(self, *, file, **_options):
        from creneau.ledger.checkpoints import checkpoint_make, signer
        from creneau.ledger.models import Checkpoint, Entry

        checkpoint_make()
        latest = Checkpoint.objects.order_by("-size").first()
        size = latest.size if latest else 0
        data = {
            "origin": signer().name,
            "public_key": signer().verifier.vkey(),
            "checkpoints": list(Checkpoint.objects.order_by("size").values_list("note", flat=True)),
        }
        rows = Entry.objects.filter(leaf_index__lt=size).order_by("leaf_index")
        data["entries"] = [entry for entry, _leaf in rows.values_list("data", "leaf_hash")]
        # The hash of each entry as recorded when it was appended: names an entry changed since.
        data["leaves"] = [
            bytes(leaf).hex() for _entry, leaf in rows.values_list("data", "leaf_hash")
        ]
        Path(file).write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        self.stdout.write(f"{size} entries and {len(data['checkpoints'])} checkpoints to {file}")

    def _audit(self, **_options):
        from creneau.ledger.audit import audit

        problems = audit()
        for problem in problems[:100]:
            self.stderr.write(f"FAIL {problem}")
        if problems:
            raise CommandError(f"{len(problems)} problem(s) between the database and the log.")
        self.stdout.write(
            self.style.SUCCESS("Every change has its entry, and every entry its change.")
        )

    def _checkpoint(self, **_options):
        from creneau.ledger.checkpoints import CheckpointError, checkpoint_make

        try:
            made = checkpoint_make()
        except CheckpointError as error:
            raise CommandError(error.message) from error
        if made is None:
            self.stdout.write("The log has not grown since the last checkpoint.")
        else:
            self.stdout.write(made.note)

    def _keygen(self, *, name, **_options):
        from creneau.ledger.checkpoints import signer_new

        new = signer_new(name)
        self.stdout.write(skey(new))
        self.stderr.write(f"public key: {new.verifier.vkey()}")

    def _public_key(self, **_options):
        from creneau.ledger.checkpoints import signer

        self.stdout.write(signer().verifier.vkey())
