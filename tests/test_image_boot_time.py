"""Boot -> TUI time of the live image under QEMU (TCG), and where the time goes.

The image is booted as a workshop boots it: the ISO on a USB stick behind xHCI, a SATA disk with the
``TABULA-DATA`` persistence partition, a SATA and an NVMe drive to erase, 2 vCPUs, 1 GiB; BIOS
(SeaBIOS) and UEFI (OVMF).  The ISO is the ``test-boot`` variant: the normal image (same system, same
GRUB menu and timeout) with ``tabula-trace=boot`` on the default entry, which makes
``tabula-boottrace.service`` answer on the second serial port and the tty1 session record
``python -X importtime`` of the station's start-up.

The host times the serial console (ttyS0): GRUB's menu, GRUB booting the entry, the autologin, the
station taking the terminal (Textual's alternate screen) and its first screen (the first full redraw
after it).  Once the first screen is there it asks the guest, on ttyS1, for ``systemd-analyze``
(time, critical chain, blame), the session's steps (``/proc/uptime`` stamps) and the import times
(written to the persistence partition, read from its disk image after QEMU is stopped), and prints the
whole breakdown (also written to ``image-build/out/boot-time-FIRMWARE.txt``, the raw
trace next to it).

Only a generous bound is asserted: the machine running the tests is shared and TCG's speed follows its
load (the same boot took 63 s and 120 s an hour apart).  The target (boot -> TUI <= 45 s on an idle
2-core machine; measured 37.1 s BIOS, 41.5 s UEFI, image-build/README.md) is a benchmark figure, read
from the printed report.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.test_image_boot import (
    BUILD,
    OVMF_VARS,
    REPO,
    Console,
    extract_data_partition,
    make_data_disk,
    make_pattern_disk,
    missing_host_packages,
    qemu_argv,
)

TRACE_PARAM = "tabula-trace=boot"
#: Far above any healthy boot on a busy machine (~40 s idle, ~200 s at load 10): only a boot that hangs
#: or waits for a timeout (a device job, live-boot's medium search) fails.
BOOT_BOUND_S = 420
#: Textual switches to the alternate screen once the station is imported and the app starts, then
#: draws the first screen from the top-left corner.
ALT_SCREEN = "\x1b[?1049h"
FIRST_FRAME = "\x1b[1;1H"
TRACE_END = "==tabula-trace end=="


@pytest.fixture(scope="module")
def trace_iso() -> Path:
    missing = missing_host_packages()
    if missing:
        pytest.skip(f"needs: apt-get install -y {' '.join(missing)}")
    out = REPO / "image-build" / "out"
    proc = subprocess.run(
        [str(BUILD), "--variant", "test-boot", "--append", TRACE_PARAM, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out / "tabula-test-boot.iso"


def ask_trace(sock_path: Path, deadline: float) -> str:
    """Ask the guest for its boot trace on ttyS1 and read it to the end."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(sock_path))
    sock.settimeout(1.0)
    data = b""
    asked = 0.0
    try:
        while TRACE_END.encode() not in data:
            if time.monotonic() > deadline:
                raise AssertionError(f"no boot trace on ttyS1; got:\n{data[-3000:].decode(errors='replace')}")
            # Bytes sent before the guest opened the port are lost: ask again until it answers.
            if b"==tabula-trace" not in data and time.monotonic() - asked > 10:
                sock.sendall(b"dump\n")
                asked = time.monotonic()
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                raise AssertionError("the trace port closed")
            data += chunk
    finally:
        sock.close()
    return data.decode(errors="replace").replace("\r\n", "\n")


def sections(trace: str) -> dict[str, str]:
    parts = re.split(r"^==tabula-trace (.+)==$", trace, flags=re.M)
    return {parts[i]: parts[i + 1].strip("\n") for i in range(1, len(parts) - 1, 2)}


