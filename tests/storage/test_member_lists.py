"""The recorder's side of member lists: members from before the bot, and departures that
no leave event announced."""

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, select

from bot.core.events import GroupMessage, Member, MemberList, MembersJoined, MembersLeft
from bot.storage.db import Database
from bot.storage.models import Contact, EventLog, Membership
from bot.storage.recorder import Recorder
from bot.storage.repo import MembershipRepo

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=SHANGHAI)
HOUR = timedelta(hours=1)


def people(*ids: str) -> tuple[Member, ...]:
    return tuple(Member(i, i.title()) for i in ids)


def listed(*ids: str, at: datetime = T0, group: str = "g1") -> MemberList:
    return MemberList(at=at, group_id=group, members=people(*ids), group_topic="老群")


@pytest.fixture
async def recorder(database: Database, tmp_path: Path) -> AsyncIterator[Recorder]:
    rec = Recorder(database, SHANGHAI, dead_letter_path=tmp_path / "dead.jsonl")
    yield rec
    await rec.stop()


async def stays(db: Database, group: str = "g1") -> list[tuple[str, Any, Any, Any]]:
    async with db.session() as s:
        rows = (
            await s.exec(
                select(Membership)
                .where(Membership.group_id == group)
                .order_by(col(Membership.member_id), col(Membership.id))
            )
        ).all()
    return [(m.member_id, m.joined_at, m.known_from, m.left_at) for m in rows]


async def leave_log(db: Database) -> list[tuple[str | None, Any]]:
    async with db.session() as s:
        rows = (await s.exec(select(EventLog).where(EventLog.type == "leave").order_by(col(EventLog.id)))).all()
    return [(e.member_id, e.meta) for e in rows]


async def test_a_first_list_records_everyone_present_join_time_unknown(database: Database, recorder: Recorder) -> None:
    recorder.record(listed("alice", "bob", "carol"))
    await recorder.flush()
    assert await stays(database) == [(m, None, T0, None) for m in ("alice", "bob", "carol")]
    async with database.session() as s:
        assert {c.id: c.name for c in (await s.exec(select(Contact))).all()} == {
            "alice": "Alice",
            "bob": "Bob",
            "carol": "Carol",
        }
    # Not newcomers: nothing knows when they joined.
    assert await MembershipRepo(database).member_since("g1", "alice") is None
    # The hourly list that follows finds everything in order: no write.
    recorder.record(listed("alice", "bob", "carol", at=T0 + HOUR))
    await recorder.flush()
    assert await stays(database) == [(m, None, T0, None) for m in ("alice", "bob", "carol")]


async def test_a_seen_join_keeps_its_time(database: Database, recorder: Recorder) -> None:
    recorder.record(MembersJoined(at=T0 - HOUR, group_id="g1", members=people("dave")))
    recorder.record(listed("alice", "dave"))
    await recorder.flush()
    assert await stays(database) == [("alice", None, T0, None), ("dave", T0 - HOUR, T0 - HOUR, None)]


async def test_someone_gone_without_a_leave_event_is_closed_at_the_list_time(
    database: Database, recorder: Recorder
) -> None:
    recorder.record(listed("alice", "bob", "carol", "dave"))
    await recorder.flush()
    recorder.record(listed("alice", "bob", "carol", at=T0 + HOUR))
    await recorder.flush()
    assert ("dave", None, T0, T0 + HOUR) in await stays(database)
    assert await leave_log(database) == [("dave", {"noticed": "member_list"})]
    # Back later, without a join event: a new stay, known from that list.
    recorder.record(listed("alice", "bob", "carol", "dave", at=T0 + 2 * HOUR))
    await recorder.flush()
    assert [s for s in await stays(database) if s[0] == "dave"] == [
        ("dave", None, T0, T0 + HOUR),
        ("dave", None, T0 + 2 * HOUR, None),
    ]


async def test_events_while_a_list_is_read_are_not_undone(database: Database, recorder: Recorder) -> None:
    recorder.record(listed("alice", "bob"))
    await recorder.flush()
    read_at = T0 + HOUR
    # Bob leaves and Carol joins while the list (read at `read_at`, with Bob, without Carol)
    # is on its way; their events reach the recorder first.
    recorder.record(MembersLeft(at=read_at + timedelta(seconds=2), group_id="g1", members=people("bob")))
    recorder.record(MembersJoined(at=read_at + timedelta(seconds=3), group_id="g1", members=people("carol")))
    recorder.record(listed("alice", "bob", at=read_at))
    await recorder.flush()
    got = await stays(database)
    assert ("bob", None, T0, read_at + timedelta(seconds=2)) in got
    assert [s for s in got if s[0] == "bob"] == [("bob", None, T0, read_at + timedelta(seconds=2))]
    assert ("carol", read_at + timedelta(seconds=3), read_at + timedelta(seconds=3), None) in got


