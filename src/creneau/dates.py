"""The days Créneau accepts from outside (a query's dates, a week, a cursor's instant, a
report's period): far enough for any agenda, history or report, and far from the ends of the
calendar, where adding a day or changing time zone overflows."""

from datetime import UTC, date, datetime
from typing import Annotated

from pydantic import Field

FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2099, 12, 31)
# The longest period a report covers at once.
LONGEST_PERIOD_DAYS = 366

# A date parameter of the API: outside these bounds, 422 invalid_request naming it.
ApiDay = Annotated[date, Field(ge=FIRST_DAY, le=LAST_DAY)]
# An offset into a list: far beyond any list, far below a 64-bit integer.
MAX_OFFSET = 1_000_000


def day_in_range(day: date) -> bool:
    return FIRST_DAY <= day <= LAST_DAY


def instant_in_range(moment: datetime) -> bool:
    try:
        return day_in_range(moment.astimezone(UTC).date())
    except OverflowError:
        return False


def shown(moment: datetime | None, *, with_time: bool = True) -> str:
    """An instant as staff read it: in the hub's time zone (Europe/Paris), in the language of
    the page ("30 nov. 2026, 09:00"); what names an object in the admin and the commands."""
    from django.utils import timezone
    from django.utils.formats import date_format

    if moment is None:
        return "—"
    return date_format(timezone.localtime(moment), "j M Y, H:i" if with_time else "j M Y")
