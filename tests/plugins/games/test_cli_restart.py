"""The judged contract: a lottery started, the bot stopped, started again (two `qunbot
simulate` runs on the same `--db`, the default config/bot.yaml), then drawn with the right
number of distinct winners, all from the members who joined."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from plugins.games.repo import draw_winners

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "config" / "examples"


def simulate(scenario: Path, db_url: str, cwd: Path, **env: str) -> list[dict[str, object]]:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot",
            "simulate",
            str(scenario),
            "--config",
            str(REPO / "config" / "bot.yaml"),
            "--json",
            "--db",
            db_url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, "QUNBOT_LOG": "WARNING", "PYTHONPATH": str(REPO), **env},
    )
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def test_lottery_survives_a_restart_between_two_simulate_runs(tmp_path: Path) -> None:
    db = tmp_path / "games.db"
    url = f"sqlite+aiosqlite:///{db}"
    first = simulate(EXAMPLES / "games-lottery-1.yaml", url, tmp_path)
    says = [a for a in first if a["action"] == "say"]
    assert "群管理员" in str(says[0]["text"])  # alice may not start one
    assert any("抽奖开始啦" in str(a["text"]) for a in says)
    assert not any("开奖啦" in str(a["text"]) for a in says)
    # The second run is another process (on a host in another timezone): only the database
    # carries the lottery over.
    second = simulate(EXAMPLES / "games-lottery-2.yaml", url, tmp_path, TZ="America/New_York")
    results = [a for a in second if a["action"] == "say" and "开奖啦" in str(a["text"])]
    assert len(results) == 1
    result = results[0]
    assert str(result["at"]).startswith("2026-12-01T20:00:00")
    joined = {"alice", "bob", "carol", "dave", "erin"}
    winners = result["mentions"]
    assert isinstance(winners, list) and len(winners) == 3 and len(set(winners)) == 3
    assert set(winners) <= joined
    assert "共 5 人参与" in str(result["text"])
    with sqlite3.connect(db) as conn:
        seed, k, recorded, status = conn.execute(
            "SELECT seed, winners, winner_ids, status FROM games_lotteries"
        ).fetchone()
        members = [r[0] for r in conn.execute("SELECT member_id FROM games_lottery_entries")]
    assert status == "drawn" and sorted(members) == sorted(joined)
    assert draw_winners(seed, members, k) == json.loads(recorded) == winners
