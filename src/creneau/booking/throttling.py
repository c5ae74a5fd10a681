"""Per-client limits on the writes anyone can make without an account: holds, bookings and
waiting-list requests. Without them one script could hold every slot of a hospital, ten
minutes at a time. Counted in Django's cache (per process by default; a shared cache in
production) over fixed windows; no client address is stored anywhere else."""

import hashlib
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from django.utils.translation import gettext as _

from creneau.errors import DomainError


class Throttled(DomainError):
    status = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "too_many_requests",
            _("Too many attempts from this connection. Please try again in %(minutes)s minutes.")
            % {"minutes": max(1, round(retry_after / 60))},
        )
        self.retry_after = retry_after


def client_address(request: HttpRequest) -> str:
    """The client's address; behind the TLS proxy, the one that proxy appended last."""
    if settings.CRENEAU_BEHIND_PROXY:
        forwarded = request.headers.get("X-Forwarded-For", "")
        if forwarded:
            return forwarded.split(",")[-1].strip()
    return request.META.get("REMOTE_ADDR", "")


def throttle(request: HttpRequest, action: str) -> None:
    """Count one ``action`` for the request's client; refuse past the configured limit."""
    limit, window = settings.CRENEAU_RATE_LIMITS.get(action, (0, 0))
    if not limit:
        return
    started = int(time.time()) // window * window
    client = hashlib.sha256(client_address(request).encode()).hexdigest()[:24]
    key = f"throttle:{action}:{client}:{started}"
    cache.add(key, 0, timeout=window + 5)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=window + 5)
        count = 1
    if count > limit:
        raise Throttled(retry_after=started + window - int(time.time()))
