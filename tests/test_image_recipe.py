"""The live image recipe, checked fast (no debootstrap, no QEMU): helpers, GRUB menu, overlay, scripts.

``tests/test_image_boot.py`` builds and boots the real image; this file checks what can be checked in
a second, and runs ``make-persistence.sh`` for real on a loop device holding a small hybrid ISO made
with the same grub-mkrescue call as the build.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from host.protection import BOOT_CMDLINE_KEYS, BOOT_LABELS, BOOT_MARKER
from station.bootparams import parse_boot_params

REPO = Path(__file__).resolve().parent.parent
IMAGE = REPO / "image-build"
OVERLAY = IMAGE / "overlay"


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


ti = _load("tabula_image", IMAGE / "tabula_image.py")
SESSION = OVERLAY / "usr/local/lib/tabula/console_session.py"
cs = _load("tabula_console_session", SESSION)


def test_the_station_recognises_the_image_as_its_boot_medium() -> None:
    assert ti.VOLUME_ID in BOOT_LABELS
    assert "tabula.boot" in BOOT_CMDLINE_KEYS
    assert f"tabula.boot=LABEL={ti.VOLUME_ID}" in ti.BASE_PARAMS
    build = (IMAGE / "build.sh").read_text()
    assert "-volid TABULA" in build
    assert f"$ISO_DIR/{BOOT_MARKER}" in build


def test_package_list_has_the_drive_tools_and_no_network_server() -> None:
    pkgs = ti.read_packages(IMAGE / "packages.txt")
    for tool in ("smartmontools", "hdparm", "nvme-cli", "sg3-utils", "util-linux", "ledmon", "mmc-utils"):
        assert tool in pkgs
    for boot in ("linux-image-amd64", "live-boot", "systemd", "udev", "python3", "python3-venv"):
        assert boot in pkgs
    assert not any(p.startswith(("openssh", "dropbear", "telnetd", "avahi")) for p in pkgs)
    assert len(pkgs) == len(set(pkgs))


def test_read_packages_rejects_garbage(tmp_path: Path) -> None:
    f = tmp_path / "p.txt"
    f.write_text("# c\nbash\n\nfoo; rm -rf /\n")
    with pytest.raises(SystemExit):
        ti.read_packages(f)


def test_mirror_from_deb822_and_one_line_sources(tmp_path: Path) -> None:
    d = tmp_path / "sources.list.d"
    d.mkdir()
    (d / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\n\n"
        "Types: deb\n# comment\nURIs: http://mirror.example/debian/\nSuites: bookworm\nComponents: main\n"
    )
    assert ti.debian_mirror(tmp_path, environ={}) == "http://mirror.example/debian"
    (tmp_path / "sources.list").write_text("# x\ndeb [arch=amd64] http://one.example/debian bookworm main\n")
    assert ti.debian_mirror(tmp_path, environ={}) == "http://one.example/debian"
    assert ti.debian_mirror(tmp_path, environ={"TABULA_MIRROR": "http://env/debian/"}) == "http://env/debian"
    with pytest.raises(SystemExit):
        ti.debian_mirror(tmp_path / "none", environ={})


def test_grub_menu_boots_live_with_serial_console_and_appends_only_to_the_default_entry() -> None:
    cfg = ti.render_grub_cfg("tabula.auto=zero tabula.countdown=3 tabula.after=poweroff", timeout=1)
    assert "set timeout=1" in cfg and "set default=0" in cfg
    assert "terminal_input console serial" in cfg and "terminal_output console serial" in cfg
    linux = [line.strip() for line in cfg.splitlines() if line.strip().startswith("linux ")]
    assert len(linux) == 4
    assert all(line.startswith("linux /live/vmlinuz boot=live") for line in linux)
    assert all("console=ttyS0,115200n8 console=tty0" in line for line in linux)
    assert all(" quiet " in line for line in linux)
    # Boot time: the medium by its label (no probing of other disks), no zeroing of every kernel page.
    assert all(" live-media=/dev/disk/by-label/TABULA " in line for line in linux)
    assert all(" init_on_alloc=0 " in line for line in linux)
    assert cfg.count("initrd /live/initrd.img") == 4
    # The kernel command line the station will parse from the default entry.
    params = parse_boot_params(linux[0].removeprefix("linux /live/vmlinuz"))
    assert (params.auto, params.countdown, params.after, params.warnings) == ("zero", 3, "poweroff", ())
    assert "tabula.lang=fr" in linux[2] and "tabula.bench=1" in linux[3]
    plain = ti.render_grub_cfg()
    assert "tabula.auto" not in plain and "set timeout=2\n" in plain


@pytest.mark.parametrize("bad", ["a;b", "x'y", "$(reboot)", "a\\b", '"q"'])
def test_grub_append_refuses_anything_that_could_escape_the_menu(bad: str) -> None:
    with pytest.raises(SystemExit):
        ti.render_grub_cfg(f"tabula.lang=fr {bad}")


def test_manifest_records_packages_python_and_source() -> None:
    doc = ti.build_manifest(
        dpkg="zlib1g\t1:1.2.13.dfsg-1\tamd64\nbash\t5.2.15-2+b7\tamd64\n\n",
        freeze="textual==8.2.8\ntabula-station @ file:///tmp/wheels/tabula_station-0.1.0-py3-none-any.whl\n",
        commit="abc123",
        dirty=True,
        mirror="http://deb.debian.org/debian",
        suite="bookworm",
        kernel="6.1.0-37-amd64",
        built_at="2025-01-01T00:00:00Z",
        rootfs_key="k",
    )
    assert [p["package"] for p in doc["debian"]["packages"]] == ["bash", "zlib1g"]
    assert doc["debian"]["packages"][1]["version"] == "1:1.2.13.dfsg-1"
    assert {"name": "textual", "version": "8.2.8"} in doc["python"]
    assert doc["source"] == {"commit": "abc123", "dirty": True}
    assert doc["volume_id"] == "TABULA" and doc["data_label"] == "TABULA-DATA"
    json.dumps(doc)


def test_tree_key_changes_with_content_and_exec_bit(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    f = d / "a"
    f.write_text("1")
    k1 = ti.tree_key([d])
    f.write_text("2")
    k2 = ti.tree_key([d])
    f.chmod(0o755)
    k3 = ti.tree_key([d])
    assert len({k1, k2, k3}) == 3
    assert ti.tree_key([d]) == k3


def test_overlay_autologin_session_persistence_and_network() -> None:
    tty1 = (OVERLAY / "etc/systemd/system/getty@tty1.service.d/autologin.conf").read_text()
    serial = (OVERLAY / "etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf").read_text()
    for unit in (tty1, serial):
        assert "ExecStart=\n" in unit and "--autologin root" in unit and unit.rstrip().endswith("linux")
    profile = (OVERLAY / "root/.bash_profile").read_text()
    assert "/usr/local/sbin/tabula-session" in profile and "/dev/ttyS0" in profile and "/dev/tty1" in profile
    session = OVERLAY / "usr/local/sbin/tabula-session"
    assert os.access(session, os.X_OK)
    text = session.read_text()
    assert "TABULA_HOME=/var/lib/tabula" in text and '"$PY" "$SESSION"' in text
    start = SESSION.read_text()
    assert '"station.autorun", "--from-cmdline"' in start and '"loadkeys", "-q", keymap' in start
    mount = (OVERLAY / "usr/local/sbin/tabula-mount-data").read_text()
    assert "LABEL=TABULA-DATA" in mount and "TARGET=/var/lib/tabula" in mount and "tmpfs" in mount
    # The logins do not wait for the persistence partition; the session and 'station' wait for its verdict.
    unit = (OVERLAY / "etc/systemd/system/tabula-data.service").read_text()
    assert (
        "Before=multi-user.target" in unit and "getty" not in unit.split("[Service]")[0].split("Before=")[1]
    )
    assert "STATUS=/run/tabula/persistence" in mount and str(cs.PERSISTENCE) == "/run/tabula/persistence"
    wrapper = (OVERLAY / "usr/local/bin/station").read_text()
    assert "systemctl start tabula-data.service" in wrapper and "exec /opt/tabula/bin/station" in wrapper
    net = (OVERLAY / "etc/systemd/network/20-wired.network").read_text()
    assert "Name=en* eth*" in net and "DHCP=yes" in net and "LLMNR=no" in net
    assert "LLMNR=no" in (OVERLAY / "etc/systemd/resolved.conf.d/tabula.conf").read_text()


def test_masked_units_keep_what_the_station_needs() -> None:
    masked = ti.read_units(IMAGE / "masked-units.txt")
    assert len(masked) == len(set(masked))
    assert "systemd-networkd-wait-online.service" in masked and "smartmontools.service" in masked
    for needed in (
        "systemd-udevd.service",
        "systemd-journald.service",
        "systemd-logind.service",
        "systemd-networkd.service",
        "systemd-resolved.service",
        "getty@tty1.service",
        "serial-getty@ttyS0.service",
        "tabula-data.service",
        "systemd-tmpfiles-setup.service",
    ):
        assert needed not in masked
    # systemd-user-sessions removes /run/nologin: masked, the snippet that creates it is disabled too.
    assert os.readlink(OVERLAY / "etc/tmpfiles.d/systemd-nologin.conf") == "/dev/null"


def test_resolved_no_longer_holds_the_logins(tmp_path: Path) -> None:
    """build.sh's copy of Debian's systemd-resolved.service keeps everything but the sysinit ordering."""
    build = (IMAGE / "build.sh").read_text()
    sed = re.search(r"^ *sed (-e .*)\\$", build, flags=re.M)
    assert sed is not None
    exprs = re.findall(r"-e '([^']+)'", sed.group(1))
    debian = (
        "[Unit]\nDefaultDependencies=no\nAfter=systemd-sysctl.service systemd-sysusers.service\n"
        "Before=sysinit.target network.target nss-lookup.target shutdown.target initrd-switch-root.target\n"
        "[Service]\nExecStart=!!/lib/systemd/systemd-resolved\n[Install]\nWantedBy=sysinit.target\n"
    )
    unit = tmp_path / "systemd-resolved.service"
    unit.write_text(debian)
    argv = ["sed"] + [arg for e in exprs for arg in ("-e", e)] + [str(unit)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    assert "Before=network.target nss-lookup.target shutdown.target initrd-switch-root.target\n" in out
    assert "sysinit.target" not in out and "WantedBy=multi-user.target" in out
    assert out.count("\n") == debian.count("\n") and "ExecStart=!!/lib/systemd/systemd-resolved" in out
    assert "Debian's systemd-resolved.service changed" in build  # the build stops when the sed misses


def test_read_units_rejects_garbage(tmp_path: Path) -> None:
    bad = tmp_path / "units.txt"
    bad.write_text("ok.service\nrm -rf /\n")
    with pytest.raises(SystemExit):
        ti.read_units(bad)


def test_the_boot_trace_parameter_is_not_the_stations() -> None:
    """tabula-trace=boot (boot test only) is outside the tabula.* namespace: no warning on the console."""
    assert parse_boot_params("boot=live quiet tabula-trace=boot tabula.lang=fr").warnings == ()
    unit = (OVERLAY / "etc/systemd/system/tabula-boottrace.service").read_text()
    assert "ConditionKernelCommandLine=tabula-trace=boot" in unit
    assert all("tabula-trace" not in p for p in ti.BASE_PARAMS)
    assert '*" tabula-trace=boot "*)' in (OVERLAY / "usr/local/sbin/tabula-session").read_text()


def test_console_session_imports_what_it_needs() -> None:
    """The image build runs the same check: a station module renamed by a refactoring fails here."""
    r = subprocess.run([sys.executable, str(SESSION), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


#: Imported when a certificate, a PDF, a subcommand or the hub is used, never before the TUI's first screen.
LATE_MODULES = (
    "reportlab",  # the PDF stack was a sixth of the start-up imports (seconds under emulation)
    "pypdf",
    "PIL",
    "httpx",  # the HTTP stack: when a hub is configured, after the first screen
    "httpcore",
    "station.sync.drain",
    "certs.cli",  # the subcommands: when the command line names one
    "certs.lotcli",
    "diagnostics.cli",
    "station.autorun",
    "station.demo",
    "station.probekit",
)


def test_console_session_start_up_leaves_late_modules_out() -> None:
    """What the console session imports, then the parser ``station`` builds for the TUI: none of the
    modules only a certificate, a PDF, a subcommand or the hub needs (seconds under emulation)."""
    code = (
        "import importlib, sys\n"
        f"for name in {cs.STARTUP_MODULES!r}: importlib.import_module(name)\n"
        "from station import cli\n"
        "assert cli.starts_tui([])\n"
        "cli.build_parser(commands=False).parse_args([])\n"
        f"print(' '.join(m for m in {LATE_MODULES!r} if m in sys.modules))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ""


def test_console_session_skips_a_missing_startup_module_but_not_a_broken_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(cs, "STARTUP_MODULES", ("station.no_such_module_here",))
    cs.preimport()
    (tmp_path / "tabula_broken_mod.py").write_text("import no_such_dependency_here\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cs, "STARTUP_MODULES", ("tabula_broken_mod",))
    with pytest.raises(ModuleNotFoundError):
        cs.preimport()
    monkeypatch.setattr(cs, "STARTUP_MODULES", ("station.no_such_module_here",))
    with pytest.raises(ModuleNotFoundError):
        cs.preimport(strict=True)  # the build's --check: a renamed start-up module fails the build


def test_console_session_shows_the_persistence_verdict(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    slept: list[float] = []
    monkeypatch.setattr(cs.time, "sleep", slept.append)
    status = tmp_path / "persistence"
    status.write_text("Persistence: /dev/sdb1 (label TABULA-DATA) is mounted on /var/lib/tabula.\n")
    cs.wait_for_persistence(status)
    assert "is mounted" in capsys.readouterr().out and slept == []
    status.write_text("WARNING: no usable TABULA-DATA partition\n")
    cs.wait_for_persistence(status)
    assert "WARNING" in capsys.readouterr().out and slept == [3]


def test_console_session_applies_the_kernel_parameters(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TABULA_")}
    monkeypatch.setattr(os, "environ", environ)  # (what the session sets must not leak into other tests)
    cmdline = tmp_path / "cmdline"
    cmdline.write_text("boot=live quiet tabula.lang=fr tabula.policy=zero tabula.bogus=1\n")
    cs.apply_boot_params(cmdline)
    assert environ["TABULA_LANG"] == "fr" and environ["TABULA_POLICY"] == "zero"
    assert environ["TABULA_KEYMAP"] == "fr" and "TABULA_AUTO" not in environ
    assert "WARNING: unknown boot parameter tabula.bogus ignored" in capsys.readouterr().err


def test_initramfs_is_small_zstd_and_keeps_what_finds_the_medium() -> None:
    conf = (IMAGE / "rootfs/etc/initramfs-tools/conf.d/tabula.conf").read_text()
    # mkinitramfs falls back to gzip, silently in a build log, when the zstd binary is missing.
    assert "COMPRESS=zstd" in conf and "zstd" in ti.read_packages(IMAGE / "packages.txt")
    hook = (IMAGE / "rootfs/etc/initramfs-tools/hooks/tabula-prune").read_text()
    removed = set(hook.split("rm -rf", 1)[1].replace("\\\n", " ").split("\ndone")[0].split())
    assert {"drivers/net", "drivers/gpu", "fs/btrfs", "fs/xfs"} <= removed
    kept = (
        "drivers/usb",
        "drivers/ata",
        "drivers/scsi",
        "drivers/cdrom",
        "drivers/mmc",
        "drivers/nvme",
        "fs/isofs",
        "fs/hfsplus",
        "fs/squashfs",
        "fs/overlayfs",
        "fs/fat",
        "fs/nls",
    )
    assert not any(k == r or k.startswith(r + "/") for k in kept for r in removed)


@pytest.mark.parametrize(
    "script",
    [
        "build.sh",
        "make-persistence.sh",
        "overlay/usr/local/sbin/tabula-session",
        "overlay/usr/local/sbin/tabula-mount-data",
        "overlay/usr/local/sbin/tabula-boottrace",
        "overlay/usr/local/bin/station",
        "rootfs/etc/initramfs-tools/hooks/tabula-prune",
    ],
)
def test_scripts_parse(script: str) -> None:
    path = IMAGE / script
    shell = "bash" if path.read_text().startswith("#!/usr/bin/env bash") else "sh"
    subprocess.run([shell, "-n", str(path)], check=True)
    assert os.access(path, os.X_OK)


def test_build_refuses_bad_arguments_before_doing_anything() -> None:
    r = subprocess.run([str(IMAGE / "build.sh"), "--variant", "Bad Name"], capture_output=True, text=True)
    assert r.returncode == 2 and "--variant" in r.stderr
    r = subprocess.run([str(IMAGE / "build.sh"), "--frobnicate"], capture_output=True, text=True)
    assert r.returncode == 2


# -- make-persistence.sh, for real on a loop device ------------------------------------------------

SECTOR = 512


@pytest.fixture
def stick(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A 64 MiB 'stick' (a loop device with partition scanning) holding a small TABULA hybrid ISO."""
    if (
        os.geteuid() != 0
        or shutil.which("grub-mkrescue") is None
        or not Path("/usr/lib/grub/x86_64-efi").is_dir()
    ):
        if os.environ.get("CI"):
            pytest.fail(
                "needs root and grub-mkrescue (apt-get install -y grub-common grub-pc-bin grub-efi-amd64-bin xorriso mtools)"
            )
        pytest.skip("needs root and grub-mkrescue")
    src = tmp_path / "iso"
    src.mkdir()
    (src / "hello.txt").write_text("tabula\n")
    iso = tmp_path / "small.iso"
    subprocess.run(
        ["grub-mkrescue", "-o", str(iso), str(src), "--", "-volid", "TABULA"], check=True, capture_output=True
    )
    img = tmp_path / "stick.img"
    shutil.copyfile(iso, img)
    with img.open("r+b") as f:
        f.truncate(64 << 20)
    dev = subprocess.run(
        ["losetup", "--find", "--show", "--partscan", str(img)], check=True, capture_output=True, text=True
    ).stdout.strip()
    try:
        yield dev, iso, img
    finally:
        subprocess.run(["losetup", "--detach", dev], check=False)


