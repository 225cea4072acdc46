"""YAML 1.2 reading for every YAML file qunbot loads: words stay words, times stay times,
duplicate keys are errors naming both lines. Units on the reader, then the same files through
a plugin's validation, the check-config command, a scenario and a question bank."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.app import load_everything
from bot.cli import app
from bot.config.errors import ConfigError
from bot.config.yamlio import parse_yaml
from tests.harness import write_config

runner = CliRunner()


@pytest.mark.parametrize(
    ("written", "value"),
    [
        # YAML 1.1 (PyYAML) read these as booleans; in YAML 1.2 they are words.
        ("no", "no"),
        ("yes", "yes"),
        ("on", "on"),
        ("off", "off"),
        ("y", "y"),
        ("No", "No"),
        # YAML 1.1 read 12:30 as a base-60 number (750); here it is the time as written.
        ("12:30", "12:30"),
        ("08:00", "08:00"),
        ("1:02:03", "1:02:03"),
        # Numbers as YAML 1.2 writes them: 0o is octal, a leading 0 is plain decimal.
        ("0o12", 10),
        ("012", 12),
        ("0x1f", 31),
        ("42", 42),
        ("1.5", 1.5),
        ("true", True),
        ("false", False),
        ("null", None),
        ("~", None),
        ("'no'", "no"),
        ('"12:30"', "12:30"),
        ("签到", "签到"),
    ],
)
def test_scalars_follow_yaml_1_2(written: str, value: object) -> None:
    data, _lines = parse_yaml(f"value: {written}\nlist: [{written}]\n")
    assert data == {"value": value, "list": [value]}
    assert type(data["value"]) is type(value)


@pytest.mark.parametrize(
    ("text", "issues"),
    [
        ("a: 1\nb: 2\na: 3\n", [(3, "a", 1)]),
        ("top:\n  x: 1\n  y: 2\n  x: 3\n", [(4, "top.x", 2)]),
        ("rules:\n  - {k: 1, k: 2}\n", [(2, "rules[0].k", 2)]),
        # Every duplicate at once, not only the first.
        ("a: 1\na: 2\nb:\n  c: 1\n  c: 2\n", [(2, "a", 1), (5, "b.c", 4)]),
        # The same key written as 12 and '12' is one key.
        ("12: a\n'12': b\n", [(2, "12", 1)]),
    ],
)
def test_duplicate_keys_are_errors_naming_both_lines(text: str, issues: list[tuple[int, str, int]]) -> None:
    with pytest.raises(ConfigError) as err:
        parse_yaml(text, "f.yaml")
    got = [(i.line, i.path, i.problem) for i in err.value.issues]
    assert [(line, path) for line, path, _ in got] == [(line, path) for line, path, _ in issues]
    for (_, _, problem), (_, _, first) in zip(got, issues, strict=True):
        assert f"duplicate key: also written on line {first}" in problem
    assert str(err.value).startswith("f.yaml:")


def test_a_merge_key_may_be_overridden_beside_it() -> None:
    text = "base: &b {text: hi, mention: true}\nwelcome:\n  <<: *b\n  text: hello\n"
    data, lines = parse_yaml(text)
    assert data["welcome"] == {"text": "hello", "mention": True}
    assert lines.line_of(("welcome", "text")) == 4


def test_an_alias_of_a_merged_mapping_is_no_duplicate() -> None:
    # The aliased node was already merged where it is written: reading it again is no second key.
    text = "base: &base {a: 1, b: 1}\nchild: &child\n  <<: *base\n  a: 2\nother: *child\nmore: {<<: [*base, *child]}\n"
    data, _lines = parse_yaml(text)
    assert data["other"] == data["child"] == {"a": 2, "b": 1}
    assert data["more"] == {"a": 1, "b": 1}


def test_lines_are_kept_for_keys_and_items() -> None:
    data, lines = parse_yaml("a:\n  b:\n    - x\n    - y\n")
    assert data == {"a": {"b": ["x", "y"]}}
    assert [lines.line_of(p) for p in [("a",), ("a", "b"), ("a", "b", 1)]] == [1, 2, 4]


@pytest.mark.parametrize(
    ("text", "line"),
    [("a: [1\n", 2), ("a: 'x\n", 2), ("a: b: c\n", 1), ("- a\nb: c\n", 2)],
)
def test_broken_yaml_names_the_line(text: str, line: int) -> None:
    with pytest.raises(ConfigError) as err:
        parse_yaml(text, "f.yaml")
    (issue,) = err.value.issues
    assert issue.line == line and issue.problem.startswith("invalid YAML")


def test_keyword_rules_keep_no_and_times_as_text(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path,
        "plugins:\n  keyword_reply:\n    rules:\n      - keywords: [no, on, 12:30]\n        replies: [12:30, off]\n",
    )
    loaded = load_everything(cfg)
    (settings,) = [s for s in loaded.plugins if s.name == "keyword_reply"]
    (rule,) = settings.default.rules  # type: ignore[attr-defined]
    assert list(rule.keywords) == ["no", "on", "12:30"]
    assert [str(r) for r in rule.replies] == ["12:30", "off"]


def test_check_config_reports_duplicate_keys_with_both_lines(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, "timezone: UTC\nplugins:\n  welcome: {}\ntimezone: Asia/Shanghai\n")
    result = runner.invoke(app, ["check-config", str(cfg)])
    assert result.exit_code == 2
    assert f"{cfg}:4: timezone: duplicate key: also written on line 1" in result.output


def test_a_keyword_reply_answers_no_and_a_time(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "clock: '2026-12-01T08:00:00+08:00'\n"
        "contacts: [{id: alice, name: Alice}]\n"
        "groups: [{id: g1, topic: 群, owner: alice, members: [alice]}]\n"
        "steps:\n  - {group: g1, from: alice, text: 'no'}\n  - {group: g1, from: alice, text: '12:30'}\n",
        encoding="utf-8",
    )
    cfg = write_config(
        tmp_path,
        "plugins:\n  keyword_reply:\n    rules:\n      - keywords: [no]\n        replies: [不行]\n"
        "      - keywords: [12:30]\n        replies: [午饭时间]\n",
    )
    result = runner.invoke(app, ["simulate", str(scenario), "--config", str(cfg), "--json"])
    assert result.exit_code == 0, result.output
    said = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert [a["text"] for a in said if a["action"] == "say"] == ["不行", "午饭时间"]


def test_a_scenario_with_a_duplicate_key_is_refused(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text("clock: '2026-12-01T08:00:00+08:00'\nsteps: []\nsteps: []\n", encoding="utf-8")
    result = runner.invoke(app, ["simulate", str(scenario), "--config", str(write_config(tmp_path, "timezone: UTC\n"))])
    assert result.exit_code == 2
    assert f"{scenario}:3: steps: duplicate key: also written on line 2" in result.output


@pytest.mark.parametrize(
    ("written", "on"),
    [("false", False), ("no", False), ("off", False), ("Off", False), ("true", True), ("yes", True), ("on", True)],
)
def test_a_plugin_switched_off_with_no_or_off_is_off(tmp_path: Path, written: str, on: bool) -> None:
    """YAML 1.2 leaves `enabled: no` as text: the switch still reads it as people mean it."""
    cfg = write_config(
        tmp_path,
        f"plugins:\n  welcome:\n    enabled: {written}\n  games:\n    overrides:\n"
        f"      - groups: [g1]\n        enabled: {written}\n",
    )
    loaded = load_everything(cfg)
    assert ("welcome" in {s.name for s in loaded.plugins}) is on
    (games,) = [s for s in loaded.plugins if s.name == "games"]
    assert games.enabled_in("g1") is on


def test_a_switch_that_is_no_switch_is_an_error(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, "plugins:\n  welcome:\n    enabled: maybe\n")
    with pytest.raises(ConfigError) as err:
        load_everything(cfg)
    assert [(i.line, i.path, i.problem) for i in err.value.issues] == [
        (3, "plugins.welcome.enabled", "must be true or false")
    ]


def test_check_config_diff_reads_both_files_the_same_way(tmp_path: Path) -> None:
    old = write_config(tmp_path, "plugins:\n  keyword_reply:\n    rules:\n      - {keywords: [yes], replies: [好]}\n")
    new = write_config(
        tmp_path, "plugins:\n  keyword_reply:\n    rules:\n      - {keywords: [no], replies: [12:30]}\n", "new.yaml"
    )
    result = runner.invoke(app, ["check-config", str(new), "--against", str(old)])
    assert result.exit_code == 0, result.output
    assert "'yes'" in result.output and "'no'" in result.output and "'12:30'" in result.output
    duplicate = write_config(tmp_path, "timezone: UTC\ntimezone: UTC\nplugins: {}\n", "dup.yaml")
    refused = runner.invoke(app, ["check-config", str(new), "--against", str(duplicate)])
    assert refused.exit_code == 2
    assert f"{duplicate}:2: timezone: duplicate key: also written on line 1" in refused.output


async def test_a_reload_refuses_duplicate_keys_and_tells_the_admins_both_lines(tmp_path: Path) -> None:
    from tests.harness import chat

    text = "bot_admins: [owner1]\nplugins:\n  welcome: {}\n"
    cfg = write_config(tmp_path, text)
    async with chat(load_everything(cfg)) as bot:
        app_ = bot.sim.app
        app_.loaded.path = cfg
        cfg.write_text(text + "bot_admins: [alice]\n", encoding="utf-8")
        assert not await app_.reload()
        await bot.wait("1s")
        notes = [a.text or "" for a in bot.sim.actions if a.action == "private" and a.to == "owner1"]
        assert any("bot_admins: duplicate key: also written on line 1" in n and ":4:" in n for n in notes), notes
        assert app_.config.bot_admins == ["owner1"]
