"""Several accounts on one PostgreSQL (issue 17): 10 `qunbot run` processes × 100 groups.

Real processes, each its own account, on the console adapter fed through its stdin (no Wechaty
gateway: ten Node gateways besides ten bots are too heavy for a small host, and the gateway is
not what this measures). Every account is in all 100 groups; group g_i is pinned to account
i mod 10, so each account is on duty in 10 groups (it answers there and records everywhere), as
an operator spreads groups over accounts. Every process gets the same chat lines, in the same
order, so one member's message carries one message id in every account, as WeChat delivers it.

The server is QUNBOT_TEST_PG (default postgres@127.0.0.1:5432): each run makes its own
databases there and drops them at the end. Without a reachable server it prints why (on stderr)
and no figures, so `make bench` still runs the others.

Figures, each beside a baseline from the same run:
- events recorded per second, all processes together (every account records every message of
  its groups), from the first line written until the event log holds every row; baseline: one
  process alone on its own database, same groups, fed as many lines as the ten record together;
- database load: transactions (commits + rollbacks; each holds one or a few statements) per
  second and rows written per second, from `pg_stat_database` deltas of the bench database
  (pg_stat_statements is not loaded on this server): under that load (the window runs from the
  first line until the counters show every row, so it includes the second or so the backends
  take to report), and idle (lease renewals only, over 8 s); baseline: the one process;
- handover: one process on duty in 10 groups is killed (SIGKILL) while a member asks 在吗 in each
  of them every 0.25 s; the time until another account first answers in one of them (read from
  the processes' output, every 50 ms), and until others hold the duty in all 10 (`cluster_duty`);
  baseline: `lease_ttl`, the bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.__main__ import figure

REPO = Path(__file__).resolve().parent.parent
SERVER = os.environ.get("QUNBOT_TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
PROCESSES = 10
GROUPS = 100
LINES = 5_000  # per process: 50 messages in each of the 100 groups
LEASE_TTL = 6.0
SAFETY = 1.0
IDLE_SECONDS = 8.0
GROUP_IDS = [f"g{i:03d}" for i in range(GROUPS)]


def _account(i: int) -> str:
    return f"acct_{i:02d}"


def _dsn(database: str | None = None) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(SERVER).set(drivername="postgresql")
    if database is not None:
        url = url.set(database=database)
    return url.render_as_string(hide_password=False)


def _config(folder: Path, account: str, database: str, accounts: list[str]) -> Path:
    url = _dsn(database).replace("postgresql://", "postgresql+asyncpg://", 1)
    pinned = ", ".join(f"{g}: {accounts[i % len(accounts)]}" for i, g in enumerate(GROUP_IDS))
    path = folder / f"{account}.yaml"
    path.write_text(
        f"""\
timezone: Asia/Shanghai
adapter: console
bot: {{id: {account}, name: {account}}}
other_bots: [{", ".join(accounts)}]
storage: {{url: "{url}", flush_interval: 0.2, data_dir: {account}-data}}
console: {{groups: [{", ".join(GROUP_IDS)}]}}
notify: {{private_to_group_admins: false, private_to_bot_admins: false}}
on_bot_joined: {{introduce: false}}
cluster: {{enabled: true, lease_ttl: {LEASE_TTL}, safety_margin: {SAFETY}, pinned: {{{pinned}}}}}
plugins:
  keyword_reply:
    max_replies_per_minute: 1000  # the handover probes ask every 0.25 s
    rules:
      - {{keywords: [在吗], match: exact, replies: ["在的"]}}
