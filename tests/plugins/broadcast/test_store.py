"""Delivery claims: the insert that loses sends nothing, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bot.storage.db import Database
from plugins.broadcast.models import DeliveryState
from plugins.broadcast.store import BroadcastStore

T0 = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
CLAIM = DeliveryState.CLAIMED.value


async def _exercise(db: Database) -> None:
    store = BroadcastStore(db)
    await store.ensure_yaml(["morning"], T0)
    await store.ensure_yaml(["morning"], T0 + timedelta(days=1))  # existing rows keep their state
    row = await store.get("morning")
    assert row is not None and row.checked_at == T0

    groups = [("g1", CLAIM, None), ("g2", CLAIM, None), ("g3", DeliveryState.SKIPPED.value, "off")]
    first = await store.claim("morning", T0, groups, T0)
    assert first is not None and sorted(c.group_id for c in first) == ["g1", "g2", "g3"]
    again = await store.claim("morning", T0, groups, T0)
    assert again == []  # lost: nothing to send
    assert await store.record_missed("morning", [T0], ["g1", "g2"], T0) == 0  # a claim is never overwritten
    await store.finish(first[0].id, DeliveryState.SENT, None, T0)
    await store.finish(first[1].id, DeliveryState.FAILED, "bot not in group", T0)
    assert await store.record_missed("morning", [T0 + timedelta(days=1), T0 + timedelta(days=2)], ["g1"], T0) == 2
    assert (await store.get("morning")).checked_at == T0 + timedelta(days=2)  # type: ignore[union-attr]

    # Concurrent claimers of one occurrence: exactly one wins each group.
    results = await asyncio.gather(*(store.claim("morning", T0 + timedelta(days=3), groups[:2], T0) for _ in range(6)))
    won = sorted(c.group_id for r in results for c in (r or ()))
    assert won == ["g1", "g2"]

    await store.set_paused("morning", True, T0)
    assert await store.claim("morning", T0 + timedelta(days=4), groups, T0, only_if_active=True) is None
    await store.set_paused("morning", False, T0 + timedelta(days=5))
    assert (await store.get("morning")).checked_at == T0 + timedelta(days=5)  # type: ignore[union-attr]

    report = await store.report("morning")
    assert dict(report.per_group["g1"]) == {"sent": 1, "missed": 2, "claimed": 1}
    assert dict(report.per_group["g2"]) == {"failed": 1, "claimed": 1}
    assert dict(report.per_group["g3"]) == {"skipped": 1}
    assert report.occurrences == 4 and report.per_occurrence[0][0] == T0 + timedelta(days=3)
    assert report.failures == [(T0, "g2", "bot not in group")]

    made = await store.create_chat({"x": 1}, "owner1", "g1", T0)
    assert made.name == str(made.id) and [d.name for d in await store.chat_defs()] == [made.name]
    assert await store.mark_deleted(made.name) and await store.chat_defs() == []


async def test_claims(database: Database) -> None:
    """Runs on SQLite and on PostgreSQL (the shared `database` fixture)."""
    await _exercise(database)
