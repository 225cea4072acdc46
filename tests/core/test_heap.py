"""Freed heap handed back to the OS after a large load (`bot.core.heap`)."""

from __future__ import annotations

import platform
import sys

import pytest

from bot.core.heap import resident_mb, return_freed_memory, share_one_arena

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="reads /proc; glibc's malloc_trim")
def test_freed_heap_goes_back_after_a_load() -> None:
    # Chunks above pymalloc's small-object limit come from malloc; one in fifty kept alive pins
    # the heap's top, so glibc keeps the rest resident until trimmed (as after the model's load).
    chunks = [bytes(2048) + i.to_bytes(4, "little") for i in range(40_000)]
    kept = chunks[::50]
    before_free = resident_mb()
    del chunks
    assert return_freed_memory() is True
    after = resident_mb()
    assert before_free - after > 40, (before_free, after)
    assert len(kept) == 800  # the pins were alive throughout


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt")
def test_threads_can_share_the_main_arena() -> None:
    # What it saves is measured by `python -m bench memory` (the model loads in a thread).
    assert share_one_arena() is True
