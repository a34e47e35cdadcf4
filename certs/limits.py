"""Field limits: ONE place for the sizes a certificate's fields may take.

Three parts of Tabula enforce them and must agree:

* the station, at **plan time** (:func:`check_operator`, :func:`check_drive`, and
  :class:`certs.settings.CertSettings`, which checks them on construction): an over-long asset
  number or donor is refused before a byte is written, never after the erasure when the certificate
  is built;
* the certificate model (:mod:`certs.model`): a certificate exceeding them cannot be built, and a
  signed payload exceeding them does not verify (``schema_error``);
* the hub (:mod:`hub.db`, :mod:`hub.ingest`): every value a valid certificate can hold is storable
  on SQLite and PostgreSQL (sequence numbers are 64-bit integers; text columns are ``TEXT``).

Lengths count characters (code points), as PostgreSQL's ``varchar(n)`` does.
"""

from __future__ import annotations

from collections.abc import Mapping

from certs.canonical import MAX_SAFE_INT
from certs.errors import InvalidCertificate
from host import refs

ASSET_NUMBER_MAX = refs.ASSET_NUMBER_MAX  # property number of the donated machine (host/refs.py)
LOT_MAX = refs.LOT_MAX  # a donation lot's reference: 1..64 of [A-Za-z0-9._/-] (host/refs.py)
DONOR_MAX = 200  # media.source: who donated the machine
PERSON_FIELD_MAX = 200  # technician's name, title, organisation, location, contact
DRIVE_FIELD_MAX = 512  # manufacturer, model, serial, WWN, firmware (SCSI VPD strings reach 255);
# 512 characters keep an indexed serial under PostgreSQL's 2,704-byte B-tree entry limit (4 bytes a character)
STATION_ID_MAX = 128  # same rule as certs.keys.check_station_id
ORGANISATION_NAME_MAX = 200
URL_MAX = 512  # the verification address a record signs (its QR code links there)  # the name a hub registers for an organisation key
SEQUENCE_MIN = 1
SEQUENCE_MAX = MAX_SAFE_INT  # canonical JSON integers stay within +/-(2**53 - 1); fits a BIGINT

#: Operator fields of a job plan (``station erase --asset/--donor``, TUI, settings) and their limits.
OPERATOR_FIELDS: dict[str, tuple[str, int]] = {
    "asset_number": ("asset number", ASSET_NUMBER_MAX),
    "donor": ("donor", DONOR_MAX),
    "name": ("technician's name", PERSON_FIELD_MAX),
    "title": ("technician's title", PERSON_FIELD_MAX),
    "organisation": ("organisation", PERSON_FIELD_MAX),
    "location": ("location", PERSON_FIELD_MAX),
    "contact": ("contact", PERSON_FIELD_MAX),
}

DRIVE_FIELDS = ("manufacturer", "model", "serial", "wwn", "firmware")


class FieldTooLong(InvalidCertificate):
    """A value is longer than a certificate may hold."""

    reason = "field_too_long"


def check_text(label: str, value: str | None, limit: int, *, nul: bool = True) -> None:
    """Refuse ``value`` over ``limit`` characters (and, unless ``nul=False``, holding a NUL)."""
    if value is None:
        return
    if len(value) > limit:
        raise FieldTooLong(
            f"the {label} is {len(value)} characters long; a certificate holds at most {limit}",
            hint=f"shorten the {label} to {limit} characters or fewer",
        )
    if nul and "\x00" in value:
        raise InvalidCertificate(f"the {label} contains a NUL character")


def check_lot(value: str | None) -> None:
    """Refuse a lot reference outside the shared rule (:func:`host.refs.lot_problem`); None is 'no lot'."""
    if value is None:
        return
    problem = refs.lot_problem(value)
    if problem is not None:
        raise InvalidCertificate(problem, hint="e.g. LOT-2026-03: letters, digits and . _ / -, at most 64")


def check_sequence(sequence: int) -> None:
    if not SEQUENCE_MIN <= sequence <= SEQUENCE_MAX:
        raise InvalidCertificate(f"sequence number {sequence} is outside {SEQUENCE_MIN}..{SEQUENCE_MAX}")


def check_operator(operator: Mapping[str, str]) -> None:
    """Plan-time check of the operator fields a job will write into its certificate."""
    for key, value in operator.items():
        if key in OPERATOR_FIELDS:
            label, limit = OPERATOR_FIELDS[key]
            check_text(label, value, limit)
        elif key == "lot":
            check_lot(value)


def check_drive(fields: Mapping[str, str | None]) -> None:
    """Plan-time check of the drive identity strings (they end up in the certificate's media)."""
    for key in DRIVE_FIELDS:
        check_text(f"drive {key}", fields.get(key), DRIVE_FIELD_MAX, nul=False)
