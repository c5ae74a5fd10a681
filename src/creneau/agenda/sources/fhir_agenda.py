"""Another agenda's FHIR server as an agenda source (STANDARDS.md §3): its free slots of one
Schedule, found by a plain FHIR ``Slot`` search (paged by the Bundle's next links), are offered
by the hub as its own; a booking goes through it with IHE ITI Scheduling: ``$hold`` (ITI-116),
then ``$book`` (ITI-117), which also cancels (status cancelled) and moves (the same Appointment
on another slot); or, for a server without them, plain FHIR REST: ``POST Appointment`` (the
patient contained) books, ``PUT Appointment/ID`` cancels or moves. The hub signs in with OAuth2
client credentials at the token address the server's CapabilityStatement gives (SMART's
oauth-uris extension). Every request goes through the guarded fetch (no private network unless
allowed, size and time capped).

A refusal by the remote (the slot was taken there) is a ``RemoteRefused``; no answer, an
error or garbage is a ``RemoteUnavailable``: the booking layer turns them into 409 and 503."""

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.core.cache import cache
from django.utils.translation import gettext as _

from creneau.agenda.models import AgendaSource
from creneau.errors import DomainError
from creneau.outgoing import OutgoingError, request
from creneau.sealing import seal, unseal

FHIR_JSON = "application/fhir+json"
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
PAGE = 500
# What a remote answers when the slot is no longer to be had (taken, gone, not allowed).
REFUSALS = (403, 404, 409, 410, 422)
MAX_PAGES = 200


class RemoteUnavailable(DomainError):
    """The remote agenda did not answer, or answered something unusable."""

    status = 503


class RemoteRefused(DomainError):
    """The remote agenda answered, and said no (the slot is no longer free there)."""

    status = 409


@dataclass(frozen=True)
class RemoteSlot:
    id: str
    starts_at: datetime
    ends_at: datetime
    service_codes: tuple[str, ...]


def _instant(value: Any) -> datetime:
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("a slot's start and end carry their offset (FHIR instant)")
    return moment


def _outcome_code(body: Any) -> str:
    """The stable code of an OperationOutcome (details.coding), or its issue code."""
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        for issue in body.get("issue") or []:
            for coding in (issue.get("details") or {}).get("coding") or []:
                if coding.get("code"):
                    return str(coding["code"])[:60]
            if issue.get("code"):
                return str(issue["code"])[:60]
    return ""


def _appointment(remote_id: str | None, status: str, remote_slot: str) -> dict:
    """The Appointment an IHE operation takes: an id there (none for a new hold), a slot."""
    resource = {
        "resourceType": "Appointment",
        "status": status,
        "slot": [{"reference": f"Slot/{remote_slot}"}],
    }
    if remote_id:
        resource["id"] = remote_id
    return resource


