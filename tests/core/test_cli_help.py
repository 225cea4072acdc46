"""Every command's --help reads cleanly: flags show no `<bool>` type, no help text is cut
short (…) or broken where its source line happened to end, at a narrow and a wide terminal."""

from __future__ import annotations

import itertools
import re

import pytest
import typer
from rich.cells import cell_len
from typer.testing import CliRunner

from bot.cli import app

runner = CliRunner()
BOX = "│╭╮╰╯─"


def _commands() -> list[list[str]]:
    out: list[list[str]] = [[]]

    def walk(group: object, prefix: list[str]) -> None:
        for name, command in getattr(group, "commands", {}).items():
            out.append([*prefix, name])
            walk(command, [*prefix, name])

    walk(typer.main.get_command(app), [])
    return out


COMMANDS = _commands()


def test_every_command_is_listed() -> None:
    names = {" ".join(c) for c in COMMANDS}
    assert {"run", "check-config", "simulate", "spam-check", "stats growth", "deadletter list"} <= names


def _paragraphs(output: str) -> list[list[str]]:
    """Runs of help lines that belong to one text: a blank line, a panel border or a new
    option / command entry ends one. Lines keep their columns (box borders removed)."""
    paragraphs: list[list[str]] = []
    current: list[str] = []
    for raw in output.splitlines():
        line = raw.rstrip().removesuffix("│").removeprefix("│").rstrip()
        text = line.strip()
        # A new option, argument or command; or an option's own note ([default: …], [required]).
        new_entry = bool(re.match(r"^(\*?\s*--?\w|\*?\s*[a-zA-Z\[][\w|\]-]*\s{2,}\S|\[\w+[:\]])", text))
        if not text or set(text) <= set(BOX + " ") or new_entry:
            if current:
                paragraphs.append(current)
            current = [line] if new_entry else []
            continue
        current.append(line)
    if current:
        paragraphs.append(current)
    return paragraphs


@pytest.mark.parametrize("width", [80, 100, 120])
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "qunbot")
def test_help_has_no_bool_metavars_and_no_broken_lines(command: list[str], width: int) -> None:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": str(width), "TERM": "dumb"})
    assert result.exit_code == 0, result.output
    text = result.output
    assert "<bool>" not in text
    assert "…" not in text.replace("--model …", ""), text  # rich's mark for a cut-off cell
    for paragraph in _paragraphs(text):
        # Every line but a paragraph's last is filled by the terminal's wrapping: one that
        # stops well short of the edge was cut where the source's line happened to end.
        for line, following in itertools.pairwise(paragraph):
            next_word = following.split()[0]
            assert cell_len(line) + 1 + cell_len(next_word) > width - 4, f"broken line:\n{line}\n{following}"
