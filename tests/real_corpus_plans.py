"""Planning the drives of the real corpus (tests/fixtures/real): the drive each case describes, a
runner that answers from its recordings, and the golden plan table (plans.md).

A case records what its source showed, not always the argv the probe runs: ``nvme id-ctrl`` and
``nvme sanitize-log`` may have been printed as text (``-H`` or nvme-cli 1.x's layout) where the probe
asks for ``-o json``.  :class:`CorpusRunner` answers such a question with the text recording (the
parsers read both layouts) and plans.md says so; a command with no recording at all fails as a
missing tool's would not: "no recording", which the probe reports as "cannot tell".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from erase.purge.errors import PurgeError
from erase.purge.plan import PlanOptions, PurgePlan
from erase.purge.planner import plan_purge
from erase.purge.probe import TOOLS, Capabilities, parse_nvme_id_ctrl, probe
from erase.purge.tcg import parse_level0
from host.errors import CommandError
from host.identity import DriveInfo
from host.runner import CommandResult, ReplayRunner, fixture_name, read_fixture
from host.units import human_duration, human_size
from tests.real_corpus import provenance, recordings, sedutil_dump_bytes

_TRANSPORT = {"sata": "sata", "pata": "sata", "usb": "usb", "nvme": "nvme", "sas": "sas", "emmc": "mmc"}
_PATH = {
    "sata": "/dev/sda",
    "usb": "/dev/sda",
    "sas": "/dev/sda",
    "nvme": "/dev/nvme0n1",
    "mmc": "/dev/mmcblk0",
}
_MEDIA = {"hdd": "hdd", "ssd": "ssd", "nvme": "nvme", "usb": "usb", "emmc": "mmc", "scsi": "hdd"}
#: The size estimates use when a case's recordings do not give the drive's capacity.
UNKNOWN_SIZE = 500_107_862_016


class CorpusRunner:
    """Answers from a case's recordings; every probe tool counts as present (see the module doc)."""

    def __init__(self, case_dir: Path) -> None:
        self.inner = ReplayRunner(case_dir, tools=frozenset(TOOLS))
        self.case_dir = case_dir

    def which(self, tool: str) -> bool:
        if tool == "sedutil-cli" and _raw_level0_only(self.case_dir):
            return False  # a raw Level 0 case: the probe takes the path it takes without sedutil
        return self.inner.which(tool)

    def run(self, argv: Sequence[str], *, timeout: float = 60.0, mutating: bool = False) -> CommandResult:
        if mutating:
            raise AssertionError(f"the corpus only answers read-only commands, not {list(argv)}")
        for alias in _aliases(list(argv)):
            if (self.case_dir / fixture_name(alias)).exists():
                return self.inner.run(alias, timeout=timeout)
        raise CommandError(f"no recording of '{' '.join(argv)}' in this case")


def _aliases(argv: list[str]) -> list[list[str]]:
    """``argv`` itself, then, for ``nvme ... -o json``, the same command as text (plain, then -H)."""
    if argv[:1] != ["nvme"] or argv[-2:] != ["-o", "json"]:
        return [argv]
    return [argv, argv[:-2], [*argv[:-2], "-H"]]


_SEDUTIL_DUMP = "sedutil-cli_-vvvvv_"


def _raw_level0_only(case_dir: Path) -> bool:
    """A case whose TCG recording is a raw discovery (no sedutil --query or --scan)."""
    names = [p.name for p in recordings(case_dir)]
    raw = any(n.startswith(("nvme_security-recv_", "sg_raw_", _SEDUTIL_DUMP)) for n in names)
    return raw and not any(n.startswith(("sedutil-cli_--query", "sedutil-cli_--scan")) for n in names)


def _with_dumped_level0(case_dir: Path, caps: Capabilities) -> Capabilities:
    """A case recorded as sedutil's debug dump of the D0 response: the station reads the same bytes
    through sg_raw, which the case has no recording of; plan from the dump's bytes, and say so."""
    dumps = [p for p in recordings(case_dir) if p.name.startswith(_SEDUTIL_DUMP)]
    if caps.tcg is not None or not dumps:
        return caps
    tcg = parse_level0(sedutil_dump_bytes(read_fixture(dumps[0]).stdout))
    note = f"TCG read from sedutil's dump of the D0 response (the bytes sg_raw reads): {tcg.describe}"
    return replace(caps, tcg=tcg, notes=(*caps.notes, note))


def _text(case_dir: Path, prefix: str) -> str | None:
    for path in recordings(case_dir):
        if path.name.startswith(prefix):
            return read_fixture(path).stdout
    return None


def _nvme_identity(case_dir: Path) -> tuple[str | None, int | None]:
    """The controller's serial (the probe compares it with the drive's) and TNVMCAP, when readable."""
    text = _text(case_dir, "nvme_id-ctrl_")
    if text is None:
        return None, None
    m = re.search(r'"?tnvmcap"?\s*[:]\s*"?([\d,]+)', text)
    size = int(m.group(1).replace(",", "")) if m else None
    try:
        return parse_nvme_id_ctrl(text).serial, size or None
    except PurgeError:
        return None, size or None


