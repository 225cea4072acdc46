"""关键词拉好友入群 through the full pipeline: choice of group, caps, pacing, sources."""

from __future__ import annotations

from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from bot.adapters.world import WorldPlatform
from bot.app import load_everything
from bot.config.errors import ConfigError
from bot.core.platform import Capability, PlatformError
from bot.storage.models import Membership
from plugins.invite.config import InviteRule
from plugins.invite.matching import ChooseTopic, InviteMatcher, RuleMatch
from plugins.invite.models import InviteRecord
from tests.harness import Chat, chat, write_config

MODERATION_GAP = 15.0  # the outbox default for invites and removals


def crowd(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i:03d}" for i in range(n)]


def world(**sizes: int) -> dict[str, Any]:
    """Groups of the given sizes (members counted with the bot and the owner)."""
    groups = [
        {"id": gid, "topic": f"{gid}群", "owner": "owner1", "members": crowd(f"{gid}-", n - 2)}
        for gid, n in sizes.items()
    ]
    contacts = [{"id": "owner1", "name": "群主"}, {"id": "boss", "name": "Boss"}]
    contacts += [{"id": f"u{i}", "name": f"用户{i}"} for i in range(1, 10)]
    return {"clock": "2026-12-01T10:00:00+08:00", "contacts": contacts, "groups": groups}


def config(tmp_path: Path, extra: str = "", groups: str = "[a, b, c]") -> Path:
    return write_config(
        tmp_path,
        f"""
bot_admins: [boss]
plugins:
  invite:
    rules:
      - {{keywords: [进群], groups: {groups}}}
      - {{keywords: [加群], topic: 读书, groups: [a]}}
      - {{keywords: [加群], topic: 英语, groups: [b]}}
{extra}
""",
    )


def invites(bot: Chat) -> list[tuple[str, str]]:
    return [(a.group or "", a.member or "") for a in bot.actions if a.action == "invite"]


async def records(bot: Chat) -> list[InviteRecord]:
    db = bot.sim.app.db
    assert db is not None
    async with db.session() as s:
        return list((await s.exec(select(InviteRecord).order_by(col(InviteRecord.id)))).all())


def admin_notices(bot: Chat, contains: str) -> int:
    return sum(1 for a in bot.actions if a.action == "private" and a.to == "boss" and contains in (a.text or ""))


# --- choosing the group ----------------------------------------------------------------


async def test_the_least_full_group_is_chosen_and_full_groups_are_skipped(tmp_path: Path) -> None:
    # Cap 480 (the default). c is full; a and b are just below; open invitations count.
    async with chat(config(tmp_path), world(a=479, b=478, c=480)) as bot:
        await bot.private("u1", "进群")  # b (478) is the least full
        await bot.private("u2", "进群")  # a 479, b 478 + 1 invitation: a tie, a comes first
        await bot.private("u3", "进群")  # a is now 479 + 1 = full: b
        await bot.private("u4", "进群")  # everything is full
        await bot.private("u5", "进群")
        await bot.wait("1m")
        assert invites(bot) == [("b", "u1"), ("a", "u2"), ("b", "u3")]
        bot.assert_private("u1", contains="已向你发送「b群」的入群邀请")  # above 40: an invitation
        bot.assert_private("u4", contains="群暂时满员了")
        bot.assert_private("u5", contains="群暂时满员了")
        assert admin_notices(bot, "对应的群都满了（a群、b群、c群）") == 1  # told once, not per request
        # Someone leaves a: room for one more.
        await bot.leave("a", "a-000")
        await bot.wait("1m")
        await bot.private("u6", "进群")
        assert invites(bot)[-1] == ("a", "u6")


