"""The corpus of real drive outputs (tests/fixtures/real, see its README): every recording is read by
the station's parsers, and what they read is what a person read by hand in the raw output
(expected.toml); every case says where it came from and how it was obtained; nothing in it still
looks like a real serial; and the planner's decision for every drive is pinned in plans.md, each row
with the reason a person gave for it (plans.toml).

``TABULA_UPDATE_GOLDEN=1 pytest tests/test_real_corpus.py`` rewrites plans.md after a deliberate
planner change; review the diff.
"""

from __future__ import annotations

import os
import tomllib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from diagnostics.smart import parse_report
from erase.purge.emmc import parse_mmc_extcsd
from erase.purge.errors import UnrecognisedOutput
from erase.purge.planner import PurgeRefused, plan_purge
from erase.purge.probe import (
    TOOLS,
    aborted_command,
    parse_dco_identify,
    parse_hdparm_identify,
    parse_hdparm_sanitize_status,
    parse_nvme_id_ctrl,
    parse_nvme_sanitize_log,
    parse_sg_opcodes,
    probe,
)
from erase.purge.tcg import nvme_hexdump_bytes, parse_level0, sg_raw_hexdump_bytes
from host.runner import CommandResult, ReplayRunner, fixture_name, read_fixture
from tests.real_corpus import (
    CORPUS,
    cases,
    identifiers,
    index_text,
    provenance,
    recordings,
    sedutil_dump_bytes,
)
from tests.real_corpus_plans import CorpusRunner, case_drive, plans_markdown

EXPECTED: dict[str, dict[str, dict[str, Any]]] = tomllib.loads((CORPUS / "expected.toml").read_text())
WHY: dict[str, str] = tomllib.loads((CORPUS / "plans.toml").read_text())
CASES = cases()
NOT_REPORTED = "not reported"
KINDS = {"hdd", "ssd", "nvme", "scsi", "usb", "emmc", "opal"}
# Which table of expected.toml checks a recording, by the start of its file name.
TABLE_OF = {
    "sedutil-cli_-vvvvv_": "level0",  # a D0 response sedutil printed in hex (before "sedutil-cli_")
    "nvme_security-recv_": "level0",
    "sg_raw_": "level0",
    "hdparm_-I_": "hdparm",
    "hdparm_--sanitize-status_": "sanitize_status",
    "hdparm_--yes-i-know-what-i-am-doing_--sanitize-": "sanitize_start",
    "hdparm_--dco-identify_": "dco",
    "nvme_id-ctrl_": "id_ctrl",
    "nvme_sanitize-log_": "sanitize_log",
    "smartctl_": "smart",
    "sedutil-cli_": "sedutil",
    "mmc_extcsd_read_": "extcsd",
    "sg_opcodes_": "opcodes",
}
SOURCE_KEYS = {
    "repository": ("repository", "path", "commit"),
    "issue": ("url", "comment"),
    "lookup": ("lookup_id", "origin", "found_by"),
}


def _table(path: Path) -> str | None:
    return next((t for prefix, t in TABLE_OF.items() if path.name.startswith(prefix)), None)


def _expected(table: str) -> list[tuple[str, dict[str, Any]]]:
    return [(case, tables[table]) for case, tables in sorted(EXPECTED.items()) if table in tables]


def _recording(case: str, table: str) -> CommandResult:
    (path,) = [p for p in recordings(CORPUS / case) if _table(p) == table]
    return read_fixture(path)


def _value(v: Any) -> Any:
    return None if v == NOT_REPORTED else v


def _ids(rows: Sequence[tuple[str, Any]]) -> list[str]:
    return [case for case, _ in rows]


