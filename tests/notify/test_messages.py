"""Messages to patients, end to end in one process: queued with the booking, sent by the worker's
own code to a real SMTP server and a real HTTP gateway on loopback, retried, given up, never sent
late. The worker killed mid-send is tests/notify/test_worker.py."""

import json
import re
from datetime import UTC, datetime, timedelta
from unittest.mock import patch

import icalendar
import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from creneau.agenda.models import Slot
from creneau.booking.models import PARIS, Appointment, WaitingListEntry, WaitingListOffer
from creneau.booking.patients import PatientDetails
from creneau.booking.services import (
    appointment_book,
    appointment_cancel,
    appointment_reschedule,
    waiting_list_join,
)
from creneau.notify.models import Message
from creneau.notify.services import (
    appointment_messages_queue,
    message_deliver,
    message_resend,
    messages_sweep,
)
from creneau.notify.texts import render, sms_segments
from creneau.operations.jobs import periodic_enqueue_due
from creneau.operations.models import ScheduledJob
from tests.conftest import NOW

pytestmark = pytest.mark.django_db


def work() -> None:
    """What a worker does with the jobs ready now (periodic ones aside): the worker's own loop,
    in this process. Between jobs it recycles its database connection, which would end the
    test's transaction on PostgreSQL; here the connection is kept."""
    with patch("django_tasks_db.management.commands.db_worker.close_old_connections"):
        call_command("worker", batch=True, no_schedule=True, verbosity=0)


@pytest.fixture
def slots(pitie_neurosurgeon, open_agenda):
    open_agenda(pitie_neurosurgeon)
    return list(
        Slot.objects.filter(
            practitioner_role=pitie_neurosurgeon, bookable_until__gt=NOW, starts_at__gt=NOW
        ).order_by("starts_at")
    )


def slot_on(slots, local_day: str) -> Slot:
    """The first slot of a day (YYYY-MM-DD in Paris)."""
    from creneau.booking.queries import PARIS

    return next(s for s in slots if s.starts_at.astimezone(PARIS).date().isoformat() == local_day)


def sms(gateway) -> list[str]:
    return [request["body"]["text"] for request in gateway.requests]


def test_a_booking_queues_its_messages_in_its_own_transaction(slots, public_scope, patient, clock):
    with pytest.raises(RuntimeError), transaction.atomic():
        appointment_book(scope=public_scope, slot=slots[0], patient=patient)
        raise RuntimeError("the request failed after the booking")
    # A rolled-back booking leaves no message and no job.
    assert Message.objects.count() == 0 and DBTaskResult.objects.count() == 0

    booked = appointment_book(scope=public_scope, slot=slots[-1], patient=patient).appointment
    kinds = sorted(booked.messages.values_list("kind", "medium"))
    assert kinds == [
        ("confirmation", "email"),
        ("confirmation", "sms"),
        ("reminder", "email"),
        ("reminder", "sms"),
    ]
    # One job for the messages due together, in the same commit; the reminders' waits.
    assert DBTaskResult.objects.count() == 2
    assert DBTaskResult.objects.ready().count() == 1


