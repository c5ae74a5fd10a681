from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from creneau.booking.models import Appointment
from creneau.directory.models import PractitionerRole
from creneau.operations.jobs import nightly_roll


class Command(BaseCommand):
    help = (
        "Generate slots from the availability rules up to the horizon (the nightly roll): "
        "idempotent, never deletes a booked slot, and lists booked slots that no rule covers "
        "any more."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        generate = sub.add_parser("generate", help="generate or refresh slots")
        generate.add_argument("--horizon-weeks", type=int, default=None)
        generate.add_argument("--establishment", help="only this establishment (FINESS)")
        generate.add_argument("--practitioner", help="only this practitioner (RPPS)")
        generate.add_argument(
            "--jobs",
            type=int,
            default=1,
            help="processes sharing the work (PostgreSQL; one per core is a good start)",
        )

    def handle(self, *args, action, horizon_weeks, establishment, practitioner, jobs, **options):
        executor = MigrationExecutor(connection)
        if executor.migration_plan(executor.loader.graph.leaf_nodes()):
            raise CommandError("The database is not up to date: run `creneau migrate` first.")
        if horizon_weeks is not None and not 1 <= horizon_weeks <= 104:
            raise CommandError("--horizon-weeks: give a number of weeks between 1 and 104.")
        roles = PractitionerRole.objects.filter(is_active=True)
        if establishment:
            roles = roles.filter(establishment__finess=establishment)
        if practitioner:
            roles = roles.filter(practitioner__rpps=practitioner)
        if (establishment or practitioner) and not roles.exists():
            raise CommandError("No practitioner role matches --establishment/--practitioner.")
        if not 1 <= jobs <= 64:
            raise CommandError("--jobs: give a number of processes between 1 and 64.")
        report = nightly_roll(horizon_weeks=horizon_weeks, roles=roles, jobs=jobs)
        slots = report.slots
        self.stdout.write(
            f"{slots.roles} practitioner roles: {slots.created} slots created, "
            f"{slots.updated} updated, {slots.removed} removed, {slots.unchanged} unchanged."
        )
        self.stdout.write(
            f"Waiting list: {report.offers_made} offers made, "
            f"{report.offers_expired} expired offers passed on."
        )
        if slots.orphaned:
            self.stdout.write(
                self.style.WARNING(
                    f"{len(slots.orphaned)} booked slots are no longer covered by any rule; "
                    "move these appointments:"
                )
            )
            booked = Appointment.objects.filter(
                slot__in=slots.orphaned, status=Appointment.Status.BOOKED
            ).select_related("practitioner", "establishment")
            for appointment in booked.order_by("starts_at"):
                local = timezone.localtime(appointment.starts_at, timezone.get_default_timezone())
                self.stdout.write(
                    f"  {appointment.public_id}  {local:%Y-%m-%d %H:%M}  "
                    f"{appointment.practitioner}  {appointment.establishment.name}"
                )
