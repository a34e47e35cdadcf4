"""`station erase` end to end on real loop devices: plan, confirm, one worker per drive, journal,
record, certificate, exit codes.  Every test creates its own loop devices over temp files."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from erase.journal import derive
from erase.record import Outcome
from host.drives import resolve
from station import cli, commands
from station.cli import main
from station.jobs import EraseOptions, create_job, plan_job, spawn
from station.options import WorkerOptions
from tests.faultfs import fault_disk, have_fuse
from tests.loopdev import attach, detach

pytestmark = pytest.mark.root

SECRET = b"secret donor data! "
MiB = 1 << 20


def planted(size: int) -> bytes:
    return (SECRET * (size // len(SECRET) + 1))[:size]


def loop_with_secrets(make_loop: Any, size: int, **kw: Any) -> str:
    dev: str = make_loop(size, **kw)
    with open(dev, "r+b") as f:
        f.write(planted(size))
        f.flush()
        os.fsync(f.fileno())
    return dev


def content(dev: str) -> bytes:
    fd = os.open(dev, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        size = os.lseek(fd, 0, os.SEEK_END)
        return os.pread(fd, size, 0)
    finally:
        os.close(fd)


def trust_dir(home: Path) -> str:
    """An auditor's trust store: just the station's exported public key."""
    trust = home.parent / "trust"
    trust.mkdir(exist_ok=True)
    (trust / "station.pem").write_bytes((home / "keys" / "station.pub.pem").read_bytes())
    return str(trust)


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_erase_zero_verified_with_certificate(
    make_loop: Any, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    size = 8 * MiB + 3 * 512  # not a multiple of the block size
    dev = loop_with_secrets(make_loop, size)
    code, out, _ = run_cli(["erase", dev, "--method", "zero", "--yes", "--include-loop"], capsys)
    assert code == 0, out
    assert "VERIFIED" in out
    assert content(dev) == bytes(size)
    (job,) = list((home / "jobs").iterdir())
    record = json.loads((job / "record.json").read_text())
    assert record["outcome"] == "verified" and record["nist_level"] == "clear"
    assert record["passes"][0]["bytes_written"] == size
    certs = sorted((home / "certs").glob("*.json"))
    assert len(certs) == 1
    code, out, _ = run_cli(["verify", str(certs[0]), "--trust", trust_dir(home)], capsys)
    assert code == 0, out


def test_every_pass_verified_with_json_events(
    make_loop: Any, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dev = loop_with_secrets(make_loop, 4 * MiB, sector_size=4096)
    code, out, _ = run_cli(
        ["erase", dev, "--method", "dod-short", "--verify", "all", "--yes", "--include-loop", "--json"],
        capsys,
    )
    assert code == 0
    events = [json.loads(line) for line in out.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds.count("pass-finished") == 3 and kinds.count("verify-finished") == 3
    assert all(e["verification"]["passed"] for e in events if e["event"] == "verify-finished")
    result = events[-1]
    assert result["event"] == "result" and result["outcome"] == "verified"
    assert SECRET not in content(dev)


def test_sampled_verification_is_recorded_with_its_seed(
    make_loop: Any, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dev = loop_with_secrets(make_loop, 16 * MiB)
    code, _, _ = run_cli(
        ["erase", dev, "--method", "prng", "--sample", "--yes", "--include-loop", "--no-cert"], capsys
    )
    assert code == 0
    (job,) = list((home / "jobs").iterdir())
    (v,) = json.loads((job / "record.json").read_text())["verifications"]
    assert v["mode"] == "sample" and v["passed"] and len(v["seed"]) == 32
    assert 0.10 <= v["coverage"] < 1.0


def test_several_drives_run_in_parallel_processes(
    make_loop: Any, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    devs = [loop_with_secrets(make_loop, (4 + i) * MiB) for i in range(3)]
    code, out, _ = run_cli(
        ["erase", *devs, "--method", "one", "--yes", "--include-loop", "--no-cert"], capsys
    )
    assert code == 0, out
    pids = set()
    for job in (home / "jobs").iterdir():
        state = derive(job)
        assert state.outcome is Outcome.VERIFIED
        assert state.worker is not None
        pids.add(state.worker["pid"])
    assert len(pids) == 3 and os.getpid() not in pids
    for d in devs:
        assert set(content(d)) == {0xFF}


# -- refusals: exit 2 and nothing written -----------------------------------------------------


def test_loop_device_needs_the_flag(make_loop: Any, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dev = loop_with_secrets(make_loop, MiB)
    code, _, err = run_cli(["erase", dev, "--yes"], capsys)
    assert code == 2 and "--include-loop" in err
    assert content(dev) == planted(MiB)


def test_mounted_drive_is_refused(
    make_loop: Any, home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dev = make_loop(32 * MiB)
    subprocess.run(["mkfs.ext4", "-q", "-F", dev], check=True)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", dev, str(mnt)], check=True)
    try:
        (mnt / "photo.jpg").write_bytes(SECRET)
        code, _, err = run_cli(["erase", dev, "--yes", "--include-loop"], capsys)
        assert code == 2
        assert "refused" in err and str(mnt) in err
        assert (mnt / "photo.jpg").read_bytes() == SECRET
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
    assert not (home / "jobs").exists() or not any((home / "jobs").iterdir())


@pytest.mark.parametrize(
    "argv, message",
    [
        (["erase", "/dev/does-not-exist", "--yes"], "no such device"),
        (["erase", "/dev/null", "--yes"], "not a block device"),
        (["erase", "--yes"], "no device given"),
    ],
)
def test_bad_input_one_line_errors(
    argv: list[str], message: str, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(argv, capsys)
    assert code == 2
    assert message in err.lower()


def test_unknown_method_is_refused(make_loop: Any, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dev = loop_with_secrets(make_loop, MiB)
    with pytest.raises(SystemExit) as exc:
        main(["erase", dev, "--method", "shred-it-all", "--yes", "--include-loop"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
    assert content(dev) == planted(MiB)


def test_custom_pattern_needs_valid_hex(
    make_loop: Any, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dev = loop_with_secrets(make_loop, MiB)
    code, _, err = run_cli(
        ["erase", dev, "--method", "custom", "--pattern", "xyz", "--yes", "--include-loop"], capsys
    )
    assert code == 2 and "pattern" in err
    assert content(dev) == planted(MiB)


def test_no_confirmation_without_a_terminal(
    make_loop: Any, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dev = loop_with_secrets(make_loop, MiB)
    code, _, err = run_cli(["erase", dev, "--include-loop"], capsys)
    assert code == 2 and "--yes" in err
    assert content(dev) == planted(MiB)


def test_wrong_confirmation_writes_nothing(
    make_loop: Any, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dev = loop_with_secrets(make_loop, MiB)
    monkeypatch.setattr(sys, "stdin", io.StringIO("nope\n"))
    out = io.StringIO()
    args = cli.build_parser().parse_args(["erase", dev, "--include-loop", "--confirm-from-stdin"])
    assert commands.cmd_erase(args, stdin=sys.stdin, stdout=out) == 2
    assert "Not confirmed" in out.getvalue()
    assert content(dev) == planted(MiB)


def test_right_confirmation_erases(make_loop: Any, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dev = loop_with_secrets(make_loop, MiB)
    name = Path(dev).name  # loop devices have no serial: the device name is asked instead
    out = io.StringIO()
    args = cli.build_parser().parse_args(
        ["erase", dev, "--include-loop", "--confirm-from-stdin", "--no-cert"]
    )
    assert commands.cmd_erase(args, stdin=io.StringIO(name[-4:] + "\n"), stdout=out) == 0
    assert content(dev) == bytes(MiB)


# -- failures: exit 3, never a success ----------------------------------------------------------


needs_fuse = pytest.mark.skipif(
    not have_fuse(), reason="needs /dev/fuse and fusepy (installed by ./dev setup)"
)


@needs_fuse
def test_lying_drive_fails_verification_and_certificate_says_so(
    tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    size = 4 * MiB
    with fault_disk(tmp_path, size, fill=b"\x5a") as fd:
        fd.set_faults([{"op": "write", "mode": "drop", "start": MiB, "end": MiB + 4096}])
        dev = attach(fd.image)
        try:
            code, out, _ = run_cli(["erase", dev, "--method", "zero", "--yes", "--include-loop"], capsys)
        finally:
            detach(dev)
    assert code == 3, out
    assert "FAILED" in out and f"first at byte {MiB}" in out
    (job,) = list((home / "jobs").iterdir())
    record = json.loads((job / "record.json").read_text())
    assert record["outcome"] == "failed" and record["nist_level"] is None
    (v,) = record["verifications"]
    assert v["mismatches"][0] == {"offset": MiB, "length": 4096, "op": "verify", "error": ""}
    (cert,) = (home / "certs").glob("*.json")
    code, out, _ = run_cli(["verify", str(cert), "--trust", trust_dir(home)], capsys)
    assert code != 0 and "fail" in out.lower()


@needs_fuse
def test_unwritable_range_fails_the_job(
    tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with fault_disk(tmp_path, 4 * MiB, fill=b"\x5a") as fd:
        fd.set_faults([{"op": "write", "mode": "eio", "start": 2 * MiB, "end": 2 * MiB + 1024}])
        dev = attach(fd.image)
        # Small requests, so the loop driver reports the FUSE write error instead of losing it inside
        # a large buffered request (the lost-error case is the lying drive above: verification catches it).
        Path(f"/sys/block/{Path(dev).name}/queue/max_sectors_kb").write_text("4")
        try:
            code, out, _ = run_cli(
                ["erase", dev, "--method", "zero", "--yes", "--include-loop", "--no-cert"], capsys
            )
        finally:
            detach(dev)
    assert code == 3, out
    assert "UNWRITABLE range at byte 2097152 (+1024)" in out
    (job,) = list((home / "jobs").iterdir())
    record = json.loads((job / "record.json").read_text())
    assert record["outcome"] == "failed"
    assert record["passes"][0]["bad_ranges"] == [
        {"offset": 2 * MiB, "length": 1024, "op": "write", "error": os.strerror(5)}
    ]


@needs_fuse
def test_drive_pulled_mid_erase_fails(tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with fault_disk(tmp_path, 16 * MiB, fill=b"\x5a") as fd:
        dev = attach(fd.image)
        try:
            entry = resolve(dev, include_loop=True)
            plan = plan_job(entry.info, EraseOptions(method="gutmann", verify="none"))
            job = create_job(home / "jobs", plan, WorkerOptions(include_loop=True, progress_interval=0.01))
            proc = spawn(job)
            wait_for(lambda: any(e["event"] == "pass-finished" for e in derive(job).events))
            fd.kill()  # the "drive" stops answering, as a pulled cable would
            proc.wait(timeout=60)
        finally:
            detach(dev)
    state = derive(job)
    assert state.outcome is Outcome.FAILED
    assert state.failure is not None and "disappeared" in state.failure
    assert json.loads((job / "record.json").read_text())["outcome"] == "failed"


# -- interruption and resume --------------------------------------------------------------------


def wait_for(cond: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def test_killed_worker_is_interrupted_then_resumed_to_a_verified_end(
    make_loop: Any, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    size = 32 * MiB
    dev = loop_with_secrets(make_loop, size)
    entry = resolve(dev, include_loop=True)
    options = EraseOptions(method="custom", custom_hex="c3", rounds=40, verify="last", block_size=1 * MiB)
    plan = plan_job(entry.info, options)
    wopts = WorkerOptions(include_loop=True, progress_interval=0.01, checkpoint_seconds=0.01, cert_dir=None)
    job = create_job(home / "jobs", plan, wopts)
    proc = spawn(job)

    def mid_pass() -> bool:
        s = derive(job)
        return (
            s.current_pass is not None
            and s.current_pass >= 2
            and s.phase == "write"
            and any(
                e["event"] == "progress"
                and e.get("pass") == s.current_pass
                and e.get("synced")
                and 0 < e["done"] < size
                for e in s.events[-3:]
            )
        )

    wait_for(mid_pass)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    state = derive(job)
    assert state.outcome is Outcome.INTERRUPTED
    assert state.record().outcome is Outcome.INTERRUPTED
    interrupted_pass = state.current_pass
    assert interrupted_pass is not None

    code, out, _ = run_cli(["erase", "--resume", plan.job_id[:8], "--job-dir", str(home / "jobs")], capsys)
    assert code == 0, out
    record = derive(job).record()
    assert record.outcome is Outcome.VERIFIED
    assert record.passes[interrupted_pass].resumed == 1
    assert all(p.completed and p.bytes_written == size for p in record.passes)
    assert content(dev) == b"\xc3" * size


def test_cancelled_worker_is_interrupted(make_loop: Any, home: Path) -> None:
    dev = loop_with_secrets(make_loop, 16 * MiB)
    entry = resolve(dev, include_loop=True)
    plan = plan_job(entry.info, EraseOptions(method="gutmann", verify="all"))
    job = create_job(home / "jobs", plan, WorkerOptions(include_loop=True, progress_interval=0.01))
    proc = spawn(job)
    wait_for(lambda: derive(job).current_pass is not None)
    proc.terminate()
    assert proc.wait(timeout=60) == 4
    state = derive(job)
    assert state.end_event == "cancelled" and state.outcome is Outcome.INTERRUPTED
    assert json.loads((job / "record.json").read_text())["outcome"] == "interrupted"


def test_resume_refuses_a_finished_job(
    make_loop: Any, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dev = loop_with_secrets(make_loop, MiB)
    assert run_cli(["erase", dev, "--yes", "--include-loop", "--no-cert"], capsys)[0] == 0
    (job,) = list((home / "jobs").iterdir())
    code, _, err = run_cli(["erase", "--resume", job.name], capsys)
    assert code == 2 and "already over" in err


def test_asset_number_and_donor_reach_the_certificate(
    make_loop: Any, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.fixtures.certs.helpers import payload_of

    dev = loop_with_secrets(make_loop, MiB)
    argv = ["erase", dev, "--yes", "--include-loop", "--asset", "PC-2026-0042", "--donor", "Mairie de Lyon"]
    assert run_cli(argv, capsys)[0] == 0
    (cert,) = (home / "certs").glob("*.json")
    media = payload_of(cert)["media"]
    assert (media["asset_number"], media["source"]) == ("PC-2026-0042", "Mairie de Lyon")


def test_certificate_language_follows_the_settings_file(
    make_loop: Any, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pypdf import PdfReader

    home.mkdir(parents=True, exist_ok=True)
    (home / "settings.toml").write_text('[certificate]\nlanguage = "fr"\norganisation = "Emmaüs Connect"\n')
    dev = loop_with_secrets(make_loop, MiB)
    assert run_cli(["erase", dev, "--yes", "--include-loop"], capsys)[0] == 0
    (pdf,) = (home / "certs").glob("*.pdf")
    text = "".join(page.extract_text() for page in PdfReader(pdf).pages)
    assert "Emmaüs Connect" in text and "Certificat" in text


def test_unverified_erasure_says_so_in_the_exit_code(
    make_loop: Any, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dev = loop_with_secrets(make_loop, MiB)
    code, out, _ = run_cli(["erase", dev, "--verify", "none", "--yes", "--include-loop"], capsys)
    assert code == 5, out
    assert (
        "ERASED, NOT VERIFIED" in out
        and "NIST" not in out.split("ERASED, NOT VERIFIED", 1)[1].splitlines()[0]
    )
    assert content(dev) == bytes(MiB)  # written, just not proven
    (job,) = list((home / "jobs").iterdir())
    assert json.loads((job / "record.json").read_text())["outcome"] == "unverified"


def test_a_second_worker_for_the_same_job_is_refused(make_loop: Any, home: Path) -> None:
    from station.worker import JobLocked, Worker

    dev = loop_with_secrets(make_loop, 16 * MiB)
    entry = resolve(dev, include_loop=True)
    plan = plan_job(entry.info, EraseOptions(method="gutmann", verify="all"))
    job = create_job(home / "jobs", plan, WorkerOptions(include_loop=True, progress_interval=0.01))
    proc = spawn(job)
    try:
        wait_for(lambda: derive(job).worker is not None)
        before = (job / "journal.jsonl").read_bytes()
        with pytest.raises(JobLocked):
            Worker(job)
        assert (job / "journal.jsonl").read_bytes()[: len(before)] == before
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert derive(job).outcome is Outcome.INTERRUPTED


def test_one_damaged_journal_does_not_hide_the_others(
    make_loop: Any, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dev = loop_with_secrets(make_loop, MiB)
    assert run_cli(["erase", dev, "--yes", "--include-loop", "--no-cert"], capsys)[0] == 0
    damaged = home / "jobs" / "zz-damaged"
    damaged.mkdir()
    (damaged / "journal.jsonl").write_text('{"seq": 0, "event": "planned"}\n{"seq": 5}\n')
    code, out, _ = run_cli(["jobs", "--json"], capsys)
    assert code == 0
    outcomes = sorted(r["outcome"] for r in json.loads(out))
    assert outcomes == ["unreadable", "verified"]


def test_resume_refuses_a_drive_without_a_stable_identity(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from erase.journal import Journal
    from tests.test_journal import dead_worker, plan

    anonymous = plan()
    drive = dataclasses.replace(anonymous.drive, backing_file=None, transport="usb", media_type="usb")
    assert drive.identity.startswith("path:")
    with Journal.create(home / "jobs", dataclasses.replace(anonymous, drive=drive)) as j:
        j.append("worker-started", **dead_worker())
    code, _, err = run_cli(["erase", "--resume", "job-1", "--job-dir", str(home / "jobs")], capsys)
    assert code == 2 and "no serial or WWN" in err


def test_certify_a_job_erased_without_a_certificate(
    make_loop: Any, home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dev = loop_with_secrets(make_loop, MiB)
    assert run_cli(["erase", dev, "--yes", "--include-loop", "--no-cert"], capsys)[0] == 0
    (job,) = list((home / "jobs").iterdir())
    code, out, _ = run_cli(["certify", job.name[:8], "--cert-dir", str(tmp_path / "later")], capsys)
    assert code == 0
    assert sorted(Path(p).suffix for p in out.split()) == [".json", ".pdf"]
    assert all(Path(p).parent == tmp_path / "later" for p in out.split())


def test_settings_the_certificate_cannot_hold_stop_the_erase_before_a_byte_is_written(
    make_loop: Any, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An over-long name in the settings file is refused at plan time (certs/limits.py), not after the
    erasure when the certificate is built: the drive keeps its data and no job is written."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "settings.toml").write_text('[certificate]\nlocation = "' + "L" * 201 + '"\n')
    dev = loop_with_secrets(make_loop, MiB)
    code, _, err = run_cli(["erase", dev, "--yes", "--include-loop"], capsys)
    assert code == 2
    assert "location" in err and "200" in err
    assert content(dev) == planted(MiB)
    assert not (home / "jobs").exists() or not any((home / "jobs").iterdir())
