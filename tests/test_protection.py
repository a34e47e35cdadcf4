"""Protection: the checks that keep Tabula from erasing the wrong drive.

Real cases run on this machine (its system disk, loop devices the tests create, mounted, used as swap,
opened by another process); cases that need hardware or boot setups we cannot make here (LVM holders,
a live-boot USB stick, /dev/disk/by-label links) run on small fake machines (tests/fixtures/sysfs).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from host.drives import drive_info_from_record, read_record
from host.identity import DriveInfo
from host.protection import (
    BOOT_MARKER,
    Reason,
    ReasonCode,
    SystemState,
    Verdict,
    check,
    parse_mountinfo,
    parse_swaps,
    udev_encode,
)
from tests.conftest import LoopFactory
from tests.fixtures.sysfs.fakesys import FakeMachine
from tests.loopdev import loop_device

MiB = 1 << 20


def info_of(dev: str) -> DriveInfo:
    """The DriveInfo of a real block device of this machine, read from sysfs."""
    name = os.path.basename(dev)
    info = drive_info_from_record(read_record(f"/sys/class/block/{name}"))
    assert info is not None, f"{dev} is not a disk with a medium"
    return info


def fake_info(name: str, *, read_only: bool = False) -> DriveInfo:
    return DriveInfo(
        path=f"/dev/{name}",
        size_bytes=1 << 30,
        logical_sector_size=512,
        physical_sector_size=512,
        transport="sata",
        media_type="ssd",
        rotational=False,
        removable=False,
        read_only=read_only,
        kernel_name=name,
    )


def root_disk() -> str:
    """The whole disk under / on this machine, found through sysfs (not assumed to be vda)."""
    for m in parse_mountinfo(Path("/proc/self/mountinfo").read_text()):
        if m.mountpoint == "/" and not m.devnum.startswith("0:"):
            real = Path(os.path.realpath(f"/sys/dev/block/{m.devnum}"))
            return real.parent.name if (real / "partition").exists() else real.name
    pytest.skip("/ is not on a block device here (overlay or network root)")


def codes(v: Verdict) -> set[ReasonCode]:
    return set(v.codes)


def reasons_of(v: Verdict, code: ReasonCode) -> list[Reason]:
    return [r for r in v.reasons if r.code is code]


def run(*argv: str) -> None:
    subprocess.run(list(argv), check=True, capture_output=True, text=True)


@pytest.fixture
def cleanup() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


# --------------------------------------------------------------------------------------------------
# This machine


def test_system_disk_is_refused_naming_root() -> None:
    disk = root_disk()
    v = check(info_of(f"/dev/{disk}"))
    assert not v.allowed
    assert not v.forceable
    system = reasons_of(v, ReasonCode.SYSTEM_DISK)
    assert system, v.explain(disk)
    root = next(r for r in system if r.target == "/")
    assert root.message.startswith("holds the running system: / is mounted from /dev/")
    assert f"/dev/{disk}" in v.explain(f"/dev/{disk}")


@pytest.mark.root
def test_loop_over_a_file_on_the_system_disk_is_allowed_but_the_disk_is_not(make_loop: LoopFactory) -> None:
    dev = make_loop(4 * MiB)
    loop = check(info_of(dev))
    assert loop.allowed, loop.explain(dev)
    assert loop.reasons == () and not loop.forceable
    # The loop sits on the system disk; that does not make the system disk erasable.
    system = check(info_of(f"/dev/{root_disk()}"))
    assert ReasonCode.SYSTEM_DISK in system.codes


@pytest.mark.root
def test_mounted_loop_is_refused_naming_the_mount_point(
    make_loop: LoopFactory, tmp_path: Path, cleanup: ExitStack
) -> None:
    dev = make_loop(8 * MiB)
    run("mkfs.ext4", "-q", "-F", dev)
    mnt = tmp_path / "mnt point"  # a space, escaped as \040 in mountinfo
    mnt.mkdir()
    run("mount", dev, str(mnt))
    cleanup.callback(run, "umount", str(mnt))

    v = check(info_of(dev))
    assert codes(v) == {ReasonCode.MOUNTED}
    (r,) = v.reasons
    assert r.target == str(mnt)
    assert r.message == f"has a mounted filesystem: {dev} is mounted on {mnt}"
    assert r.hint == f"unmount it first: umount {mnt}"
    assert not v.forceable

    # The system disk, which holds the loop's backing file, now also reports the mount through the loop.
    system = check(info_of(f"/dev/{root_disk()}"))
    via_loop = [r for r in reasons_of(system, ReasonCode.MOUNTED) if r.device == dev]
    assert via_loop and "the file behind " + dev in via_loop[0].message


@pytest.mark.root
@pytest.mark.parametrize("offset", [0, 1 * MiB])
def test_loop_set_up_directly_on_a_device_carries_its_mount_down(
    make_loop: LoopFactory, tmp_path: Path, cleanup: ExitStack, offset: int
) -> None:
    """losetup [-o OFFSET] /dev/loopB /dev/loopA, then mount loopB: loopA must be refused.

    The upper loop's backing "file" is a device node on devtmpfs, which maps to no disk, and the
    kernel records no holder for loops: found by a review, where such a disk was erased and certified.
    """
    lower = make_loop(16 * MiB)
    upper = subprocess.run(
        ["losetup", "--find", "--show", "--offset", str(offset), lower],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    cleanup.callback(run, "losetup", "--detach", upper)
    run("mkfs.ext4", "-q", "-F", upper)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    run("mount", upper, str(mnt))
    cleanup.callback(run, "umount", str(mnt))

    v = check(info_of(lower))
    assert not v.allowed and ReasonCode.MOUNTED in codes(v)
    assert any(r.device == upper and r.target == str(mnt) for r in reasons_of(v, ReasonCode.MOUNTED))
    assert check(info_of(upper)).codes == {ReasonCode.MOUNTED}


@pytest.mark.root
def test_boot_marker_on_a_mounted_loop_makes_it_the_boot_medium(
    make_loop: LoopFactory, tmp_path: Path, cleanup: ExitStack
) -> None:
    dev = make_loop(8 * MiB)
    run("mkfs.ext4", "-q", "-F", dev)
    mnt = tmp_path / "medium"
    mnt.mkdir()
    run("mount", dev, str(mnt))
    cleanup.callback(run, "umount", str(mnt))
    assert codes(check(info_of(dev))) == {ReasonCode.MOUNTED}

    (mnt / BOOT_MARKER).write_text("")
    v = check(info_of(dev))
    assert codes(v) == {ReasonCode.BOOT_MEDIUM}
    assert v.reasons[0].target == str(mnt / BOOT_MARKER)
    assert not v.forceable


@pytest.mark.root
def test_active_swap_loop_is_refused(make_loop: LoopFactory, cleanup: ExitStack) -> None:
    dev = make_loop(8 * MiB)
    run("mkswap", dev)
    swapon = subprocess.run(["swapon", dev], capture_output=True, text=True)
    if swapon.returncode != 0:
        pytest.skip(f"swapon not permitted here ({swapon.stderr.strip()}): covered by the fake-proc test")
    cleanup.callback(run, "swapoff", dev)

    v = check(info_of(dev))
    assert codes(v) == {ReasonCode.SWAP}
    assert v.reasons[0].message == f"is in use as swap: {dev} is active swap"
    assert v.reasons[0].hint == f"turn it off first: swapoff {dev}"


@pytest.mark.root
def test_read_only_loop_is_reported_not_attempted(make_loop: LoopFactory) -> None:
    dev = make_loop(4 * MiB, read_only=True)
    info = info_of(dev)
    assert info.read_only
    v = check(info)
    assert codes(v) == {ReasonCode.READ_ONLY}
    assert not v.allowed and not v.forceable


@pytest.mark.root
def test_loop_stacked_on_a_loop_follows_the_backing_file_downwards_only(
    make_loop: LoopFactory, tmp_path: Path, cleanup: ExitStack
) -> None:
    lower = make_loop(16 * MiB)
    run("mkfs.ext4", "-q", "-F", lower)
    mnt = tmp_path / "lower"
    mnt.mkdir()
    run("mount", lower, str(mnt))
    cleanup.callback(run, "umount", str(mnt))
    upper = cleanup.enter_context(loop_device(mnt, 4 * MiB, name="upper.img"))
    run("mkswap", upper)
    if subprocess.run(["swapon", upper], capture_output=True).returncode != 0:
        pytest.skip("swapon not permitted here")
    cleanup.callback(run, "swapoff", upper)

    lower_v = check(info_of(lower))
    swap = reasons_of(lower_v, ReasonCode.SWAP)
    assert swap and swap[0].device == upper
    assert swap[0].message.startswith(
        f"holds {mnt}/upper.img, the file behind {upper}, which is in use as swap"
    )
    assert ReasonCode.MOUNTED in lower_v.codes

    # The upper loop is refused for its own swap, never for what lies beneath it.
    upper_v = check(info_of(upper))
    assert codes(upper_v) == {ReasonCode.SWAP}
    assert all(lower not in r.message for r in upper_v.reasons)


@pytest.mark.root
def test_device_open_in_another_process_is_in_use_and_forceable(make_loop: LoopFactory) -> None:
    dev = make_loop(4 * MiB)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import sys,time; f=open({dev!r},'rb'); print('open', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        v = check(info_of(dev))
        assert codes(v) == {ReasonCode.IN_USE}
        assert f"(pid {holder.pid})" in v.reasons[0].message
        assert v.forceable and not v.allowed
    finally:
        holder.kill()
        holder.wait()
    deadline = time.monotonic() + 5
    while not check(info_of(dev)).allowed and time.monotonic() < deadline:
        time.sleep(0.05)
    assert check(info_of(dev)).allowed


def test_a_drive_tabula_is_erasing_names_the_job_never_another_program(
    make_loop: LoopFactory, tmp_path: Path
) -> None:
    """A real worker erasing a real loop device: the drive is refused, as Tabula's own job."""
    from station.jobs import EraseOptions, create_job, plan_job, spawn
    from station.options import WorkerOptions

    dev = make_loop(64 * MiB)
    other = make_loop(4 * MiB)
    plan = plan_job(info_of(dev), EraseOptions(method="gutmann"))  # 35 passes: long enough to look at
    job_dir = create_job(tmp_path / "jobs", plan, WorkerOptions(include_loop=True))
    worker = spawn(job_dir)
    try:
        deadline = time.monotonic() + 20
        v = check(info_of(dev))
        while ReasonCode.TABULA_JOB not in codes(v) and time.monotonic() < deadline:
            time.sleep(0.05)
            v = check(info_of(dev))
        assert codes(v) == {ReasonCode.TABULA_JOB}, v.reasons  # never IN_USE: not "another program"
        (r,) = v.reasons
        assert r.target == str(job_dir) and job_dir.name in r.message and "another program" not in r.message
        assert not v.allowed and not v.forceable
        assert Path(f"/proc/{worker.pid}/comm").read_text().strip() == "tabula-worker"
        # a foreign program holding it as well is still another program, and the drive stays refused
        with open(dev, "rb") as held:
            holder = subprocess.Popen(["sleep", "60"], stdin=held)
        try:
            assert codes(check(info_of(dev))) == {ReasonCode.TABULA_JOB, ReasonCode.IN_USE}
        finally:
            holder.kill()
            holder.wait()
        assert check(info_of(other)).allowed
    finally:
        worker.terminate()
        worker.wait()


