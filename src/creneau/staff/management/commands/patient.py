"""``creneau patient``: a patient's requests about their personal data (RGPD), for the data
protection officer.

creneau patient export --last-name N --birth-date YYYY-MM-DD --phone P [--output FILE]
        what Créneau holds about the patient and who looked at it, as JSON
creneau patient erase --last-name N --birth-date YYYY-MM-DD --phone P [--yes]
        erase their identity from every record (without --yes: say what would be erased)
creneau patient purge [--days N]
        erase the identities of appointments ended more than N days ago (the nightly job)
"""

import json
from datetime import date
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from creneau.booking.patients import PatientDetailsInvalid, caller_criteria_clean
from creneau.errors import DomainError
from creneau.staff.privacy import (
    patient_data_erase,
    patient_data_export,
    patient_data_purge,
    patient_records_find,
)

OPTIONS = {"last_name": "--last-name", "birth_date": "--birth-date", "phone": "--phone"}


class Command(BaseCommand):
    help = "A patient's personal data: export it, erase it, or purge the old identities."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        for name, text in (
            ("export", "what Créneau holds about a patient, and who looked at it (JSON)"),
            ("erase", "erase a patient's identity from every record, on their request"),
        ):
            action = sub.add_parser(name, help=text)
            action.add_argument("--last-name", required=True)
            action.add_argument("--birth-date", required=True, help="YYYY-MM-DD")
            action.add_argument("--phone", required=True)
            if name == "export":
                action.add_argument("--output", help="write to this file (default: the screen)")
            else:
                action.add_argument("--yes", action="store_true", help="erase (not only say)")
        purge = sub.add_parser("purge", help="erase the identities past the time kept")
        purge.add_argument("--days", type=int, help="default: CRENEAU_PATIENT_DATA_DAYS")

    def handle(self, *args, action, **options):
        try:
            getattr(self, "_" + action)(**options)
        except DomainError as error:
            raise CommandError(error.message) from None

    def _criteria(self, options):
        try:
            born = date.fromisoformat(options["birth_date"])
        except ValueError:
            raise CommandError(
                f"--birth-date: {options['birth_date']!r} is not a date (YYYY-MM-DD)."
            ) from None
        try:
            return caller_criteria_clean(
                last_name=options["last_name"], birth_date=born, phone=options["phone"]
            )
        except PatientDetailsInvalid as error:
            option = OPTIONS.get(error.field, error.field)
            raise CommandError(f"{option}: {error.message}") from None

    def _export(self, output=None, **options):
        document = patient_data_export(criteria=self._criteria(options))
        text = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
        if output:
            Path(output).write_text(text, encoding="utf-8")
            self.stderr.write(
                f"{len(document['appointments'])} appointment(s), "
                f"{len(document['waiting_list'])} waiting-list entry(ies), "
                f"{len(document['views'])} view(s) written to {output}."
            )
        else:
            self.stdout.write(text, ending="")

    def _erase(self, yes=False, **options):
        criteria = self._criteria(options)
        if not yes:
            records = patient_records_find(criteria)
            self.stdout.write(
                f"Would erase the identity from {len(records.appointments)} appointment(s) and "
                f"{len(records.waiting)} waiting-list entry(ies); run again with --yes."
            )
            return
        erased = patient_data_erase(criteria=criteria)
        self.stdout.write(f"Identity erased from {erased} record(s).")

    def _purge(self, days=None, **options):
        erased = patient_data_purge(days=days)
        self.stdout.write(f"Identities erased from {erased} record(s).")
