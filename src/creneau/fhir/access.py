"""Who calls the FHIR server, and so through which channel it answers.

In order: an OAuth2 bearer token (a platform's or an operator's API client, bound to its
contract); the client certificate a platform presented to the TLS proxy, whose subject the proxy
passes in ``CRENEAU_CLIENT_CERT_HEADER`` (believed only from CRENEAU_TRUSTED_PROXIES, and mapped
to a platform in the admin: the SAS authenticates this way, STANDARDS.md §1); otherwise a
widget's ``?channel=KEY`` or the hub's public site, as the JSON API does."""

from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import gettext as _

from creneau.booking.throttling import from_trusted_proxy
from creneau.channels.models import Platform
from creneau.channels.queries import (
    ChannelScope,
    ChannelUnavailable,
    channel_scope_for_contract,
    channel_scope_for_request,
)


def certificate_subject(request: HttpRequest) -> str | None:
    """The client certificate's subject as the TLS proxy passed it; None when the request did
    not come through a trusted proxy or carries no such header (a client cannot set it
    itself: the proxy overwrites it, and nobody else is believed)."""
    header = settings.CRENEAU_CLIENT_CERT_HEADER
    subject = request.headers.get(header, "").strip() if header else ""
    if not subject or not from_trusted_proxy(request):
        return None
    return subject


def fhir_scope(request: HttpRequest) -> ChannelScope:
    cached = getattr(request, "_creneau_scope", None)
    if cached is not None:
        return cached
    subject = certificate_subject(request)
    if subject is None or request.headers.get("Authorization"):
        return channel_scope_for_request(request)
    platform = (
        Platform.objects.select_related(
            "contract__operator", "contract__channel__perimeter", "contract__channel__organisation"
        )
        .filter(certificate_subject=subject)
        .first()
    )
    if platform is None:
        raise ChannelUnavailable(
            "certificate_unknown",
            _("No platform is registered with this client certificate."),
            status=403,
        )
    scope = channel_scope_for_contract(platform.contract)
    request._creneau_scope = scope
    return scope
