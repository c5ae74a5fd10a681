"""Patient pages, on the hub's own site and inside the widgets hospitals embed. Each view gets
its ``PatientSite`` (channel, perimeter, branding), loads through the booking app's queries and
access functions, calls one service, and renders or redirects."""

from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import Min
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from creneau.agenda.models import Slot
from creneau.booking import links, queries, services, waiting_room
from creneau.booking.calendar import appointment_ics
from creneau.booking.models import (
    Appointment,
    Hold,
    WaitingListEntry,
    WaitingListOffer,
    paris_midnight,
)
from creneau.booking.queries import PARIS, Near, SlotQuery, slots_search_queryset
from creneau.booking.services import BookingError
from creneau.booking.throttling import client_key, throttle, throttle_phone
from creneau.channels.queries import (
    establishments_in_scope,
    practitioners_in_scope,
    specialties_in_scope,
    visit_types_in_scope,
)
from creneau.dates import day_in_range
from creneau.directory.models import Establishment, Specialty, VisitType
from creneau.directory.text import fold
from creneau.errors import DomainError
from creneau.ledger.services import receipt, refusal_append
from creneau.web.forms import CancelForm, PatientForm, SearchForm, WaitingListForm
from creneau.web.site import PLATFORM, PatientSite, error_page, patient_page

RESULT_GROUPS = 10
SLOTS_PER_GROUP = 4


class Redirect(HttpResponseRedirect):
    status_code = 303  # after a POST, the browser GETs the next page


def _language() -> str:
    return "en" if (get_language() or "fr").startswith("en") else "fr"


# ---------------------------------------------------------------------------------------------
# Finding a slot


def _what_choices(site: PatientSite) -> tuple[list[Specialty], list[VisitType]]:
    specialties = list(specialties_in_scope(site.scope))
    visit_types = list(visit_types_in_scope(site.scope).filter(new_patients_allowed=True))
    return specialties, visit_types


def _matching_establishments(site: PatientSite, where: str) -> list[Establishment]:
    """Hospitals whose name, city or postcode matches what the patient typed, accents aside."""
    words = fold(where).split()
    found = []
    for place in establishments_in_scope(site.scope):
        haystack = fold(f"{place.name} {place.city} {place.postcode}")
        if all(word in haystack for word in words):
            found.append(place)
    return found


@dataclass
class ResultGroup:
    slots: list[Slot]
    distance: float | None = None

    @property
    def first(self) -> Slot:
        return self.slots[0]

    @property
    def several_visits(self) -> bool:
        return len({slot.visit_type_id for slot in self.slots}) > 1


def _page_number(raw: str | None) -> int:
    return int(raw) if raw and raw.isascii() and raw.isdecimal() and len(raw) < 6 else 1


def _page_url(request: HttpRequest, page: int) -> str:
    query = request.GET.copy()
    query["page"] = str(page)
    return f"{request.path}?{query.urlencode()}"


@patient_page
def home(request: HttpRequest, site: PatientSite) -> HttpResponse:
    specialties, visit_types = _what_choices(site)
    return render(
        request,
        "web/home.html",
        {
            "site": site,
            "organisation": site.organisation,
            "form": SearchForm(initial={"when": "soon"}),
            "specialties": specialties,
            "visit_types": visit_types,
            "establishments": list(establishments_in_scope(site.scope)),
        },
    )


