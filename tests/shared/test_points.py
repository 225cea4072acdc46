"""The shared points ledger: totals are ledger sums; refs make awards idempotent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.storage.db import Database
from bot.storage.points import PointsLedger
from bot.storage.settings import StorageSettings

T0 = datetime(2026, 12, 1, tzinfo=UTC)


async def test_ledger_sums_refs_and_top(tmp_path: Path) -> None:
    db = await Database.open(StorageSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'p.db'}"))
    try:
        ledger = PointsLedger(db)
        assert await ledger.add("g1", "alice", 5, "checkin", T0, ref="checkin:2026-12-01")
        assert not await ledger.add("g1", "alice", 5, "checkin", T0, ref="checkin:2026-12-01")
        await ledger.add("g1", "alice", 3, "streak_bonus", T0 + timedelta(days=1))
        await ledger.add("g1", "bob", 8, "admin", T0, by="owner1", note="活动奖励")
        await ledger.add("g1", "bob", -2, "admin", T0, by="owner1")
        await ledger.add("g2", "alice", 100, "checkin", T0)
        assert await ledger.total("g1", "alice") == 8
        assert await ledger.total("g1", "carol") == 0
        assert await ledger.top("g1") == [("alice", 8), ("bob", 6)]
        assert await ledger.top("g1", since=T0 + timedelta(hours=1)) == [("alice", 3)]
        assert [e.delta for e in await ledger.history("g1", "bob")] in ([8, -2], [-2, 8])
        assert await ledger.has_ref("g1", "alice", "checkin:2026-12-01")
    finally:
        await db.close()
