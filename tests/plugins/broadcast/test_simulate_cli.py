"""The acceptance scenarios, through `qunbot simulate --json` in real OS processes:

- a cron broadcast to three groups fires at the right local times over several days, with
  the same output under TZ=UTC and TZ=America/New_York hosts;
- a bot down across a due time (several runs on one `--db`) sends it once when back within
  grace, records it as missed beyond, and never sends twice;
- two processes on one PostgreSQL database with the same schedule send every (occurrence,
  group) exactly once.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bot.storage.db import Database
from plugins.broadcast.store import BroadcastStore

CONFIG = """
timezone: Asia/Shanghai
bot_admins: [boss]
groups:
  - {id: g1, name: 宝妈交流群}
  - {id: g2, name: 读书群, sets: [learning]}
  - {id: g3, name: 英语群, sets: [learning]}
plugins:
  broadcast:
    default_grace: 10m
    broadcasts:
      morning:
        cron: "0 8 * * *"
        to: [g1, set:learning]
        text: "早上好 {group} {date} {weekday}"
      weekday_evening:
        when: 工作日 21:30
        to: all
        text: "晚安 {date} {time}"
"""


def scenario(clock: str, *steps: str) -> str:
    return textwrap.dedent(f"""\
        clock: "{clock}"
        bot: {{id: wxid_bot, name: 小助手}}
        contacts: [{{id: boss, name: 老板}}]
        groups:
          - {{id: g1, topic: 宝妈交流群}}
          - {{id: g2, topic: 读书群}}
          - {{id: g3, topic: 英语群}}
        """) + ("steps:\n" + "".join(f"  - {step}\n" for step in steps) if steps else "steps: []\n")


def start(
    tmp_path: Path, config: str, scenario_text: str, *, db: str | None = None, tz: str = "UTC", name: str = "run"
) -> subprocess.Popen[str]:
    (tmp_path / f"{name}.yaml").write_text(scenario_text, encoding="utf-8")
    (tmp_path / "bot.yaml").write_text(textwrap.dedent(config), encoding="utf-8")
    command = [sys.executable, "-m", "bot", "simulate", f"{name}.yaml", "--config", "bot.yaml", "--json"]
    if db:
        command += ["--db", db]
    # This tree's code, whatever `bot` the environment has installed (it runs in tmp_path).
    env = {**os.environ, "TZ": tz, "QUNBOT_LOG": "ERROR", "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    return subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def actions(proc: subprocess.Popen[str]) -> list[dict[str, Any]]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def simulate(tmp_path: Path, config: str, scenario_text: str, **kw: Any) -> list[dict[str, Any]]:
    return actions(start(tmp_path, config, scenario_text, **kw))


def broadcasts(lines: list[dict[str, Any]], prefix: str) -> list[tuple[str, str]]:
    """(group, local "MM-DD HH:MM") of the say lines starting with `prefix`."""
    return [
        (a["group"], a["at"][5:10] + " " + a["at"][11:16])
        for a in lines
        if a["action"] == "say" and a["text"].startswith(prefix)
    ]


def test_cron_fires_at_local_times_whatever_the_host_timezone(tmp_path: Path) -> None:
    # Tuesday 12-01 07:00 to Monday 12-07 07:00.
    text = scenario("2026-12-01T07:00:00+08:00", "{wait: 6d}")
    runs = {}
    for tz in ("UTC", "America/New_York"):  # both at once: the suite stays fast
        folder = tmp_path / tz.replace("/", "_")
        folder.mkdir()
        runs[tz] = start(folder, CONFIG, text, tz=tz)
    outputs = {tz: actions(proc) for tz, proc in runs.items()}
    assert outputs["UTC"] == outputs["America/New_York"]
    lines = outputs["UTC"]
    mornings = broadcasts(lines, "早上好")
    assert sorted(mornings) == sorted((g, f"12-0{d} 08:00") for d in range(1, 7) for g in ("g1", "g2", "g3"))
    assert all(a["at"].endswith("+08:00") for a in lines)
    evenings = broadcasts(lines, "晚安")  # Tuesday to Friday only
    assert sorted(evenings) == sorted((g, f"12-0{d} 21:30") for d in range(1, 5) for g in ("g1", "g2", "g3"))
    assert "早上好 读书群 2026-12-05 星期六" in {a["text"] for a in lines}


def test_down_across_the_due_time_sends_once_within_grace_missed_beyond_never_twice(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    # Up until 07:30, down across 08:00.
    assert simulate(tmp_path, CONFIG, scenario("2026-12-01T07:00:00+08:00", "{wait: 30m}"), db=db) == []
    # Back at 08:05 (grace 10 min): sent once, at once, even with no step at all.
    back = simulate(tmp_path, CONFIG, scenario("2026-12-01T08:05:00+08:00"), db=db, tz="America/New_York")
    assert sorted(broadcasts(back, "早上好")) == [("g1", "12-01 08:05"), ("g2", "12-01 08:05"), ("g3", "12-01 08:05")]
    # Down across the next morning, back at 08:30: missed, not sent (and the first morning is
    # not sent again); the report says so.
    report_step = "{group: g1, from: boss, text: 群发报告 morning}"
    late = simulate(tmp_path, CONFIG, scenario("2026-12-02T08:30:00+08:00", "{wait: 1h}", report_step), db=db)
    assert broadcasts(late, "早上好") == []
    report = next(a["text"] for a in late if "报告" in a["text"])
    assert "共 2 次，合计 已发送 3 · 失败 0 · 错过 3" in report
    assert "12-02 08:00：已发送 0 · 失败 0 · 错过 3" in report

    async def states() -> list[tuple[str, str, str]]:
        database = await Database.open(db)
        try:
            rows = await BroadcastStore(database).deliveries("morning")
        finally:
            await database.close()
        return [(r.occurrence.isoformat(), r.group_id, r.state) for r in rows]

    assert asyncio.run(states()) == [
        ("2026-12-01T00:00:00+00:00", "g1", "sent"),
        ("2026-12-01T00:00:00+00:00", "g2", "sent"),
        ("2026-12-01T00:00:00+00:00", "g3", "sent"),
        ("2026-12-02T00:00:00+00:00", "g1", "missed"),
        ("2026-12-02T00:00:00+00:00", "g2", "missed"),
        ("2026-12-02T00:00:00+00:00", "g3", "missed"),
    ]


PG_CONFIG = """
timezone: Asia/Shanghai
groups:
  - {id: g1, name: 宝妈交流群}
