"""``station log``: check the hub's transparency log offline, with nothing but its public log key.

::

    station log consistency --log HUBKEY.pem OLD NEW [--proof FILE] [--json]

``OLD`` and ``NEW`` are files holding a signed tree head: a tree head itself (``GET /api/v1/log/tree-head``),
an inclusion proof (``<id>.log.json``) or a consistency proof (``GET /api/v1/log/consistency?first=M``,
which carries the hub's newest tree head and the proof from size M to it).  The command checks both
signatures and the consistency proof between them: the newer tree keeps every leaf of the older one,
in order, so the hub never rewrote (or forked) its history between the two.  The proof comes from
``NEW`` when it is a consistency proof, else from ``--proof``.

Exit status: 0 consistent; 1 not (``inconsistent_tree``, ``sth_bad_signature``, ``log_key_unknown``,
``proof_malformed``...); 2 when the check could not run (unreadable log key).
``station verify --log HUBKEY.pem`` checks inclusion proofs (:mod:`certs.logcheck`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from certs.errors import CertError, KeyStoreError, ProofMalformed
from certs.logcheck import FileCheck, guarded_check
from certs.textout import escape_text, print_json, say
from certs.tlog import (
    ConsistencyFile,
    TreeHead,
    check_consistency,
    read_consistency,
    read_log_key,
    tree_head_of,
)
from certs.verify import read_capped


def load_log_keys(paths: list[Path]) -> dict[str, Ed25519PublicKey]:
    """The log keys given with ``--log``; raises :class:`KeyStoreError` for an unusable file."""
    keys: dict[str, Ed25519PublicKey] = {}
    for path in paths:
        try:
            data = read_capped(path)
        except CertError as e:
            raise KeyStoreError(f"the log key {path}: {e.message}") from e
        kid, key = read_log_key(data, str(path))
        keys[kid] = key
    return keys


def register(subparsers: Any) -> None:
    lg = subparsers.add_parser("log", help="check the traceability hub's transparency log offline")
    ls = lg.add_subparsers(dest="log_command", required=True)
    c = ls.add_parser(
        "consistency",
        help="check that a newer signed tree head extends an older one (the hub never rewrote history)",
    )
    c.add_argument("--log", action="append", type=Path, required=True, metavar="HUBKEY.pem")
    c.add_argument("old", type=Path, help="a file holding the older signed tree head")
    c.add_argument("new", type=Path, help="a consistency proof from the hub, or a newer signed tree head")
    c.add_argument("--proof", type=Path, help="the consistency proof, when NEW is a bare tree head")
    c.add_argument("--json", action="store_true", help="machine-readable output")
    lg.set_defaults(func=run_log)


def _proof(old: TreeHead, new: TreeHead, carried: ConsistencyFile | None, given: Path | None) -> list[bytes]:
    if old.tree_size in (0, new.tree_size):
        return []  # nothing to prove: equal trees must have equal roots, any tree extends the empty one
    found = read_consistency(read_capped(given)) if given is not None else carried
    if found is None:
        raise ProofMalformed(
            f"no consistency proof from size {old.tree_size} to {new.tree_size}: save the hub's "
            f"/api/v1/log/consistency?first={old.tree_size}&second={new.tree_size} and pass it as NEW or --proof"
        )
    if (found.first_size, found.tree_size) != (old.tree_size, new.tree_size):
        raise ProofMalformed(
            f"the consistency proof goes from size {found.first_size} to {found.tree_size}, "
            f"the tree heads have {old.tree_size} and {new.tree_size} leaves"
        )
    return found.consistency


def _consistency(args: argparse.Namespace, keys: dict[str, Ed25519PublicKey], check: FileCheck) -> None:
    old, carried_old = tree_head_of(read_capped(args.old), keys)
    new, carried = tree_head_of(read_capped(args.new), keys)
    carried = carried or carried_old
    if old.tree_size > new.tree_size:  # given the other way round: the proof's sizes are checked
        old, new = new, old
    check.details.update(
        old={"tree_size": old.tree_size, "root_hash": old.root_hash.hex(), "timestamp": old.timestamp},
        new={"tree_size": new.tree_size, "root_hash": new.root_hash.hex(), "timestamp": new.timestamp},
        log_id=new.log_id,
    )
    check_consistency(old, new, _proof(old, new, carried, args.proof))
    check.notes.append(
        f"the {new.describe()} extends the tree of {old.tree_size} signed {old.timestamp}: "
        "the log kept every earlier certificate hash, in order"
    )


def run_log(args: argparse.Namespace) -> int:
    try:
        keys = load_log_keys(args.log)
    except CertError as e:
        if args.json:
            print_json({"ok": False, "error": {"reason": e.reason, "message": e.message}})
        say(f"station log: {escape_text(e.diagnostics())}", sys.stderr)
        return 2
    check = FileCheck(str(args.new), "consistency")
    guarded_check(check, lambda: _consistency(args, keys, check))
    if args.json:
        print_json(check.to_json())
    elif check.ok:
        for note in check.notes:
            say(f"OK    {escape_text(note)}")
    else:
        say(f"FAIL  {escape_text(str(args.old))} -> {escape_text(str(args.new))}")
        for reason, message in check.problems:
            say(f"      {reason}: {escape_text(message)}")
    return 0 if check.ok else 1
