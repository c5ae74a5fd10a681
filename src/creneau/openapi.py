"""The OpenAPI document, complete and true: what django-ninja generates from the routes, plus
what it cannot know of the hub: how each caller authenticates (an operator's OAuth2 token, a
channel's key, a patient's manage token), the headers the API reads, the errors each operation
can answer, the statistics' CSV, and the endpoints served outside ninja (the OAuth2 token
endpoint and the transparency ledger), so that "Try it out" works for every persona."""

from copy import deepcopy

from django.conf import settings

ERROR = {"$ref": "#/components/schemas/ErrorOut"}

# What each status means here, with the codes it carries (DomainError codes, stable).
ERRORS = {
    400: ("Unreadable request", ["invalid_json", "invalid_character", "invalid_cursor"]),
    401: ("No valid access token", ["token_required", "token_invalid"]),
    403: (
        "Refused to this channel",
        [
            "out_of_perimeter",
            "action_not_allowed",
            "insufficient_scope",
            "token_channel_mismatch",
            "cross_site_request",
            "channel_unavailable",
        ],
    ),
    404: ("Not found (or not this caller's)", ["not_found", "specialty_not_found"]),
    409: ("Conflict", ["slot_taken", "slot_unavailable", "idempotency_in_progress"]),
    410: ("Too late", ["hold_expired", "offer_expired"]),
    415: ("The body is not JSON", ["unsupported_media_type"]),
    422: (
        "Invalid request",
        ["invalid_request", "invalid_patient", "idempotency_key_reused", "invalid_period"],
    ),
    429: (
        "Limit reached (see Retry-After)",
        ["too_many_requests", "quota_exceeded", "too_many_holds", "holds_limit_reached"],
    ),
}
READ_ERRORS = (400, 401, 403, 404, 422, 429)
WRITE_ERRORS = (*READ_ERRORS, 409, 410, 415)

IDEMPOTENT = {
    ("post", "/api/v1/appointments"),
    ("post", "/api/v1/appointments/{appointment_id}/cancel"),
    ("post", "/api/v1/appointments/{appointment_id}/reschedule"),
    ("post", "/api/v1/waiting-list"),
    ("post", "/api/v1/waiting-list/{entry_id}/accept"),
}
# Who may call what: everyone may name a channel (or be the public site); operators' software
# sends its token; a patient opens their own appointment or request with its manage token.
ANONYMOUS: dict = {}
AS_OPERATOR = {"operator": []}
AS_CHANNEL = {"channel": []}
AS_PATIENT = {"manageToken": []}

SECURITY_SCHEMES = {
    "operator": {
        "type": "oauth2",
        "description": (
            "Operators' and partner platforms' software: OAuth2 client credentials. The token "
            "names the operator's channel; its scopes are bounded by the contract."
        ),
        "flows": {
            "clientCredentials": {"tokenUrl": "/oauth/token/", "scopes": {}},
        },
    },
    "channel": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Creneau-Channel",
        "description": (
            "A widget's or the public site's channel key (also `?channel=KEY`). Without any, "
            "the hub's public site answers. An operator's channel needs its token instead."
        ),
    },
    "manageToken": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Manage-Token",
        "description": "The patient's manage token, given once with the booking.",
    },
    "clientSecret": {
        "type": "http",
        "scheme": "basic",
        "description": "An API client's id and secret, for the token endpoint only.",
    },
}

IDEMPOTENCY_PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "Makes a retry safe: the same key and body from the same client replay the first "
        "answer; another body is refused (422 idempotency_key_reused). Kept 24 hours at least."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
    "example": "7b9c1e4e-4c1a-4c5e-9a51-0d4f2f6f9a10",
}


def _error_response(status: int) -> dict:
    title, codes = ERRORS[status]
    return {
        "description": f"{title}: {', '.join(f'`{code}`' for code in codes)}",
        "content": {
            "application/json": {
                "schema": ERROR,
                "example": {"code": codes[0], "message": title + "."},
            }
        },
    }


def _security_for(path: str) -> list[dict]:
    if path.startswith("/api/v1/operator/"):
        return [AS_OPERATOR]
    if path.startswith(("/api/v1/appointments/", "/api/v1/waiting-list/")):
        return [AS_PATIENT, {**AS_PATIENT, **AS_CHANNEL}, AS_OPERATOR]
    return [ANONYMOUS, AS_CHANNEL, AS_OPERATOR]


