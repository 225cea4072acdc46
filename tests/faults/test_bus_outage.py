"""The notices listener through a real database outage (a throwaway PostgreSQL stopped and
started): it reconnects with back-off, warns once, and has its subscribers resync."""

from __future__ import annotations

import asyncio
import logging

import pytest
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import create_async_engine

from bot.cluster.bus import PgBus
from bot.core.bus import Topic
from bot.storage.db import Database
from tests.faults.pgserver import ThrowawayPostgres, missing_reason

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason()))]


class Ping(BaseModel):
    n: int


PING = Topic("ping", Ping)


async def test_the_listener_comes_back_after_an_outage_and_resyncs(
    postgres: ThrowawayPostgres, caplog: pytest.LogCaptureFixture
) -> None:
    db = await Database.open(postgres.url)
    await db.close()
    engines = [create_async_engine(postgres.url, connect_args={"timeout": 2}) for _ in range(2)]
    a = PgBus(engines[0], connect_timeout=2)
    b = PgBus(engines[1], backoff_initial=0.1, backoff_max=0.5, probe_every=0.3, connect_timeout=2)
    got: list[int] = []
    resyncs: list[int] = []

    async def on(ping: Ping) -> None:
        got.append(ping.n)

    async def resync() -> None:
        resyncs.append(len(got))

    b.subscribe(PING, on, on_resync=resync)
    try:
        await a.start()
        await b.start()
        await a.publish(PING, Ping(n=1))
        for _ in range(50):
            if got:
                break
            await asyncio.sleep(0.05)
        assert got == [1]
        caplog.set_level(logging.WARNING, logger="qunbot.cluster.bus")
        await asyncio.to_thread(postgres.stop)
        await asyncio.sleep(1)  # several reconnect attempts fail meanwhile
        await a.publish(PING, Ping(n=2))  # lost: nobody can hear it (logged, not raised)
        await asyncio.to_thread(postgres.start)
        for _ in range(100):
            if b.connects == 2 and resyncs:
                break
            await asyncio.sleep(0.1)
        assert b.connects == 2 and resyncs == [1]
        await a.publish(PING, Ping(n=3))
        for _ in range(50):
            if got == [1, 3]:
                break
            await asyncio.sleep(0.05)
        assert got == [1, 3]
        warnings = [r.getMessage() for r in caplog.records if r.name == "qunbot.cluster.bus"]
        down = [w for w in warnings if "lost the listening connection" in w or "cannot listen" in w]
        assert len(down) == 2, warnings  # one per listener (a's and b's) for the outage, not one per attempt
        assert any("listening again after" in w for w in warnings)
    finally:
        for bus in (a, b):
            await bus.stop()
        for engine in engines:
            await engine.dispose()