# -- the corpus itself -------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_case_says_where_it_came_from_and_how(case: Path) -> None:
    prov = provenance(case)
    assert prov["case"] == case.name
    assert prov["kind"] in KINDS and prov["model"] and prov["vendor"] and prov["interface"]
    assert prov["retrieved"] and isinstance(prov["complete"], bool)
    source = prov["source"]
    assert source["type"] in SOURCE_KEYS and source["obtained"] in (
        "read_file",
        "search:issues",
        "find_string + read_file",
    )
    assert all(source[key] for key in SOURCE_KEYS[source["type"]])
    if source["type"] == "repository":
        assert len(source["commit"]) == 40 and source["obtained"] == "read_file"
    if source["type"] == "issue":
        assert source["url"].startswith("https://github.com/") and source["obtained"] == "search:issues"
    files = {p.name for p in recordings(case)}
    assert files and files == set(prov["outputs"]), "every recording is described, and only those"
    for path in recordings(case):
        out = prov["outputs"][path.name]
        assert out["tool_version"] and out["how"] and out["recorded_argv"]
        assert path.name == fixture_name(read_fixture(path).argv), "named as host.runner names it"
        assert path.stat().st_size < 64 * 1024, "the corpus stays small"
    assert prov["complete"] == all(o["complete"] for o in prov["outputs"].values())


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_nothing_in_the_corpus_looks_like_a_real_serial(case: Path) -> None:
    recorded_fakes = {(a["field"], a["fake"]) for a in provenance(case)["anonymised"]}
    for path in recordings(case):
        for ident in identifiers(read_fixture(path)):
            assert ident.is_fake(case.name), f"{path.name}: {ident.field} {ident.value!r} is not anonymised"
            assert (ident.field, ident.value) in recorded_fakes, "provenance.json lists what was replaced"


def test_every_recording_is_checked() -> None:
    for case in CASES:
        for path in recordings(case):
            table = _table(path)
            assert table is not None, f"{case.name}/{path.name}: no parser and no expectation"
            assert table in EXPECTED.get(case.name, {}), (
                f"{case.name}: no [{case.name}.{table}] in expected.toml"
            )
    assert set(EXPECTED) <= {c.name for c in CASES}


def test_the_index_is_built_from_the_provenance_files() -> None:
    assert (CORPUS / "index.json").read_text() == index_text(), "run: python -m tests.real_corpus index"


def test_the_corpus_reaches_the_issue_targets() -> None:
    """Issue 16: >= 40 drive models; >= 15 SATA (SSD and HDD, frozen and not, with and without
    SANITIZE, enhanced erase or not); >= 10 NVMe of several vendors (with and without sanitize and
    crypto format); SAS; USB bridges; eMMC; TCG."""
    rows = [provenance(c) for c in CASES if provenance(c)["counts_as_model"]]
    models = {(r["vendor"], r["model"]) for r in rows}
    assert len(models) == len(rows) >= 40
    ata = [r for r in rows if "hdparm" in EXPECTED.get(r["case"], {}) and r["interface"] in ("sata", "pata")]
    assert len(ata) >= 15
    hd = {r["kind"]: EXPECTED[r["case"]]["hdparm"] for r in ata}
    assert set(hd) == {"hdd", "ssd"}
    flags = [EXPECTED[r["case"]]["hdparm"] for r in ata]
    assert {("frozen" in f["security"]) for f in flags} == {True, False}
    assert {bool(f["sanitize"]) for f in flags} == {True, False}
    assert {f["enhanced_erase"] for f in flags} == {True, False}
    nvme = [r for r in rows if r["interface"] == "nvme"]
    assert len(nvme) >= 10 and len({r["vendor"] for r in nvme}) >= 5
    ctrls = [t["id_ctrl"] for t in EXPECTED.values() if "sanicap" in t.get("id_ctrl", {})]
    assert {bool(c["sanitize"]) for c in ctrls} == {True, False}
    assert {c["format_crypto"] for c in ctrls} == {True, False}
    interfaces = Counter(r["interface"] for r in rows)
    assert interfaces["sas"] >= 1 and interfaces["usb"] >= 1 and interfaces["emmc"] >= 1
    assert Counter(r["kind"] for r in rows)["opal"] >= 1


# -- what the parsers read ---------------------------------------------------------------------------

HDPARM = _expected("hdparm")


def _sanitize_words(crypto: bool, block: bool, overwrite: bool) -> list[str]:
    return [n for n, v in (("crypto", crypto), ("block", block), ("overwrite", overwrite)) if v]