async def test_invitations_above_forty_are_sent_then_joined_with_their_source(tmp_path: Path) -> None:
    async with chat(config(tmp_path, groups="[a]"), world(a=45, b=10)) as bot:
        await bot.private("u1", "进群")  # a has 45 members: an invitation to accept
        await bot.private("u2", "加群 英语")  # b has 10: added at once
        await bot.wait("1m")
        before = {r.contact_id: r.status for r in await records(bot)}
        await bot.join("a", "u1", inviter="wxid_bot")  # u1 accepts the invitation
        recorder = bot.sim.app.recorder
        assert recorder is not None
        await recorder.flush()
        after = await records(bot)
        db = bot.sim.app.db
        assert db is not None
        async with db.session() as s:
            stays = {m.member_id: m for m in (await s.exec(select(Membership))).all() if m.member_id in ("u1", "u2")}
    assert before == {"u1": "sent", "u2": "joined"}
    assert [(r.contact_id, r.group_id, r.status, r.keyword, r.via, r.source) for r in after] == [
        ("u1", "a", "joined", "进群", "private", "keyword:进群"),
        ("u2", "b", "joined", "加群 英语", "private", "keyword:加群 英语"),
    ]
    assert after[0].sent_at is not None and after[0].joined_at is not None
    assert stays["u1"].source == "keyword:进群" and stays["u1"].inviter_id == "wxid_bot"
    assert stays["u2"].source == "keyword:加群 英语"
    bot.assert_private("u2", contains="正在拉你进「b群」")


async def test_members_and_open_invitations_get_an_answer_not_a_second_invite(tmp_path: Path) -> None:
    async with chat(config(tmp_path), world(a=45, b=50, c=60)) as bot:
        await bot.private("a-003", "进群")  # already in a
        await bot.private("u1", "进群")
        await bot.wait("5m")
        await bot.private("u1", "进群")  # the invitation is still open
        await bot.private("u1", "进群")  # again at once: no second answer
    assert invites(bot) == [("a", "u1")]
    bot.assert_private("a-003", contains="你已经在「a群」里啦")
    bot.assert_private("u1", contains="入群邀请已经发给你了")
    assert sum(1 for a in bot.actions if a.action == "private" and a.to == "u1") == 2


async def test_topics_and_a_keyword_that_needs_one(tmp_path: Path) -> None:
    async with chat(config(tmp_path), world(a=10, b=10, c=10)) as bot:
        await bot.private("u1", "加群")
        await bot.private("u1", "加群：读书")
        await bot.private("u2", "加群英语")
        await bot.private("u3", "加群 数学")
        await bot.private("u4", "进群了吗")  # not the keyword on its own: not for us
    assert invites(bot) == [("a", "u1"), ("b", "u2")]
    bot.assert_private("u1", contains="请发送：加群 读书 / 加群 英语")
    bot.assert_private("u3", contains="请发送：加群 读书 / 加群 英语")
    assert not [a for a in bot.actions if a.to == "u4"]


async def test_a_keyword_reply_rule_for_the_same_word_does_not_answer_too(tmp_path: Path) -> None:
    extra = """
  keyword_reply:
    rules:
      - {keywords: [进群], private: true, replies: [关键词回复不该出现]}
"""
    async with chat(config(tmp_path, extra), world(a=10, b=20, c=30)) as bot:
        await bot.private("u1", "进群")
    assert invites(bot) == [("a", "u1")]
    assert all("不该出现" not in (a.text or "") for a in bot.actions)


# --- caps and pacing -------------------------------------------------------------------


