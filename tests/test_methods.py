"""The method table and its expansion into concrete passes (pure, no devices)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from erase.errors import EraseError, UnknownMethod
from erase.methods import METHODS, InvalidMethodOption, expand, method_names

SEED = bytes(range(32))

# The published definitions, written out independently of erase/methods.py ("R" = one random pass).
GUTMANN_MIDDLE = [
    "55",
    "aa",
    "924924",
    "492492",
    "249249",
    "00",
    "11",
    "22",
    "33",
    "44",
    "55",
    "66",
    "77",
    "88",
    "99",
    "aa",
    "bb",
    "cc",
    "dd",
    "ee",
    "ff",
    "924924",
    "492492",
    "249249",
    "6db6db",
    "b6db6d",
    "db6db6",
]
EXPECTED = {
    "zero": ["00"],
    "one": ["ff"],
    "prng": ["R"],
    "dod-short": ["00", "ff", "R"],
    "gutmann": ["R"] * 4 + GUTMANN_MIDDLE + ["R"] * 4,
    "hmg-is5-baseline": ["00"],
    "hmg-is5-enhanced": ["00", "ff", "R"],
    "rcmp-ops-ii": ["00", "ff", "00", "ff", "00", "ff", "R"],
    "bsi-vsitr": ["00", "ff", "00", "ff", "00", "ff", "aa"],
    "ism": ["R"],
}


def shape(name: str, **kw: object) -> list[str]:
    return ["R" if p.kind == "prng" else str(p.hex) for p in expand(name, seed=SEED, **kw)]  # type: ignore[arg-type]


def key_of(seed: bytes, index: int) -> str:
    return hmac.new(seed, b"pass" + index.to_bytes(4, "big"), hashlib.sha256).digest()[:16].hex()


def test_every_method_has_a_one_line_description_and_note() -> None:
    assert method_names() == list(METHODS)
    assert set(method_names()) == set(EXPECTED) | {"dod-7", "custom"}
    for m in METHODS.values():
        assert m.description and "\n" not in m.description
        assert "800-88" in m.nist_note


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_pass_sequence_matches_published_definition(name: str) -> None:
    assert shape(name) == EXPECTED[name]


def test_gutmann_has_35_passes_with_4_random_at_each_end() -> None:
    s = shape("gutmann")
    assert len(s) == 35
    assert s[:4] == ["R"] * 4 and s[-4:] == ["R"] * 4
    assert "R" not in s[4:31]


def test_dod7_follows_nwipe_structure() -> None:
    ps = expand("dod-7", seed=SEED)
    assert len(ps) == 7
    assert [p.kind for p in ps] == ["bytes", "bytes", "prng", "bytes", "bytes", "bytes", "prng"]
    assert ps[0].hex == "00" and ps[1].hex == "ff"
    c4, c5, c6 = (int(str(ps[i].hex), 16) for i in (3, 4, 5))
    assert c6 == c5 ^ 0xFF  # pass 6 is the complement of pass 5
    # characters come from the seed: same seed, same characters; another seed, (almost surely) others
    assert [p.hex for p in expand("dod-7", seed=SEED)] == [p.hex for p in ps]
    others = {(p[3].hex, p[4].hex) for p in (expand("dod-7", seed=bytes([i]) * 16) for i in range(8))}
    assert len(others) > 1
    assert 0 <= c4 <= 255


def test_random_pass_keys_are_hmac_of_seed_and_pass_index() -> None:
    ps = expand("gutmann", seed=SEED)
    for i, p in enumerate(ps):
        if p.kind == "prng":
            assert p.seed == key_of(SEED, i)
    keys = [p.seed for p in ps if p.kind == "prng"]
    assert len(set(keys)) == len(keys) == 8


def test_same_seed_same_passes_other_seed_other_keys() -> None:
    a = expand("dod-short", seed=SEED)
    assert a == expand("dod-short", seed=SEED)
    b = expand("dod-short", seed=SEED[::-1])
    assert a[2].seed != b[2].seed
    assert a[:2] == b[:2]


def test_rounds_repeat_and_final_blank_appends_zero() -> None:
    s = shape("rcmp-ops-ii", rounds=2, final_blank=True)
    assert s == EXPECTED["rcmp-ops-ii"] * 2 + ["00"]
    ps = expand("prng", seed=SEED, rounds=3)
    assert len({p.seed for p in ps}) == 3  # each round's random pass has its own key
    assert ps[-1].label.endswith("random") and "3/3" in ps[-1].label
    last = expand("one", seed=SEED, final_blank=True)[-1]
    assert last.hex == "00" and "final blank" in last.label


@pytest.mark.parametrize(
    ("text", "hexs"),
    [("a5", "a5"), ("0xDEADbeef", "deadbeef"), ("00 11 22", "001122"), ("ff" * 512, "ff" * 512)],
)
def test_custom_pattern_accepts_hex(text: str, hexs: str) -> None:
    (p,) = expand("custom", seed=SEED, custom_hex=text)
    assert p.kind == "bytes" and p.hex == hexs


@pytest.mark.parametrize("text", ["", "xyz", "abc", "0x", "00" * 513])
def test_custom_pattern_rejects_bad_hex(text: str) -> None:
    with pytest.raises(InvalidMethodOption) as ei:
        expand("custom", seed=SEED, custom_hex=text)
    assert "pattern" in ei.value.diagnostics()


def test_custom_needs_a_pattern_and_others_refuse_one() -> None:
    with pytest.raises(InvalidMethodOption, match="needs a pattern"):
        expand("custom", seed=SEED)
    with pytest.raises(InvalidMethodOption, match="takes no custom pattern"):
        expand("zero", seed=SEED, custom_hex="00")


def test_unknown_method_lists_known_ones() -> None:
    with pytest.raises(UnknownMethod) as ei:
        expand("shred-everything", seed=SEED)
    assert "gutmann" in ei.value.diagnostics()


@pytest.mark.parametrize("rounds", [0, -1, True, 1.5])
def test_bad_rounds(rounds: object) -> None:
    with pytest.raises(EraseError, match="rounds"):
        expand("zero", seed=SEED, rounds=rounds)  # type: ignore[arg-type]


def test_short_seed_refused() -> None:
    with pytest.raises(InvalidMethodOption, match="seed"):
        expand("prng", seed=b"short")
