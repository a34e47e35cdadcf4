"""The journal is the single source of truth: outcomes are derived, never claimed."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from erase.errors import InvalidModel, JournalError
from erase.journal import Follower, Journal, boot_id, derive, process_start, read_events, worker_alive
from erase.model import Pattern, Range
from erase.record import JobPlan, JobRecord, Outcome, VerificationRecord
from host.identity import DriveInfo

SIZE = 1 << 20


def drive() -> DriveInfo:
    return DriveInfo(
        path="/dev/loop9",
        size_bytes=SIZE,
        logical_sector_size=512,
        physical_sector_size=512,
        transport="loop",
        media_type="virtual",
        rotational=False,
        removable=False,
        read_only=False,
        backing_file="/tmp/x.img",
        kernel_name="loop9",
    )


def plan(verify: str = "last", passes: int = 2) -> JobPlan:
    pats = [Pattern(kind="bytes", hex="00", label="zeros"), Pattern(kind="bytes", hex="ff", label="ones")][
        :passes
    ]
    return JobPlan(
        job_id="job-1",
        created_at="2026-11-28T12:00:00.000Z",
        drive=drive(),
        method="test",
        passes=tuple(pats),
        seed="00" * 16,
        verify=verify,  # type: ignore[arg-type]
        verify_mode="full",
        block_size=4 << 20,
    )


def verification(i: int, passed: bool = True) -> dict[str, object]:
    return VerificationRecord(
        pass_index=i,
        mode="full",
        bytes_total=SIZE,
        bytes_checked=SIZE,
        passed=passed,
        started_at="a",
        finished_at="b",
        mismatch_count=0 if passed else 1,
        mismatches=() if passed else (Range(512, 512, "verify"),),
    ).to_dict()


def me() -> dict[str, object]:
    pid = os.getpid()
    return {"pid": pid, "boot_id": boot_id(), "start": process_start(pid)}


def dead_worker() -> dict[str, object]:
    return {"pid": 999_999_999, "boot_id": boot_id(), "start": "1"}


def test_a_worker_is_alive_until_it_exits_even_unreaped() -> None:
    child = subprocess.Popen(["sleep", "30"])
    event = {"pid": child.pid, "boot_id": boot_id(), "start": process_start(child.pid)}
    try:
        assert worker_alive(event)
        assert not worker_alive({**event, "start": "1"})  # the pid now names another process
        assert not worker_alive({**event, "boot_id": "another-boot"})
        child.kill()
        deadline = time.monotonic() + 10
        while worker_alive(event):  # a zombie until reaped below: already dead, not running
            assert time.monotonic() < deadline, "a killed, unreaped worker still looks alive"
            time.sleep(0.01)
        assert process_start(child.pid) is not None  # still unreaped: the zombie is what was tested
    finally:
        child.kill()
        child.wait()
    assert not worker_alive(event)


def full_pass(j: Journal, i: int) -> None:
    j.append("pass-started", **{"pass": i}, start=0)
    j.append("progress", **{"pass": i}, phase="write", done=SIZE, total=SIZE, rate=1.0, synced=True)
    j.append("pass-finished", **{"pass": i}, start=0, written=SIZE, completed=True)


def test_complete_verified_job(tmp_path: Path) -> None:
    with Journal.create(tmp_path, plan()) as j:
        j.append("worker-started", **me())
        full_pass(j, 0)
        full_pass(j, 1)
        j.append("verify-started", **{"pass": 1}, mode="full", seed=None, planned=SIZE)
        j.append("verify-finished", **{"pass": 1}, verification=verification(1))
        j.append("finished")
    state = derive(tmp_path / "job-1")
    assert state.outcome is Outcome.VERIFIED
    rec = state.record()
    assert rec.nist_level == "clear"
    assert [p.bytes_written for p in rec.passes] == [SIZE, SIZE]
    assert JobRecord.from_dict(json.loads(json.dumps(rec.to_dict()))) == rec


def test_finished_but_verification_failed_is_failed(tmp_path: Path) -> None:
    with Journal.create(tmp_path, plan()) as j:
        j.append("worker-started", **me())
        full_pass(j, 0)
        full_pass(j, 1)
        j.append("verify-finished", **{"pass": 1}, verification=verification(1, passed=False))
        j.append("finished")
    rec = derive(tmp_path / "job-1").record()
    assert rec.outcome is Outcome.FAILED
    assert rec.nist_level is None
    assert any("verification of pass 2 failed" in r for r in rec.reasons)


def test_finished_without_verification_event_is_failed(tmp_path: Path) -> None:
    with Journal.create(tmp_path, plan()) as j:
        j.append("worker-started", **me())
        full_pass(j, 0)
        full_pass(j, 1)
        j.append("finished")
    rec = derive(tmp_path / "job-1").record()
    assert rec.outcome is Outcome.FAILED
    assert "pass 2 was not verified" in rec.reasons


def test_bad_range_makes_the_job_fail(tmp_path: Path) -> None:
    with Journal.create(tmp_path, plan(verify="none", passes=1)) as j:
        j.append("worker-started", **me())
        j.append("pass-started", **{"pass": 0}, start=0)
        j.append("bad-range", **{"pass": 0}, range=Range(4096, 512, "write", "EIO").to_dict())
        j.append("pass-finished", **{"pass": 0}, start=0, written=SIZE, completed=True)
        j.append("finished")
    rec = derive(tmp_path / "job-1").record()
    assert rec.outcome is Outcome.FAILED
    assert rec.bad_ranges == (Range(4096, 512, "write", "EIO"),)


def test_unverified_job_when_no_verification_asked(tmp_path: Path) -> None:
    with Journal.create(tmp_path, plan(verify="none", passes=1)) as j:
        j.append("worker-started", **me())
        full_pass(j, 0)
        j.append("finished")
    rec = derive(tmp_path / "job-1").record()
    assert rec.outcome is Outcome.UNVERIFIED
    assert rec.nist_level is None


def test_killed_worker_is_interrupted_with_durable_prefix(tmp_path: Path) -> None:
    with Journal.create(tmp_path, plan()) as j:
        j.append("worker-started", **dead_worker())
        full_pass(j, 0)
        j.append("pass-started", **{"pass": 1}, start=0)
        j.append("progress", **{"pass": 1}, phase="write", done=4096, total=SIZE, rate=1.0, synced=True)
        j.append("progress", **{"pass": 1}, phase="write", done=8192, total=SIZE, rate=1.0, synced=False)
    state = derive(tmp_path / "job-1")
    assert state.outcome is Outcome.INTERRUPTED
    assert state.passes[1].resume_offset() == 4096  # only the synced part counts
    rec = state.record()
    assert rec.outcome is Outcome.INTERRUPTED
    assert rec.passes[1].bytes_written == 4096 and not rec.passes[1].completed


def test_resumed_pass_covers_the_whole_drive(tmp_path: Path) -> None:
    with Journal.create(tmp_path, plan(verify="none", passes=1)) as j:
        j.append("worker-started", **dead_worker())
        j.append("pass-started", **{"pass": 0}, start=0)
        j.append("progress", **{"pass": 0}, phase="write", done=SIZE // 2, total=SIZE, rate=1.0, synced=True)
        j.append("worker-started", **me())
        j.append("pass-started", **{"pass": 0}, start=SIZE // 2)
        j.append("pass-finished", **{"pass": 0}, start=SIZE // 2, written=SIZE // 2, completed=True)
        j.append("finished")
    rec = derive(tmp_path / "job-1").record()
    assert rec.outcome is Outcome.UNVERIFIED
    assert rec.passes[0].resumed == 1 and rec.passes[0].bytes_written == SIZE


def test_resume_that_skips_a_gap_cannot_succeed(tmp_path: Path) -> None:
    with Journal.create(tmp_path, plan(verify="none", passes=1)) as j:
        j.append("worker-started", **dead_worker())
        j.append("pass-started", **{"pass": 0}, start=0)
        j.append("progress", **{"pass": 0}, phase="write", done=4096, total=SIZE, rate=1.0, synced=True)
        j.append("worker-started", **me())
        j.append("pass-started", **{"pass": 0}, start=SIZE // 2)  # a gap [4096, SIZE/2) never written
        j.append("pass-finished", **{"pass": 0}, start=SIZE // 2, written=SIZE // 2, completed=True)
        j.append("finished")
    rec = derive(tmp_path / "job-1").record()
    assert rec.outcome is Outcome.FAILED
    assert rec.passes[0].bytes_written == 4096 + SIZE // 2


def test_live_worker_is_running_and_has_no_record(tmp_path: Path) -> None:
    with Journal.create(tmp_path, plan()) as j:
        j.append("worker-started", **me())
    state = derive(tmp_path / "job-1")
    assert state.outcome is Outcome.RUNNING
    with pytest.raises(JournalError):
        state.record()


def test_cancelled_is_interrupted(tmp_path: Path) -> None:
    with Journal.create(tmp_path, plan()) as j:
        j.append("worker-started", **me())
        j.append("cancelled", reason="stopped by the operator")
    rec = derive(tmp_path / "job-1").record()
    assert rec.outcome is Outcome.INTERRUPTED
    assert "stopped by the operator" in rec.reasons


def test_torn_last_line_is_ignored_and_reported(tmp_path: Path) -> None:
    with Journal.create(tmp_path, plan()) as j:
        j.append("worker-started", **dead_worker())
    path = tmp_path / "job-1" / "journal.jsonl"
    with open(path, "ab") as f:
        f.write(b'{"seq": 2, "event": "pass-sta')
    state = derive(tmp_path / "job-1")
    assert state.torn and state.outcome is Outcome.INTERRUPTED
    # a new worker repairs the line structure and continues the sequence
    with Journal(tmp_path / "job-1") as j:
        j.append("worker-started", **dead_worker())
        j.append("cancelled", reason="x")
    assert derive(tmp_path / "job-1").end_event == "cancelled"


def test_both_readers_agree_on_a_torn_line(tmp_path: Path) -> None:
    """The writer's reader (read_events) and the follower (derive, the TUI, the certificate) accept a
    torn line only where a crash can leave one: last, or closed by a new worker's first event."""
    with Journal.create(tmp_path, plan()) as j:
        j.append("worker-started", **dead_worker())
    path = tmp_path / "job-1" / "journal.jsonl"
    good = path.read_bytes()
    torn = b'{"seq": 2, "event": "pass-sta'
    T = "2026-11-28T12:00:00.000Z"
    follower = Follower(tmp_path / "job-1")
    path.write_bytes(good + torn + b"\n")  # a torn line the next worker is about to close
    assert follower.poll().torn  # held back: not yet known to be harmless or corrupt
    path.write_bytes(
        good + torn + b"\n" + json.dumps({"seq": 2, "t": T, "event": "cancelled"}).encode() + b"\n"
    )
    with pytest.raises(JournalError, match="corrupt"):
        read_events(path)
    with pytest.raises(JournalError, match="corrupt"):
        follower.poll()  # the held-back line is read again with what followed it
    with pytest.raises(JournalError, match="corrupt"):
        derive(tmp_path / "job-1")
    closed = {"seq": 2, "t": T, "event": "worker-started", **dead_worker()}
    path.write_bytes(good + torn + b"\n" + json.dumps(closed).encode() + b"\n")
    events, was_torn = read_events(path)
    assert was_torn and [e["event"] for e in events] == ["planned", "worker-started", "worker-started"]
    state = derive(tmp_path / "job-1")
    assert state.torn and len(state.events) == 3