def test_worker_command_lines() -> None:
    from host.protection import parse_worker_argv

    assert parse_worker_argv(["/usr/bin/python3", "-m", "station.worker", "/var/lib/tabula/jobs/x"]) == (
        "/var/lib/tabula/jobs/x"
    )
    assert parse_worker_argv(["python3", "-m", "station.worker"]) is None
    assert parse_worker_argv(["python3", "-m", "station.worker", "a", "b"]) is None
    assert parse_worker_argv(["python3", "-m", "station.other", "a"]) is None
    assert parse_worker_argv(["dd", "if=/dev/zero", "of=/dev/loop0"]) is None


# --------------------------------------------------------------------------------------------------
# Fake machines


@pytest.fixture
def fake(tmp_path: Path) -> FakeMachine:
    return FakeMachine(tmp_path / "machine")


def test_mounts_are_matched_by_device_number_not_name_prefix(fake: FakeMachine) -> None:
    fake.ata_disk("sda", "8:0")
    fake.ata_disk("sdaa", "65:160", host=1)
    fake.mount("65:160", "/data", "/dev/sdaa")
    assert check(fake_info("sda"), **fake.roots).allowed
    v = check(fake_info("sdaa"), **fake.roots)
    assert codes(v) == {ReasonCode.MOUNTED}
    assert v.reasons[0].message == "has a mounted filesystem: /dev/sdaa is mounted on /data"


