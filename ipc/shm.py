"""POSIX shared-memory segments: create (writer), attach (readers), unlink, crash cleanup, and
the segment header every seqlock and ring starts with.

Names are `mm.<instance>.<writer>.<what>` (see `segment_name`); on Linux a segment is the file
`/dev/shm/<name>`. The creating process registers its segment with multiprocessing's resource
tracker (so a crashed writer's segment is unlinked when its tracker exits); an attaching process
never registers, because on Python < 3.13 the attacher's own tracker would unlink the segment
when the attacher exits (3.13 adds `track=False`).
"""

from __future__ import annotations

import logging
import os
import platform
import sys
import threading
from multiprocessing import resource_tracker
from multiprocessing.shared_memory import SharedMemory

import _posixshmem
import numpy as np

from ipc import shm_layout
from mm.errors import LayoutMismatchError, SegmentNotReadyError

log = logging.getLogger(__name__)

SHM_DIR = "/dev/shm"
STRONG_MEMORY_MACHINES = frozenset({"x86_64", "AMD64"})

_created_here: set[str] = set()  # names this process created and registered with its tracker
_attach_lock = threading.Lock()


def segment_prefix(instance: str) -> str:
    """What every segment of one pipeline instance starts with (cleanup_segments takes it)."""
    return f"mm.{instance}."


def segment_name(instance: str, writer: str, what: str) -> str:
    return f"{segment_prefix(instance)}{writer}.{what}"


def check_memory_model(name: str, allow_weak_memory: bool) -> None:
    """The seqlock and ring rely on x86-64 store order (TSO) and untorn aligned 8-byte stores;
    CPython exposes no fences, so on a weakly ordered CPU (ARM, POWER) a reader may see a
    torn snapshot with a stable seq."""
    machine = platform.machine()
    if machine in STRONG_MEMORY_MACHINES or allow_weak_memory:
        return
    raise RuntimeError(
        f"shm {name}: refusing to use shared memory on {machine!r}: the seqlock and ring need "
        f"x86-64 store ordering (CPython has no memory fences); pass allow_weak_memory=True "
        f"only if you accept possibly torn reads"
    )


def create_segment(name: str, size: int) -> SharedMemory:
    """Create `name` zero-filled; a segment of that name left by a crashed run is unlinked first."""
    try:
        shm = SharedMemory(name=name, create=True, size=size)
    except FileExistsError:
        log.warning("shm %s: unlinking a segment left by an earlier run", name)
        unlink_segment(name)
        shm = SharedMemory(name=name, create=True, size=size)
    _created_here.add(name)
    return shm


def attach_segment(name: str, *, allow_weak_memory: bool = False) -> SharedMemory:
    """Map an existing segment without registering it with this process's resource tracker."""
    check_memory_model(name, allow_weak_memory)
    if sys.version_info >= (3, 13):
        return SharedMemory(name=name, track=False)
    posix_name = "/" + name
    with _attach_lock:  # serialises our own patching; other threads' registrations pass through
        register = resource_tracker.register
        attaching_thread = threading.get_ident()

        def register_except_this_attach(resource: str, rtype: str) -> None:
            if resource == posix_name and threading.get_ident() == attaching_thread:
                return
            register(resource, rtype)

        resource_tracker.register = register_except_this_attach
        try:
            return SharedMemory(name=name)
        finally:
            resource_tracker.register = register


def unlink_segment(name: str) -> None:
    """Remove `name` from the namespace (mappings stay valid until closed); quiet if gone."""
    try:
        _posixshmem.shm_unlink("/" + name)
    except FileNotFoundError:
        pass
    if name in _created_here:
        _created_here.discard(name)
        resource_tracker.unregister("/" + name, "shared_memory")


def cleanup_segments(prefix: str) -> list[str]:
    """Unlink every `/dev/shm/<prefix>*` (leftovers of a crashed pipeline); return their names."""
    if not prefix:
        raise ValueError("'prefix' must not be empty, was ''")
    try:
        names = sorted(n for n in os.listdir(SHM_DIR) if n.startswith(prefix))
    except FileNotFoundError:
        return []
    for name in names:
        log.warning("shm %s: removing leftover segment", name)
        unlink_segment(name)
    return names


# ---- segment header -------------------------------------------------------------------------


def write_header(shm: SharedMemory, kind: int, capacity: int, dtype: np.dtype) -> None:
    """Fill the header of a freshly created segment; magic goes last, so a reader that attaches
    mid-creation sees magic 0 (SegmentNotReadyError) and tries again later."""
    header = np.ndarray((1,), shm_layout.HEADER_DTYPE, buffer=shm.buf, offset=0)
    header["version"] = shm_layout.LAYOUT_VERSION
    header["kind"] = kind
    header["capacity"] = capacity
    header["itemsize"] = dtype.itemsize
    header["fingerprint"] = shm_layout.layout_fingerprint(dtype)
    header["layout"] = shm_layout.layout_name(dtype).encode("ascii")
    header["magic"] = shm_layout.MAGIC
    del header


def check_header(shm: SharedMemory, name: str, kind: int, dtype: np.dtype) -> int:
    """Raise LayoutMismatchError naming the segment and the first mismatch; return capacity."""
    if shm.size < shm_layout.BODY_OFFSET:
        raise LayoutMismatchError(
            f"shm {name}: segment is {shm.size} bytes, smaller than the "
            f"{shm_layout.BODY_OFFSET}-byte header"
        )
    header = np.ndarray((1,), shm_layout.HEADER_DTYPE, buffer=shm.buf, offset=0)[0].item()
    magic, version, found_kind, capacity, itemsize, fingerprint, layout = header
    expected_layout = shm_layout.layout_name(dtype)
    found_layout = layout.decode("ascii", "replace")
    mismatches = [
        ("magic", hex(magic), hex(shm_layout.MAGIC)),
        ("layout version", version, shm_layout.LAYOUT_VERSION),
        ("kind", shm_layout.KIND_NAMES.get(found_kind, found_kind), shm_layout.KIND_NAMES[kind]),
        ("layout name", repr(found_layout), repr(expected_layout)),
        ("itemsize", itemsize, dtype.itemsize),
        ("field fingerprint", hex(fingerprint), hex(shm_layout.layout_fingerprint(dtype))),
    ]
    if magic == 0:  # write_header puts magic last
        raise SegmentNotReadyError(f"shm {name}: magic is 0x0, expected {hex(shm_layout.MAGIC)} (its writer is "
                                   "still creating it)")
    for what, found, expected in mismatches:
        if found != expected:
            raise LayoutMismatchError(f"shm {name}: {what} is {found}, expected {expected}")
    return int(capacity)