class FhirAgenda:
    """One source's remote server, signed in."""

    def __init__(self, source: AgendaSource) -> None:
        self.source = source
        self.base = source.url.rstrip("/")
        self.origin = "{0.scheme}://{0.netloc}".format(urlsplit(self.base))
        self.secret = unseal(source.sealed_secret) if source.sealed_secret else ""
        if source.sealed_secret and self.secret is None:
            raise RemoteUnavailable(
                "secret_unreadable",
                _(
                    "The client secret can no longer be read (the sealing key changed): give it "
                    "again."
                ),
            )

    # -- transport ----------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        url: str,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
        signed: bool = True,
    ) -> tuple[int, Any]:
        if not url.startswith(self.origin + "/"):
            # A next link or an answer must not lead the hub elsewhere with its token.
            raise RemoteUnavailable(
                "remote_invalid", _("The remote server pointed outside its own address.")
            )
        sent = {"Accept": FHIR_JSON, **(headers or {})}
        if signed:
            sent["Authorization"] = "Bearer " + self._token()
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent.setdefault("Content-Type", FHIR_JSON)
        try:
            answer = request(url, method=method, body=data, headers=sent)
        except OutgoingError as error:
            raise RemoteUnavailable(error.code, error.message) from error
        try:
            parsed = json.loads(answer.body) if answer.body else None
        except ValueError as error:
            raise RemoteUnavailable(
                "remote_invalid",
                _("The remote server answered %(status)s with something that is not JSON.")
                % {"status": answer.status},
            ) from error
        if answer.status == 401 and signed:
            cache.delete(self._token_key())
        return answer.status, parsed

    def _checked(self, status: int, body: Any, *, refusals: tuple[int, ...] = ()) -> Any:
        if 200 <= status < 300 and isinstance(body, dict):
            return body
        code = _outcome_code(body) or f"http_{status}"
        if status in refusals:
            raise RemoteRefused(
                code,
                _("The practitioner's agenda refused: %(code)s.") % {"code": code},
            )
        raise RemoteUnavailable(
            "remote_error",
            _("The remote agenda answered %(status)s (%(code)s).")
            % {"status": status, "code": code},
        )

    def _token_key(self) -> str:
        digest = hashlib.sha256(f"{self.base}|{self.source.username}|{self.secret}".encode())
        return f"fhir-source-token:{self.source.pk}:{digest.hexdigest()[:16]}"

    def _token(self) -> str:
        """An access token (client credentials), kept sealed in the cache until shortly before
        it expires."""
        cached = cache.get(self._token_key())
        token = unseal(cached) if cached else None
        if token:
            return token
        pair = f"{self.source.username}:{self.secret}".encode()
        try:
            answer = request(
                self.token_url(),
                method="POST",
                body=urlencode({"grant_type": "client_credentials"}).encode(),
                headers={
                    "Authorization": "Basic " + base64.b64encode(pair).decode(),
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Accept": "application/json",
                },
            )
            granted = json.loads(answer.body or b"null")
        except OutgoingError as error:
            raise RemoteUnavailable(error.code, error.message) from error
        except ValueError:
            granted = None
        if answer.status != 200 or not isinstance(granted, dict) or not granted.get("access_token"):
            raise RemoteUnavailable(
                "remote_sign_in_refused",
                _("The remote server refused the client id and secret (HTTP %(status)s).")
                % {"status": answer.status},
            )
        token = str(granted["access_token"])
        lifetime = granted.get("expires_in")
        lifetime = lifetime if isinstance(lifetime, int) and lifetime > 0 else 300
        cache.set(self._token_key(), seal(token), max(30, lifetime - 60))
        return token

    def token_url(self) -> str:
        """Where the server says tokens are given (its CapabilityStatement's oauth-uris)."""
        key = "fhir-source-token-url:" + hashlib.sha256(self.base.encode()).hexdigest()[:16]
        found = cache.get(key)
        if found:
            return found
        status, body = self._request("GET", self.base + "/metadata", signed=False)
        statement = self._checked(status, body)
        for rest in statement.get("rest") or []:
            for extension in (rest.get("security") or {}).get("extension") or []:
                if extension.get("url") != OAUTH_URIS:
                    continue
                for inner in extension.get("extension") or []:
                    if inner.get("url") == "token" and inner.get("valueUri"):
                        found = str(inner["valueUri"])
        if not found or not found.startswith(self.origin + "/"):
            raise RemoteUnavailable(
                "remote_no_token_address",
                _("The remote server's CapabilityStatement gives no token address of its own."),
            )
        cache.set(key, found, 3600)
        return found

    # -- reading ------------------------------------------------------------------------------

    def slots(self, *, now: datetime, until: datetime) -> list[RemoteSlot]:
        """The remote Schedule's free slots from ``now`` to ``until``, every page."""
        query = urlencode(
            [
                ("schedule", f"Schedule/{self.source.remote_schedule}"),
                ("status", "free"),
                ("start", "ge" + now.isoformat(timespec="seconds")),
                ("start", "lt" + until.isoformat(timespec="seconds")),
                ("_count", str(PAGE)),
            ]
        )
        url: str | None = f"{self.base}/Slot?{query}"
        found: list[RemoteSlot] = []
        for _page in range(MAX_PAGES):
            if url is None:
                return found
            bundle = self._checked(*self._request("GET", url))
            if bundle.get("resourceType") != "Bundle":
                raise RemoteUnavailable(
                    "remote_invalid", _("The Slot search did not give a Bundle.")
                )
            for entry in bundle.get("entry") or []:
                resource = entry.get("resource") if isinstance(entry, dict) else None
                if isinstance(resource, dict) and resource.get("resourceType") == "Slot":
                    found.append(self._slot(resource))
            url = next(
                (
                    str(link.get("url"))
                    for link in bundle.get("link") or []
                    if isinstance(link, dict) and link.get("relation") == "next"
                ),
                None,
            )
        raise RemoteUnavailable(
            "remote_too_many_pages",
            _("The Slot search had more than %(n)s pages.") % {"n": MAX_PAGES},
        )

    @staticmethod
    def _slot(resource: dict) -> RemoteSlot:
        try:
            codes = tuple(
                str(coding["code"])
                for concept in resource.get("serviceType") or []
                for coding in concept.get("coding") or []
                if coding.get("code")
            )
            slot = RemoteSlot(
                id=str(resource["id"])[:200],
                starts_at=_instant(resource["start"]),
                ends_at=_instant(resource["end"]),
                service_codes=codes,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise RemoteUnavailable(
                "remote_invalid",
                _("A Slot of the remote server is not valid FHIR: %(error)s")
                % {"error": str(error)[:200]},
            ) from error
        if slot.ends_at <= slot.starts_at:
            raise RemoteUnavailable(
                "remote_invalid", _("A Slot of the remote server ends before it starts.")
            )
        return slot

    def schedule(self) -> dict:
        return self._checked(
            *self._request("GET", f"{self.base}/Schedule/{self.source.remote_schedule}")
        )

    # -- booking through the remote (IHE ITI-116 and ITI-117) --------------------------------

    @staticmethod
    def _parameters(**resources: dict) -> dict:
        return {
            "resourceType": "Parameters",
            "parameter": [
                {"name": name.replace("_", "-"), "resource": r} for name, r in resources.items()
            ],
        }

    def _operation(self, name: str, headers: dict | None = None, **resources: dict):
        """POST an IHE operation ($hold, $book) with its Parameters: (status, body)."""
        return self._request(
            "POST",
            f"{self.base}/Appointment/${name}",
            body=self._parameters(**resources),
            headers=headers,
        )

    @property
    def rest(self) -> bool:
        return self.source.remote_api == AgendaSource.RemoteApi.REST

    def hold(self, remote_slot: str) -> str:
        """Keep the remote slot; the id of the pending Appointment the remote gave (none
        through plain FHIR REST, which has no hold: the booking takes the slot at once)."""
        if self.rest:
            return ""
        answer = self._operation(
            "hold", appointment_resource=_appointment(None, "proposed", remote_slot)
        )
        return self._id(self._checked(*answer, refusals=REFUSALS))

    def book(self, *, remote_hold: str, remote_slot: str, patient: dict, key: str) -> str:
        """Book the held slot for ``patient`` (a FHIR Patient); the remote Appointment's id.
        ``key`` makes a retry after a lost answer the same booking (Idempotency-Key)."""
        if self.rest:
            resource = _appointment(None, "booked", remote_slot)
            resource["contained"] = [{**patient, "id": "patient"}]
            resource["participant"] = [
                {"actor": {"reference": "#patient"}, "status": "accepted", "required": "required"}
            ]
            answer = self._request(
                "POST",
                f"{self.base}/Appointment",
                body=resource,
                headers={"Idempotency-Key": key},
            )
            return self._id(self._checked(*answer, refusals=REFUSALS))
        answer = self._operation(
            "book",
            headers={"Idempotency-Key": key},
            appointment_resource=_appointment(remote_hold, "booked", remote_slot),
            patient_resource=patient,
        )
        return self._id(self._checked(*answer, refusals=REFUSALS))

    def cancel(self, remote_id: str, *, reason: str = "") -> None:
        """Cancel a remote appointment or hold; one the remote no longer has is cancelled."""
        appointment: dict = {"resourceType": "Appointment", "id": remote_id, "status": "cancelled"}
        if reason:
            appointment["cancelationReason"] = {"text": reason[:200]}
        if self.rest:
            status, body = self._request(
                "PUT", f"{self.base}/Appointment/{remote_id}", body=appointment
            )
        else:
            status, body = self._operation("book", appointment_resource=appointment)
        if status in (404, 409, 410):  # already gone there: what a cancellation wants
            return
        self._checked(status, body)

    def cancel_booked_for(self, system: str, value: str) -> int:
        """After a booking whose answer was lost: find what the remote booked for the hub's
        reference (ITI-118 search by the patient's identifier) and cancel it. Best effort;
        how many were cancelled."""
        query = urlencode([("patient.identifier", f"{system}|{value}"), ("status", "booked")])
        bundle = self._checked(*self._request("GET", f"{self.base}/Appointment?{query}"))
        found = [
            str(entry["resource"]["id"])
            for entry in bundle.get("entry") or []
            if isinstance(entry, dict) and isinstance(entry.get("resource"), dict)
        ]
        for remote_id in found:
            self.cancel(remote_id, reason="booking not confirmed by the hub")
        return len(found)

    def move(self, remote_id: str, remote_slot: str) -> None:
        moved = _appointment(remote_id, "booked", remote_slot)
        if self.rest:
            answer = self._request("PUT", f"{self.base}/Appointment/{remote_id}", body=moved)
        else:
            answer = self._operation("book", appointment_resource=moved)
        self._checked(*answer, refusals=REFUSALS)

    @staticmethod
    def _id(resource: dict) -> str:
        if resource.get("resourceType") != "Appointment" or not resource.get("id"):
            raise RemoteUnavailable(
                "remote_invalid", _("The remote server did not answer with an Appointment.")
            )
        return str(resource["id"])[:200]


def test(source: AgendaSource, *, now: datetime) -> str:
    remote = FhirAgenda(source)
    schedule = remote.schedule()
    return _("Signed in; the remote schedule %(id)s is %(state)s.") % {
        "id": source.remote_schedule,
        "state": _("active") if schedule.get("active", True) else _("inactive"),
    }
