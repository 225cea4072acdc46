"""A database outage with several accounts: nobody can prove it holds a duty, so nobody acts;
when the database is back, exactly one account in the group takes the duty again, under a new
fencing token. On a throwaway server (initdb/pg_ctl on a free port), stopped and restarted."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from bot.cluster import ClusterDuty, ClusterSettings
from bot.storage.db import Database
from tests.faults.pgserver import ThrowawayPostgres, missing_reason

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason()))]

FAST = ClusterSettings(enabled=True, lease_ttl=1.5, safety_margin=0.2)


async def test_an_outage_stops_every_account_and_one_takes_over_after(
    postgres: ThrowawayPostgres, caplog: pytest.LogCaptureFixture
) -> None:
    db = await Database.open(postgres.url)
    await db.close()
    engines = [create_async_engine(postgres.url, connect_args={"timeout": 2}) for _ in range(2)]
    a, b = (ClusterDuty(e, f"bot_{n}", FAST) for e, n in zip(engines, "ab", strict=True))
    try:
        await a.start(["g1"])
        await b.start(["g1"])
        token = a.token("g1")
        assert a.duties == {"g1": 1} and b.duties == {}
        caplog.set_level(logging.WARNING, logger="qunbot.cluster")
        await asyncio.to_thread(postgres.stop)
        await asyncio.sleep(FAST.lease_ttl + 0.5)
        # Neither can renew: neither acts (the outbox's check goes to the database and fails).
        assert a.duties == {} and b.duties == {}
        assert await a.may_act("g1", token) is False
        lost = [r.getMessage() for r in caplog.records if "lost its lease" in r.getMessage()]
        assert len(lost) == 2  # one warning per account for the whole outage, not one per round
        await asyncio.to_thread(postgres.start)
        for _ in range(100):  # the background renewals retake it within a round or two
            if a.duties or b.duties:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(FAST.renew_every * 2)
        holders = {**a.duties, **b.duties}
        assert len([d for d in (a, b) if d.duties]) == 1
        assert holders["g1"] == token + 1  # a takeover after the lapse, even by the same account
        assert any("lease regained" in r.getMessage() for r in caplog.records)
    finally:
        for duty in (a, b):
            await duty.stop()  # logs and carries on if the database is away
        for engine in engines:
            await engine.dispose()
