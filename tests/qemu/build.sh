#!/bin/sh
# Build (or reuse from tests/qemu/cache/) the QEMU lab guest kernel + initramfs.
# Same as: python3 -m tests.qemu.build [--force] [--cache DIR]
set -eu
cd "$(dirname "$0")/../.."
exec python3 -m tests.qemu.build "$@"
