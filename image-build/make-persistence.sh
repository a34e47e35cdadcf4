#!/usr/bin/env bash
# Add the persistence partition to a Tabula stick: an ext4 partition labelled TABULA-DATA after the
# ISO image, using the rest of the stick (or --size).  At boot it is mounted on /var/lib/tabula and
# keeps the station key, settings, journals, certificates and the sync outbox.
#
#   sudo image-build/make-persistence.sh /dev/sdX [--size 4G] [--yes]
#
# The stick must already hold the image (dd if=tabula.iso of=/dev/sdX bs=4M conv=fsync).  Only the
# partition tables (protective MBR and GPT, in the image's first 32 KiB, outside the ISO 9660 file
# system) and the space after the image are written: the boot files are left byte for byte as they
# were.  On a stick that already has a TABULA-DATA partition it refuses.
set -euo pipefail

DEV=""
SIZE=""
YES=0
while [ $# -gt 0 ]; do
  case "$1" in
    --size) SIZE=$2; shift 2 ;;
    --yes) YES=1; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    -*) echo "make-persistence: unknown option $1" >&2; exit 2 ;;
    *) DEV=$1; shift ;;
  esac
done
die() { echo "make-persistence: $*" >&2; exit 2; }
[ -n "$DEV" ] || die "usage: $0 /dev/sdX [--size 4G] [--yes]"
[ "$(id -u)" -eq 0 ] || die "needs root"
[ -b "$DEV" ] || die "$DEV is not a block device"
[ "$(lsblk -dno TYPE "$DEV")" = "disk" ] || [ "$(lsblk -dno TYPE "$DEV")" = "loop" ] || \
  die "$DEV is not a whole disk (give /dev/sdX, not a partition)"
if lsblk -nro MOUNTPOINT "$DEV" | grep -q .; then
  die "$DEV has mounted filesystems: unmount them first"
fi
if [ "$(blkid -o value -s LABEL "$DEV" 2>/dev/null || true)" != "TABULA" ]; then
  die "$DEV does not hold the Tabula image (no ISO volume labelled TABULA): write tabula.iso to it first"
fi
for p in $(lsblk -nrpo NAME "$DEV" | tail -n +2); do
  if [ "$(blkid -o value -s LABEL "$p" 2>/dev/null || true)" = "TABULA-DATA" ]; then
    die "$DEV already has a TABULA-DATA partition ($p)"
  fi
done

SECTOR=512
DISK_BYTES=$(blockdev --getsize64 "$DEV")
# End of the image: the larger of the ISO9660 volume and the image's own GPT (its backup header).
ISO_BYTES=$(isosize "$DEV")
GPT_LAST=$(sfdisk -d "$DEV" 2>/dev/null | sed -n 's/^last-lba: *//p')
IMAGE_END=$ISO_BYTES
if [ -n "$GPT_LAST" ]; then
  GPT_END=$(( (GPT_LAST + 1 + 33) * SECTOR ))
  [ "$GPT_END" -gt "$IMAGE_END" ] && IMAGE_END=$GPT_END
fi
MIB=$((1024 * 1024))
START=$(( (IMAGE_END + 2 * MIB - 1) / MIB * MIB ))   # 1 MiB aligned, at least 1 MiB after the image
AVAILABLE=$(( DISK_BYTES - START - MIB ))            # the backup GPT goes at the very end
[ "$AVAILABLE" -ge $((16 * MIB)) ] || die "not enough room after the image on $DEV (need 16 MiB)"
if [ -n "$SIZE" ]; then
  WANT=$(numfmt --from=iec "$SIZE")
  [ "$WANT" -le "$AVAILABLE" ] || die "--size $SIZE does not fit ($((AVAILABLE / MIB)) MiB free after the image)"
else
  WANT=$AVAILABLE
fi

echo "$DEV: image ends at $((IMAGE_END / MIB)) MiB; TABULA-DATA will be $((WANT / MIB)) MiB from $((START / MIB)) MiB."
if [ "$YES" != 1 ]; then
  printf 'Everything after the image on %s is lost.  Type the device name (%s) to go on: ' "$DEV" "$DEV"
  read -r answer
  [ "$answer" = "$DEV" ] || die "not confirmed: nothing was written"
fi

# The image's GPT describes a disk the size of the image: move its backup to the end of the stick,
# then append the partition.
sfdisk -q --relocate gpt-bak-std "$DEV"
printf 'start=%s, size=%s, type=linux, name=TABULA-DATA\n' $((START / SECTOR)) $((WANT / SECTOR)) |
  sfdisk -q --append --no-reread --wipe never "$DEV"
partx -u "$DEV" 2>/dev/null || partx -a "$DEV" 2>/dev/null || true
udevadm settle 2>/dev/null || true
PART=""
for _ in 1 2 3 4 5 6 7 8 9 10; do
  PART=$(lsblk -nrpo NAME,START -x START "$DEV" 2>/dev/null | awk -v s=$((START / SECTOR)) '$2 == s {print $1}' | head -1)
  [ -n "$PART" ] && [ -b "$PART" ] && break
  sleep 0.5
done
[ -n "$PART" ] && [ -b "$PART" ] || die "the new partition did not appear (re-plug the stick, then: mkfs.ext4 -L TABULA-DATA <partition>)"
mkfs.ext4 -q -F -L TABULA-DATA -m 0 "$PART"
echo "done: $PART (ext4, TABULA-DATA) will be mounted on /var/lib/tabula at boot."
