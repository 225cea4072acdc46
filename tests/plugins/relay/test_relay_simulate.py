"""The relay example through `qunbot simulate --json` (the CLI contract, DESIGN §7)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "config" / "examples"


def simulate(scenario: str, config: str, tz: str) -> list[dict[str, object]]:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot",
            "simulate",
            str(EXAMPLES / scenario),
            "--config",
            str(EXAMPLES / config),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**os.environ, "TZ": tz, "QUNBOT_LOG": "WARNING"},
    )
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def test_the_relay_example_delivers_each_human_message_once_per_other_group() -> None:
    actions = simulate("relay-scenario.yaml", "relay-config.yaml", "America/New_York")
    said: dict[str, list[str]] = {}
    for action in actions:
        assert action["action"] == "say", action
        said.setdefault(str(action["group"]), []).append(str(action["text"]))
    audience, moms = ["a1", "a2", "a3"], ["m1", "m2", "m3"]
    expected = {
        # lecture lines: every audience group, once
        "大家好，今晚聊聊孩子的睡眠": audience,
        "[图片]": audience,
        "推荐阅读 https://example.com/sleep": audience,
        "一般晚上九点前入睡": audience,
        # questions: the source group only
        "几点睡比较好？": ["main"],
        "午睡要多久": ["main"],
        # the mesh (a cycle): the two other groups, once each
        "一群的姐妹们好": ["m2", "m3"],
        "二群来报到": ["m1", "m3"],
        "辅食表.xlsx": ["m1", "m2"],
        # never relayed: before the session, not a speaker, after it, another bot
        "试麦，还没开始": [],
        "老师好": [],
        "下课后的闲聊": [],
        "另一个机器人的广播": [],
    }
    for text, groups in expected.items():
        for group in ["main", *audience, *moms]:
            # (the closing summary in the main group lists the questions again)
            count = sum(text in line for line in said.get(group, []) if "已结束" not in line)
            assert count == (1 if group in groups else 0), (text, group, count, said.get(group))
    # The bot's echoes did not travel on: the echoed lecture line is in a1 once (above), and
    # the mesh line echoed into m2 did not reach m1 or m3 a second time (above).
    assert any("已结束" in line and "收到 2 个提问" in line for line in said["main"])
    assert all(line.startswith("【宝妈") for group in moms for line in said[group])
