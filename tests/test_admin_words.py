"""The admin, for the hospital's technical staff, speaks French (and English) in the hospital's
words: every model, every field it shows, every column and every action has its French name;
and it shows times in Europe/Paris, never in UTC."""

from datetime import UTC

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.test import RequestFactory
from django.utils import timezone, translation
from django.utils.functional import Promise

from creneau.booking.models import PARIS
from creneau.booking.services import appointment_book

# Words written the same in both languages.
SAME = {
    *("agent", "agents", "code", "etag", "id", "latitude", "longitude", "logo", "message"),
    *("messages", "organisation", "organisations", "page", "places", "version"),
}


def _missing(where: str, text) -> str | None:
    if not isinstance(text, Promise):
        return f"{where}: {text!r} is not translatable"
    with translation.override("en"):
        english = str(text)
    with translation.override("fr"):
        french = str(text)
    if french == english and english.lower() not in SAME:
        return f"{where}: {english!r} has no French"
    return None


def test_every_name_the_admin_shows_has_its_french(db):
    request = RequestFactory().get("/admin/", HTTP_HOST="localhost")
    request.user = get_user_model()(is_superuser=True, is_staff=True)
    missing = []
    for model, model_admin in admin.site._registry.items():
        if not model.__module__.startswith("creneau."):
            continue
        name = f"{model._meta.app_label}.{model.__name__}"
        missing += [_missing(name, model._meta.verbose_name)]
        missing += [_missing(name, model._meta.verbose_name_plural)]
        shown = {
            *model_admin.get_list_display(request),
            *model_admin.get_readonly_fields(request),
            *model_admin.get_fields(request),
            *(f.split("__")[0] for f in model_admin.get_list_filter(request) if isinstance(f, str)),
        }
        for field_name in shown - {"__str__", "id"}:
            if not isinstance(field_name, str):
                continue
            try:
                field = model._meta.get_field(field_name)
            except FieldDoesNotExist:
                column = getattr(model_admin, field_name, None) or getattr(model, field_name, None)
                description = getattr(column, "short_description", None)
                if description is None and isinstance(column, property):
                    description = getattr(column.fget, "short_description", None)
                if description is None:  # a form's own field: its label
                    form = model_admin.get_form(request)
                    description = form.base_fields[field_name].label
                missing.append(_missing(f"{name}.{field_name}", description))
            else:
                if hasattr(field, "verbose_name"):
                    missing.append(_missing(f"{name}.{field_name}", field.verbose_name))
        for _function, action, description in model_admin.get_actions(request).values():
            missing.append(_missing(f"{name} action {action}", description))
    missing = [m for m in missing if m]
    assert not missing, "\n".join(missing)


def test_the_admin_shows_times_in_paris(
    client, hospital_admin, open_agenda, pitie_neurosurgeon, public_scope, patient
):
    from creneau.agenda.models import Slot

    open_agenda(pitie_neurosurgeon)
    slot = Slot.objects.filter(practitioner_role=pitie_neurosurgeon).order_by("starts_at")[5]
    booked = appointment_book(scope=public_scope, patient=patient, slot=slot).appointment
    client.force_login(hospital_admin)
    local = timezone.localtime(booked.starts_at, PARIS)
    utc = timezone.localtime(booked.starts_at, UTC)
    assert local.hour != utc.hour

    page = client.get(f"/admin/booking/appointment/{booked.pk}/change/").content.decode()

    assert f"{local:%H:%M}" in page and "Début" in page
    assert f"{utc:%H:%M}" not in page and "UTC" not in page and f"{utc:%H:%M}Z" not in page
    listing = client.get("/admin/booking/appointment/").content.decode()
    assert f"{local:%H:%M}" in listing and f"{utc:%H:%M}Z" not in listing
