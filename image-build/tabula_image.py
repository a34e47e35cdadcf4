#!/usr/bin/env python3
"""Helpers of the live image build (``image-build/build.sh``), kept in Python so they are unit-tested.

Runs with the host's python3 alone (standard library only):

* ``mirror``: the Debian mirror apt already uses on this host (``TABULA_MIRROR`` overrides it);
* ``packages FILE``: the package list, comments and blank lines dropped;
* ``units FILE``: the systemd units to mask, the same way;
* ``key FILE...``: a cache key (sha256) over files and directory trees (names, modes, contents);
* ``grub-cfg [--append PARAMS] [--timeout N]``: the GRUB menu of the ISO;
* ``manifest ...``: the build manifest (Debian packages, Python packages, source commit, ISO facts).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import stat
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

#: ISO9660 volume id: host/protection.py's BOOT_LABELS must contain it.
VOLUME_ID = "TABULA"
#: Filesystem label of the persistence partition (mounted on /var/lib/tabula at boot).
DATA_LABEL = "TABULA-DATA"
#: Kernel parameters of every menu entry.  ``boot=live`` lets live-boot find /live/filesystem.squashfs;
#: ``quiet``: the kernel's messages go to the journal only (printing them on the serial console costs
#: seconds under emulation and on slow serial lines; nobody reads them there);
#: ``tabula.boot=LABEL=TABULA`` names the boot medium so the station never offers it.  The last
#: ``console=`` is /dev/console (the screen); ttyS0 gets a console (and an autologin) too.
#: ``live-media=``: live-boot mounts the medium by its label at once instead of mounting every
#: partition it finds (the persistence partition, a donor's disks) until one holds /live (it still
#: scans when the label is not there, e.g. a stick re-labelled by hand).
#: ``init_on_alloc=0``: Debian's kernel zeroes every page it allocates, page cache included; under
#: QEMU's emulation ``rep stosq`` is slow and systemd spent ~30 s (2-core CI machine under load) in
#: clear_page before its first message (sampled guest RIP).  Memory given to programs is still zeroed
#: (anonymous pages always are); only the kernel's own allocations lose this defence in depth, on a
#: machine with one user (root on the console) and no network service.
BASE_PARAMS = (
    "boot=live",
    f"live-media=/dev/disk/by-label/{VOLUME_ID}",
    "noeject",
    "noprompt",
    "quiet",
    "init_on_alloc=0",
    f"tabula.boot=LABEL={VOLUME_ID}",
    "console=ttyS0,115200n8",
    "console=tty0",
)
#: Seconds GRUB's menu waits.  Every machine of a workshop waits it at every boot; a key stops the
#: countdown and the entries have hotkeys (t, e, f, b, p).  A network that wants longer builds with
#: ``build.sh --timeout N``.
DEFAULT_TIMEOUT = 2
SAFE_PARAM = re.compile(r"^[A-Za-z0-9_.:/=,@+-]+$")


def debian_mirror(apt_dir: Path = Path("/etc/apt"), environ: dict[str, str] | None = None) -> str:
    """The Debian archive URI configured for apt (deb822 ``.sources`` or one-line ``.list`` files)."""
    env = os.environ if environ is None else environ
    if env.get("TABULA_MIRROR"):
        return env["TABULA_MIRROR"].rstrip("/")
    files = [apt_dir / "sources.list"]
    d = apt_dir / "sources.list.d"
    if d.is_dir():
        files += sorted(p for p in d.iterdir() if p.suffix in (".list", ".sources"))
    for path in files:
        if not path.is_file():
            continue
        for uri in _uris(path.read_text(errors="replace"), deb822=path.suffix == ".sources"):
            # The main archive, not debian-security or a third-party repository.
            if re.search(r"/debian/?$", uri):
                return uri.rstrip("/")
    raise SystemExit(
        "tabula_image: no Debian mirror found in /etc/apt; set TABULA_MIRROR=http://deb.debian.org/debian"
    )


def _uris(text: str, *, deb822: bool) -> Iterable[str]:
    if deb822:
        for stanza in re.split(r"\n\s*\n", text):
            fields = dict(
                (k.strip().lower(), v.strip())
                for k, _, v in (line.partition(":") for line in stanza.splitlines())
                if not k.startswith("#") and v
            )
            if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes") != "no":
                yield from fields.get("uris", "").split()
        return
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if words and words[0] == "deb":
            rest = [w for w in words[1:] if not w.startswith("[")]
            if rest:
                yield rest[0]


def read_packages(path: Path) -> list[str]:
    names = []
    for line in path.read_text().splitlines():
        name = line.split("#", 1)[0].strip()
        if name:
            if not re.fullmatch(r"[a-z0-9][a-z0-9.+-]+(=[A-Za-z0-9.+:~-]+)?", name):
                raise SystemExit(f"tabula_image: not a package name in {path}: {name!r}")
            names.append(name)
    return names


UNIT_NAME = re.compile(r"[A-Za-z0-9_.@:-]+\.(service|socket|timer|mount|automount|path|target)")


def read_units(path: Path) -> list[str]:
    """systemd unit names, one a line ('#' comments), for ``systemctl mask``."""
    names = []
    for line in path.read_text().splitlines():
        name = line.split("#", 1)[0].strip()
        if name:
            if not UNIT_NAME.fullmatch(name):
                raise SystemExit(f"tabula_image: not a systemd unit name in {path}: {name!r}")
            names.append(name)
    return names


def tree_key(paths: Sequence[Path]) -> str:
    """sha256 over the given files and trees: relative names, modes (exec bit) and contents."""
    h = hashlib.sha256()
    for top in paths:
        items = [top] if top.is_file() else sorted(p for p in top.rglob("*"))
        for p in items:
            st = p.lstat()
            rel = p.name if p == top else str(p.relative_to(top))
            h.update(f"{top.name}/{rel}\0{stat.S_IMODE(st.st_mode) & 0o111:o}\0".encode())
            if stat.S_ISLNK(st.st_mode):
                h.update(b"L" + os.readlink(p).encode())
            elif stat.S_ISREG(st.st_mode):
                h.update(b"F" + p.read_bytes())
            h.update(b"\0")
    return h.hexdigest()


def check_params(params: str) -> list[str]:
    words = params.split()
    for w in words:
        if not SAFE_PARAM.fullmatch(w):
            raise SystemExit(
                f"tabula_image: unsafe kernel parameter {w!r} (letters, digits and _.:/=,@+- only)"
            )
    return words


def render_grub_cfg(append: str = "", timeout: int = DEFAULT_TIMEOUT) -> str:
    """The ISO's GRUB menu.  ``append`` goes on the default entry only (test variants, bench sticks)."""
    if timeout < 0:
        raise SystemExit("tabula_image: the GRUB timeout must be >= 0")
    base = " ".join(BASE_PARAMS)
    extra = check_params(append)

    def entry(title: str, params: Sequence[str], hotkey: str) -> str:
        line = " ".join([base, *params])
        return (
            f"menuentry '{title}' --hotkey={hotkey} {{\n"
            f"    linux /live/vmlinuz {line}\n"
            f"    initrd /live/initrd.img\n"
            f"}}\n"
        )

    parts = [
        "# Tabula live image: GRUB menu (generated by image-build/tabula_image.py).\n",
        "# Kernel parameters: see image-build/README.md.  Press 'e' on an entry to add some for one boot.\n",
        "serial --unit=0 --speed=115200 --word=8 --parity=no --stop=1\n",
        "terminal_input console serial\n",
        "terminal_output console serial\n",
        "set default=0\n",
        f"set timeout={timeout}\n",
        "insmod all_video\n",
        "\n",
        entry("Tabula" + (f" [{' '.join(extra)}]" if extra else ""), [*extra], "t"),
        entry("Tabula (English)", ["tabula.lang=en", *extra], "e"),
        entry("Tabula (Francais)", ["tabula.lang=fr", *extra], "f"),
        entry("Tabula bench (diagnostics)", ["tabula.bench=1", *extra], "b"),
        "menuentry 'Power off' --hotkey=p {\n    halt\n}\n",
    ]
    return "".join(parts)