def test_altered_journal_is_rejected(tmp_path: Path) -> None:
    with Journal.create(tmp_path, plan()) as j:
        j.append("worker-started", **me())
        j.append("finished")
    path = tmp_path / "job-1" / "journal.jsonl"
    lines = path.read_text().splitlines()
    del lines[1]  # a deleted line breaks the sequence
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(JournalError, match="out of sequence"):
        derive(tmp_path / "job-1")


def test_follower_reads_incrementally(tmp_path: Path) -> None:
    with Journal.create(tmp_path, plan()) as j:
        f = Follower(tmp_path / "job-1")
        assert f.poll().phase == "planned"
        j.append("worker-started", **me())
        j.append("pass-started", **{"pass": 0}, start=0)
        s = f.poll()
        assert [e["event"] for e in s.new_events] == ["worker-started", "pass-started"]
        assert s.phase == "write" and s.current_pass == 0
        assert f.poll().new_events == []


def test_record_cannot_overclaim() -> None:
    with pytest.raises(InvalidModel, match="not supported by the facts"):
        JobRecord(
            plan=plan(verify="last", passes=1),
            passes=(),
            verifications=(),
            started_at="a",
            finished_at="b",
            outcome=Outcome.VERIFIED,
        )
    with pytest.raises(InvalidModel, match="must say why"):
        JobRecord(
            plan=plan(), passes=(), verifications=(), started_at="a", finished_at=None, outcome=Outcome.FAILED
        )


