"""What a hospital's web page loads from the hub: ``embed.js``, which creates the widget's
frame, and the branding (colours, font, logo) that patient pages and widgets use."""

from pathlib import Path

from django.contrib.staticfiles import finders
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_GET

from creneau.channels.models import Channel
from creneau.directory.branding import font_stack
from creneau.directory.models import Organisation

LOGO_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "svg": "image/svg+xml",
}


@require_GET
def embed_js(request: HttpRequest) -> HttpResponse:
    """The loader pasted into hospital pages: served from the hub root so that the snippet
    never changes, and readable by any site (it carries no data)."""
    path = finders.find("creneau/embed.js")
    if path is None:
        raise Http404
    response = HttpResponse(Path(path).read_bytes(), content_type="text/javascript; charset=utf-8")
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    patch_cache_control(response, public=True, max_age=3600)
    return response


def _owner(kind: str, public_id: str) -> Organisation | Channel:
    model = {"organisation": Organisation, "channel": Channel}.get(kind)
    owner = model.objects.filter(public_id=public_id).first() if model else None
    if owner is None:
        raise Http404
    return owner


@require_GET
def branding_css(request: HttpRequest, kind: str, public_id: str) -> HttpResponse:
    """The custom properties that restyle Créneau's stylesheet for one organisation or widget
    (a stylesheet, not inline style: the pages' policy forbids inline style)."""
    owner = _owner(kind, public_id)
    rules = []
    if owner.brand_colour:
        rules.append(f"--brand-colour: {owner.brand_colour};")
    if owner.font:
        rules.append(f"--font: {font_stack(owner.font)};")
    response = HttpResponse(
        ":root { " + " ".join(rules) + " }\n", content_type="text/css; charset=utf-8"
    )
    patch_cache_control(response, public=True, max_age=86400)
    return response


@require_GET
def branding_logo(request: HttpRequest, kind: str, public_id: str) -> HttpResponse:
    owner = _owner(kind, public_id)
    if not owner.logo:
        raise Http404
    extension = owner.logo.name.rsplit(".", 1)[-1].lower()
    try:
        handle = owner.logo.open("rb")
    except FileNotFoundError:
        raise Http404 from None
    response = FileResponse(
        handle, content_type=LOGO_TYPES.get(extension, "application/octet-stream")
    )
    # An SVG opened on its own must not run anything in the hub's origin.
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    patch_cache_control(response, public=True, max_age=3600)
    return response
