"""The OpenAPI description of the donation-lot routes and destruction records (hub/openapi.py
assembles it)."""

from __future__ import annotations

from typing import Any


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"type": "object"}}}}


_EITHER: list[dict[str, list[str]]] = [{"station_token": []}, {"staff_token": []}]
_STAFF: list[dict[str, list[str]]] = [{"staff_token": []}]
_LOT_ID = {"name": "lot_id", "in": "path", "required": True, "schema": {"type": "integer"}}
_HTML = {"description": "HTML", "content": {"text/html": {}}}
_LANG = {"name": "lang", "in": "query", "schema": {"enum": ["en", "fr"]}}
_REFUSALS = {
    "401": _error("no, unknown, expired or revoked token"),
    "403": _error("wrong_role: this needs a staff token of the lot's organisation"),
    "404": _error("unknown_lot / unknown_asset (in your organisation)"),
    "422": _error("a field is wrong: bad_<field> names it; malformed: not a JSON object"),
}

LOT_BODY = {
    "type": "object",
    "required": ["reference", "donor_name", "donor_kind", "received_on"],
    "properties": {
        "reference": {"type": "string", "pattern": "^[A-Za-z0-9._/-]{1,64}$"},
        "donor_name": {"type": "string", "maxLength": 200},
        "donor_kind": {"enum": ["company", "public_body", "household"]},
        "received_on": {"type": "string", "format": "date"},
        "contact": {"type": "string", "maxLength": 200, "description": "personal data (retention rule)"},
    },
}
DEVICE_BODY = {
    "type": "object",
    "required": ["asset_number", "kind"],
    "properties": {
        "asset_number": {"type": "string", "maxLength": 200},
        "kind": {"enum": ["laptop", "desktop", "phone", "tablet", "server", "drive"]},
        "manufacturer": {"type": "string"},
        "model": {"type": "string"},
        "serial": {"type": "string"},
        "received_at": {"type": "string", "format": "date-time"},
    },
}
EVENT_BODY = {
    "type": "object",
    "required": ["asset_number", "kind"],
    "properties": {
        "asset_number": {"type": "string"},
        "kind": {"enum": ["repaired", "outcome"]},
        "outcome": {"enum": ["reused", "sold", "recycled", "destroyed"]},
        "detail": {
            "type": "string",
            "maxLength": 500,
            "description": "reused: the beneficiary category (household, student, association, job_seeker, "
            "other), never a person; recycled: the named WEEE channel",
        },
        "at": {"type": "string", "format": "date-time"},
    },
}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def lot_paths() -> dict[str, Any]:
    return {
        "/api/v1/lots": {
            "post": {"summary": "Create a donation lot (staff)", "security": _STAFF, "requestBody": _body(LOT_BODY),
                     "responses": {"201": _json("the lot"), "409": _error("lot_exists"), **_REFUSALS}},
            "get": {"summary": "Look a lot up by reference (what a station checks at a machine's start)",
                    "security": _EITHER,
                    "parameters": [{"name": "reference", "in": "query", "required": True, "schema": {"type": "string"}}],
                    "responses": {"200": _json("the lot (closed_at null while open) and its number of devices"),
                                  **_REFUSALS}},
        },
        "/api/v1/lots/{lot_id}": {
            "get": {"summary": "A lot with every device's progress (the contact for staff only)",
                    "security": _EITHER, "parameters": [_LOT_ID],
                    "responses": {"200": _json("lot, counts, devices"), **_REFUSALS}},
        },
        "/api/v1/lots/{lot_id}/devicehub": {
            "get": {"summary": "The lot as an eReuse DeviceHub Lot: one Snapshot per device, with its events",
                    "security": _EITHER, "parameters": [_LOT_ID],
                    "responses": {"200": _json("DeviceHub Lot"), **_REFUSALS}},
        },
        "/api/v1/lots/{lot_id}/close": {
            "post": {"summary": "Close a lot (staff); events are then refused (409 lot_closed)",
                     "security": _STAFF, "parameters": [_LOT_ID], "responses": {"200": _json("the lot"), **_REFUSALS}},
        },
        "/api/v1/lots/{lot_id}/donor-link": {
            "post": {"summary": "A new capability link to the donor page, shown once (replaces the previous)",
                     "security": _STAFF, "parameters": [_LOT_ID],
                     "responses": {"201": _json("url and token"), **_REFUSALS}},
            "delete": {"summary": "Withdraw the donor link", "security": _STAFF, "parameters": [_LOT_ID],
                       "responses": {"200": _json("done"), **_REFUSALS}},
        },
        "/api/v1/lots/{lot_id}/devices": {
            "post": {"summary": "Register a device in an open lot (its received event); the same again is 200",
                     "security": _EITHER, "parameters": [_LOT_ID], "requestBody": _body(DEVICE_BODY),
                     "responses": {"201": _json("stored"), "200": _json("already stored"),
                                   "409": _error("asset_in_other_lot, asset_kind, lot_closed"), **_REFUSALS}},
        },
        "/api/v1/devices": {
            "get": {"summary": "A device's progress and lot, by asset number", "security": _EITHER,
                    "parameters": [{"name": "asset_number", "in": "query", "required": True,
                                    "schema": {"type": "string"}}],
                    "responses": {"200": _json("lot and device"), **_REFUSALS}},
        },
        "/api/v1/events": {
            "post": {"summary": "Record that a device was repaired, or its outcome", "security": _EITHER,
                     "requestBody": _body(EVENT_BODY),
                     "responses": {"201": _json("recorded"), "409": _error("lot_closed"), **_REFUSALS}},
        },
        "/lots/{lot_id}": {
            "get": {"summary": "Staff page of a lot (HTTP Basic: the staff token as password)",
                    "parameters": [_LOT_ID, _LANG], "responses": {"200": _HTML, "401": {"description": "sign in"}}},
        },
        "/donor/{token}": {
            "get": {"summary": "The donor's page of one lot (capability link)",
                    "parameters": [{"name": "token", "in": "path", "required": True, "schema": {"type": "string"}},
                                   _LANG],
                    "responses": {"200": _HTML, "404": {"description": "unknown or withdrawn link"}}},
        },
    }  # fmt: skip


