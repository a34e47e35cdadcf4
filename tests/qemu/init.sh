#!/bin/sh
# /init of the Tabula QEMU lab guest (busybox sh, runs as PID 1 from the initramfs).
#
# 1. mounts the pseudo file systems, loads the storage modules listed in /etc/tabula/modules,
#    starts udev so lsblk and /dev/disk/by-id look as they do on a real live system;
# 2. reads the job from QEMU's fw_cfg (opt/tabula/job, written by tests/qemu/guest.py);
# 3. waits until every disk serial the job names is visible, then runs each command;
# 4. reports everything on the second serial port (ttyS1) in a line protocol where every
#    payload is base64, so no output can be confused with a delimiter:
#       @@T DEV <serial> <block name> <controller name or ->
#       @@T BEGIN <i>   @@T ARG / OUT / ERR (followed by base64 lines)
#       @@T RC <code>   @@T TIME <start> <end> (seconds since boot)   @@T END <i>
#       @@T DONE
# 5. powers off.  Any failure of this script itself ends in a kernel panic (init exits),
#    which QEMU turns into an exit thanks to -no-reboot and panic=-1.
#
# Job format (text, one item per line, arguments verbatim, never through a shell):
#    wait <serial>            a disk the commands need (repeatable)
#    settle <seconds>         how long to wait for those disks
#    cmd <argc> <timeout>     followed by <argc> lines, one argument each
# An argument of the form @disk:SERIAL@ becomes the block device of that serial
# (/dev/sdX, /dev/nvmeXnY); @ctrl:SERIAL@ becomes the NVMe controller (/dev/nvmeX).

export PATH=/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/tabula-busybox
export LC_ALL=C LANG=C HOME=/root

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /run /tmp /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp

stty -F /dev/ttyS1 raw -echo 2>/dev/null
exec 3>/dev/ttyS1
emit() { printf '%s\n' "$*" >&3; }
emit_b64() { base64 "$1" >&3; }

emit "@@T HELLO $(uname -r)"

# Modules, in dependency order (the list was computed on the host from modules.dep).
while read -r mod; do
    [ -n "$mod" ] || continue
    insmod "/lib/modules/$mod" 2>>/tmp/insmod.log || echo "insmod failed: $mod" >>/tmp/insmod.log
done </etc/tabula/modules

if [ -x /usr/lib/systemd/systemd-udevd ]; then
    mkdir -p /run/udev
    /usr/lib/systemd/systemd-udevd --daemon --resolve-names=never 2>>/tmp/udev.log
    udevadm trigger --type=subsystems --action=add 2>>/tmp/udev.log
    udevadm trigger --type=devices --action=add 2>>/tmp/udev.log
    udevadm settle --timeout=30 2>>/tmp/udev.log
fi

JOB=/sys/firmware/qemu_fw_cfg/by_name/opt/tabula/job/raw
if [ ! -r "$JOB" ]; then
    emit "@@T FATAL no job in fw_cfg (opt/tabula/job)"
    poweroff -f
fi
cat "$JOB" >/tmp/job

# Serial -> kernel name.  Serials are restricted to [A-Za-z0-9._-] by guest.py.
serial_of() {
    s=""
    if command -v udevadm >/dev/null 2>&1; then
        s=$(udevadm info --query=property --name="/dev/$1" 2>/dev/null | sed -n 's/^ID_SERIAL_SHORT=//p')
    fi
    if [ -z "$s" ] && [ -r "/sys/class/block/$1/device/serial" ]; then
        s=$(tr -d ' ' <"/sys/class/block/$1/device/serial")
    fi
    if [ -z "$s" ] && [ -r "/sys/class/block/$1/device/vpd_pg80" ]; then
        # 4-byte page header, then the serial (possibly space padded).
        s=$(tail -c +5 "/sys/class/block/$1/device/vpd_pg80" | tr -d ' \000')
    fi
    printf '%s' "$s"
}

build_map() {
    : >/tmp/devmap
    for d in /sys/class/block/*; do
        name=${d##*/}
        [ -e "$d/partition" ] && continue
        case "$name" in
        sd* | nvme*n*) ;;
        *) continue ;;
        esac
        s=$(serial_of "$name")
        [ -n "$s" ] || continue
        ctrl=-
        case "$name" in nvme*n*) ctrl=${name%n*} ;; esac
        echo "$s $name $ctrl" >>/tmp/devmap
    done
}

lookup() { # lookup <serial> <column 2|3>
    awk -v s="$1" -v c="$2" '$1 == s { print $c; exit }' /tmp/devmap
}

settle=60
wanted=""
while IFS= read -r line; do
    case "$line" in
    "wait "*) wanted="$wanted ${line#wait }" ;;
    "settle "*) settle=${line#settle } ;;
    esac
done </tmp/job

i=0
while :; do
    build_map
    missing=""
    for s in $wanted; do
        [ -n "$(lookup "$s" 2)" ] || missing="$missing $s"
    done
    [ -z "$missing" ] && break
    i=$((i + 1))
    if [ "$i" -ge "$settle" ]; then
        emit "@@T MISSING$missing"
        break
    fi
    sleep 1
    command -v udevadm >/dev/null 2>&1 && udevadm settle --timeout=5 2>/dev/null
done
while read -r s name ctrl; do emit "@@T DEV $s $name $ctrl"; done </tmp/devmap

resolve() { # resolve <arg>: prints the argument with a @disk:/@ctrl: placeholder replaced
    case "$1" in
    @disk:*@ | @ctrl:*@)
        kind=${1%%:*}
        s=${1#*:}
        s=${s%@}
        if [ "$kind" = "@disk" ]; then n=$(lookup "$s" 2); else n=$(lookup "$s" 3); fi
        if [ -z "$n" ] || [ "$n" = "-" ]; then return 1; fi
        printf '/dev/%s' "$n"
        ;;
    *) printf '%s' "$1" ;;
    esac
}

exec 4</tmp/job
idx=0
while IFS= read -r line <&4; do
    case "$line" in
    "cmd "*) ;;
    *) continue ;;
    esac
    set -- $line
    argc=$2
    limit=$3
    unresolved=""
    set --
    k=0
    while [ "$k" -lt "$argc" ]; do
        IFS= read -r a <&4
        r=$(resolve "$a") || unresolved="$a"
        set -- "$@" "$r"
        k=$((k + 1))
    done
    emit "@@T BEGIN $idx"
    for a in "$@"; do
        emit "@@T ARG"
        printf '%s' "$a" >/tmp/arg
        emit_b64 /tmp/arg
    done
    read -r t0 _ </proc/uptime
    if [ -n "$unresolved" ]; then
        : >/tmp/out
        echo "tabula-lab: no device for $unresolved" >/tmp/err
        rc=127
    else
        timeout -s KILL "$limit" "$@" </dev/null >/tmp/out 2>/tmp/err
        rc=$?
    fi
    read -r t1 _ </proc/uptime
    emit "@@T OUT"
    emit_b64 /tmp/out
    emit "@@T ERR"
    emit_b64 /tmp/err
    emit "@@T RC $rc"
    emit "@@T TIME $t0 $t1"
    emit "@@T END $idx"
    idx=$((idx + 1))
done
exec 4<&-

emit "@@T LOG insmod"
[ -f /tmp/insmod.log ] && emit_b64 /tmp/insmod.log
emit "@@T DONE"
sync
poweroff -f
