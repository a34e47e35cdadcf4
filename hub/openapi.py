"""The OpenAPI 3.1 description of the hub's API, served at ``/openapi.json``."""

from __future__ import annotations

from typing import Any

from hub.openapi_lots import destruction_paths, lot_paths, stats_paths
from hub.snapshot import VERSION


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json(description: str, ref: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"$ref": f"#/components/schemas/{ref}"} if ref else {"type": "object"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ID = {"name": "cert_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
_AUTH: list[dict[str, list[str]]] = [{"station_token": []}]


def _transient(description: str) -> dict[str, Any]:
    out = _error(description + " (transient: retry after Retry-After seconds)")
    out["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}
    return out


_TRANSIENT = {
    "429": _transient("rate_limited: over this client's rate limit"),
    "503": _transient("database_unavailable, overloaded or busy"),
}
_PAGE = {"200": {"description": "HTML", "content": {"text/html": {}}}}
_KID = {
    "name": "kid",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
}
_CONTRACT = (
    "Answers: 2xx stored; 4xx other than 401 and 429 are permanent (the request itself is wrong; JSON "
    "error code and message); 401 bad or expired token; 429 and 503 are transient and carry Retry-After "
    "(seconds); 500 only for a bug. Ids are trimmed and lowercased on every route. /raw names the donor "
    "and the technician: it is served to a token of the certificate's organisation only."
)


def _auditor_paths() -> dict[str, Any]:
    return {
        "/api/v1/organisations": {
            "get": {"summary": "Registered organisations (registered name, key fingerprint, links)",
                    "responses": {"200": _json("organisations"), **_TRANSIENT}},
        },
        "/api/v1/organisations/{kid}/keys.pem": {
            "get": {
                "summary": "The organisation's public key (PEM): a trust store for station verify --trust",
                "parameters": [_KID],
                "responses": {"200": {"description": "PEM", "content": {"application/x-pem-file": {}}},
                              "404": _error("unknown organisation")},
            }
        },
        "/api/v1/organisations/{kid}/endorsements": {
            "get": {"summary": "Station keys it endorsed and the hub enrolled, with the signed endorsements",
                    "parameters": [_KID], "responses": {"200": _json("endorsements"), "404": _error("unknown")}},
        },
        "/api/v1/organisations/{kid}/revocations.json": {
            "get": {"summary": "Station keys the hub revoked (station-hub revoke): time and reason (unsigned)",
                    "parameters": [_KID], "responses": {"200": _json("revocations"), "404": _error("unknown")}},
        },
        "/api/v1/organisations/{kid}/revocations.jws": {
            "get": {"summary": "The revocation list the organisation signed, byte for byte",
                    "parameters": [_KID],
                    "responses": {"200": _json("the signed list (JWS, typ tabula-revocation+json)"),
                                  "404": _error("unknown organisation, or no list held")}},
            "put": {"summary": "Hand the hub a newer revocation list (its organisation signature authenticates it)",
                    "parameters": [_KID],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
                    "responses": {"201": _json("held and applied"), "200": _json("already held"),
                                  "404": _error("not signed by a registered organisation"),
                                  "409": _error("stale_revocation_list: older than the one held"),
                                  "422": _error("not a valid signed list, or wrong_organisation")}},
        },
    }  # fmt: skip


_SIZE = {"type": "integer", "minimum": 0}


def _log_paths() -> dict[str, Any]:
    head = _json("a signed tree head (JWS, typ tabula-tree-head+json)")
    return {
        "/api/v1/log/key.pem": {
            "get": {"summary": "The transparency log's public key (Tabula-Role: log): station verify --log",
                    "responses": {"200": {"description": "PEM", "content": {"application/x-pem-file": {}}}}},
        },
        "/api/v1/log/tree-head": {"get": {"summary": "The latest signed tree head", "responses": {"200": head}}},
        "/api/v1/log/proof": {
            "get": {"summary": "An inclusion proof (tabula.log-proof/1), by certificate id or certificate hash",
                    "parameters": [{"name": "certificate_id", "in": "query", "schema": {"type": "string"}},
                                   {"name": "sha256", "in": "query", "schema": {"type": "string"}},
                                   {"name": "tree_size", "in": "query", "schema": _SIZE}],
                    "responses": {"200": _json("the proof, with the latest signed tree head (null for an older tree_size)"),
                                  "400": _error("missing_query, bad_id or bad_tree_size"),
                                  "404": _error("not in the log")}},
        },
        "/api/v1/log/consistency": {
            "get": {"summary": "A consistency proof (tabula.log-consistency/1) from tree size first to second",
                    "parameters": [{"name": "first", "in": "query", "required": True, "schema": _SIZE},
                                   {"name": "second", "in": "query", "schema": _SIZE}],
                    "responses": {"200": _json("the proof, with the signed head of the latest tree when second is it"),
                                  "400": _error("missing_query or bad_tree_size")}},
        },
        "/api/v1/log/entries": {
            "get": {"summary": "The leaves: index, certificate id, certificate hash (1,000 at most per call)",
                    "parameters": [{"name": "start", "in": "query", "schema": _SIZE},
                                   {"name": "count", "in": "query", "schema": _SIZE}],
                    "responses": {"200": _json("entries")}},
        },
        "/api/v1/chain-heads": {
            "post": {"summary": "Publish a chain head the station signed (typ tabula-chain-head+json)",
                     "security": _AUTH,
                     "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
                     "responses": {"201": _json("kept"), "200": _json("already kept"),
                                   "401": _error("no token"), "403": _error("foreign_signature"),
                                   "409": _error("chain_head_regression or chain_fork"),
                                   "422": _error("does not verify: malformed, bad_signature, unendorsed_key, ..."),
                                   **_TRANSIENT}},
        },
        "/api/v1/chain-heads/{kid}": {
            "get": {"summary": "Every chain head a station key published, newest first",
                    "parameters": [_KID], "responses": {"200": _json("chain heads"), "404": _error("none")}},
        },
        "/api/v1/chain-heads/{kid}/latest": {
            "get": {"summary": "The newest chain head of a station key, byte for byte",
                    "parameters": [_KID], "responses": {"200": _json("the JWS"), "404": _error("none")}},
        },
    }  # fmt: skip


_UPLOAD_ERRORS: dict[str, Any] = {
    "400": _error("bad request"),
    "401": _error("unauthorized (missing or unknown token) or token_expired"),
    "403": _error("foreign_signature (another station's key) or station_revoked"),
    "409": _error("id_conflict (different content under this id) or chain_duplicate (place taken)"),
    "413": _error("larger than 1 MiB"),
    "415": _error("not JSON"),
    "422": _error(
        "does not verify with the organisation key alone: malformed, unknown_header_member, "
        "bad_signature, unknown_key, unendorsed_key, schema_error, id_mismatch, bad_id, chain_break"
    ),
    **_TRANSIENT,
}


# Long on purpose: the OpenAPI schemas are data, one literal read top to bottom.
def _components() -> dict[str, Any]:
    return {
        "securitySchemes": {
            "station_token": {"type": "http", "scheme": "bearer"},
            "staff_token": {
                "type": "http",
                "scheme": "bearer",
                "description": "or HTTP Basic, token as password",
            },
        },
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error", "message"],
                "properties": {
                    "error": {"type": "string"},
                    "message": {"type": "string"},
                    "hint": {"type": "string"},
                },
            },
            "SignedCertificate": {
                "type": "object",
                "description": "flattened JWS: protected, payload, signature and optional header.endorsement",
                "required": ["protected", "payload", "signature"],
                "properties": {
                    "protected": {"type": "string"},
                    "payload": {"type": "string"},
                    "signature": {"type": "string"},
                    "header": {"type": "object"},
                },
            },
            "Upload": _upload_schema(),
            "Summary": {
                "type": "object",
                "properties": {
                    "certificate_id": {"type": "string"},
                    "kind": {"type": "string"},
                    "verified": {
                        "type": "boolean",
                        "description": "authentic, trusted and a certified erasure",
                    },
                    "authentic": {"type": "boolean"},
                    "reason": {"type": "string"},
                    "outcome": {"type": "string"},
                    "serial": {"type": ["string", "null"]},
                    "asset_number": {"type": "string"},
                    "station": {"type": "string"},
                    "sequence": {"type": "integer"},
                    "sha256": {"type": "string"},
                    "organisation": {"type": "string", "description": "the registered name"},
                    "station_revoked_at": {"type": ["string", "null"]},
                    "signed_after_revocation": {"type": "boolean"},
                    "personal_data_removed": {"type": "boolean"},
                },
            },
            "Snapshot": {
                "type": "object",
                "description": "eReuse DeviceHub Snapshot (see hub/README.md for the mapping)",
                "required": ["type", "uuid", "software", "version", "timestamp", "device", "components"],
            },
        },
    }


def _upload_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "certificate_id": {"type": "string"},
            "status": {"enum": ["stored", "already_stored"]},
            "kind": {"enum": ["certificate", "failure_report"]},
            "outcome": {"type": "string"},
            "sequence": {"type": "integer"},
            "sha256": {"type": "string"},
            "verify_url": {"type": "string"},
            "log": {
                "type": ["object", "null"],
                "description": "inclusion proof in the transparency log (tabula.log-proof/1, "
                "certs/README.md) against a signed tree head that includes it",
            },
        },
    }


