"""Append-only, fsync'd job journal, and the job state derived from it.

Each job lives in its own directory::

    <jobs-root>/<job-id>/journal.jsonl   one JSON object per line, fsync'd after every line

Every line has ``seq`` (0, 1, 2, ...), ``t`` (UTC ISO 8601) and ``event``.  Events, in order:

``planned`` {plan}                          the whole :class:`~erase.record.JobPlan`
``worker-started`` {pid, boot_id, start}    a worker process took the job (again, on resume)
``pass-started`` {pass, start}              writing pass ``pass`` from byte ``start``
``progress`` {pass, phase, done, total, rate, synced}
``bad-range`` {pass, range}                 unwritable range found while writing
``pass-finished`` {pass, start, written, completed}
``verify-started`` {pass, mode, seed, planned}
``verify-finished`` {pass, verification}    a :class:`~erase.record.VerificationRecord`
``step-started`` {step, action}             firmware/preparation step ``step`` of the plan's purge
``step-finished`` {step, result}            a :class:`~erase.record.FirmwareStepRecord` (with evidence)
``failed`` {reason, error}                  the job cannot go on (drive gone, abort on error, ...)
``cancelled`` {reason}                      the worker was asked to stop
``finished`` {}                             the worker reached the end of the plan

The outcome is *derived* from the journal, never stored as a claim: a job with no ``finished``,
``failed`` or ``cancelled`` line and no live worker was killed, so it is *interrupted*.  A torn last
line (a crash in the middle of a write) is ignored and reported.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from erase.errors import JournalError
from erase.model import Range
from erase.record import (
    FirmwareStepRecord,
    JobPlan,
    JobRecord,
    Outcome,
    PassRecord,
    VerificationRecord,
    success_problems,
)
from host.fsio import fsync_dir

JOURNAL = "journal.jsonl"


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Journal:
    """Writer side: appends one fsync'd JSON line per event."""

    def __init__(self, job_dir: Path) -> None:
        self.job_dir = job_dir
        self.path = job_dir / JOURNAL
        events, _torn = read_events(self.path) if self.path.exists() else ([], False)
        self._seq = events[-1]["seq"] + 1 if events else 0
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if _torn:
            # Keep the file line-structured: end the torn line so the next event parses.
            os.write(self._fd, b"\n")
            os.fsync(self._fd)

    @classmethod
    def create(cls, jobs_root: Path, plan: JobPlan) -> Journal:
        job_dir = jobs_root / plan.job_id
        job_dir.mkdir(parents=True, exist_ok=False)
        fsync_dir(jobs_root)
        journal = cls(job_dir)
        journal.append("planned", plan=plan.to_dict())
        fsync_dir(job_dir)
        return journal

    def append(self, event: str, **data: Any) -> None:
        line = {"seq": self._seq, "t": utcnow(), "event": event, **data}
        payload = (json.dumps(line, separators=(",", ":"), sort_keys=True) + "\n").encode()
        written = os.write(self._fd, payload)
        if written != len(payload):
            raise JournalError(f"short write to journal {self.path}")
        os.fsync(self._fd)
        self._seq += 1

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _starts_a_worker(line: bytes) -> bool:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError:
        return False
    return isinstance(obj, dict) and obj.get("event") == "worker-started"


# -- events ------------------------------------------------------------------------------------
#
# Each journal line is one of these, read by :func:`parse_event` (a malformed line raises
# KeyError, TypeError or ValueError, which the readers turn into a JournalError).  Lines stay JSON
# objects in the file and in :attr:`JobState.events`: the CLI prints them as they are.


@dataclass(frozen=True)
class WorkerStarted:
    t: str
    pid: int
    raw: dict[str, Any]  # the line itself: worker_alive() reads boot_id and start from it


@dataclass(frozen=True)
class PassStarted:
    t: str
    index: int
    start: int


@dataclass(frozen=True)
class ProgressMade:
    t: str
    index: int
    phase: str
    done: int
    total: int
    rate: float
    synced: bool


@dataclass(frozen=True)
class BadRange:
    t: str
    index: int
    range: Range


@dataclass(frozen=True)
class PassFinished:
    t: str
    index: int
    start: int
    written: int
    completed: bool


@dataclass(frozen=True)
class VerifyStarted:
    t: str
    index: int
    planned: int | None


@dataclass(frozen=True)
class VerifyFinished:
    t: str
    verification: VerificationRecord


@dataclass(frozen=True)
class StepStarted:
    t: str
    index: int


@dataclass(frozen=True)
class StepFinished:
    t: str
    result: FirmwareStepRecord


