"""The command-line contracts: `qunbot spam-check` (DESIGN §7), `qunbot spam-replay`, and a
scenario through `qunbot simulate --json`, each in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from plugins.antispam.detector import Detector
from plugins.antispam.spamcheck import InputError, check_lines, load_antispam_config, message_from_json

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "config" / "bot.yaml"
SCENARIO = Path(__file__).with_name("antispam-scenario.yaml")


def qunbot(
    *args: str, stdin: str | None = None, cwd: Path = ROOT, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        check=False,
    )


def test_one_verdict_per_line_from_stdin() -> None:
    lines = [
        {"id": "m1", "text": "兼职日结，日入300+，加V：abc888"},
        {"id": 2, "text": "今天天气不错，出去走走"},
        {"id": "m3", "text": "看看这个 https://shop.example.com/x", "member_days": 0, "member_messages": 0},
        {"id": "m4", "text": "看看这个 https://shop.example.com/x", "member_days": 400, "member_messages": 900},
        {"id": "m5", "text": "", "kind": "qr_code", "member_days": 0.5},
        {"id": "m6", "text": "王阿姨", "kind": "contact_card", "member_days": None, "label": "ignored"},
    ]
    proc = qunbot(
        "spam-check", "--config", str(CONFIG), stdin="\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n"
    )
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(v["id"], v["spam"], v["action"]) for v in out] == [
        ("m1", True, "kick"),
        (2, False, "none"),
        ("m3", True, "warn"),
        ("m4", False, "none"),
        ("m5", True, "warn"),
        ("m6", False, "none"),
    ]
    for verdict in out:
        assert set(verdict) == {"id", "spam", "action", "checks"}
        assert all(set(c) == {"name", "spam", "details"} for c in verdict["checks"])


def test_bad_lines_get_an_error_verdict_and_the_rest_continue(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        '{"id": "a", "text": "你好"}\n'
        "not json\n"
        '["a list"]\n'
        '{"text": "no id"}\n'
        '{"id": "b"}\n'
        '{"id": "c", "text": 5}\n'
        '{"id": "d", "text": "x", "member_days": "three"}\n'
        "\n"
        '{"id": "e", "text": "兼职日结，加V：abc888"}\n',
        encoding="utf-8",
    )
    proc = qunbot("spam-check", "--config", str(CONFIG), str(source))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [v["id"] for v in out] == ["a", None, None, None, "b", "c", "d", "e"]  # the blank line is skipped
    errors = [v.get("error") for v in out]
    assert errors[0] is None and errors[-1] is None and out[-1]["spam"] is True
    assert "line 2: not valid JSON" in errors[1]
    assert 'missing "id"' in errors[3] and 'missing "text"' in errors[4]
    assert '"member_days" must be a number' in errors[6]
    assert proc.stderr.count("qunbot spam-check: line") == 6


def test_usage_errors_are_one_line() -> None:
    proc = qunbot("spam-check", "--config", str(CONFIG), "/no/such/file.jsonl")
    assert proc.returncode == 2 and "no such file" in proc.stderr and "Traceback" not in proc.stderr


def test_a_bad_antispam_section_names_file_and_line(tmp_path: Path) -> None:
    cfg = tmp_path / "bot.yaml"
    cfg.write_text("plugins:\n  antispam:\n    ad_content:\n      threshold: many\n", encoding="utf-8")
    proc = qunbot("spam-check", "--config", str(cfg), stdin="")
    assert proc.returncode == 2
    assert f"{cfg}:4:" in proc.stderr and "threshold" in proc.stderr


def test_group_overrides_apply_with_group(tmp_path: Path) -> None:
    cfg = tmp_path / "bot.yaml"
    cfg.write_text(
        "groups: [{id: g1}, {id: g2, sets: [strict]}]\n"
        "plugins:\n  antispam:\n    overrides:\n      - groups: [set:strict]\n"
        "        links: {unknown_domains: remove}\n",
        encoding="utf-8",
    )
    line = ['{"id": "x", "text": "看 https://example.com/a"}']
    relaxed = next(check_lines(line, Detector(load_antispam_config(cfg), stateful=False)))[0]
    strict = next(check_lines(line, Detector(load_antispam_config(cfg, "g2"), stateful=False)))[0]
    assert relaxed["spam"] is False
    assert (strict["spam"], strict["action"]) == (True, "kick")


def test_simulate_json_scenario_and_replay_over_its_database(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'sim.db'}"
    proc = qunbot("simulate", str(SCENARIO), "--config", str(CONFIG), "--json", "--db", db)
    assert proc.returncode == 0, proc.stderr
    actions = [json.loads(line) for line in proc.stdout.splitlines()]
    kicks = [(a["group"], a["member"]) for a in actions if a["action"] == "kick"]
    assert kicks == [("g1", "spammer"), ("g2", "spammer")]  # removed, then refused in another group
    warnings = [a for a in actions if a["action"] == "say" and "请勿发布广告" in a["text"]]
    assert [w["mentions"] for w in warnings] == [["newbie"]]  # the new member, not the admin with the same link
    assert any(
        a["action"] == "private" and a["to"] == "owner1" and "已将 小美（spammer）移出" in a["text"] for a in actions
    )

    replayed = qunbot(
        "spam-replay",
        "--config",
        str(CONFIG),
        "--db",
        db,
        "--days",
        "2",
        "--json",
        "--until",
        "2026-12-02T08:00:00+0800",
    )
    assert replayed.returncode == 0, replayed.stderr
    who = {json.loads(line)["member"]: json.loads(line) for line in replayed.stdout.splitlines()}
    assert who["spammer"]["outcome"] == "remove"
    assert who["newbie"]["outcome"] == "warn"
    # Alice posted the same link, but the bot never saw her join: an established member.
    assert set(who) == {"spammer", "newbie"}


def test_input_parsing_is_lenient_where_it_is_safe() -> None:
    ident, msg = message_from_json({"id": 7, "text": None, "kind": "QR-Code", "url": None, "extra": [1]})
    assert ident == 7 and msg.qr and msg.text == ""
    _, msg = message_from_json({"id": "u", "text": "看", "url": "http://a.b/c"})
    assert msg.kind.value == "url"
    for bad in (
        {"id": "x", "text": "t", "member_messages": -1},
        {"id": "x", "text": "t", "member_days": True},
        {"id": {"a": 1}, "text": "t"},
        {"id": "x", "text": "t", "kind": 3},
    ):
        try:
            message_from_json(bad)
        except InputError:
            continue
        raise AssertionError(f"accepted {bad}")
