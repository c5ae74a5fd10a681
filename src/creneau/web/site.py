"""What every patient page needs to know about where it is served: the channel and its
perimeter, whether it is the hub's own site or a widget framed by a hospital page, the branding,
and how to link to the other pages of the same flow.

Patient pages set no cookie and need none: a widget framed by another site may not keep cookies
at all (third-party cookies are blocked). What a page must carry (a hold, an appointment's manage
token) travels in the page itself. Without cookies there is no ambient authority to forge, so
these views do not use Django's cookie-based CSRF check; a POST is still refused unless the
browser says it came from a page of this hub (``Sec-Fetch-Site``/``Origin``).
"""

import functools
import hashlib
from dataclasses import dataclass, field
from urllib.parse import urlencode

from csp.constants import NONE
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse, translate_url
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from creneau.booking import waiting_room
from creneau.booking.throttling import Throttled
from creneau.channels.models import PLATFORM_KINDS, Channel
from creneau.channels.queries import ChannelScope, ChannelUnavailable, channel_scope_for_key
from creneau.cross_origin import came_from_here
from creneau.directory.branding import font_stack
from creneau.errors import DomainError
from creneau.ledger.services import refusal_append

SITE, EMBED, PLATFORM = "site", "embed", "platform"
# The pages that read or take slots for a patient: behind the waiting room in a crowd.
TAKE_SLOTS = {"search", "practitioner", "hold", "book", "move", "platform_link"}
# The pages a platform's booking link leads through (web.platform_urls); any other page of the
# flow is the public site's.
PLATFORM_PAGES = {
    "platform_link",
    "book",
    "release",
    "manage",
    "calendar",
    "cancel",
}


def branding_css_url(kind: str, owner, colour: str, font: str) -> str | None:
    """The stylesheet of an organisation's or a widget's colour and font, its address changed
    with them (browsers keep it a day); None when there is neither."""
    if not (colour or font):
        return None
    version = hashlib.sha256(f"{colour}|{font}".encode()).hexdigest()[:10]
    return f"{reverse('branding_css', args=[kind, owner.public_id])}?v={version}"


@dataclass
class PatientSite:
    request: HttpRequest
    scope: ChannelScope
    namespace: str
    channel_key: str | None = None
    languages: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def embed(self) -> bool:
        return self.namespace == EMBED

    @property
    def channel(self) -> Channel:
        return self.scope.channel

    @property
    def organisation(self):
        return self.scope.channel.organisation

    def url(self, name: str, *args, **query) -> str:
        # The widget's (or platform's) key is the first part of each of its addresses.
        namespace = self.namespace
        if namespace == PLATFORM and name not in PLATFORM_PAGES:
            namespace = SITE
        args = (self.channel_key, *args) if namespace in (EMBED, PLATFORM) else args
        path = reverse(f"{namespace}:{name}", args=args)
        if self.embed and "ticket" not in query:
            # A widget keeps no cookie: its waiting-room ticket goes from page to page.
            query["ticket"] = waiting_room.carried(self.request)
        query = {key: value for key, value in query.items() if value not in (None, "")}
        return f"{path}?{urlencode(query)}" if query else path

    def absolute(self, url: str) -> str:
        return self.request.build_absolute_uri(url)

    @property
    def branding(self) -> dict:
        """The widget's own settings first, then its organisation's."""
        owners = [self.channel, self.organisation] if self.embed else [self.organisation]
        colour = next((o.brand_colour for o in owners if o.brand_colour), "")
        font = next((o.font for o in owners if o.font), "")
        logo_owner = next((o for o in owners if o.logo), None)
        return {"colour": colour, "font": font_stack(font) if font else "", "logo": logo_owner}

    @property
    def branding_css_url(self) -> str | None:
        owner = self.channel if self.embed else self.organisation
        kind = "channel" if self.embed else "organisation"
        brand = self.branding
        return branding_css_url(kind, owner, brand["colour"], brand["font"])

    @property
    def logo_url(self) -> str | None:
        owner = self.branding["logo"]
        if owner is None:
            return None
        kind = "channel" if isinstance(owner, Channel) else "organisation"
        return reverse("branding_logo", args=[kind, owner.public_id])

    @property
    def embed_origins(self) -> list[str]:
        return self.channel.origins if self.embed else []


