"""Root without its override of file modes, for a block: so a test of an unreadable file runs as root too.

Root reads a file whatever its mode because its effective capabilities include CAP_DAC_OVERRIDE
and CAP_DAC_READ_SEARCH. A process may take capabilities out of its effective set and put them
back later as long as they stay in its permitted set, which needs no privilege; so the block runs
with the kernel checking modes for root as for anyone, and nothing else of the test run changes.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from contextlib import contextmanager

#: <linux/capability.h>
_VERSION_3 = 0x20080522
CAP_DAC_OVERRIDE = 1
CAP_DAC_READ_SEARCH = 2
_MODE_OVERRIDES = (1 << CAP_DAC_OVERRIDE) | (1 << CAP_DAC_READ_SEARCH)


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


_libc = ctypes.CDLL(None, use_errno=True)


def _call(name: str, header: _Header, data: ctypes.Array[_Data]) -> None:
    if getattr(_libc, name)(ctypes.byref(header), data) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{name}: {os.strerror(errno)}")


def _effective() -> tuple[_Header, ctypes.Array[_Data]]:
    header, data = _Header(_VERSION_3, 0), (_Data * 2)()
    _call("capget", header, data)
    return header, data


def _set_effective(mask: int) -> None:
    header, data = _effective()
    data[0].effective = mask
    _call("capset", header, data)


@contextmanager
def file_modes_enforced() -> Iterator[None]:
    """Within the block this thread (capabilities are per thread) cannot read or search past a
    file's mode, even as root."""
    _, data = _effective()
    before = data[0].effective
    if not before & _MODE_OVERRIDES:
        yield  # not root, or root without them already: modes are enforced as they are
        return
    _set_effective(before & ~_MODE_OVERRIDES)
    try:
        yield
    finally:
        _set_effective(before)
