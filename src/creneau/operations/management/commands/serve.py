from django.core.management.base import BaseCommand

from creneau.operations.server import default_options, serve


class Command(BaseCommand):
    help = "Run Créneau's production server (gunicorn) with the environment's settings."

    def add_arguments(self, parser):
        defaults = default_options()
        parser.add_argument("--bind", default=defaults["bind"], help="address:port to listen on")
        parser.add_argument("--workers", type=int, default=defaults["workers"])
        parser.add_argument("--threads", type=int, default=defaults["threads"])

    def handle(self, *args, bind, workers, threads, **options):
        serve(bind=bind, workers=workers, threads=threads)