def test_confirmation_move_and_cancellation_reach_the_patient_by_sms_and_email(
    slots, public_scope, patient, clock, mailbox, gateway
):
    booked = appointment_book(scope=public_scope, slot=slots[-1], patient=patient)
    appointment = booked.appointment
    work()
    assert len(mailbox.messages) == 1 and len(gateway.requests) == 1
    text = gateway.requests[0]["body"]
    assert text["to"] == "+33612345678" and text["sender"] == "APHP"
    assert gateway.requests[0]["auth"] == "Bearer gateway-secret"
    assert text["text"].startswith("RDV confirmé : ")
    # In the GSM alphabet (é and è are in it, ô and ê are not): 160 characters a segment.
    assert "Hopital de la Pitié-Salpetrière" in text["text"]
    # The link in the SMS opens the appointment.
    link = re.search(r"https?://\S+/a/([\w-]+)", text["text"])
    assert link[1] == booked.manage_token
    assert sms_segments(text["text"]) == 1

    invitation = calendar_of(mailbox.messages[0])
    event = invitation.walk("VEVENT")[0]
    assert invitation["METHOD"] == "REQUEST" and event["SEQUENCE"] == 0
    assert str(event.decoded("dtstart").tzinfo) == "Europe/Paris"
    assert invitation.walk("VTIMEZONE")[0]["TZID"] == "Europe/Paris"
    assert str(event["ORGANIZER"]).startswith("mailto:")
    assert str(event["ATTENDEE"]) == "mailto:camille.martin@example.org"
    uid = str(event["UID"])
    sent = Message.objects.get(appointment=appointment, kind="confirmation", medium="sms")
    assert (sent.status, sent.attempts, sent.provider_reference) == (
        "sent",
        1,
        sent.provider_reference,
    )
    assert sent.provider_reference.startswith("gw-")

    moved = appointment_reschedule(appointment=appointment, scope=public_scope, slot=slots[-2])
    work()
    assert "déplacé" in sms(gateway)[-1]
    update = calendar_of(mailbox.messages[-1])
    assert update["METHOD"] == "REQUEST"
    assert str(update.walk("VEVENT")[0]["UID"]) == uid
    assert update.walk("VEVENT")[0]["SEQUENCE"] == 1
    assert update.walk("VEVENT")[0].decoded("dtstart") == moved.starts_at

    appointment_cancel(appointment=moved, by_staff=True, reason="Praticien absent")
    work()
    assert sms(gateway)[-1].startswith("L'hopital a annulé votre RDV du "), sms(gateway)[-1]
    assert "Praticien absent" in sms(gateway)[-1]
    assert "/practitioners/" in sms(gateway)[-1]  # a link to book again
    cancel = calendar_of(mailbox.messages[-1])
    assert cancel["METHOD"] == "CANCEL" and cancel.walk("VEVENT")[0]["SEQUENCE"] == 2
    assert str(cancel.walk("VEVENT")[0]["UID"]) == uid
    # The reminders of the first and second times were given up, never sent.
    reminders = Message.objects.filter(appointment=appointment, kind="reminder")
    assert set(reminders.values_list("status", flat=True)) == {"given_up"}
    # Nothing was sent twice.
    assert len({r["key"] for r in gateway.requests}) == len(gateway.requests) == 3


def calendar_of(message) -> icalendar.Calendar:
    parts = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    assert len(parts) == 1
    assert parts[0].get_param("method") in ("REQUEST", "CANCEL")
    return icalendar.Calendar.from_ical(parts[0].get_content())


def test_a_failing_gateway_is_retried_with_growing_delays_then_given_up(
    slots, public_scope, patient, clock, gateway, settings
):
    settings.CRENEAU_MESSAGE_MAX_ATTEMPTS = 4
    gateway.script = [(503, 0), (503, 0), (200, 0)]
    appointment_book(scope=public_scope, slot=slots[-1], patient=patient)
    message = Message.objects.get(kind="confirmation", medium="sms")
    work()
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("failed", 1)
    assert message.answer.startswith("503")
    assert message.next_attempt_at == NOW + timedelta(minutes=1)
    assert messages_sweep() == 0  # not before its time
    clock.shift(timedelta(minutes=1))
    messages_sweep()
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("failed", 2)
    assert message.next_attempt_at == NOW + timedelta(minutes=1 + 5)
    clock.shift(timedelta(minutes=5))
    messages_sweep()
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("sent", 3)
    # Three requests, one key: the gateway could tell it was one message throughout.
    assert len(gateway.requests) == 3 and len({r["key"] for r in gateway.requests}) == 1

    # A gateway that refuses the message (4xx) is not asked again.
    gateway.script = [(400, 0)]
    appointment_book(scope=public_scope, slot=slots[-2], patient=patient)
    work()
    refused = Message.objects.filter(kind="confirmation", medium="sms").latest("pk")
    assert (refused.status, refused.attempts) == ("given_up", 1)
    assert refused.answer.startswith("400")

    # One that keeps failing is given up after the configured attempts.
    gateway.script = [(500, 0)] * 10
    appointment_book(scope=public_scope, slot=slots[-3], patient=patient)
    for _minutes in range(6):
        work()
        messages_sweep()
        clock.shift(timedelta(hours=4))
    failing = Message.objects.filter(kind="confirmation", medium="sms").latest("pk")
    assert (failing.status, failing.attempts) == ("given_up", 4)