def _batch_path() -> dict[str, Any]:
    item = {
        "type": "object",
        "required": ["certificate_id", "body"],
        "properties": {
            "certificate_id": {"type": "string", "format": "uuid"},
            "body": {"type": "string", "description": "the signed certificate's exact bytes, base64"},
        },
    }
    result = {
        "type": "object",
        "description": "what a single upload of the item would have answered: http_status, then the "
        "Upload answer (2xx) or the error (error, message, hint; retry_after for 503)",
        "required": ["certificate_id", "http_status"],
        "properties": {"certificate_id": {"type": "string"}, "http_status": {"type": "integer"}},
    }
    request = {
        "type": "object",
        "required": ["certificates"],
        "properties": {"certificates": {"type": "array", "minItems": 1, "maxItems": 100, "items": item}},
    }
    answer = {"type": "object", "properties": {"results": {"type": "array", "items": result}}}
    return {
        "post": {
            "summary": "Upload up to 100 signed certificates of this station in one transaction (hub/batch.py)",
            "security": _AUTH,
            "requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
            "responses": {
                "200": {
                    "description": "one result per item, in order",
                    "content": {"application/json": {"schema": answer}},
                },
                "400": _error("not a batch (malformed_batch)"),
                "413": _error("over 100 items or 8 MiB (batch_too_large)"),
                **{k: v for k, v in _UPLOAD_ERRORS.items() if k in ("401", "403", "415", "429", "503")},
            },
        }
    }


