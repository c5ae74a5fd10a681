from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from creneau.channels.services import organisation_public_site_ensure
from creneau.directory.importing import ImportFailed, directory_import
from creneau.directory.models import Organisation


class Command(BaseCommand):
    help = (
        "Import a directory from CSV files (one kind per file, recognised from its header) or "
        "FHIR R4 Bundles (.json). All files are imported in one transaction: all or nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", type=Path)

    def handle(self, *args, files, **options):
        try:
            report = directory_import(files)
        except ImportFailed as error:
            raise CommandError(_("import refused, nothing was changed: %s") % error) from None
        for line in report.lines():
            self.stdout.write(line)
        # Each organisation has its public-site channel; a new one starts with a perimeter of
        # its own establishments, later changes to perimeters are explicit publications.
        for organisation in Organisation.objects.filter(channels__isnull=True):
            channel = organisation_public_site_ensure(organisation=organisation, via="import")
            self.stdout.write(f"public-site channel created for {organisation}: {channel.key}")
        if report.changed == 0:
            self.stdout.write("nothing changed")
