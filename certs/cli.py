"""``station verify`` and ``station keys``: wired into station/cli.py through :func:`register`.

* ``station verify PATH... [--trust DIR]... [--chain] [--certs DIR]... [--json]``: lot reports among the
  files are verified as such (:mod:`certs.lotcli`); exit 0 only if every file is a valid,
  trusted, certified erasure or destruction record (and, with ``--chain``, every station's sequence is
  whole); 1 otherwise
  (including when no certificate was found); 2 when the verification itself could not run (bad trust
  store).  With ``--json`` the output is always one JSON document, ASCII only.  The human output
  escapes every control, bidirectional and invisible character of paths and fields (``\x1b``,
  ``\u202e``...), so a file name cannot draw a forged line.
* ``station keys init [--station-id ID]``: create the station key (0600, never printed).
* ``station keys init --org NAME``: create an organisation key (on the administrator's machine).
* ``station keys export [--org]``: print the public key file (PEM with its role and station id).
* ``station keys endorse --station-pub PEM --station-id ID [--not-before T] [--not-after T | --valid-days N]
  [-o FILE]``: sign an endorsement with the organisation key.
* ``station keys import-endorsement FILE``: install this station's endorsement so that every
  certificate carries it.
* ``station keys revoke (--kid HEX | --key PEM) [--reason R] [--at T] [--comment TEXT] [--list FILE]``:
  add a key to the organisation's signed revocation list (``revocations.json`` in the key directory by
  default), creating or extending it.

Without ``--trust``, ``verify`` trusts ``$TABULA_HOME/trust`` (if it exists) and this machine's own
station and organisation public keys.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from certs.errors import CertError, KeyStoreError, SchemaError, TrustStoreError
from certs.fsio import atomic_write, default_key_dir, default_trust_dir
from certs.jws import envelope_bytes, kid_of
from certs.keys import (
    endorse,
    export_public,
    init_org_key,
    init_station_key,
    install_endorsement,
    load_org_key,
    load_public_pem,
    parse_time,
    station_id_default,
)
from certs.logcheck import FileCheck, check_heads, check_log
from certs.logcli import load_log_keys
from certs.logcli import register as register_log
from certs.lotcli import claim_lot_reports, print_lot, split_lot_reports, verify_lots
from certs.lotreport import LotVerdict
from certs.revocation import REASONS, read_revocation_list, revoke
from certs.textout import JsonUsageParser, escape_text, json_safe, print_json, say
from certs.trust import TrustStore
from certs.verify import Verdict, Verifier

__all__ = ["escape_text", "main", "register", "report_json", "run_keys", "run_verify"]


def register(subparsers: Any) -> None:
    """Add ``verify`` and ``keys`` to an argparse sub-parsers object."""
    v = subparsers.add_parser(
        "verify", help="verify signed erasure certificates and lot reports offline (JSON, PDF, directories)"
    )
    v.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="certificate or lot report files (.json/.pdf), or directories",
    )
    v.add_argument(
        "--trust",
        action="append",
        type=Path,
        metavar="DIR",
        help="trust directory of public keys (*.pem), endorsements and revocation lists (*.json); repeatable",
    )
    v.add_argument(
        "--chain", action="store_true", help="also check each station's sequence for gaps and duplicates"
    )
    v.add_argument(
        "--chain-head",
        action="append",
        type=Path,
        metavar="FILE",
        help="a chain head the station signed (implies --chain; chain-head.json files in the folders count too)",
    )
    v.add_argument(
        "--log",
        action="append",
        type=Path,
        metavar="HUBKEY.pem",
        help="check each record's inclusion proof in the hub's transparency log (the hub's log key)",
    )
    v.add_argument(
        "--log-proof",
        action="append",
        type=Path,
        metavar="FILE",
        help="an inclusion proof (default: <id>.log.json next to each record); repeatable",
    )
    v.add_argument(
        "--certs",
        action="append",
        type=Path,
        metavar="DIR",
        help="for a lot report: the folder holding the certificates and destruction records it lists; repeatable",
    )
    v.add_argument("--json", action="store_true", help="machine-readable output")
    v.set_defaults(func=run_verify)
    _register_keys(subparsers)
    register_log(subparsers)


def _register_keys(subparsers: Any) -> None:
    k = subparsers.add_parser("keys", help="manage the station's signing key and endorsements")
    k.add_argument("--key-dir", type=Path, default=None, help="key directory (default: $TABULA_HOME/keys)")
    ks = k.add_subparsers(dest="keys_command", required=True)
    ki = ks.add_parser("init", help="create the station key (or, with --org, an organisation key)")
    ki.add_argument("--station-id", default=None, help="this station's name (default: the hostname)")
    ki.add_argument("--org", metavar="NAME", default=None, help="create an organisation key for NAME instead")
    ke = ks.add_parser("export", help="print the public key file (PEM with its role)")
    ke.add_argument(
        "--org", action="store_true", help="export the organisation key instead of the station key"
    )
    ken = ks.add_parser("endorse", help="endorse a station key with the organisation key")
    ken.add_argument("--station-pub", type=Path, required=True, help="the station's public key (PEM)")
    ken.add_argument("--station-id", required=True, help="the station's id (as shown by 'keys init')")
    ken.add_argument(
        "--not-before", type=_time_arg, default=None, help="start of validity (default: a day ago)"
    )
    valid = ken.add_mutually_exclusive_group()
    valid.add_argument("--not-after", type=_time_arg, default=None, help="end of validity (UTC timestamp)")
    valid.add_argument("--valid-days", type=int, default=None, help="validity in days (default: 1095)")
    ken.add_argument("-o", "--output", type=Path, default=None, help="write here instead of stdout")
    kim = ks.add_parser("import-endorsement", help="install this station's endorsement")
    kim.add_argument("file", type=Path)
    kr = ks.add_parser("revoke", help="add a key to the organisation's signed revocation list")
    which = kr.add_mutually_exclusive_group(required=True)
    which.add_argument("--kid", help="fingerprint of the key to revoke (64 hex characters)")
    which.add_argument("--key", type=Path, help="public key (PEM) to revoke")
    kr.add_argument("--reason", choices=REASONS, default="key_compromise")
    kr.add_argument("--at", type=_time_arg, default=None, help="revoked from this time (default: now)")
    kr.add_argument("--comment", default="", help="free text kept in the list")
    kr.add_argument(
        "--list",
        type=Path,
        default=None,
        help="the list to create or extend (default: KEY_DIR/revocations.json)",
    )
    k.set_defaults(func=run_keys)


def _time_arg(text: str) -> datetime:
    """A UTC time: 2026-03-01T10:00:00Z or 2026-03-01 (midnight UTC)."""
    value = text if "T" in text else f"{text}T00:00:00Z"
    try:
        return parse_time(value, "time")
    except SchemaError as e:
        raise argparse.ArgumentTypeError(e.message) from e


# --- output --------------------------------------------------------------------------------------


def _all_ok(verdicts: list[Verdict], files: list[FileCheck], lots: list[LotVerdict]) -> bool:
    """Something was checked, and everything holds."""
    checked = bool(verdicts) or bool(lots)
    return checked and all(v.valid for v in verdicts) and all(f.ok for f in files) and all(v.ok for v in lots)


def report_json(
    verdicts: list[Verdict],
    *,
    chain: bool,
    files: list[FileCheck] | None = None,
    lots: list[LotVerdict] | None = None,
) -> str:
    """The ``--json`` report: always valid JSON, ASCII only.

    ``ok``: every file is a valid erasure certificate or a valid destruction record (and every other
    file checked holds, every lot report too); ``valid`` counts the erasure certificates,
    ``destructions`` the valid destruction records (never erasures); ``lot_reports`` holds the
    verdict on each lot report (:mod:`certs.lotcli`).
    """
    files = files or []
    lots = lots or []
    ok = _all_ok(verdicts, files, lots)
    doc = {
        "ok": ok,
        "checked": len(verdicts),
        "valid": sum(v.ok for v in verdicts),
        "destructions": sum(v.valid and not v.ok for v in verdicts),
        "chain": chain,
        "results": [v.to_json() for v in verdicts],
        "files": [f.to_json() for f in files],
        "lot_reports": [v.to_json() for v in lots],
    }
    return json.dumps(json_safe(doc), indent=2, ensure_ascii=True)


def _print_verdict(v: Verdict) -> None:
    path = escape_text(v.path)
    if v.ok:
        say(f"OK    {path}: {escape_text(v.summary())}")
    elif v.valid:  # a destruction record: authentic, chained, and no erasure
        say(f"DESTROYED {path}: {escape_text(v.summary())}")
    else:
        say(f"FAIL  {path}")
        for reason, message in v.problems:
            say(f"      {reason}: {escape_text(message)}")
        if v.certificate is not None:
            say(f"      ({escape_text(v.summary())})")
    for note in v.notes:
        say(f"      note: {escape_text(note)}")


def _print_file(f: FileCheck) -> None:
    what = f.kind.replace("_", " ")
    say(f"{'OK   ' if f.ok else 'FAIL '} {escape_text(f.path)} ({what})")
    for reason, message in f.problems:
        say(f"      {reason}: {escape_text(message)}")
    for note in f.notes:
        say(f"      note: {escape_text(note)}")


# --- verify --------------------------------------------------------------------------------------


def _default_trust() -> TrustStore:
    store = TrustStore()
    trust_dir = default_trust_dir()
    if trust_dir.is_dir():
        store.add_dir(trust_dir)
    store.add_key_dir(default_key_dir())
    return store


def _setup_error(args: argparse.Namespace, e: Exception, reason: str) -> int:
    """The verification cannot run (trust store, log key): exit 2, with JSON when asked."""
    msg = e.diagnostics() if isinstance(e, CertError) else str(e)
    if args.json:
        print_json(
            {
                "ok": False,
                "checked": 0,
                "valid": 0,
                "error": {"reason": reason, "message": msg},
                "results": [],
            }
        )
    say(f"station verify: {escape_text(msg)}", sys.stderr)
    return 2


def _load(args: argparse.Namespace) -> tuple[TrustStore, dict[str, Ed25519PublicKey]]:
    if args.log_proof and not args.log:
        raise KeyStoreError("--log-proof needs the hub's log key: --log HUBKEY.pem")
    trust = TrustStore.load(args.trust) if args.trust else _default_trust()
    return trust, load_log_keys(args.log or [])


def _warn_about(trust: TrustStore) -> None:
    trust.revocations()  # reads the revocation lists now, so that ignored ones are reported first
    for warning in trust.warnings:
        say(f"station verify: warning: {escape_text(warning)}", sys.stderr)
    if not len(trust):
        say("station verify: warning: the trust store is empty; no certificate can be trusted", sys.stderr)


def _verify_all(
    args: argparse.Namespace, trust: TrustStore, log_keys: dict[str, Ed25519PublicKey], paths: list[Path]
) -> tuple[list[Verdict], list[FileCheck], bool]:
    """The verdicts on the records, the checks of the other files (proofs, chain heads), and --chain."""
    chain = bool(args.chain or args.chain_head)
    heads: list[Path] = list(args.chain_head or [])
    verdicts = Verifier(trust).verify_paths(paths, chain=chain, heads=heads) if paths else []
    files = check_log(verdicts, log_keys, args.log_proof or []) if log_keys else []
    if chain:
        files += check_heads(verdicts, heads, trust)
    return verdicts, files, chain


def _print_human(verdicts: list[Verdict], files: list[FileCheck], lots: list[LotVerdict]) -> None:
    for lot in lots:
        print_lot(lot)
    if lots and not verdicts and not files:
        return
    for v in verdicts:
        _print_verdict(v)
    for f in files:
        _print_file(f)
    if not verdicts:
        say("no certificate found", sys.stderr)
    destroyed = sum(v.valid and not v.ok for v in verdicts)
    line = f"{sum(v.ok for v in verdicts)}/{len(verdicts)} valid erasure certificate(s)"
    say(line + (f", {destroyed} valid destruction record(s)" if destroyed else ""))


def run_verify(args: argparse.Namespace) -> int:
    # pypdf logs every oddity of a damaged PDF; the verdicts say what matters
    logging.getLogger("pypdf").setLevel(logging.CRITICAL)
    try:
        trust, log_keys = _load(args)
    except (TrustStoreError, OSError) as e:
        return _setup_error(args, e, "trust_error")
    except KeyStoreError as e:
        return _setup_error(args, e, "log_key_error")
    _warn_about(trust)
    lot_files, paths = split_lot_reports(args.paths)
    verdicts, files, chain = _verify_all(args, trust, log_keys, paths)
    verdicts, found = claim_lot_reports(verdicts)
    if args.certs and not lot_files and not found:
        return _setup_error(
            args,
            KeyStoreError("--certs DIR checks the records a lot report lists: give a lot report"),
            "usage",
        )
    lots = verify_lots(lot_files + found, trust, args.certs or [], log_keys, args.log_proof or [])
    listed = {sha for lot in lots for sha in lot.listed_hashes()}  # proofs given for a lot's records
    files = [f for f in files if not (f.kind == "log_proof" and f.details.get("sha256") in listed)]
    if args.json:
        sys.stdout.write(report_json(verdicts, chain=chain, files=files, lots=lots) + "\n")
    else:
        _print_human(verdicts, files, lots)
    return 0 if _all_ok(verdicts, files, lots) else 1


# --- keys ----------------------------------------------------------------------------------------


def run_keys(args: argparse.Namespace) -> int:
    key_dir: Path = args.key_dir or default_key_dir()
    try:
        return _keys(args, key_dir)
    except CertError as e:
        print(f"station keys: {e.diagnostics()}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"station keys: {e.filename or ''}: {e.strerror}", file=sys.stderr)
        return 2


def _keys(args: argparse.Namespace, key_dir: Path) -> int:
    cmd = args.keys_command
    if cmd == "init":
        if args.org:
            key = init_org_key(key_dir, args.org)
            print(f"organisation key created for {key.name!r}: {key_dir / 'org.key'} (mode 0600)")
        else:
            key = init_station_key(key_dir, args.station_id or station_id_default())
            print(f"station key created for station {key.name!r}: {key_dir / 'station.key'} (mode 0600)")
        print(f"fingerprint (kid, SHA-256 of the public key DER): {key.kid}")
        return 0
    if cmd == "export":
        sys.stdout.write(export_public(key_dir, "org" if args.org else "station"))
        return 0
    if cmd == "endorse":
        return _endorse(args, key_dir)
    if cmd == "import-endorsement":
        e = install_endorsement(key_dir, args.file.read_bytes())
        print(f"endorsement by {e.organisation!r} installed for station {e.station_id!r} ({e.period()})")
        return 0
    if cmd == "revoke":
        return _revoke(args, key_dir)
    raise AssertionError(f"unknown keys command {cmd!r}")  # argparse enforces the choices


def _endorse(args: argparse.Namespace, key_dir: Path) -> int:
    org = load_org_key(key_dir)
    pub = load_public_pem(args.station_pub.read_bytes(), str(args.station_pub))
    not_after = args.not_after
    if args.valid_days is not None:
        if args.valid_days <= 0:
            raise KeyStoreError("--valid-days must be positive")
        not_after = datetime.now(UTC) + timedelta(days=args.valid_days)
    env = endorse(org, args.station_id, pub, not_before=args.not_before, not_after=not_after)
    data = envelope_bytes(env)
    if args.output:
        atomic_write(args.output, data)
        print(f"endorsement of station {args.station_id!r} written to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(data.decode("ascii"))
    return 0


def _revoke(args: argparse.Namespace, key_dir: Path) -> int:
    org = load_org_key(key_dir)
    kid = args.kid or kid_of(load_public_pem(args.key.read_bytes(), str(args.key)))
    path: Path = args.list or key_dir / "revocations.json"
    existing = None
    if path.exists():
        try:
            existing = read_revocation_list(path.read_bytes())
        except CertError as e:
            raise KeyStoreError(f"{path} is not a valid revocation list: {e.message}") from e
    env = revoke(org, kid, reason=args.reason, comment=args.comment, at=args.at, existing=existing)
    atomic_write(path, envelope_bytes(env))
    count = len(existing.revoked) + 1 if existing else 1
    print(f"key {kid[:16]} revoked ({args.reason}); {path} now lists {count} key(s): publish it to auditors")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point (``python -m certs.cli``) until station/cli.py wires these in."""
    parser = JsonUsageParser(prog="station")
    JsonUsageParser.expect_json(argv)
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