async def test_daily_cap_and_moderation_pacing_hold(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        """
bot_admins: [boss]
plugins:
  invite:
    daily_cap: 3
    rules:
      - {keywords: [进群], groups: [a, b, c]}
""",
        name="capped.yaml",
    )
    async with chat(path, world(a=10, b=10, c=10)) as bot:
        for i in range(1, 6):
            await bot.private(f"u{i}", "进群")
        await bot.wait("13h")
        await bot.private("u6", "进群")  # 23:00, still the same local day
        await bot.wait("2h")  # 01:00: the next local day, a fresh budget
        await bot.private("u4", "进群")
    done = [a for a in bot.actions if a.action == "invite"]
    assert [(a.group, a.member) for a in done] == [("a", "u1"), ("b", "u2"), ("c", "u3"), ("a", "u4")]
    for earlier, later in pairwise(done):
        gap = datetime.fromisoformat(later.at) - datetime.fromisoformat(earlier.at)
        assert gap.total_seconds() >= MODERATION_GAP, (earlier.at, later.at)
    for who in ("u4", "u5", "u6"):
        bot.assert_private(who, contains="今天的入群名额已经用完啦")
    assert admin_notices(bot, "今日入群邀请已达上限（3 个）") == 1


async def test_a_per_group_daily_cap_moves_invites_on_then_says_tomorrow(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        """
bot_admins: [boss]
plugins:
  invite:
    daily_cap_per_group: 1
    rules:
      - {keywords: [进群], groups: [a, b]}
""",
    )
    async with chat(path, world(a=10, b=20)) as bot:
        for i in range(1, 5):
            await bot.private(f"u{i}", "进群")
    assert invites(bot) == [("a", "u1"), ("b", "u2")]
    bot.assert_private("u3", contains="明天再发送“进群”")
    assert admin_notices(bot, "今日邀请都已达上限（每群 1 个：a群、b群）") == 1


# --- friend requests, failures, restarts ------------------------------------------------


async def test_a_friend_request_with_a_keyword_is_accepted_and_followed_by_the_invite(tmp_path: Path) -> None:
    async with chat(config(tmp_path), world(a=10, b=20, c=30)) as bot:
        await bot.step(friend_request="zed", hello="你好，我想进群")
        await bot.step(friend_request="yan", hello="我是推销员")
        await bot.step(friend_request="xia", hello="想加群 学英语")
        rows = await records(bot)
    accepted = [a.member for a in bot.actions if a.action == "accept_friend"]
    assert accepted == ["fr-zed", "fr-xia"]
    assert invites(bot) == [("a", "zed"), ("b", "xia")]
    assert [(r.contact_id, r.via) for r in rows] == [("zed", "friend_request"), ("xia", "friend_request")]


async def test_without_friend_request_support_nothing_is_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(WorldPlatform, "capabilities", property(lambda self: frozenset({Capability.INVITE})))
    async with chat(config(tmp_path), world(a=10, b=20, c=30)) as bot:
        await bot.step(friend_request="zed", hello="进群")
    assert bot.actions == []


async def test_a_refused_invite_is_recorded_as_failed_and_the_member_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuse(self: WorldPlatform, group_id: str, contact_id: str) -> None:
        raise PlatformError("invitation refused")

    monkeypatch.setattr(WorldPlatform, "invite", refuse)
    async with chat(config(tmp_path), world(a=10, b=20, c=30)) as bot:
        await bot.private("u1", "进群")
        await bot.wait("10m")  # the outbox retries, then gives up
        (row,) = await records(bot)
    assert row.status == "failed" and row.error == "invitation refused"
    bot.assert_private("u1", contains="邀请你加入「a群」没有成功")


