"""The LISTEN/NOTIFY bus between processes sharing one PostgreSQL: each bus here has its own
engine and listening connection, as separate processes would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import asyncpg
import pytest
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import create_async_engine

from bot.cluster.bus import PgBus, listener_dsn
from bot.core.bus import Topic
from tests.cluster.test_duty import pg_url  # noqa: F401  (fixture)

pytestmark = pytest.mark.postgres


class Ping(BaseModel):
    n: int


PING = Topic("ping", Ping)
OTHER = Topic("other", Ping)


@asynccontextmanager
async def bus(url: str, **kwargs: float) -> AsyncIterator[PgBus]:
    engine = create_async_engine(url)
    one = PgBus(engine, **kwargs)
    await one.start()
    try:
        yield one
    finally:
        await one.stop()
        await engine.dispose()


async def until(check: Callable[[], bool], seconds: float = 5.0) -> float:
    """Poll `check` for up to `seconds`; returns how long it took."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not check():
        assert loop.time() - started < seconds, "condition not reached in time"
        await asyncio.sleep(0.02)
    return loop.time() - started


async def test_a_notice_reaches_the_other_process_not_the_sender(pg_url: str) -> None:  # noqa: F811
    async with bus(pg_url) as a, bus(pg_url) as b:
        got: dict[str, list[int]] = {"a": [], "b": [], "b-other": []}

        async def on(name: str, ping: Ping) -> None:
            got[name].append(ping.n)

        a.subscribe(PING, lambda p: on("a", p))
        b.subscribe(PING, lambda p: on("b", p))
        b.subscribe(OTHER, lambda p: on("b-other", p))
        for n in range(3):
            await a.publish(PING, Ping(n=n))
        await until(lambda: len(got["b"]) == 3, 1.0)
        await asyncio.sleep(0.1)
        assert got == {"a": [], "b": [0, 1, 2], "b-other": []}  # in order, once, on its topic only


async def test_unsubscribe_and_a_failing_handler(pg_url: str) -> None:  # noqa: F811
    async with bus(pg_url) as a, bus(pg_url) as b:
        got: list[int] = []

        async def broken(_ping: Ping) -> None:
            raise RuntimeError("boom")

        async def fine(ping: Ping) -> None:
            got.append(ping.n)

        b.subscribe(PING, broken)
        stop = b.subscribe(PING, fine)
        await a.publish(PING, Ping(n=1))
        await until(lambda: got == [1], 1.0)  # the failing handler did not stop the other
        stop()
        seen = asyncio.Event()

        async def marker(_ping: Ping) -> None:
            seen.set()

        b.subscribe(OTHER, marker)
        await a.publish(PING, Ping(n=2))
        await a.publish(OTHER, Ping(n=3))  # notices are handled in order: once this one is, n=2 was too
        await asyncio.wait_for(seen.wait(), 1.0)
        assert got == [1]


async def test_a_malformed_or_foreign_notice_is_ignored(pg_url: str) -> None:  # noqa: F811
    async with bus(pg_url) as b:
        got: list[int] = []

        async def on(ping: Ping) -> None:
            got.append(ping.n)

        b.subscribe(PING, on)
        conn = await asyncpg.connect(listener_dsn(b.engine))
        try:
            await conn.execute("SELECT pg_notify('qunbot', 'not json')")
            await conn.execute("""SELECT pg_notify('qunbot', '{"topic": "ping", "origin": "x", "data": {"n": "?"}}')""")
            await conn.execute("""SELECT pg_notify('qunbot', '{"topic": "ping", "origin": "x", "data": {"n": 7}}')""")
        finally:
            await conn.close()
        await until(lambda: got == [7], 1.0)


async def test_the_listener_survives_a_dropped_connection_and_resyncs(pg_url: str) -> None:  # noqa: F811
    async with bus(pg_url) as a, bus(pg_url, backoff_initial=0.05, probe_every=0.2) as b:
        got: list[int] = []
        resyncs: list[int] = []

        async def on(ping: Ping) -> None:
            got.append(ping.n)

        async def resync() -> None:
            resyncs.append(len(got))

        b.subscribe(PING, on, on_resync=resync)
        assert b.connects == 1 and b.resyncs == 0
        assert b._conn is not None
        pid = b._conn.get_server_pid()
        admin = await asyncpg.connect(listener_dsn(a.engine))
        try:
            # The database ends the listening session (as a restart or a network cut would).
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()
        await until(lambda: b.connects == 2 and b.resyncs == 1, 5.0)
        assert resyncs == [0]  # told to re-read what notices sent meanwhile would have said
        await a.publish(PING, Ping(n=5))
        await until(lambda: got == [5], 1.0)


async def test_a_notice_too_large_is_not_sent(pg_url: str, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    class Big(BaseModel):
        text: str

    async with bus(pg_url) as a:
        await a.publish(Topic("big", Big), Big(text="x" * 9000))
    assert "too large to send" in caplog.text


async def test_sqlite_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    try:
        with pytest.raises(ValueError, match="needs PostgreSQL"):
            PgBus(engine)
    finally:
        await engine.dispose()


async def test_subscribers_also_resync_on_a_timer(pg_url: str) -> None:  # noqa: F811
    """A notice the sender could not send is not lost for good: every process re-reads anyway."""
    async with bus(pg_url, probe_every=0.05, resync_every=0.1) as b:
        resyncs: list[int] = []

        async def resync() -> None:
            resyncs.append(1)

        b.subscribe(PING, lambda _p: asyncio.sleep(0), on_resync=resync)
        await until(lambda: len(resyncs) >= 2, 2.0)
        assert b.connects == 1
