"""The station's purge and clear, run inside the QEMU lab guest against emulated disks.

One boot (TCG) with an emulated NVMe disk and a SATA disk, both image files filled with a pattern.
Inside the guest (the host's root shared read-only over 9p, see tests/qemu/station_guest.py) the
real ``station erase`` runs: ``--policy nist-purge`` on the NVMe disk (planned as NVMe Format SES=1,
with its evidence) and ``--policy nist-clear`` on the SATA disk (overwrite + verification); each
worker signs its certificate in the guest.  Back on the host: the images must be all zeros, the
records must say Purge (NVMe, with evidence) and Clear (SATA), the certificates must agree.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import sys
import tarfile
from pathlib import Path

import pytest

from station.probekit import replay
from tests.qemu.guest import DiskSpec, disk_arg, make_image, pattern_coverage

pytestmark = pytest.mark.qemu

PATTERN = b"TABULA-QEMU-PURGE-0123456789abcdef"

DUMP = """
import glob, json, os
from certs.jws import parse_envelope
GUEST_HOME_GLOB = os.environ["TABULA_HOME"]
out = []
for rec in sorted(glob.glob(GUEST_HOME_GLOB + '/jobs/*/record.json')):
    d = json.load(open(rec))
    certs = []
    for p in sorted(glob.glob(GUEST_HOME_GLOB + '/certs/**/*.json', recursive=True)):
        try:
            payload = json.loads(parse_envelope(open(p, 'rb').read()).payload_bytes)
        except ValueError:
            continue
        if payload.get('job', {}).get('job_id') == d['job_id']:
            certs.append(payload)
    out.append({'record': d, 'certificates': certs})
