"""Identifiers as every route reads them: one normalisation (trim, lowercase), one check each."""

from __future__ import annotations

import re

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def normalise_id(value: str) -> str:
    """The one normalisation of a certificate or report id, used by every route: trim, lowercase."""
    return value.strip().lower()


def is_certificate_id(value: str) -> bool:
    return bool(_UUID.match(value))


def is_report_id(value: str) -> bool:
    return bool(_HEX64.match(value))
