"""check-config reports every problem in a file at once (core settings and every plugin
section), and checks the groups and group sets that broadcasts, invites and relays name:
units on the core validation and the reference check, the loader, the command, the reload."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.app import load_everything
from bot.cli import app
from bot.config import validate_core
from bot.config.errors import ConfigError
from bot.config.yamlio import parse_yaml
from tests.harness import chat, write_config

runner = CliRunner()

# Seven problems: a bad timezone used to hide the six after it.
SEVEN = """\
timezone: Mars/Olympus
groups:
  - {id: g1, sets: [learning]}
  - {name: 没有id的群}
outbox:
  min_gap: fast
plugins:
  welcome:
    txet: hi
  broadcast:
    broadcasts:
      morning: {cron: "0 8 * * *", to: [set:lerning], text: 早上好}
  invite:
    rules:
      - {keywords: [加群], groups: [set:nosuch]}
  relay:
    relays:
      - {name: live, source: g1, targets: [set:missing]}
"""

SEVEN_PROBLEMS = [
    (1, "timezone", "unknown timezone"),
    (4, "groups[1].id", "required key is missing"),
    (6, "outbox.min_gap", "number"),
    (9, "plugins.welcome.txet", "unknown key"),
    (12, "plugins.broadcast.broadcasts.morning.to[0]", "unknown group set 'lerning'"),
    (15, "plugins.invite.rules[0].groups[0]", "unknown group set 'nosuch'"),
    (18, "plugins.relay.relays[0].targets[0]", "unknown group set 'missing'"),
]


def test_core_validation_goes_on_past_a_bad_setting() -> None:
    data, lines = parse_yaml("timezone: Mars/Olympus\ngroup_sets: {a: [g1]}\noutbox: {min_gap: fast}\n")
    config, issues = validate_core(data, lines)
    assert [i.path for i in issues] == ["timezone", "outbox.min_gap"]
    assert config is not None and config.timezone == "Asia/Shanghai" and config.group_sets == {"a": ["g1"]}


@pytest.mark.parametrize(
    ("text", "problem"),
    [("- a\n- b\n", "top level must be a mapping"), ("# only a comment\n", "no settings")],
)
def test_a_file_that_is_no_config_at_all_is_one_problem(text: str, problem: str) -> None:
    data, lines = parse_yaml(text)
    config, issues = validate_core(data, lines)
    assert config is None and len(issues) == 1 and problem in issues[0].problem


def test_every_problem_in_core_and_plugins_comes_at_once(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, SEVEN)
    with pytest.raises(ConfigError) as err:
        load_everything(cfg)
    got = [(i.line, i.path, i.problem) for i in err.value.issues]
    assert [(line, path) for line, path, _ in got] == [(line, path) for line, path, _ in SEVEN_PROBLEMS]
    for (_, _, problem), (_, _, expected) in zip(got, SEVEN_PROBLEMS, strict=True):
        assert expected in problem


def test_check_config_prints_all_seven_and_exits_2(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, SEVEN)
    result = runner.invoke(app, ["check-config", str(cfg)])
    assert result.exit_code == 2
    printed = [line for line in result.output.splitlines() if line.strip()]
    assert len(printed) == 7
    for (line, path, _), out in zip(SEVEN_PROBLEMS, printed, strict=True):
        assert out.startswith(f"{cfg}:{line}: {path}: "), out


REFS = """\
groups:
  - {id: g1, sets: [learning]}
  - {id: g2, sets: [learning]}
group_sets:
  vip: [g5]
plugins:
  broadcast:
    broadcasts:
      morning: {cron: "0 8 * * *", to: [all], text: 早上好}
      evening: {cron: "0 20 * * *", to: [g1, set:vip, learning, g9], text: 晚上好}
  invite:
    rules:
      - {keywords: [加群], groups: [set:learning, g5, g7]}
  relay:
    relays:
      - {name: live, source: g8, targets: [set:learning]}
      - {name: talk, mesh: [g1, g2, g6]}
"""


def test_group_ids_not_listed_are_warnings_and_known_ones_pass(tmp_path: Path) -> None:
    loaded = load_everything(write_config(tmp_path, REFS))
    assert [(w.line, w.path) for w in loaded.warnings] == [
        (10, "plugins.broadcast.broadcasts.evening.to[3]"),
        (13, "plugins.invite.rules[0].groups[2]"),
        (16, "plugins.relay.relays[0].source"),
        (17, "plugins.relay.relays[1].mesh[2]"),
    ]
    assert all(w.warning and "is not in `groups` or any group set" in w.problem for w in loaded.warnings)
    assert [w.problem.split("'")[1] for w in loaded.warnings] == ["g9", "g7", "g8", "g6"]


def test_without_a_group_list_group_ids_are_not_doubted(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, "plugins:\n  relay:\n    relays:\n      - {name: x, source: a, targets: [b]}\n")
    assert load_everything(cfg).warnings == []


def test_check_config_shows_warnings_and_exits_0(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, REFS)
    result = runner.invoke(app, ["check-config", str(cfg)])
    assert result.exit_code == 0, result.output
    assert f"{cfg}:16: plugins.relay.relays[0].source: warning: group 'g8' is not in" in result.output
    assert result.output.splitlines()[0] == f"{cfg}: OK"


def test_warnings_come_with_errors_in_line_order(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, REFS.replace("targets: [set:learning]", "targets: [set:leaning]"))
    result = runner.invoke(app, ["check-config", str(cfg)])
    assert result.exit_code == 2
    lines = [line.split(": ", 1)[0].rsplit(":", 1)[1] for line in result.output.splitlines()]
    assert lines == ["10", "13", "16", "16", "17"]
    assert "relays[0].targets[0]: unknown group set 'leaning'" in result.output


async def test_a_reload_with_an_unknown_set_is_refused_and_the_old_config_kept(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, REFS)
    world = {
        "clock": "2026-12-01T07:00:00+08:00",
        "contacts": [{"id": "boss", "name": "老板"}],
        "groups": [{"id": g, "topic": g, "owner": "boss", "members": ["boss"]} for g in ("g1", "g2")],
    }
    async with chat(load_everything(cfg), world) as bot:
        app_ = bot.sim.app
        app_.loaded.path = cfg
        cfg.write_text(REFS.replace("to: [all]", "to: [set:nope]"), encoding="utf-8")
        assert not await app_.reload()
        assert "morning" in app_.config.plugins["broadcast"]["broadcasts"]  # type: ignore[index]
        assert app_.config.plugins["broadcast"]["broadcasts"]["morning"]["to"] == ["all"]  # type: ignore[index]