def test_a_slow_gateway_counts_as_a_failure_and_is_retried(
    slots, public_scope, patient, clock, gateway, settings
):
    settings.CRENEAU_SMS_HTTP = {**settings.CRENEAU_SMS_HTTP, "timeout": 1}
    gateway.script = [(200, 2.5)]  # answers after the hub has stopped waiting
    appointment_book(scope=public_scope, slot=slots[-1], patient=patient)
    work()
    message = Message.objects.get(kind="confirmation", medium="sms")
    assert (message.status, message.attempts) == ("failed", 1)
    assert message.answer.startswith("no answer")
    clock.shift(timedelta(minutes=1))
    messages_sweep()
    message.refresh_from_db()
    assert message.status == "sent"
    # The gateway had accepted the slow request too: the same key kept it to one SMS.
    assert len(gateway.delivered) == 1


def test_reminders_fire_at_the_same_local_time_across_the_clock_change(
    slots, public_scope, patient, clock, gateway
):
    # Tuesday 30 March 2027, 09:00 in Paris (summer time, UTC+2); the clocks went forward on
    # Sunday 28 March. This visit type reminds 72 hours before, counted on the local clock:
    # Saturday 27 at 09:00 (winter time, UTC+1), which is 71 hours of elapsed time.
    slot = slot_on(slots, "2027-03-30")
    assert slot.starts_at == datetime(2027, 3, 30, 7, 0, tzinfo=UTC)
    slot.visit_type.reminder_hours = 72
    slot.visit_type.save()
    appointment_book(scope=public_scope, slot=slot, patient=patient)
    reminder = Message.objects.get(kind="reminder", medium="sms")
    assert reminder.send_after == datetime(2027, 3, 27, 8, 0, tzinfo=UTC)
    work()  # the confirmation
    clock.move_to(datetime(2027, 3, 27, 7, 59, tzinfo=UTC))
    work()
    messages_sweep()
    assert [t for t in sms(gateway) if t.startswith("Rappel")] == []
    clock.move_to(datetime(2027, 3, 27, 8, 0, tzinfo=UTC))
    work()
    reminder.refresh_from_db()
    assert reminder.status == "sent"
    assert sms(gateway)[-1].startswith("Rappel : RDV mardi 30/03 à 09:00")


def test_a_reminder_due_while_no_worker_ran_is_sent_late_only_while_useful(
    slots, public_scope, patient, clock, gateway
):
    later = slots[-1]
    early = [s for s in slots if s.starts_at < later.starts_at - timedelta(days=3)][-1]
    appointment_book(scope=public_scope, slot=early, patient=patient)
    appointment_book(scope=public_scope, slot=later, patient=patient)
    work()
    # No worker ran from before the first reminder's time until after its appointment began.
    clock.move_to(early.starts_at + timedelta(minutes=5))
    work()
    messages_sweep()
    missed = Message.objects.get(kind="reminder", medium="sms", appointment__slot=early)
    assert missed.status == "given_up" and "too late" in missed.answer
    # The other reminder's time came while the worker was down too; three hours before its
    # appointment it is still useful, so it goes.
    clock.move_to(later.starts_at - timedelta(hours=3))
    work()
    reminder = Message.objects.get(kind="reminder", medium="sms", appointment__slot=later)
    assert reminder.status == "sent"
    assert len([t for t in sms(gateway) if t.startswith("Rappel")]) == 1


def test_no_reminder_when_booked_inside_its_window(slots, public_scope, patient, clock):
    soon = next(s for s in slots if s.starts_at < NOW + timedelta(hours=48))
    booked = appointment_book(scope=public_scope, slot=soon, patient=patient).appointment
    assert not booked.messages.filter(kind="reminder").exists()
    # A visit type may ask for none at all, or for another delay.
    visit = booked.visit_type
    visit.reminder_hours = 0
    visit.save()
    later = appointment_book(scope=public_scope, slot=slots[-1], patient=patient).appointment
    assert not later.messages.filter(kind="reminder").exists()


