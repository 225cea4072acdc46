"""Retention report speed on a realistic synthetic history (SQLite).

The history: 1,000 groups, 200,000 members, 10 million messages over 90 days. Group sizes
vary (log-normal popularity), a fifth of the members are in two groups, a third of the
stays predate the window, a quarter of the newcomers leave again (a fifth of those removed,
some rejoin), joins come by keyword, by invitation or unknown; members are lurkers, casual
or core posters whose activity fades after joining, with a daily rhythm.

Rollups (memberships, daily_activity) and the raw event log (join, leave and every message)
are generated together by bulk inserts, so both describe exactly the same history — the
bench checks that the rollup-based report equals the one computed from the raw events.
The database is cached under data/bench/ keyed by the parameters: reruns skip generation.

Figures: the retention report by join day over the 90 days, for all groups (target ≤ 1 s)
and for one group of median size (target ≤ 100 ms), each with its baseline — the same report
computed from the raw event log in the same run.

    .venv/bin/python -m bench stats          # QUNBOT_BENCH_SCALE=0.05 for a quick small run
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from bench.__main__ import figure
from bot.stats import Period, Scope, retention, retention_from_events
from bot.storage.db import Database

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "data" / "bench"
VERSION = 2  # bump when the generator changes: a new cache file (2: the event log's indexes of 0003/0410)


def params() -> dict[str, Any]:
    scale = float(os.environ.get("QUNBOT_BENCH_SCALE", "1"))
    return {
        "version": VERSION,
        "groups": max(10, round(1_000 * scale)),
        "members": max(200, round(200_000 * scale)),
        "events": max(2_000, round(10_000_000 * scale)),
        "days": 90,
        "start": "2026-09-01",
        "tz": "Asia/Shanghai",
        "seed": 7,
    }


def db_path(p: dict[str, Any]) -> Path:
    key = hashlib.sha256(json.dumps(p, sort_keys=True).encode()).hexdigest()[:12]
    return CACHE / f"stats_{p['groups']}g_{p['members']}m_{p['events']}e_{key}.db"


# --- generation ------------------------------------------------------------------------------

# Share of a day's messages in each local hour: quiet nights, a lunch bump, busy evenings.
_HOURS = np.array(
    [
        0.4,
        0.2,
        0.1,
        0.1,
        0.1,
        0.2,
        0.6,
        1.6,
        2.6,
        3.0,
        3.2,
        3.4,
        3.8,
        3.0,
        2.6,
        2.6,
        2.8,
        3.0,
        3.4,
        4.0,
        4.8,
        5.4,
        4.2,
        1.8,
    ]
)
_HOURS = _HOURS / _HOURS.sum()


class _Gen:
    def __init__(self, p: dict[str, Any], bar: Callable[[str, float], None]) -> None:
        self.p = p
        self.bar = bar
        self.rng = np.random.default_rng(p["seed"])
        self.tz = ZoneInfo(p["tz"])
        self.start = date.fromisoformat(p["start"])
        self.days = p["days"]
        # UTC epoch second at which each local day begins, from 200 days before the window.
        self.first_day = -200
        self.day0 = np.array(
            [
                int(datetime.combine(self.start + timedelta(days=d), datetime.min.time(), tzinfo=self.tz).timestamp())
                for d in range(self.first_day, self.days + 2)
            ],
            dtype=np.int64,
        )

    def day_start(self, day: np.ndarray) -> np.ndarray:
        return self.day0[day - self.first_day]

    def local_day(self, ts: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.day0, ts, side="right") - 1 + self.first_day

    def stays(self) -> dict[str, np.ndarray]:
        rng, p = self.rng, self.p
        n_groups, n_members, days = p["groups"], p["members"], self.days
        weight = rng.lognormal(0, 0.8, n_groups)
        weight /= weight.sum()
        home = rng.choice(n_groups, n_members, p=weight)
        second_of = np.flatnonzero(rng.random(n_members) < 0.2)
        second = (home[second_of] + 1 + rng.integers(0, n_groups - 1, len(second_of))) % n_groups
        group = np.concatenate([home, second])
        member = np.concatenate([np.arange(n_members), second_of])
        n = len(group)
        founding = rng.random(n) < 0.35
        day = np.where(founding, rng.integers(-180, 0, n), rng.integers(0, days, n))
        tod = rng.choice(24, n, p=_HOURS) * 3600 + rng.integers(0, 3600, n)
        joined = self.day_start(day) + tod
        end_ts = int(self.day0[days - self.first_day])
        leaves = rng.random(n) < np.where(founding, 0.10, 0.30)
        delay = (rng.exponential(12 * 86400, n) + 3600).astype(np.int64)
        left = np.where(leaves, np.maximum(joined, self.day_start(np.zeros(n, dtype=np.int64))) + delay, -1)
        left = np.where((left >= end_ts) | (left < 0), -1, left)
        removed = (left >= 0) & (rng.random(n) < 0.2)
        source = np.zeros(n, dtype=np.int8)  # 0 none, 1 keyword:进群, 2 keyword:加群
        r = rng.random(n)
        source[(~founding) & (r < 0.3)] = 1
        source[(~founding) & (r >= 0.3) & (r < 0.4)] = 2
        inviter = np.where((~founding) & (rng.random(n) < 0.55), rng.integers(0, n_members, n), -1)
        # Some leavers come back: a second stay, open, with no inviter.
        back = np.flatnonzero((left >= 0) & (rng.random(n) < 0.15))
        rejoined = left[back] + (rng.exponential(6 * 86400, len(back)) + 600).astype(np.int64)
        keep = rejoined < end_ts
        back, rejoined = back[keep], rejoined[keep]
        out = {
            "group": np.concatenate([group, group[back]]),
            "member": np.concatenate([member, member[back]]),
            "joined": np.concatenate([joined, rejoined]),
            "left": np.concatenate([left, np.full(len(back), -1)]),
            "removed": np.concatenate([removed, np.zeros(len(back), dtype=bool)]),
            "source": np.concatenate([source, np.zeros(len(back), dtype=np.int8)]),
            "inviter": np.concatenate([inviter, np.full(len(back), -1)]),
            "founding": np.concatenate([founding, np.zeros(len(back), dtype=bool)]),
        }
        # Kind of poster per stay: 0 lurker, 1 casual, 2 core.
        out["kind"] = rng.choice(3, len(out["group"]), p=[0.45, 0.40, 0.15])
        return out

    def activity(self, st: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Active (stay, day) cells, strictly between the join day and the leave day, with
        a message count each; the counts add up to exactly `events`."""
        rng, days = self.rng, self.days
        join_day = self.local_day(st["joined"])
        leave_day = np.where(st["left"] >= 0, self.local_day(np.maximum(st["left"], 0)), days + 1)
        base = np.array([0.0, 0.10, 0.55])[st["kind"]]
        stays, cells_day = [], []
        d = np.arange(days)
        for lo in range(0, len(base), 20_000):
            hi = min(lo + 20_000, len(base))
            age = d[None, :] - join_day[lo:hi, None]
            present = (age > 0) & (d[None, :] < leave_day[lo:hi, None])
            fade = np.where(st["founding"][lo:hi, None], 1.0, 0.35 + 0.65 * np.exp(-np.maximum(age, 0) / 18.0))
            active = present & (rng.random((hi - lo, days)) < base[lo:hi, None] * fade)
            s, dd = np.nonzero(active)
            stays.append(s + lo)
            cells_day.append(dd)
            self.bar("activity", hi / len(base))
        stay = np.concatenate(stays)
        day = np.concatenate(cells_day)
        k = len(stay)
        total = self.p["events"]
        if total < k:
            raise ValueError(f"{total} events cannot cover {k} active member-days")
        weight = np.where(st["kind"][stay] == 2, 3.0, 1.0) * rng.lognormal(0, 0.5, k)
        counts = 1 + rng.multinomial(total - k, weight / weight.sum())
        return stay, day, counts


