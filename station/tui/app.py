"""The Textual application: state shared by the screens, timers, hot-plug, and starting workers.

The UI thread never waits for a worker: jobs run in their own processes (:func:`station.jobs.spawn`)
and are followed by reading their journals on a timer.  Drive discovery (which reads sysfs and every
process's open files) runs in a thread, triggered by hot-plug events and by a slow periodic rescan.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from textual import work
from textual.app import App
from textual.worker import Worker, WorkerState

from diagnostics.health import drive_health
from erase.errors import EraseError
from erase.journal import JOURNAL
from erase.purge.machine import current_machine
from erase.purge.planner import PlanOptions, PurgePlan
from erase.record import JobPlan, Outcome
from host import paths
from host.drives import DriveEntry, discover, monitor
from host.errors import TabulaError
from host.identity import DriveInfo
from host.runner import Runner, SubprocessRunner
from station import printing
from station.certify import ensure_station_key, settings_for
from station.destroy import destroy_job
from station.i18n import N_, _, choose_language, current_language, set_language, tr
from station.jobs import create_job, find_jobs, plan_job, plan_purge_job, spawn
from station.options import WorkerOptions
from station.sync import lots, status
from station.sync.config import load_config
from station.sync.errors import SyncConfigError
from station.sync.outbox import Outbox, db_path
from station.tui import model
from station.tui.context import DiagnoseSetup, StationContext
from station.tui.machine import Machine
from station.tui.messages import (
    Destroyed,
    DestroyRequested,
    DrivesChanged,
    DrivesScanned,
    FollowRequested,
    JobsFound,
    LotChecked,
    MachineSubmitted,
    Printed,
    PrintRequested,
    QuitRequested,
    SettingsSubmitted,
    StartRequested,
    StationChanged,
    SyncChanged,
    SyncPolled,
)
from station.tui.model import Bench, JobBook, StationSettings, select_jobs
from station.tui.outcome import result_of
from station.tui.screens import (
    BenchScreen,
    ConfirmScreen,
    DrivesScreen,
    MachineScreen,
    ResultScreen,
    SettingsScreen,
)
from station.words import lot_check_words

if TYPE_CHECKING:
    from station.sync.drain import SyncDaemon


class Stoppable(Protocol):
    def stop(self) -> None: ...


DriveSource = Callable[[], list[DriveEntry]]
HotplugCallback = Callable[[str, Any], None]
MonitorFactory = Callable[[HotplugCallback], Stoppable]
HealthProvider = Callable[[DriveInfo], str | None]


CSS = """
#title { height: auto; padding: 0 1; background: $boost; }
#drives { height: 1fr; scrollbar-size-vertical: 1; }
#detail { height: 3; padding: 0 1; background: $boost; }
#policies { height: 1fr; }
#policy-help { height: 5; padding: 0 1; }
#purge-loading { height: 3; }
#purge-options { height: auto; padding: 0 1; }
#purge-options Checkbox { border: none; padding: 0; }
#psid-row { height: 3; }
#psid-label { padding: 1 1; width: auto; }
#psid { width: 40; }
#plan { height: auto; max-height: 10; }
#steps { height: 1fr; padding: 0 1; }
#confirm-row { height: 3; }
#confirm-label { padding: 1 1; width: auto; }
#confirm { width: 20; }
#bench { height: 1fr; }
#result-box { height: auto; max-height: 8; padding: 0 1; }
#result-screen { height: 1fr; }
#result-left { width: 1fr; padding: 0 1; }
#result-qr { width: auto; height: auto; }
#details { padding: 0 1; }
#settings { padding: 0 1; }
#settings Input, #settings Select { width: 60; }
#sync { height: 1; padding: 0 1; }
#machine-problem { height: auto; margin-top: 1; }
#sync.off { color: $text-muted; }
#sync.warn { color: $warning; }
#sync.error { color: $error; }
#diag-title { height: auto; padding: 0 1; background: $boost; }
#diag-body { padding: 0 1; }
ConfirmScreen { align: center middle; }
#confirm-box { width: 64; height: auto; border: thick $warning; background: $surface; padding: 1 2; }
#confirm-text { width: 100%; }
#confirm-buttons { height: 3; margin-top: 1; align: center middle; }
#confirm-buttons Button { margin: 0 2; }
"""


class TabulaApp(App[int]):
    CSS = CSS
    ENABLE_COMMAND_PALETTE = False
    #: The machine at the bench: its lot and asset number (``l`` changes them; frozen, so shared safely).
    machine: Machine = Machine()

    def __init__(
        self,
        *,
        jobs_root: Path,
        include_loop: bool,
        demo_drives: Mapping[str, str] | None,
        explicit_lang: str | None,
        drive_source: DriveSource,
        monitor_factory: MonitorFactory | None,
        settings_path: Path,
        settings: StationSettings,
        settings_doc: dict[str, Any],
        certificates: bool,
        health: HealthProvider | None,
        poll_interval: float,
        rescan_interval: float,
        cmdline: Path,
        environ: Mapping[str, str] | None,
        home: Path,
        diagnose_setup: DiagnoseSetup,
        sync_interval: float,
        print_runner: Runner,
    ) -> None:
        super().__init__()
        self.jobs_root = jobs_root
        self.include_loop = include_loop
        # The demo's own drives, by the file behind each loop device (value: "failing" or ""); None
        # outside the demo.  Only these are ever listed: other programs' loop devices are not the demo's.
        self.demo_drives = dict(demo_drives) if demo_drives is not None else None
        self.demo = demo_drives is not None
        self.print_runner = print_runner
        self.explicit_lang = explicit_lang
        self.drive_source = drive_source
        self.monitor_factory = monitor_factory
        self.settings_path = settings_path
        self.settings = settings
        self.settings_doc = settings_doc
        self.certificates = certificates
        self.health = health
        self.poll_interval = poll_interval
        self.rescan_interval = rescan_interval
        self.cmdline = cmdline
        self.environ = environ
        self.entries: list[DriveEntry] = []
        self.selected: set[str] = set()
        self.book = JobBook()
        self.benches: list[Bench] = []
        self.session_jobs: set[Path] = set()
        self.seen_job_dirs: dict[Path, float] = {}  # journal -> mtime when last judged not worth showing
        self.monitor: Stoppable | None = None
        self.scans = 0  # completed drive scans (tests wait on it)
        self.jobs_loaded = 0
        self.health_cache: dict[str, str | None] = {}
        self.home = home
        self.diagnose_setup = diagnose_setup
        self.sync_interval = sync_interval
        self.sync_daemon: SyncDaemon | None = None
        self.sync = model.SyncView("", "off")
        self.sync_polls = 0  # completed sync status reads (tests wait on it)
        self.certified: set[Path] = set()  # jobs whose certificate was seen (the sync daemon was woken)
        self.quit_confirmed = False
        self.stopping_demo = False  # quitting the demo: its erasures are being stopped first

    # -- lifecycle ----------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.title = _("Tabula: drive erasure")
        self.push_screen(DrivesScreen())
        if self.settings.ask_machine:
            # Each machine's lot and asset number first (a scanner's burst), once who erases is known.
            self.push_screen(MachineScreen())
        if not self.settings.technician:
            # First start (or a live image without tabula.technician=): who erases, before anything.
            self.push_screen(SettingsScreen(first_start=True))
        self.scan_drives()
        self.find_new_jobs()
        if self.monitor_factory is not None:
            try:
                self.monitor = self.monitor_factory(self._on_hotplug)
            except (OSError, TabulaError, ValueError) as exc:
                self.notify(
                    _(
                        "Hot-plug detection is unavailable ({error}): drives are rescanned every few seconds."
                    ).format(error=exc),
                    severity="warning",
                )
        self.set_interval(self.poll_interval, self.tick)
        self.set_interval(self.rescan_interval, self.periodic)
        self.call_after_refresh(self.start_sync)  # after the first screen: it imports the HTTP stack
        self.request_sync_status()
        self.set_interval(self.sync_interval, self.request_sync_status)

    def on_unmount(self) -> None:
        if self.monitor is not None:
            self.monitor.stop()
            self.monitor = None
        self.stop_sync(timeout=0)  # never wait for an upload here: run() joins it after the screen is gone

    # -- quitting -------------------------------------------------------------------------------
    def request_quit(self) -> None:
        """Quit; while erasures run, first say what becomes of them, and ask.

        Outside the demo they go on in the background.  The demo's drives are files that the demo
        removes when it ends: its erasures are stopped (they end *interrupted*, and say so), never left
        running on drives that are about to disappear.
        """
        running = self.running_jobs()
        if not running:
            self.exit(0)
            return

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            self.quit_confirmed = True
            if self.demo:
                self.stop_demo()
            else:
                self.exit(0)

        if self.demo:
            question = _(
                "{n} erasure(s) are running. Quitting ends the demonstration: its virtual drives are removed, "
                "so these erasures are stopped and reported as interrupted. Quit now?"
            ).format(n=running)
        else:
            question = _(
                "{n} erasure(s) are running. They continue in the background after you quit, "
                "and you can follow them by starting Tabula again. Quit now?"
            ).format(n=running)
        self.push_screen(ConfirmScreen(question, yes=_("Quit"), no=_("Stay")), answered)

    def stop_demo(self) -> None:
        """Stop the demo's running erasures, then quit once every worker has let go of its drive."""
        self.stopping_demo = True
        for job in self.book.jobs.values():
            if job.outcome is Outcome.RUNNING:
                model.stop_worker(job)
        self.notify(_("Stopping the demonstration's erasures…"))
        deadline = time.monotonic() + 30

        def check() -> None:
            self.book.poll()
            if all(j.settled for j in self.book.jobs.values()) or time.monotonic() > deadline:
                self.exit(0)

        self.set_interval(0.2, check)

    async def action_quit(self) -> None:
        self.request_quit()

    def on_quit_requested(self, message: QuitRequested) -> None:
        self.request_quit()

    def on_start_requested(self, message: StartRequested) -> None:
        """Start the confirmed plans; show their bench above the drive list."""
        bench = self.start_jobs(message.plans)
        if bench is None:
            return
        while len(self.screen_stack) > 2:
            self.pop_screen()
        self.push_screen(BenchScreen(bench))

    def on_settings_submitted(self, message: SettingsSubmitted) -> None:
        self.save_settings(message.settings)

    # -- the machine at the bench: lot and asset number ---------------------------------------------
    def on_machine_submitted(self, message: MachineSubmitted) -> None:
        """Keep the machine for every job planned from now on; ask the hub about its lot (a thread)."""
        self.machine = message.machine
        if isinstance(self.screen, MachineScreen):
            self.pop_screen()
        label = self.machine.label()
        self.notify(_("Machine: {what}.").format(what=label) if label else _("No lot or asset number."))
        self.refresh_screens()
        if self.machine.lot:
            self.check_lot(self.machine.lot)

    @work(thread=True, group="lot", exit_on_error=False)
    def check_lot(self, lot: str) -> None:
        """Ask the hub about the lot (at most a few seconds; pending and recorded when it cannot answer)."""
        self.post_message(LotChecked(lots.check_lot(lot, self.home)))

    def on_lot_checked(self, message: LotChecked) -> None:
        check = message.check
        words = lot_check_words(check.reference, check.state, check.detail) if check is not None else None
        if words:
            pending = check is not None and check.state == "pending"
            self.notify(words, severity="information" if pending else "warning", timeout=15)

    def on_follow_requested(self, message: FollowRequested) -> None:
        """``p``: the newest bench; after a restart, the erasures found running (reattached)."""
        running = [d for d, j in self.book.jobs.items() if j.outcome is Outcome.RUNNING]
        latest = self.benches[-1] if self.benches else None
        shown = list(latest.job_dirs) if latest is not None else []
        missing = [d for d in running if d not in shown]
        if missing:  # started before this TUI (reattached), or by `station erase`: follow them too
            latest = Bench(shown + missing)
            self.benches.append(latest)
        if latest is None:
            self.notify(_("No erasure is running, and none was started yet."), severity="information")
            return
        self.push_screen(BenchScreen(latest))

    # -- after a job: print, label, destroy -------------------------------------------------------
    def on_print_requested(self, message: PrintRequested) -> None:
        self.notify(_("Sending to the printer…"))
        self.print_job(message.job_dir, message.what)

    @work(thread=True, group="print", exit_on_error=False)
    def print_job(self, job_dir: Path, what: str) -> None:
        job = self.book.jobs.get(job_dir)
        try:
            path, request = self.print_document(job, what)
        except (TabulaError, OSError) as exc:
            text = tr(exc.message) if isinstance(exc, TabulaError) else str(exc)
            self.post_message(Printed(what, None, "", text))
            return
        self.post_message(Printed(what, path, request, ""))

    def print_document(self, job: model.TrackedJob | None, what: str) -> tuple[Path, str]:
        """Print a job's signed document or its label (thread): (file printed, CUPS request id)."""
        if job is None:
            raise printing.PrintError(_("this job is no longer followed"))
        result = result_of(job)
        if result.signed is None or result.pdf is None:
            raise printing.PrintError(_("this job has no signed document to print"))
        s = self.settings
        if what == "label":
            label = printing.make_label(result.signed, self.home, lang=current_language(), url=result.url)
            done = printing.print_file(
                label, self.print_runner, printer=s.label_printer or s.printer, fit=True
            )
        else:
            done = printing.print_file(
                result.pdf, self.print_runner, printer=s.printer, title=result.pdf.stem
            )
        return done.path, done.request

    def on_printed(self, message: Printed) -> None:
        if message.error:
            self.notify(_("Not printed: {error}").format(error=message.error), severity="error", timeout=15)
            return
        request = message.request or "?"
        if message.what == "label":
            text = _("The label was sent to the printer (request {request}).").format(request=request)
        else:
            text = _("The document was sent to the printer (request {request}).").format(request=request)
        self.notify(text, timeout=10)

    def on_destroy_requested(self, message: DestroyRequested) -> None:
        self.destroy_drive(message)

    @work(thread=True, group="destroy", exit_on_error=False)
    def destroy_drive(self, message: DestroyRequested) -> None:
        try:
            done = destroy_job(
                message.job_dir,
                method=message.method,
                performed_by=message.by,
                witness=message.witness,
                photo=message.photo or None,
                lang=current_language(),
            )
        except (TabulaError, OSError) as exc:
            text = tr(exc.message) if isinstance(exc, TabulaError) else str(exc)
            self.post_message(Destroyed(message.job_dir, [], text))
            return
        self.post_message(Destroyed(message.job_dir, done.paths, ""))

    def on_destroyed(self, message: Destroyed) -> None:
        if message.error:
            self.notify(_("Destruction not recorded: {error}").format(error=message.error), severity="error")
            return
        self.notify(_("Destruction recorded and signed."))
        self.wake_sync()
        job = self.book.jobs.get(message.job_dir)
        if job is not None:
            job.destroyed = True
        self.refresh_screens()
        if job is not None and not isinstance(self.screen, ResultScreen):
            self.push_screen(ResultScreen(job))

    # -- sync -------------------------------------------------------------------------------------
    def start_sync(self) -> None:
        """Start the background uploader when a hub is configured (its thread does all the network I/O)."""
        try:
            config = load_config(self.home)
        except SyncConfigError:
            return  # the status line shows the problem (status() reads the same file)
        if config.configured:
            # Start-up time: the uploader (and the HTTP stack) is imported when a hub is configured.
            from station.sync.drain import start_background

            self.sync_daemon = start_background(self.home, config)

    def stop_sync(self, timeout: float | None = 5.0) -> None:
        daemon = self.sync_daemon
        if daemon is not None:
            daemon.stop(timeout)

    def wake_sync(self) -> None:
        if self.sync_daemon is not None:
            self.sync_daemon.wake()

    def request_sync_status(self) -> None:
        pending = [
            j.job_dir for j in self.book.jobs.values() if j.certificates and not j.synced and j.settled
        ]
        self.read_sync_status(pending)

    @work(thread=True, exclusive=True, group="sync", exit_on_error=False)
    def read_sync_status(self, candidates: list[Path]) -> None:
        """The outbox's counts and the jobs whose certificate was sent: local SQLite, no network."""
        try:
            st = status(self.home)
        except (TabulaError, OSError) as exc:
            msg = exc.message if isinstance(exc, TabulaError) else str(exc)
            self.post_message(SyncPolled(model.sync_view(configured=True, problem=msg), []))
            return
        invalid = st.url.startswith("(invalid")
        view = model.sync_view(
            configured=bool(st.url),
            pending=st.pending,
            rejected=st.rejected,
            retrying=st.retrying,
            refused_reason=next((r["code"] or r["error"] for r in st.rejected_items), None),
            last_success_at=st.last_success_at,
            last_error=st.last_error,
            last_error_at=st.last_error_at,
            problem=st.url.strip("()") if invalid else None,
        )
        sent: list[Path] = []
        if candidates and db_path(self.home).exists():
            with Outbox(self.home, create=False) as box:
                for job_dir in candidates:
                    cert_id = model.certificate_id(job_dir)
                    if cert_id is not None and box.state_of("certificate", cert_id) == "sent":
                        sent.append(job_dir)
        self.post_message(SyncPolled(view, sent))

    def on_sync_polled(self, message: SyncPolled) -> None:
        self.sync = message.view
        changed = False
        for d in message.sent:
            job = self.book.jobs.get(d)
            if job is not None and not job.synced:
                job.synced = True
                changed = True
        self.sync_polls += 1
        self.refresh_screens(sync_only=not changed)

    def _on_hotplug(self, action: str, payload: Any) -> None:
        # Monitor thread: post_message is thread-safe.
        what = payload.kernel_name if isinstance(payload, DriveInfo) else str(payload)
        self.post_message(DrivesChanged(action, what))

    def on_drives_changed(self, message: DrivesChanged) -> None:
        self.scan_drives()

    def periodic(self) -> None:
        self.scan_drives()
        self.find_new_jobs()

    # -- drives ---------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="scan", exit_on_error=False)
    def scan_drives(self) -> None:
        entries = self.drive_source()
        if self.demo_drives is not None:
            entries = [e for e in entries if (e.info.backing_file or "") in self.demo_drives]
        health: dict[str, str | None] = {}
        if self.health is not None:
            known = set(self.health_cache)
            for e in entries:
                if e.identity not in known:
                    health[e.identity] = self.health(e.info)  # slow (smartctl): here, never in the UI
        self.post_message(DrivesScanned(entries, health))

    def on_drives_scanned(self, message: DrivesScanned) -> None:
        self.entries = message.entries
        self.health_cache.update(message.health)
        allowed = {e.identity for e in self.entries if e.protection.allowed}
        self.selected &= allowed
        self.scans += 1
        self.refresh_screens()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            err = event.worker.error
            text = err.diagnostics() if isinstance(err, TabulaError) else f"{type(err).__name__}: {err}"
            what = {
                "scan": N_("Could not read the drives: {error}"),
                "jobs": N_("Could not read the job journals: {error}"),
                "sync": N_("Could not read the sync status: {error}"),
                "lot": N_("Could not check the lot with the hub: {error}"),
            }.get(event.worker.group, N_("Internal error: {error}"))
            self.notify(_(what).format(error=text), severity="error", timeout=10)

    def health_of(self, info: DriveInfo) -> str | None:
        """The drive's health as last read (in the scan thread); None when unknown."""
        return self.health_cache.get(info.identity)

    # -- jobs -------------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="jobs", exit_on_error=False)
    def find_new_jobs(self) -> None:
        """Jobs in jobs_root this TUI does not follow yet: at start (reattach) and from other tools.

        A journal skipped once (old, or planned and not started yet) is read again only when it grows.
        """
        seen = dict(self.seen_job_dirs)
        fresh: dict[Path, float] = {}
        for d in find_jobs(self.jobs_root):
            if d in self.book.jobs:
                continue
            try:
                mtime = (d / JOURNAL).stat().st_mtime
            except FileNotFoundError:
                continue  # removed meanwhile
            if seen.get(d) != mtime:
                fresh[d] = mtime
        if fresh:
            wanted, problems = select_jobs(list(fresh))
            self.post_message(JobsFound(fresh, wanted, problems))
        else:
            self.post_message(JobsFound({}, [], []))

    def on_jobs_found(self, message: JobsFound) -> None:
        self.seen_job_dirs.update(message.job_dirs)
        if not message.job_dirs and self.jobs_loaded:
            return
        for d in message.wanted:
            try:
                self.book.add(d)
            except (TabulaError, OSError) as exc:
                self.notify(f"{d.name}: {exc}", severity="warning")
        for p in message.problems:
            self.notify(_("Unreadable job journal: {problem}").format(problem=p), severity="warning")
        self.jobs_loaded += 1
        self.refresh_screens()

    def show_absent_job(self, job: model.TrackedJob) -> bool:
        """Whether to keep a row for a drive that is gone: while its job runs, or if it ended lately."""
        if job.outcome is Outcome.RUNNING or job.job_dir in self.session_jobs:
            return True
        ended = model.job_ended_at(job.state)
        return ended is not None and _now() - ended < model.RECENT_SECONDS

    def operator(self) -> dict[str, str]:
        """The plan's operator fields: who erases (the settings) and the machine (lot, asset number)."""
        return self.settings.operator() | self.machine.operator()

    def make_plan(self, entry: DriveEntry, policy: str) -> JobPlan:
        return plan_job(entry.info, model.options_for(policy, entry.info), operator=self.operator())

    def plan_purge(
        self, entry: DriveEntry, policy: str, plan_options: PlanOptions
    ) -> tuple[JobPlan, PurgePlan]:
        """Probe the drive (read-only, can take seconds: call it from a thread) and plan ``policy``.

        The commands go through :func:`erase.purge.machine.current_machine`'s runner: this machine,
        or a recorded one (``TABULA_REPLAY_MACHINE``), as the worker will use.
        """
        runner = current_machine().runner
        return plan_purge_job(
            entry.info,
            model.options_for(policy, entry.info),
            policy,
            runner,
            plan_options,
            operator=self.operator(),
        )

    def worker_options(self) -> WorkerOptions:
        return WorkerOptions(
            cert_dir=str(paths.certs_dir()) if self.certificates else None,
            key_dir=str(paths.keys_dir()) if self.certificates else None,
            settings=str(self.settings_path) if self.settings_path.exists() else None,
            lang=current_language(),
            include_loop=self.include_loop or self.demo,
        )

    def start_jobs(self, plans: list[JobPlan]) -> Bench | None:
        """Write each job's journal and start its worker process; never waits for one."""
        options = self.worker_options()
        if options.key_dir is not None and not self.ensure_station_key(Path(options.key_dir)):
            return None
        if options.cert_dir is not None and not self.settings_hold(options):
            return None
        started: list[Path] = []
        for plan in plans:
            try:
                job_dir = create_job(self.jobs_root, plan, options)
                process = spawn(job_dir)
            except (TabulaError, EraseError, OSError) as exc:
                self.notify(
                    _("Could not start {drive}: {error}").format(drive=plan.drive.path, error=exc),
                    severity="error",
                    timeout=15,
                )
                continue
            self.session_jobs.add(job_dir)
            self.book.add(job_dir, process=process)
            started.append(job_dir)
        self.selected.clear()
        if not started:
            return None
        bench = Bench(started)
        self.benches.append(bench)
        self.refresh_screens()
        return bench

    def settings_hold(self, options: WorkerOptions) -> bool:
        """The certificate settings are read before any job starts: a settings file the certificate
        cannot hold (an over-long name...) stops the erasure here, not its certificate afterwards."""
        try:
            settings_for(options)
        except TabulaError as exc:
            self.notify(
                _("The certificate settings are wrong: {error}").format(error=tr(exc.message)),
                severity="error",
                timeout=15,
            )
            return False
        return True

    def ensure_station_key(self, key_dir: Path) -> bool:
        """Create the station key once, before workers start side by side (they would race to create it)."""
        try:
            ensure_station_key(key_dir)
        except (TabulaError, OSError) as exc:
            self.notify(_("Could not create the station key: {error}").format(error=exc), severity="error")
            return False
        return True

    def tick(self) -> None:
        changed = self.book.poll()
        fresh = [j for j in changed if j.certificates and j.job_dir not in self.certified]
        if fresh:
            self.certified.update(j.job_dir for j in fresh)
            self.wake_sync()  # upload now, not at the next interval
            self.set_timer(0.5, self.request_sync_status)
        for bench in self.benches:
            if not bench.rang and bench.settled(self.book):
                self.ring(bench)
        if changed:
            self.refresh_screens()
        if any(j.settled for j in changed):
            self.scan_drives()  # its worker let go of the drive: re-read its protection now

    def ring(self, bench: Bench) -> None:
        """A bench is over: ring once, say how many drives were erased, and show the next step.

        A bench of one drive opens its result (certificate and QR code, or the failure report and the
        choices) over the bench screen; a larger one lists each drive's result there (Enter opens it).
        """
        bench.rang = True
        self.bell()
        jobs = [self.book.jobs[d] for d in bench.job_dirs]
        ok = sum(1 for j in jobs if j.outcome.success)
        self.notify(
            _("Bench finished: {ok} of {n} drive(s) erased and verified.").format(ok=ok, n=len(jobs)),
            severity="information" if ok == len(jobs) else "error",
            timeout=10,
        )
        screen = self.screen
        if len(jobs) == 1 and isinstance(screen, BenchScreen) and screen.bench is bench:
            self.push_screen(ResultScreen(jobs[0]))

    def refresh_screens(self, *, sync_only: bool = False) -> None:
        """Tell every screen on the stack what changed; each redraws what it shows of it."""
        for screen in self.screen_stack:
            screen.post_message(SyncChanged())
            if not sync_only:
                screen.post_message(StationChanged())

    # -- settings -----------------------------------------------------------------------------------
    def save_settings(self, settings: StationSettings) -> None:
        lang_now = current_language()
        new_lang = choose_language(
            self.explicit_lang, settings.language, cmdline=self.cmdline, environ=self.environ
        )
        try:
            model.save_settings(self.settings_path, settings, self.settings_doc, new_lang)
        except (TabulaError, OSError) as exc:
            self.notify(_("Settings not saved: {error}").format(error=exc), severity="error")
            return
        self.settings = settings
        self.settings_doc = model.load_settings(self.settings_path)[1]
        if new_lang != lang_now:
            set_language(new_lang)
            self.title = _("Tabula: drive erasure")
            while len(self.screen_stack) > 2:
                self.pop_screen()
            self.switch_screen(DrivesScreen())
        else:
            self.pop_screen()
        self.notify(_("Settings saved."))

    def running_jobs(self) -> int:
        """Erasures still at work now: running, read fresh from their journals (a job that ended since
        the last poll is not counted)."""
        self.book.poll()
        return sum(1 for j in self.book.jobs.values() if j.outcome is Outcome.RUNNING)


