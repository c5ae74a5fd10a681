"""The SAS query the demo prints: three demo neurosurgeons of the public hospitals, the next
fourteen days (STANDARDS.md §1)."""

from datetime import timedelta
from urllib.parse import urlencode

from django.utils import timezone

from creneau.directory.models import Practitioner
from creneau.directory.national import IDNPS_SYSTEM


def sas_demo_query(base: str) -> str:
    rpps = (
        Practitioner.objects.filter(
            roles__specialties__code="neurosurgery",
            roles__establishment__organisation__runs_hub=True,
        )
        .distinct()
        .order_by("rpps")
        .values_list("rpps", flat=True)[:3]
    )
    start = timezone.now().replace(microsecond=0)
    end = start + timedelta(days=14)
    query = urlencode(
        [
            ("_include", "Slot:schedule"),
            ("_include:iterate", "Schedule:actor"),
            ("start", f"ge{start.isoformat()}"),
            ("start", f"le{end.isoformat()}"),
            (
                "schedule.actor:Practitioner.identifier",
                ",".join(f"{IDNPS_SYSTEM}|8{r}" for r in rpps),
            ),
            ("status", "free"),
        ],
        safe=":|,",
    )
    return f"{base}/Slot?{query}"
