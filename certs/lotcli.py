"""``station verify`` for lot reports: told apart by their signed type, checked with their records.

``station verify REPORT.json|REPORT.pdf [--certs DIR]... [--trust DIR] [--log HUBKEY.pem]
[--log-proof FILE] [--json]``: each file given that is a lot report (``typ:
tabula-lot-report+json``, or a PDF embedding one) is verified as one (:mod:`certs.lotreport`:
signature, an organisation key of the trust store, the schema; for a PDF its page too), then every
record it lists is looked for in the ``--certs`` folders or, with ``--log``, proven in the hub's log
(:mod:`certs.lotcheck`).  Other paths are verified as certificates, as always.  The exit status is
the verifier's: 0 only when every lot report (and every other file) holds.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from certs.lotcheck import check_records, read_lot_file, verify_lot_file
from certs.lotreport import LotVerdict
from certs.textout import escape_text, say
from certs.trust import TrustStore
from certs.verify import Verdict


def split_lot_reports(paths: list[Path]) -> tuple[list[tuple[Path, bytes]], list[Path]]:
    """The lot report files among ``paths`` (with their bytes), and every other path.

    Folders are walked by the certificate verifier; lot reports met there are then claimed back
    (:func:`claim_lot_reports`)."""
    lots: list[tuple[Path, bytes]] = []
    others: list[Path] = []
    for p in paths:
        data = None if p.is_dir() else read_lot_file(p)
        if data is None:
            others.append(p)
        else:
            lots.append((p, data))
    return lots, others


def claim_lot_reports(verdicts: list[Verdict]) -> tuple[list[Verdict], list[tuple[Path, bytes]]]:
    """Lot reports met in folders: the certificate verifier refused them as what they are not
    (``malformed``: another signed type; ``pdf_structure``: another attachment).  They are taken
    out of the certificate verdicts, to be verified as lot reports."""
    kept: list[Verdict] = []
    claimed: list[tuple[Path, bytes]] = []
    for v in verdicts:
        data = read_lot_file(Path(v.path)) if v.reason in ("malformed", "pdf_structure") else None
        if data is None:
            kept.append(v)
        else:
            claimed.append((Path(v.path), data))
    return kept, claimed


def verify_lots(
    lots: list[tuple[Path, bytes]],
    trust: TrustStore,
    certs: list[Path],
    log_keys: dict[str, Ed25519PublicKey],
    proofs: list[Path],
) -> list[LotVerdict]:
    """Each lot report's verdict, with its records checked when folders or a log key are given."""
    verdicts = []
    for path, data in lots:
        v = verify_lot_file(path, trust, data)
        if certs or log_keys:
            check_records(v, trust, certs, log_keys, proofs)
        elif v.report is not None:
            v.notes.append("its records were not checked: give the folder that holds them (--certs DIR)")
        verdicts.append(v)
    return verdicts


def print_lot(v: LotVerdict) -> None:
    path = escape_text(v.path)
    if v.ok:
        say(f"OK    {path}: {escape_text(v.summary())}")
    else:
        say(f"FAIL  {path}")
        for reason, message in v.problems:
            say(f"      {reason}: {escape_text(message)}")
        if v.report is not None:
            say(f"      ({escape_text(v.summary())})")
    if v.records_checked:
        good = sum(c.ok for c in v.records)
        say(f"      {good}/{len(v.records)} listed record(s) found and matching")
    for note in v.notes:
        say(f"      note: {escape_text(note)}")