def _size(case_dir: Path, expected: dict[str, Any]) -> int | None:
    hd = expected.get("hdparm", {})
    if isinstance(hd.get("sectors"), int):
        return int(hd["sectors"]) * 512
    ext = expected.get("extcsd", {})
    if isinstance(ext.get("sectors"), int):
        return int(ext["sectors"]) * 512
    return _nvme_identity(case_dir)[1]


def case_drive(case_dir: Path, expected: dict[str, Any]) -> DriveInfo:
    """The drive a case describes, as discovery would present it."""
    prov = provenance(case_dir)
    transport = _TRANSPORT[prov["interface"]]
    kind = prov["kind"]
    media = _MEDIA.get(kind) or ("nvme" if transport == "nvme" else "ssd")
    rotation = expected.get("hdparm", {}).get("rotation")
    rotational = kind in ("hdd", "scsi") or isinstance(rotation, int)
    serial = _nvme_identity(case_dir)[0] if transport == "nvme" else None
    return DriveInfo(
        path=expected.get("drive", {}).get("path", _PATH[transport]),
        size_bytes=_size(case_dir, expected) or UNKNOWN_SIZE,
        logical_sector_size=512,
        physical_sector_size=512,
        transport=transport,
        media_type=media,
        rotational=rotational,
        removable=transport == "usb",
        read_only=False,
        serial=serial,
        model=prov["model"],
    )


def _variants(caps: Capabilities) -> dict[str, PlanOptions]:
    """The option sets worth showing for this drive: the default, and what an operator may add."""
    out = {"default": PlanOptions()}
    if caps.ata is not None and caps.ata.security.frozen:
        out["--unfreeze-suspend"] = PlanOptions(unfreeze_suspend=True)
    if caps.protocol == "usb" and caps.usb_bridge_sat:
        out["--allow-usb-ata"] = PlanOptions(allow_usb_ata=True)
    if caps.tcg is not None and caps.tcg.opal_or_pyrite:
        out["--psid"] = PlanOptions(psid="PSID-FROM-THE-LABEL")
    return out


def _plan_line(name: str, plan: PurgePlan | PurgeError) -> str:
    if isinstance(plan, PurgeError):
        return f"| {name} | refused | {plan.message} (hint: {plan.hint}) |"
    steps = [
        f"{s.action} ({'prep.' if s.level == 'none' else s.level.capitalize()}, ~{human_duration(s.estimate_seconds)})"
        for s in plan.steps
    ]
    if plan.overwrite:
        steps.append(f"overwrite (Clear, ~{human_duration(plan.overwrite_estimate_seconds)})")
    return f"| {name} | {plan.level_expected.capitalize()} | {'; '.join(steps)} |"


def _plan(drive: DriveInfo, caps: Capabilities, options: PlanOptions) -> PurgePlan | PurgeError:
    try:
        return plan_purge(drive, caps, "nist-purge", options)
    except PurgeError as exc:
        return exc


def case_section(case_dir: Path, expected: dict[str, Any], why: str) -> list[str]:
    """One case of plans.md: the drive, the reason, a line per option set, what was not used."""
    prov = provenance(case_dir)
    drive = case_drive(case_dir, expected)
    caps = _with_dumped_level0(case_dir, probe(drive, CorpusRunner(case_dir), sysfs=None))
    known = _size(case_dir, expected) is not None
    size = human_size(drive.size_bytes) if known else "size not in the recordings: 500 GB assumed"
    lines = [
        f"### {case_dir.name}",
        "",
        f"{prov['model']} ({prov['kind']}, {prov['interface']}, {drive.path}, {size}).  **Why:** {why}",
        "",
        "| options (nist-purge) | reaches | steps |",
        "| --- | --- | --- |",
    ]
    plans = {name: _plan(drive, caps, opts) for name, opts in _variants(caps).items()}
    lines += [_plan_line(name, plan) for name, plan in plans.items()]
    default = plans["default"]
    if isinstance(default, PurgePlan):
        lines += ["", *[f"- not used: {a.label}: {a.reason}" for a in default.alternatives]]
        lines += [f"- warning: {w}" for w in default.warnings]
    lines += [f"- probe: {n}" for n in caps.notes]
    return [*lines, ""]


def plans_markdown(cases: Sequence[Path], expected: dict[str, dict[str, Any]], why: dict[str, str]) -> str:
    head = [
        "# What the planner decides for each real drive",
        "",
        "Generated by `tests/test_real_corpus.py` from the recordings of each case (see README.md)",
        "and the reasons in `plans.toml`; regenerate with `TABULA_UPDATE_GOLDEN=1 pytest",
        "tests/test_real_corpus.py` after a deliberate planner change, and review the diff.  Policy",
        "`nist-purge`; estimates from the drive's own figures where it gives them.  A command the case",
        "has no recording of answers 'no recording' (so the probe says 'cannot tell'); an `nvme`",
        "question asked with `-o json` is answered with the case's text output when that is all it has.",
        "",
    ]
    body: list[str] = []
    for case_dir in cases:
        body += case_section(
            case_dir, expected.get(case_dir.name, {}), why.get(case_dir.name, "(no reason given)")
        )
    return "\n".join(head + body)
