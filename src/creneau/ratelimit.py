"""Counting in fixed windows of time, in Django's cache: the one counter behind the per-client
limits (booking.throttling) and operators' requests per minute (channels.queries)."""

import time

from django.core.cache import cache


def count_in_window(name: str, window: int) -> tuple[int, int]:
    """Count one more event under ``name`` in the current window of ``window`` seconds: the
    count so far, and the seconds until the window ends."""
    now = int(time.time())
    started = now // window * window
    key = f"{name}:{started}"
    cache.add(key, 0, timeout=window + 5)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=window + 5)
        count = 1
    return count, started + window - now
