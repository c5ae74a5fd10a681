"""``creneau agenda``: practitioners' agenda sources from the command line (hospital IT
configures hundreds at once). ROLE is a practitioner role's public id, as the API gives it.

creneau agenda connect ROLE --ics-url URL | --caldav URL [--username U --password-file F]
                           | --fhir BASE --client-id ID --client-secret-file F --schedule ID
                             [--visit-type CODE]
                           | --his | --builtin   [--freshness MINUTES]
creneau agenda import FILE.csv (columns role, kind, url, freshness_minutes, hosted_by_hospital;
                                username, secret_file, schedule, fhir_api, visit_type where
                                needed)
creneau agenda sync [ROLE ...] [--all]
creneau agenda busy ROLE --from DATE --to DATE [--json]
creneau agenda feed ROLE       a new secret address of the role's bookings as a calendar
"""

import json
from datetime import UTC, date, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from creneau.agenda.models import AgendaSource
from creneau.booking.models import paris_midnight
from creneau.directory.models import PractitionerRole
from creneau.errors import DomainError


def _role(public_id: str) -> PractitionerRole:
    role = (
        PractitionerRole.objects.select_related("establishment", "practitioner")
        .filter(public_id=public_id)
        .first()
    )
    if role is None:
        raise CommandError(f"ROLE: no practitioner role has the id {public_id[:40]!r}.")
    return role


_KINDS = {
    "ics": AgendaSource.Kind.CALENDAR,
    "calendar": AgendaSource.Kind.CALENDAR,
    "caldav": AgendaSource.Kind.CALDAV,
    "fhir": AgendaSource.Kind.FHIR,
    "his": AgendaSource.Kind.HIS,
    "builtin": AgendaSource.Kind.BUILTIN,
}


def _secret(path_text: str | None, name: str) -> str:
    """A password or client secret read from a file (never from the command line)."""
    from pathlib import Path

    if not path_text:
        return ""
    path = Path(path_text)
    if not path.is_file():
        raise CommandError(f"{name}: {path_text[:80]} is not a readable file.")
    return path.read_text(encoding="utf-8").strip()


def _visit_type(role: PractitionerRole, code: str | None):
    from creneau.directory.models import VisitType

    if not code:
        return None
    found = VisitType.objects.filter(
        organisation_id=role.establishment.organisation_id, code=code
    ).first()
    if found is None:
        raise CommandError(f"--visit-type: the organisation has no visit type {code[:60]!r}.")
    return found


def _row_problem(row: dict) -> str:
    from urllib.parse import urlsplit

    role = (row.get("role") or "").strip()
    kind = (row.get("kind") or "").strip().lower()
    if not PractitionerRole.objects.filter(public_id=role).exists():
        return f"role: no practitioner role has the id {role[:40]!r}"
    if kind not in _KINDS:
        return f"kind: {kind[:20]!r} is not one of {', '.join(sorted(_KINDS))}"
    url = (row.get("url") or "").strip()
    fetched = _KINDS[kind] not in (AgendaSource.Kind.BUILTIN, AgendaSource.Kind.HIS)
    if fetched and urlsplit(url).scheme not in ("http", "https"):
        return f"url: {url[:60]!r} is not an http(s) address"
    if _KINDS[kind] == AgendaSource.Kind.FHIR:
        if not (row.get("schedule") or "").strip():
            return "schedule: a FHIR source needs the remote schedule's id"
        if not (row.get("username") or "").strip():
            return "username: a FHIR source needs its client id"
    secret_file = (row.get("secret_file") or "").strip()
    if secret_file:
        from pathlib import Path

        if not Path(secret_file).is_file():
            return f"secret_file: {secret_file[:60]!r} is not a readable file"
    api = (row.get("fhir_api") or "ihe").strip()
    if api not in AgendaSource.RemoteApi.values:
        return f"fhir_api: {api[:10]!r} is not ihe or rest"
    code = (row.get("visit_type") or "").strip()
    if code:
        found = PractitionerRole.objects.filter(
            public_id=role, establishment__organisation__visit_types__code=code
        )
        if not found.exists():
            return f"visit_type: the organisation has no visit type {code[:40]!r}"
    freshness = (row.get("freshness_minutes") or "60").strip()
    if not freshness.isdigit() or not 5 <= int(freshness) <= 7 * 24 * 60:
        return f"freshness_minutes: {freshness[:10]!r} is not from 5 to 10080"
    return ""


