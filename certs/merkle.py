"""Merkle tree hashing and proofs of RFC 9162 (Certificate Transparency 2.0), section 2.1.

Pure functions, no I/O: the hub builds its transparency log with them and ``station verify --log``
checks the proofs with them, so both sides compute the same thing.

* ``leaf_hash(d) = SHA-256(0x00 || d)`` and ``node_hash(l, r) = SHA-256(0x01 || l || r)``; the hash
  of the empty tree is ``SHA-256()``;
* the tree of ``n`` leaves splits at ``k``, the largest power of two below ``n`` (RFC 9162 2.1.1).

**Storage.**  A *node* ``(level, index)`` is the hash of the complete subtree of leaves
``[index * 2**level, (index + 1) * 2**level)``.  Appending a leaf creates its level-0 node plus one
node per level it completes (two per leaf on average: :class:`Frontier`); nodes never change.  The
hash of any subtree the RFC's algorithms name (and so every proof and every root) is a fold of at
most ``log2(n)`` stored nodes: :func:`range_nodes` lists them, so a store answers a proof with one
read of O(log n) rows (:func:`proof_nodes` then :func:`inclusion_proof` / :func:`consistency_proof`).

**Verification** follows RFC 9162 2.1.3.2 (inclusion) and 2.1.4.2 (consistency) to the letter.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

HASH_SIZE = 32
#: The hash of the empty tree, ``SHA-256()``.
EMPTY_ROOT = hashlib.sha256(b"").digest()
#: Largest tree size handled (JSON-safe integers; a proof is then at most 53 hashes).
MAX_TREE_SIZE = 2**53 - 1

Node = tuple[int, int]  # (level, index)


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """k: the largest power of two smaller than ``n`` (``n`` >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


# --- subtrees as stored nodes -------------------------------------------------------------------


def range_nodes(start: int, end: int) -> list[Node]:
    """The stored nodes whose fold is the hash of the subtree of leaves ``[start, end)``.

    Valid for the subtrees RFC 9162's algorithms name (``start`` is a multiple of a power of two at
    least ``end - start``): greedy aligned blocks from the left, largest first.
    """
    out: list[Node] = []
    while start < end:
        level = (end - start).bit_length() - 1
        while start % (1 << level):
            level -= 1
        out.append((level, start >> level))
        start += 1 << level
    return out


def range_hash(start: int, end: int, nodes: Mapping[Node, bytes]) -> bytes:
    """The hash of the subtree ``[start, end)`` from its stored nodes (RFC 9162's MTH)."""
    if start == end:
        return EMPTY_ROOT
    parts = [nodes[n] for n in range_nodes(start, end)]
    h = parts[-1]
    for left in reversed(parts[:-1]):
        h = node_hash(left, h)
    return h


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The subtrees whose hashes make the inclusion proof of leaf ``index`` (RFC 9162 PATH)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    out: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index - lo < k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo += k
    out.reverse()  # PATH lists the hashes from the leaf up
    return out


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """The subtrees whose hashes prove tree ``first`` a prefix of tree ``second`` (RFC 9162 PROOF)."""
    if not 0 < first <= second:
        raise ValueError(f"no consistency proof from size {first} to size {second}")
    out: list[tuple[int, int]] = []
    m, lo, hi, whole = first, 0, second, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            m -= k
            lo += k
            whole = False
    if not whole:
        out.append((lo, hi))
    out.reverse()  # SUBPROOF lists the deepest subtree first
    return out


def proof_nodes(ranges: Iterable[tuple[int, int]]) -> set[Node]:
    """Every stored node the hashes of ``ranges`` need (one read for a whole proof)."""
    return {n for start, end in ranges for n in range_nodes(start, end)}


def inclusion_proof(index: int, size: int, nodes: Mapping[Node, bytes]) -> list[bytes]:
    return [range_hash(s, e, nodes) for s, e in inclusion_ranges(index, size)]


def consistency_proof(first: int, second: int, nodes: Mapping[Node, bytes]) -> list[bytes]:
    return [range_hash(s, e, nodes) for s, e in consistency_ranges(first, second)]


# --- appending ------------------------------------------------------------------------------------


def frontier_nodes(size: int) -> list[Node]:
    """The right edge of a tree of ``size`` leaves: one complete subtree per bit set in ``size``."""
    return [(level, (size >> level) - 1) for level in range(size.bit_length()) if size >> level & 1]


@dataclass
class Frontier:
    """The complete subtrees on a tree's right edge: enough to append leaves and compute the root."""

    size: int = 0
    edge: dict[int, bytes] = field(default_factory=dict)  # level -> hash of that subtree

    @classmethod
    def load(cls, size: int, nodes: Mapping[Node, bytes]) -> Frontier:
        return cls(size, {level: nodes[(level, index)] for level, index in frontier_nodes(size)})

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add a leaf hash; returns the nodes it creates as ``(level, index, hash)``."""
        index, level, h = self.size, 0, leaf
        created = [(0, index, h)]
        while index & 1:
            h = node_hash(self.edge.pop(level), h)
            level, index = level + 1, index >> 1
            created.append((level, index, h))
        self.edge[level] = h
        self.size += 1
        return created

    def root(self) -> bytes:
        if not self.edge:
            return EMPTY_ROOT
        levels = sorted(self.edge)
        h = self.edge[levels[0]]
        for level in levels[1:]:
            h = node_hash(self.edge[level], h)
        return h


# --- verification (RFC 9162 2.1.3.2 and 2.1.4.2) ----------------------------------------------------


def _valid_hashes(*hashes: bytes) -> bool:
    return all(isinstance(h, bytes) and len(h) == HASH_SIZE for h in hashes)


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes]) -> bytes | None:
    """The root the proof leads to, or None when the proof cannot be one for (index, size)."""
    if not 0 <= index < size <= MAX_TREE_SIZE or not _valid_hashes(leaf, *proof):
        return None
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn:  # fn even (fn == sn): climb to where it is a right child
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return r if sn == 0 else None


def verify_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes) -> bool:
    return root_from_inclusion(index, size, leaf, proof) == root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: list[bytes]
) -> bool:
    """Whether ``proof`` shows the tree of ``first`` leaves is a prefix of the tree of ``second``."""
    if not 0 <= first <= second <= MAX_TREE_SIZE or not _valid_hashes(first_root, second_root, *proof):
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0 or not proof:
        return first == 0 and not proof  # every tree extends the empty one; others need a proof
    path = [first_root, *proof] if first & (first - 1) == 0 else list(proof)
    return _consistency_roots(first - 1, second - 1, path) == (first_root, second_root)


def _consistency_roots(fn: int, sn: int, path: list[bytes]) -> tuple[bytes, bytes] | None:
    """Steps 3 to 7 of RFC 9162 2.1.4.2: the two roots ``path`` leads to, None if it cannot."""
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return (fr, sr) if sn == 0 else None
