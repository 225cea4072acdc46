"""`qunbot simulate` in subprocesses under different host timezones (TZ=UTC,
TZ=America/New_York) with an Asia/Shanghai config: day boundaries come from the config,
so the output is byte-for-byte the same, and it is the right one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
SCENARIO = REPO / "config" / "examples" / "checkin-month.yaml"
CONFIG = """
timezone: Asia/Shanghai
bot_admins: []
plugins:
  checkin:
    day_starts_at: "04:00"
    replies: {mode: each}
    points:
      base: 5
      streak_bonuses: [{every: 7, points: 20}, {on_day: 30, points: 100}]
    makeup: {cost: 20, monthly_limit: 2, max_days_back: 7}
"""


def test_month_scenario_is_the_same_under_any_host_timezone(tmp_path: Path) -> None:
    cfg = tmp_path / "bot.yaml"
    cfg.write_text(CONFIG, encoding="utf-8")
    procs = {
        tz: subprocess.Popen(
            [sys.executable, "-m", "bot", "simulate", str(SCENARIO), "--config", str(cfg), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env={**os.environ, "TZ": tz, "QUNBOT_LOG": "WARNING"},
        )
        for tz in ("UTC", "America/New_York")
    }
    outputs = {}
    for tz, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"TZ={tz}: {err}"
        outputs[tz] = out
    assert outputs["UTC"] == outputs["America/New_York"]

    says = [json.loads(line) for line in outputs["UTC"].splitlines()]
    texts = [s["text"] for s in says if s["action"] == "say"]
    # Bob checks in at 01:30 Shanghai time (17:30 UTC / 12:30 New York the day before):
    # before the 04:00 day start, so each counts for the previous day and his run never breaks.
    first_bob = next(s for s in says if s["mentions"] == ["bob"])
    assert first_bob["at"].startswith("2026-12-01T01:30") and "今日第1位" in first_bob["text"]
    mine = {t.split("：")[0].split()[-1]: t for t in texts if "积分（第" in t}
    assert "Alice：345 积分" in mine["Alice"] and "连续签到 33 天" in mine["Alice"]
    assert "Bob：350 积分（第2名）" in mine["Bob"] and "连续签到 34 天" in mine["Bob"]  # Nov 30 … Jan 2
    assert "Carol：345 积分" in mine["Carol"] and "累计 33 天" in mine["Carol"]
    # Dave missed Dec 10 and made it up on Dec 11: his streak is whole, bonuses included.
    assert "Dave：360 积分（第1名）" in mine["Dave"] and "连续签到 33 天" in mine["Dave"]
    streaks = next(t for t in texts if t.startswith("🔥 连续签到榜")).splitlines()
    assert streaks[1:] == ["1. Bob 34 天", "2. Carol 33 天", "2. Alice 33 天", "2. Dave 33 天"]
    assert sum("🎁 连续签到 7 天奖励 20 积分！" in t for t in texts) == 4  # each of them, once
    assert sum("🎁 连续签到 30 天奖励 100 积分！" in t for t in texts) == 4
    calendar = next(t for t in texts if "2026年12月签到" in t)
    assert "✅✅✅🔄✅✅✅" in calendar and "本月签到 31 天（含补签 1 天）" in calendar