def _certificate_paths() -> dict[str, Any]:
    return {
        "/api/v1/certificates:batch": _batch_path(),
        "/api/v1/certificates/{cert_id}": {
            "put": {
                "summary": "Upload a signed certificate (idempotent: the id is the key)",
                "security": _AUTH,
                "parameters": [_ID],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/SignedCertificate"}}
                    },
                },
                "responses": {
                    "201": _json("stored", "Upload"),
                    "200": _json("the same bytes were already stored", "Upload"),
                    **_UPLOAD_ERRORS,
                },
            },
            "get": {
                "summary": "A certificate's facts and its verification now",
                "parameters": [_ID],
                "responses": {"200": _json("found", "Summary"), "404": _error("unknown id")},
            },
        },
        "/api/v1/certificates/{cert_id}/raw": {
            "get": {
                "summary": "The signed certificate, byte for byte (names the donor: organisation token)",
                "security": _AUTH,
                "parameters": [_ID],
                "responses": {
                    "200": _json("the JWS", "SignedCertificate"),
                    "401": _error("no token"),
                    "403": _error("other_organisation"),
                    "404": _error("unknown id"),
                    "410": _error("personal_data_removed: the signed copy was removed on request"),
                },
            }
        },
        "/api/v1/certificates/{cert_id}/snapshot": {
            "get": {
                "summary": "The drive's record as an eReuse DeviceHub Snapshot",
                "parameters": [_ID],
                "responses": {"200": _json("snapshot", "Snapshot"), "404": _error("unknown id")},
            }
        },
    }


def _lookup_paths() -> dict[str, Any]:
    return {
        "/api/v1/certificates": {
            "get": {
                "summary": "Search your organisation's certificates",
                "security": _AUTH,
                "parameters": [
                    *(
                        {"name": k, "in": "query", "schema": {"type": "string"}}
                        for k in ("serial", "asset_number", "station")
                    ),
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 500},
                    },
                ],
                "responses": {
                    "200": _json("matches"),
                    "400": _error("no search term"),
                    "401": _error("no token"),
                },
            }
        },
        "/api/v1/stations/{station_id}": {
            "get": {
                "summary": "A station's chain: count, highest sequence number, gaps",
                "security": _AUTH,
                "parameters": [
                    {"name": "station_id", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {"200": _json("chain"), "404": _error("unknown station")},
            }
        },
        "/api/v1/machines/{asset_number}/snapshot": {
            "get": {
                "summary": "A machine's erasures as an eReuse DeviceHub Snapshot",
                "security": _AUTH,
                "parameters": [
                    {"name": "asset_number", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": _json("snapshot", "Snapshot"),
                    "404": _error("unknown asset number"),
                },
            }
        },
    }


def _report_and_page_paths() -> dict[str, Any]:
    return {
        "/api/v1/reports/{report_id}": {
            "put": {
                "summary": "Upload a diagnostics report (id: SHA-256 of the body)",
                "security": _AUTH,
                "parameters": [
                    {"name": "report_id", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "responses": {
                    "201": _json("stored"),
                    "200": _json("already stored"),
                    "401": _error("no token"),
                    "413": _error("too large"),
                    "415": _error("not JSON"),
                    "422": _error("id does not match, or not a JSON object (malformed)"),
                    **_TRANSIENT,
                },
            }
        },
        "/verify": {
            "get": {
                "summary": "HTML verification page (form; ?id=...&sha256=... as in the QR code)",
                "parameters": [
                    {"name": "id", "in": "query", "schema": {"type": "string"}},
                    {"name": "sha256", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": _PAGE,
            }
        },
        "/verify/{cert_id}": {
            "get": {
                "summary": "HTML verification result",
                "parameters": [_ID],
                "responses": {
                    "200": {"description": "HTML", "content": {"text/html": {}}},
                    "404": {"description": "unknown id"},
                },
            }
        },
    }


def openapi_spec() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tabula traceability hub",
            "version": VERSION,
            "description": "Stations upload signed erasure certificates (RFC 7515 JWS, see certs/README.md); "
            "donors and auditors look them up and see them verified. " + _CONTRACT,
        },
        "components": _components(),
        "paths": {
            **_auditor_paths(),
            **_log_paths(),
            **_certificate_paths(),
            **_lookup_paths(),
            **_report_and_page_paths(),
            **destruction_paths(),
            **lot_paths(),
            **stats_paths(),
        },
    }