def test_a_freed_slot_is_offered_by_sms_with_its_expiry_and_a_link(
    slots, public_scope, patient, other_patient, clock, gateway, pitie_neurosurgeon
):
    booked = appointment_book(scope=public_scope, slot=slots[0], patient=patient).appointment
    joined = waiting_list_join(
        scope=public_scope,
        visit_type=booked.visit_type,
        before=slots[0].starts_at + timedelta(days=1),
        patient=other_patient,
    )
    appointment_cancel(appointment=booked, channel_scope=public_scope)
    work()
    offer = [r["body"] for r in gateway.requests if r["body"]["to"] == "+33781234567"]
    assert len(offer) == 1
    assert offer[0]["text"].startswith("RDV plus tot : lundi 15/03 à 10:30, ")
    assert "A prendre avant 08:30 : " in offer[0]["text"]  # two hours before, its booking limit
    assert re.search(r"/w/([\w-]+)", offer[0]["text"])[1] == joined.manage_token


def test_staff_can_send_a_message_again(slots, public_scope, patient, clock, gateway):
    booked = appointment_book(scope=public_scope, slot=slots[-1], patient=patient).appointment
    work()
    first = booked.messages.get(kind="confirmation", medium="sms")
    again = message_resend(message=first)
    work()
    again.refresh_from_db()
    assert again.status == "sent" and again.idempotency_key != first.idempotency_key
    assert len(gateway.delivered) == 2
    assert message_deliver(message_id=first.pk) is None  # a sent message is never sent again
    assert Appointment.objects.count() == 1


def test_an_unanswered_offer_passes_to_the_next_patient_who_is_told_too(
    slots, public_scope, patient, other_patient, clock, gateway
):
    booked = appointment_book(scope=public_scope, slot=slots[-1], patient=patient).appointment
    before = slots[-1].starts_at + timedelta(days=1)
    first = waiting_list_join(
        scope=public_scope, visit_type=booked.visit_type, before=before, patient=other_patient
    )
    english = PatientDetails(**{**patient.__dict__, "phone": "+33698765432", "language": "en"})
    second = waiting_list_join(
        scope=public_scope, visit_type=booked.visit_type, before=before, patient=english
    )
    appointment_cancel(appointment=booked, channel_scope=public_scope)
    work()
    assert [r["body"]["to"] for r in gateway.requests if "/w/" in r["body"]["text"]] == [
        "+33781234567"
    ]
    # No answer within the offer's time: the worker's schedule passes it on, and tells the next.
    clock.shift(timedelta(minutes=121))
    assert "offers" in periodic_enqueue_due()
    work()
    offers = [r["body"] for r in gateway.requests if "/w/" in r["body"]["text"]]
    passed = [o for o in offers if o["to"] == "+33698765432"]
    assert len(passed) == 1
    assert passed[0]["text"].startswith("Earlier slot: ")  # in the patient's language
    assert passed[0]["text"].endswith(f"/en/w/{second.manage_token}")
    assert second.entry.offers.get().hold.slot_id == slots[-1].pk
    # The first patient lost that offer but kept their place: the schedule's matching of new
    # availability offered them another slot, told by another SMS.
    assert first.entry.offers.filter(status="expired").count() == 1
    assert len([o for o in offers if o["to"] == "+33781234567"]) == 2


def test_the_schedule_starts_each_periodic_run_once(clock):
    started = periodic_enqueue_due()
    assert set(started) == {
        "messages",
        "offers",
        "waiting_list",
        "holds",
        "counters",
        "published",
        "sources",
        "ledger",
    }
    assert periodic_enqueue_due() == []  # a second worker at the same moment starts nothing
    roll = ScheduledJob.objects.get(name="roll")
    # The nightly roll: next at 02:30 in Paris (01:30 UTC in winter).
    assert roll.next_run_at == datetime(2027, 3, 16, 1, 30, tzinfo=UTC)
    clock.shift(timedelta(minutes=1))
    assert set(periodic_enqueue_due()) == {"messages", "offers", "sources", "ledger"}
    work()
    assert DBTaskResult.objects.filter(status="SUCCESSFUL").count() == 12  # one per run


