"""``creneau ledger audit``: for the hospital, with database access. Every appointment, move,
cancellation and perimeter version has its entry in the log, and every such entry its change."""

import json
from collections import Counter

from creneau.booking.models import Appointment, AppointmentEvent
from creneau.channels.models import PerimeterVersion
from creneau.ledger.models import Entry


def audit() -> list[str]:
    problems: list[str] = []
    logged: dict[str, Counter] = {kind: Counter() for kind in ("booking", "move", "cancel")}
    versions: set[str] = set()
    for kind, data in Entry.objects.filter(
        kind__in=["booking", "move", "cancel", "perimeter"]
    ).values_list("kind", "data"):
        entry = json.loads(data)
        if kind == "perimeter":
            versions.add(entry["version"])
        else:
            logged[kind][entry["appointment"]] += 1
    expected: dict[str, Counter] = {
        "booking": Counter(Appointment.objects.values_list("public_id", flat=True)),
        "move": Counter(),
        "cancel": Counter(),
    }
    for action, public_id in AppointmentEvent.objects.filter(
        action__in=["moved", "cancelled"]
    ).values_list("action", "appointment__public_id"):
        expected["move" if action == "moved" else "cancel"][public_id] += 1
    for kind in ("booking", "move", "cancel"):
        for public_id in sorted(set(expected[kind]) | set(logged[kind])):
            have, want = logged[kind][public_id], expected[kind][public_id]
            if have < want:
                problems.append(f"appointment {public_id}: {want - have} {kind} not in the log")
            elif have > want:
                problems.append(f"appointment {public_id}: {have - want} {kind} in the log only")
    published = set(PerimeterVersion.objects.values_list("public_id", flat=True))
    problems += [f"perimeter version {v}: not in the log" for v in sorted(published - versions)]
    problems += [f"perimeter version {v}: in the log only" for v in sorted(versions - published)]
    return problems
