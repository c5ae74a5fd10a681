"""Counting in fixed windows of time: the one counter behind the per-client limits
(booking.throttling), the contracts' requests per minute (channels.queries) and the console's
sign-in attempts.

Every process and every server must count in the same place, or each limit is multiplied by
the number of gunicorn workers. The database is that place by default (the demo needs no other
service): one atomic upsert per count. With ``CRENEAU_CACHE_URL`` (Redis), Django's cache
counts instead, with Redis's atomic INCR.
"""

import time
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from creneau.operations.models import RateCounter


def count_in_window(name: str, window: int) -> tuple[int, int]:
    """Count one more event under ``name`` in the current window of ``window`` seconds: the
    count so far, and the seconds until the window ends."""
    now = int(time.time())
    started = now // window * window
    key = f"{name}:{started}"
    if settings.CRENEAU_COUNTERS == "cache":
        count = _count_in_cache(key, window)
    else:
        count = _count_in_database(key, datetime.fromtimestamp(started + window, UTC))
    return count, started + window - now


def _count_in_cache(key: str, window: int) -> int:
    cache.add(key, 0, timeout=window + 5)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=window + 5)
        return 1


def _count_in_database(key: str, expires_at: datetime) -> int:
    # One statement, so concurrent requests each get their own count (SQLite 3.35+ and
    # PostgreSQL both have INSERT ... ON CONFLICT ... RETURNING).
    table = connection.ops.quote_name(RateCounter._meta.db_table)
    upsert = (
        f"INSERT INTO {table} (name, count, expires_at) VALUES (%s, 1, %s) "  # noqa: S608
        f"ON CONFLICT (name) DO UPDATE SET count = {table}.count + 1 RETURNING count"
    )
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        # A count lost in a crash costs nothing, so its commit need not wait for the disk:
        # PostgreSQL still applies it in order, atomically, seen by every other connection.
        # Only in a transaction of its own, never one that holds a booking.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
            cursor.execute(upsert, [key, expires_at])
            return cursor.fetchone()[0]
    with connection.cursor() as cursor:
        cursor.execute(upsert, [key, expires_at])
        return cursor.fetchone()[0]


def counters_prune(*, now: datetime | None = None) -> int:
    """Delete the counts of windows that have ended (the worker runs it)."""
    now = now or timezone.now()
    deleted, _counts = RateCounter.objects.filter(
        expires_at__lt=now - timedelta(minutes=1)
    ).delete()
    return deleted
