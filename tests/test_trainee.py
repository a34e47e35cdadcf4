"""The trainee's station outside the TUI: who erases, plans as data, destruction records from the command
line, the kernel parameters that name the technician, the demo's truth check, the terminal QR code,
PSID revert shown only where Opal may exist, and no English left in French PDFs or demo output."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from certs.issue import issue_destruction
from certs.label import render_label
from certs.page import qr_payload
from certs.pdf import pdf_text
from certs.qr import decode
from certs.trust import TrustStore
from certs.verify import Verifier
from erase.journal import Journal, boot_id, derive, process_start
from erase.purge.planner import PurgePlan
from station.bootparams import parse_boot_params
from station.cli import main
from station.console import opal_known_absent, shown_alternatives
from station.demo import newest_jobs
from station.jobs import EraseOptions, create_job, plan_job
from station.options import WorkerOptions
from station.tui.qr import half_blocks
from tests.english import context, english_left
from tests.fixtures.certs import records
from tests.fixtures.certs.helpers import SETTINGS, make_station

MiB = 1 << 20


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


# -- who erases -------------------------------------------------------------------------------------


@pytest.mark.root
def test_headless_erase_refuses_without_a_technician_and_names_the_one_given(
    make_loop: Any, home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TABULA_TECHNICIAN")
    monkeypatch.delenv("TABULA_ORG")
    dev = make_loop(4 * MiB, fill=b"\x5a")
    code, out, err = run(["erase", dev, "--yes", "--include-loop"], capsys)
    assert code == 2 and "no technician name" in err and "--technician" in err
    assert not (home / "jobs").exists()  # nothing was planned, nothing written
    with open(dev, "rb") as f:
        assert f.read(4096) == b"\x5a" * 4096
    code, out, err = run(["erase", dev, "--yes", "--include-loop", "--plan"], capsys)
    assert code == 0  # a plan is not an erasure
    args = [
        "erase",
        dev,
        "--yes",
        "--include-loop",
        "--technician",
        "Camille Martin",
        "--organisation",
        "Atelier",
    ]
    code, out, err = run(args, capsys)
    assert code == 0, out + err
    (signed,) = (home / "certs").glob("*.json")
    payload = json.loads(
        __import__("base64").urlsafe_b64decode(json.loads(signed.read_text())["payload"] + "==")
    )
    assert payload["person"]["name"] == "Camille Martin" and payload["person"]["organisation"] == "Atelier"


@pytest.mark.root
def test_french_headless_erase_speaks_french(
    make_loop: Any, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dev = make_loop(4 * MiB)
    code, out, err = run(["erase", dev, "--yes", "--include-loop", "--lang", "fr"], capsys)
    assert code == 0, out + err
    assert "EFFACÉ ET VÉRIFIÉ" in out and "certificat" in out
    left = english_left(out)
    assert left == [], [context(out, w) for w in left]


@pytest.mark.root
def test_plan_json_prints_only_json(make_loop: Any, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dev = make_loop(4 * MiB)
    code, out, err = run(
        ["erase", dev, "--plan", "--json", "--include-loop", "--method", "dod-short"], capsys
    )
    assert code == 0
    (plan,) = json.loads(out)  # nothing but JSON on stdout
    assert plan["method"] == "dod-short" and len(plan["passes"]) == 3 and plan["drive"]["path"] == dev
    assert "Plan for" not in err and not (home / "jobs").exists()


def test_kernel_parameters_name_the_technician_even_with_spaces() -> None:
    p = parse_boot_params(
        'quiet tabula.technician="Camille Martin" tabula.org="Atelier Réemploi" tabula.lang=fr'
    )
    assert (p.technician, p.org, p.lang) == ("Camille Martin", "Atelier Réemploi", "fr")
    assert p.environment()["TABULA_TECHNICIAN"] == "Camille Martin"
    assert p.environment()["TABULA_ORG"] == "Atelier Réemploi"
    bad = parse_boot_params("tabula.technician= tabula.org=" + "x" * 300)
    assert bad.technician is None and bad.org is None and len(bad.warnings) == 2


def test_the_first_start_is_skipped_when_the_boot_names_the_technician(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from station.tui import model

    monkeypatch.setenv("TABULA_TECHNICIAN", "Camille Martin")
    monkeypatch.setenv("TABULA_ORG", "Atelier")
    settings, _doc = model.load_settings(tmp_path / "none.toml")
    assert (settings.technician, settings.organisation) == ("Camille Martin", "Atelier")
    assert settings.operator()["name"] == "Camille Martin"  # the plan carries it to the certificate


# -- station destroy --------------------------------------------------------------------------------


def failed_job(root: Path, key_dir: Path, cert_dir: Path) -> Path:
    """A job whose worker journalled a failure (as the demo's failing drive does)."""
    from station.certify import certify_job, ensure_station_key
    from tests.test_tui_flows import _fake_entry

    info = _fake_entry("/dev/sdz", "WD-WCC2E7654321").info
    options = WorkerOptions(cert_dir=str(cert_dir), key_dir=str(key_dir))
    job_dir = create_job(root, plan_job(info, EraseOptions(method="zero")), options)
    with Journal(job_dir) as j:
        j.append("worker-started", pid=1, boot_id=boot_id(), start="0")
        j.append("pass-started", **{"pass": 0}, start=0)
        j.append(
            "failed", reason="the drive stopped accepting writes: /dev/sdz: EIO", error="DriveUnresponsive"
        )
    ensure_station_key(key_dir)
    certify_job(job_dir, options)  # its signed failure report
    return job_dir


def test_station_destroy_signs_a_record_linked_to_the_failure_report(
    home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    job_dir = failed_job(home / "jobs", home / "keys", home / "certs")
    report = json.loads((job_dir / "certificate.json").read_text())
    photo = tmp_path / "shredded.jpg"
    photo.write_bytes(b"jpeg")
    args = ["destroy", job_dir.name[:8], "--method", "shred", "--by", "Camille", "--witness", "Dominique"]
    code, out, err = run([*args, "--photo", str(photo), "--json"], capsys)
    assert code == 0, err
    done = json.loads(out)
    index = json.loads((job_dir / "destruction.json").read_text())
    assert index["record_id"] == done["record_id"] and done["sequence"] == report["sequence"] + 1
    store = TrustStore()
    store.add_key_dir(home / "keys")
    v = Verifier(store).verify_file(Path(done["files"][0]))
    assert v.valid and not v.ok and v.destruction is not None
    assert v.destruction.failed_job.report_id == report["certificate_id"]
    assert v.destruction.failed_job.report_sha256 == report["digest"]
    code, out, err = run(args, capsys)  # a second time: the record already made, nothing new signed
    assert code == 0 and "already recorded" in out
    assert len(list((home / "certs").glob("*.json"))) == 2


def test_station_destroy_refuses_an_erased_drive_and_a_bad_method(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.test_tui_flows import _fake_entry

    info = _fake_entry("/dev/sdz", "WD-WCC2E7654321").info
    job_dir = create_job(home / "jobs", plan_job(info, EraseOptions(method="zero")), WorkerOptions())
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        with Journal(job_dir) as j:
            j.append("worker-started", pid=sleeper.pid, boot_id=boot_id(), start=process_start(sleeper.pid))
        code, out, err = run(["destroy", str(job_dir), "--method", "drill", "--by", "Camille"], capsys)
        assert code == 2 and "still running" in err
    finally:
        sleeper.kill()
        sleeper.wait()
    with pytest.raises(SystemExit):
        main(["destroy", str(job_dir), "--method", "burn", "--by", "Camille"])


# -- the demo's truth check ------------------------------------------------------------------------


def test_the_truth_check_reads_each_drives_newest_job_not_the_last_folder(tmp_path: Path) -> None:
    from tests.test_tui_flows import _fake_entry

    info = _fake_entry("/dev/loop9", "X").info
    info = type(info)(**{**info.to_dict(), "transport": "loop", "backing_file": "/tmp/demo/donor.img"})
    plans = [plan_job(info, EraseOptions(method="zero")) for _ in range(2)]
    older, newer = sorted(plans, key=lambda p: p.created_at)
    # Folder names come from job ids (random): make the older job's folder sort last.
    older = type(older)(**{**older.__dict__, "job_id": "ffffffff-0000-4000-8000-000000000000"})
    newer = type(newer)(**{**newer.__dict__, "job_id": "00000000-0000-4000-8000-000000000000"})
    dirs = [create_job(tmp_path / "jobs", p, WorkerOptions()) for p in (older, newer)]
    assert sorted(d.name for d in dirs)[-1].startswith("ffffffff")  # by folder, the older one
    newest = newest_jobs([derive(d) for d in dirs])
    assert newest["/tmp/demo/donor.img"].plan.job_id == newer.job_id


# -- the terminal's QR code, PSID revert -----------------------------------------------------------


def test_the_terminal_qr_code_scans_to_the_certificates_own(tmp_path: Path) -> None:
    station = make_station(tmp_path)
    issued = station.issue(records.verified())
    value = qr_payload(issued.certificate_id, issued.digest)  # no verification URL: the default
    lines = half_blocks(value, border=1)
    assert len(lines) <= 23 and all(len(line) <= 45 for line in lines)  # fits beside the text at 80x24
    rows: list[list[bool]] = []
    for line in lines:  # each character: (top, bottom)
        rows.append([c in "▀█" for c in line])
        rows.append([c in "▄█" for c in line])
    size = len(lines[0]) - 2
    matrix = [row[1 : 1 + size] for row in rows[1 : 1 + size]]
    assert decode(matrix) == value  # the strict decoder the PDF check uses


def test_psid_revert_is_listed_only_where_the_probe_cannot_rule_out_opal() -> None:
    base = {
        "policy": "nist-purge",
        "level_requested": "purge",
        "level_expected": "clear",
        "level_note": "",
        "flash": False,
        "steps": [],
        "overwrite": True,
        "accessible_bytes": 1,
        "native_bytes": 1,
        "estimate_seconds": 1.0,
        "overwrite_estimate_seconds": 1.0,
        "alternatives": [
            {
                "action": "opal-psid-revert",
                "label": "TCG Opal PSID revert (crypto erase)",
                "level": "purge",
                "reason": "needs the PSID printed on the drive label",
            }
        ],
    }
    for protocol, caps, listed in (("none", {}, False), ("ata", {}, True), ("ata", {"opal": False}, False)):
        pp = PurgePlan.from_dict({**base, "protocol": protocol, "capabilities": caps})
        assert opal_known_absent(pp) is not listed
        assert bool(shown_alternatives(pp)) is listed


# -- no English in French documents ----------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["verified", "failed_bad_ranges", "failed_verification", "interrupted", "unverified"]
)
def test_french_certificates_and_failure_reports_hold_no_english(tmp_path: Path, name: str) -> None:
    station = make_station(tmp_path)
    record = getattr(records, name)()
    issued = station.issue(record, lang="fr")
    text = pdf_text(issued.pdf_path.read_bytes())
    text += "\n" + pdf_text(render_label(issued.certificate, issued.digest, lang="fr"))
    if not issued.certificate.success:
        d = issue_destruction(
            record,
            key_dir=station.key_dir,
            cert_dir=station.cert_dir,
            method="degauss",
            performed_by="Camille Martin",
            settings=SETTINGS,
            lang="fr",
            report=(issued.certificate_id, issued.digest),
        )
        text += "\n" + pdf_text(d.pdf_path.read_bytes())
    # The fixture's own invented reason and job id (a real job's id is a UUID).
    text = re.sub(r"worker killed during pass \d|job-\d+", "", text)
    left = english_left(text)
    assert left == [], [context(text, w) for w in left]


@pytest.mark.root
def test_the_demo_speaks_french_from_start_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TABULA_HOME", raising=False)
    code = main(
        ["demo", "--cli", "--dir", str(tmp_path), "--method", "zero", "--verify", "last", "--lang", "fr"]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Disques virtuels" in out and "rapport d'échec" in out.lower()
    left = english_left(out)
    assert left == [], [context(out, w) for w in left]