def test_mounted_partition_and_system_partition(fake: FakeMachine) -> None:
    fake.ata_disk("sda", "8:0")
    fake.partition("sda", "sda1", "8:1")
    fake.partition("sda", "sda2", "8:2")
    fake.mount("8:2", "/", "/dev/sda2")
    fake.mount("8:1", "/boot/efi", "/dev/sda1", fstype="vfat")
    v = check(fake_info("sda"), **fake.roots)
    assert codes(v) == {ReasonCode.SYSTEM_DISK}
    assert [r.message for r in v.reasons] == [
        "holds the running system: / is mounted from /dev/sda2",
        "holds the running system: /boot/efi is mounted from /dev/sda1",
    ]
    assert v.reasons[0].via == ("/dev/sda",)
    assert not v.forceable


def test_holders_lvm_are_refused_transitively(fake: FakeMachine) -> None:
    fake.ata_disk("sda", "8:0")
    fake.partition("sda", "sda1", "8:1")
    fake.partition("sda", "sda2", "8:2")
    fake.virtual("dm-0", "253:0", on=("sda2",), dm_name="vg0-home", dm_uuid="LVM-abcdef")
    fake.virtual("dm-1", "253:1", on=("dm-0",), dm_name="home_crypt", dm_uuid="CRYPT-LUKS2-1234-home_crypt")
    fake.mount("253:1", "/home", "/dev/mapper/home_crypt")
    v = check(fake_info("sda"), **fake.roots)
    assert codes(v) == {ReasonCode.HOLDERS, ReasonCode.MOUNTED}
    holders = reasons_of(v, ReasonCode.HOLDERS)
    assert [r.target for r in holders] == ["/dev/dm-0", "/dev/dm-1"]
    assert holders[0].message == "is held by /dev/dm-0 (LVM logical volume vg0-home): /dev/sda2 is part of it"
    assert "encrypted volume home_crypt" in holders[1].message
    (mounted,) = reasons_of(v, ReasonCode.MOUNTED)
    assert mounted.message == "has a mounted filesystem: /dev/dm-1 (on /dev/dm-0) is mounted on /home"
    assert mounted.via == ("/dev/sda", "/dev/sda2", "/dev/dm-0")
    assert not v.forceable


