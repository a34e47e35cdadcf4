"""Plain words for what the station shows people: methods and standards, media, outcomes, times, ids.

A trainee reads "zéros, 1 passe" and one sentence saying what it does, not ``zero``; "fichier" and what
that means, not ``LOOP``; ``3f2a9c1e`` not a whole UUID; ``29/11/2026 14:05`` (local time) not an ISO
timestamp.  Shared by the TUI and the headless commands (no Textual here); the strings are in the
station's gettext catalog (marked with ``N_`` here, translated with ``_`` when shown).
"""

from __future__ import annotations

from datetime import datetime

from station.i18n import N_, _, current_language, tr

#: Each overwrite method and NIST policy: a short plain name.
METHOD_TITLES: dict[str, str] = {
    "nist-clear": N_("NIST Clear (recommended)"),
    "nist-purge": N_("NIST Purge (drive's own erase commands)"),
    "zero": N_("Zeros, 1 pass"),
    "one": N_("Ones (0xFF), 1 pass"),
    "prng": N_("Random data, 1 pass"),
    "dod-short": N_("DoD 5220.22-M, 3 passes"),
    "dod-7": N_("DoD 5220.22-M ECE, 7 passes"),
    "gutmann": N_("Gutmann, 35 passes"),
    "hmg-is5-baseline": N_("HMG IS5 baseline, 1 pass"),
    "hmg-is5-enhanced": N_("HMG IS5 enhanced, 3 passes"),
    "rcmp-ops-ii": N_("RCMP TSSIT OPS-II, 7 passes"),
    "bsi-vsitr": N_("BSI VSITR, 7 passes"),
    "ism": N_("Australian ISM, 1 random pass"),
    "custom": N_("Your own pattern, 1 pass"),
}

#: Each method and standard in one plain sentence: what it does, and whether it is worth it.
METHOD_HELP: dict[str, str] = {
    "nist-clear": N_(
        "NIST SP 800-88 Clear: every sector is overwritten once and read back; ordinary recovery tools "
        "find nothing."
    ),
    "nist-purge": N_(
        "NIST SP 800-88 Purge: the drive erases itself with its own command, even the spare areas "
        "overwriting cannot reach; stronger, for SSD, NVMe and USB flash."
    ),
    "zero": N_("Writes zeros (0x00, every bit off) over the whole drive, then reads it all back."),
    "one": N_("Writes ones (0xFF, every bit on) over the whole drive, then reads it all back."),
    "prng": N_(
        "Writes random-looking data (AES-128-CTR: made from a secret key, so it can be checked) over the "
        "whole drive, then reads it back."
    ),
    "dod-short": N_(
        "An old US defence method (DoD 5220.22-M, 1995): zeros, ones, then random data. "
        "Three times longer, no safer on today's drives."
    ),
    "dod-7": N_(
        "The 7-pass version of that US defence method (DoD 5220.22-M ECE). Seven times longer, no safer "
        "on today's drives."
    ),
    "gutmann": N_(
        "35 passes made in 1996 for very old drives (MFM/RLL encodings). Very long, useless on modern drives."
    ),
    "hmg-is5-baseline": N_("UK government standard (HMG IS5), baseline: one pass of zeros."),
    "hmg-is5-enhanced": N_("UK government standard (HMG IS5), enhanced: zeros, ones, then random data."),
    "rcmp-ops-ii": N_(
        "Canadian police standard (RCMP TSSIT OPS-II): zeros and ones three times each, then random data."
    ),
    "bsi-vsitr": N_("German federal standard (BSI VSITR): zeros and ones three times each, then 0xAA."),
    "ism": N_("Australian government standard (ISM): one pass of random data."),
    "custom": N_("One pass of a byte pattern you choose."),
}

#: Jargon the screens show, explained once where it appears.
TERMS: dict[str, str] = {
    "wwn": N_("WWN: the number the maker gave this drive, unique in the world"),
    "smart": N_("SMART: the drive's own health report"),
    "loop": N_("a file used as a drive (demonstration, tests)"),
    "virtual": N_("a virtual machine's drive"),
    "serial": N_("the serial number printed on the drive's label"),
}

MEDIA_WORDS: dict[str, str] = {
    "hdd": N_("hard disk"),
    "ssd": N_("SSD"),
    "nvme": N_("NVMe SSD"),
    "usb": N_("USB drive"),
    "mmc": N_("SD/MMC card"),
    "virtual": N_("virtual drive"),
    "loop": N_("file (loop)"),
    "unknown": N_("unknown type"),
}

OUTCOME_WORDS: dict[str, str] = {
    "verified": N_("erased and verified"),
    "unverified": N_("erased, not verified"),
    "failed": N_("FAILED"),
    "interrupted": N_("interrupted"),
    "running": N_("running"),
    "unreadable": N_("unreadable journal"),
}


def method_title(name: str) -> str:
    known = METHOD_TITLES.get(name)
    return _(known) if known is not None else name


def method_help(name: str) -> str:
    known = METHOD_HELP.get(name)
    return _(known) if known is not None else ""


def method_line(name: str) -> str:
    """``Zeros, 1 pass: Writes zeros ...`` for lists of methods."""
    help_text = method_help(name)
    return f"{method_title(name)}: {help_text}" if help_text else method_title(name)


def term(key: str) -> str:
    return _(TERMS[key])


def media_words(media_type: str, transport: str = "") -> str:
    key = "loop" if transport == "loop" else media_type
    known = MEDIA_WORDS.get(key)
    return _(known) if known is not None else media_type


def outcome_word(outcome: str) -> str:
    known = OUTCOME_WORDS.get(outcome)
    return _(known) if known is not None else outcome


def short_id(job_id: str) -> str:
    """The first 8 characters of a UUID: enough to find a job (``station jobs``, the folder name)."""
    return job_id[:8]


def local_time(iso: str | None, *, seconds: bool = False) -> str:
    """A recorded UTC time as people read it, in local time: ``29/11/2026 14:05`` (English ``2026-11-29 14:05``)."""
    if not iso:
        return "-"
    try:
        t = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone()
    except ValueError:
        return iso
    date = "%d/%m/%Y" if current_language() == "fr" else "%Y-%m-%d"
    return t.strftime(f"{date} %H:%M:%S" if seconds else f"{date} %H:%M")


def lot_check_words(reference: str, state: str, detail: str) -> str | None:
    """What a person is told after the hub was asked about a lot reference (None: nothing to say).

    A warning only: the records are signed with the lot whatever the hub says (station.sync.lots).
    """
    if state == "unknown":
        return _(
            "Lot {lot} is unknown to the hub. Check the reference; the records are signed with it anyway "
            "and linked once the lot exists on the hub."
        ).format(lot=reference)
    if state == "closed":
        return _("Lot {lot} was closed on the hub on {date}. The records are signed with it anyway.").format(
            lot=reference, date=local_time(detail) if detail else "?"
        )
    if state == "pending":
        return _(
            "Lot {lot} could not be checked with the hub ({why}): it will be at the next sync. "
            "Nothing is lost."
        ).format(lot=reference, why=tr(detail))
    return None
