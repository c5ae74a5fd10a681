"""Per-client limits on the writes anyone can make without an account: holds, bookings and
waiting-list requests. Without them one script could hold every slot of a hospital, ten
minutes at a time. Counted over fixed windows where every process counts (creneau.ratelimit),
as keyed hashes: no client address is stored anywhere."""

import ipaddress

from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import gettext as _

from creneau.errors import DomainError
from creneau.ratelimit import count_in_window
from creneau.sealing import keyed_hash


class Throttled(DomainError):
    status = 429

    def __init__(self, retry_after: int, *, per_phone: bool = False) -> None:
        minutes = max(1, round(retry_after / 60))
        if per_phone:
            message = _(
                "Too many bookings for this phone number. Please try again in %(minutes)s "
                "minutes, or call the hospital."
            )
        else:
            message = _(
                "Too many attempts from this connection. Please try again in %(minutes)s minutes."
            )
        super().__init__("too_many_requests", message % {"minutes": minutes})
        self.retry_after = retry_after


def client_address(request: HttpRequest) -> str:
    """The client's address: the peer's, unless the peer is one of CRENEAU_TRUSTED_PROXIES;
    then the last address of X-Forwarded-For that no trusted proxy added (each proxy appends
    the address it received from, so anything left of the first untrusted one is the client's
    own to invent)."""
    address = request.META.get("REMOTE_ADDR", "")
    trusted = settings.CRENEAU_TRUSTED_PROXIES
    if not trusted or not _is_trusted(address, trusted):
        return address
    for hop in reversed(request.headers.get("X-Forwarded-For", "").split(",")):
        hop = hop.strip()
        if not hop:
            continue
        if not _is_trusted(hop, trusted):
            return hop
        address = hop
    return address


def from_trusted_proxy(request: HttpRequest) -> bool:
    """Whether the request's peer is one of CRENEAU_TRUSTED_PROXIES."""
    trusted = settings.CRENEAU_TRUSTED_PROXIES
    return bool(trusted) and _is_trusted(request.META.get("REMOTE_ADDR", ""), trusted)


def _is_trusted(address: str, trusted) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_key(request: HttpRequest) -> str:
    """The client address as a short keyed hash: what limits count, never the address itself."""
    return _keyed(client_address(request))


def _keyed(value: str) -> str:
    return keyed_hash(value, 24)


def throttle(request: HttpRequest, action: str, subject: str = "") -> None:
    """Count one ``action`` for the request's client (and ``subject``, such as the account a
    sign-in names: colleagues behind one address each have their own count); refuse past the
    configured limit."""
    who = client_key(request)
    if subject:
        who += _keyed(subject)
    _count(action, who)


def throttle_phone(phone: str, action: str = "book_phone") -> None:
    """Count one ``action`` for a patient's phone number (E.164), from wherever it comes.
    A person without a phone (booked by staff) is counted by nothing here."""
    if not phone:
        return
    _count(action, _keyed(phone), per_phone=True)


def _count(action: str, who: str, *, per_phone: bool = False) -> None:
    limit, window = settings.CRENEAU_RATE_LIMITS.get(action, (0, 0))
    if not limit:
        return
    count, retry_after = count_in_window(f"throttle:{action}:{who}", window)
    if count > limit:
        raise Throttled(retry_after=retry_after, per_phone=per_phone)