def test_a_growing_bad_range_is_one_range(tmp_path: Path) -> None:
    with Journal.create(tmp_path, plan(verify="none", passes=1)) as j:
        j.append("worker-started", **dead_worker())
        j.append("pass-started", **{"pass": 0}, start=0)
        j.append("bad-range", **{"pass": 0}, range=Range(4096, 1024, "write", "EIO").to_dict())
        j.append("bad-range", **{"pass": 0}, range=Range(4096, 8192, "write", "EIO").to_dict())
        j.append("bad-range", **{"pass": 0}, range=Range(65536, 512, "write", "EIO").to_dict())
        j.append("failed", reason="aborted")
    rec = derive(tmp_path / "job-1").record()
    assert rec.bad_ranges == (Range(4096, 8192, "write", "EIO"), Range(65536, 512, "write", "EIO"))


def test_a_job_can_be_resumed_again_after_a_torn_line(tmp_path: Path) -> None:
    """Found by review: closing a torn line made it a 'corrupt' middle line, so a second resume failed."""
    with Journal.create(tmp_path, plan()) as j:
        j.append("worker-started", **dead_worker())
    path = tmp_path / "job-1" / "journal.jsonl"
    with open(path, "ab") as f:
        f.write(b'{"seq": 2, "event": "pass-sta')
    for _ in range(2):  # two successive workers (resumes), each cancelled
        with Journal(tmp_path / "job-1") as j:
            j.append("worker-started", **dead_worker())
            j.append("cancelled", reason="stopped")
    state = derive(tmp_path / "job-1")
    assert state.torn and state.end_event == "cancelled"
    assert any("torn line" in r for r in state.record().reasons)


def test_a_corrupt_line_in_the_middle_is_still_refused(tmp_path: Path) -> None:
    with Journal.create(tmp_path, plan()) as j:
        j.append("worker-started", **dead_worker())
        j.append("pass-started", **{"pass": 0}, start=0)
    path = tmp_path / "job-1" / "journal.jsonl"
    lines = path.read_bytes().split(b"\n")
    lines[1] = lines[1][:20]  # not followed by a new worker: altered, not torn
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(JournalError, match="corrupt"):
        Journal(tmp_path / "job-1")