@patient_page
def search(request: HttpRequest, site: PatientSite) -> HttpResponse:
    form = SearchForm(request.GET)
    specialties, visit_types = _what_choices(site)
    context = {
        "site": site,
        "organisation": site.organisation,
        "form": form,
        "specialties": specialties,
        "visit_types": visit_types,
        "searched": False,
    }
    if not form.is_valid():
        return render(request, "web/search.html", context, status=422)
    data = form.cleaned_data
    what = data["what"] or ""
    query: dict = {}
    if what.startswith("v:"):
        query["visit_type"] = next((v for v in visit_types if v.public_id == what[2:]), None)
    elif what.startswith("s:"):
        query["specialty"] = next((s for s in specialties if s.code == what[2:]), None)
    if not any(query.values()):
        form.add_error("what", _("Choose a specialty or a reason for the visit."))
        return render(request, "web/search.html", context, status=422)
    now = timezone.now()
    starts_after = None
    if data["when"] == "date":
        if data["date"] is None:
            form.add_error("date", _("Choose a date, or “As soon as possible”."))
            return render(request, "web/search.html", context, status=422)
        starts_after = paris_midnight(data["date"])
    near = None
    if data["latitude"] is not None and data["longitude"] is not None:
        near = Near(latitude=data["latitude"], longitude=data["longitude"])
    found, distances = slots_search_queryset(
        site.scope, SlotQuery(**query, starts_after=starts_after, near=near), now
    )
    places = None
    if data["where"]:
        places = _matching_establishments(site, data["where"])
        found = found.filter(establishment_id__in=[p.pk for p in places])
    # One card per practitioner and place (a practitioner of two hospitals has two addresses),
    # whatever the visit: each of its times names its visit when the card holds several. Every
    # practitioner found is counted and paged through.
    rows = list(
        found.order_by()
        .values("practitioner_role_id", "establishment_id")
        .annotate(first=Min("starts_at"))
    )
    if near:
        rows.sort(
            key=lambda r: (
                distances.get(r["establishment_id"]) is None,
                distances.get(r["establishment_id"]) or 0,
                r["first"],
                r["practitioner_role_id"],
            )
        )
    else:
        rows.sort(key=lambda r: (r["first"], r["practitioner_role_id"]))
    pages = max(1, -(-len(rows) // RESULT_GROUPS))
    page = min(_page_number(request.GET.get("page")), pages)
    waiting_room.searched(request, site.scope, first_page=page == 1, found=bool(rows))
    groups = []
    for row in rows[(page - 1) * RESULT_GROUPS : page * RESULT_GROUPS]:
        slots = list(
            found.filter(practitioner_role_id=row["practitioner_role_id"])[:SLOTS_PER_GROUP]
        )
        if slots:
            groups.append(ResultGroup(slots=slots, distance=distances.get(row["establishment_id"])))
    services.offer_record(
        scope=site.scope,
        slots=[slot for group in groups for slot in group.slots],
        query={"visit_type": query.get("visit_type"), "specialty": query.get("specialty")},
    )
    context.update(
        searched=True,
        groups=groups,
        found_count=len(rows),
        page=page,
        pages=pages,
        previous_page=_page_url(request, page - 1) if page > 1 else None,
        next_page=_page_url(request, page + 1) if page < pages else None,
        places=places,
        near=near is not None,
        waiting_list_url=site.url(
            "waiting_join",
            visit_type=query["visit_type"].public_id if query.get("visit_type") else None,
            specialty=query["specialty"].code if query.get("specialty") else None,
        ),
    )
    return render(request, "web/search.html", context)


def _week_start(raw: str | None) -> date | None:
    """The week asked for; one that cannot be read, or lies beyond the days the hub knows, is
    this week."""
    try:
        asked = date.fromisoformat(raw) if raw else None
    except ValueError:
        return None
    return asked if asked is not None and day_in_range(asked) else None


@patient_page
def practitioner(request: HttpRequest, site: PatientSite, practitioner_id: str) -> HttpResponse:
    person = practitioners_in_scope(site.scope, ident=practitioner_id).first()
    if person is None:
        raise DomainError("not_found", _("No practitioner matches this link here."), status=404)
    roles = person.visible_roles
    specialty_ids = {s.pk for role in roles for s in role.specialties.all()}
    visit_types = list(
        visit_types_in_scope(site.scope)
        .filter(specialty_id__in=specialty_ids)
        .filter(organisation_id__in={role.establishment.organisation_id for role in roles})
    )
    visit_type = next((v for v in visit_types if v.public_id == request.GET.get("visit")), None)
    week = _week(request, site, practitioner=person, visit_type=visit_type)
    return render(
        request,
        "web/practitioner.html",
        {
            "site": site,
            "organisation": site.organisation,
            "practitioner": person,
            "roles": roles,
            "visit_types": visit_types,
            "visit_type": visit_type,
            "week": week,
            **_week_links(
                site, week, "practitioner", person.public_id, visit=request.GET.get("visit")
            ),
            "action": site.url("hold"),
        },
    )


def _week(request: HttpRequest, site: PatientSite, **criteria):
    """The week asked for; without one, this week, or the first week with a free slot. What it
    shows is recorded in the ledger as an offer."""
    asked = _week_start(request.GET.get("week"))
    week = queries.practitioner_availability(site.scope, week_start=asked, **criteria)
    empty = not any(slots for _day, slots in week.days)
    if asked is None and empty and week.next_available is not None:
        first = timezone.localtime(week.next_available.starts_at, PARIS).date()
        week = queries.practitioner_availability(site.scope, week_start=first, **criteria)
    visit_type = criteria.get("visit_type")
    services.offer_record(
        scope=site.scope,
        slots=[slot for _day, slots in week.days for slot in slots],
        query={"practitioner": criteria["practitioner"], "visit_type": visit_type},
    )
    return week


def _week_links(site: PatientSite, week, name: str, *args, **query) -> dict:
    today = timezone.localdate(timezone.now(), PARIS)
    previous = week.week_start - timedelta(days=7)
    links = {
        "previous_week": site.url(name, *args, week=previous.isoformat(), **query)
        if week.week_start > today
        else None,
        "next_week": site.url(
            name, *args, week=(week.week_start + timedelta(days=7)).isoformat(), **query
        ),
        "jump_week": None,
        "has_slots": any(slots for _day, slots in week.days),
    }
    if week.next_available is not None:
        jump = timezone.localtime(week.next_available.starts_at, PARIS).date()
        links["jump_week"] = site.url(name, *args, week=jump.isoformat(), **query)
    return links


# ---------------------------------------------------------------------------------------------
# Holding and booking


@patient_page
def platform_link(request: HttpRequest, site: PatientSite, token: str) -> HttpResponse:
    """A platform's signed link to one slot: shown first, held on the visitor's confirmation
    (a link previewer that only reads the page keeps nothing), then the booking form. What the
    platform appended to the link (origin, regulator, source, referral) goes with the hold."""
    target = links.link_open(token, channel=site.channel)
    slot = queries.slot_by_id(target.slot)
    referral = links.referral_from(request.POST if request.method == "POST" else request.GET)
    if request.method == "POST":
        try:
            throttle(request, "hold")
            held = services.hold_create(
                scope=site.scope,
                slot=slot,
                client=client_key(request),
                referral=referral,
                until=target.expires_at,
            )
        except DomainError as error:
            if error.code not in ("slot_taken", "slot_unavailable"):
                raise
            return error_page(
                request, site, error, back=site.url("home"), back_label=_("Search other slots")
            )
        return Redirect(site.url("book", held.public_id))
    services.offer_record(
        scope=site.scope, slots=[slot], query={"practitioner": slot.practitioner}, via="link"
    )
    return render(
        request,
        "web/platform_link.html",
        {
            "site": site,
            "organisation": site.organisation,
            "slot": slot,
            "referral": referral,
            "platform": site.scope.operator,
            "token": token,
        },
    )


@patient_page
def hold(request: HttpRequest, site: PatientSite) -> HttpResponse:
    if request.method != "POST":
        return Redirect(site.url("home"))
    slot = queries.slot_by_id(request.POST.get("slot", ""))
    back = site.url("practitioner", slot.practitioner.public_id)
    try:
        throttle(request, "hold")
        held = services.hold_create(scope=site.scope, slot=slot, client=client_key(request))
    except DomainError as error:
        return error_page(request, site, error, back=back, back_label=_("Choose another slot"))
    return Redirect(site.url("book", held.public_id))


def _check_not_used(site: PatientSite, held: Hold) -> None:
    """The booking form is shown until the hold is used. A hold that expired while the patient
    typed is no reason to lose what they typed on the hub's own site or widget: the slot is
    held again if it is still free, and otherwise the nearest times are offered on the same
    form, their details kept. A platform's link gives one slot until the hold it opened lapses:
    past that, its form opens nothing."""
    if held.status == Hold.Status.CONSUMED:
        raise BookingError(
            "hold_used",
            _(
                "This slot has already been booked with this form. Look for the confirmation "
                "message, or book again."
            ),
            status=410,
        )
    if site.namespace == PLATFORM and not _is_live(held):
        raise BookingError(
            "hold_expired",
            _(
                "The time this slot was kept for you has passed. Open the booking link again "
                "from the platform where you found it."
            ),
            status=410,
        )


def _is_live(held: Hold) -> bool:
    return held.status == Hold.Status.ACTIVE and held.expires_at > timezone.now()


def _book_from_form(
    request: HttpRequest, site: PatientSite, held: Hold, chosen: str, patient
) -> services.Booked:
    """Through the hold while it lives, and only its slot. Once it has lapsed (on the hub's
    site or widget only, see ``_check_not_used``), the visitor gets what the site gives anyone:
    the same slot or another time of the same visit, held again under the visitor's own caps
    and booked through that hold, the lapsed one used up by the booking."""
    if _is_live(held):
        if chosen and chosen != held.slot.public_id:
            raise BookingError(
                "slot_not_held", _("This form books the slot kept for you."), status=409
            )
        return services.appointment_book(scope=site.scope, patient=patient, hold=held)
    _check_not_used(site, held)
    slot = held.slot
    if chosen and chosen != slot.public_id:
        slot = queries.slot_by_id(chosen)
        if slot.visit_type_id != held.slot.visit_type_id:
            raise BookingError(
                "visit_type_mismatch", _("Choose a time for the same visit."), status=422
            )
    throttle(request, "hold")
    fresh = services.hold_create(
        scope=site.scope, slot=slot, client=client_key(request), referral=held.referral
    )
    return services.appointment_book(scope=site.scope, patient=patient, hold=fresh, replaces=held)


def _nearest_times(site: PatientSite, slot) -> list:
    """The earliest free times of the same visit: with the same practitioner first."""
    same = queries.slots_search(
        site.scope, visit_type=slot.visit_type, practitioner=slot.practitioner, limit=6
    ).slots
    found = same or queries.slots_search(site.scope, visit_type=slot.visit_type, limit=6).slots
    services.offer_record(
        scope=site.scope,
        slots=found,
        query={"visit_type": slot.visit_type, "practitioner": slot.practitioner},
    )
    return found


@patient_page
def book(request: HttpRequest, site: PatientSite, hold_id: str) -> HttpResponse:
    held = queries.access_hold(scope=site.scope, public_id=hold_id)
    back = site.url("practitioner", held.slot.practitioner.public_id)
    try:
        _check_not_used(site, held)
    except DomainError as error:
        return error_page(request, site, error, back=back, back_label=_("Choose another slot"))
    form = PatientForm(request.POST or None)
    alternatives = None
    status = 200
    if request.method == "POST":
        status = 422
        patient = form.patient(_language())
        if patient is not None:
            try:
                throttle(request, "book")
                throttle_phone(patient.phone)
                booked = _book_from_form(request, site, held, request.POST.get("slot", ""), patient)
            except DomainError as error:
                # Other times are the site's to offer, never a platform link's (one slot).
                if site.namespace == PLATFORM or error.code not in (
                    "slot_taken",
                    "hold_expired",
                    "slot_unavailable",
                    "slot_taken_remotely",
                ):
                    return error_page(
                        request, site, error, back=back, back_label=_("Choose another slot")
                    )
                refusal_append(error)
                alternatives, status = _nearest_times(site, held.slot), 409
            else:
                return Redirect(
                    site.url(
                        "manage",
                        booked.appointment.public_id,
                        token=booked.manage_token,
                        done="booked",
                    )
                )
    remaining = max(0, int((held.expires_at - timezone.now()).total_seconds()))
    return render(
        request,
        "web/book.html",
        {
            "site": site,
            "organisation": site.organisation,
            "hold": held,
            "slot": held.slot,
            "form": form,
            "remaining": remaining,
            "expired": not _is_live(held),
            "one_slot": site.namespace == PLATFORM,
            "taken": alternatives is not None,
            "alternatives": alternatives or [],
            "back": back,
        },
        status=status,
    )


@patient_page
def release(request: HttpRequest, site: PatientSite, hold_id: str) -> HttpResponse:
    held = queries.access_hold(scope=site.scope, public_id=hold_id)
    if request.method == "POST" and held.status == Hold.Status.ACTIVE:
        services.hold_release(hold=held)
    return Redirect(site.url("practitioner", held.slot.practitioner.public_id))


# ---------------------------------------------------------------------------------------------
# Managing an appointment, from its link


def _token(request: HttpRequest) -> str:
    return request.POST.get("token") or request.GET.get("token") or ""


def _manage_link(site: PatientSite, appointment: Appointment, token: str) -> str:
    """The address that opens the appointment: what the patient keeps."""
    return site.absolute(site.url("manage", appointment.public_id, token=token))


def _appointment(request: HttpRequest, appointment_id: str) -> Appointment:
    return queries.access_appointment(public_id=appointment_id, token=_token(request))


@patient_page
def short_link(request: HttpRequest, site: PatientSite, token: str) -> HttpResponse:
    """The short address in an SMS (``/a/TOKEN/``): on to the appointment or the waiting-list
    request it opens."""
    found = queries.by_link_token(token)
    if isinstance(found, Appointment):
        return HttpResponseRedirect(site.url("manage", found.public_id, token=token))
    return HttpResponseRedirect(site.url("waiting_entry", found.public_id, token=token))


@patient_page
def manage(request: HttpRequest, site: PatientSite, appointment_id: str) -> HttpResponse:
    appointment = _appointment(request, appointment_id)
    token = _token(request)
    now = timezone.now()
    return render(
        request,
        "web/manage.html",
        {
            "site": site,
            "organisation": site.organisation,
            "appointment": appointment,
            "token": token,
            "done": request.GET.get("done"),
            "link": _manage_link(site, appointment, token),
            "can_change": appointment.status == Appointment.Status.BOOKED
            and appointment.starts_at > now,
            "cancel_form": CancelForm(),
            "calendar_url": site.url("calendar", appointment.public_id, token=token),
            "move_url": site.url("move", appointment.public_id, token=token),
            "receipt": receipt(appointment.ledger_entry) if appointment.ledger_entry else None,
        },
    )


@patient_page
def calendar(request: HttpRequest, site: PatientSite, appointment_id: str) -> HttpResponse:
    appointment = _appointment(request, appointment_id)
    link = _manage_link(site, appointment, _token(request))
    response = HttpResponse(
        appointment_ics(appointment, manage_url=link), content_type="text/calendar; charset=utf-8"
    )
    response["Content-Disposition"] = 'attachment; filename="rendez-vous.ics"'
    return response


@patient_page
def cancel(request: HttpRequest, site: PatientSite, appointment_id: str) -> HttpResponse:
    appointment = _appointment(request, appointment_id)
    token = _token(request)
    if request.method != "POST":
        return Redirect(site.url("manage", appointment.public_id, token=token))
    form = CancelForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    back = site.url("manage", appointment.public_id, token=token)
    try:
        services.appointment_cancel(
            appointment=appointment, channel_scope=site.scope, reason=reason
        )
    except DomainError as error:
        return error_page(request, site, error, back=back, back_label=_("Back to my appointment"))
    return Redirect(site.url("manage", appointment.public_id, token=token, done="cancelled"))


@patient_page
def move(request: HttpRequest, site: PatientSite, appointment_id: str) -> HttpResponse:
    appointment = _appointment(request, appointment_id)
    token = _token(request)
    back = site.url("manage", appointment.public_id, token=token)
    if request.method == "POST":
        try:
            slot = queries.slot_by_id(request.POST.get("slot", ""))
            services.appointment_reschedule(appointment=appointment, scope=site.scope, slot=slot)
        except DomainError as error:
            return error_page(
                request, site, error, back=back, back_label=_("Back to my appointment")
            )
        return Redirect(site.url("manage", appointment.public_id, token=token, done="moved"))
    if appointment.status != Appointment.Status.BOOKED:
        return error_page(
            request,
            site,
            BookingError(
                "not_movable",
                _("This appointment is cancelled: it cannot be moved. Book a new one instead."),
                status=410,
            ),
            back=site.url("home"),
            back_label=_("Book an appointment"),
        )
    if appointment.starts_at <= timezone.now():
        return error_page(
            request,
            site,
            BookingError("not_movable", _("This appointment can no longer be moved."), status=410),
            back=back,
            back_label=_("Back to my appointment"),
        )
    week = _week(
        request, site, practitioner=appointment.practitioner, visit_type=appointment.visit_type
    )
    # Earlier than the appointment only: a later time with someone else is no improvement.
    others = queries.slots_search(
        site.scope,
        visit_type=appointment.visit_type,
        starts_before=appointment.starts_at,
        limit=12,
    ).slots
    others = [slot for slot in others if slot.practitioner_id != appointment.practitioner_id][:6]
    services.offer_record(
        scope=site.scope, slots=others, query={"visit_type": appointment.visit_type}
    )
    return render(
        request,
        "web/move.html",
        {
            "site": site,
            "organisation": site.organisation,
            "appointment": appointment,
            "token": token,
            "week": week,
            **_week_links(site, week, "move", appointment.public_id, token=token),
            "others": others,
            "hidden": [("token", token)],
            "action": site.url("move", appointment.public_id),
            "back": back,
        },
    )


# ---------------------------------------------------------------------------------------------
# The waiting list


@patient_page
def waiting_join(request: HttpRequest, site: PatientSite) -> HttpResponse:
    choices = visit_types_in_scope(site.scope, specialty=request.GET.get("specialty") or None)
    choices = list(choices.filter(new_patients_allowed=True))
    form = WaitingListForm(
        request.POST or None, initial={"visit_type": request.GET.get("visit_type")}
    )
    form.fields["visit_type"].choices = [
        (v.public_id, f"{v.label} — {v.specialty.label}") for v in choices
    ]
    if request.method == "POST":
        patient = form.patient(_language())
        if patient is not None:
            chosen = next(v for v in choices if v.public_id == form.cleaned_data["visit_type"])
            before = paris_midnight(form.cleaned_data["before"])
            throttle(request, "wait")
            joined = services.waiting_list_join(
                scope=site.scope, visit_type=chosen, before=before, patient=patient
            )
            return Redirect(
                site.url(
                    "waiting_entry",
                    joined.entry.public_id,
                    token=joined.manage_token,
                    done="joined",
                )
            )
    return render(
        request,
        "web/waiting_join.html",
        {"site": site, "organisation": site.organisation, "form": form},
        status=422 if request.method == "POST" else 200,
    )


@patient_page
def waiting_entry(request: HttpRequest, site: PatientSite, entry_id: str) -> HttpResponse:
    entry = queries.access_waiting_list_entry(public_id=entry_id, token=_token(request))
    token = _token(request)
    here = site.url("waiting_entry", entry.public_id, token=token)
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "accept":
                booked = services.waiting_list_accept(entry=entry, scope=site.scope)
                return Redirect(
                    site.url(
                        "manage",
                        booked.appointment.public_id,
                        token=booked.manage_token,
                        done="booked",
                    )
                )
            if action == "decline":
                services.waiting_list_decline(entry=entry)
            elif action == "cancel":
                services.waiting_list_cancel(entry=entry)
        except DomainError as error:
            return error_page(request, site, error, back=here, back_label=_("Back to my request"))
        return Redirect(here)
    offer = (
        entry.offers.filter(status=WaitingListOffer.Status.PENDING, expires_at__gt=timezone.now())
        .select_related(
            "hold__slot__practitioner", "hold__slot__establishment", "hold__slot__visit_type"
        )
        .first()
    )
    return render(
        request,
        "web/waiting_entry.html",
        {
            "site": site,
            "organisation": site.organisation,
            "entry": entry,
            "offer": offer,
            "token": token,
            "done": request.GET.get("done"),
            "link": site.absolute(here),
            "waiting": entry.status
            in {WaitingListEntry.Status.WAITING, WaitingListEntry.Status.OFFERED},
        },
    )


# ---------------------------------------------------------------------------------------------
# Errors outside the patient views


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"code": "not_found", "message": _("No such address.")}, status=404)
    return render(
        request,
        "web/error.html",
        {"title": _("Page not found"), "message": _("This address leads nowhere."), "back": "/"},
        status=404,
    )


def server_error(request: HttpRequest) -> HttpResponse:
    message = _("Something went wrong on our side. Please try again in a moment.")
    if _wants_json(request):
        return JsonResponse({"code": "server_error", "message": message}, status=500)
    return render(
        request,
        "web/error.html",
        {"title": _("Server error"), "message": message, "back": "/"},
        status=500,
    )