@dataclass(frozen=True)
class Ended:
    """``finished``, ``failed`` or ``cancelled``."""

    t: str
    kind: str
    reason: str


Event = (
    WorkerStarted
    | PassStarted
    | ProgressMade
    | BadRange
    | PassFinished
    | VerifyStarted
    | VerifyFinished
    | StepStarted
    | StepFinished
    | Ended
)

_PARSERS: dict[str, Callable[[dict[str, Any]], Event]] = {
    "worker-started": lambda d: WorkerStarted(d["t"], int(d["pid"]), d),
    "pass-started": lambda d: PassStarted(d["t"], int(d["pass"]), int(d["start"])),
    "progress": lambda d: ProgressMade(
        d["t"],
        int(d["pass"]),
        str(d["phase"]),
        int(d["done"]),
        int(d["total"]),
        float(d.get("rate", 0.0)),
        bool(d.get("synced")),
    ),
    "bad-range": lambda d: BadRange(d["t"], int(d["pass"]), Range.from_dict(d["range"])),
    "pass-finished": lambda d: PassFinished(
        d["t"], int(d["pass"]), int(d["start"]), int(d["written"]), bool(d["completed"])
    ),
    "verify-started": lambda d: VerifyStarted(
        d["t"], int(d["pass"]), int(d["planned"]) if "planned" in d else None
    ),
    "verify-finished": lambda d: VerifyFinished(d["t"], VerificationRecord.from_dict(d["verification"])),
    "step-started": lambda d: StepStarted(d["t"], int(d["step"])),
    "step-finished": lambda d: StepFinished(d["t"], FirmwareStepRecord.from_dict(d["result"])),
    "finished": lambda d: Ended(d["t"], "finished", ""),
    "failed": lambda d: Ended(d["t"], "failed", str(d.get("reason", ""))),
    "cancelled": lambda d: Ended(d["t"], "cancelled", str(d.get("reason", ""))),
}


def parse_event(line: dict[str, Any]) -> Event | None:
    """The typed event of a journal line (None: an event this version does not know)."""
    parser = _PARSERS.get(line["event"])
    return parser(line) if parser is not None else None


# -- reading lines: the torn-line rule ----------------------------------------------------------


@dataclass
class _Lines:
    """The JSON objects of some journal lines, and what did not parse."""

    objects: list[dict[str, Any]]
    unparsable: list[int]  # indexes (in the lines given) of the torn lines
    torn_inside: bool  # a torn line that a later worker closed
    torn_last: int | None  # index of an unparsable last line


def _parse_lines(lines: list[bytes]) -> _Lines:
    """Parse journal lines with the torn-line rule, the same for the writer and the follower.

    A line that does not parse is what a crash in the middle of a write leaves: the last line, or
    a line that the next worker closed before it started (its first event is always
    ``worker-started``).  Anywhere else the journal was altered: :class:`_Altered`.
    """
    out = _Lines([], [], False, None)
    for k, line in enumerate(lines):
        try:
            out.objects.append(json.loads(line))
        except json.JSONDecodeError as exc:
            out.unparsable.append(k)
            following = lines[k + 1] if k + 1 < len(lines) else None
            if following is None:
                out.torn_last = k
            elif _starts_a_worker(following):
                out.torn_inside = True
            else:
                raise _Altered(k) from exc
    return out


class _Altered(Exception):
    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


def read_events(path: Path) -> tuple[list[dict[str, Any]], bool]:
    """All complete events of a journal, and whether a torn (partial) line was found."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise JournalError(f"no journal at {path}", hint="is this a job directory?") from exc
    numbered = [(i, line) for i, line in enumerate(raw.split(b"\n")) if line.strip()]
    try:
        parsed = _parse_lines([line for _i, line in numbered])
    except _Altered as exc:
        line_no = numbered[exc.index][0] + 1
        raise JournalError(f"{path}: line {line_no} is corrupt", hint="the journal was altered") from exc
    for k, obj in enumerate(parsed.objects):
        if not isinstance(obj, dict) or obj.get("seq") != k:
            raise JournalError(f"{path}: event {k} is out of sequence", hint="the journal was altered")
    if not parsed.objects or parsed.objects[0].get("event") != "planned":
        raise JournalError(f"{path}: the journal does not start with a plan")
    return parsed.objects, parsed.torn_inside or parsed.torn_last is not None


# -- worker liveness ---------------------------------------------------------------------------


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return socket.gethostname()


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat from field 3 (the state) on; None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (field 22 of /proc/PID/stat), to tell a reused pid."""
    fields = _stat_fields(pid)
    return fields[19] if fields is not None and len(fields) > 19 else None


