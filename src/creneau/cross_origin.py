"""What the JSON API accepts from browsers: no write from another site, JSON bodies only, and
CORS answered deliberately.

A patient's browser carries no credential to the API (no cookie, no token), yet a hold or a
booking made from it counts against the patient's own address: a page of any site could make
its visitors' browsers hold slots (a "simple" cross-site POST needs no preflight). So a write
is refused unless the browser says it comes from a page of this hub (Fetch Metadata, then
Origin), as the patient pages' forms are. Operators' and partners' software sends a bearer
token: a browser cannot send one cross-site without a preflight, which is refused, so those
calls keep working whatever their headers.

Reading is open to a widget's allowed origins (the channel's ``origins``), and to nobody else:
the answer carries ``Access-Control-Allow-Origin`` for them only.
"""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _

from creneau.channels.models import Channel
from creneau.channels.queries import CHANNEL_HEADER, CHANNEL_PARAMETER

API_PREFIX = "/api/"
READS = ("GET", "HEAD")
JSON_TYPES = ("application/json",)
# What a widget's script may send when it reads: the channel header, the language.
ALLOWED_HEADERS = f"{CHANNEL_HEADER}, Accept-Language"


def own_origin(request: HttpRequest) -> str:
    return f"{request.scheme}://{request.get_host()}"


def came_from_here(request: HttpRequest) -> bool:
    """Whether the browser says a request was sent by a page of this hub (Fetch Metadata,
    then Origin). A form or script on another site cannot pass, even inside a widget's frame;
    a client that is not a browser sends neither header."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        return fetch_site in {"same-origin", "none"}
    origin = request.headers.get("Origin")
    return origin is None or origin == own_origin(request)


def _refuse(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"code": code, "message": str(message)}, status=status)


def _widget_origin(request: HttpRequest) -> str | None:
    """The request's Origin when it is another site listed by the widget channel the request
    names; None otherwise."""
    origin = request.headers.get("Origin")
    if not origin or origin == own_origin(request):
        return None
    key = request.GET.get(CHANNEL_PARAMETER) or request.headers.get(CHANNEL_HEADER)
    if not key or "\x00" in key:
        return None
    channel = (
        Channel.objects.filter(key=key, kind=Channel.Kind.EMBED, is_active=True)
        .only("allowed_origins")
        .first()
    )
    return origin if channel is not None and origin in channel.origins else None


class ApiBrowserPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path_info.startswith(API_PREFIX):
            return self.get_response(request)
        if request.method == "OPTIONS":
            return self._preflight(request)
        if request.method not in READS:
            refused = self._check_write(request)
            if refused is not None:
                return refused
        response = self.get_response(request)
        if request.headers.get("Origin"):
            patch_vary_headers(response, ("Origin",))
            if request.method in READS and (origin := _widget_origin(request)):
                response["Access-Control-Allow-Origin"] = origin
        return response

    def _check_write(self, request: HttpRequest) -> HttpResponse | None:
        bearer = request.headers.get("Authorization", "").lower().startswith("bearer ")
        if not bearer and not came_from_here(request):
            return _refuse(
                403,
                "cross_site_request",
                _("This API does not accept writes sent by another site's page."),
            )
        has_body = int(request.META.get("CONTENT_LENGTH") or 0) > 0
        if has_body or "HTTP_TRANSFER_ENCODING" in request.META:
            content_type = request.content_type or ""
            if content_type not in JSON_TYPES and not content_type.endswith("+json"):
                return _refuse(
                    415,
                    "unsupported_media_type",
                    _("Send the request's body as JSON (Content-Type: application/json)."),
                )
        return None

    def _preflight(self, request: HttpRequest) -> HttpResponse:
        """Only a widget's allowed origins, and only to read."""
        origin = _widget_origin(request)
        wanted = request.headers.get("Access-Control-Request-Method", "")
        if origin is None or wanted not in READS:
            response = HttpResponse(status=403)
        else:
            response = HttpResponse(status=204)
            response["Access-Control-Allow-Origin"] = origin
            response["Access-Control-Allow-Methods"] = ", ".join(READS)
            response["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            response["Access-Control-Max-Age"] = "600"
        patch_vary_headers(response, ("Origin",))
        return response