def test_english_messages_for_an_english_speaking_patient(
    slots, public_scope, patient, clock, gateway, mailbox
):
    english = PatientDetails(**{**patient.__dict__, "language": "en"})
    booked = appointment_book(scope=public_scope, slot=slots[-1], patient=english)
    work()
    text = gateway.requests[0]["body"]["text"]
    assert text.startswith("Appointment confirmed: Friday 09/04 at 11:30, ")
    assert text.endswith(f"/en/a/{booked.manage_token}")
    assert mailbox.messages[0]["Subject"] == "Your appointment on Friday 9 April 2027 at 11:30"
    body = mailbox.messages[0].get_body(("plain",)).get_content()
    assert "When: Friday 9 April 2027 at 11:30" in body
    # The patient's receipt in the transparency ledger, checkable by anyone.
    entry = Appointment.objects.get().ledger_entry
    assert "transparency ledger: entry no. " in body and f"/ledger/entry/{entry}" in body


def test_staff_see_the_messages_of_an_appointment_and_send_one_again(
    client, hospital_admin, slots, public_scope, patient, clock, gateway
):
    booked = appointment_book(scope=public_scope, slot=slots[-1], patient=patient).appointment
    gateway.script = [(503, 0)]
    work()
    client.force_login(hospital_admin)
    page = client.get(f"/admin/booking/appointment/{booked.pk}/change/").content.decode()
    assert "échec, nouvel essai prévu" in page and "503" in page
    assert booked.sealed_token not in page  # the sealed token is not shown
    message = booked.messages.get(kind="confirmation", medium="sms")
    answer = client.post(
        "/admin/notify/message/",
        {"action": "resend", "_selected_action": [message.pk]},
    )
    assert answer.status_code == 302
    work()
    assert booked.messages.filter(kind="confirmation", medium="sms", status="sent").count() == 1


def test_every_sms_fits_one_segment_in_both_languages(
    slots, public_scope, patient, other_patient, clock, settings
):
    """With a real hospital's address for links and the demo's names, each kind of SMS fits in
    one segment (160 GSM characters) in French and in English. Printed with -s: the examples."""
    settings.CRENEAU_PUBLIC_URL = "https://rdv.aphp.fr"
    texts = {}
    for language, own in (("fr", slots[-3:]), ("en", slots[-6:-3])):
        who = PatientDetails(**{**patient.__dict__, "language": language})
        waiting = PatientDetails(**{**other_patient.__dict__, "language": language})
        booked = appointment_book(scope=public_scope, slot=own[2], patient=who).appointment
        appointment_reschedule(appointment=booked, scope=public_scope, slot=own[1])
        waiting_list_join(
            scope=public_scope,
            visit_type=booked.visit_type,
            before=own[2].starts_at,
            patient=waiting,
        )
        # Cancelled by the hospital: the freed slot goes to the waiting patient (an offer).
        appointment_cancel(appointment=booked, by_staff=True, reason="Praticien absent")
        again = appointment_book(scope=public_scope, slot=own[0], patient=who).appointment
        appointment_cancel(appointment=again, channel_scope=public_scope)
        for message in Message.objects.filter(medium="sms").exclude(pk__in=texts.keys()):
            texts[message.pk] = (language, message.kind, render(message).sms)
        Message.objects.filter(medium="sms").update(status="given_up")
        WaitingListEntry.objects.update(status="cancelled")
    kinds = {(language, kind) for language, kind, _text in texts.values()}
    assert kinds == {
        (language, kind)
        for language in ("fr", "en")
        for kind in ("confirmation", "reminder", "moved", "cancelled", "offer")
    }
    for language, kind, text in texts.values():
        print(f"{language} {kind} ({len(text)}): {text}")
        assert sms_segments(text) == 1, (language, kind, len(text), text)


def test_an_offer_ending_another_day_says_which_day(
    slots, public_scope, patient, other_patient, clock
):
    booked = appointment_book(scope=public_scope, slot=slots[-1], patient=patient).appointment
    waiting_list_join(
        scope=public_scope,
        visit_type=booked.visit_type,
        before=slots[-1].starts_at + timedelta(days=1),
        patient=other_patient,
    )
    appointment_cancel(appointment=booked, channel_scope=public_scope)
    message = Message.objects.get(kind="offer", medium="sms")
    offer = message.offer
    offer.expires_at = datetime(2027, 3, 16, 9, 30, tzinfo=UTC)  # tomorrow, 10:30 in Paris
    offer.save()
    rendered = render(message)
    assert "A prendre avant 16/03 10:30 : " in rendered.sms
    assert "jusqu\u2019au mardi 16 mars \u00e0 10:30." in rendered.body


