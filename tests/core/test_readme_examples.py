"""The README's example outputs are what the program prints (run as written, from the
repository root)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")
runner = CliRunner()


def _shown_after(command_line: str) -> list[str]:
    """The lines a README code block shows after `$ COMMAND`."""
    block = README.split(f"$ {command_line}\n", 1)[1]
    return block.split("```", 1)[0].strip().splitlines()


def test_check_config_example(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    result = runner.invoke(app, ["check-config", "config/examples/check-config-problems.yaml"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == _shown_after(
        "qunbot check-config config/examples/check-config-problems.yaml"
    )


def test_spam_check_example() -> None:
    line = '{"id": "m1", "text": "兼职日结，加V：abc888", "member_days": 0}'
    done = subprocess.run(
        [sys.executable, "-m", "bot", "spam-check"],
        input=line + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines() == _shown_after(f"echo '{line}' | qunbot spam-check")


def test_try_it_example(tmp_path: Path) -> None:
    """`make run` with the README's lines: the same answers in the same order (the greeting is
    one of the rule's three; times differ)."""
    db = tmp_path / "try.db"
    lines = README.split("printf '%s\\n' \\\n", 1)[1].split("| make run", 1)[0]
    typed = [part.strip().strip("\\").strip().strip("'") for part in lines.splitlines() if part.strip()]
    done = subprocess.run(
        [sys.executable, "-m", "bot", "run", "--config", "config/bot.yaml"],
        input="\n".join(typed) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "QUNBOT_DATABASE_URL": f"sqlite:///{db}", "QUNBOT_LOG": "WARNING"},
    )
    assert done.returncode == 0, done.stderr
    # Mentions are followed by U+2005 (as WeChat writes them); the README shows a space.
    said = [
        line.split(" 小助手: ", 1)[1].replace("\u2005", " ") for line in done.stdout.splitlines() if " 小助手: " in line
    ]
    shown = [line.split(" 小助手: ", 1)[1] for line in _shown_block_after_try_it() if " 小助手: " in line]
    assert len(said) == len(shown)
    greetings = {"bob 早上好 ☀️", "早安 bob，今天也要加油哦！", "bob 早！记得吃早饭～"}
    for got, expected in zip(said, shown, strict=True):
        if expected in greetings:
            assert got in greetings
        else:
            assert got.startswith(expected.removesuffix("…").rstrip()), (got, expected)


def _shown_block_after_try_it() -> list[str]:
    block = README.split("and the bot answers", 1)[1].split("```\n", 1)[1]
    return block.split("```", 1)[0].strip().splitlines()
