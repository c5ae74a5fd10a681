from django import template

register = template.Library()


@register.simple_tag(takes_context=True)
def purl(context, name: str, *args, **query) -> str:
    """A link to another page of the same patient flow (the hub's site or the same widget)."""
    return context["site"].url(name, *args, **query)