@pytest.mark.parametrize(("case", "want"), HDPARM, ids=_ids(HDPARM))
def test_hdparm_identify(case: str, want: dict[str, Any]) -> None:
    ata = parse_hdparm_identify(_recording(case, "hdparm").stdout)
    assert ata.valid == want.get("valid", True)
    want = {k: v for k, v in want.items() if k != "valid"}
    if not ata.valid and not want:
        return
    sec = ata.security
    flags = {"supported": sec.supported, "enabled": sec.enabled, "locked": sec.locked, "frozen": sec.frozen}
    flags["expired"] = sec.count_expired
    got = {
        "model": ata.model,
        "sectors": ata.sectors,
        "logical_sector": ata.logical_sector,
        "rotation": "ssd" if ata.solid_state else ata.rotation_rate,
        "security": sorted(k for k, v in flags.items() if v),
        "enhanced_erase": sec.enhanced_supported,
        "erase_minutes": sec.erase_minutes,
        "enhanced_minutes": sec.enhanced_minutes,
        "sanitize": _sanitize_words(ata.sanitize_crypto, ata.sanitize_block, ata.sanitize_overwrite),
        "trim": ata.trim,
        "encrypts": ata.encrypts_all,
    }
    if not ata.valid:  # a partial output: what its lines still say, read by hand
        got = {k: v for k, v in got.items() if k in want}
    assert got == {k: sorted(v) if k == "security" else _value(v) for k, v in want.items()}
    assert ata.sanitize == bool(want.get("sanitize")) and sec.reported


SANITIZE_STATUS = _expected("sanitize_status")


@pytest.mark.parametrize(("case", "want"), SANITIZE_STATUS, ids=_ids(SANITIZE_STATUS))
def test_hdparm_sanitize_status(case: str, want: dict[str, Any]) -> None:
    st = parse_hdparm_sanitize_status(_recording(case, "sanitize_status").stdout)
    assert st is not None
    got = {"state": st.state, "progress": st.progress, "succeeded": st.succeeded, "failed": st.failed}
    assert got == {k: _value(v) for k, v in want.items()}


SANITIZE_START = _expected("sanitize_start")


@pytest.mark.parametrize(("case", "want"), SANITIZE_START, ids=_ids(SANITIZE_START))
def test_hdparm_sanitize_start(case: str, want: dict[str, Any]) -> None:
    """hdparm exits 0 and says the operation started even when the drive's sense data says
    ABORTED COMMAND: the sense key read by hand decides."""
    r = _recording(case, "sanitize_start")
    assert r.returncode == want["returncode"]
    assert aborted_command(r.stderr) == want["aborted"]


DCO = _expected("dco")


@pytest.mark.parametrize(("case", "want"), DCO, ids=_ids(DCO))
def test_dco_identify(case: str, want: dict[str, Any]) -> None:
    assert parse_dco_identify(_recording(case, "dco").stdout) == want["real_max_sectors"]


ID_CTRL = _expected("id_ctrl")


@pytest.mark.parametrize(("case", "want"), ID_CTRL, ids=_ids(ID_CTRL))
def test_nvme_identify_controller(case: str, want: dict[str, Any]) -> None:
    text = _recording(case, "id_ctrl").stdout
    if "cannot_tell" in want:
        with pytest.raises(UnrecognisedOutput, match=f"no {want['cannot_tell']} field"):
            parse_nvme_id_ctrl(text)
        return
    ctrl = parse_nvme_id_ctrl(text)
    got = {
        "model": ctrl.model,
        "oacs": ctrl.oacs,
        "sanicap": ctrl.sanicap,
        "fna": ctrl.fna,
        "format": ctrl.format_supported,
        "format_crypto": ctrl.format_crypto,
        "format_all": ctrl.format_all_namespaces,
        "sanitize": _sanitize_words(ctrl.sanitize_crypto, ctrl.sanitize_block, ctrl.sanitize_overwrite),
    }
    assert got == want


SANITIZE_LOG = _expected("sanitize_log")


@pytest.mark.parametrize(("case", "want"), SANITIZE_LOG, ids=_ids(SANITIZE_LOG))
def test_nvme_sanitize_log(case: str, want: dict[str, Any]) -> None:
    log = parse_nvme_sanitize_log(_recording(case, "sanitize_log").stdout)
    assert log is not None
    assert (log.sprog, log.sstat) == (want["sprog"], want["sstat"])
    assert log.in_progress == (want["state"] == "in progress")
    assert not log.succeeded and not log.failed
    assert want["estimates"] == NOT_REPORTED
    assert (log.est_overwrite, log.est_block, log.est_crypto) == (None, None, None)


