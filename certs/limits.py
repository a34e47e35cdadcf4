"""Field limits: ONE place for the sizes a certificate's fields may take.

Three parts of Tabula enforce them and must agree:

* the station, at **plan time** (:func:`check_operator`, :func:`check_drive`): an over-long asset
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
from typing import TYPE_CHECKING

from certs.canonical import MAX_SAFE_INT
from certs.errors import InvalidCertificate

if TYPE_CHECKING:
    from certs.settings import CertSettings

ASSET_NUMBER_MAX = 200  # property number of the donated machine
DONOR_MAX = 200  # media.source: who donated the machine
PERSON_FIELD_MAX = 200  # technician's name, title, organisation, location, contact
DRIVE_FIELD_MAX = 512  # manufacturer, model, serial, WWN, firmware (SCSI VPD strings reach 255);
# 512 characters keep an indexed serial under PostgreSQL's 2,704-byte B-tree entry limit (4 bytes a character)
STATION_ID_MAX = 128  # same rule as certs.keys.check_station_id
ORGANISATION_NAME_MAX = 200  # the name a hub registers for an organisation key
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


def check_sequence(sequence: int) -> None:
    if not SEQUENCE_MIN <= sequence <= SEQUENCE_MAX:
        raise InvalidCertificate(f"sequence number {sequence} is outside {SEQUENCE_MIN}..{SEQUENCE_MAX}")


def check_operator(operator: Mapping[str, str]) -> None:
    """Plan-time check of the operator fields a job will write into its certificate."""
    for key, value in operator.items():
        if key in OPERATOR_FIELDS:
            label, limit = OPERATOR_FIELDS[key]
            check_text(label, value, limit)


def check_drive(fields: Mapping[str, str | None]) -> None:
    """Plan-time check of the drive identity strings (they end up in the certificate's media)."""
    for key in DRIVE_FIELDS:
        check_text(f"drive {key}", fields.get(key), DRIVE_FIELD_MAX, nul=False)


def check_settings(settings: CertSettings) -> None:
    """Plan-time check of the certificate settings (technician, organisation, asset, donor...).

    For the station to call before an erasure, as it does :func:`check_operator`: an over-long
    technician name in the settings file would otherwise stop the certificate after the erasure.
    """
    check_operator(
        {
            "name": settings.technician,
            "title": settings.title,
            "organisation": settings.organisation,
            "location": settings.location,
            "contact": settings.contact,
            "asset_number": settings.asset_number,
            "donor": settings.donor,
        }
    )
