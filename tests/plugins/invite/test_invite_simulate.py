"""The invite example through `qunbot simulate --json` (the CLI contract, DESIGN §7)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from itertools import pairwise
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "config" / "examples"


def simulate(tz: str) -> list[dict[str, str]]:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot",
            "simulate",
            str(EXAMPLES / "invite-scenario.yaml"),
            "--config",
            str(EXAMPLES / "invite-config.yaml"),
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


def test_the_invite_example_least_full_caps_and_pacing() -> None:
    actions = simulate("America/New_York")  # the host's timezone must not matter
    invites = [a for a in actions if a["action"] == "invite"]
    assert [(a["group"], a["member"]) for a in invites] == [
        ("n2", "u1"),
        ("n1", "u2"),
        ("r1", "u3"),
        ("n2", "u7"),
        ("n1", "u4"),  # day 1: the cap is 5
        ("n2", "u5"),  # day 2: n1 and n3 are full
    ]
    times = [datetime.fromisoformat(a["at"]) for a in invites]
    assert all((b - a).total_seconds() >= 15 for a, b in pairwise(times))
    assert [a["member"] for a in actions if a["action"] == "accept_friend"] == ["fr-u7"]

    def private(to: str) -> list[str]:
        return [a["text"] for a in actions if a["action"] == "private" and a["to"] == to]

    assert any("你已经在「新人一群」里啦" in t for t in private("x1"))
    assert any("请发送：加群 读书 / 加群 英语" in t for t in private("u3"))
    assert any("明天再发送" in t for t in private("u5"))
    assert any("群暂时满员了" in t for t in private("u8"))
    boss = private("boss")
    assert len(boss) == 2 and "今日入群邀请已达上限（5 个）" in boss[0] and "都满了" in boss[1]
