"""Raw access to one block device (or, for tests and demos, a regular file), bypassing the page cache.

* Block devices are opened ``O_DIRECT | O_EXCL``: O_DIRECT so that reads come from the drive, never
  the page cache; O_EXCL so that the kernel refuses while anything holds the disk exclusively (a
  mounted filesystem, a RAID or device-mapper member, a swap area): that becomes :class:`DeviceBusy`.
* Sizes come from ``BLKGETSIZE64``, the logical sector from ``BLKSSZGET`` and the physical from
  ``BLKPBSZGET``.  A block device's size is always a multiple of its logical sector.
* Regular files may have any size.  Aligned requests go through an ``O_DIRECT`` descriptor; an
  unaligned tail goes through a second, buffered descriptor (``fdatasync`` covers both).  If the
  filesystem refuses ``O_DIRECT`` (EINVAL), the file is used buffered.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import stat
import struct
from types import TracebackType

from erase.errors import DeviceError

BLKGETSIZE64 = 0x80081272
BLKSSZGET = 0x1268
BLKPBSZGET = 0x127B
BLKROGET = 0x125E

PAGE = mmap.PAGESIZE
FILE_SECTOR = 512  # sector size reported for regular files
FILE_DIO_ALIGN = 4096  # conservative O_DIRECT alignment for regular files


class DeviceBusy(DeviceError):
    """The device is in use (mounted, part of an array, or opened exclusively by another program)."""

    hint = "unmount it or stop what is using it, then try again"


class DeviceReadOnly(DeviceError):
    """The device refuses writes (write-protect switch, read-only loop device, or firmware lock)."""

    hint = "check the write-protect switch or the drive's lock state"


def aligned_buffer(n: int) -> mmap.mmap:
    """A zeroed, page-aligned anonymous buffer of at least ``n`` bytes (usable for O_DIRECT I/O)."""
    if n <= 0:
        raise ValueError("buffer size must be positive")
    return mmap.mmap(-1, -(-n // PAGE) * PAGE)


def _ioctl_u64(fd: int, req: int) -> int:
    buf = fcntl.ioctl(fd, req, b"\0" * 8)
    return int(struct.unpack("Q", buf)[0])


def _ioctl_int(fd: int, req: int) -> int:
    buf = fcntl.ioctl(fd, req, b"\0" * 4)
    return int(struct.unpack("i", buf)[0])


class BlockDevice:
    """An open device.  Use :meth:`open`; close it (or use it as a context manager) when done."""

    def __init__(
        self,
        path: str,
        fd: int,
        *,
        size: int,
        logical_sector_size: int,
        physical_sector_size: int,
        is_block: bool,
        writable: bool,
        direct: bool,
        buffered_fd: int | None,
    ) -> None:
        self.path = path
        self.fd = fd
        self.size = size
        self.logical_sector_size = logical_sector_size
        self.physical_sector_size = physical_sector_size
        self.is_block = is_block
        self.writable = writable
        self.direct = direct
        #: O_DIRECT requests must be aligned (offset, length, buffer address) to this.
        self.dio_align = logical_sector_size if is_block else FILE_DIO_ALIGN
        self._buffered_fd = buffered_fd
        self.closed = False

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, path: str, *, write: bool) -> BlockDevice:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise DeviceError(f"{path} does not exist", hint="the drive may have been unplugged") from None
        except OSError as e:
            raise DeviceError(f"cannot inspect {path}: {e.strerror}") from e
        is_block = stat.S_ISBLK(st.st_mode)
        if not is_block and not stat.S_ISREG(st.st_mode):
            raise DeviceError(f"{path} is neither a block device nor a regular file")
        base = (os.O_RDWR if write else os.O_RDONLY) | os.O_CLOEXEC
        if is_block:
            fd = cls._open_fd(path, base | os.O_DIRECT | os.O_EXCL, write)
            try:
                size = _ioctl_u64(fd, BLKGETSIZE64)
                lss = _ioctl_int(fd, BLKSSZGET)
                pss = _ioctl_int(fd, BLKPBSZGET)
                read_only = _ioctl_int(fd, BLKROGET) != 0
            except OSError as e:
                os.close(fd)
                raise DeviceError(f"cannot query the size of {path}: {e.strerror}") from e
            if write and read_only:
                # The kernel lets a read-only disk be opened for writing; every write would then fail.
                os.close(fd)
                raise DeviceReadOnly(f"{path} is read-only (the kernel reports it write-protected)")
            return cls(
                path,
                fd,
                size=size,
                logical_sector_size=lss,
                physical_sector_size=max(pss, lss),
                is_block=True,
                writable=write,
                direct=True,
                buffered_fd=None,
            )
        buffered = cls._open_fd(path, base, write)
        direct = True
        try:
            fd = os.open(path, base | os.O_DIRECT)
        except OSError as e:
            if e.errno != errno.EINVAL:
                os.close(buffered)
                raise DeviceError(f"cannot open {path}: {e.strerror}") from e
            # This filesystem has no O_DIRECT (e.g. old tmpfs): the file is used buffered.
            fd, direct = os.dup(buffered), False
        return cls(
            path,
            fd,
            size=os.fstat(fd).st_size,
            logical_sector_size=FILE_SECTOR,
            physical_sector_size=FILE_SECTOR,
            is_block=False,
            writable=write,
            direct=direct,
            buffered_fd=buffered,
        )

    @staticmethod
    def _open_fd(path: str, flags: int, write: bool) -> int:
        try:
            return os.open(path, flags)
        except OSError as e:
            if e.errno == errno.EBUSY:
                raise DeviceBusy(
                    f"{path} is in use: mounted, part of a RAID/LVM/device-mapper, or opened by another program"
                ) from e
            if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM) and write:
                raise DeviceReadOnly(f"{path} cannot be opened for writing: {e.strerror}") from e
            if e.errno in (errno.ENOENT, errno.ENXIO, errno.ENODEV, errno.ENOMEDIUM):
                raise DeviceError(
                    f"{path} is not available: {e.strerror}", hint="the drive may have been unplugged"
                ) from e
            raise DeviceError(f"cannot open {path}: {e.strerror}") from e

    # ------------------------------------------------------------------ I/O
    def _fd_for(self, offset: int, length: int, buf: memoryview) -> int:
        if self.direct and offset % self.dio_align == 0 and length % self.dio_align == 0:
            return self.fd
        if self._buffered_fd is None:
            raise DeviceError(
                f"unaligned I/O at offset {offset} length {length} on block device {self.path} "
                f"(logical sector {self.logical_sector_size})"
            )
        return self._buffered_fd

    def _split(self, offset: int, length: int) -> list[tuple[int, int]]:
        """Split a request into an O_DIRECT-aligned head and an unaligned tail (regular files only)."""
        if self.is_block or not self.direct:
            return [(offset, length)]
        head = (length // self.dio_align) * self.dio_align if offset % self.dio_align == 0 else 0
        parts = []
        if head:
            parts.append((offset, head))
        if length - head:
            parts.append((offset + head, length - head))
        return parts

    def pwrite(self, buf: memoryview, offset: int) -> int:
        """Write all of ``buf`` at ``offset`` (looping over short writes).  Raises OSError on error."""
        length = buf.nbytes
        if offset < 0 or offset + length > self.size:
            raise ValueError(f"write [{offset}, {offset + length}) outside device of {self.size} bytes")
        for off, n in self._split(offset, length):
            rel = off - offset
            done = 0
            while done < n:
                view = buf[rel + done : rel + n]
                w = os.pwrite(self._fd_for(off + done, n - done, view), view, off + done)
                if w <= 0:
                    raise OSError(errno.EIO, f"short write: 0 of {n - done} bytes at offset {off + done}")
                done += w
        return length

    def pread_into(self, buf: memoryview, offset: int) -> int:
        """Fill all of ``buf`` from ``offset`` (looping over short reads).  Raises OSError on error."""
        length = buf.nbytes
        if offset < 0 or offset + length > self.size:
            raise ValueError(f"read [{offset}, {offset + length}) outside device of {self.size} bytes")
        for off, n in self._split(offset, length):
            rel = off - offset
            done = 0
            while done < n:
                view = buf[rel + done : rel + n]
                r = os.preadv(self._fd_for(off + done, n - done, view), [view], off + done)
                if r <= 0:
                    raise OSError(errno.EIO, f"short read: 0 of {n - done} bytes at offset {off + done}")
                done += r
        return length

    def fdatasync(self) -> None:
        """Make everything written so far durable (on a block device this flushes the drive cache)."""
        os.fdatasync(self.fd)
        if self._buffered_fd is not None:
            os.fdatasync(self._buffered_fd)

    def current_size(self) -> int:
        """The size the kernel reports now (0 when a drive was removed under us)."""
        if self.is_block:
            return _ioctl_u64(self.fd, BLKGETSIZE64)
        return os.fstat(self.fd).st_size

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        os.close(self.fd)
        if self._buffered_fd is not None:
            os.close(self._buffered_fd)

    def __enter__(self) -> BlockDevice:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        kind = "block" if self.is_block else "file"
        return (
            f"BlockDevice({self.path!r}, {kind}, size={self.size}, "
            f"sector={self.logical_sector_size}/{self.physical_sector_size})"
        )