def _ts_text(ts: np.ndarray, micro: np.ndarray | None = None) -> list[str]:
    """UTC epoch seconds → the text UTCDateTime stores on SQLite ('YYYY-MM-DD HH:MM:SS.ffffff')."""
    us = ts.astype("datetime64[s]").astype("datetime64[us]")
    if micro is not None:
        us = us + micro.astype("timedelta64[us]")
    return [s.replace("T", " ") for s in np.datetime_as_string(us, unit="us").tolist()]


def generate(path: Path, p: dict[str, Any], bar: Callable[[str, float], None]) -> dict[str, int]:
    """Write the synthetic history into the (migrated, empty) SQLite database at `path`."""
    g = _Gen(p, bar)
    st = g.stays()
    stay, day, counts = g.activity(st)
    gid = [f"g{i:04d}" for i in range(p["groups"])]
    mid = [f"m{i:06d}" for i in range(p["members"])]
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA cache_size=-400000")
    con.execute("BEGIN")
    registered = _ts_text(np.array([int(g.day0[0])]))[0]
    con.executemany(
        "INSERT INTO groups (id, topic, owner_id, active, registered_at, left_at) VALUES (?,?,?,?,?,NULL)",
        [(x, f"测试群{i}", None, 1, registered) for i, x in enumerate(gid)],
    )
    con.executemany(
        "INSERT INTO contacts (id, name, first_seen, last_seen) VALUES (?,?,?,?)",
        [(x, f"成员{i}", registered, registered) for i, x in enumerate(mid)],
    )
    # Memberships and their join/leave events.
    order = np.argsort(st["joined"], kind="stable")
    joined_txt = _ts_text(st["joined"][order])
    left_raw = st["left"][order]
    left_txt = _ts_text(np.maximum(left_raw, 0))
    sources = (None, "keyword:进群", "keyword:加群")
    rows, events = [], []
    for j, i in enumerate(order.tolist()):
        g_, m_ = gid[st["group"][i]], mid[st["member"][i]]
        inv = int(st["inviter"][i])
        inviter = mid[inv] if inv >= 0 else None
        source = sources[int(st["source"][i])]
        left = left_txt[j] if left_raw[j] >= 0 else None
        rows.append((g_, m_, joined_txt[j], joined_txt[j], left, inviter, source, bool(st["removed"][i])))
        meta = {k: v for k, v in (("inviter", inviter), ("source", source)) if v}
        events.append((joined_txt[j], "join", g_, m_, json.dumps(meta, ensure_ascii=False) if meta else None))
        if left is not None:
            events.append((left, "leave", g_, m_, '{"removed_by": "admin"}' if st["removed"][i] else None))
    con.executemany(
        "INSERT INTO memberships (group_id, member_id, joined_at, known_from, left_at, inviter_id, source, removed) "
        "VALUES (?,?,?,?,?,?,?,?)",
        rows,
    )
    con.execute("DROP INDEX IF EXISTS ix_event_log_group_at")
    con.execute("DROP INDEX IF EXISTS ix_stats_event_log_stays")
    con.executemany("INSERT INTO event_log (at, type, group_id, member_id, meta) VALUES (?,?,?,?,?)", events)
    con.execute("COMMIT")
    # Messages: every event of an active cell gets a time within that local day; the rollup
    # row gets the count and the first and last times.
    sgroup, smember = st["group"][stay], st["member"][stay]
    cells = np.lexsort((day, smember, sgroup))  # the rollup's primary-key order
    day_start = g.day_start(day)
    written = 0
    for lo in range(0, len(cells), 100_000):
        part = cells[lo : lo + 100_000]
        n = counts[part]
        rep = np.repeat(np.arange(len(part)), n)
        secs = g.rng.choice(24, len(rep), p=_HOURS) * 3600 + g.rng.integers(0, 3600, len(rep))
        ts = day_start[part][rep] + secs
        micro = g.rng.integers(0, 1_000_000, len(rep))
        exact = ts * 1_000_000 + micro
        starts = np.concatenate([[0], np.cumsum(n)[:-1]])
        first = np.minimum.reduceat(exact, starts)
        last = np.maximum.reduceat(exact, starts)
        at_txt = _ts_text(ts, micro)
        con.execute("BEGIN")
        pg, pm = sgroup[part], smember[part]
        con.executemany(
            "INSERT INTO event_log (at, type, group_id, member_id, kind) VALUES (?, 'message', ?, ?, 'text')",
            zip(at_txt, (gid[x] for x in pg[rep].tolist()), (mid[x] for x in pm[rep].tolist()), strict=True),
        )
        days_txt = [(g.start + timedelta(days=int(x))).isoformat() for x in day[part].tolist()]
        con.executemany(
            "INSERT INTO daily_activity (group_id, member_id, day, messages, first_at, last_at) VALUES (?,?,?,?,?,?)",
            zip(
                (gid[x] for x in pg.tolist()),
                (mid[x] for x in pm.tolist()),
                days_txt,
                n.tolist(),
                _ts_text(first // 1_000_000, first % 1_000_000),
                _ts_text(last // 1_000_000, last % 1_000_000),
                strict=True,
            ),
        )
        con.execute("COMMIT")
        written += int(n.sum())
        bar("messages", written / p["events"])
    bar("indexes", 0.0)
    con.execute("CREATE INDEX ix_event_log_group_at ON event_log (group_id, at)")
    bar("indexes", 0.5)
    con.execute(
        "CREATE INDEX ix_stats_event_log_stays ON event_log (group_id, member_id, at) WHERE type IN ('join', 'leave')"
    )  # as migration 0410_stats_event_stays makes it
    con.execute("CREATE TABLE bench_meta (key TEXT PRIMARY KEY, value TEXT)")
    facts = {"stays": len(rows), "active_member_days": len(cells), "messages": written, "events": written + len(events)}
    con.execute("INSERT INTO bench_meta VALUES ('facts', ?)", (json.dumps(facts),))
    con.close()
    bar("indexes", 1.0)
    return facts


async def ensure_db(p: dict[str, Any]) -> tuple[Path, dict[str, int]]:
    path = db_path(p)
    if path.exists():
        con = sqlite3.connect(path)
        try:
            row = con.execute("SELECT value FROM bench_meta WHERE key = 'facts'").fetchone()
        except sqlite3.Error:
            row = None
        finally:
            con.close()
        if row:
            return path, json.loads(row[0])
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.db")
    for stale in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
        stale.unlink(missing_ok=True)
    db = await Database.open(f"sqlite+aiosqlite:///{tmp}")
    await db.close()
    with Progress(
        TextColumn("{task.description:<34}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=False,
        console=_stderr_console(),
    ) as progress:
        tasks: dict[str, Any] = {}
        labels = {
            "activity": "generating activity",
            "messages": f"writing {p['events']:,} messages",
            "indexes": "indexing the event log",
        }

        def bar(stage: str, done: float) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(labels[stage], total=1.0)
            progress.update(tasks[stage], completed=done)

        facts = await asyncio.to_thread(generate, tmp, p, bar)
    tmp.replace(path)
    return path, facts


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


CPU: dict[str, float] = {}


async def _timed(fn: Callable[[], Any], runs: int, name: str = "") -> tuple[float, Any]:
    """Median wall time of `runs` runs; the median process CPU time (every thread: SQLite
    works in aiosqlite's) goes into CPU[name] — a figure that depends less on other load."""
    times, cpu, result = [], [], None
    for _ in range(runs):
        began, began_cpu = time.perf_counter(), time.process_time()
        result = await fn()
        times.append(time.perf_counter() - began)
        cpu.append(time.process_time() - began_cpu)
    if name:
        CPU[name] = statistics.median(cpu)
    return statistics.median(times), result


def _same(a: Any, b: Any) -> bool:
    return a.as_json()["cohorts"] == b.as_json()["cohorts"]


async def figures() -> list[dict[str, object]]:
    p = params()
    began = time.perf_counter()
    path, facts = await ensure_db(p)
    prepared = time.perf_counter() - began
    tz = ZoneInfo(p["tz"])
    start = date.fromisoformat(p["start"])
    period = Period(start, start + timedelta(days=p["days"] - 1))
    as_of = datetime.combine(period.end + timedelta(days=1), datetime.min.time(), tzinfo=tz) + timedelta(hours=9)
    # Migrations run: a cached file made before a new index still gets it.
    db = await Database.open(f"sqlite+aiosqlite:///{path}")
    try:
        async with db.engine.connect() as conn:
            sizes = (
                await conn.exec_driver_sql("SELECT group_id, COUNT(*) FROM memberships GROUP BY group_id ORDER BY 2, 1")
            ).all()
        one = sizes[len(sizes) // 2][0]
        everyone, single = Scope(), Scope.one(one)

        def run(fn: Any, scope: Scope) -> Callable[[], Any]:
            return lambda: fn(db, tz, scope, period, as_of=as_of, by="day")

        # The first run of a report builds and compiles its SQL (reused by later runs).
        one_cold, _ = await _timed(run(retention, single), 1)
        all_cold, _ = await _timed(run(retention, everyone), 1)
        all_s, all_r = await _timed(run(retention, everyone), 3, "all")
        all_base_s, all_base_r = await _timed(run(retention_from_events, everyone), 1)
        one_s, one_r = await _timed(run(retention, single), 7, "one")
        one_base_s, one_base_r = await _timed(run(retention_from_events, single), 3)
    finally:
        await db.close()
    common = {
        "groups": p["groups"],
        "members": p["members"],
        "events": facts["events"],
        "messages": facts["messages"],
        "stays": facts["stays"],
        "active_member_days": facts["active_member_days"],
        "days": p["days"],
        "db": str(path.relative_to(REPO)),
        "prepare_s": round(prepared, 1),
    }
    return [
        figure(
            "stats_retention_all_groups_s",
            all_s,
            "s",
            all_base_s,
            target=1.0,
            first_run_s=round(all_cold, 3),
            cpu_s=round(CPU["all"], 3),
            cpus=os.cpu_count(),
            cohorts=len(all_r.rows),
            load_average=[round(x, 1) for x in os.getloadavg()],
            entries=all_r.total.size,
            same_as_baseline=_same(all_r, all_base_r),
            baseline_name="same report from the raw event log",
            **common,
        ),
        figure(
            "stats_retention_one_group_ms",
            one_s * 1000,
            "ms",
            one_base_s * 1000,
            target=100,
            group=one,
            first_run_ms=round(one_cold * 1000, 1),
            cpu_ms=round(CPU["one"] * 1000, 1),
            entries=one_r.total.size,
            same_as_baseline=_same(one_r, one_base_r),
            baseline_name="same report from the raw event log",
        ),
    ]


if __name__ == "__main__":
    for item in asyncio.run(figures()):
        sys.stdout.write(json.dumps(item, ensure_ascii=False) + "\n")
