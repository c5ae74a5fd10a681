"""The ledger's public face: no login, no patient data. What an outside auditor fetches to verify
the log (checkpoints, entries, proofs, perimeter versions), and a page for people."""

import base64
from functools import wraps

from django.conf import settings
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from creneau.channels.models import Channel, PerimeterVersion
from creneau.directory.models import Organisation
from creneau.ledger import payloads, tree
from creneau.ledger.checkpoints import signer
from creneau.ledger.models import Checkpoint, Entry

PAGE = 1000  # entries per page at most


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"code": code, "message": message}, status=status)


class _BadRequest(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _answering(view):
    """The public endpoints' refusals: a 400 with a code and a message, as JSON."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except _BadRequest as error:
            return _error(400, error.code, error.message)

    return wrapper


def _int(request: HttpRequest, name: str) -> int:
    raw = request.GET.get(name, "")
    # ASCII digits only ("²" is a digit to str.isdigit, not to int), and no more of them than
    # a log could ever count.
    if not (raw.isascii() and raw.isdecimal() and len(raw) <= 15):
        raise _BadRequest("invalid_request", _("%(name)s must be a whole number.") % {"name": name})
    return int(raw)


def _public(response: HttpResponse, seconds: int = 10) -> HttpResponse:
    response["Access-Control-Allow-Origin"] = "*"  # anyone may verify, from anywhere
    response["Cache-Control"] = f"public, max-age={seconds}"
    return response


@require_GET
def checkpoint(request: HttpRequest) -> HttpResponse:
    latest = Checkpoint.objects.order_by("-size").first()
    if latest is None:
        return _error(404, "no_checkpoint", _("No checkpoint has been signed yet."))
    return _public(HttpResponse(latest.note, content_type="text/plain; charset=utf-8"))


@require_GET
@_answering
def checkpoints(request: HttpRequest) -> HttpResponse:
    """Every checkpoint, oldest first, from size ``after`` (exclusive) on, a page at a time."""
    after = _int(request, "after") if "after" in request.GET else -1
    rows = Checkpoint.objects.filter(size__gt=after).order_by("size")[:PAGE]
    return _public(
        JsonResponse(
            {
                "origin": settings.CRENEAU_LEDGER_ORIGIN,
                "checkpoints": [
                    {"size": row.size, "root": _b64(bytes(row.root)), "note": row.note}
                    for row in rows
                ],
            }
        )
    )


@require_GET
@_answering
def entries(request: HttpRequest) -> HttpResponse:
    start, end = _int(request, "start"), _int(request, "end")
    size = tree.size()
    if not start < end <= size or end - start > PAGE:
        return _error(
            400,
            "invalid_range",
            _("Ask for 1 to %(page)d entries from start to end (exclusive), within %(size)d.")
            % {"page": PAGE, "size": size},
        )
    rows = Entry.objects.filter(leaf_index__gte=start, leaf_index__lt=end).order_by("leaf_index")
    return _public(
        JsonResponse(
            {"entries": [{"index": row.leaf_index, "data": row.data} for row in rows]},
            json_dumps_params={"ensure_ascii": False},
        ),
        seconds=3600,  # sequenced entries never change
    )


@require_GET
@_answering
def inclusion(request: HttpRequest) -> HttpResponse:
    index, size = _int(request, "index"), _int(request, "size")
    if not index < size <= tree.size():
        return _error(400, "invalid_range", _("The index must be inside a tree the log has."))
    proof = tree.inclusion(index, size)
    return _public(
        JsonResponse({"index": index, "size": size, "proof": [_b64(p) for p in proof]}),
        seconds=3600,
    )


@require_GET
@_answering
def consistency(request: HttpRequest) -> HttpResponse:
    first, second = _int(request, "first"), _int(request, "second")
    if not 0 < first <= second <= tree.size():
        return _error(400, "invalid_range", _("Both sizes must be trees the log has, in order."))
    proof = tree.consistency(first, second)
    return _public(
        JsonResponse({"first": first, "second": second, "proof": [_b64(p) for p in proof]}),
        seconds=3600,
    )


@require_GET
def entry(request: HttpRequest, public_id: str) -> HttpResponse:
    """A receipt: where an entry stands in the log, with its inclusion proof under the latest
    checkpoint that covers it."""
    row = Entry.objects.filter(public_id=public_id).first()
    if row is None:
        return _error(404, "not_found", _("No ledger entry has this id."))
    answer: dict = {"id": row.public_id, "index": row.leaf_index, "data": row.data}
    latest = Checkpoint.objects.order_by("-size").first()
    if row.leaf_index is not None and latest is not None and row.leaf_index < latest.size:
        answer["checkpoint"] = latest.note
        answer["proof"] = [_b64(p) for p in tree.inclusion(row.leaf_index, latest.size)]
    return _public(JsonResponse(answer, json_dumps_params={"ensure_ascii": False}))


@require_GET
def transparency(request: HttpRequest) -> HttpResponse:
    latest = Checkpoint.objects.order_by("-size").first()
    counts = (
        Entry.objects.exclude(channel="")
        .values("channel", "kind")
        .annotate(count=Count("id"))
        .order_by("channel", "kind")
    )
    by_channel: dict[str, dict[str, int]] = {}
    for row in counts:
        by_channel.setdefault(row["channel"], {})[row["kind"]] = row["count"]
    names = dict(Channel.objects.values_list("public_id", "name"))
    kinds = [kind for kind, _label in Entry.Kind.choices]
    rows = [
        (names.get(channel, channel), [found.get(kind, 0) for kind in kinds])
        for channel, found in by_channel.items()
    ]
    return render(
        request,
        "ledger/transparency.html",
        {
            "checkpoint": latest,
            "public_key": signer().verifier.vkey(),
            "origin": settings.CRENEAU_LEDGER_ORIGIN,
            "rows": rows,
            "kinds": kinds,
            "organisation": Organisation.objects.filter(runs_hub=True).first(),
        },
    )


@require_GET
def perimeters(request: HttpRequest) -> HttpResponse:
    """Every perimeter version ever published, in full: what each channel was allowed."""
    versions = PerimeterVersion.objects.select_related("perimeter").order_by("published_at", "pk")
    return _public(
        JsonResponse(
            {"perimeter_versions": [payloads.perimeter_version(v) for v in versions]},
            json_dumps_params={"ensure_ascii": False},
        )
    )