def worker_alive(event: dict[str, Any]) -> bool:
    """Whether the worker of a ``worker-started`` event still runs: same boot, same process (its
    kernel start time), and not a zombie waiting for its parent to reap it."""
    if event.get("boot_id") != boot_id():
        return False
    fields = _stat_fields(int(event["pid"]))
    if fields is None or len(fields) <= 19:
        return False
    return fields[0] not in ("Z", "X") and fields[19] == event.get("start")


# -- derived state -----------------------------------------------------------------------------


@dataclass
class PassState:
    index: int
    total: int
    started_at: str | None = None
    finished_at: str | None = None
    segments: list[tuple[int, int]] = field(default_factory=list)  # durable [start, end) written
    open_start: int | None = None  # start of the segment being written now
    synced: int | None = None  # durable offset reached in the open segment
    done: int = 0  # latest (maybe not durable) offset, for display
    completed: bool = False
    bad_ranges: list[Range] = field(default_factory=list)
    resumed: int = 0

    def covered(self) -> int:
        spans = list(self.segments)
        if self.open_start is not None and self.synced is not None and self.synced > self.open_start:
            spans.append((self.open_start, self.synced))
        total = 0
        reach = 0
        for start, end in sorted(spans):
            start = max(start, reach)
            if end > start:
                total += end - start
                reach = end
        return total

    def resume_offset(self) -> int:
        """Where writing can safely restart: the end of the contiguous durable prefix."""
        reach = 0
        spans = list(self.segments)
        if self.open_start is not None and self.synced is not None:
            spans.append((self.open_start, self.synced))
        for start, end in sorted(spans):
            if start > reach:
                break
            reach = max(reach, end)
        return reach