def import_summary(text: str, top: int = 12) -> list[str]:
    """``-X importtime`` lines -> time per top-level package (sum of self times) and the costliest imports."""
    by_package: dict[str, int] = defaultdict(int)
    rows = []
    for line in text.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if m:
            self_us, cumulative_us, name = int(m.group(1)), int(m.group(2)), m.group(4)
            by_package[name.split(".")[0]] += self_us
            rows.append((cumulative_us, len(m.group(3)) // 2, name))
    total = sum(by_package.values())
    out = [f"  all imports: {total / 1e6:.2f} s (sum of self times, {len(rows)} modules)"]
    out += ["  by top-level package (self times):"]
    for name, us in sorted(by_package.items(), key=lambda kv: -kv[1])[:top]:
        out.append(f"    {us / 1e6:6.2f} s  {name}")
    out += ["  costliest imports (cumulative, with nesting depth):"]
    for cumulative_us, depth, name in sorted(rows, reverse=True)[:top]:
        out.append(f"    {cumulative_us / 1e6:6.2f} s  {'  ' * depth}{name}")
    return out


def report(firmware: str, marks: dict[str, float], parts: dict[str, str]) -> str:
    lines = [f"live image boot -> TUI under QEMU TCG ({firmware}, USB stick behind xHCI, 2 vCPUs)"]
    lines += [f"  {name:<34} {at:6.1f} s" for name, at in marks.items()]
    if "asked-at-uptime" not in parts:
        return "\n".join([*lines, "  (no trace from the guest)"])
    asked = float(parts["asked-at-uptime"].split()[0])
    kernel_at = marks["trace asked (host)"] - asked  # host time of the guest kernel's uptime 0
    lines.append(f"  {'kernel started (uptime 0)':<34} {kernel_at:6.1f} s")
    for name, text in parts.items():
        if name.startswith("session "):
            steps = [line.split(maxsplit=1) for line in text.splitlines() if line.strip()]
            lines.append(f"  {name} (host time of each step):")
            lines += [f"    {kernel_at + float(up):6.1f} s  {step}" for up, step in steps]
    lines.append("systemd-analyze time:")
    lines += ["  " + line for line in parts.get("systemd-analyze time", "").splitlines()]
    lines.append("systemd-analyze critical-chain (the two console sessions, the persistence mount):")
    lines += ["  " + line for line in parts.get("systemd-analyze critical-chain", "").splitlines()[2:]]
    lines.append("systemd-analyze blame (top 15):")
    lines += ["  " + line.strip() for line in parts.get("systemd-analyze blame", "").splitlines()[:15]]
    for name, text in parts.items():
        if name.startswith("importtime "):
            lines.append(f"python -X importtime of the station's start-up ({name.split()[1]}):")
            lines += import_summary(text)
    return "\n".join(lines)


def host_marks(console: Console, alt_at: float, frame_at: float, asked_at: float) -> dict[str, float]:
    """What the host saw on ttyS0, in seconds since QEMU started."""
    marks = {"power-on (QEMU started)": 0.0}
    for name, needle in (("GRUB menu drawn", "GNU GRUB"), ("GRUB boots the entry", "Booting `")):
        seen = console.seen_at(needle)
        if seen is not None:  # (the signed UEFI GRUB does not say "Booting")
            marks[name] = seen[1]
    login = console.seen_at("(automatic login)")
    if login is not None:
        marks["autologin on ttyS0"] = login[1]
    marks["station takes the terminal"] = alt_at
    marks["TUI first screen (boot -> TUI)"] = frame_at
    marks["trace asked (host)"] = asked_at
    return marks


@dataclass
class BootTime:
    marks: dict[str, float]  # host seconds since QEMU started
    parts: dict[str, str]  # the guest's trace, by section
    report: str


def measure_boot(iso: Path, firmware: str, workdir: Path, out: Path) -> BootTime:
    """Boot ``iso`` (built with ``tabula-trace=boot``) until the TUI's first screen; ask for the trace."""
    stick = workdir / "stick.iso"
    shutil.copyfile(iso, stick)
    sata = make_pattern_disk(workdir / "sata.img")
    nvme = make_pattern_disk(workdir / "nvme.img")
    data = make_data_disk(workdir / "data.img")
    vars_file = workdir / "OVMF_VARS.fd"
    shutil.copyfile(OVMF_VARS, vars_file)
    sock_path = workdir / "ttyS1.sock"
    argv = qemu_argv(firmware, stick, sata, nvme, data, vars_file)
    argv += ["-chardev", f"socket,id=ser1,path={sock_path},server=on,wait=off", "-serial", "chardev:ser1"]

    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    console = Console(proc, out / f"console-boot-time-{firmware}.log", t0=t0)
    try:
        console.wait_for(ALT_SCREEN, BOOT_BOUND_S)
        alt = console.seen_at(ALT_SCREEN)
        assert alt is not None
        deadline = time.monotonic() + 60
        while (frame := console.seen_at(FIRST_FRAME, alt[0])) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert frame is not None, f"no first screen after the alternate screen; see {console.log}"
        asked_at = time.monotonic() - t0
        marks = host_marks(console, alt[1], frame[1], asked_at)
        # The figure first: it stands even when the guest's trace does not come.
        (out / f"boot-time-{firmware}.txt").write_text(report(firmware, marks, {}) + "\n")
        print(
            f"\nboot -> TUI ({firmware}): {frame[1]:.1f} s; asking the guest where the time went",
            file=sys.stderr,
        )
        trace = ask_trace(sock_path, time.monotonic() + 600)
    finally:
        proc.kill()
        proc.wait()
        console.join()
    pointer = re.search(r"^==tabula-trace file (/\S+)==$", trace, flags=re.M)
    if pointer:  # written on the persistence partition (the serial line is slow under emulation)
        home = extract_data_partition(data, workdir / "home")
        trace = (home / pointer.group(1).lstrip("/")).read_text()
    (out / f"boot-trace-{firmware}.txt").write_text(trace)
    parts = sections(trace)
    text = report(firmware, marks, parts)
    (out / f"boot-time-{firmware}.txt").write_text(text + "\n")
    return BootTime(marks, parts, text)


@pytest.mark.qemu
@pytest.mark.parametrize("firmware", ["bios", "uefi"])
def test_boot_to_tui_time_is_measured_and_bounded(
    trace_iso: Path, tmp_path: Path, firmware: str, capsys: pytest.CaptureFixture[str]
) -> None:
    boot = measure_boot(trace_iso, firmware, tmp_path, trace_iso.parent)
    with capsys.disabled():  # the figure belongs in CI's log, passed or not
        print("\n" + boot.report)
    parts = boot.parts
    assert "Startup finished" in parts.get("systemd-analyze time", ""), parts.get("systemd-analyze time")
    assert parts.get("failed units", "") == "", parts["failed units"]
    assert any(name.startswith("importtime ") for name in parts), sorted(parts)
    assert boot.marks["TUI first screen (boot -> TUI)"] < BOOT_BOUND_S
