"""The Makefile with a .venv, or a PYTHON, older than qunbot supports (3.11): a fake
interpreter that says it is 3.9 stands in, so no old Python is needed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OLD_PYTHON = '#!/bin/sh\nif [ "$1" = "-V" ]; then echo "Python 3.9.18"; exit 0; fi\nexit 1\n'

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")


def _folder(tmp_path: Path) -> Path:
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    (tmp_path / "pyproject.toml").write_text("", encoding="utf-8")
    old = tmp_path / "old-python"
    old.write_text(OLD_PYTHON, encoding="utf-8")
    old.chmod(0o755)
    return tmp_path


def test_a_venv_made_by_an_older_python_is_made_again(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (folder / ".venv" / "bin").mkdir(parents=True)
    shutil.copy(folder / "old-python", folder / ".venv" / "bin" / "python")
    done = subprocess.run(["make", "-n", "lint"], cwd=folder, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert ".venv was made by Python 3.9.18; qunbot needs 3.11 or newer: making it again" in done.stdout
    assert not (folder / ".venv").exists()
    assert "-m venv .venv" in done.stdout  # and the plan is to make it anew


def test_an_older_python_stops_with_what_to_run(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    done = subprocess.run(
        ["make", "lint", f"PYTHON={folder / 'old-python'}"], cwd=folder, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "is Python 3.9.18; qunbot needs Python 3.11 or newer: make PYTHON=python3.11 lint" in done.stderr
    assert not (folder / ".venv").exists()


def test_a_good_venv_is_kept(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (folder / ".venv" / "bin").mkdir(parents=True)
    (folder / ".venv" / "bin" / "python").symlink_to(sys.executable)  # the tests run on 3.11+
    done = subprocess.run(["make", "-n", "lint"], cwd=folder, capture_output=True, text=True, timeout=60)
    assert "making it again" not in done.stdout and (folder / ".venv").exists()
