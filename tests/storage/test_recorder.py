# Over 500 lines: the tests of one package, bot/storage/recorder/.
import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from bot.core.events import (
    BotJoinedGroup,
    BotLeftGroup,
    Event,
    FriendRequest,
    GroupMessage,
    GroupRenamed,
    Member,
    MembersJoined,
    MembersLeft,
    MessageKind,
    PrivateMessage,
    Tick,
)
from bot.storage import bulk, points
from bot.storage.db import Database
from bot.storage.models import Contact, DailyActivity, EventLog, Group, Membership
from bot.storage.recorder import CONTACT_REFRESH, OutboundMessage, Recorder, event_from_json, event_to_json, writer
from bot.storage.recorder.writer import BatchWriter
from bot.storage.repo import MembershipRepo
from bot.storage.settings import StorageSettings

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=SHANGHAI)

ALICE = Member("alice", "Alice")
BOB = Member("bob", "Bob")
OWNER = Member("owner1", "群主")


def msg(text: str = "hi", *, at: datetime = T0, sender: Member = ALICE, group: str = "g1", **kw: Any) -> GroupMessage:
    return GroupMessage(at=at, group_id=group, sender=sender, text=text, **kw)


@pytest.fixture
def settings(db_url: str) -> StorageSettings:
    return StorageSettings(url=db_url)


@pytest.fixture
async def recorder(database: Database, tmp_path: Path) -> AsyncIterator[Recorder]:
    rec = Recorder(database, SHANGHAI, dead_letter_path=tmp_path / "dead.jsonl")
    yield rec
    await rec.stop()


async def rows(db: Database, model: Any, *order: Any) -> list[Any]:
    async with db.session() as s:
        return list((await s.exec(select(model).order_by(*order))).all())


async def test_record_is_buffered_until_flush(database: Database, recorder: Recorder) -> None:
    for i in range(5):
        recorder.record(msg(f"m{i}", at=T0 + timedelta(seconds=i), message_id=f"id{i}"))
    assert recorder.pending == 5
    assert await rows(database, EventLog, col(EventLog.id)) == []
    await recorder.flush()
    assert recorder.pending == 0
    log = await rows(database, EventLog, col(EventLog.id))
    assert [(e.type, e.group_id, e.member_id, e.text, e.message_id, e.kind) for e in log] == [
        ("message", "g1", "alice", f"m{i}", f"id{i}", "text") for i in range(5)
    ]
    assert log[0].at == T0
    assert log[0].meta is None


async def test_batches_of_batch_size_all_written(database: Database, tmp_path: Path) -> None:
    rec = Recorder(database, SHANGHAI, StorageSettings(url=database.url, batch_size=7))
    for i in range(50):
        rec.record(msg(f"m{i}", at=T0 + timedelta(seconds=i), sender=Member(f"u{i % 5}", f"U{i % 5}")))
    await rec.flush()
    assert rec.written == 50
    async with database.session() as s:
        assert (await s.exec(select(sa.func.count()).select_from(EventLog))).one() == 50
    counts = {d.member_id: d.messages for d in await rows(database, DailyActivity, col(DailyActivity.member_id))}
    assert counts == {f"u{i}": 10 for i in range(5)}


async def test_message_details_and_contacts(database: Database, recorder: Recorder) -> None:
    recorder.record(
        msg(
            "看这个",
            kind=MessageKind.URL,
            url="http://example.com/x",
            mentions=("bob",),
            mentions_bot=True,
            group_topic="宝妈交流群",
        )
    )
    recorder.record(msg("later", at=T0 + timedelta(minutes=5), sender=Member("alice", "Alice2")))
    recorder.record(msg("older, replayed", at=T0 - timedelta(days=1), sender=Member("alice", "OldName")))
    await recorder.flush()
    first = (await rows(database, EventLog, col(EventLog.id)))[0]
    assert first.kind == "url"
    assert first.meta == {"url": "http://example.com/x", "mentions": ["bob"], "mentions_bot": True}
    [contact] = await rows(database, Contact)
    assert contact.name == "Alice2"  # the newest name wins, an older event does not
    assert contact.first_seen == T0 - timedelta(days=1)
    assert contact.last_seen == T0 + timedelta(minutes=5)
    [group] = await rows(database, Group)
    assert (group.id, group.topic, group.active) == ("g1", "宝妈交流群", True)


