"""The corpus of real drive tool outputs (tests/fixtures/real): loading cases and the anonymisation rule.

Every identifier that could name a real person's drive (serial numbers, the unique part of a WWN
or an NVMe EUI-64) is replaced by a *deterministic fake of the same length and shape*: digits stay
digits, upper-case letters upper-case, lower-case letters lower-case, hex digits hex digits, every
other character (spaces, dashes, dots) is kept.  The fake is drawn from ``sha256(case/field)``, so
it depends only on the case folder, the kind of identifier and its shape, never on the real value:
re-running the rule on an anonymised case gives the same text, and a test can tell a fake from a
real serial left behind (:func:`fake`).

``python -m tests.real_corpus anonymise DIR`` anonymises the recordings of one case folder in place
and prints what it replaced (to copy into the case's provenance.json); ``python -m tests.real_corpus
index`` rewrites index.json from the provenance files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from host.redact import same_shape
from host.runner import CommandResult, read_fixture

CORPUS = Path(__file__).parent / "fixtures" / "real"


def _stream(case: str, field: str) -> Iterator[int]:
    counter = 0
    while True:
        yield from hashlib.sha256(f"{case}/{field}/{counter}".encode()).digest()
        counter += 1


def fake(case: str, field: str, value: str, *, hexadecimal: bool = False) -> str:
    """The fake standing for ``value`` (a serial, or a hex identifier when ``hexadecimal``)."""
    return same_shape(value, _stream(case, field), hexadecimal=hexadecimal)


def fake_int(case: str, field: str, width: int) -> int:
    """A fake for an identifier that a tool prints as an integer (``width`` hex digits wide)."""
    return int(fake(case, field, "f" * width, hexadecimal=True), 16)


@dataclass(frozen=True)
class Identifier:
    """An identifier found in a recorded output: ``field`` is serial, wwn or eui64."""

    field: str
    value: str | int
    hexadecimal: bool = False
    width: int = 0  # for integers: how many hex digits the identifier has

    def faked(self, case: str) -> str | int:
        if isinstance(self.value, int):
            return fake_int(case, self.field, self.width)
        return fake(case, self.field, self.value, hexadecimal=self.hexadecimal)

    def is_fake(self, case: str) -> bool:
        return self.faked(case) == self.value


# [ \t], not \s: a blank serial (a poster removed it) must not reach into the next line.
_HDPARM_SERIAL = re.compile(r"^[ \t]*Serial Number:[ \t]*(\S.*?)[ \t]*$", re.M)
_HDPARM_WWN = re.compile(r"WWN Device Identifier:\s*([0-9a-fA-F]{7})([0-9a-fA-F]{9})\b")
_HDPARM_UNIQUE = re.compile(r"^\s*Unique ID\s*:\s*([0-9a-fA-F]{9})\s*$", re.M)
_NVME_TEXT_SERIAL = re.compile(r"^sn\s*:\s*(\S+)", re.M)
# sedutil-cli --query's first line for an ATA drive: device, "ATA", model, firmware, serial.
_SEDUTIL_ATA_SERIAL = re.compile(r"^/dev/\S+\s+ATA\s+\S+\s+\S+\s+(\S+)\s*$", re.M)


def _json_identifiers(doc: object) -> list[Identifier]:
    found: list[Identifier] = []
    if not isinstance(doc, dict):
        return found
    devices = [v for v in doc.values() if isinstance(v, dict)] if "sn" not in doc else []
    for d in [doc, *devices]:
        for key in ("sn", "serial_number"):
            v = d.get(key)
            if isinstance(v, str) and v.strip():
                found.append(Identifier("serial", v.strip()))
        wwn = d.get("wwn")
        if isinstance(wwn, dict) and isinstance(wwn.get("id"), int):
            found.append(Identifier("wwn", wwn["id"], width=9))
        lu = d.get("logical_unit_id")
        if isinstance(lu, str) and re.fullmatch(r"0x[0-9a-fA-F]{16,32}", lu):
            found.append(Identifier("wwn", lu[9:], hexadecimal=True))
        for ns in d.get("nvme_namespaces") or []:
            eui = ns.get("eui64") if isinstance(ns, dict) else None
            if isinstance(eui, dict) and isinstance(eui.get("ext_id"), int):
                found.append(Identifier("eui64", eui["ext_id"], width=10))
    return found


def identifiers(result: CommandResult) -> list[Identifier]:
    """The identifiers in one recorded output (hdparm -I, nvme id-ctrl, smartctl --json)."""
    text = result.stdout
    tool = result.argv[0]
    found: list[Identifier] = []
    if tool == "hdparm":
        found += [Identifier("serial", m.group(1)) for m in _HDPARM_SERIAL.finditer(text)]
        found += [Identifier("wwn", m.group(2), hexadecimal=True) for m in _HDPARM_WWN.finditer(text)]
        found += [Identifier("wwn", m.group(1), hexadecimal=True) for m in _HDPARM_UNIQUE.finditer(text)]
    elif tool in ("nvme", "smartctl"):
        with contextlib.suppress(json.JSONDecodeError):
            found += _json_identifiers(json.loads(text[text.find("{") :]) if "{" in text else None)
        found += [Identifier("serial", m.group(1)) for m in _NVME_TEXT_SERIAL.finditer(text)]
    elif tool == "sedutil-cli":
        found += [Identifier("serial", m.group(1)) for m in _SEDUTIL_ATA_SERIAL.finditer(text)]
    return found


# sedutil's DtaHexDump: "0040 0002100c 0b000000 00000000 00000000  ....;..........." (4-byte groups).
_SEDUTIL_ROW = re.compile(r"^([0-9a-f]{4}) ((?:[0-9a-f]{2,8} )*[0-9a-f]{2,8})(?:  .*)?$")


def sedutil_dump_bytes(text: str) -> bytes:
    """The bytes of a D0 response as ``sedutil-cli -vvvvv`` printed it (rows of an offset and 4-byte
    groups, then the ASCII column): the converter the corpus uses for sedutil debug logs."""
    out = bytearray()
    for line in text.splitlines():
        m = _SEDUTIL_ROW.match(line.rstrip())
        if m is None:
            continue
        if int(m.group(1), 16) != len(out):
            raise ValueError(f"sedutil dump jumps to offset {m.group(1)} after {len(out)} bytes")
        out += bytes.fromhex(m.group(2).replace(" ", ""))
    return bytes(out)


def _replace(text: str, ident: Identifier, case: str) -> str:
    new = ident.faked(case)
    if isinstance(ident.value, int):
        pattern = rf'("(?:id|ext_id)":\s*){ident.value}\b'
        return re.sub(pattern, lambda m: f"{m.group(1)}{new}", text)
    value = re.escape(ident.value)
    # A WWN's unique part follows its NAA and OUI digits ("5002538" + "c40379e5a"): no left boundary.
    left = "" if ident.hexadecimal else "(?<![A-Za-z0-9])"
    return re.sub(rf"{left}{value}(?![A-Za-z0-9])", str(new), text)


def anonymise_text(text: str, found: list[Identifier], case: str) -> str:
    for ident in found:
        text = _replace(text, ident, case)
    return text


def recordings(case_dir: Path) -> Iterator[Path]:
    """The recorded outputs of a case (every file but provenance.json), sub-folders included."""
    for path in sorted(case_dir.rglob("*")):
        if path.is_file() and path.name != "provenance.json":
            yield path


def anonymise_case(case_dir: Path) -> list[dict[str, object]]:
    """Replace every identifier of every recording of ``case_dir`` in place; return what was done."""
    case = case_dir.name
    found: list[Identifier] = []
    for path in recordings(case_dir):
        found += [i for i in identifiers(read_fixture(path)) if not i.is_fake(case)]
    done: list[dict[str, object]] = []
    for ident in dict.fromkeys(found):
        for path in recordings(case_dir):
            old = path.read_text()
            new = anonymise_text(old, [ident], case)
            if new != old:
                path.write_text(new)
        done.append({"field": ident.field, "fake": ident.faked(case)})
    return done


def cases() -> list[Path]:
    return sorted(p for p in CORPUS.iterdir() if p.is_dir())


def provenance(case_dir: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((case_dir / "provenance.json").read_text())
    return doc


def index() -> list[dict[str, Any]]:
    """The machine-readable index of the corpus (index.json), built from the provenance files."""
    rows = []
    for case_dir in cases():
        prov = provenance(case_dir)
        source = prov["source"]
        rows.append(
            {
                "case": prov["case"],
                "model": prov["model"],
                "vendor": prov["vendor"],
                "interface": prov["interface"],
                "kind": prov["kind"],
                "counts_as_model": prov["counts_as_model"],
                "complete": prov["complete"],
                "outputs": {name: out["tool_version"] for name, out in sorted(prov["outputs"].items())},
                "source": _source_text(source),
                "obtained": source["obtained"],
            }
        )
    return rows


def _source_text(source: dict[str, Any]) -> str:
    """Where a case came from, in one line: an issue URL, repository:path@commit, or a look-up."""
    if source["type"] == "issue":
        return str(source["url"])
    if source["type"] == "repository":
        return f"{source['repository']}:{source['path']}@{source['commit'][:12]}"
    return f"look-up {source['lookup_id']}: {source['origin']}"


def index_text() -> str:
    return json.dumps(index(), indent=2, ensure_ascii=False) + "\n"


USAGE = "usage: python -m tests.real_corpus anonymise CASE_DIR | index"


def main(argv: list[str]) -> int:
    if argv[:1] == ["anonymise"] and len(argv) == 2:
        print(json.dumps(anonymise_case(Path(argv[1])), indent=2))
        return 0
    if argv == ["index"]:
        (CORPUS / "index.json").write_text(index_text())
        return 0
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
