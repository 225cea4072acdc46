"""The anti-spam tables and repository on SQLite and PostgreSQL (skipped when no server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlmodel import select

from bot.core.events import GroupMessage, Member, MembersJoined
from bot.storage.db import Database
from bot.storage.recorder import Recorder
from bot.storage.settings import StorageSettings
from plugins.antispam.models import AntispamBan, AntispamDecision, AntispamStrike, Outcome
from plugins.antispam.store import AntispamStore

T0 = datetime(2026, 12, 1, 8, tzinfo=UTC)
TZ = ZoneInfo("Asia/Shanghai")


def _warned(group_id: str, member_id: str, at: datetime) -> AntispamDecision:
    return AntispamDecision(
        at=at, group_id=group_id, member_id=member_id, action="warn", outcome=Outcome.WARNED, rules="contact"
    )


async def test_audit_strikes_and_labels(database: Database) -> None:
    store = AntispamStore(database)
    checks = [{"name": "ad_content", "spam": True, "details": "得分 9"}]
    first = await store.record(
        AntispamDecision(
            at=T0,
            group_id="g1",
            member_id="m",
            text="兼职日结",
            action="kick",
            outcome=Outcome.REMOVED,
            rules="ad_content",
            checks=checks,
            label="spam",
        )
    )
    second = await store.record(
        AntispamDecision(
            at=T0, group_id="g1", member_id="n", text="加V", action="warn", outcome=Outcome.WARNED, rules="contact"
        )
    )
    assert second > first
    rows = await store.decisions("g1")
    assert [r.member_id for r in rows] == ["n", "m"]  # newest first
    assert next(r for r in rows if r.member_id == "m").checks == checks

    for gid, at in (("g1", T0), ("g1", T0 + timedelta(hours=2)), ("g2", T0)):
        await store.record_action(
            _warned(gid, "n", at), strike=AntispamStrike(group_id=gid, member_id="n", at=at, rules="contact")
        )
    assert sorted(await store.recent_strikes(T0 - timedelta(hours=1))) == [
        ("g1", "n", T0),
        ("g1", "n", T0 + timedelta(hours=2)),
        ("g2", "n", T0),
    ]
    assert await store.recent_strikes(T0 + timedelta(hours=1)) == [("g1", "n", T0 + timedelta(hours=2))]
    assert await store.clear_strikes("n", "g1") == 2
    assert await store.recent_strikes(T0 - timedelta(days=1)) == [("g2", "n", T0)]

    assert await store.labelled() == [("兼职日结", True)]
    await store.relabel_last_removal("m", "ham")
    assert await store.labelled() == [("兼职日结", False)]


async def test_bans_are_upserted_and_lifted(database: Database) -> None:
    store = AntispamStore(database)
    for ban in (
        AntispamBan(member_id="s", member_name="小美", group_id="g1", everywhere=True, at=T0, rules="a"),
        AntispamBan(member_id="s", group_id="g1", everywhere=True, at=T0 + timedelta(1), rules="b"),
        AntispamBan(member_id="s", group_id="g2", everywhere=False, at=T0, rules="c"),
    ):
        await store.record_action(_warned(ban.group_id, "s", ban.at), ban=ban)
    bans = await store.bans()
    assert sorted((b.group_id, b.rules, b.member_name) for b in bans) == [("g1", "b", "小美"), ("g2", "c", "")]
    lifted = await store.unban("s", ["g3"])  # a global ban is lifted from any group
    assert [b.group_id for b in lifted] == ["g1"]
    assert [b.group_id for b in await store.unban("s")] == ["g2"]
    assert await store.bans() == []


async def test_several_actions_in_one_transaction_link_and_upsert_as_one_by_one(database: Database) -> None:
    store = AntispamStore(database)
    warned, again, removed = (_warned("g1", "s", T0 + timedelta(minutes=i)) for i in range(3))
    ids = await store.record_actions(
        [
            (warned, AntispamStrike(group_id="g1", member_id="s", at=T0, rules="contact"), None),
            (again, None, AntispamBan(member_id="s", group_id="g1", at=T0, rules="a")),
            (removed, None, AntispamBan(member_id="s", group_id="g1", at=T0 + timedelta(minutes=2), rules="b")),
        ]
    )
    assert ids == sorted(ids) and len(set(ids)) == 3
    async with database.session() as s:
        strikes = list((await s.exec(select(AntispamStrike))).all())
    assert [st.decision_id for st in strikes] == [ids[0]]
    assert [(b.rules, b.decision_id) for b in await store.bans()] == [("b", ids[2])]  # the later ban refreshed it


async def test_recent_joins_come_with_their_message_counts(db_url: str) -> None:
    db = await Database.open(StorageSettings(url=db_url))
    try:
        recorder = Recorder(db, TZ, db.settings)
        await recorder.start()
        recorder.record(MembersJoined(at=T0, group_id="g1", members=(Member("new"),)))
        recorder.record(MembersJoined(at=T0 - timedelta(days=60), group_id="g1", members=(Member("old"),)))
        for i in range(2):
            recorder.record(
                GroupMessage(
                    at=T0 + timedelta(minutes=i + 1),
                    group_id="g1",
                    sender=Member("new"),
                    text=f"hi {i}",
                    message_id=f"x{i}",
                )
            )
        await recorder.stop()
        joins = await AntispamStore(db).recent_joins(T0 - timedelta(days=30), TZ)
    finally:
        await db.close()
    assert [(j.group_id, j.member_id, j.joined_at, j.messages) for j in joins] == [("g1", "new", T0, 2)]


async def test_an_action_is_written_in_one_transaction(database: Database) -> None:
    store = AntispamStore(database)
    warned = await store.record_action(
        AntispamDecision(at=T0, group_id="g1", member_id="m", action="warn", outcome=Outcome.WARNED),
        strike=AntispamStrike(group_id="g1", member_id="m", at=T0, rules="contact"),
    )
    removed = await store.record_action(
        AntispamDecision(at=T0, group_id="g1", member_id="m", action="kick", outcome=Outcome.REMOVED),
        ban=AntispamBan(member_id="m", group_id="g1", at=T0, rules="contact"),
    )
    assert [(gid, mid) for gid, mid, _ in await store.recent_strikes(T0 - timedelta(hours=1))] == [("g1", "m")]
    assert await store.recent_strikes(T0 - timedelta(hours=1), until=T0) == []
    async with database.session() as s:
        strike = (await s.exec(select(AntispamStrike))).one()
    assert strike.decision_id == warned
    assert [b.decision_id for b in await store.bans()] == [removed]

    broken = AntispamBan(member_id="m2", group_id="g1", at=T0)
    broken.member_id = None  # type: ignore[assignment]  # NOT NULL: the ban's insert fails
    with pytest.raises(sa.exc.IntegrityError):
        await store.record_action(
            AntispamDecision(at=T0, group_id="g1", member_id="m2", action="kick", outcome=Outcome.REMOVED), ban=broken
        )
    assert [d.member_id for d in await store.decisions()] == ["m", "m"]  # the decision went with it