SEDUTIL = _expected("sedutil")


@pytest.mark.parametrize(("case", "want"), SEDUTIL, ids=_ids(SEDUTIL))
def test_tcg_level0_discovery(case: str, want: dict[str, Any]) -> None:
    """Through the probe (query, then scan): the families and the locking flags read by hand."""
    drive = case_drive(CORPUS / case, EXPECTED.get(case, {}))
    caps = probe(drive, CorpusRunner(CORPUS / case), sysfs=None)
    assert caps.tcg is not None
    assert list(caps.tcg.families) == want["families"]
    for flag in ("locked", "locking_enabled"):
        if flag in want:
            assert getattr(caps.tcg, flag) == want[flag]


LEVEL0 = _expected("level0")


def level0_bytes(result: CommandResult) -> bytes:
    """The discovery buffer of a recording, by the tool that printed it."""
    if result.argv[0] == "nvme":
        return nvme_hexdump_bytes(result.stdout)
    if result.argv[0] == "sg_raw":
        return sg_raw_hexdump_bytes(result.stderr)
    return sedutil_dump_bytes(result.stdout)


@pytest.mark.parametrize(("case", "want"), LEVEL0, ids=_ids(LEVEL0))
def test_tcg_raw_level0_discovery(case: str, want: dict[str, Any]) -> None:
    """The raw discovery bytes through parse_level0: the families, the Locking byte's bits and the
    feature codes, as read by hand in the dump."""
    data = level0_bytes(_recording(case, "level0"))
    assert len(data) == want["bytes"]
    status = parse_level0(data)
    assert list(status.families) == want["families"]
    assert [f"0x{c:04x}" for c in status.features] == want["features"]
    assert status.missing_bytes == want["missing_bytes"]
    flags = ("locking_supported", "locking_enabled", "locked", "media_encrypt", "mbr_enabled", "mbr_done")
    assert sorted(f for f in flags if getattr(status, f)) == sorted(want["locking"])


EXTCSD = _expected("extcsd")


@pytest.mark.parametrize(("case", "want"), EXTCSD, ids=_ids(EXTCSD))
def test_emmc_extended_csd(case: str, want: dict[str, Any]) -> None:
    """The bytes a person read, and what they mean for erasing (SANITIZE needs EXT_CSD rev >= 6 and
    bit 6; secure erase bit 0; secure trim bits 0 and 2), each read by hand, never a blanket yes."""
    ext = parse_mmc_extcsd(_recording(case, "extcsd").stdout)
    got = {
        "rev": ext.rev,
        "sec_feature_support": ext.sec_feature_support,
        "erased_mem_cont": ext.erased_mem_cont,
        "sectors": ext.sectors,
        "sanitize": ext.sanitize,
        "secure_erase": ext.secure_erase,
        "secure_trim": ext.secure_trim,
    }
    assert got == {k: _value(v) for k, v in want.items()}


OPCODES = _expected("opcodes")


@pytest.mark.parametrize(("case", "want"), OPCODES, ids=_ids(OPCODES))
def test_sg_opcodes(case: str, want: dict[str, Any]) -> None:
    ops = parse_sg_opcodes(_recording(case, "opcodes"))
    assert ops.reported == want["reported"]
    assert (
        _sanitize_words(ops.sanitize_crypto, ops.sanitize_block, ops.sanitize_overwrite) == want["sanitize"]
    )


SMART = _expected("smart")


@pytest.mark.parametrize(("case", "want"), SMART, ids=_ids(SMART))
def test_smartctl_json(case: str, want: dict[str, Any]) -> None:
    rep = parse_report("/dev/sdx", _recording(case, "smart"))
    assert rep.status == want["status"], rep.reasons
    if "format_problem" in want:
        assert f"format version is {want['format_problem']}," in rep.reasons[0]
        assert rep.model is None and rep.attributes.power_on_hours is None
        return
    report = {"protocol": rep.protocol, "model": rep.model, "capacity_bytes": rep.capacity_bytes}
    report["rotation_rate"] = rep.rotation_rate
    attributes = rep.attributes.to_dict()
    for key, value in want.items():
        if key == "status":
            continue
        got = report[key] if key in report else attributes[key]
        assert got == _value(value), key


