#!/usr/bin/env bash
# Build Tabula's live image: a hybrid BIOS+UEFI ISO that can be written to a USB stick with dd.
#
#   sudo image-build/build.sh                      -> image-build/out/tabula.iso (+ tabula.manifest.json)
#   sudo image-build/build.sh --variant NAME --append "PARAMS" [--timeout N]
#                                                  -> out/tabula-NAME.iso: same system, PARAMS added to the
#                                                     default GRUB entry (QEMU tests, headless bench sticks)
#   options: --out DIR  --cache DIR (default image-build/cache, or $TABULA_IMAGE_CACHE)  --rebuild-rootfs
#
# Stages, each cached under the cache directory by a key over its inputs:
#   1. rootfs   debootstrap --variant=minbase bookworm + packages.txt (apt in the chroot), docs/locales
#               excluded, unused kernel module trees removed -> rootfs-KEY.tar.zst
#   2. wheels   the station and its dependencies as wheels, built/downloaded on the host (PyPI is not
#               reachable from the chroot) -> installed --no-index into a venv at /opt/tabula
#   3. system   overlay/ (units, autologin, session, networkd) + manifest -> live/filesystem.squashfs
#   4. iso      grub-mkrescue (BIOS i386-pc + EFI x86_64), volume id TABULA, /.tabula-boot marker
#   5. secure   its EFI boot image rebuilt with Debian's signed shim and CD GRUB (apt-get download on
#      boot    the host -> efi-signed-KEY/), so the stick also boots with UEFI Secure Boot enabled
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
OUT=$HERE/out
CACHE=${TABULA_IMAGE_CACHE:-$HERE/cache}
SUITE=bookworm
VARIANT=""
APPEND=""
TIMEOUT=()  # GRUB menu seconds: tabula_image.py DEFAULT_TIMEOUT unless --timeout N
REBUILD_ROOTFS=0
MAX_ISO_BYTES=$((300 * 1000 * 1000))

while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=$2; shift 2 ;;
    --cache) CACHE=$2; shift 2 ;;
    --variant) VARIANT=$2; shift 2 ;;
    --append) APPEND=$2; shift 2 ;;
    --timeout) TIMEOUT=(--timeout "$2"); shift 2 ;;
    --rebuild-rootfs) REBUILD_ROOTFS=1; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -n "$VARIANT" ] && ! [[ "$VARIANT" =~ ^[a-z0-9-]+$ ]]; then
  echo "build.sh: --variant must be lowercase letters, digits and dashes" >&2; exit 2
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "build.sh: needs root (debootstrap, chroot, mounts): sudo $0 $*" >&2; exit 2
fi
missing=()
for tool in debootstrap mksquashfs grub-mkrescue xorriso osirrox mformat mcopy mkfs.vfat zstd python3 apt-get; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
for d in /usr/lib/grub/i386-pc /usr/lib/grub/x86_64-efi; do
  [ -d "$d" ] || missing+=("$d")