async def test_an_invitation_accepted_after_a_restart_keeps_its_source(tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    path = config(tmp_path)
    async with chat(path, world(a=45, b=50, c=60), db_url=db_url) as bot:
        await bot.private("u1", "进群")
    async with chat(path, world(a=45, b=50, c=60), db_url=db_url) as again:
        await again.join("a", "u1", inviter="wxid_bot")
        recorder = again.sim.app.recorder
        assert recorder is not None
        await recorder.flush()
        (row,) = await records(again)
        db = again.sim.app.db
        assert db is not None
        async with db.session() as s:
            stay = (await s.exec(select(Membership).where(col(Membership.member_id) == "u1"))).one()
    assert row.status == "joined"
    assert stay.source == "keyword:进群"


# --- matching and configuration ----------------------------------------------------------


def test_matcher_private_and_greeting() -> None:
    rules = [
        InviteRule(keywords=["进群", "入群"], groups=["a"]),
        InviteRule(keywords=["加群"], topic="读书", groups=["b"]),
        InviteRule(keywords=["加群"], topic="英语", groups=["c"]),
    ]
    m = InviteMatcher(rules)
    hit = m.private("  进群 ")
    assert isinstance(hit, RuleMatch) and hit.phrase == "进群" and hit.source == "keyword:进群"
    assert isinstance(m.private("入群"), RuleMatch)
    assert isinstance(m.private("加群 读书"), RuleMatch)
    assert isinstance(m.private("加群　英语"), RuleMatch)  # full-width space
    assert isinstance(m.private("加群"), ChooseTopic)
    assert m.private("进群了吗") is None and m.private("你好") is None and m.private("") is None
    assert isinstance(m.greeting("我是小王，想进群"), RuleMatch)
    found = m.greeting("朋友介绍，想加群学英语")
    assert isinstance(found, RuleMatch) and found.rule.topic == "英语"
    assert isinstance(m.greeting("加群"), ChooseTopic)
    assert m.greeting("你好") is None


def test_matcher_reads_keywords_as_commands_are_read_and_names_unknown_topics() -> None:
    rules = [
        InviteRule(keywords=["进群"], groups=["a"]),
        InviteRule(keywords=["加群"], topic="读书", groups=["b"]),
        InviteRule(keywords=["加群"], topic="英语", groups=["c"]),
    ]
    m = InviteMatcher(rules)
    for text in ("进群！", "【进群】", "进群~", "「进群」"):
        assert isinstance(m.private(text), RuleMatch), text
    assert isinstance(m.private("加群读书！"), RuleMatch)
    bare, unknown = m.private("加群"), m.private("加群 游泳")
    assert isinstance(bare, ChooseTopic) and bare.asked == ""
    assert isinstance(unknown, ChooseTopic) and unknown.asked == "游泳"
    assert unknown.phrases == ("加群 读书", "加群 英语")
    assert m.topics() == [("进群", []), ("加群", ["读书", "英语"])]


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ("member_cap: 501", "member_cap"),
        (
            "rules:\n      - {keywords: [进群], groups: [a]}\n      - {keywords: [进群], groups: [b]}",
            "“进群” is used by",
        ),
        ("rules:\n      - {keywords: [进群], groups: []}", "groups"),
        ("inviting: '{nope}'", "nope"),
    ],
)
def test_bad_invite_config_is_an_error_with_a_line(tmp_path: Path, section: str, problem: str) -> None:
    path = write_config(tmp_path, f"plugins:\n  invite:\n    {section}\n")
    with pytest.raises(ConfigError) as err:
        load_everything(path)
    assert problem in str(err.value) and "bot.yaml:" in str(err.value)


async def test_records_caps_and_joins_on_each_backend(tmp_path: Path, db_url: str) -> None:
    """The same flow on SQLite and PostgreSQL (skipped with a reason when none is reachable)."""
    path = write_config(
        tmp_path,
        """
bot_admins: [boss]
plugins:
  invite:
    daily_cap: 2
    rules:
      - {keywords: [进群], groups: [a, b]}
""",
        name="backend.yaml",
    )
    async with chat(path, world(a=45, b=44), db_url=db_url) as bot:
        await bot.private("u1", "进群")  # b (44)
        await bot.private("u2", "进群")  # a 45, b 44 + 1 open invitation: a tie, a first
        await bot.private("u3", "进群")  # the daily cap
        await bot.join("b", "u1", inviter="wxid_bot")
        rows = await records(bot)
    assert invites(bot) == [("b", "u1"), ("a", "u2")]
    assert [(r.contact_id, r.group_id, r.status) for r in rows] == [("u1", "b", "joined"), ("u2", "a", "sent")]
    bot.assert_private("u3", contains="今天的入群名额已经用完啦")