def _day(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise CommandError(f"{name}: {value[:40]!r} is not a date (YYYY-MM-DD).") from error


class Command(BaseCommand):
    help = "Agenda sources: connect a role to its agenda, sync, show the busy time derived."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        connect = sub.add_parser("connect", help="give a practitioner role its agenda source")
        connect.add_argument("role")
        kind = connect.add_mutually_exclusive_group(required=True)
        kind.add_argument("--ics-url", help="an iCalendar feed whose busy time removes slots")
        kind.add_argument("--caldav", help="a CalDAV calendar's address (read incrementally)")
        kind.add_argument(
            "--fhir", help="another agenda's FHIR base (its slots offered, booked through it)"
        )
        kind.add_argument("--builtin", action="store_true", help="Créneau's own rules only")
        kind.add_argument(
            "--his",
            action="store_true",
            help="the rules, less the appointments the hospital system sends (creneau mllp)",
        )
        connect.add_argument("--freshness", type=int, default=60, help="minutes (default 60)")
        connect.add_argument("--username", default="")
        connect.add_argument(
            "--password-file", help="a file holding the password (never on the command line)"
        )
        connect.add_argument("--hosted-by-hospital", action="store_true")
        connect.add_argument("--client-id", default="", help="FHIR: the OAuth2 client id")
        connect.add_argument("--client-secret-file", help="FHIR: a file holding the secret")
        connect.add_argument("--schedule", default="", help="FHIR: the remote Schedule's id")
        connect.add_argument(
            "--fhir-api",
            choices=AgendaSource.RemoteApi.values,
            default=AgendaSource.RemoteApi.IHE,
            help="FHIR: book with IHE ITI $hold/$book (default) or plain Appointment create",
        )
        connect.add_argument(
            "--visit-type", help="FHIR: the visit type of remote slots that name none of ours"
        )
        imported = sub.add_parser(
            "import", help="connect many roles from a CSV file (role,kind,url,freshness_minutes)"
        )
        imported.add_argument("file")
        sync = sub.add_parser("sync", help="read the sources now")
        sync.add_argument("roles", nargs="*")
        sync.add_argument("--all", action="store_true", help="every external source")
        feed = sub.add_parser(
            "feed", help="a new secret address of the role's bookings as a calendar feed"
        )
        feed.add_argument("role")
        busy = sub.add_parser("busy", help="the busy time Créneau derived for a role")
        busy.add_argument("role")
        busy.add_argument("--from", dest="first", required=True, help="first day, YYYY-MM-DD")
        busy.add_argument("--to", dest="last", required=True, help="last day, included")
        busy.add_argument("--json", action="store_true")

    def handle(self, *args, action, **options):
        try:
            getattr(self, "_" + action)(**options)
        except DomainError as error:
            raise CommandError(f"{error.code}: {error.message}") from error

    def _connect(self, *, role, ics_url, builtin, freshness, hosted_by_hospital, **options):
        from creneau.agenda.sources.services import agenda_source_connect, agenda_source_sync

        found = _role(role)
        username = options.get("username") or ""
        secret = _secret(options.get("password_file"), "--password-file")
        remote_schedule, visit_type = "", None
        if builtin:
            kind, url = AgendaSource.Kind.BUILTIN, ""
        elif options.get("his"):
            kind, url = AgendaSource.Kind.HIS, ""
        elif options.get("caldav"):
            kind, url = AgendaSource.Kind.CALDAV, options["caldav"]
        elif options.get("fhir"):
            kind, url = AgendaSource.Kind.FHIR, options["fhir"]
            username = options.get("client_id") or ""
            secret = _secret(options.get("client_secret_file"), "--client-secret-file")
            remote_schedule = options.get("schedule") or ""
            if not (username and secret and remote_schedule):
                raise CommandError("--fhir needs --client-id, --client-secret-file and --schedule.")
            visit_type = _visit_type(found, options.get("visit_type"))
        else:
            kind, url = AgendaSource.Kind.CALENDAR, ics_url
        source = agenda_source_connect(
            role=found,
            kind=kind,
            url=url or "",
            username=username,
            secret=secret,
            freshness_minutes=freshness,
            hosted_by_hospital=hosted_by_hospital,
            remote_schedule=remote_schedule,
            remote_api=options.get("fhir_api") or AgendaSource.RemoteApi.IHE,
            default_visit_type=visit_type,
        )
        self.stdout.write(f"{source}: connected.")
        if kind == AgendaSource.Kind.HIS:
            self.stdout.write(
                "Its slots follow its rules, less the appointments the hospital system sends "
                "to `creneau mllp`."
            )
        elif not builtin:
            self._report(agenda_source_sync(source=source))

    def _import(self, *, file, **_options):
        """All rows are checked before any is applied: an error names its row and nothing
        changes."""
        import csv
        from pathlib import Path

        from django.db import transaction

        from creneau.agenda.sources.services import agenda_source_connect

        path = Path(file)
        if not path.exists():
            raise CommandError(f"{file}: no such file.")
        rows, errors = [], []
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = {"role", "kind"} - set(reader.fieldnames or [])
            if missing:
                raise CommandError(f"{file}: missing columns: {', '.join(sorted(missing))}")
            for number, row in enumerate(reader, start=2):
                problem = _row_problem(row)
                if problem:
                    errors.append(f"row {number}: {problem}")
                else:
                    rows.append(row)
        if errors:
            raise CommandError("nothing imported:\n" + "\n".join(errors))
        with transaction.atomic():
            for row in rows:
                role = PractitionerRole.objects.select_related("establishment").get(
                    public_id=row["role"].strip()
                )
                agenda_source_connect(
                    role=role,
                    kind=_KINDS[row["kind"].strip().lower()],
                    url=(row.get("url") or "").strip(),
                    username=(row.get("username") or "").strip(),
                    secret=_secret((row.get("secret_file") or "").strip(), "secret_file"),
                    remote_schedule=(row.get("schedule") or "").strip(),
                    remote_api=(row.get("fhir_api") or "ihe").strip(),
                    default_visit_type=_visit_type(role, (row.get("visit_type") or "").strip()),
                    freshness_minutes=int(row.get("freshness_minutes") or 60),
                    hosted_by_hospital=(row.get("hosted_by_hospital") or "").strip().lower()
                    in ("1", "yes", "oui", "true"),
                )
        self.stdout.write(
            f"{len(rows)} agenda sources connected; the worker reads them within a minute "
            "(or: creneau agenda sync --all)."
        )

    def _sync(self, *, roles, **options):
        from creneau.agenda.sources.services import agenda_source_sync

        if not roles and not options["all"]:
            raise CommandError("Name the roles to sync, or --all.")
        sources = AgendaSource.objects.exclude(
            kind__in=(AgendaSource.Kind.BUILTIN, AgendaSource.Kind.HIS)
        ).select_related("practitioner_role__practitioner", "practitioner_role__establishment")
        if roles:
            sources = sources.filter(practitioner_role__public_id__in=roles)
            missing = set(roles) - set(
                sources.values_list("practitioner_role__public_id", flat=True)
            )
            if missing:
                raise CommandError(f"No external agenda source for: {', '.join(sorted(missing))}")
        found = list(sources.order_by("pk"))
        failed = 0
        for number, source in enumerate(found, start=1):
            outcome = agenda_source_sync(source=source)
            failed += not outcome.ok
            self.stdout.write(f"[{number}/{len(found)}] ", ending="")
            self._report(outcome)
        if failed:
            raise CommandError(f"{failed} of {len(found)} sources did not sync.")

    def _report(self, outcome) -> None:
        source = outcome.source
        if not outcome.ok:
            self.stdout.write(f"{source}: FAILED: {outcome.error}")
            return
        report = source.last_report or {}
        if source.kind == AgendaSource.Kind.FHIR:
            line = (
                f"{source}: {report.get('remote_slots', 0)} free slots there, "
                f"{report.get('slots_created', 0)} new here, "
                f"{outcome.slots_removed} no longer offered"
            )
            if report.get("unmapped"):
                line += f", {report['unmapped']} of no known visit type (see --visit-type)"
            self.stdout.write(line)
            return
        line = (
            f"{source}: {outcome.busy_periods} busy periods, "
            f"{outcome.slots_removed} slots taken out of search"
        )
        if outcome.booked_in_busy_time:
            line += (
                f"; {len(outcome.booked_in_busy_time)} booked slots in busy time, kept: "
                + ", ".join(outcome.booked_in_busy_time)
            )
        self.stdout.write(line)

    def _feed(self, *, role, **_options):
        from django.conf import settings
        from django.urls import reverse

        from creneau.agenda.sources.services import agenda_feed_renew

        source = AgendaSource.objects.filter(practitioner_role=_role(role)).first()
        if source is None:
            raise CommandError("This role has no agenda source: connect it first.")
        token = agenda_feed_renew(source=source)
        url = settings.CRENEAU_PUBLIC_URL.rstrip("/") + reverse("practitioner_feed", args=[token])
        self.stdout.write(url)
        self.stderr.write("Shown once; any previous address of this feed no longer works.")

    def _busy(self, *, role, first, last, **options):
        as_json = options["json"]
        from creneau.agenda.sources.services import busy_intervals

        start_day, last_day = _day(first, "--from"), _day(last, "--to")
        if last_day < start_day:
            raise CommandError("--to: the last day comes before --from.")
        found = busy_intervals(
            role=_role(role),
            start=paris_midnight(start_day),
            end=paris_midnight(last_day + timedelta(days=1)),
        )
        if as_json:
            self.stdout.write(json.dumps([{"start": _iso(a), "end": _iso(b)} for a, b in found]))
            return
        for start, end in found:
            local = timezone.localtime(start), timezone.localtime(end)
            self.stdout.write(f"{local[0]:%Y-%m-%d %H:%M} to {local[1]:%Y-%m-%d %H:%M}")
        if not found:
            self.stdout.write("No busy time in that period.")


def _iso(moment) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