print(json.dumps(out))
"""


def _lab_available() -> None:
    from tests.qemu.build import missing_host_packages

    missing = missing_host_packages()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"QEMU lab packages missing: apt-get install -y {' '.join(missing)}")
        pytest.skip(f"QEMU lab packages missing: {missing}")
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 is not installed")


def test_station_purges_nvme_and_clears_sata_inside_the_guest(tmp_path: Path) -> None:
    _lab_available()
    from tests.qemu.station_guest import chroot_command, run_station, station_command

    nvme = make_image(tmp_path / "nvme.img", 16 << 20, pattern=PATTERN)
    sata = make_image(tmp_path / "sata.img", 16 << 20, pattern=PATTERN)
    assert pattern_coverage(nvme, PATTERN)[0] > 0.99
    disks = [DiskSpec("nvme", nvme, serial="TBLPURGE01"), DiskSpec("sata-hdd", sata, serial="TBLCLEAR01")]
    encoded = base64.b64encode(DUMP.encode()).decode()
    plan, purge, clear, dump = (
        station_command(["erase", "--plan", "--policy", "nist-purge", disk_arg("TBLPURGE01")]),
        station_command(["erase", "--policy", "nist-purge", disk_arg("TBLPURGE01"), "--yes"]),
        station_command(["erase", "--policy", "nist-clear", disk_arg("TBLCLEAR01"), "--yes", "--sample"]),
        # Guest arguments cannot hold newlines: the dump script travels base64-encoded.
        chroot_command([sys.executable, "-c", f"import base64; exec(base64.b64decode({encoded!r}))"]),
    )
    report, (r_plan, r_purge, r_clear, r_dump) = run_station(disks, [plan, purge, clear, dump], timeout=420)

    assert r_plan.returncode == 0, r_plan.stderr
    assert "nvme format /dev/nvme0n1 --ses=1 --force" in r_plan.stdout
    assert "achieves: NIST SP 800-88 Purge" in r_plan.stdout
    assert r_purge.returncode == 0, (r_purge.stdout, r_purge.stderr)
    assert "VERIFIED  (NIST SP 800-88 Purge)" in r_purge.stdout
    assert r_clear.returncode == 0, (r_clear.stdout, r_clear.stderr)
    assert "(NIST SP 800-88 Clear)" in r_clear.stdout
    assert r_dump.returncode == 0, r_dump.stderr

    # The disks, checked on the host after QEMU exited.
    assert pattern_coverage(nvme, PATTERN) == (0.0, 1.0)
    assert pattern_coverage(sata, PATTERN) == (0.0, 1.0)

    jobs = {j["record"]["plan"]["drive"]["serial"]: j for j in json.loads(r_dump.stdout)}
    nv = jobs["TBLPURGE01"]
    rec = nv["record"]
    assert rec["outcome"] == "verified" and rec["nist_level"] == "purge"
    (step,) = rec["firmware_steps"]
    assert step["action"] == "nvme-format-erase" and step["level_achieved"] == "purge"
    assert step["status_ok"] and step["data_check"]["passed"] and step["data_check"]["kind"] == "zeros"
    assert step["data_check"]["bytes_checked"] > 0
    assert any(
        c["argv"] == ["nvme", "format", "/dev/nvme0n1", "--ses=1", "--force"] and c["mutating"]
        for c in step["commands"]
    )
    (cert,) = nv["certificates"]
    assert cert["kind"] == "certificate"
    assert cert["sanitization"]["level_achieved"] == "purge"
    assert cert["sanitization"]["steps"][0]["kind"] == "firmware"

    sa = jobs["TBLCLEAR01"]
    assert sa["record"]["outcome"] == "verified" and sa["record"]["nist_level"] == "clear"
    (cert,) = sa["certificates"]
    assert cert["kind"] == "certificate" and cert["sanitization"]["level_achieved"] == "clear"


def test_station_probe_records_the_guests_drives_redacted_and_replays_them(tmp_path: Path) -> None:
    """Inside the guest, ``station probe --record`` records the emulated drives (read-only: the
    images must come back untouched), and the recording replays there and on the host into the
    same plans, with no serial of the guest's drives left in it."""
    _lab_available()
    from tests.qemu.station_guest import GUEST_SCRATCH, chroot_command, run_station, station_command

    nvme = make_image(tmp_path / "nvme.img", 16 << 20, pattern=PATTERN)
    sata = make_image(tmp_path / "sata.img", 16 << 20, pattern=PATTERN)
    disks = [DiskSpec("nvme", nvme, serial="TBLPROBE01"), DiskSpec("sata-hdd", sata, serial="TBLPROBE02")]
    archive = f"{GUEST_SCRATCH}/probes/guest.tar.gz"
    dump = f"import base64,sys; sys.stdout.write(base64.b64encode(open({archive!r},'rb').read()).decode())"
    commands = [
        station_command(["probe", "--record", archive]),
        station_command(["probe", "--replay", archive]),
        chroot_command([sys.executable, "-c", dump]),
    ]
    _, (r_record, r_replay, r_dump) = run_station(disks, commands, timeout=300)
    assert r_record.returncode == 0, (r_record.stdout, r_record.stderr)
    assert "recorded 2 drive(s)" in r_record.stdout and "identifier(s) redacted" in r_record.stdout
    assert r_replay.returncode == 0, r_replay.stderr
    assert "nist-purge: reaches Purge" in r_replay.stdout and "nist-purge: reaches Clear" in r_replay.stdout
    assert "TBLPROBE" not in r_replay.stdout

    local = tmp_path / "guest.tar.gz"
    local.write_bytes(base64.b64decode(r_dump.stdout))
    with tarfile.open(local, "r:gz") as tar:
        text = b"".join(tar.extractfile(m).read() for m in tar.getmembers() if m.isfile())  # type: ignore[union-attr]
    assert b"TBLPROBE" not in text
    manifest, drives = replay(local)
    assert manifest["redacted"] and len(drives) == 2
    actions = {d.drive.transport: [s.action for s in d.plans["nist-purge"].steps] for d in drives}  # type: ignore[union-attr]
    assert actions == {"nvme": ["nvme-format-erase"], "sata": []}
    # A recording never writes: both images still hold their pattern everywhere.
    assert pattern_coverage(nvme, PATTERN)[0] > 0.99 and pattern_coverage(sata, PATTERN)[0] > 0.99
