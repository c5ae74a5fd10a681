from django import template

from creneau.booking.patients import contact_plan, phone_display

register = template.Library()


@register.filter
def phone(value: str) -> str:
    """A stored (E.164) number as people write it in its country."""
    return phone_display(value)


@register.simple_tag
def messages_plan(record) -> list[str]:
    """What the patient of this appointment (or waiting-list entry) is sent, and where."""
    return contact_plan(record.patient_phone, record.patient_email)


@register.simple_tag(takes_context=True)
def purl(context, name: str, *args, **query) -> str:
    """A link to another page of the same patient flow (the hub's site or the same widget)."""
    return context["site"].url(name, *args, **query)