async def test_contacts_across_batches(database: Database, recorder: Recorder) -> None:
    recorder.record(msg(at=T0, sender=Member("alice", "Alice")))
    await recorder.flush()
    recorder.record(msg(at=T0 + timedelta(hours=1), sender=Member("alice", "")))  # no name: keep the old one
    await recorder.flush()
    recorder.record(msg(at=T0 - timedelta(hours=1), sender=Member("alice", "Stale")))  # late arrival
    await recorder.flush()
    [contact] = await rows(database, Contact)
    assert contact.name == "Alice"
    assert (contact.first_seen, contact.last_seen) == (T0 - timedelta(hours=1), T0 + timedelta(hours=1))


async def test_chat_refreshes_a_contact_at_most_hourly(database: Database, recorder: Recorder) -> None:
    recorder.record(msg(at=T0, sender=Member("alice", "Alice")))
    await recorder.flush()
    recorder.record(msg(at=T0 + timedelta(minutes=30), sender=Member("alice", "Alice")))
    await recorder.flush()
    [contact] = await rows(database, Contact)
    assert contact.last_seen == T0  # seen again within the hour, same name: no row written
    recorder.record(msg(at=T0 + timedelta(minutes=40), sender=Member("alice", "Alice B")))
    await recorder.flush()
    [contact] = await rows(database, Contact)
    assert (contact.name, contact.last_seen) == ("Alice B", T0 + timedelta(minutes=40))  # a new name: at once
    later = T0 + timedelta(minutes=40) + CONTACT_REFRESH
    recorder.record(msg(at=later, sender=Member("alice", "")))
    await recorder.flush()
    [contact] = await rows(database, Contact)
    assert (contact.name, contact.last_seen) == ("Alice B", later)
    assert len(await rows(database, EventLog)) == 4  # every message is logged regardless