def test_md_raid_member_disk_is_refused(fake: FakeMachine) -> None:
    fake.ata_disk("sda", "8:0")
    fake.ata_disk("sdb", "8:16", host=1)
    fake.virtual("md0", "9:0", on=("sda", "sdb"))
    for disk in ("sda", "sdb"):
        v = check(fake_info(disk), **fake.roots)
        assert codes(v) == {ReasonCode.HOLDERS}
        assert "software RAID array" in v.reasons[0].message


def test_live_boot_stick_and_its_squashfs_loop(fake: FakeMachine) -> None:
    """Debian live-boot: the stick's partition on /run/live/medium, its squashfs on loop0, / an overlay."""
    fake.ata_disk("sda", "8:0")  # the internal disk to be erased
    fake.usb_disk("sdb", "8:16")
    fake.partition("sdb", "sdb1", "8:17")
    fake.virtual("loop0", "7:0", backing_file="/run/live/medium/live/filesystem.squashfs")
    fake.mount("8:17", "/run/live/medium", "/dev/sdb1", fstype="iso9660", options="ro")
    fake.mount("7:0", "/run/live/rootfs/filesystem.squashfs", "/dev/loop0", fstype="squashfs", options="ro")
    fake.mount(
        "0:31",
        "/",
        "overlay",
        fstype="overlay",
        options="rw,lowerdir=/run/live/rootfs/filesystem.squashfs/,upperdir=/run/live/overlay/rw,"
        "workdir=/run/live/overlay/work",
    )
    assert check(fake_info("sda"), **fake.roots).allowed

    stick = check(fake_info("sdb"), **fake.roots)
    assert codes(stick) == {ReasonCode.BOOT_MEDIUM, ReasonCode.LOOP_BACKS_SYSTEM}
    (boot,) = reasons_of(stick, ReasonCode.BOOT_MEDIUM)
    assert boot.message == "is the boot medium: /run/live/medium is mounted from /dev/sdb1"
    (loop,) = reasons_of(stick, ReasonCode.LOOP_BACKS_SYSTEM)
    assert loop.message == (
        "holds /run/live/medium/live/filesystem.squashfs, the file behind /dev/loop0, which holds the "
        "running system: /run/live/rootfs/filesystem.squashfs is mounted from /dev/loop0"
    )
    assert not stick.forceable

    squash = check(fake_info("loop0"), **fake.roots)
    assert codes(squash) == {ReasonCode.SYSTEM_DISK}  # the loop holds the system; the stick is beneath