""",
        encoding="utf-8",
    )
    return path


_WORDS = ["今天天气不错", "有人吗", "哈哈哈", "明天几点开会", "收到", "谢谢大家", "中午吃什么", "在吗"]


def _chat(lines: int) -> bytes:
    # Members spread over the groups (no flood rule fires); one in eight lines gets a reply.
    return "".join(
        f"{GROUP_IDS[i % GROUPS]} m{i % 4_000}: {_WORDS[i % len(_WORDS)]}{'' if i % 8 == 7 else f' {i}'}\n"
        for i in range(lines)
    ).encode()


@dataclass
class _Stats:
    at: float
    xacts: int
    written: int


class _Db:
    """A throwaway database on the server, and a monitoring connection to it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.conn: Any = None
        self.polls = 0  # our own queries, taken out of the transaction counts

    async def __aenter__(self) -> _Db:
        import asyncpg

        admin = await asyncpg.connect(_dsn(), timeout=5)
        try:
            await admin.execute(f'CREATE DATABASE "{self.name}"')
        finally:
            await admin.close()
        return self

    async def connect(self) -> None:
        import asyncpg

        self.conn = await asyncpg.connect(_dsn(self.name), timeout=5)

    async def __aexit__(self, *exc: object) -> None:
        import asyncpg

        if self.conn is not None:
            await self.conn.close()
        admin = await asyncpg.connect(_dsn(), timeout=5)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            await admin.close()

    async def value(self, sql: str) -> Any:
        self.polls += 1
        return await self.conn.fetchval(sql)

    async def stats(self, *, written_at_least: int = 0) -> _Stats:
        """The database's counters. Backends report theirs at most once a second, so this
        waits that out, and then until `written_at_least` rows show (the writes just waited
        for have all been reported)."""
        await asyncio.sleep(1.1)
        deadline = time.perf_counter() + 10
        while True:
            self.polls += 2
            await self.conn.execute("SELECT pg_stat_clear_snapshot()")
            row = await self.conn.fetchrow(
                "SELECT xact_commit + xact_rollback AS xacts, tup_inserted + tup_updated + tup_deleted AS written "
                "FROM pg_stat_database WHERE datname = $1",
                self.name,
            )
            if int(row["written"]) >= written_at_least or time.perf_counter() > deadline:
                return _Stats(time.perf_counter(), int(row["xacts"]) - self.polls, int(row["written"]))
            await asyncio.sleep(0.2)


class _Fleet:
    """The `qunbot run` processes of one measurement."""

    def __init__(self, folder: Path, db: _Db, n: int) -> None:
        self.folder = folder
        self.db = db
        self.accounts = [_account(i) for i in range(n)]
        self.procs: dict[str, asyncio.subprocess.Process] = {}

    async def start(self) -> None:
        env = {**os.environ, "QUNBOT_LOG": "WARNING", "PYTHONPATH": str(REPO)}
        env.pop("QUNBOT_DATABASE_URL", None)
        for account in self.accounts:
            config = _config(self.folder, account, self.db.name, self.accounts)
            with (self.folder / f"{account}.out").open("wb") as out:
                self.procs[account] = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "bot",
                    "run",
                    "--config",
                    str(config),
                    cwd=self.folder,
                    env=env,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=out,
                    stderr=asyncio.subprocess.STDOUT,
                )
        await self.db.connect()
        # Ready: every account leased, and every group held by the account it is pinned to.
        await self._until(self._settled, 120, "every process to register and take its pinned groups")

    async def _settled(self) -> bool:
        with contextlib.suppress(Exception):  # the tables appear with the first migration
            held = await self.db.value(
                "SELECT count(*) FROM cluster_duty d JOIN cluster_accounts a USING (account_id) "
                "WHERE d.expires_at > now() AND a.expires_at > now()"
            )
            right = await self.db.value(
                "SELECT count(*) FROM cluster_duty WHERE expires_at > now() AND account_id = "
                "'acct_' || lpad((CAST(substr(group_id, 2) AS int) % " + str(len(self.accounts)) + ")::text, 2, '0')"
            )
            return bool(held == GROUPS and right == GROUPS)
        return False

    async def _until(self, check: Any, seconds: float, what: str, every: float = 0.2) -> None:
        deadline = time.perf_counter() + seconds
        while not await check():
            for account, proc in self.procs.items():
                if proc.returncode is not None:
                    log = (self.folder / f"{account}.out").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"{account} exited with {proc.returncode}:\n{log}")
            if time.perf_counter() > deadline:
                raise RuntimeError(f"timed out after {seconds:g} s waiting for {what}")
            await asyncio.sleep(every)

    async def feed(self, data: bytes) -> float:
        """Every process gets every line; seconds until the event log holds every row."""
        expected = len(self.procs) * data.count(b"\n")
        began = time.perf_counter()
        chunk = 64 * 1024
        for start in range(0, len(data), chunk):
            await self._write(data[start : start + chunk])

        async def recorded() -> bool:
            return int(await self.db.value("SELECT count(*) FROM event_log")) >= expected

        await self._until(recorded, 300, f"{expected} events recorded", every=0.05)
        return time.perf_counter() - began

    async def _write(self, data: bytes) -> None:
        for proc in self.procs.values():
            assert proc.stdin is not None
            proc.stdin.write(data)
        await asyncio.gather(*(p.stdin.drain() for p in self.procs.values() if p.stdin is not None))

    async def kill_and_wait_handover(self, victim: str) -> tuple[float, float]:
        """SIGKILL `victim`; then, every 0.25 s, a member asks 在吗 in each of its groups (on every
        other account, as WeChat delivers it). Returns the seconds from the kill to the first
        reply by another account in one of those groups, and to another account holding the
        duty in all of them (`cluster_duty`, polled every 50 ms)."""
        groups = [g for i, g in enumerate(GROUP_IDS) if self.accounts[i % len(self.accounts)] == victim]
        outputs = {a: self.folder / f"{a}.out" for a in self.procs if a != victim}
        seen = {a: path.stat().st_size for a, path in outputs.items()}
        proc = self.procs.pop(victim)
        killed = time.perf_counter()
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        quoted = ", ".join(f"'{g}'" for g in groups)
        first_reply: float | None = None
        all_taken: float | None = None
        next_probe = 0.0
        probes = 0
        while first_reply is None or all_taken is None:
            now = time.perf_counter()
            if now - killed > LEASE_TTL * 3:
                raise RuntimeError(f"no takeover of {victim}'s groups within {LEASE_TTL * 3:g} s")
            if first_reply is None and now >= next_probe:
                probes += 1
                await self._write("".join(f"{g} probe{probes}: 在吗\n" for g in groups).encode())
                next_probe = now + 0.25
            if first_reply is None:
                for account, path in outputs.items():
                    with path.open("rb") as out:
                        out.seek(seen[account])
                        fresh = out.read().decode(errors="replace")
                    if any(f"[{g} " in line and "在的" in line for line in fresh.splitlines() for g in groups):
                        first_reply = time.perf_counter() - killed
            if all_taken is None:
                others = await self.db.value(
                    f"SELECT count(*) FROM cluster_duty WHERE group_id IN ({quoted}) "
                    f"AND account_id <> '{victim}' AND expires_at > now()"
                )
                if int(others) == len(groups):
                    all_taken = time.perf_counter() - killed
            await asyncio.sleep(0.05)
        return first_reply, all_taken

    async def stop(self) -> None:
        for proc in self.procs.values():
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()