done
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
if [ ${#missing[@]} -gt 0 ]; then
  echo "build.sh: missing: ${missing[*]}" >&2
  echo "  apt-get install -y debootstrap squashfs-tools xorriso grub-pc-bin grub-efi-amd64-bin mtools dosfstools zstd python3-pip" >&2
  exit 2
fi

T0=$(date +%s)
step() { echo "== [$(( $(date +%s) - T0 ))s] $*"; }
helper() { python3 "$HERE/tabula_image.py" "$@"; }

mkdir -p "$OUT" "$CACHE"
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/tabula-image.XXXXXX")
CHROOT=$WORK/chroot
MOUNTED=()
cleanup() {
  local i
  for (( i=${#MOUNTED[@]}-1; i>=0; i-- )); do umount -l "${MOUNTED[$i]}" 2>/dev/null || true; done
  rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT
bind_mounts() {
  local m
  for m in proc sys dev dev/pts; do
    mkdir -p "$CHROOT/$m"
    case $m in
      proc) mount -t proc proc "$CHROOT/proc" ;;
      sys) mount -t sysfs sysfs "$CHROOT/sys" ;;
      dev) mount --bind /dev "$CHROOT/dev" ;;
      dev/pts) mount -t devpts devpts "$CHROOT/dev/pts" ;;
    esac
    MOUNTED+=("$CHROOT/$m")
  done
}
unbind_mounts() {
  local i
  for (( i=${#MOUNTED[@]}-1; i>=0; i-- )); do umount "${MOUNTED[$i]}"; done
  MOUNTED=()
}
in_chroot() { chroot "$CHROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }

# -- 1. rootfs ---------------------------------------------------------------------------------------
MIRROR=$(helper mirror)
PACKAGES=$(helper packages "$HERE/packages.txt")
ROOTFS_KEY=$(helper key "$HERE/packages.txt" "$HERE/rootfs" --extra "$SUITE" --extra "$MIRROR")
ROOTFS_TAR=$CACHE/rootfs-$ROOTFS_KEY.tar.zst
if [ "$REBUILD_ROOTFS" = 1 ] || [ ! -f "$ROOTFS_TAR" ]; then
  step "rootfs: debootstrap $SUITE from $MIRROR (cache miss: $ROOTFS_TAR)"
  mkdir -p "$CHROOT"
  debootstrap --variant=minbase "$SUITE" "$CHROOT" "$MIRROR" > "$WORK/debootstrap.log" 2>&1 || {
    tail -30 "$WORK/debootstrap.log" >&2; exit 1; }
  cp -a "$HERE/rootfs/." "$CHROOT/"
  cat > "$CHROOT/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb ${MIRROR%/debian}/debian-security $SUITE-security main
EOF
  printf '#!/bin/sh\nexit 101\n' > "$CHROOT/usr/sbin/policy-rc.d"; chmod 755 "$CHROOT/usr/sbin/policy-rc.d"
  bind_mounts
  step "rootfs: apt-get install $(echo "$PACKAGES" | wc -w) packages"
  in_chroot apt-get update -q > "$WORK/apt.log" 2>&1 || { tail -30 "$WORK/apt.log" >&2; exit 1; }
  # shellcheck disable=SC2086
  in_chroot apt-get install -y -q --no-install-recommends $PACKAGES >> "$WORK/apt.log" 2>&1 || {
    tail -40 "$WORK/apt.log" >&2; exit 1; }
  # Kernel module trees a wiping station never needs (no firmware is shipped for them either).
  for kdir in "$CHROOT"/lib/modules/*/kernel; do
    rm -rf "$kdir"/sound "$kdir"/drivers/media "$kdir"/drivers/net/wireless "$kdir"/drivers/bluetooth \
           "$kdir"/drivers/infiniband "$kdir"/drivers/staging "$kdir"/drivers/iio "$kdir"/net/wireless \
           "$kdir"/net/mac80211 "$kdir"/net/bluetooth
  done
  KVER=$(basename "$(ls -d "$CHROOT"/lib/modules/*)")
  in_chroot depmod "$KVER"
  in_chroot update-initramfs -u -k "$KVER" >> "$WORK/apt.log" 2>&1
  in_chroot apt-get clean
  rm -rf "$CHROOT"/var/lib/apt/lists/* "$CHROOT"/var/cache/apt/*.bin "$CHROOT"/var/log/*.log
  rm -f "$CHROOT/usr/sbin/policy-rc.d"
  unbind_mounts
  step "rootfs: saving $ROOTFS_TAR"
  tar -C "$CHROOT" --numeric-owner --xattrs -cf - . | zstd -q -T0 -3 -o "$ROOTFS_TAR.tmp"
  mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
  find "$CACHE" -maxdepth 1 -name 'rootfs-*.tar.zst' ! -name "rootfs-$ROOTFS_KEY.tar.zst" -delete
  rm -rf --one-file-system "$CHROOT"
fi

# -- 2. wheels ---------------------------------------------------------------------------------------
DEPS_KEY=$(helper key "$REPO/pyproject.toml")
WHEELS=$CACHE/wheels-$DEPS_KEY
if [ ! -d "$WHEELS" ]; then
  step "wheels: dependencies from PyPI (cache miss: $WHEELS)"
  rm -rf "$WHEELS.tmp"; mkdir -p "$WHEELS.tmp"
  # The live system runs Debian bookworm's python3.11 on x86_64: binary wheels for exactly that.
  python3 -m pip download -q --only-binary=:all: --python-version 3.11 --implementation cp --abi cp311 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 \
    --platform any -d "$WHEELS.tmp" \
    $(python3 - "$REPO/pyproject.toml" <<'PY'
import sys, tomllib
print(" ".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))
PY
) pip setuptools wheel
  mv "$WHEELS.tmp" "$WHEELS"
  find "$CACHE" -maxdepth 1 -name 'wheels-*' -type d ! -name "wheels-$DEPS_KEY" -exec rm -rf {} +
fi
step "wheels: the station from $REPO"
mkdir -p "$WORK/wheels"
# A fixed SOURCE_DATE_EPOCH makes the wheel byte-identical for the same sources (zip timestamps), so
# the system image below is reused when only the GRUB variant changes.
SOURCE_DATE_EPOCH=315532800 python3 -m pip wheel -q --no-deps -w "$WORK/wheels" "$REPO" > "$WORK/wheel.log" 2>&1 || {
  tail -20 "$WORK/wheel.log" >&2; exit 1; }
rm -rf "$REPO/build"
STATION_WHEEL=$(ls "$WORK"/wheels/tabula_station-*.whl)

COMMIT=$(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)
DIRTY_FLAG=()
if [ -n "$(git -C "$REPO" status --porcelain -- host station erase certs diagnostics pyproject.toml 2>/dev/null)" ]; then
  DIRTY_FLAG=(--dirty)
fi
SYSTEM_KEY=$(helper key "$HERE/build.sh" "$HERE/overlay" "$HERE/masked-units.txt" "$HERE/tabula_image.py" "$WHEELS" "$STATION_WHEEL" \
  --extra "$ROOTFS_KEY")
SQUASHFS=$CACHE/filesystem-$SYSTEM_KEY.squashfs
MANIFEST_CACHE=$CACHE/manifest-$SYSTEM_KEY.json
KERNEL_CACHE=$CACHE/kernel-$ROOTFS_KEY

# -- 3. system -----------------------------------------------------------------------------------------
if [ ! -f "$SQUASHFS" ] || [ ! -f "$MANIFEST_CACHE" ] || [ ! -f "$KERNEL_CACHE/vmlinuz" ]; then
  step "system: unpacking the rootfs"
  mkdir -p "$CHROOT"
  zstd -q -d -c "$ROOTFS_TAR" | tar -C "$CHROOT" --numeric-owner --xattrs -xf -
  bind_mounts
  step "system: installing the station into /opt/tabula (no index: wheels from the host)"
  mkdir -p "$CHROOT/tmp/wheels"
  cp "$WHEELS"/*.whl "$STATION_WHEEL" "$CHROOT/tmp/wheels/"
  in_chroot python3 -m venv /opt/tabula
  in_chroot /opt/tabula/bin/pip install -q --no-index --find-links /tmp/wheels --upgrade pip setuptools wheel
  in_chroot /opt/tabula/bin/pip install -q --no-index --find-links /tmp/wheels "/tmp/wheels/$(basename "$STATION_WHEEL")"
  # Only pip's own tools need them; setuptools' distutils-precedence.pth runs at every Python start.
  in_chroot /opt/tabula/bin/pip uninstall -q -y setuptools wheel
  in_chroot /opt/tabula/bin/python -c "import host.drives, station.cli, station.autorun, station.tui, certs.cli, erase.engine"
  rm -rf "$CHROOT/tmp/wheels"
  # Bytecode for everything the station imports, so nothing is compiled (or written) at boot.
  in_chroot /opt/tabula/bin/python -m compileall -q /opt/tabula/lib > /dev/null

  step "system: overlay and services"
  cp -a "$HERE/overlay/." "$CHROOT/"
  ( cd "$HERE/overlay" && find . -mindepth 1 -print0 ) | ( cd "$CHROOT" && xargs -0 chown -h 0:0 )
  # The console session imports the station by module name: a renamed module fails here, not at boot.
  in_chroot /opt/tabula/bin/python /usr/local/lib/tabula/console_session.py --check
  echo tabula > "$CHROOT/etc/hostname"
  printf '127.0.0.1\tlocalhost\n127.0.1.1\ttabula\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$CHROOT/etc/hosts"
  # systemd-resolved orders itself before sysinit.target (for early-boot services that need DNS: this
  # image has none), so every login waited for its start (~5 s under emulation).  The image's copy of
  # Debian's unit only drops that ordering; it starts in parallel and is up long before a sync.
  RESOLVED_UNIT=$CHROOT/usr/lib/systemd/system/systemd-resolved.service
  sed -e '/^Before=/s/sysinit\.target *//' -e 's/^WantedBy=sysinit\.target$/WantedBy=multi-user.target/' \
    "$RESOLVED_UNIT" > "$CHROOT/etc/systemd/system/systemd-resolved.service"
  if grep -q 'sysinit\.target' "$CHROOT/etc/systemd/system/systemd-resolved.service" \
     || cmp -s "$RESOLVED_UNIT" "$CHROOT/etc/systemd/system/systemd-resolved.service"; then
    echo "build.sh: Debian's systemd-resolved.service changed: revisit its override" >&2; exit 1
  fi
  rm -f "$CHROOT/etc/systemd/system/sysinit.target.wants/systemd-resolved.service"
  in_chroot systemctl enable tabula-data.service tabula-boottrace.service systemd-networkd.service systemd-resolved.service \
    > /dev/null 2>&1
  # shellcheck disable=SC2046
  in_chroot systemctl mask $(helper units "$HERE/masked-units.txt") > /dev/null 2>&1
  ln -sf /run/systemd/resolve/stub-resolv.conf "$CHROOT/etc/resolv.conf"
  # No password: only the autologin consoles get a shell; nothing listens on the network.
  in_chroot passwd -l root > /dev/null
  : > "$CHROOT/etc/machine-id"

  step "system: manifest"
  in_chroot dpkg-query -W -f='${Package}\t${Version}\t${Architecture}\n' > "$WORK/dpkg.txt"
  in_chroot /opt/tabula/bin/pip freeze --all > "$WORK/freeze.txt"
  KVER=$(basename "$(ls -d "$CHROOT"/lib/modules/*)")
  helper manifest --dpkg "$WORK/dpkg.txt" --freeze "$WORK/freeze.txt" --commit "$COMMIT" "${DIRTY_FLAG[@]}" \
    --mirror "$MIRROR" --suite "$SUITE" --kernel "$KVER" --built-at "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    --rootfs-key "$ROOTFS_KEY" > "$WORK/manifest.json"
  mkdir -p "$CHROOT/usr/share/tabula"
  cp "$WORK/manifest.json" "$CHROOT/usr/share/tabula/manifest.json"
  unbind_mounts
  rm -rf "$KERNEL_CACHE"; mkdir -p "$KERNEL_CACHE"
  cp "$CHROOT/boot/vmlinuz-$KVER" "$KERNEL_CACHE/vmlinuz"
  cp "$CHROOT/boot/initrd.img-$KVER" "$KERNEL_CACHE/initrd.img"
  find "$CACHE" -maxdepth 1 -name 'kernel-*' -type d ! -name "kernel-$ROOTFS_KEY" -exec rm -rf {} +

  step "system: mksquashfs (zstd)"
  rm -f "$SQUASHFS.tmp"
  mksquashfs "$CHROOT" "$SQUASHFS.tmp" -comp zstd -Xcompression-level 15 -noappend -no-progress \
    -processors "$(nproc)" -wildcards -e 'boot/*' 'proc/*' 'sys/*' 'dev/*' 'run/*' 'tmp/*' > "$WORK/mksquashfs.log"
  mv "$SQUASHFS.tmp" "$SQUASHFS"
  # Keep one system image in the cache: each is ~180 MB.
  find "$CACHE" -maxdepth 1 \( -name 'filesystem-*.squashfs' -o -name 'manifest-*.json' \) \
    ! -name "filesystem-$SYSTEM_KEY.squashfs" ! -name "manifest-$SYSTEM_KEY.json" -delete
  # The manifest names the squashfs it describes.
  helper manifest --dpkg "$WORK/dpkg.txt" --freeze "$WORK/freeze.txt" --commit "$COMMIT" "${DIRTY_FLAG[@]}" \
    --mirror "$MIRROR" --suite "$SUITE" --kernel "$KVER" \
    --built-at "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["built_at"])' "$WORK/manifest.json")" \
    --rootfs-key "$ROOTFS_KEY" --squashfs "$SQUASHFS" > "$MANIFEST_CACHE"
  rm -rf --one-file-system "$CHROOT"
else
  step "system: cached $SQUASHFS"
fi

# -- 4. iso ------------------------------------------------------------------------------------------
NAME=tabula${VARIANT:+-$VARIANT}
ISO_DIR=$WORK/iso
mkdir -p "$ISO_DIR/live" "$ISO_DIR/boot/grub"
ln "$SQUASHFS" "$ISO_DIR/live/filesystem.squashfs" 2>/dev/null || cp "$SQUASHFS" "$ISO_DIR/live/filesystem.squashfs"
cp "$KERNEL_CACHE/vmlinuz" "$ISO_DIR/live/vmlinuz"
cp "$KERNEL_CACHE/initrd.img" "$ISO_DIR/live/initrd.img"
helper grub-cfg --append "$APPEND" "${TIMEOUT[@]}" > "$ISO_DIR/boot/grub/grub.cfg"
cp "$MANIFEST_CACHE" "$ISO_DIR/tabula-manifest.json"
printf 'Tabula boot medium: the station never offers a disk carrying this file for erasure.\n' > "$ISO_DIR/.tabula-boot"
mkdir -p "$ISO_DIR/.disk"
printf 'Tabula live image\n' > "$ISO_DIR/.disk/info"  # Debian's signed CD GRUB finds the medium by it
step "iso: grub-mkrescue"
grub-mkrescue -o "$WORK/mkrescue.iso" "$ISO_DIR" -- -volid TABULA > "$WORK/grub-mkrescue.log" 2>&1 || {
  tail -20 "$WORK/grub-mkrescue.log" >&2; exit 1; }

# -- 5. Secure Boot ----------------------------------------------------------------------------------
# grub-mkrescue's EFI loader is unsigned: firmware with Secure Boot on (most PCs since 2012) refuses it.
# Debian's shim is signed by the Microsoft UEFI CA and trusts Debian's GRUB and kernel; the CD build
# of GRUB (gcdx64) searches for /.disk/info and reads /boot/grub/grub.cfg.
EFI_PKGS=(shim-signed shim-helpers-amd64-signed grub-efi-amd64-signed)
EFI_VERSIONS=$(for p in "${EFI_PKGS[@]}"; do apt-cache policy "$p" | awk -v p="$p" '/Candidate:/ {print p "=" $2}'; done)
if [ "$(echo "$EFI_VERSIONS" | grep -c '=[0-9]')" -ne ${#EFI_PKGS[@]} ]; then
  echo "build.sh: apt cannot find ${EFI_PKGS[*]} (run apt-get update): got: $EFI_VERSIONS" >&2; exit 1
fi
EFI_CACHE=$CACHE/efi-signed-$(echo "$EFI_VERSIONS" | sha256sum | cut -c1-24)
if [ ! -f "$EFI_CACHE/versions.txt" ]; then
  step "secure boot: apt-get download ${EFI_PKGS[*]}"
  rm -rf "$EFI_CACHE.tmp" && mkdir -p "$EFI_CACHE.tmp/debs"
  ( cd "$EFI_CACHE.tmp/debs" && apt-get download -q $(echo "$EFI_VERSIONS") > /dev/null )
  for deb in "$EFI_CACHE.tmp"/debs/*.deb; do dpkg-deb -x "$deb" "$EFI_CACHE.tmp/root"; done
  echo "$EFI_VERSIONS" > "$EFI_CACHE.tmp/versions.txt"
  rm -rf "$EFI_CACHE" && mv "$EFI_CACHE.tmp" "$EFI_CACHE"
fi
step "iso: EFI boot image with the signed shim + GRUB -> $OUT/$NAME.iso"
EFI_IMG=$WORK/efi.img
truncate -s 8M "$EFI_IMG"
mkfs.vfat -n TABULA-EFI "$EFI_IMG" > /dev/null
mmd -i "$EFI_IMG" ::/EFI ::/EFI/BOOT
mcopy -i "$EFI_IMG" "$EFI_CACHE/root/usr/lib/shim/shimx64.efi.signed" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$EFI_IMG" "$EFI_CACHE/root/usr/lib/shim/mmx64.efi.signed" ::/EFI/BOOT/mmx64.efi
mcopy -i "$EFI_IMG" "$EFI_CACHE/root/usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed" ::/EFI/BOOT/grubx64.efi
TREE=$WORK/isotree
osirrox -indev "$WORK/mkrescue.iso" -extract / "$TREE" > "$WORK/osirrox.log" 2>&1 || {
  tail -20 "$WORK/osirrox.log" >&2; exit 1; }
chmod -R u+w "$TREE"
cp "$EFI_IMG" "$TREE/efi.img"
cp "$EFI_CACHE/versions.txt" "$TREE/.disk/efi-signed-versions.txt"
# grub-mkrescue's own layout (xorriso -report_el_torito as_mkisofs), with the signed EFI image.
xorriso -as mkisofs -o "$OUT/$NAME.iso.tmp" -V TABULA \
  --grub2-mbr "--interval:local_fs:0s-15s:zero_mbrpt,zero_gpt,zero_apm:$WORK/mkrescue.iso" \
  --protective-msdos-label -partition_cyl_align off -partition_offset 0 -partition_hd_cyl 64 \
  -partition_sec_hd 32 -apm-block-size 2048 -hfsplus -efi-boot-part --efi-boot-image \
  -c /boot.catalog -b /boot/grub/i386-pc/eltorito.img -no-emul-boot -boot-load-size 4 -boot-info-table \
  --grub2-boot-info -eltorito-alt-boot -e /efi.img -no-emul-boot "$TREE" > "$WORK/xorriso.log" 2>&1 || {
  tail -20 "$WORK/xorriso.log" >&2; exit 1; }
rm -f "$WORK/mkrescue.iso"
mv "$OUT/$NAME.iso.tmp" "$OUT/$NAME.iso"
cp "$MANIFEST_CACHE" "$OUT/$NAME.manifest.json"
SIZE=$(stat -c %s "$OUT/$NAME.iso")
( cd "$OUT" && sha256sum "$NAME.iso" > "$NAME.iso.sha256" )
step "done: $OUT/$NAME.iso ($((SIZE / 1000000)) MB), manifest $OUT/$NAME.manifest.json"
if [ "$SIZE" -gt "$MAX_ISO_BYTES" ]; then
  echo "build.sh: the ISO is larger than the 300 MB target ($SIZE bytes)" >&2
  exit 1
fi
