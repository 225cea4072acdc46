from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.core.events import GroupMessage, Member, MembersJoined, MembersLeft
from bot.storage.db import Database
from bot.storage.recorder import Recorder
from bot.storage.repo import GroupRepo, KeyValueRepo, MembershipRepo, PluginStateRepo

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=SHANGHAI)


async def test_group_repo(database: Database) -> None:
    groups = GroupRepo(database)
    assert await groups.get("g1") is None
    created = await groups.upsert("g1", "宝妈交流群", "owner1", at=T0)
    assert (created.id, created.topic, created.owner_id, created.active, created.registered_at) == (
        "g1",
        "宝妈交流群",
        "owner1",
        True,
        T0,
    )
    await groups.upsert("g2", "B", None, at=T0)
    # Refresh: new topic, a None owner keeps the known one, registration time stays.
    again = await groups.upsert("g1", "新名字", None, at=T0 + timedelta(days=1))
    assert (again.topic, again.owner_id, again.registered_at) == ("新名字", "owner1", T0)

    assert await groups.mark_inactive("g2", T0 + timedelta(days=2)) is True
    assert await groups.mark_inactive("nope", T0) is False
    assert [g.id for g in await groups.list()] == ["g1"]
    assert [g.id for g in await groups.list(active_only=False)] == ["g1", "g2"]
    g2 = await groups.get("g2")
    assert g2 is not None and g2.left_at == T0 + timedelta(days=2)
    back = await groups.upsert("g2", "B", "owner2", at=T0 + timedelta(days=3))
    assert (back.active, back.left_at, back.owner_id) == (True, None, "owner2")


async def test_plugin_state_repo(database: Database) -> None:
    states = PluginStateRepo(database)
    assert await states.load_all() == {}
    await states.set("g1", "checkin", False, "owner1", T0)
    await states.set("g1", "games", True, None, T0)
    await states.set("g1", "checkin", True, "admin2", T0 + timedelta(hours=1))
    assert await states.load_all() == {("g1", "checkin"): True, ("g1", "games"): True}


async def test_membership_repo(database: Database) -> None:
    rec = Recorder(database, SHANGHAI)
    alice, bob = Member("alice", "Alice"), Member("bob", "Bob")
    rec.record(MembersJoined(at=T0, group_id="g1", members=(alice,)))
    rec.record(MembersJoined(at=T0 + timedelta(hours=1), group_id="g1", members=(bob,), inviter=alice))
    for i in range(3):
        rec.record(GroupMessage(at=T0 + timedelta(days=i), group_id="g1", sender=bob, text="hi"))
    rec.record(GroupMessage(at=T0, group_id="g2", sender=bob, text="elsewhere"))
    rec.record(MembersLeft(at=T0 + timedelta(days=5), group_id="g1", members=(alice,)))
    await rec.flush()

    members = MembershipRepo(database)
    current = await members.current_members("g1")
    assert [(m.member_id, m.inviter_id) for m in current] == [("bob", "alice")]
    assert await members.member_since("g1", "bob") == T0 + timedelta(hours=1)
    assert await members.member_since("g1", "alice") is None
    assert await members.member_since("g9", "bob") is None
    assert await members.message_count("g1", "bob") == 3
    assert await members.message_count("g2", "bob") == 1
    assert await members.message_count("g1", "nobody") == 0
    assert await members.message_count("g1", "bob", since=(T0 + timedelta(days=1)).date()) == 2


async def test_key_value_repo(database: Database) -> None:
    kv = KeyValueRepo(database)
    assert await kv.get("relay", "cursor") is None
    assert await kv.get("relay", "cursor", default=0) == 0
    await kv.set("relay", "cursor", {"last": 41, "名字": "中文"}, T0)
    await kv.set("relay", "cursor", {"last": 42, "名字": "中文"}, T0 + timedelta(seconds=1))
    await kv.set("relay", "flag", True, T0)
    await kv.set("other", "cursor", [1, 2], datetime(2026, 1, 1, tzinfo=UTC))
    assert await kv.get("relay", "cursor") == {"last": 42, "名字": "中文"}
    assert await kv.items("relay") == {"cursor": {"last": 42, "名字": "中文"}, "flag": True}
    assert await kv.delete("relay", "flag") is True
    assert await kv.delete("relay", "flag") is False
    assert await kv.items("relay") == {"cursor": {"last": 42, "名字": "中文"}}
    assert await kv.get("other", "cursor") == [1, 2]
