"""The FHIR R4 server at /fhir: the CapabilityStatement, read and search of the directory and
the free slots, each answer through the calling channel's perimeter. Handlers stay thin: the
searches live in fhir.search, the resources in fhir.resources and fhir.sas."""

import json
from datetime import datetime
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, QueryDict
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import http_date, parse_http_date_safe
from django.utils.translation import gettext as _

from creneau.booking import idempotency, waiting_room
from creneau.booking.operators import operator_contract
from creneau.booking.services import offer_record
from creneau.booking.throttling import throttle
from creneau.channels.models import OperatorCompany, Platform
from creneau.channels.oauth import TokenInvalid
from creneau.channels.queries import ChannelScope
from creneau.fhir import capability, ihe, resources, sas, smart
from creneau.fhir.access import fhir_scope
from creneau.fhir.responses import FhirError, fhir_endpoint, fhir_response, outcome
from creneau.fhir.rows import slot_rows
from creneau.fhir.search import (
    DEFAULT_COUNT,
    KINDS,
    MAX_COUNT,
    PUBLIC_MAX_COUNT,
    Params,
    included,
)

SAS_PRACTITIONER_PARAMETERS = (
    "schedule.actor:Practitioner.identifier",
    "schedule.actor.identifier",
)


@fhir_endpoint("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH")
def unknown(request: HttpRequest, path: str) -> HttpResponse:
    raise FhirError(
        "not_found",
        _("This FHIR server has nothing at %(path)s: see /fhir/metadata.")
        % {"path": request.path[:80]},
        status=404,
    )


@fhir_endpoint("GET", "HEAD")
def metadata(request: HttpRequest) -> HttpResponse:
    return fhir_response(capability.capability_statement())


def _kind(resource_type: str):
    kind = KINDS.get(resource_type)
    if kind is None:
        raise FhirError(
            "resource_type_unsupported",
            _("This server has no %(type)s resources.") % {"type": resource_type[:40]},
            status=404,
        )
    return kind


def _is_sas(scope: ChannelScope) -> bool:
    operator = scope.operator
    return operator is not None and operator.kind == OperatorCompany.Kind.SAS


def _page_url(request: HttpRequest, offset: int | None = None) -> str:
    pairs = [(k, v) for k, values in request.GET.lists() for v in values if k != "_offset"]
    if offset:
        pairs.append(("_offset", str(offset)))
    query = urlencode(pairs, safe=":|,/")
    return f"{resources.fhir_base()}{request.path_info.removeprefix('/fhir')}" + (
        f"?{query}" if query else ""
    )


def _check_sas_query(params: Params) -> None:
    asked = sum(len(values) for name in SAS_PRACTITIONER_PARAMETERS for values in params.each(name))
    if not 1 <= asked <= sas.MAX_PRACTITIONERS:
        raise FhirError(
            "practitioners_count",
            _("Name from 1 to %(max)s practitioners (schedule.actor:Practitioner.identifier).")
            % {"max": sas.MAX_PRACTITIONERS},
            status=400,
        )


