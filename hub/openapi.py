"""The OpenAPI 3.1 description of the hub's API, served at ``/openapi.json``."""

from __future__ import annotations

from typing import Any

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


def openapi_spec() -> dict[str, Any]:
    upload_errors = {
        "400": _error("bad request"),
        "401": _error("missing or unknown station token"),
        "403": _error("signed by another station's key, or the station is revoked"),
        "409": _error("different content already stored under this id, or this chain place is taken"),
        "413": _error("larger than 1 MiB"),
        "422": _error(
            "does not verify: malformed, bad_signature, unknown_key, unendorsed_key, schema_error, id_mismatch, chain_break"
        ),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tabula traceability hub",
            "version": VERSION,
            "description": "Stations upload signed erasure certificates (RFC 7515 JWS, see certs/README.md); "
            "donors and auditors look them up and see them verified.",
        },
        "components": {
            "securitySchemes": {"station_token": {"type": "http", "scheme": "bearer"}},
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
                "Upload": {
                    "type": "object",
                    "properties": {
                        "certificate_id": {"type": "string"},
                        "status": {"enum": ["stored", "already_stored"]},
                        "kind": {"enum": ["certificate", "failure_report"]},
                        "outcome": {"type": "string"},
                        "sequence": {"type": "integer"},
                        "sha256": {"type": "string"},
                        "verify_url": {"type": "string"},
                    },
                },
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
                    },
                },
                "Snapshot": {
                    "type": "object",
                    "description": "eReuse DeviceHub Snapshot (see hub/README.md for the mapping)",
                    "required": ["type", "uuid", "software", "version", "timestamp", "device", "components"],
                },
            },
        },
        "paths": {
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
                        **upload_errors,
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
                    "summary": "The signed certificate, byte for byte",
                    "parameters": [_ID],
                    "responses": {"200": _json("the JWS", "SignedCertificate"), "404": _error("unknown id")},
                }
            },
            "/api/v1/certificates/{cert_id}/snapshot": {
                "get": {
                    "summary": "The drive's record as an eReuse DeviceHub Snapshot",
                    "parameters": [_ID],
                    "responses": {"200": _json("snapshot", "Snapshot"), "404": _error("unknown id")},
                }
            },
            "/api/v1/certificates": {
                "get": {
                    "summary": "Search your organisation's certificates",
                    "security": _AUTH,
                    "parameters": [
                        {"name": k, "in": "query", "schema": {"type": "string"}}
                        for k in ("serial", "asset_number", "station")
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
                        "422": _error("id does not match, or not a JSON object"),
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
                    "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}},
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
        },
    }
