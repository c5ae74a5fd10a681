"""What this FHIR server answers, said exactly (R4 CapabilityStatement): nothing listed that
is not served, nothing served that is not listed."""

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from creneau.fhir import resources
from creneau.fhir.search import INCLUDES, KINDS

_PARAMETER_TYPES = {
    "_id": "token",
    "identifier": "token",
    "name": "string",
    "family": "string",
    "address-city": "string",
    "address-postalcode": "string",
    "start": "date",
    "status": "token",
    "specialty": "token",
    "service-type": "token",
}

IHE_OPERATIONS = "https://profiles.ihe.net/ITI/Scheduling/OperationDefinition/"

_DOCUMENTATION = {
    "Slot": (
        "Free slots only (status=free), from now to a year ahead, of the practitioner roles the "
        "calling channel's perimeter holds. start takes the prefixes ge, gt, le, lt, eq. "
        "specialty: the hub's code (CodeSystem/specialty) or TRE_R38; service-type: the visit "
        "type (CodeSystem/visit-type). The national SAS platform gets the "
        "BundleAgregateur of the ANS guide ans.fhir.fr.sas (INT_R01)."
    ),
    "Schedule": "One Schedule per practitioner role; its id is the role's.",
}


def _parameter(name: str) -> dict:
    kind = _PARAMETER_TYPES.get(name, "reference")
    return {"name": name, "type": kind}


OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"


def capability_statement() -> dict:
    base = resources.fhir_base()
    public = settings.CRENEAU_PUBLIC_URL.rstrip("/")
    token_url, revoke_url = public + reverse("oauth_token"), public + reverse("oauth_revoke")
    rest_resources = []
    for resource_type, kind in KINDS.items():
        entry = {
            "type": resource_type,
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchInclude": sorted(
                name for name, (source, _t, _f) in INCLUDES.items() if source == resource_type
            ),
            "searchParam": [_parameter(name) for name in sorted(kind.parameters)],
        }
        if resource_type == "Slot":
            entry["searchRevInclude"] = []
        if resource_type in _DOCUMENTATION:
            entry["documentation"] = _DOCUMENTATION[resource_type]
        if not entry["searchInclude"]:
            del entry["searchInclude"]
        if not entry.get("searchRevInclude"):
            entry.pop("searchRevInclude", None)
        rest_resources.append(entry)
    rest_resources.append(
        {
            "type": "Appointment",
            "documentation": (
                "IHE ITI Scheduling, for partners under contract with their OAuth2 token: "
                "$find (ITI-115: proposed appointments on free slots, never on held time), "
                "$hold (ITI-116), $book (ITI-117: books; the same resource with status "
                "cancelled cancels; on another slot, moves), and search of the caller's own "
                "appointments (ITI-118). The same in plain FHIR REST: create (POST, the "
                "patient as a contained Patient) books a free slot, update (PUT) cancels or "
                "moves, read gives one of the caller's own. Idempotency-Key makes $hold, $book "
                "and create safe to retry."
            ),
            "interaction": [
                {"code": "read"},
                {"code": "create"},
                {"code": "update"},
                {"code": "search-type"},
            ],
            "searchParam": [
                {"name": "_id", "type": "token"},
                {"name": "identifier", "type": "token"},
                {"name": "date", "type": "date"},
                {"name": "status", "type": "token"},
                {"name": "patient.identifier", "type": "token"},
            ],
            "operation": [
                {"name": name, "definition": f"{IHE_OPERATIONS}appointment-{name}"}
                for name in ("find", "hold", "book")
            ],
        }
    )
    return {
        "resourceType": "CapabilityStatement",
        "id": "creneau",
        "url": f"{base}/metadata",
        "name": "Creneau",
        "title": "Créneau — FHIR server of the hospital's booking hub",
        "status": "active",
        "date": timezone.now().date().isoformat(),
        "publisher": "Créneau",
        "kind": "instance",
        "software": {"name": "Créneau", "version": "0.1.0"},
        "implementation": {"description": "Créneau booking hub", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "Every answer is filtered by the calling channel's perimeter. Paging: _count "
                    "(up to 5000 for a platform under contract, 200 otherwise) and the Bundle's "
                    "next link."
                ),
                "security": {
                    # Where a client gets its token (SMART's oauth-uris): a hub federating
                    # this one finds it here.
                    "extension": [
                        {
                            "url": OAUTH_URIS,
                            "extension": [
                                {"url": "token", "valueUri": token_url},
                                {"url": "revoke", "valueUri": revoke_url},
                            ],
                        }
                    ],
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": (
                                        "http://terminology.hl7.org/CodeSystem/"
                                        "restful-security-service"
                                    ),
                                    "code": "OAuth",
                                }
                            ]
                        }
                    ],
                    "description": (
                        "OAuth2 client credentials (POST /oauth/token/, then Authorization: "
                        "Bearer) for operators and platforms; the SAS platform by its client "
                        "certificate, through the TLS proxy's "
                        f"{settings.CRENEAU_CLIENT_CERT_HEADER} header; without either, the "
                        "hub's public site."
                    ),
                },
                "resource": rest_resources,
                "operation": [
                    {
                        "name": "bulk-publish",
                        "definition": (
                            "http://fhir-registry.smarthealthit.org/OperationDefinition/"
                            "bulk-publish"
                        ),
                        "documentation": "SMART Scheduling Links: the manifest of NDJSON files.",
                    }
                ],
            }
        ],
    }
