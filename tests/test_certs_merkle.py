"""certs/merkle.py against RFC 9162 itself: known vectors, and every proof of random trees.

The reference below is RFC 9162 section 2.1 written as the RFC writes it (recursive MTH, PATH and
PROOF over the list of leaves); the module under test builds the same hashes from stored complete
subtrees (O(log n) of them per proof) and verifies with the RFC's iterative algorithms.  The known
vectors are the RFC 6962 test vectors of transparency-dev/merkle (proof/verify_test.go): eight
leaves, the root of every prefix, inclusion and consistency proofs.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certs.merkle import (
    EMPTY_ROOT,
    Frontier,
    Node,
    consistency_proof,
    consistency_ranges,
    frontier_nodes,
    inclusion_proof,
    inclusion_ranges,
    leaf_hash,
    node_hash,
    proof_nodes,
    range_hash,
    root_from_inclusion,
    verify_consistency,
    verify_inclusion,
)

# --- RFC 9162 2.1, as written ------------------------------------------------------------------------


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: list[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = _k(len(d))
    return hashlib.sha256(b"\x01" + mth(d[:k]) + mth(d[k:])).digest()


def path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*path(m, d[:k]), mth(d[k:])]
    return [*path(m - k, d[k:]), mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = _k(n)
    if m <= k:
        return [*subproof(m, d[:k], b), mth(d[k:])]
    return [*subproof(m - k, d[k:], False), mth(d[:k])]


def store_of(leaves: list[bytes]) -> tuple[dict[Node, bytes], Frontier]:
    """What the hub stores: every node each append creates."""
    nodes: dict[Node, bytes] = {}
    f = Frontier()
    for data in leaves:
        for level, index, h in f.append(leaf_hash(data)):
            nodes[(level, index)] = h
    return nodes, f


# --- known vectors (transparency-dev/merkle, RFC 6962 test data) -----------------------------------

LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657")]
LEAVES.append(bytes.fromhex("606162636465666768696a6b6c6d6e6f"))
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
INCLUSION = [  # (leaf index, tree size, proof)
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip
CONSISTENCY = [  # (first size, second size, proof)
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]  # fmt: skip


def test_known_roots_of_every_prefix() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    f = Frontier()
    for n, data in enumerate(LEAVES, 1):
        f.append(leaf_hash(data))
        assert f.root().hex() == ROOTS[n - 1] == mth(LEAVES[:n]).hex()


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_known_inclusion_proofs(index: int, size: int, proof: list[str]) -> None:
    nodes, _ = store_of(LEAVES[:size])
    assert [h.hex() for h in inclusion_proof(index, size, nodes)] == proof
    hashes = [bytes.fromhex(h) for h in proof]
    root = bytes.fromhex(ROOTS[size - 1])
    assert verify_inclusion(index, size, leaf_hash(LEAVES[index]), hashes, root)
    assert not verify_inclusion(index, size, leaf_hash(b"WrongLeaf"), hashes, root)
    assert not verify_inclusion(index, size, leaf_hash(LEAVES[index]), hashes, EMPTY_ROOT)
    assert not verify_inclusion(index, size, leaf_hash(LEAVES[index]), [*hashes, root], root)
    assert not verify_inclusion(index, size, leaf_hash(LEAVES[index]), [root, *hashes], root)


@pytest.mark.parametrize(("first", "second", "proof"), CONSISTENCY)
def test_known_consistency_proofs(first: int, second: int, proof: list[str]) -> None:
    nodes, _ = store_of(LEAVES[:second])
    assert [h.hex() for h in consistency_proof(first, second, nodes)] == proof
    hashes = [bytes.fromhex(h) for h in proof]
    r1, r2 = bytes.fromhex(ROOTS[first - 1]), bytes.fromhex(ROOTS[second - 1])
    assert verify_consistency(first, second, r1, r2, hashes)
    assert not verify_consistency(first, second, r2, r1, hashes)
    assert not verify_consistency(first, second, r1, r2, [])
    assert not verify_consistency(first, second, r1, r2, hashes[:-1])
    assert not verify_consistency(first, second, r1, r2, [*hashes, r1])


def test_degenerate_sizes() -> None:
    h = leaf_hash(b"data")
    assert verify_inclusion(0, 1, h, [], h)  # a one-leaf tree's root is its leaf
    for index, size in ((0, 0), (1, 0), (2, 1), (-1, 3)):
        assert root_from_inclusion(index, size, h, []) is None
    some = hashlib.sha256(b"x").digest()
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert verify_consistency(0, 5, EMPTY_ROOT, some, [])  # every tree extends the empty one
    assert verify_consistency(3, 3, some, some, [])
    assert not verify_consistency(3, 3, some, EMPTY_ROOT, [])
    assert not verify_consistency(3, 3, some, some, [some])  # equal trees need no proof
    assert not verify_consistency(2, 1, some, some, [])  # time travel
    assert not verify_inclusion(0, 2, h, [b"short"], h)  # a hash is 32 bytes
    with pytest.raises(ValueError):
        inclusion_ranges(3, 3)
    with pytest.raises(ValueError):
        consistency_ranges(0, 3)


# --- random trees: every proof verifies, any tampering fails -----------------------------------------

_TREE = st.integers(min_value=1, max_value=300)


def _leaves(n: int, salt: int) -> list[bytes]:
    return [hashlib.sha256(f"{salt}:{i}".encode()).digest() for i in range(n)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=_TREE, salt=st.integers(0, 2**16), pick=st.integers(0, 2**31))
def test_every_inclusion_proof_matches_the_rfc_and_verifies(n: int, salt: int, pick: int) -> None:
    leaves = _leaves(n, salt)
    nodes, frontier = store_of(leaves)
    root = mth(leaves)
    assert frontier.root() == root == range_hash(0, n, nodes)
    m = pick % n
    size = m + 1 + (pick // n) % (n - m)  # any tree that holds leaf m, not only the newest
    sub_root = mth(leaves[:size])
    proof = inclusion_proof(m, size, nodes)
    assert proof == path(m, leaves[:size])
    assert len(proof_nodes(inclusion_ranges(m, size))) <= 2 * size.bit_length()
    assert verify_inclusion(m, size, leaf_hash(leaves[m]), proof, sub_root)
    _tampered_inclusions_fail(m, size, leaves, proof, sub_root, pick)


def _tampered_inclusions_fail(
    m: int, size: int, leaves: list[bytes], proof: list[bytes], root: bytes, pick: int
) -> None:
    leaf = leaf_hash(leaves[m])
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ (1 << (pick % 8))]) + bad[i][1:]
        assert not verify_inclusion(m, size, leaf, bad, root)
    other = (m + 1 + pick % max(1, size - 1)) % size
    if other != m:
        assert not verify_inclusion(other, size, leaf, proof, root)
        assert not verify_inclusion(m, size, leaf_hash(leaves[other]), proof, root)
    assert not verify_inclusion(m, size, leaf, [*proof, root], root)
    if proof:
        assert not verify_inclusion(m, size, leaf, proof[:-1], root)
        assert not verify_inclusion(m, size, leaf, [proof[-1], *proof[:-1]], root) or len(set(proof)) == 1


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=_TREE, salt=st.integers(0, 2**16), pick=st.integers(0, 2**31))
def test_every_consistency_proof_matches_the_rfc_and_verifies(n: int, salt: int, pick: int) -> None:
    leaves = _leaves(n, salt)
    nodes, _ = store_of(leaves)
    first = 1 + pick % n
    r1, r2 = mth(leaves[:first]), mth(leaves)
    proof = consistency_proof(first, n, nodes)
    assert proof == subproof(first, leaves, True)
    assert verify_consistency(first, n, r1, r2, proof)
    if first == n:
        return
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 0x10]) + bad[i][1:]
        assert not verify_consistency(first, n, r1, r2, bad)
    assert not verify_consistency(first, n, r2, r1, proof)
    assert not verify_consistency(first, n, r1, r2, proof[:-1])
    assert not verify_consistency(first, n, r1, r2, [*proof, r2])
    # a log that changed one earlier leaf cannot prove itself consistent with the old head
    forged = list(leaves)
    forged[pick % first] = hashlib.sha256(b"rewritten").digest()
    forged_nodes, _ = store_of(forged)
    assert not verify_consistency(first, n, r1, mth(forged), consistency_proof(first, n, forged_nodes))


@given(size=st.integers(1, 2**53 - 1), pick=st.integers(0, 2**62))
def test_proofs_of_huge_trees_read_few_nodes(size: int, pick: int) -> None:
    """Pure arithmetic: a proof in a tree of 2**53 leaves still names at most ~2*53 stored nodes."""
    m = pick % size
    assert len(proof_nodes(inclusion_ranges(m, size))) <= 2 * size.bit_length()
    first = 1 + pick % size
    assert len(proof_nodes(consistency_ranges(first, size))) <= 2 * size.bit_length()
    assert len(frontier_nodes(size)) == bin(size).count("1")


def test_node_hash_domain_separation() -> None:
    a, b = hashlib.sha256(b"a").digest(), hashlib.sha256(b"b").digest()
    assert node_hash(a, b) != leaf_hash(a + b)  # a leaf can never pass for an interior node
