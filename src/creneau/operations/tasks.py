"""The periodic jobs as tasks, so that they run in the worker like any other job."""

import logging

from django_tasks import task

logger = logging.getLogger("creneau.worker")


@task()
def run_periodic(name: str) -> str:
    from creneau.operations.jobs import PERIODIC

    result = PERIODIC[name].run()
    logger.info("periodic job %s done: %s", name, result)
    return str(result)
