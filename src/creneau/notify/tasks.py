"""The worker's jobs for messages (django-tasks, database backend)."""

from django_tasks import task

from creneau.notify.services import message_deliver


@task()
def deliver_messages(message_ids: list[int]) -> list[str | None]:
    """Send messages due together; each is claimed on its own, so one failing gateway does not
    hold back the other medium."""
    return [message_deliver(message_id=message_id) for message_id in message_ids]
