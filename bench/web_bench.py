"""Server time of the console's 总览 (every group) and 群详情 (one group of median size) on the
stats bench's synthetic history: 1,000 groups, 200,000 members, 10 million messages over 90
days (generated once by bench/stats_bench.py, cached under data/bench/).

The pages are requested in-process through the ASGI app (httpx's transport): the figure is
the server's whole work — session check, queries, template rendering — without a network.
The bot runs on the simulator with the bench database; "today" is the history's last day.
Baseline: the same overview figures computed from the raw event log in the same run.

    .venv/bin/python -m bench web          # QUNBOT_BENCH_SCALE=0.05 for a quick small run
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from bench.__main__ import figure
from bench.stats_bench import REPO, ensure_db, params
from bot.app import load_everything
from bot.config.errors import LineMap
from bot.stats.localtime import utc_start
from bot.web.server import create_app


async def _timed(client: httpx.AsyncClient, path: str, runs: int) -> tuple[float, float, float, int]:
    """(median ms, first-run ms, median CPU ms, bytes) of GET `path`. The CPU time (the
    process's, every thread: SQLite works in aiosqlite's) depends less on other load."""
    times, cpu = [], []
    size = 0
    for _ in range(runs + 1):
        began, began_cpu = time.perf_counter(), time.process_time()
        response = await client.get(path)
        times.append((time.perf_counter() - began) * 1000)
        cpu.append((time.process_time() - began_cpu) * 1000)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
        size = len(response.content)
    return statistics.median(times[1:]), times[0], statistics.median(cpu[1:]), size


async def _raw_overview(db: Any, lo: Any, hi: Any) -> float:
    """The baseline: today's active members per group from the raw event log."""
    began = time.perf_counter()
    async with db.engine.connect() as conn:
        await conn.execute(
            sa.text(
                "SELECT group_id, COUNT(DISTINCT member_id) FROM event_log "
                "WHERE type = 'message' AND at >= :lo AND at < :hi GROUP BY group_id"
            ),
            {"lo": lo.strftime("%Y-%m-%d %H:%M:%S.%f"), "hi": hi.strftime("%Y-%m-%d %H:%M:%S.%f")},
        )
    return (time.perf_counter() - began) * 1000


async def figures() -> list[dict[str, object]]:
    from bot.adapters.simulator import Scenario, Simulation

    p = params()
    path, facts = await ensure_db(p)
    last = date.fromisoformat(p["start"]) + timedelta(days=p["days"] - 1)
    folder = Path(tempfile.mkdtemp(prefix="qunbot-web-bench-"))
    config = folder / "bot.yaml"
    config.write_text(f"timezone: {p['tz']}\nbot_admins: [boss]\nweb: {{}}\nplugins:\n  broadcast: {{}}\n", "utf-8")
    scenario = Scenario.model_validate(
        {
            "clock": f"{last.isoformat()}T21:00:00+08:00",
            "bot": {"id": "wxid_bot", "name": "小助手"},
            "contacts": [{"id": "boss", "name": "老板"}],
            "groups": [],
            "steps": [],
        }
    )
    sim = Simulation(scenario, LineMap("<bench>", {}), load_everything(config), db_url=f"sqlite+aiosqlite:///{path}")
    await sim.start()
    try:
        app = sim.app
        async with app.db.engine.connect() as conn:  # type: ignore[union-attr]
            sizes = (
                await conn.exec_driver_sql("SELECT group_id, COUNT(*) FROM memberships GROUP BY group_id ORDER BY 2, 1")
            ).all()
        median_group = sizes[len(sizes) // 2][0]
        web = create_app(app)
        transport = httpx.ASGITransport(app=web)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            # Logged in as a bot admin the way an admin is: a one-time link from `后台`.
            await sim.step({"private": "boss", "text": "后台"})
            link = next(a.text for a in sim.actions if a.action == "private" and "login/link" in (a.text or ""))
            url = "/login/link/" + (link or "").split("/login/link/", 1)[1].split()[0]
            page = await client.get(url)
            csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
            assert (await client.post(url, data={"csrf": csrf})).status_code == 303
            overview_ms, overview_first, overview_cpu, overview_bytes = await _timed(client, "/", 7)
            group_ms, group_first, group_cpu, group_bytes = await _timed(client, f"/groups/{median_group}", 7)
            lo = utc_start(last, app.config.tz)
            raw_ms = await _raw_overview(app.db, lo, lo + timedelta(days=1))
    finally:
        await sim.close()
    common = {
        "groups": p["groups"],
        "events": facts["events"],
        "messages": facts["messages"],
        "active_member_days": facts["active_member_days"],
        "db": str(path.relative_to(REPO)),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 1) for x in os.getloadavg()],
    }
    return [
        figure(
            "web_overview_ms",
            overview_ms,
            "ms",
            raw_ms,
            target=200,
            first_run_ms=round(overview_first, 1),
            cpu_ms=round(overview_cpu, 1),
            bytes=overview_bytes,
            baseline_name="today's active members alone, from the raw event log",
            **common,
        ),
        figure(
            "web_group_page_ms",
            group_ms,
            "ms",
            None,
            target=200,
            group=median_group,
            first_run_ms=round(group_first, 1),
            cpu_ms=round(group_cpu, 1),
            bytes=group_bytes,
            days=30,
        ),
    ]


if __name__ == "__main__":
    for item in asyncio.run(figures()):
        sys.stdout.write(json.dumps(item, ensure_ascii=False) + "\n")
