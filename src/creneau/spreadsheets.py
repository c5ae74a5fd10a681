"""The CSV files the hub writes for people to open in a spreadsheet. A cell that starts with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return is run as a formula by Excel and
LibreOffice (CSV or formula injection: a user named ``=HYPERLINK(…)`` would send the auditor's
data elsewhere), so such a text cell is written with a leading apostrophe, which shows the
text as it is (OWASP, "CSV Injection"). Numbers are written as they are."""

import csv
from collections.abc import Iterable

from django.http import HttpResponse

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_download(filename: str, header: list[str], rows: Iterable[Iterable]) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow(header)
    for row in rows:
        writer.writerow([cell(value) for value in row])
    return response