@fhir_endpoint("GET", "HEAD")
def search(request: HttpRequest, resource_type: str) -> HttpResponse:
    kind = _kind(resource_type)
    scope = fhir_scope(request)
    scope.require("search")
    if resource_type == "Slot":
        # The public Slot search reads slots for patients as the site's search does.
        waiting_room.admit(request, scope)
    params = Params(request.GET, kind.parameters)
    as_sas = resource_type == "Slot" and _is_sas(scope)
    if as_sas:
        _check_sas_query(params)
    count = params.count(
        MAX_COUNT if as_sas else DEFAULT_COUNT,
        most=MAX_COUNT if scope.contract is not None else PUBLIC_MAX_COUNT,
    )
    offset = params.offset()
    direct, iterate = params.includes()
    now = timezone.now()
    found = kind.search(scope, params)
    platform = Platform.objects.filter(contract=scope.contract).first() if as_sas else None
    if as_sas:
        found = sas.for_regulators(found, platform)
    window = found[offset : offset + count + 1]
    page = (slot_rows(window) if as_sas else list(window)) if count else []
    more = len(page) > count
    page = page[:count]
    narrowed = resource_type != "Slot" or any(
        params.query.get(name)
        for name in ("_id", "schedule", "schedule.actor", *SAS_PRACTITIONER_PARAMETERS)
    )
    bundle: dict = {"resourceType": "Bundle", "type": "searchset"}
    if as_sas:
        bundle["meta"] = {"profile": [sas.PROFILE + "BundleAgregateur"]}
    if not more and (page or not offset):
        bundle["total"] = offset + len(page)
    elif narrowed or not count:
        # Counting every free slot of a whole perimeter costs more than the search itself: the
        # total is given when the search is narrowed to practitioners, schedules or ids.
        bundle["total"] = found.count()
    links = [{"relation": "self", "url": _page_url(request, offset)}]
    if more:
        links.append({"relation": "next", "url": _page_url(request, offset + count)})
    if offset:
        links.append({"relation": "previous", "url": _page_url(request, max(0, offset - count))})
    bundle["link"] = links
    if resource_type == "Slot":
        offer_record(scope=scope, slots=page, query={}, via="sas" if as_sas else "fhir")
    if as_sas:
        entries = sas.sas_entries(scope=scope, platform=platform, slots=page, now=now)
    else:
        entries = [_entry(resource_type, kind.build(obj), "match") for obj in page]
        entries += [
            _entry(obj_kind, KINDS[obj_kind].build(obj), "include")
            for obj_kind, obj in included(resource_type, page, direct, iterate)
        ]
    if entries:
        bundle["entry"] = entries
    return fhir_response(bundle)


def _entry(resource_type: str, resource: dict, mode: str) -> dict:
    return {
        "fullUrl": f"{resources.fhir_base()}/{resource_type}/{resource['id']}",
        "resource": resource,
        "search": {"mode": mode},
    }


@fhir_endpoint("GET", "HEAD")
def read(request: HttpRequest, resource_type: str, resource_id: str) -> HttpResponse:
    kind = _kind(resource_type)
    scope = fhir_scope(request)
    scope.require("search")
    found = kind.search(scope, Params(_id_query(resource_id), kind.parameters)).first()
    if found is None:
        # The same answer for what does not exist and what the channel may not see.
        raise FhirError(
            "not_found",
            _("No %(type)s %(id)s here.") % {"type": resource_type, "id": resource_id[:40]},
            status=404,
        )
    if resource_type == "Slot":
        offer_record(scope=scope, slots=[found], query={}, via="fhir")
    return fhir_response(kind.build(found))


def _id_query(resource_id: str) -> QueryDict:
    query = QueryDict(mutable=True)
    query["_id"] = resource_id
    return query


# ---------------------------------------------------------------------------------------------
# SMART Scheduling Links


def _since(request: HttpRequest):
    raw = request.GET.get("_since")
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise FhirError(
            "invalid_date",
            _("_since must be an instant with its zone (2027-03-15T08:00:00Z)."),
            status=400,
        )
    return moment


def _pass_on(request: HttpRequest) -> dict:
    """What a file's address keeps of the manifest's: the widget's channel key."""
    key = request.GET.get("channel")
    return {"channel": key} if key else {}


def _cache_headers(response: HttpResponse, request: HttpRequest) -> HttpResponse:
    # A finder with a token gets its own channel's files: no shared cache may keep them.
    scope = "private" if request.headers.get("Authorization") else "public"
    response["Cache-Control"] = f"{scope}, max-age={smart.MAX_AGE}"
    patch_vary_headers(response, ("Authorization", settings.CRENEAU_CLIENT_CERT_HEADER))
    return response


@fhir_endpoint("GET", "HEAD")
def bulk_publish(request: HttpRequest) -> HttpResponse:
    scope = fhir_scope(request)
    scope.require("search")
    now = timezone.now()
    body = smart.manifest(
        scope,
        request_url=resources.fhir_base() + request.get_full_path().removeprefix("/fhir"),
        query=_pass_on(request),
        since=_since(request),
        now=now,
    )
    response = HttpResponse(
        json.dumps(body, separators=(",", ":")), content_type="application/json"
    )
    return _cache_headers(response, request)