def _provides_the_context(app: TabulaApp) -> StationContext:
    """Never called: mypy checks here that the app gives the screens what they read."""
    return app


def _now() -> float:
    return time.time()


def _default_drive_source(include_loop: bool) -> DriveSource:
    return lambda: discover(include_loop=include_loop)


def _default_monitor(include_loop: bool) -> MonitorFactory:
    def factory(callback: HotplugCallback) -> Stoppable:
        return monitor(callback, include_loop=include_loop)

    return factory


HEALTH_LABELS = {"reuse": N_("good"), "repair": N_("repair"), "recycle": N_("recycle"), "unknown": "?"}


def smart_health(info: DriveInfo) -> str | None:
    """Health from SMART through :mod:`diagnostics.health` (None for loop devices, '?' when unreadable)."""
    if info.transport == "loop":
        return None
    try:
        verdict = drive_health(info.path, SubprocessRunner()).verdict.verdict
    except (TabulaError, OSError, ValueError):
        return "?"  # no SMART through this adapter, or smartctl missing: the column says "unknown"
    return _(HEALTH_LABELS.get(verdict, "?"))


def create_app(
    *,
    jobs_root: Path,
    include_loop: bool = False,
    lang: str | None = None,
    demo_drives: Mapping[str, str] | None = None,
    drive_source: DriveSource | None = None,
    monitor_factory: MonitorFactory | None | bool = True,
    settings_path: Path | None = None,
    certificates: bool = True,
    health: HealthProvider | None | bool = True,
    poll_interval: float = 0.5,
    rescan_interval: float = 5.0,
    cmdline: Path = Path("/proc/cmdline"),
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
    diagnose_setup: DiagnoseSetup | None = None,
    sync_interval: float = 2.0,
    print_runner: Runner | None = None,
) -> TabulaApp:
    """Build the app.  Tests inject ``drive_source`` / ``monitor_factory`` where the kernel cannot help.

    ``monitor_factory=True`` uses pyudev (kernel events when udevd is absent), ``None``/``False`` only
    rescans periodically.  ``certificates=False`` starts jobs that sign no certificate.
    ``home`` is where reports and the sync outbox live (default ``$TABULA_HOME``); the sync line is
    read every ``sync_interval`` seconds.
    """
    demo = demo_drives is not None
    loops = include_loop or demo
    settings_path = settings_path if settings_path is not None else paths.settings_file()
    settings, doc = model.load_settings(settings_path)
    set_language(choose_language(lang, settings.language, cmdline=cmdline, environ=environ))
    if monitor_factory is True:
        factory: MonitorFactory | None = _default_monitor(loops)
    elif monitor_factory is False:
        factory = None
    else:
        factory = monitor_factory
    return TabulaApp(
        jobs_root=jobs_root,
        include_loop=loops,
        demo_drives=demo_drives,
        explicit_lang=lang,
        drive_source=drive_source if drive_source is not None else _default_drive_source(loops),
        monitor_factory=factory,
        settings_path=settings_path,
        settings=settings,
        settings_doc=doc,
        certificates=certificates,
        health=smart_health if health is True else (health or None),
        poll_interval=poll_interval,
        rescan_interval=rescan_interval,
        cmdline=cmdline,
        environ=environ if environ is not None else dict(os.environ),
        home=home if home is not None else paths.home(),
        diagnose_setup=diagnose_setup if diagnose_setup is not None else DiagnoseSetup(),
        sync_interval=sync_interval,
        print_runner=print_runner if print_runner is not None else SubprocessRunner(),
    )