plugins:
  broadcast:
    broadcasts:
      morning:
        cron: "0 8 * * *"
        to: all
        text: "早上好 {group} {date}"
      drill:
        cron: "*/20 * * * *"
        to: [g1, g2, g3]
        text: "演练 {date} {time}"
"""


@pytest.mark.postgres
def test_two_processes_on_one_postgresql_send_each_occurrence_once(tmp_path: Path, pg_url: str) -> None:
    text = scenario("2026-12-01T07:05:00+08:00", "{wait: 12h}")  # 07:20 … 19:00: 36 drills
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    procs = [start(tmp_path / name, PG_CONFIG, text, db=pg_url) for name in ("a", "b")]
    outputs = [actions(p) for p in procs]
    sent = Counter((a["group"], a["text"]) for out in outputs for a in out if a["action"] == "say")
    drills = {(g, t) for g, t in sent if t.startswith("演练")}
    mornings = {(g, t) for g, t in sent if t.startswith("早上好")}
    assert len(drills) == 36 * 3 and len(mornings) == 3
    assert set(sent.values()) == {1}, [k for k, v in sent.items() if v > 1][:5]

    async def states() -> Counter[tuple[str, str]]:
        database = await Database.open(pg_url)
        try:
            store = BroadcastStore(database)
            rows = [*await store.deliveries("morning"), *await store.deliveries("drill")]
        finally:
            await database.close()
        return Counter((r.broadcast, r.state) for r in rows)

    assert asyncio.run(states()) == Counter({("drill", "sent"): 108, ("morning", "sent"): 3})
    # Both processes took part (informational: which one wins each claim is a race).
    print("sends per process:", [sum(1 for a in out if a["action"] == "say") for out in outputs])