def _scope_for(namespace: str, channel_key: str | None) -> ChannelScope:
    if namespace == SITE:
        return channel_scope_for_key(None)
    scope = channel_scope_for_key(channel_key)
    if namespace == PLATFORM:
        operator = scope.operator
        if operator is None or operator.kind not in PLATFORM_KINDS:
            raise ChannelUnavailable("not_a_platform", _("This channel is not a platform's."))
        return scope
    if scope.channel.kind != Channel.Kind.EMBED:
        raise ChannelUnavailable("not_a_widget", _("This channel is not an embeddable widget."))
    return scope


def error_page(
    request: HttpRequest,
    site: PatientSite | None,
    error: DomainError,
    *,
    back: str | None = None,
    back_label: str | None = None,
) -> HttpResponse:
    refusal_append(error)  # an out-of-perimeter attempt is recorded, after its rollback
    titles = {
        404: _("Link not valid"),
        409: _("This slot has just been taken"),
        410: _("Too late"),
        429: _("Too many attempts"),
        403: _("Not available here"),
    }
    # Refusals that are not about a slot being taken, whatever their status.
    by_code = {
        "not_movable": _("This appointment cannot be moved"),
        "not_cancellable": _("This appointment cannot be cancelled"),
    }
    response = render(
        request,
        "web/error.html",
        {
            "site": site,
            "organisation": site.organisation if site else None,
            "title": by_code.get(error.code) or titles.get(error.status, _("This did not work")),
            "message": error.message,
            "code": error.code,
            "back": back or (site.url("home") if site else "/"),
            "back_label": back_label or _("Back to the search"),
        },
        status=error.status,
    )
    if isinstance(error, Throttled):
        response["Retry-After"] = str(max(1, error.retry_after))
    return response


def _frame_policy(response: HttpResponse, site: PatientSite | None) -> HttpResponse:
    """Only a widget's pages may be framed, and only by the origins its channel lists."""
    if site is not None and site.embed:
        response.xframe_options_exempt = True
        response._csp_replace = {"frame-ancestors": site.embed_origins or [NONE]}
    response["Cache-Control"] = "no-store"
    return response


def patient_page(view):
    """Resolve the channel for a patient view, turn refusals into clear pages, and apply the
    framing and caching policy. The view receives ``site`` instead of the channel key."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, channel_key: str | None = None, **kwargs):
        namespace = request.resolver_match.namespace or SITE
        site = None
        try:
            site = PatientSite(
                request=request,
                scope=_scope_for(namespace, channel_key),
                namespace=namespace,
                channel_key=channel_key,
            )
            site.languages = _language_links(request)
            if request.method == "POST" and not came_from_here(request):
                raise DomainError(
                    "cross_site_post",
                    _("This form was sent from another site. Please use the hospital's page."),
                    status=403,
                )
            page = request.resolver_match.url_name
            if page in TAKE_SLOTS:
                waiting_room.admit(request, site.scope, search=page == "search")
            response = view(request, site, *args, **kwargs)
        except waiting_room.Waiting as waiting:
            response = waiting_page(request, site, waiting)
        except DomainError as error:
            response = error_page(request, site, error)
        return _frame_policy(response, site)

    return csrf_exempt(wrapper)


def waiting_page(request: HttpRequest, site: "PatientSite", waiting) -> HttpResponse:
    """The waiting room's page: the patient's place, and the same search again when their turn
    comes (the ticket in the address: a widget keeps no cookie)."""
    query = request.GET.copy()
    query["ticket"] = waiting.ticket
    path = request.path
    if request.method == "POST" and request.resolver_match.url_name == "hold":
        path = site.url("home")  # a hold is asked again from the pages, not by reloading
    response = render(
        request,
        "web/waiting_room.html",
        {
            "site": site,
            "organisation": site.organisation,
            "waiting": waiting,
            "again": f"{path}?{query.urlencode()}",
        },
        # A page to read is shown as it comes; a hold or a booking not made is refused.
        status=429 if request.method == "POST" else 200,
    )
    response["Retry-After"] = str(waiting.retry_after)
    return response


def _language_links(request: HttpRequest) -> list[tuple[str, str, str]]:
    """(code, name, url) for each language: the same page in that language, by its URL (a
    cookie would not survive inside a widget)."""
    current = get_language()
    links = []
    for code, name in settings.LANGUAGES:
        url = translate_url(request.get_full_path(), code)
        links.append((code, name, url if code != current else ""))
    return links