@fhir_endpoint("GET", "HEAD")
def bulk_file(request: HttpRequest, name: str) -> HttpResponse:
    scope = fhir_scope(request)
    scope.require("search")
    if scope.api_client is None:
        # Anonymous bulk reads: a finder with a contract has its own token and limits.
        throttle(request, "bulk")
    now = timezone.now()
    file = smart.file_named(name, now)
    if file is None:
        raise FhirError(
            "not_found",
            _("No file %(name)s is published now: read the manifest ($bulk-publish).")
            % {"name": name[:40]},
            status=404,
        )
    body, offered = smart.file_body(scope, file, now)
    version = smart.version(scope, file, body, now)
    unchanged = request.headers.get("If-None-Match") == version.etag
    since = parse_http_date_safe(request.headers.get("If-Modified-Since", ""))
    if not unchanged and since is not None and "If-None-Match" not in request.headers:
        unchanged = version.last_modified.timestamp() <= since
    if offered and version.new:
        # Once per published version and channel, not per download: the ledger records what
        # the channel was offered, which a thousand downloads of the same bytes do not change.
        offer_record(scope=scope, slots=offered, query={}, via="smart")
    if unchanged:
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(body, content_type=smart.NDJSON)
    response["ETag"] = version.etag
    response["Last-Modified"] = http_date(version.last_modified.timestamp())
    return _cache_headers(response, request)


# ---------------------------------------------------------------------------------------------
# IHE ITI Scheduling


def _partner_scope(request: HttpRequest) -> ChannelScope:
    """A partner under contract, with its OAuth2 token (the operators' rule)."""
    scope = fhir_scope(request)
    if scope.api_client is None:
        raise TokenInvalid(
            "token_required", _("IHE Scheduling needs the partner's OAuth2 access token.")
        )
    operator_contract(scope)
    return scope


def _idempotent(request: HttpRequest, scope: ChannelScope, run) -> HttpResponse:
    assert scope.api_client is not None
    status, body, replayed = idempotency.idempotent(
        channel=scope.channel,
        client=f"api:{scope.api_client.pk}",
        key=request.headers.get("Idempotency-Key"),
        fingerprint=idempotency.request_fingerprint(
            request.method or "", request.path, request.body
        ),
        run=run,
    )
    if status >= 400:  # a refusal replayed, as it was first given
        body = outcome(status, body.get("code", ""), body.get("message", ""))
    response = fhir_response(body, status)
    if replayed:
        response["Idempotent-Replayed"] = "true"
    return response


@fhir_endpoint("POST", "GET")
def appointment_find(request: HttpRequest) -> HttpResponse:
    scope = _partner_scope(request)
    scope.require("search")
    rows = ihe.find(scope, ihe.Parameters.from_request(request), timezone.now())
    return fhir_response(ihe.bundle([ihe.proposed(row) for row in rows]))


@fhir_endpoint("POST")
def appointment_hold(request: HttpRequest) -> HttpResponse:
    scope = _partner_scope(request)
    parameters = ihe.Parameters.from_request(request)
    return _idempotent(request, scope, lambda: (201, ihe.pending(ihe.hold(scope, parameters))))


@fhir_endpoint("POST")
def appointment_book(request: HttpRequest) -> HttpResponse:
    scope = _partner_scope(request)
    parameters = ihe.Parameters.from_request(request)
    return _idempotent(request, scope, lambda: ihe.book(scope, parameters))


@fhir_endpoint("GET", "HEAD", "POST")
def appointment_search(request: HttpRequest) -> HttpResponse:
    """Search of the caller's own appointments; POST is FHIR's create: a booking."""
    scope = _partner_scope(request)
    if request.method == "POST":
        parameters = ihe.Parameters.from_resource(request, expect_id=None)
        return _idempotent(request, scope, lambda: ihe.book(scope, parameters))
    scope.require("read")
    return fhir_response(ihe.bundle(ihe.search(scope, request)))


@fhir_endpoint("GET", "HEAD", "PUT")
def appointment_instance(request: HttpRequest, appointment_id: str) -> HttpResponse:
    """Read one of the caller's own appointments; PUT (update) cancels or moves it."""
    scope = _partner_scope(request)
    if not ihe.own_appointments(scope).filter(public_id=appointment_id).exists():
        raise FhirError(
            "not_found",
            _("No appointment %(id)s of yours here.") % {"id": appointment_id[:40]},
            status=404,
        )
    if request.method == "PUT":
        parameters = ihe.Parameters.from_resource(request, expect_id=appointment_id)
        return _idempotent(request, scope, lambda: ihe.book(scope, parameters))
    scope.require("read")
    return fhir_response(ihe.booked(ihe.own_appointments(scope).get(public_id=appointment_id)))