# -- what the station does with them: the golden plan table ------------------------------------------


def test_every_case_has_a_reason_for_its_plan() -> None:
    assert set(WHY) == {c.name for c in CASES}, "plans.toml: one 'why' per case, and only those"
    assert all(isinstance(w, str) and len(w) > 20 for w in WHY.values())


def test_the_plans_of_the_real_drives_are_unchanged() -> None:
    text = plans_markdown(CASES, EXPECTED, WHY)
    path = CORPUS / "plans.md"
    if os.environ.get("TABULA_UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.read_text() == text, "plans changed: TABULA_UPDATE_GOLDEN=1 pytest tests/test_real_corpus.py"


@dataclass(frozen=True)
class _Rule:
    case: str
    action: str  # the step the plan must (or must not) hold
    present: bool


# The planner rules the corpus exercises, checked directly (plans.md shows them all).
RULES = [
    _Rule("ata-seagate-st9320423as-frozen", "ata-secure-erase-enhanced", False),  # frozen, no consent
    _Rule("ata-hitachi-hds721010cla332-frozen-normal-erase", "ata-secure-erase", False),  # normal: Clear
    _Rule("ata-wdc-wd3200bekt-failing", "ata-secure-erase-enhanced", True),  # enhanced on a disk: Purge
    _Rule("ata-toshiba-mk1652gsx-no-rotation", "ata-secure-erase", False),  # media unknown: Clear
    _Rule("ata-samsung-840evo-120gb-encrypts", "ata-secure-erase-enhanced", False),  # flash: Clear
    _Rule("ata-intel-ssdsc2bb480g7k-sanitize", "ata-sanitize-crypto", True),
    _Rule("ata-skhynix-hfs128g39tnd-sanitize", "ata-sanitize-crypto", True),
    _Rule("emmc-mmc50-sanitize", "emmc-sanitize", True),
    _Rule("emmc-mmc51-256gb-bredos-sanitize", "emmc-sanitize", True),  # elided page, all bytes read
    _Rule("emmc-sld64g-mmc51-rock5b-sanitize", "emmc-secure-erase", False),  # obsolete: Clear
]


@pytest.mark.parametrize("rule", RULES, ids=[f"{r.case}:{r.action}" for r in RULES])
def test_planner_rules_on_real_drives(rule: _Rule) -> None:
    drive = case_drive(CORPUS / rule.case, EXPECTED.get(rule.case, {}))
    caps = probe(drive, CorpusRunner(CORPUS / rule.case), sysfs=None)
    plan = plan_purge(drive, caps, "nist-purge")
    assert (rule.action in [s.action for s in plan.steps]) == rule.present, [s.action for s in plan.steps]


@pytest.mark.parametrize(
    ("case", "why"),
    [
        # Locked by its owner, attempt counter expired: SECURITY UNLOCK is refused until a power cycle.
        ("ata-crucial-m4-ct128m4ssd2-locked", "counter expired"),
        # Locked, and the output is cut: nothing can be planned for a drive that cannot be read.
        ("ata-samsung-840evo-locked-partial", "IDENTIFY could not be read"),
    ],
)
def test_owner_locked_ata_drives_are_refused(case: str, why: str) -> None:
    drive = case_drive(CORPUS / case, EXPECTED.get(case, {}))
    caps = probe(drive, CorpusRunner(CORPUS / case), sysfs=None)
    with pytest.raises(PurgeRefused, match=f"LOCKED.*{why}"):
        plan_purge(drive, caps, "nist-purge")


def test_corpus_runner_answers_only_from_recordings() -> None:
    runner = CorpusRunner(CORPUS / "nvme-samsung-pm1733-7.68tb")
    assert all(runner.which(t) for t in TOOLS)
    r = runner.run(["nvme", "id-ctrl", "/dev/nvme0", "-o", "json"])
    assert r.argv == ("nvme", "id-ctrl", "/dev/nvme0", "-H")
    assert isinstance(runner.inner, ReplayRunner)