def test_boot_medium_from_cmdline_and_label(fake: FakeMachine) -> None:
    fake.ata_disk("sda", "8:0")
    fake.partition("sda", "sda1", "8:1")
    fake.usb_disk("sdc", "8:32")
    fake.usb_disk("sdd", "8:48")
    fake.dev_link("disk/by-label/TABULA", "sdc")
    fake.dev_link("disk/by-uuid/0a1b2c3d-0000-4000-8000-00000000aaaa", "sda1")
    fake.dev_link("disk/by-label/My\\x20Stick", "sdd")
    fake.cmdline("BOOT_IMAGE=/vmlinuz boot=live root=UUID=0A1B2C3D-0000-4000-8000-00000000AAAA quiet")
    v = check(fake_info("sda"), **fake.roots)
    assert codes(v) == {ReasonCode.SYSTEM_DISK}
    assert v.reasons[0].target == "root=UUID=0A1B2C3D-0000-4000-8000-00000000AAAA"

    label = check(fake_info("sdc"), **fake.roots)
    assert codes(label) == {ReasonCode.BOOT_MEDIUM}
    assert label.reasons[0].message == "is the Tabula boot medium: /dev/sdc carries the label TABULA"

    assert check(fake_info("sdd"), **fake.roots).allowed
    fake.cmdline("boot=live tabula.boot=/dev/sdd -- tabula.boot=/dev/sda")
    assert check(fake_info("sda"), **fake.roots).allowed  # root= is gone; words after "--" go to init
    named = check(fake_info("sdd"), **fake.roots)
    assert codes(named) == {ReasonCode.BOOT_MEDIUM}
    assert named.reasons[0].target == "tabula.boot=/dev/sdd"


def test_swap_partition_and_swap_file_from_fake_proc(fake: FakeMachine) -> None:
    fake.ata_disk("sda", "8:0")
    fake.partition("sda", "sda2", "8:2")
    fake.partition("sda", "sda3", "8:3")
    fake.ata_disk("sdb", "8:16", host=1)
    fake.partition("sdb", "sdb1", "8:17")
    fake.mount("8:17", "/srv/data files", "/dev/sdb1")
    fake.swap("/dev/sda3")
    fake.swap("/srv/data files/swap file", kind="file")
    sda = check(fake_info("sda"), **fake.roots)
    assert codes(sda) == {ReasonCode.SWAP}
    assert sda.reasons[0].message == "is in use as swap: /dev/sda3 is active swap"
    sdb = check(fake_info("sdb"), **fake.roots)
    assert codes(sdb) == {ReasonCode.MOUNTED, ReasonCode.SWAP}
    (swap,) = reasons_of(sdb, ReasonCode.SWAP)
    assert swap.message == "is in use as swap: the swap file /srv/data files/swap file on /dev/sdb1 is active"


def test_btrfs_style_anonymous_device_number_uses_the_source(fake: FakeMachine) -> None:
    fake.nvme_disk("nvme0n1", "259:0")
    fake.partition("nvme0n1", "nvme0n1p2", "259:2")
    fake.mount("0:27", "/", "/dev/nvme0n1p2", fstype="btrfs", options="rw,subvol=/@")
    v = check(fake_info("nvme0n1"), **fake.roots)
    assert codes(v) == {ReasonCode.SYSTEM_DISK}
    assert v.reasons[0].message == "holds the running system: / is mounted from /dev/nvme0n1p2"