def openapi_complete(spec: dict) -> dict:
    spec = deepcopy(spec)
    components = spec.setdefault("components", {})
    schemes = deepcopy(SECURITY_SCHEMES)
    schemes["operator"]["flows"]["clientCredentials"]["scopes"] = dict(
        settings.OAUTH2_PROVIDER["SCOPES"]
    )
    components.setdefault("securitySchemes", {}).update(schemes)
    schemas = components.setdefault("schemas", {})
    schemas["ErrorOut"] = {
        "title": "ErrorOut",
        "type": "object",
        "required": ["code", "message"],
        "properties": {
            "code": {"type": "string", "description": "stable, snake_case"},
            "message": {"type": "string", "description": "for people, in the asked language"},
            "errors": {
                "type": "array",
                "description": "every field in error, named as the request names it",
                "items": {
                    "type": "object",
                    "properties": {
                        "field": {"type": ["string", "null"]},
                        "message": {"type": "string"},
                    },
                },
            },
        },
        "additionalProperties": True,
    }
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in ("get", "post", "delete", "put", "patch"):
                continue
            operation["security"] = _security_for(path)
            responses = {str(status): answer for status, answer in operation["responses"].items()}
            operation["responses"] = responses
            for status in WRITE_ERRORS if method != "get" else READ_ERRORS:
                responses.setdefault(str(status), _error_response(status))
            if (method, path) in IDEMPOTENT:
                operation.setdefault("parameters", []).append(IDEMPOTENCY_PARAMETER)
            if responses.get("429"):
                responses["429"]["headers"] = {
                    "Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}
                }
    _add_links(spec["paths"])
    statistics = spec["paths"].get("/api/v1/operator/statistics", {}).get("get")
    if statistics:
        statistics["responses"]["200"]["content"]["text/csv"] = {
            "schema": {"type": "string"},
            "example": "day,operator,searches,bookings,moves,cancellations,no_shows,refusals\n",
        }
    spec["paths"].update(_outside_ninja())
    return spec


EXAMPLE_PATIENT = {
    "last_name": "Martin",
    "first_name": "Camille",
    "birth_date": "1980-05-17",
    "phone": "06 12 34 56 78",
}
# The patient's path through the API, as OpenAPI links (what an answer gives the next call).
LINKS = {
    ("/api/v1/slots", "get", "200"): {
        "HoldTheFirstSlot": {
            "operationId": "creneau_booking_api_hold_create",
            "requestBody": {"slot": "$response.body#/items/0/id"},
            "description": "Keep the earliest slot found while the patient types.",
        },
        "BookTheFirstSlot": {
            "operationId": "creneau_booking_api_appointment_book",
            "requestBody": {"slot": "$response.body#/items/0/id", "patient": EXAMPLE_PATIENT},
            "description": "Book the earliest slot found directly.",
        },
    },
    ("/api/v1/holds", "post", "201"): {
        "BookThroughTheHold": {
            "operationId": "creneau_booking_api_appointment_book",
            "requestBody": {"hold": "$response.body#/id", "patient": EXAMPLE_PATIENT},
            "description": "Book the slot kept.",
        }
    },
    ("/api/v1/appointments", "post", "201"): {
        "SeeWithTheManageToken": {
            "operationId": "creneau_booking_api_appointment_detail",
            "parameters": {
                "path.appointment_id": "$response.body#/id",
                "header.X-Manage-Token": "$response.body#/manage_token",
            },
            "description": "The patient opens the appointment with its manage token.",
        },
        "CancelWithTheManageToken": {
            "operationId": "creneau_booking_api_appointment_cancel",
            "parameters": {
                "path.appointment_id": "$response.body#/id",
                "header.X-Manage-Token": "$response.body#/manage_token",
            },
            "description": "The patient cancels with its manage token.",
        },
    },
}


def _add_links(paths: dict) -> None:
    operation_ids = {
        operation.get("operationId")
        for item in paths.values()
        for operation in item.values()
        if isinstance(operation, dict)
    }
    for (path, method, status), links in LINKS.items():
        answer = paths.get(path, {}).get(method, {}).get("responses", {}).get(status)
        if answer is not None:
            known = {n: link for n, link in links.items() if link["operationId"] in operation_ids}
            answer.setdefault("links", {}).update(known)


def _json(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ledger_error(codes: list[str]) -> dict:
    return _json(ERROR, "Refused: " + ", ".join(f"`{code}`" for code in codes))


_INTEGER = {"type": "integer", "minimum": 0}


def _query(name: str, description: str, required: bool = True) -> dict:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": _INTEGER,
    }


_PROOF = {
    "type": "array",
    "items": {"type": "string", "description": "a SHA-256 node hash, base64"},
}


