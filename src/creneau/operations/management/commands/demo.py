import ipaddress
import json
import os
import secrets
from dataclasses import asdict
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connections, transaction
from django.utils import timezone

from creneau.agenda.demo import demo_agenda_load, demo_calendar_ics, demo_calendar_role
from creneau.agenda.models import AgendaSource
from creneau.agenda.sources.services import agenda_source_connect, agenda_source_sync
from creneau.channels.demo import demo_operators_ensure, demo_platforms_ensure
from creneau.channels.models import Channel
from creneau.channels.services import organisation_public_site_ensure
from creneau.directory.demo import demo_directory_load
from creneau.directory.models import Organisation
from creneau.fhir.demo import sas_demo_query
from creneau.ledger.checkpoints import checkpoint_make, signer
from creneau.operations.jobs import nightly_roll
from creneau.operations.server import serve, start_worker
from creneau.second_factor import second_factor_issue
from creneau.staff.demo import demo_staff_ensure
from creneau.web.demo import demo_widget_ensure, serve_example_page

ADMIN_USERNAME = "demo-admin"
CREDENTIALS_FILE = "demo-credentials.json"


class Command(BaseCommand):
    help = (
        "Run a demo hub: create the data directory, migrate, load the demo network once, write "
        "demo-credentials.json and serve on 127.0.0.1."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--example-port",
            type=int,
            help="where the example hospital page is served (default: the port after --port)",
        )
        parser.add_argument(
            "--data-dir", help="where the database and credentials go (default: ./creneau-data)"
        )
        parser.add_argument("--reset", action="store_true", help="delete the demo data first")
        parser.add_argument(
            "--no-serve", action="store_true", help="prepare the data and credentials, then exit"
        )
        parser.add_argument(
            "--no-worker",
            action="store_true",
            help="do not run a background worker beside the server (messages wait in the queue)",
        )

    def handle(self, *args, port, example_port, reset, no_serve, no_worker, **options):
        example_port = example_port or port + 1
        data_dir = Path(settings.DATA_DIR)
        data_dir.mkdir(parents=True, exist_ok=True)
        if reset:
            self._reset(data_dir)
        call_command("migrate", verbosity=0, interactive=False)
        if Organisation.objects.filter(runs_hub=True).exists():
            self.stdout.write(f"Keeping the demo data in {data_dir} (--reset starts over).")
            rolled = nightly_roll().slots
            self.stdout.write(f"Agendas rolled forward: {rolled.created} new slots.")
        else:
            self.stdout.write("Loading the demo network…")
            with transaction.atomic():
                network = demo_directory_load()
                organisation_public_site_ensure(organisation=network.organisation, via="demo")
                for other in Organisation.objects.filter(channels__isnull=True):
                    organisation_public_site_ensure(organisation=other, via="demo")
                self.stdout.write("Opening the agendas…")
                report = demo_agenda_load()
            self.stdout.write(f"{report.created} slots for {report.roles} practitioner roles.")
        organisation = Organisation.objects.get(runs_hub=True)
        widget = demo_widget_ensure(organisation=organisation, example_port=example_port)
        self._calendar_allowed()
        credentials = self._credentials(data_dir, port, widget, example_port)
        base = credentials["hub_url"]
        # Links in messages lead back to this demo, unless an address was configured.
        if "CRENEAU_PUBLIC_URL" not in os.environ:
            os.environ["CRENEAU_PUBLIC_URL"] = settings.CRENEAU_PUBLIC_URL = base
        outbox = Path(settings.CRENEAU_OUTBOX)
        checkpoint_make()  # the log so far (the demo's channels and perimeters), signed
        example = credentials["widget"]["example_page"]
        self.stdout.write(
            "\n".join(
                [
                    "",
                    f"Patient site   {base}/   (English: {base}/en/)",
                    f"Widget         {base}/embed/{widget.key}/",
                    f"Hospital page  {example}   (an example page that embeds the widget)",
                    f"Admin          {base}/admin/  "
                    f"(login {credentials['admin']['username']} / "
                    f"{credentials['admin']['password']}, one-time code: a backup code from the "
                    "credentials)",
                    f"API docs       {base}/api/docs",
                    f"Console        {base}/console/   (call-centre agents: 'operators' in the "
                    "credentials; a backup code serves as the one-time code)",
                    f"Staff          {base}/staff/   (a secretary, a practitioner, an "
                    "establishment admin, an auditor: 'staff' in the credentials)",
                    f"OAuth2 tokens  {base}/oauth/token/   (client credentials: 'operators' and "
                    "'platforms' in the credentials)",
                    f"FHIR           {base}/fhir/metadata",
                    f"SAS query      {credentials['fhir']['sas_query']}",
                    "               (as the SAS: its token, or its certificate's subject in the "
                    "proxy's header: 'platforms' in the credentials)",
                    f"SMART manifest {base}/fhir/$bulk-publish",
                    f"Credentials    {data_dir / CREDENTIALS_FILE}",
                    f"Ledger         {base}/ledger/   (verify it: creneau ledger verify {base} "
                    f"--public-key '{credentials['ledger']['public_key']}')",
                    f"Outbox         {outbox}   (the patients' SMS in sms.jsonl, e-mails "
                    "in email/: what the worker sent)",
                    "",
                ]
            )
        )
        if no_serve:
            return
        worker = None if no_worker else start_worker(data_dir / "worker.log")
        calendar_role = demo_calendar_role()
        serve_example_page(
            port=example_port,
            hub=base,
            key=widget.key,
            calendar=lambda: demo_calendar_ics(calendar_role, timezone.now()),
        )
        # The demo practitioner's calendar: read now that its server runs.
        outcome = agenda_source_sync(
            source=AgendaSource.objects.get(practitioner_role=calendar_role)
        )
        self.stdout.write(
            f"Calendar       {credentials['calendar']['ics_url']}: "
            + (f"{outcome.busy_periods} busy periods" if outcome.ok else outcome.error)
        )
        try:
            serve(bind=f"127.0.0.1:{port}", workers=2, threads=4)
        finally:
            if worker is not None:
                worker.terminate()
                worker.wait(timeout=30)

    def _calendar_allowed(self) -> None:
        """The demo's calendar is served on loopback, which agenda sources may not read unless
        allowed: allowed here (and for the worker, through its environment)."""
        if not settings.CRENEAU_OUTGOING_ALLOWED_NETWORKS:
            os.environ["CRENEAU_OUTGOING_ALLOWED_NETWORKS"] = "127.0.0.0/8,::1/128"
            settings.CRENEAU_OUTGOING_ALLOWED_NETWORKS = (
                ipaddress.ip_network("127.0.0.0/8"),
                ipaddress.ip_network("::1/128"),
            )

    def _reset(self, data_dir: Path) -> None:
        database = settings.DATABASES["default"]
        connections.close_all()
        if database["ENGINE"].endswith("sqlite3"):
            for suffix in ("", "-wal", "-shm"):
                Path(f"{database['NAME']}{suffix}").unlink(missing_ok=True)
        else:
            call_command("migrate", verbosity=0, interactive=False)
            call_command("flush", verbosity=0, interactive=False)
        (data_dir / CREDENTIALS_FILE).unlink(missing_ok=True)
        self.stdout.write("Demo data deleted.")

    def _credentials(self, data_dir: Path, port: int, widget: Channel, example_port: int) -> dict:
        path = data_dir / CREDENTIALS_FILE
        previous = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        password = previous.get("admin", {}).get("password") or secrets.token_urlsafe(12)
        user_model = get_user_model()
        admin = user_model.objects.filter(username=ADMIN_USERNAME).first()
        if admin is None:
            admin = user_model.objects.create_superuser(ADMIN_USERNAME, "", password)
        elif not admin.check_password(password):
            admin.set_password(password)
            admin.save(update_fields=["password"])
        # First, so that the channels listed below include the operators'.
        operators = demo_operators_ensure(
            organisation=widget.organisation, previous=previous.get("operators", [])
        )
        platforms = demo_platforms_ensure(
            organisation=widget.organisation, previous=previous.get("platforms", [])
        )
        credentials = {
            **previous,
            "hub_url": f"http://127.0.0.1:{port}",
            "admin": {
                "username": ADMIN_USERNAME,
                "password": password,
                "url": "/admin/",
                # The admin asks a one-time code: fresh backup codes at each start.
                **asdict(second_factor_issue(user=admin)),
            },
            "channels": [
                {
                    "name": channel.name,
                    "kind": channel.kind,
                    "key": channel.key,
                    "organisation": str(channel.organisation),
                    "perimeter": channel.perimeter.name,
                }
                for channel in Channel.objects.select_related("organisation", "perimeter")
            ],
            "widget": {
                "key": widget.key,
                "allowed_origins": widget.origins,
                "example_page": f"http://localhost:{example_port}/",
            },
            "operators": operators,
            "platforms": platforms,
            "staff": demo_staff_ensure(
                organisation=widget.organisation, previous=previous.get("staff", [])
            ),
            "calendar": demo_calendar_connect(example_port),
            "fhir": {
                "base": f"http://127.0.0.1:{port}/fhir",
                "sas_query": sas_demo_query(f"http://127.0.0.1:{port}/fhir"),
                "smart_manifest": f"http://127.0.0.1:{port}/fhir/$bulk-publish",
            },
            "ledger": {
                "origin": signer().name,
                "public_key": signer().verifier.vkey(),
                "transparency_page": f"http://127.0.0.1:{port}/ledger/",
            },
        }
        path.write_text(json.dumps(credentials, indent=2, ensure_ascii=False), encoding="utf-8")
        path.chmod(0o600)
        return credentials


def demo_calendar_connect(example_port: int) -> dict:
    """The demo practitioner's agenda source: their calendar on the example site (a week's
    freshness: the demo may sleep without its slots leaving search)."""
    role = demo_calendar_role()
    url = f"http://127.0.0.1:{example_port}/agenda.ics"
    source = AgendaSource.objects.filter(practitioner_role=role).first()
    if source is None or source.url != url:
        agenda_source_connect(role=role, kind="calendar", url=url, freshness_minutes=7 * 24 * 60)
    return {
        "role": role.public_id,
        "practitioner": role.practitioner.display_name,
        "establishment": role.establishment.name,
        "ics_url": url,
    }