@dataclass
class JobState:
    """Everything a reader (CLI, TUI) needs about a job, derived from its journal alone."""

    job_dir: Path
    plan: JobPlan
    events: list[dict[str, Any]]
    torn: bool
    passes: dict[int, PassState]
    verifications: dict[int, VerificationRecord]
    phase: str  # planned, write, verify, done
    current_pass: int | None
    phase_done: int
    phase_total: int
    rate: float
    started_at: str | None
    ended_at: str | None
    end_event: str | None  # finished, failed, cancelled, or None
    failure: str | None
    worker: dict[str, Any] | None
    last_t: str
    new_events: list[dict[str, Any]] = field(default_factory=list)
    steps: dict[int, FirmwareStepRecord] = field(default_factory=dict)  # firmware steps finished
    current_step: int | None = None  # firmware step running now

    @classmethod
    def start(cls, job_dir: Path, planned: dict[str, Any]) -> JobState:
        return cls(
            job_dir=job_dir,
            plan=JobPlan.from_dict(planned["plan"]),
            events=[planned],
            torn=False,
            passes={},
            verifications={},
            phase="planned",
            current_pass=None,
            phase_done=0,
            phase_total=0,
            rate=0.0,
            started_at=None,
            ended_at=None,
            end_event=None,
            failure=None,
            worker=None,
            last_t=planned["t"],
        )

    def apply(self, ev: dict[str, Any]) -> None:
        """Fold one journal line into the state."""
        event = parse_event(ev)
        if event is None:
            raise JournalError(f"{self.job_dir}: unknown event {ev['event']!r} at line {ev['seq'] + 1}")
        self.events.append(ev)
        self.last_t = ev["t"]
        match event:
            case WorkerStarted():
                self._worker_started(event)
            case PassStarted():
                self._pass_started(event)
            case ProgressMade():
                self._progress(event)
            case BadRange(index=i, range=r):
                self.passes[i].bad_ranges = merge_ranges([*self.passes[i].bad_ranges, r])
            case PassFinished():
                self._pass_finished(event)
            case VerifyStarted(index=i, planned=planned):
                self.phase, self.current_pass = "verify", i
                self.phase_done = 0
                self.phase_total = planned if planned is not None else self.plan.drive.size_bytes
            case VerifyFinished(verification=v):
                self.verifications[v.pass_index] = v
            case StepStarted(index=i):
                self.phase, self.current_step = "firmware", i
                self.phase_done, self.phase_total = 0, 0
            case StepFinished(result=rec):
                self.steps[rec.index] = rec
                self.current_step = None
            case Ended(t=t, kind=kind, reason=reason):
                self.end_event, self.ended_at, self.phase = kind, t, "done"
                if kind != "finished":
                    self.failure = reason

    def _worker_started(self, ev: WorkerStarted) -> None:
        self.worker = ev.raw
        self.started_at = self.started_at or ev.t
        # A new worker closes any segment the previous one left open (its durable part stays).
        for ps in self.passes.values():
            if ps.open_start is not None:
                if ps.synced is not None and ps.synced > ps.open_start:
                    ps.segments.append((ps.open_start, ps.synced))
                ps.open_start = None
                ps.synced = None
        if self.end_event == "cancelled":  # a resumed job: cancelled is no longer its end
            self.end_event = None
            self.failure = None
            self.ended_at = None

    def _pass_started(self, ev: PassStarted) -> None:
        size = self.plan.drive.size_bytes
        ps = self.passes.get(ev.index)
        if ps is None:
            ps = self.passes[ev.index] = PassState(index=ev.index, total=size, started_at=ev.t)
        else:
            ps.resumed += 1
        ps.open_start = ps.synced = ps.done = ev.start
        self.phase, self.current_pass = "write", ev.index
        self.phase_done, self.phase_total = ps.done, size

    def _progress(self, ev: ProgressMade) -> None:
        self.phase, self.current_pass = ev.phase, ev.index
        self.phase_done, self.phase_total = ev.done, ev.total
        self.rate = ev.rate
        ps = self.passes.get(ev.index)
        if ev.phase == "write" and ps is not None:
            ps.done = ev.done
            if ev.synced and ps.open_start is not None:
                ps.synced = ev.done

    def _pass_finished(self, ev: PassFinished) -> None:
        ps = self.passes[ev.index]
        ps.segments.append((ev.start, ev.start + ev.written))
        ps.open_start = ps.synced = None
        ps.done = ev.start + ev.written
        ps.completed = ev.completed
        ps.finished_at = ev.t

    @property
    def alive(self) -> bool:
        return self.end_event is None and self.worker is not None and worker_alive(self.worker)

    @property
    def outcome(self) -> Outcome:
        if self.end_event is None:
            return Outcome.RUNNING if self.alive else Outcome.INTERRUPTED
        if self.end_event == "cancelled":
            return Outcome.INTERRUPTED
        if self.end_event == "failed":
            return Outcome.FAILED
        return Outcome.FAILED if self._problems() else self._success_outcome()

    def _success_outcome(self) -> Outcome:
        if not self.plan.passes:  # firmware steps only: each carries its own evidence
            return Outcome.VERIFIED
        return Outcome.UNVERIFIED if self.plan.verify == "none" else Outcome.VERIFIED

    def _pass_records(self) -> list[PassRecord]:
        out = []
        for i in sorted(self.passes):
            ps = self.passes[i]
            out.append(
                PassRecord(
                    index=i,
                    pattern=self.plan.passes[i],
                    bytes_total=ps.total,
                    bytes_written=ps.covered(),
                    started_at=ps.started_at or "",
                    finished_at=ps.finished_at,
                    completed=ps.completed and ps.covered() == ps.total,
                    bad_ranges=tuple(ps.bad_ranges),
                    resumed=ps.resumed,
                )
            )
        return out

    def _problems(self) -> list[str]:
        return success_problems(
            self.plan,
            self._pass_records(),
            [self.verifications[k] for k in sorted(self.verifications)],
            self._success_outcome(),
            [self.steps[k] for k in sorted(self.steps)],
        )

    @property
    def overall_fraction(self) -> float:
        """0..1 over the whole plan (writes and verifications), for progress bars."""
        n = len(self.plan.passes)
        verified = set(self.plan.verified_passes())
        n_steps = len(self.plan.purge_steps)
        units = n + len(verified) + n_steps
        done = float(len(self.steps))
        for i in range(n):
            ps = self.passes.get(i)
            if ps is None:
                continue
            if ps.completed:
                done += 1
            elif ps.total:
                done += ps.done / ps.total
            if i in verified:
                if i in self.verifications:
                    done += 1
                elif self.phase == "verify" and self.current_pass == i and self.phase_total:
                    done += self.phase_done / self.phase_total
        return min(1.0, done / units) if units else 0.0

    def record(self) -> JobRecord:
        """The job's record.  Only for a job that is over (finished, failed or interrupted)."""
        outcome = self.outcome
        if outcome is Outcome.RUNNING:
            raise JournalError(f"job {self.plan.job_id} is still running", hint="wait for it to end")
        reasons: list[str] = []
        if outcome is Outcome.FAILED:
            if self.failure:
                reasons.append(self.failure)
            reasons.extend(self._problems())
        elif outcome is Outcome.INTERRUPTED:
            if self.end_event == "cancelled":
                reasons.append(self.failure or "the job was cancelled before the end")
            else:
                reasons.append("the worker stopped before the end (killed, crashed or power lost)")
            reasons.extend(self._problems())
        if self.torn:
            reasons.append("the journal ends with a torn line (the worker died while writing it)")
        return JobRecord(
            plan=self.plan,
            passes=tuple(self._pass_records()),
            verifications=tuple(self.verifications[k] for k in sorted(self.verifications)),
            started_at=self.started_at or self.events[0]["t"],
            finished_at=self.ended_at,
            outcome=outcome,
            reasons=tuple(dict.fromkeys(reasons)),
            firmware_steps=tuple(self.steps[k] for k in sorted(self.steps)),
        )


