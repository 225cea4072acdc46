"""Fault tests run for many seconds: their folders are private temporary ones, not pytest's
`tmp_path` (pytest deletes old `pytest-of-<user>` folders when other sessions start, which on
a shared machine can happen while a long test still runs)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.pgserver import ThrowawayPostgres


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="qunbot-fault-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def postgres(workdir: Path) -> Iterator[ThrowawayPostgres]:
    """A throwaway PostgreSQL server of the installed binaries (tests skip without them)."""
    server = ThrowawayPostgres(workdir / "pg")
    server.init()
    try:
        yield server
    finally:
        server.destroy()