def test_no_text_message_to_a_number_that_cannot_receive_ours_and_the_email_still_goes(
    slots, public_scope, patient, clock, client
):
    """Issue 28, point 1: a foreign number is a patient's contact, but gets no text message.
    Booking alone, the patient gives an e-mail address (without one, the refusal names that
    field), and the confirmation goes by e-mail only; a landline at the desk gets none."""

    def book(slot, **contact):
        person = {"last_name": "Martin", "first_name": "Camille", "birth_date": "1980-05-17"}
        return client.post(
            "/api/v1/appointments",
            json.dumps({"slot": slot.public_id, "patient": {**person, **contact}}),
            content_type="application/json",
        )

    refused = book(slots[0], phone="+86 138 0013 8000")
    assert (refused.status_code, refused.json()["code"]) == (422, "invalid_patient")
    assert [e["field"] for e in refused.json()["errors"]] == ["patient.email"]
    assert "e-mail" in refused.json()["errors"][0]["message"]
    assert not Appointment.objects.exists()

    booked = book(slots[0], phone="+86 138 0013 8000", email="camille.martin@example.org")
    assert booked.status_code == 201, booked.content
    appointment = Appointment.objects.get(public_id=booked.json()["id"])
    assert appointment.patient_phone == "+8613800138000"
    assert list(appointment.messages.values_list("medium", flat=True)) == ["email"]

    older = appointment_book(scope=public_scope, slot=slots[1], patient=patient).appointment
    Message.objects.all().delete()
    Appointment.objects.filter(pk=older.pk).update(patient_phone="+33142160000")
    older.refresh_from_db()
    appointment_messages_queue(appointment=older, kind="confirmation")
    assert list(older.messages.values_list("medium", flat=True)) == ["email"]


def test_the_night_is_quiet_but_what_the_patient_just_did_is_told_at_once(
    slots, public_scope, patient, other_patient, clock
):
    """Issue 28, point 2: at 22:00 a patient cancels; their cancellation is sent at once, but
    the offer of the freed slot to the next patient waits until 08:00 and its two hours count
    from then; the hospital's own cancellation waits too, and a reminder due in the night
    comes at 08:00."""
    day = next(s for s in slots if s.starts_at >= datetime(2027, 3, 17, 11, 0, tzinfo=UTC))
    day.visit_type.reminder_hours = 10
    day.visit_type.save()
    later = [s for s in slots if s.starts_at > day.starts_at + timedelta(hours=2)]
    clock.move_to(datetime(2027, 3, 16, 21, 0, tzinfo=UTC))  # 22:00 in Paris
    night = datetime(2027, 3, 16, 21, 0, tzinfo=UTC)
    morning = datetime(2027, 3, 17, 7, 0, tzinfo=UTC)  # 08:00 in Paris
    mine = appointment_book(scope=public_scope, slot=day, patient=patient).appointment
    confirmation = mine.messages.get(kind="confirmation", medium="sms")
    assert confirmation.send_after == night  # just booked: told at once
    # Ten hours before 09:00 falls in the night, and 08:00 is too close: 20:45 the evening
    # before.
    assert timezone.localtime(day.starts_at, PARIS).hour == 9
    reminder = mine.messages.get(kind="reminder", medium="sms")
    assert reminder.send_after == day.starts_at - timedelta(hours=12, minutes=15)
    waiting_list_join(
        scope=public_scope,
        visit_type=mine.visit_type,
        before=day.starts_at + timedelta(days=1),
        patient=other_patient,
    )
    appointment_cancel(appointment=mine, channel_scope=public_scope)
    assert mine.messages.get(kind="cancelled", medium="sms").send_after == night
    offer = WaitingListOffer.objects.get()
    assert offer.messages.get(medium="sms").send_after == morning
    assert offer.expires_at == min(morning + timedelta(hours=2), day.bookable_until)
    assert offer.expires_at > morning

    theirs = appointment_book(scope=public_scope, slot=later[0], patient=patient).appointment
    appointment_cancel(
        appointment=theirs, channel_scope=public_scope, by_staff=True, reason="Congrès"
    )
    assert theirs.messages.get(kind="cancelled", medium="sms").send_after == morning
