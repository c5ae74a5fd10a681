"""The staff pages carry the hospital's branding: its name, logo, colour and font."""

from django import template
from django.urls import reverse

from creneau.directory.models import Organisation
from creneau.web.site import branding_css_url

register = template.Library()


@register.simple_tag
def staff_brand(scope=None) -> dict:
    """The organisation of the member's first access, or the hub's before signing in."""
    organisation = scope.accesses[0].organisation if scope else None
    if organisation is None:
        organisation = Organisation.objects.filter(runs_hub=True).first()
    if organisation is None:
        return {}
    css = branding_css_url(
        "organisation", organisation, organisation.brand_colour, organisation.font
    )
    logo = None
    if organisation.logo:
        logo = reverse("branding_logo", args=["organisation", organisation.public_id])
    return {"name": organisation.short_name or organisation.name, "css": css, "logo": logo}