@dataclass
class _Run:
    events_per_s: float
    load_xacts_per_s: float
    load_written_per_s: float
    idle_xacts_per_s: float
    handover_s: tuple[float, float] | None


async def _measure(n: int, data: bytes, folder: Path, *, kill: bool) -> _Run:
    async with _Db(f"qunbot_bench_{secrets.token_hex(4)}") as db:
        fleet = _Fleet(folder, db, n)
        try:
            await fleet.start()
            idle0 = await db.stats()
            await asyncio.sleep(IDLE_SECONDS)
            idle1 = await db.stats()
            seconds = await fleet.feed(data)
            load1 = await db.stats(written_at_least=idle1.written + n * data.count(b"\n"))
            handover = await fleet.kill_and_wait_handover(fleet.accounts[1]) if kill else None
        finally:
            await fleet.stop()
        load_window = load1.at - idle1.at
        return _Run(
            events_per_s=n * data.count(b"\n") / seconds,
            load_xacts_per_s=(load1.xacts - idle1.xacts) / load_window,
            load_written_per_s=(load1.written - idle1.written) / load_window,
            idle_xacts_per_s=(idle1.xacts - idle0.xacts) / (idle1.at - idle0.at),
            handover_s=handover,
        )


async def _unreachable() -> str | None:
    import asyncpg

    try:
        conn = await asyncpg.connect(_dsn(), timeout=3)
    except Exception as exc:  # any failure: no server to measure on
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


async def figures() -> list[dict[str, object]]:
    why = await _unreachable()
    if why is not None:
        sys.stderr.write(f"bench cluster: skipped, no PostgreSQL server at QUNBOT_TEST_PG ({why})\n")
        return []
    with tempfile.TemporaryDirectory(prefix="qunbot-cluster-bench-") as tmp:
        # The baseline records as many events as the ten together, so both loads last long
        # enough to measure.
        one = await _measure(1, _chat(LINES * PROCESSES), Path(tmp), kill=False)
        many = await _measure(PROCESSES, _chat(LINES), Path(tmp), kill=True)
    setup = {"processes": PROCESSES, "groups": GROUPS, "lines_per_process": LINES, "lease_ttl": LEASE_TTL}
    assert many.handover_s is not None
    first_reply, all_taken = many.handover_s
    return [
        figure("cluster_events_recorded_per_s", many.events_per_s, "events/s", one.events_per_s, **setup),
        figure("cluster_db_xacts_per_s_under_load", many.load_xacts_per_s, "xacts/s", one.load_xacts_per_s),
        figure("cluster_db_rows_written_per_s_under_load", many.load_written_per_s, "rows/s", one.load_written_per_s),
        figure("cluster_db_xacts_per_s_idle", many.idle_xacts_per_s, "xacts/s", one.idle_xacts_per_s),
        figure("cluster_handover_first_reply_s", first_reply, "s", LEASE_TTL, groups_handed_over=GROUPS // PROCESSES),
        figure("cluster_handover_all_groups_s", all_taken, "s", LEASE_TTL),
    ]
