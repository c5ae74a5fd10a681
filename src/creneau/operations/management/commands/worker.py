"""``creneau worker``: runs the background jobs (django-tasks, database backend) and the periodic
ones (messages due, waiting-list offers, holds, the nightly agenda roll). Any number may run
side by side: each job and each periodic run is claimed by one of them."""

import logging
import threading

from django.core.management.base import BaseCommand
from django.db import close_old_connections, connection
from django.db.utils import OperationalError
from django.utils.crypto import get_random_string
from django_tasks_db.management.commands.db_worker import Worker

from creneau.operations.jobs import periodic_enqueue_due

logger = logging.getLogger("creneau.worker")


def _schedule_once() -> None:
    try:
        started = periodic_enqueue_due()
        if started:
            logger.info("periodic jobs enqueued: %s", ", ".join(started))
    except OperationalError as error:  # a locked SQLite file: the next tick tries again
        logger.warning("schedule skipped this tick: %s", error)
    finally:
        close_old_connections()


class Command(BaseCommand):
    help = "Run the background worker: messages, waiting-list offers, the nightly agenda roll."

    def add_arguments(self, parser):
        parser.add_argument(
            "--interval",
            type=float,
            default=1.0,
            help="seconds between looks at an empty queue (default 1)",
        )
        parser.add_argument(
            "--tick", type=float, default=5.0, help="seconds between schedule checks (default 5)"
        )
        parser.add_argument(
            "--batch",
            action="store_true",
            help="run what is due now (periodic jobs included), then exit",
        )
        parser.add_argument(
            "--no-schedule", action="store_true", help="run queued jobs only, no periodic ones"
        )

    def handle(self, *args, interval, tick, batch, no_schedule, verbosity, **options):
        logging.getLogger("django_tasks_db").setLevel(
            logging.WARNING if verbosity < 2 else logging.DEBUG
        )
        worker = Worker(
            queue_names=["*"],
            interval=interval,
            batch=batch,
            backend_name="default",
            startup_delay=not batch,
            max_tasks=None,
            worker_id=get_random_string(32),
            excluded_queue_names=[],
        )
        if not no_schedule:
            _schedule_once()
            if not batch:
                stop = threading.Event()

                def schedule() -> None:
                    while not stop.wait(tick):
                        _schedule_once()
                    connection.close()

                threading.Thread(target=schedule, name="schedule", daemon=True).start()
        if not batch:
            self.stdout.write(f"Worker {worker.worker_id[:8]} running (Ctrl+C to stop).")
            worker.configure_signals()
        worker.run()