def test_open_file_descriptors_make_in_use_and_mixing_makes_unforceable(fake: FakeMachine) -> None:
    fake.ata_disk("sdb", "8:16", host=1)
    fake.partition("sdb", "sdb1", "8:17")
    fake.open_fd(4242, "dd", "/dev/sdb")
    v = check(fake_info("sdb"), **fake.roots)
    assert codes(v) == {ReasonCode.IN_USE}
    assert v.reasons[0].message == "is open in another program: /dev/sdb is used by dd (pid 4242)"
    assert v.forceable
    fake.mount("8:17", "/mnt", "/dev/sdb1")
    v = check(fake_info("sdb"), **fake.roots)
    assert codes(v) == {ReasonCode.IN_USE, ReasonCode.MOUNTED}
    assert not v.forceable


def test_read_only_flag_from_sysfs(fake: FakeMachine) -> None:
    fake.ata_disk("sda", "8:0", ro=True)
    v = check(fake_info("sda"), **fake.roots)  # DriveInfo says writable; the kernel says ro=1
    assert codes(v) == {ReasonCode.READ_ONLY}


def test_one_snapshot_checks_many_disks(fake: FakeMachine) -> None:
    fake.ata_disk("sda", "8:0")
    fake.ata_disk("sdb", "8:16", host=1)
    fake.mount("8:16", "/x", "/dev/sdb")
    state = SystemState.load(**fake.roots)
    assert check(fake_info("sda"), state=state).allowed
    assert not check(fake_info("sdb"), state=state).allowed


# --------------------------------------------------------------------------------------------------
# Pieces


def test_verdict_invariants() -> None:
    soft = Reason(ReasonCode.IN_USE, "is open", device="/dev/sdb")
    hard = Reason(ReasonCode.MOUNTED, "is mounted", device="/dev/sdb1")
    assert Verdict.from_reasons([]) == Verdict(allowed=True, reasons=(), forceable=False)
    assert Verdict.from_reasons([soft, soft]).reasons == (soft,)
    assert Verdict.from_reasons([soft]).forceable
    assert not Verdict.from_reasons([soft, hard]).forceable
    with pytest.raises(ValueError):
        Verdict(allowed=True, reasons=(hard,), forceable=False)
    with pytest.raises(ValueError):
        Verdict(allowed=False, reasons=(hard,), forceable=True)
    with pytest.raises(ValueError):
        Verdict(allowed=False, reasons=(), forceable=False)
    d = Verdict.from_reasons([hard]).to_dict()
    assert d == {
        "allowed": False,
        "forceable": False,
        "reasons": [
            {
                "code": "MOUNTED",
                "message": "is mounted",
                "device": "/dev/sdb1",
                "target": "",
                "hint": "",
                "via": [],
                "forceable": False,
            }
        ],
    }


@pytest.mark.parametrize(
    ("code", "forceable"),
    [(c, c is ReasonCode.IN_USE) for c in ReasonCode],
)
def test_forceable_policy(code: ReasonCode, forceable: bool) -> None:
    assert code.forceable is forceable


def test_parsers_unescape_kernel_octal() -> None:
    (m,) = parse_mountinfo(
        "36 35 98:0 /mnt1 /mnt/my\\040disk rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n"
    )
    assert (m.devnum, m.root, m.mountpoint, m.fstype, m.source) == (
        "98:0",
        "/mnt1",
        "/mnt/my disk",
        "ext3",
        "/dev/root",
    )
    (s,) = parse_swaps(
        "Filename Type Size Used Priority\n/swap\\040file (deleted) file 1 0 -2\n".replace(" (", "\\040(")
    )
    assert (s.path, s.kind) == ("/swap file", "file")
    swaps = parse_swaps(
        "Filename\tType\tSize\tUsed\tPriority\n/dev/dm-1                               partition\t8388604\t0\t-2\n"
    )
    assert swaps[0].path == "/dev/dm-1" and swaps[0].kind == "partition"
    assert udev_encode("My Stick/1") == "My\\x20Stick\\x2f1"