def _proof_path(summary: str, *numbers: tuple[str, str]) -> dict:
    """A ledger proof endpoint: two whole numbers asked, the same two and the proof answered."""
    return {
        "get": {
            "tags": ["ledger"],
            "summary": summary,
            "security": [ANONYMOUS],
            "parameters": [_query(name, description) for name, description in numbers],
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {
                            **{name: {"type": "integer"} for name, _description in numbers},
                            "proof": _PROOF,
                        },
                    }
                ),
                "400": _ledger_error(["invalid_request", "invalid_range"]),
            },
        }
    }


def _outside_ninja() -> dict:
    """The token endpoint (RFC 6749 §4.4) and the ledger's public endpoints (RFC 9162's
    shape), served by Django views of their own."""
    ledger = ["ledger"]
    return {
        "/oauth/token/": {
            "post": {
                "tags": ["operators"],
                "summary": "An access token for an API client (client credentials)",
                "security": [{"clientSecret": []}],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": {
                                "type": "object",
                                "required": ["grant_type"],
                                "properties": {
                                    "grant_type": {
                                        "type": "string",
                                        "enum": ["client_credentials"],
                                    },
                                    "scope": {
                                        "type": "string",
                                        "description": "space-separated, within the contract",
                                    },
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["access_token", "token_type", "expires_in"],
                            "properties": {
                                "access_token": {"type": "string"},
                                "token_type": {"type": "string", "example": "Bearer"},
                                "expires_in": {"type": "integer"},
                                "scope": {"type": "string"},
                            },
                        }
                    ),
                    "400": _json(
                        {"type": "object", "properties": {"error": {"type": "string"}}},
                        "RFC 6749 §5.2 error (invalid_request, unsupported_grant_type, ...)",
                    ),
                    "401": _json(
                        {"type": "object", "properties": {"error": {"type": "string"}}},
                        "invalid_client: unknown client, wrong secret, contract not in force",
                    ),
                },
            }
        },
        "/ledger/checkpoint": {
            "get": {
                "tags": ledger,
                "summary": "The latest signed checkpoint (signed-note text)",
                "security": [ANONYMOUS],
                "responses": {
                    "200": {
                        "description": "origin, tree size, root hash, then signatures",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "404": _ledger_error(["no_checkpoint"]),
                },
            }
        },
        "/ledger/checkpoints": {
            "get": {
                "tags": ledger,
                "summary": "Every checkpoint, oldest first, a page at a time",
                "security": [ANONYMOUS],
                "parameters": [_query("after", "tree size to start after", required=False)],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "origin": {"type": "string"},
                                "checkpoints": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "size": {"type": "integer"},
                                            "root": {"type": "string"},
                                            "note": {"type": "string"},
                                        },
                                    },
                                },
                            },
                        }
                    ),
                    "400": _ledger_error(["invalid_request"]),
                },
            }
        },
        "/ledger/entries": {
            "get": {
                "tags": ledger,
                "summary": "Sequenced entries [start, end), at most 1,000",
                "security": [ANONYMOUS],
                "parameters": [_query("start", "first index"), _query("end", "index after")],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "entries": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "index": {"type": "integer"},
                                            "data": {"type": "string"},
                                        },
                                    },
                                }
                            },
                        }
                    ),
                    "400": _ledger_error(["invalid_request", "invalid_range"]),
                },
            }
        },
        "/ledger/entry/{entry_id}": {
            "get": {
                "tags": ledger,
                "summary": "A receipt: an entry, its index and its inclusion proof",
                "security": [ANONYMOUS],
                "parameters": [
                    {
                        "name": "entry_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "id": {"type": "string"},
                                "index": {"type": ["integer", "null"]},
                                "data": {"type": "string"},
                                "checkpoint": {"type": "string"},
                                "proof": _PROOF,
                            },
                        }
                    ),
                    "404": _ledger_error(["not_found"]),
                },
            }
        },
        "/ledger/proof/inclusion": _proof_path(
            "Inclusion proof of an entry in a tree (RFC 9162 §2.1.3)",
            ("index", "the entry's index"),
            ("size", "tree size"),
        ),
        "/ledger/proof/consistency": _proof_path(
            "Consistency proof between two tree sizes (RFC 9162 §2.1.4)",
            ("first", "smaller size"),
            ("second", "larger size"),
        ),
        "/ledger/perimeters": {
            "get": {
                "tags": ledger,
                "summary": "Every perimeter version ever published",
                "security": [ANONYMOUS],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "perimeter_versions": {"type": "array", "items": {"type": "object"}}
                            },
                        }
                    )
                },
            }
        },
    }