async def test_a_list_that_lacks_most_of_the_group_closes_nothing(
    database: Database, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    everyone = [f"m{i}" for i in range(10)]
    recorder.record(listed(*everyone))
    await recorder.flush()
    # A platform still loading after log-in hands over 2 of 10: taken as incomplete.
    recorder.record(listed("m0", "m1", at=T0 + HOUR))
    await recorder.flush()
    assert all(left is None for *_rest, left in await stays(database))
    assert "taken as incomplete" in caplog.text
    # A few real departures are closed.
    recorder.record(listed(*everyone[:7], at=T0 + 2 * HOUR))
    await recorder.flush()
    assert sum(left is not None for *_rest, left in await stays(database)) == 3


async def test_a_late_join_event_gives_the_stay_its_join_time(database: Database, recorder: Recorder) -> None:
    recorder.record(listed("alice"))
    await recorder.flush()
    # The join happened before the list was read; its event arrives after.
    recorder.record(MembersJoined(at=T0 - timedelta(minutes=5), group_id="g1", members=people("alice")))
    await recorder.flush()
    joined = T0 - timedelta(minutes=5)
    assert await stays(database) == [("alice", joined, joined, None)]
    # A join event from after the list, for someone with an open stay, changes nothing.
    recorder.record(listed("bob", "alice", at=T0 + HOUR))
    recorder.record(MembersJoined(at=T0 + 2 * HOUR, group_id="g1", members=people("bob")))
    await recorder.flush()
    assert ("bob", None, T0 + HOUR, None) in await stays(database)


async def test_leaves_of_members_from_before_the_bot_close_their_stays(database: Database, recorder: Recorder) -> None:
    recorder.record(listed("alice", "bob"))
    recorder.record(MembersLeft(at=T0 + HOUR, group_id="g1", members=people("bob"), removed_by=Member("owner")))
    recorder.record(GroupMessage(at=T0 + HOUR, group_id="g1", sender=Member("alice"), text="hi"))
    await recorder.flush()
    assert await stays(database) == [("alice", None, T0, None), ("bob", None, T0, T0 + HOUR)]
    async with database.session() as s:
        bob = (await s.exec(select(Membership).where(Membership.member_id == "bob"))).one()
    assert bob.removed is True


async def test_many_groups_in_one_batch(database: Database, recorder: Recorder) -> None:
    for g in range(30):
        recorder.record(listed(*(f"u{g}_{i}" for i in range(20)), group=f"g{g}"))
    await recorder.flush()
    async with database.session() as s:
        assert len((await s.exec(select(Membership))).all()) == 600
    for g in range(30):
        recorder.record(listed(*(f"u{g}_{i}" for i in range(19)), group=f"g{g}", at=T0 + HOUR))
    await recorder.flush()
    assert len(await leave_log(database)) == 30


async def test_an_hourly_read_of_many_groups_is_split_into_batches(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.storage.recorder import buffer

    monkeypatch.setattr(buffer, "MAX_LISTED_PER_BATCH", 200)
    rec = Recorder(database, SHANGHAI, dead_letter_path=tmp_path / "dead.jsonl")
    written: list[int] = []
    write = rec._write

    async def counting(events: Any) -> None:
        written.append(sum(len(e.members) for e in events if isinstance(e, MemberList)))
        await write(events)

    rec._write = counting  # type: ignore[method-assign]
    limit = buffer.MAX_LISTED_PER_BATCH
    per_group = 50
    groups = limit // per_group * 2 + 3
    for g in range(groups):
        rec.record(listed(*(f"u{g}_{i}" for i in range(per_group)), group=f"g{g}"))
    assert rec.buffered_bytes > groups * per_group * 100  # its members are what a list weighs
    await rec.flush()
    assert sum(written) == groups * per_group and len(written) == 3 and max(written) <= limit
    async with database.session() as s:
        assert len((await s.exec(select(Membership))).all()) == groups * per_group
