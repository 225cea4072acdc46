"""`qunbot check-config`: every problem as FILE:LINE: key.path: problem, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.app import load_everything
from bot.cli import app
from bot.config.errors import ConfigError
from tests.harness import write_config

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


def check(path: Path) -> tuple[int, list[str]]:
    result = runner.invoke(app, ["check-config", str(path)])
    return result.exit_code, [line for line in result.output.splitlines() if line.strip()]


def test_default_config_is_valid() -> None:
    code, lines = check(REPO / "config" / "bot.yaml")
    assert code == 0, lines
    assert lines[0].endswith(": OK")
    assert any("welcome" in line and "keyword_reply" in line for line in lines)


@pytest.mark.parametrize(
    ("yaml_text", "line", "path", "problem"),
    [
        ("timezone: Asia/Shanghai\ntimezon: UTC\n", 2, "timezon", "unknown key"),
        ("outbox:\n  min_gap: fast\n", 2, "outbox.min_gap", "number"),
        ("timezone: Mars/Olympus\n", 1, "timezone", "unknown timezone"),
        (
            "plugins:\n  welcome:\n    txet: hi\n",
            3,
            "plugins.welcome.txet",
            "unknown key",
        ),
        (
            "plugins:\n  welcome:\n    merge_window_seconds: soon\n",
            3,
            "plugins.welcome.merge_window_seconds",
            "number",
        ),
        (
            "plugins:\n  welcome:\n    text: 'hi {user.__class__}'\n",
            3,
            "plugins.welcome.text",
            "user.__class__",
        ),
        (
            "plugins:\n  keyword_reply:\n    rules:\n      - name: bad\n        match: regex\n"
            "        pattern: '(?<=a)b'\n        replies: [x]\n",
            4,
            "plugins.keyword_reply.rules[0]",
            "regex cannot run",
        ),
        (
            "plugins:\n  keyword_reply:\n    rules:\n      - keywords: [hi]\n        replies: ['{0}']\n",
            4,
            "plugins.keyword_reply.rules[0]",
            "replies[0]",
        ),
        ("plugins:\n  no_such_plugin: {}\n", 2, "plugins.no_such_plugin", "unknown plugin"),
        (
            "plugins:\n  welcome:\n    overrides:\n      - groups: [g1]\n        mention: maybe\n",
            5,
            "plugins.welcome.overrides[0].mention",
            "bool",
        ),
        ("groups: [\n", None, "<root>", "invalid YAML"),
    ],
)
def test_each_problem_names_file_line_and_path(
    tmp_path: Path, yaml_text: str, line: int | None, path: str, problem: str
) -> None:
    cfg = write_config(tmp_path, yaml_text)
    code, lines = check(cfg)
    assert code == 2, lines
    assert lines, "no error printed"
    first = lines[0]
    prefix = f"{cfg}:{line}: " if line is not None else f"{cfg}:"
    assert first.startswith(prefix), first
    assert f": {path}: " in first, first
    assert problem.lower() in first.lower(), first


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path,
        "plugins:\n  welcome:\n    txet: hi\n  keyword_reply:\n    rules:\n      - keywords: [a]\n"
        "        replies: ['{user.__class__}']\n",
    )
    with pytest.raises(ConfigError) as err:
        load_everything(cfg)
    assert len(err.value.issues) == 2
    assert {i.line for i in err.value.issues} == {3, 6}


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    code, lines = check(tmp_path / "nope.yaml")
    assert code == 2
    assert lines == [f"{tmp_path / 'nope.yaml'}:0: <root>: file not found"]
