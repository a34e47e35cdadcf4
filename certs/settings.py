"""Certificate settings: who erases, for whom, and where the drive goes next.

Loaded from a TOML file, either flat or under a ``[certificate]`` table::

    [certificate]
    technician = "Camille Martin"
    title = "Reuse technician"
    organisation = "Atelier Réemploi"
    location = "Lyon, France"
    contact = "+33 4 00 00 00 00"
    asset_number = "PC-2024-0173"      # property number of the donated machine
    donor = "Mairie de Villeurbanne"   # source of the media
    destination = "external_reuse"     # internal_reuse | external_reuse | recycling | manufacturer | other
    destination_details = "sold through the charity shop"
    verification_url = "https://example.org/verify"
    classification = "unclassified"
    post_classification = "unclassified"
    data_backed_up = "unknown"         # yes | no | unknown
    backup_location = ""
    language = "fr"                    # en | fr
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from certs import limits
from certs.errors import InvalidCertificate, SettingsError

DESTINATIONS = ("internal_reuse", "external_reuse", "recycling", "manufacturer", "other")
BACKUP_STATES = ("yes", "no", "unknown")
LANGUAGES = ("en", "fr")


@dataclass(frozen=True)
class CertSettings:
    technician: str = ""
    title: str = ""
    organisation: str = ""
    location: str = ""
    contact: str = ""
    asset_number: str = ""
    donor: str = ""
    destination: str = "other"
    destination_details: str = ""
    verification_url: str = ""
    classification: str = "unclassified"
    post_classification: str = "unclassified"
    data_backed_up: str = "unknown"
    backup_location: str = ""
    language: str = "en"

    def __post_init__(self) -> None:
        for f in fields(self):
            if not isinstance(getattr(self, f.name), str):
                raise SettingsError(f"setting '{f.name}' must be a string")
        if self.destination not in DESTINATIONS:
            raise SettingsError(
                f"unknown destination {self.destination!r}", hint="choose one of: " + ", ".join(DESTINATIONS)
            )
        if self.data_backed_up not in BACKUP_STATES:
            raise SettingsError(f"data_backed_up must be one of {', '.join(BACKUP_STATES)}")
        if self.language not in LANGUAGES:
            raise SettingsError(f"unknown language {self.language!r}", hint="choose en or fr")
        url = self.verification_url
        if url and not (url.startswith("https://") or url.startswith("http://")):
            raise SettingsError(f"verification_url must be an http(s) URL, got {url!r}")
        self._check_limits()

    def _check_limits(self) -> None:
        """What the certificate will hold fits its limits (certs/limits.py): a settings file with an
        over-long name is refused when it is read, before an erasure, never when the certificate is built."""
        try:
            limits.check_operator(
                {
                    "name": self.technician,
                    "title": self.title,
                    "organisation": self.organisation,
                    "location": self.location,
                    "contact": self.contact,
                    "asset_number": self.asset_number,
                    "donor": self.donor,
                }
            )
        except InvalidCertificate as e:
            raise SettingsError(e.message, hint="shorten it in the settings file") from e

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> CertSettings:
        table = data.get("certificate", data)
        if not isinstance(table, dict):
            raise SettingsError("[certificate] must be a table")
        known = {f.name for f in fields(cls)}
        unknown = sorted(k for k in table if k not in known and not isinstance(table[k], dict))
        if unknown:
            raise SettingsError(
                "unknown certificate setting(s): " + ", ".join(unknown),
                hint="known: " + ", ".join(sorted(known)),
            )
        return cls(**{k: v for k, v in table.items() if k in known})

    @classmethod
    def load(cls, path: Path) -> CertSettings:
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except OSError as e:
            raise SettingsError(f"cannot read settings file {path}: {e.strerror}") from e
        except tomllib.TOMLDecodeError as e:
            raise SettingsError(f"settings file {path} is not valid TOML: {e}") from e
        return cls.from_mapping(data)