async def test_a_failed_batch_does_not_count_its_contacts_as_written(
    database: Database, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = BatchWriter.write_daily
    calls = 0

    async def flaky(self: BatchWriter, conn: Any, daily: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:  # after the contacts' upsert, in the same transaction
            raise sa.exc.OperationalError("INSERT", {}, ConnectionResetError("connection reset by peer"))
        await real(self, conn, daily)

    monkeypatch.setattr(BatchWriter, "write_daily", flaky)
    recorder.record(msg(at=T0, sender=Member("alice", "Alice")))
    await recorder.flush()  # the connection broke: an outage, the event stays buffered
    assert (recorder.pending, database.health.up) == (1, False)
    await recorder.flush()
    assert calls == 2
    assert (recorder.pending, database.health.up) == (0, True)
    [contact] = await rows(database, Contact)
    assert (contact.name, contact.last_seen) == ("Alice", T0)


async def test_joins_with_inviter_and_source(database: Database, recorder: Recorder) -> None:
    recorder.record_membership_source("g1", "bob", "keyword:进群")
    recorder.record(MembersJoined(at=T0, group_id="g1", members=(ALICE, BOB), inviter=OWNER, group_topic="T"))
    await recorder.flush()
    log = await rows(database, EventLog, col(EventLog.id))
    assert [(e.type, e.member_id, e.meta) for e in log] == [
        ("join", "alice", {"inviter": "owner1"}),
        ("join", "bob", {"inviter": "owner1", "source": "keyword:进群"}),
    ]
    members = await MembershipRepo(database).current_members("g1")
    assert [(m.member_id, m.inviter_id, m.source, m.joined_at) for m in members] == [
        ("alice", "owner1", None, T0),
        ("bob", "owner1", "keyword:进群", T0),
    ]
    names = {c.id: c.name for c in await rows(database, Contact)}
    assert names == {"alice": "Alice", "bob": "Bob", "owner1": "群主"}


async def test_leave_and_rejoin_make_two_membership_rows(database: Database, recorder: Recorder) -> None:
    # All in one batch: the order of join, leave, rejoin must survive the bulk writes.
    recorder.record(MembersJoined(at=T0, group_id="g1", members=(ALICE,)))
    recorder.record(MembersLeft(at=T0 + timedelta(days=1), group_id="g1", members=(ALICE,), removed_by=OWNER))
    recorder.record(MembersJoined(at=T0 + timedelta(days=2), group_id="g1", members=(ALICE,)))
    await recorder.flush()
    # And across batches: leave on their own this time.
    recorder.record(MembersLeft(at=T0 + timedelta(days=3), group_id="g1", members=(ALICE,)))
    await recorder.flush()
    stays = await MembershipRepo(database).history("g1", "alice")
    assert [(m.joined_at, m.left_at, m.removed) for m in stays] == [
        (T0, T0 + timedelta(days=1), True),
        (T0 + timedelta(days=2), T0 + timedelta(days=3), False),
    ]
    leave = [e for e in await rows(database, EventLog, col(EventLog.id)) if e.type == "leave"]
    assert [e.meta for e in leave] == [{"removed_by": "owner1"}, None]


async def test_duplicate_join_keeps_one_open_stay(database: Database, recorder: Recorder) -> None:
    recorder.record(MembersJoined(at=T0, group_id="g1", members=(ALICE,)))
    recorder.record(MembersJoined(at=T0 + timedelta(seconds=1), group_id="g1", members=(ALICE,)))
    await recorder.flush()
    recorder.record(MembersJoined(at=T0 + timedelta(seconds=2), group_id="g1", members=(ALICE,)))
    await recorder.flush()
    assert [m.joined_at for m in await MembershipRepo(database).history("g1", "alice")] == [T0]
    assert await MembershipRepo(database).member_since("g1", "alice") == T0


async def test_leave_of_a_member_never_seen_is_a_stay_of_unknown_start(database: Database, recorder: Recorder) -> None:
    # Someone in the group since before the bot, who leaves before any member list: the
    # leave still counts, once, however often it is delivered.
    recorder.record(MembersLeft(at=T0, group_id="g1", members=(BOB,)))
    recorder.record(MembersLeft(at=T0, group_id="g1", members=(BOB,)))
    await recorder.flush()
    recorder.record(MembersLeft(at=T0, group_id="g1", members=(BOB,)))
    await recorder.flush()
    assert [e.type for e in await rows(database, EventLog)] == ["leave"] * 3
    [stay] = await rows(database, Membership)
    assert (stay.joined_at, stay.known_from, stay.left_at, stay.removed) == (None, T0, T0, False)


async def test_rename_updates_the_group_topic(database: Database, recorder: Recorder) -> None:
    recorder.record(msg(group_topic="旧名"))
    recorder.record(
        GroupRenamed(at=T0 + timedelta(minutes=1), group_id="g1", old_topic="旧名", new_topic="新名", changed_by=OWNER)
    )
    await recorder.flush()
    [group] = await rows(database, Group)
    assert group.topic == "新名"
    rename = (await rows(database, EventLog, col(EventLog.id)))[-1]
    assert (rename.type, rename.member_id, rename.meta) == (
        "rename",
        "owner1",
        {"old_topic": "旧名", "new_topic": "新名", "changed_by": "owner1"},
    )


async def test_bot_joined_and_left_flip_the_active_flag(database: Database, recorder: Recorder) -> None:
    recorder.record(BotJoinedGroup(at=T0, group_id="g2", inviter=OWNER, group_topic="新群"))
    await recorder.flush()
    [group] = await rows(database, Group)
    assert (group.topic, group.active, group.registered_at, group.left_at) == ("新群", True, T0, None)
    later = T0 + timedelta(days=3)
    recorder.record(BotLeftGroup(at=later, group_id="g2", removed_by=OWNER))
    await recorder.flush()
    [group] = await rows(database, Group)
    assert (group.topic, group.active, group.left_at) == ("新群", False, later)
    recorder.record(msg(at=later + timedelta(seconds=1), group="g2"))  # a late message does not revive it
    await recorder.flush()
    [group] = await rows(database, Group)
    assert group.active is False
    recorder.record(BotJoinedGroup(at=later + timedelta(days=1), group_id="g2"))
    await recorder.flush()
    [group] = await rows(database, Group)
    assert (group.active, group.left_at, group.registered_at) == (True, None, T0)
    types = [e.type for e in await rows(database, EventLog, col(EventLog.id))]
    assert types == ["bot_joined", "bot_left", "message", "bot_joined"]


async def test_private_friend_request_and_outbound(database: Database, recorder: Recorder) -> None:
    recorder.record(PrivateMessage(at=T0, sender=ALICE, text="进群", message_id="p1"))
    recorder.record(FriendRequest(at=T0, contact=BOB, hello="我想进群", request_id="r1"))
    recorder.record_outbound("g1", "欢迎 Alice", T0 + timedelta(seconds=2), message_id="out1")
    recorder.record_outbound(None, "private reply", T0 + timedelta(seconds=3))
    await recorder.flush()
    log = await rows(database, EventLog, col(EventLog.id))
    assert [(e.type, e.group_id, e.member_id, e.text, e.message_id, e.meta) for e in log] == [
        ("private", None, "alice", "进群", "p1", None),
        ("friend_request", None, "bob", "我想进群", None, {"request_id": "r1"}),
        ("bot_message", "g1", None, "欢迎 Alice", "out1", None),
        ("bot_message", None, None, "private reply", None, None),
    ]
    assert await rows(database, DailyActivity) == []  # only members' group messages count


async def test_unrecorded_types_are_skipped_and_naive_times_refused(recorder: Recorder) -> None:
    recorder.record(Tick(at=T0, job_id="broadcast:morning"))
    assert recorder.pending == 0
    with pytest.raises(ValueError, match="naive"):
        recorder.record(msg(at=datetime(2026, 12, 1, 8, 0)))
    assert recorder.pending == 0


async def test_metadata_only_stores_no_text(database: Database, tmp_path: Path) -> None:
    rec = Recorder(database, SHANGHAI, StorageSettings(url=database.url, store_text="metadata"))
    rec.record(msg("secret", kind=MessageKind.URL, url="http://example.com/x", mentions=("bob",)))
    rec.record(PrivateMessage(at=T0, sender=ALICE, text="private secret", url="http://x"))
    rec.record(FriendRequest(at=T0, contact=BOB, hello="hello secret"))
    rec.record_outbound("g1", "bot secret", T0)
    await rec.stop()
    log = await rows(database, EventLog, col(EventLog.id))
    assert [e.text for e in log] == [None, None, None, None]
    assert log[0].meta == {"mentions": ["bob"]}  # who and what kind, not the URL
    assert log[0].kind == "url"
    assert log[1].meta is None
    [day] = await rows(database, DailyActivity)
    assert day.messages == 1


async def test_daily_activity_uses_the_local_calendar_day(database: Database, recorder: Recorder) -> None:
    late_utc = datetime(2026, 12, 1, 16, 30, tzinfo=UTC)  # 00:30 on 2 Dec in Shanghai
    recorder.record(msg(at=datetime(2026, 12, 1, 15, 59, tzinfo=UTC)))  # 23:59 on 1 Dec
    recorder.record(msg(at=late_utc))
    recorder.record(msg(at=late_utc + timedelta(hours=2)))
    await recorder.flush()
    recorder.record(msg(at=late_utc + timedelta(hours=1)))  # next batch, same day, in between
    await recorder.flush()
    days = await rows(database, DailyActivity, col(DailyActivity.day))
    assert [(d.day, d.messages) for d in days] == [(date(2026, 12, 1), 1), (date(2026, 12, 2), 3)]
    assert (days[1].first_at, days[1].last_at) == (late_utc, late_utc + timedelta(hours=2))
    assert await MembershipRepo(database).message_count("g1", "alice") == 4
    assert await MembershipRepo(database).message_count("g1", "alice", since=date(2026, 12, 2)) == 3


async def test_stop_flushes_and_background_task_flushes_full_batches(database: Database) -> None:
    rec = Recorder(database, SHANGHAI, StorageSettings(url=database.url, batch_size=10, flush_interval=3600))
    await rec.start()
    for i in range(10):  # a full batch wakes the task although the interval is an hour
        rec.record(msg(f"m{i}", at=T0 + timedelta(seconds=i)))
    for _ in range(500):
        if rec.pending == 0:
            break
        await asyncio.sleep(0.01)
    assert rec.pending == 0
    assert rec.written == 10
    rec.record(msg("last words", at=T0 + timedelta(minutes=1)))
    await rec.stop()
    assert rec.pending == 0
    texts = [e.text for e in await rows(database, EventLog, col(EventLog.id))]
    assert texts[-1] == "last words"
    assert len(texts) == 11


async def test_an_outage_keeps_the_batch_and_its_sources(
    database: Database, recorder: Recorder, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = Recorder._write
    calls = 0

    async def flaky(self: Recorder, events: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise sa.exc.OperationalError("INSERT", {}, ConnectionRefusedError("connection refused"))
        await real(self, events)

    monkeypatch.setattr(Recorder, "_write", flaky)
    recorder.record_membership_source("g1", "alice", "keyword:进群")
    recorder.record(MembersJoined(at=T0, group_id="g1", members=(ALICE,)))
    await recorder.flush()
    assert (calls, recorder.pending, database.health.up) == (1, 1, False)
    await recorder.start()
    await asyncio.wait_for(database.health.wait_up(), 10)  # the health probe sees it back
    for _ in range(100):
        if recorder.pending == 0:
            break
        await asyncio.sleep(0.05)
    assert calls == 2
    assert recorder.dead_lettered == 0
    [stay] = await rows(database, Membership)
    assert stay.source == "keyword:进群"  # the failed attempt did not use the source up
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 2, warnings  # one when the outage starts, one when it ends
    assert "unreachable" in warnings[0] and "is back" in warnings[1] and "1 events buffered" in warnings[1]


async def test_refused_events_are_set_aside_and_replayed(fresh_db_url: str, database: Database, tmp_path: Path) -> None:
    # A database without the tables refuses every event: each is set aside with its reason.
    broken = await Database.open(fresh_db_url, migrate=False)
    dead = tmp_path / "dead" / "letters.jsonl"
    events: list[Event] = [
        msg("你好", message_id="m1", mentions=("bob",)),
        MembersJoined(at=T0, group_id="g1", members=(ALICE, BOB), inviter=OWNER),
        GroupRenamed(at=T0, group_id="g1", old_topic="a", new_topic="b"),
    ]
    try:
        rec = Recorder(broken, SHANGHAI, dead_letter_path=dead)
        for event in events:
            rec.record(event)
        rec.record_outbound("g1", "bot says", T0)
        assert await rec.stop()  # must not raise: the events are set aside
        assert broken.health.up  # a refusal is not an outage
    finally:
        await broken.close()
    assert rec.pending == 0
    assert rec.dead_lettered == 4
    lines = [json.loads(line) for line in dead.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 4
    assert all(line["error"] for line in lines)
    assert lines[0]["event"]["type"] == "GroupMessage"
    assert lines[0]["event"]["text"] == "你好"

    # Nothing is lost: the file replays into a working database.
    good = Recorder(database, SHANGHAI, dead_letter_path=dead)
    assert await good.replay_dead_letter() == 4
    assert not dead.exists()
    assert dead.with_name(dead.name + ".replayed").exists()
    log = await rows(database, EventLog, col(EventLog.id))
    assert [e.type for e in log] == ["message", "join", "join", "rename", "bot_message"]
    assert len(await rows(database, Membership)) == 2


def test_dead_letter_json_round_trip() -> None:
    events: list[Event] = [
        msg("x", kind=MessageKind.MINI_PROGRAM, mentions=("a", "b"), mentions_bot=True, message_id="1"),
        MembersJoined(at=T0, group_id="g1", members=(ALICE, BOB), inviter=None, group_topic="t"),
        MembersLeft(at=T0, group_id="g1", members=(BOB,), removed_by=OWNER),
        BotLeftGroup(at=T0, group_id="g1"),
        OutboundMessage(at=T0, group_id=None, text="t"),
    ]
    for event in events:
        assert event_from_json(json.loads(json.dumps(event_to_json(event)))) == event
    with pytest.raises(ValueError, match="unknown event type"):
        event_from_json({"type": "Nope"})


async def test_malformed_dead_letter_file_changes_nothing(recorder: Recorder, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    good_line = json.dumps({"error": "x", "event": event_to_json(msg())})
    bad.write_text(good_line + "\n{not json\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.jsonl:2"):
        await recorder.replay_dead_letter(bad)
    assert bad.exists()
    assert recorder.pending == 0


async def test_purge_text_clears_old_text_and_urls(database: Database) -> None:
    rec = Recorder(database, SHANGHAI, StorageSettings(url=database.url, purge_after_days=30))
    old = T0 - timedelta(days=31)
    rec.record(msg("old", at=old, kind=MessageKind.URL, url="http://x", mentions=("bob",)))
    rec.record(PrivateMessage(at=old, sender=BOB, text="old private"))
    rec.record(MembersJoined(at=old, group_id="g1", members=(BOB,), inviter=OWNER))
    rec.record(msg("new", at=T0 - timedelta(days=29)))
    await rec.flush()
    assert await rec.purge_text(T0) == 2
    log = await rows(database, EventLog, col(EventLog.id))
    assert [(e.type, e.text) for e in log] == [("message", None), ("private", None), ("join", None), ("message", "new")]
    assert log[0].meta == {"mentions": ["bob"]}
    assert log[2].meta == {"inviter": "owner1"}
    assert await rec.purge_text(T0) == 0  # idempotent
    assert (await rows(database, DailyActivity))[0].messages == 1  # rollups are kept
    no_purge = Recorder(database, SHANGHAI, StorageSettings(url=database.url))
    assert await no_purge.purge_text(T0 + timedelta(days=1000)) == 0


async def test_large_mixed_volume(database: Database) -> None:
    rec = Recorder(database, SHANGHAI, StorageSettings(url=database.url, batch_size=500))
    members = [Member(f"u{i}", f"用户{i}") for i in range(300)]
    rec.record(MembersJoined(at=T0, group_id="g0", members=tuple(members)))
    for i in range(3000):
        rec.record(msg(f"m{i}", at=T0 + timedelta(seconds=i * 37), sender=members[i % 300], group=f"g{i % 3}"))
    await rec.flush()
    assert rec.written == 3001
    async with database.session() as s:
        total = (await s.exec(select(sa.func.sum(DailyActivity.messages)))).one()
        contacts = (await s.exec(select(sa.func.count()).select_from(Contact))).one()
    assert total == 3000
    assert contacts == 300
    assert len(await MembershipRepo(database).current_members("g0")) == 300


@pytest.mark.parametrize("sqlite_json", [True, False], ids=["json", "values"])
async def test_one_batch_larger_than_one_statement(
    database: Database, sqlite_json: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 4,500 log rows and 2,500 contacts in one transaction. On SQLite the rows travel as JSON
    # (up to 5,000 a statement) or, where SQLite lacks JSON, as multi-row VALUES statements
    # (512 rows each, the rest in smaller ones); every row and value arrives either way.
    if not sqlite_json:
        if database.dialect != "sqlite":
            pytest.skip("the VALUES statements are SQLite's fallback")
        for module in (bulk, writer, points):
            monkeypatch.setattr(module, "SQLITE_JSON", False)
    elif database.dialect == "sqlite":
        assert bulk.SQLITE_JSON, "this SQLite has no JSON functions: the fast path is untested"
    monkeypatch.setattr(bulk, "_JSON_ROWS", 2_000)  # several statements, the last one shorter
    rec = Recorder(database, SHANGHAI, StorageSettings(url=database.url, batch_size=10_000))
    people = [Member(f"p{i}", f"成员{i}") for i in range(2500)]
    for i in range(4500):
        extra = {"mentions": ("alice",), "url": "https://example.com/x"} if i % 1000 == 0 else {}
        rec.record(
            msg(
                f"第{i}条",
                at=T0 + timedelta(milliseconds=10 * i),
                sender=people[i % 2500],
                group=f"g{i % 5}",
                message_id=f"id{i}",
                **extra,
            )
        )
    await rec.flush()
    assert rec.written == 4500
    log = await rows(database, EventLog, col(EventLog.id))
    assert [e.message_id for e in log] == [f"id{i}" for i in range(4500)]
    assert log[1000].meta == {"mentions": ["alice"], "url": "https://example.com/x"}
    assert log[4499].at == T0 + timedelta(milliseconds=44990) and log[4499].text == "第4499条"
    contacts = {c.id: c for c in await rows(database, Contact, col(Contact.id))}
    assert len(contacts) == 2500
    assert contacts["p7"].first_seen == T0 + timedelta(milliseconds=70)
    assert contacts["p7"].last_seen == T0 + timedelta(milliseconds=10 * 2507)
    daily = await rows(database, DailyActivity, col(DailyActivity.group_id), col(DailyActivity.member_id))
    assert sum(d.messages for d in daily) == 4500
    assert {d.day for d in daily} == {date(2026, 12, 1)}


async def test_cancelled_flush_keeps_the_batch(recorder: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    started = asyncio.Event()

    async def hang(self: Recorder, events: Any) -> None:
        started.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(Recorder, "_write", hang)
    for i in range(3):
        recorder.record(msg(f"m{i}", at=T0 + timedelta(seconds=i)))
    flushing = asyncio.create_task(recorder.flush())
    await started.wait()
    flushing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await flushing
    assert recorder.pending == 3
    monkeypatch.undo()
    await recorder.flush()
    assert recorder.written == 3