@pytest.mark.root
def test_make_persistence_appends_a_tabula_data_partition_and_leaves_the_image_alone(stick) -> None:  # type: ignore[no-untyped-def]
    dev, iso, img = stick
    r = subprocess.run([str(IMAGE / "make-persistence.sh"), dev, "--yes"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    table = json.loads(
        subprocess.run(["sfdisk", "--json", dev], check=True, capture_output=True, text=True).stdout
    )
    parts = table["partitiontable"]["partitions"]
    data = [p for p in parts if p.get("name") == "TABULA-DATA"]
    assert len(data) == 1
    iso_size = iso.stat().st_size
    assert data[0]["start"] * SECTOR >= iso_size and data[0]["start"] % 2048 == 0
    assert (data[0]["start"] + data[0]["size"]) * SECTOR <= 64 << 20
    label = subprocess.run(
        ["blkid", "-o", "value", "-s", "LABEL", data[0]["node"]], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert label == "TABULA-DATA"
    # Everything past the system area (the ISO 9660 file system and the boot images) is untouched.
    with iso.open("rb") as a, img.open("rb") as b:
        a.seek(32768)
        b.seek(32768)
        assert a.read() == b.read(iso_size - 32768)
    again = subprocess.run([str(IMAGE / "make-persistence.sh"), dev, "--yes"], capture_output=True, text=True)
    assert again.returncode == 2 and "already has a TABULA-DATA partition" in again.stderr


@pytest.mark.root
def test_make_persistence_refuses_a_disk_without_the_image_and_unconfirmed_runs(
    stick, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    dev, _iso, img = stick
    before = img.read_bytes()
    r = subprocess.run(
        [str(IMAGE / "make-persistence.sh"), dev], input="/dev/sdz\n", capture_output=True, text=True
    )
    assert r.returncode == 2 and "not confirmed" in r.stderr
    assert img.read_bytes() == before
    blank = tmp_path / "blank.img"
    blank.write_bytes(b"\0" * (32 << 20))
    other = subprocess.run(
        ["losetup", "--find", "--show", str(blank)], check=True, capture_output=True, text=True
    ).stdout.strip()
    try:
        r = subprocess.run(
            [str(IMAGE / "make-persistence.sh"), other, "--yes"], capture_output=True, text=True
        )
        assert r.returncode == 2 and "does not hold the Tabula image" in r.stderr
    finally:
        subprocess.run(["losetup", "--detach", other], check=False)
    assert blank.read_bytes() == b"\0" * (32 << 20)


@pytest.mark.parametrize("keymap", ["fr", "fr-latin9", "be-latin1", "fr_CH", "us"])
def test_the_documented_keymaps_exist_in_the_images_packages(keymap: str) -> None:
    """The image installs kbd and console-data (as ./dev does here): loadkeys must find and parse
    every keymap the boot parameters document, without loading it (--parse)."""
    assert {"kbd", "console-data"} <= set(ti.read_packages(IMAGE / "packages.txt"))
    assert parse_boot_params(f"tabula.keymap={keymap}").warnings == ()
    r = subprocess.run(["loadkeys", "--parse", keymap], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert subprocess.run(["loadkeys", "--parse", "no-such-keymap"], capture_output=True).returncode != 0