def stats_paths() -> dict[str, Any]:
    coordinator: list[dict[str, list[str]]] = [{"staff_token": []}]
    refusals = {
        "401": _error("no or unknown token"),
        "403": _error("wrong_role: a coordinator's token is needed"),
    }
    return {
        "/stats": {"get": {"summary": "Network statistics, HTML with SVG charts (coordinator; HTTP Basic)",
                           "security": coordinator, "parameters": [_LANG], "responses": {"200": _HTML, **refusals}}},
        "/api/v1/stats": {"get": {"summary": "Network statistics as JSON (coordinator)", "security": coordinator,
                                  "responses": {"200": _json("statistics"), **refusals}}},
        "/api/v1/stats.csv": {"get": {"summary": "Network statistics as CSV: metric,workshop,month,key,value",
                                      "security": coordinator,
                                      "responses": {"200": {"description": "CSV", "content": {"text/csv": {}}},
                                                    **refusals}}},
    }  # fmt: skip


def destruction_paths() -> dict[str, Any]:
    return {
        "/api/v1/destructions/{record_id}": {
            "put": {
                "summary": "Upload a signed destruction record (tabula-destruction+json): verified, numbered "
                "in the station's chain with its certificates, logged; never an erasure",
                "security": [{"station_token": []}],
                "parameters": [
                    {
                        "name": "record_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "format": "uuid"},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/SignedCertificate"}}
                    },
                },
                "responses": {
                    "201": _json("stored (with its inclusion proof in the log)"),
                    "200": _json("already stored"),
                    "401": _error("no token"),
                    "403": _error("foreign_signature"),
                    "409": _error("id_conflict, chain_duplicate"),
                    "422": _error(
                        "malformed, bad_signature, unknown_key, schema_error, id_mismatch, chain_break"
                    ),
                },
            }
        }
    }
