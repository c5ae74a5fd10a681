"""The worker's jobs for messages (django-tasks, database backend)."""

from django_tasks import task

from creneau.notify.services import message_deliver


@task()
def deliver_message(message_id: int) -> str | None:
    return message_deliver(message_id=message_id)