def merge_ranges(ranges: list[Range]) -> list[Range]:
    """Coalesce overlapping or touching ranges of the same kind (a range found growing is one range)."""
    out: list[Range] = []
    for r in sorted(ranges, key=lambda r: (r.op, r.offset)):
        last = out[-1] if out else None
        if last is not None and last.op == r.op and r.offset <= last.end:
            error = last.error if last.error == r.error or not r.error else f"{last.error}; {r.error}"
            out[-1] = Range(last.offset, max(last.end, r.end) - last.offset, last.op, error)
        else:
            out.append(r)
    return out


def derive(job_dir: Path) -> JobState:
    """The state of a job from its journal alone (see :class:`Follower` to keep it current cheaply)."""
    return Follower(job_dir).poll()


class Follower:
    """Reads a journal incrementally: each :meth:`poll` applies only the lines appended since."""

    def __init__(self, job_dir: Path) -> None:
        self.job_dir = job_dir
        self.path = job_dir / JOURNAL
        self._offset = 0
        self._state: JobState | None = None
        self._mid_torn = False

    def poll(self) -> JobState:
        """Apply new complete lines; return the current state.  New events are in ``state.new_events``."""
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        new, tail = self._read(chunk)
        if self._state is None:
            self._state = self._start(new)
            new = new[1:]
        state = self._state
        # A partial last line may just be a line being written right now: it counts only while it lasts.
        state.torn = self._mid_torn or bool(tail.strip())
        state.new_events = new
        for ev in new:
            if ev.get("seq") != len(state.events):
                raise JournalError(
                    f"{self.path}: event {ev.get('seq')} is out of sequence", hint="the journal was altered"
                )
            try:
                state.apply(ev)
            except (KeyError, TypeError, ValueError) as exc:
                raise JournalError(f"{self.path}: event {ev.get('seq')} is malformed ({exc!r})") from exc
        return state

    def _read(self, chunk: bytes) -> tuple[list[dict[str, Any]], bytes]:
        """The complete lines of ``chunk`` (what was appended since the last poll), and the rest.

        An unparsable last line is held back (it is read again at the next poll): until the next
        worker closes it, it is not yet known to be torn or corrupt.
        """
        complete, sep, tail = chunk.rpartition(b"\n")
        if not sep:
            return [], tail
        lines: list[tuple[int, bytes]] = []  # (offset in chunk, line)
        pos = 0
        for line in complete.split(b"\n"):
            if line.strip():
                lines.append((pos, line))
            pos += len(line) + 1
        try:
            parsed = _parse_lines([line for _at, line in lines])
        except _Altered as exc:
            raise JournalError(
                f"{self.path}: a line in the middle is corrupt", hint="the journal was altered"
            ) from exc
        if self._state is None and 0 in parsed.unparsable:
            raise JournalError(f"{self.path}: first line is corrupt")
        consumed = len(complete) + 1
        if parsed.torn_last is not None:
            consumed, tail = lines[parsed.torn_last]
        self._mid_torn = self._mid_torn or parsed.torn_inside
        self._offset += consumed
        return parsed.objects, tail

    def _start(self, new: list[dict[str, Any]]) -> JobState:
        if not new or new[0].get("event") != "planned":
            raise JournalError(f"{self.path}: the journal does not start with a plan")
        try:
            return JobState.start(self.job_dir, new[0])
        except (KeyError, TypeError, ValueError) as exc:
            raise JournalError(f"{self.path}: the plan line is malformed ({exc!r})") from exc


def iter_jobs(jobs_root: Path) -> Iterator[Path]:
    if not jobs_root.is_dir():
        return
    for child in sorted(jobs_root.iterdir()):
        if (child / JOURNAL).is_file():
            yield child
