"""Giving freed memory back to the operating system after a large load.

glibc's allocator keeps what a process frees for its own later use and returns only the top
of the heap. A load that builds a large transient structure and keeps a compact one (the
anti-spam model: a parsed dict of every gram, dropped once the automaton holds them) leaves
that memory resident for the life of the bot: some 25 MB for the shipped model.
`malloc_trim(0)` returns the free pages from anywhere in the heap. Elsewhere (musl, macOS)
it does not exist and this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from functools import cache


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


def resident_mb() -> float:
    """Resident set size of this process, in MB (Linux: /proc)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def return_freed_memory() -> bool:
    """Hand the heap's free pages back to the OS; False where the allocator cannot."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