def parse_dpkg(text: str) -> list[dict[str, str]]:
    """``dpkg-query -W -f='${Package}\\t${Version}\\t${Architecture}\\n'`` -> sorted records."""
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        name, version, arch = (line.split("\t") + ["", ""])[:3]
        rows.append({"package": name, "version": version, "architecture": arch})
    return sorted(rows, key=lambda r: r["package"])


def parse_freeze(text: str) -> list[dict[str, str]]:
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "==" in line:
            name, _, version = line.partition("==")
            rows.append({"name": name, "version": version})
        elif " @ " in line:
            name, _, url = line.partition(" @ ")
            rows.append({"name": name, "version": url})
        else:
            rows.append({"name": line, "version": ""})
    return sorted(rows, key=lambda r: r["name"].lower())


def build_manifest(
    *,
    dpkg: str,
    freeze: str,
    commit: str,
    dirty: bool,
    mirror: str,
    suite: str,
    kernel: str,
    built_at: str,
    rootfs_key: str,
    squashfs_sha256: str | None = None,
) -> dict[str, object]:
    return {
        "format": "tabula-image-manifest/1",
        "volume_id": VOLUME_ID,
        "data_label": DATA_LABEL,
        "built_at": built_at,
        "source": {"commit": commit, "dirty": dirty},
        "debian": {"mirror": mirror, "suite": suite, "packages": parse_dpkg(dpkg)},
        "kernel": kernel,
        "python": parse_freeze(freeze),
        "rootfs_key": rootfs_key,
        "squashfs_sha256": squashfs_sha256,
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tabula_image", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("mirror")
    pk = sub.add_parser("packages")
    pk.add_argument("file", type=Path)
    un = sub.add_parser("units")
    un.add_argument("file", type=Path)
    k = sub.add_parser("key")
    k.add_argument("paths", nargs="+", type=Path)
    k.add_argument("--extra", action="append", default=[], help="strings mixed into the key")
    g = sub.add_parser("grub-cfg")
    g.add_argument("--append", default="")
    g.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT)
    m = sub.add_parser("manifest")
    m.add_argument("--dpkg", type=Path, required=True)
    m.add_argument("--freeze", type=Path, required=True)
    m.add_argument("--commit", required=True)
    m.add_argument("--dirty", action="store_true")
    m.add_argument("--mirror", required=True)
    m.add_argument("--suite", required=True)
    m.add_argument("--kernel", required=True)
    m.add_argument("--built-at", required=True)
    m.add_argument("--rootfs-key", required=True)
    m.add_argument("--squashfs", type=Path)
    args = p.parse_args(argv)
    if args.cmd == "mirror":
        print(debian_mirror())
    elif args.cmd == "packages":
        print(" ".join(read_packages(args.file)))
    elif args.cmd == "units":
        print(" ".join(read_units(args.file)))
    elif args.cmd == "key":
        h = hashlib.sha256(tree_key(args.paths).encode())
        for e in args.extra:
            h.update(b"\0" + e.encode())
        print(h.hexdigest()[:24])
    elif args.cmd == "grub-cfg":
        sys.stdout.write(render_grub_cfg(args.append, args.timeout))
    elif args.cmd == "manifest":
        sq = None
        if args.squashfs:
            d = hashlib.sha256()
            with args.squashfs.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    d.update(chunk)
            sq = d.hexdigest()
        doc = build_manifest(
            dpkg=args.dpkg.read_text(),
            freeze=args.freeze.read_text(),
            commit=args.commit,
            dirty=args.dirty,
            mirror=args.mirror,
            suite=args.suite,
            kernel=args.kernel,
            built_at=args.built_at,
            rootfs_key=args.rootfs_key,
            squashfs_sha256=sq,
        )
        print(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
