"""``station verify`` and ``station keys``: wired into station/cli.py through :func:`register`.

* ``station verify PATH... [--trust DIR]... [--chain] [--json]``: exit 0 only if every file is a valid,
  trusted, certified erasure (and, with ``--chain``, every station's sequence is whole); 1 otherwise;
  2 when the verification itself could not run (bad trust store).
* ``station keys init [--station-id ID]``: create the station key (0600, never printed).
* ``station keys init --org NAME``: create an organisation key (on the administrator's machine).
* ``station keys export [--org]``: print the public key (PEM).
* ``station keys endorse --station-pub PEM --station-id ID [-o FILE]``: sign an endorsement with the
  organisation key.
* ``station keys import-endorsement FILE``: install this station's endorsement so that every
  certificate carries it.

Without ``--trust``, ``verify`` trusts ``$TABULA_HOME/trust`` (if it exists) and this machine's own
station and organisation public keys.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from certs.errors import CertError, TrustStoreError
from certs.fsio import atomic_write, default_key_dir, default_trust_dir
from certs.jws import envelope_bytes
from certs.keys import (
    endorse,
    export_public,
    init_org_key,
    init_station_key,
    install_endorsement,
    load_org_key,
    load_public_pem,
    station_id_default,
)
from certs.trust import TrustStore
from certs.verify import Verifier


def register(subparsers: Any) -> None:
    """Add ``verify`` and ``keys`` to an argparse sub-parsers object."""
    v = subparsers.add_parser(
        "verify", help="verify signed erasure certificates offline (JSON, PDF, directories)"
    )
    v.add_argument(
        "paths", nargs="+", type=Path, metavar="PATH", help="certificate files (.json/.pdf) or directories"
    )
    v.add_argument(
        "--trust",
        action="append",
        type=Path,
        metavar="DIR",
        help="trust directory of public keys (*.pem) and endorsements (*.json); repeatable",
    )
    v.add_argument(
        "--chain", action="store_true", help="also check each station's sequence for gaps and duplicates"
    )
    v.add_argument("--json", action="store_true", help="machine-readable output")
    v.set_defaults(func=run_verify)

    k = subparsers.add_parser("keys", help="manage the station's signing key and endorsements")
    k.add_argument("--key-dir", type=Path, default=None, help="key directory (default: $TABULA_HOME/keys)")
    ks = k.add_subparsers(dest="keys_command", required=True)
    ki = ks.add_parser("init", help="create the station key (or, with --org, an organisation key)")
    ki.add_argument("--station-id", default=None, help="this station's name (default: the hostname)")
    ki.add_argument("--org", metavar="NAME", default=None, help="create an organisation key for NAME instead")
    ke = ks.add_parser("export", help="print the public key (PEM)")
    ke.add_argument(
        "--org", action="store_true", help="export the organisation key instead of the station key"
    )
    ken = ks.add_parser("endorse", help="endorse a station key with the organisation key")
    ken.add_argument("--station-pub", type=Path, required=True, help="the station's public key (PEM)")
    ken.add_argument("--station-id", required=True, help="the station's id (as shown by 'keys init')")
    ken.add_argument("-o", "--output", type=Path, default=None, help="write here instead of stdout")
    kim = ks.add_parser("import-endorsement", help="install this station's endorsement")
    kim.add_argument("file", type=Path)
    k.set_defaults(func=run_keys)


def _default_trust() -> TrustStore:
    store = TrustStore()
    trust_dir = default_trust_dir()
    if trust_dir.is_dir():
        store.add_dir(trust_dir)
    key_dir = default_key_dir()
    for name in ("station.pub.pem", "org.pub.pem"):
        p = key_dir / name
        if p.is_file():
            store.add_pem(p.read_bytes(), str(p))
    return store


def run_verify(args: argparse.Namespace) -> int:
    try:
        trust = TrustStore.load(args.trust) if args.trust else _default_trust()
    except (TrustStoreError, OSError) as e:
        msg = e.diagnostics() if isinstance(e, CertError) else str(e)
        print(f"station verify: {msg}", file=sys.stderr)
        return 2
    if not len(trust):
        print(
            "station verify: warning: the trust store is empty; no certificate can be trusted",
            file=sys.stderr,
        )
    verdicts = Verifier(trust).verify_paths(args.paths, chain=args.chain)
    ok = bool(verdicts) and all(v.ok for v in verdicts)
    if args.json:
        out = {
            "ok": ok,
            "checked": len(verdicts),
            "valid": sum(v.ok for v in verdicts),
            "chain": bool(args.chain),
            "results": [v.to_json() for v in verdicts],
        }
        print(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        for v in verdicts:
            if v.ok:
                print(f"OK    {v.path}: {v.summary()}")
            else:
                print(f"FAIL  {v.path}")
                for reason, message in v.problems:
                    print(f"      {reason}: {message}")
                if v.certificate is not None:
                    print(f"      ({v.summary()})")
        if not verdicts:
            print("no certificate found", file=sys.stderr)
        print(f"{sum(v.ok for v in verdicts)}/{len(verdicts)} valid erasure certificate(s)")
    return 0 if ok else 1


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
        org = load_org_key(key_dir)
        pub = load_public_pem(args.station_pub.read_bytes(), str(args.station_pub))
        env = endorse(org, args.station_id, pub)
        data = envelope_bytes(env)
        if args.output:
            atomic_write(args.output, data)
            print(f"endorsement of station {args.station_id!r} written to {args.output}", file=sys.stderr)
        else:
            sys.stdout.write(data.decode("ascii"))
        return 0
    if cmd == "import-endorsement":
        e = install_endorsement(key_dir, args.file.read_bytes())
        print(f"endorsement by {e.organisation!r} installed for station {e.station_id!r}")
        return 0
    raise AssertionError(f"unknown keys command {cmd!r}")  # argparse enforces the choices


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point (``python -m certs.cli``) until station/cli.py wires these in."""
    parser = argparse.ArgumentParser(prog="station")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
