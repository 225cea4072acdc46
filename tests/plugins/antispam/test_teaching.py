"""Admins teach 自动踢广告 in chat (广告 / 误判 / 启用新模型), through the full pipeline on
SQLite and PostgreSQL: the sample is stored, compiled at once, survives a restart; a bad
sample row or model file is named and the rules keep working."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.core.events import GroupMessage, Member, Quote
from bot.core.platform import Capability
from plugins.antispam.classifier import TextModel, prepare
from plugins.antispam.models import AntispamDecision, AntispamSample
from plugins.antispam.teaching import RecentMessages, TaughtSamples, WithTaught
from tests.harness import chat, write_config

SAUSAGE = "表姐家的腊肠今年灌得多，烟熏的味道正，过年走亲戚拎两斤很体面"
SAUSAGE_AGAIN = "表姐家今年灌的腊肠多，烟熏味正，过年走亲戚拎两斤体面"
ORANGES = "自家果园的脐橙熟了，甜度高，全国包邮，有需要的私聊我"
ORANGES_AGAIN = "自家果园的脐橙熟了，今年甜度特别高，全国包邮，有需要的私聊我"


def config(tmp_path: Path, extra: str = "") -> Path:
    return write_config(
        tmp_path,
        f"""
bot_admins: [boss]
groups:
  - {{id: g1, name: 宝妈交流群}}
  - {{id: g2, name: 读书群}}
plugins:
  antispam:
    strikes: {{limit: 3, window_hours: 24}}
    teaching: {{model_dir: "{tmp_path / "models"}"}}
{extra}""",
    )


WORLD = {
    "contacts": [
        {"id": "owner1", "name": "群主"},
        {"id": "alice", "name": "Alice"},
        {"id": "bob", "name": "Bob"},
        {"id": "carol", "name": "Carol"},
        {"id": "boss", "name": "老板"},
        {"id": "spammer", "name": "小美"},
    ],
    "groups": [
        {
            "id": "g1",
            "topic": "宝妈交流群",
            "owner": "owner1",
            "admins": ["alice"],
            "members": ["owner1", "alice", "bob", "carol", "spammer"],
        },
        {"id": "g2", "topic": "读书群", "owner": "owner1", "admins": [], "members": ["owner1", "bob"]},
    ],
}


def state_of(bot):  # type: ignore[no-untyped-def]
    return bot.sim.app.dispatcher.runtime.hosts["antispam"].state


async def rows(bot, model):  # type: ignore[no-untyped-def]
    await state_of(bot).executor.settle()
    async with bot.sim.app.db.session() as s:
        return list((await s.exec(sa.select(model).order_by(model.id))).scalars())


def kicks(bot) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(a.group, a.member) for a in bot.actions if a.action == "kick"]


async def test_a_quoted_ad_is_removed_learned_and_its_rewording_caught_after_a_restart(
    tmp_path: Path, db_url: str
) -> None:
    path = config(tmp_path)
    async with chat(path, WORLD, db_url=db_url) as bot:
        await bot.say("g1", "spammer", SAUSAGE)
        assert kicks(bot) == []  # no rule knows this wording
        await bot.say("g1", "alice", "广告", quote={"from": "spammer", "text": SAUSAGE})
        assert kicks(bot) == [("g1", "spammer")]
        reply = bot.assert_said("g1", contains="已将 小美 移出")
        assert "已记为广告样本" in (reply.text or "")
        bot.assert_private("owner1", contains="误判 小美")  # the notice says how to undo it
        await bot.say("g1", "carol", SAUSAGE_AGAIN)  # reworded, from another member: caught at once
        assert kicks(bot)[-1] == ("g1", "carol")
        samples = await rows(bot, AntispamSample)
        decisions = await rows(bot, AntispamDecision)
    assert [(s.label, s.member_id, s.by, s.text) for s in samples] == [("spam", "spammer", "alice", SAUSAGE)]
    assert [(d.member_id, d.outcome, d.rules) for d in decisions] == [
        ("spammer", "removed", "taught"),
        ("carol", "removed", "taught"),
    ]
    async with chat(path, WORLD, db_url=db_url) as bot:  # a restart: learned from the table
        await bot.say("g2", "bob", SAUSAGE_AGAIN)
        assert kicks(bot) == [("g2", "bob")]
        bot.assert_private("owner1", contains="管理员标记过的广告")


async def test_mark_by_mention_then_pardon_from_the_notice_brings_the_member_back(tmp_path: Path, db_url: str) -> None:
    async with chat(config(tmp_path), WORLD, db_url=db_url) as bot:
        await bot.say("g1", "spammer", SAUSAGE)
        await bot.say("g1", "alice", "广告 @小美\u2005", mentions=["spammer"])
        assert kicks(bot) == [("g1", "spammer")]
        assert "spammer" in state_of(bot).executor.bans
        bot.new_actions()
        await bot.private("boss", "误判 小美")  # replying to the notice, privately
        reply = bot.assert_private("boss", contains="小美（spammer）")
        assert "已解除拉黑" in (reply.text or "") and "已邀请 TA 回到「宝妈交流群」" in (reply.text or "")
        assert "撤销了 1 条相反的样本" in (reply.text or "")
        assert [(a.action, a.group, a.member) for a in bot.new_actions() if a.action == "invite"] == [
            ("invite", "g1", "spammer")
        ]
        assert "spammer" not in state_of(bot).executor.bans
        await bot.say("g1", "carol", SAUSAGE_AGAIN)  # the pardoned wording passes now
        assert kicks(bot) == [("g1", "spammer")]
        samples = await rows(bot, AntispamSample)
    assert [(s.label, s.member_id) for s in samples] == [("normal", "spammer")]  # the spam sample was undone


async def test_a_pardoned_normal_message_passes_the_text_model_from_then_on(tmp_path: Path, db_url: str) -> None:
    path = config(tmp_path, "    strictness: strict\n")
    async with chat(path, WORLD, db_url=db_url) as bot:
        await bot.say("g1", "bob", ORANGES)
        warning = bot.assert_said("g1", contains="请勿发布广告")  # the text model flags it
        assert "分类器" in (warning.text or "")
        await bot.say("g1", "alice", "误判 @Bob\u2005", mentions=["bob"])
        reply = bot.assert_said("g1", contains="Bob（bob）")
        assert "已清除 1 条警告记录" in (reply.text or "") and "已记为正常消息样本" in (reply.text or "")
        assert not [a for a in bot.actions if a.action == "invite"]  # never removed: nothing to invite
        bot.new_actions()
        await bot.say("g1", "carol", ORANGES_AGAIN)
        assert bot.said("g1", contains="请勿") == [w for w in bot.said("g1", contains="请勿") if w is warning]
    async with chat(path, WORLD, db_url=db_url) as bot:  # and after a restart
        await bot.say("g1", "carol", ORANGES_AGAIN)
        assert bot.said("g1", contains="请勿") == []


async def test_marking_refuses_admins_and_asks_for_a_message(tmp_path: Path) -> None:
    async with chat(config(tmp_path), WORLD) as bot:
        await bot.say("g1", "owner1", SAUSAGE)
        await bot.say("g1", "alice", "广告", quote={"from": "owner1", "text": SAUSAGE})
        bot.assert_said("g1", contains="不处理，也不记为广告样本")
        await bot.say("g1", "alice", "广告 @Carol\u2005", mentions=["carol"])
        bot.assert_said("g1", contains="我不记得 Carol 最近在本群说过什么")
        await bot.say("g1", "alice", "广告")
        bot.assert_said("g1", contains="用法：引用一条消息")
        await bot.say("g1", "bob", "广告 @小美\u2005", mentions=["spammer"])
        bot.assert_said("g1", contains="需要群管理员权限")
        assert kicks(bot) == []
        assert await rows(bot, AntispamSample) == []


async def test_a_quote_older_than_memory_uses_the_quoted_text_and_the_member_list(tmp_path: Path) -> None:
    async with chat(config(tmp_path), WORLD) as bot:
        await bot.say("g1", "alice", "广告", quote={"from": "spammer", "text": SAUSAGE})
        assert kicks(bot) == [("g1", "spammer")]
        samples = await rows(bot, AntispamSample)
    assert [(s.member_id, s.text) for s in samples] == [("spammer", SAUSAGE)]


async def test_marking_fails_closed_when_the_bot_may_not_remove(tmp_path: Path) -> None:
    world = {**WORLD, "bot": {"id": "wxid_bot", "name": "小助手", "can_remove": False}}
    async with chat(config(tmp_path), world) as bot:
        await bot.say("g1", "spammer", SAUSAGE)
        await bot.say("g1", "alice", "广告 @小美\u2005", mentions=["spammer"])
        assert kicks(bot) == []
        bot.assert_said("g1", contains="没能移出 小美")
        warning = bot.assert_said("g1", contains="请勿发布广告")
        assert warning.mentions == ["spammer"]  # the warning goes to the sender, not the admin
        bot.assert_private("owner1", contains="没有移出成员的权限")
        assert [s.label for s in await rows(bot, AntispamSample)] == ["spam"]  # still learned


async def test_pardon_says_when_the_platform_cannot_invite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with chat(config(tmp_path), WORLD) as bot:
        await bot.say("g1", "spammer", SAUSAGE)
        await bot.say("g1", "alice", "广告 @小美\u2005", mentions=["spammer"])
        platform = bot.sim.app.services.platform
        monkeypatch.setattr(
            type(platform), "capabilities", property(lambda self: frozenset(Capability) - {Capability.INVITE})
        )
        await bot.say("g1", "alice", "误判 小美")
        bot.assert_said("g1", contains="请手动把 TA 拉回群")
        assert not [a for a in bot.actions if a.action == "invite"]


async def test_a_corrupt_sample_row_is_named_and_skipped(tmp_path: Path, db_url: str) -> None:
    path = config(tmp_path)
    async with chat(path, WORLD, db_url=db_url) as bot:
        await bot.say("g1", "spammer", SAUSAGE)
        await bot.say("g1", "alice", "广告", quote={"from": "spammer", "text": SAUSAGE})
        async with bot.sim.app.db.transaction() as s:
            await s.execute(sa.update(AntispamSample.__table__).values(label="maybe"))  # type: ignore[attr-defined]
            await s.execute(
                sa.insert(AntispamSample.__table__).values(  # type: ignore[attr-defined]
                    at=bot.sim.clock.now(), label="spam", text="   "
                )
            )
        bad = [s.id for s in await rows(bot, AntispamSample)]
    async with chat(path, WORLD, db_url=db_url) as bot:
        await bot.wait("1s")
        notice = bot.assert_private("boss", contains="antispam_samples row")
        assert f"antispam_samples row {bad[0]}: label 'maybe'" in (notice.text or "")
        assert f"antispam_samples row {bad[1]}: no text" in (notice.text or "")
        await bot.say("g1", "carol", SAUSAGE_AGAIN)  # the bad sample teaches nothing
        assert kicks(bot) == []
        await bot.say("g1", "carol", "兼职日结，日入300+，一部手机就能做，加V：abc888")
        bot.assert_kicked("g1", "carol")  # the rules keep working
        assert len(state_of(bot).taught) == 0


async def test_a_corrupt_model_file_falls_back_to_the_shipped_model_and_is_told_once(tmp_path: Path) -> None:
    active = tmp_path / "models" / "model.json"
    active.parent.mkdir()
    active.write_text("{not json", encoding="utf-8")
    path = config(tmp_path)
    async with chat(path, WORLD) as bot:
        await bot.wait("1s")
        notice = bot.assert_private("boss", contains=str(active))
        assert "改用内置模型" in (notice.text or "")
        state = state_of(bot)
        assert state.classifier.source == "shipped"
        await bot.say("g1", "carol", "兼职日结，日入300+，一部手机就能做，加V：abc888")
        bot.assert_kicked("g1", "carol")
        told = len([a for a in bot.actions if a.action == "private" and str(active) in (a.text or "")])
        assert await bot.sim.app.reload(path)
        assert len([a for a in bot.actions if a.action == "private" and str(active) in (a.text or "")]) == told


# --- units ---------------------------------------------------------------------------------------


def test_taught_samples_match_rewordings_not_unrelated_chat() -> None:
    taught = TaughtSamples()
    assert taught.add(1, SAUSAGE, True)
    assert not taught.add(2, "要的找我", True)  # too short to match anything safely
    assert taught.best(prepare(SAUSAGE_AGAIN), True).key == 1  # type: ignore[union-attr]
    assert taught.best(prepare(SAUSAGE_AGAIN), False) is None
    for chat_line in ("周末去山里玩了一天，孩子都爱爬山，家里老人也去了", "今天小区门口的快递柜坏了，大家取件注意一下"):
        assert taught.best(prepare(chat_line), True) is None
    assert taught.matching(SAUSAGE_AGAIN, True) == [1]
    taught.discard(1)
    assert taught.best(prepare(SAUSAGE), True) is None and len(taught) == 0


def test_taught_normal_messages_score_zero_in_the_model() -> None:
    taught = TaughtSamples()
    model = WithTaught(TextModel({"脐橙": 100.0}, 0.0), taught)
    assert model.score_text(ORANGES_AGAIN) > 0.99
    taught.add(7, ORANGES, False)
    assert model.score_text(ORANGES_AGAIN) == 0.0


def test_recent_messages_are_bounded_in_count_and_age() -> None:
    start = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    recent = RecentMessages(per_group=3, max_age=timedelta(hours=1))

    def msg(i: int, minutes: float, who: str = "bob") -> GroupMessage:
        return GroupMessage(
            at=start + timedelta(minutes=minutes),
            group_id="g1",
            sender=Member(who, who.title()),
            text=f"m{i}",
            message_id=str(i),
        )

    for i in range(5):
        recent.add(msg(i, i))
    assert [e.text for e in recent._recent("g1", start + timedelta(minutes=5))] == ["m4", "m3", "m2"]
    assert recent.last_from("g1", "bob", start + timedelta(minutes=5)).text == "m4"  # type: ignore[union-attr]
    assert recent.last_from("g1", "bob", start + timedelta(minutes=70)) is None  # too old to be meant
    recent.add(msg(9, 120, "amy"))  # a message an hour later drops the old ones
    assert [e.text for e in recent._groups["g1"]] == ["m9"]
    later = start + timedelta(minutes=120)
    assert recent.quoted("g1", Quote("Amy", "m9"), later).message_id == "9"  # type: ignore[union-attr]
    assert recent.quoted("g1", Quote("Bob", "m9"), later) is None
    assert recent.find_member("Amy", later).sender.id == "amy"  # type: ignore[union-attr]


def test_recent_messages_are_bounded_over_all_groups() -> None:
    """Past `total` messages in all, the oldest anywhere go first, and a group left with
    none is forgotten: a bot in many groups holds `total` messages, not `per_group` each."""
    start = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    recent = RecentMessages(per_group=3, max_age=timedelta(hours=1), total=4)

    def msg(i: int, group: str) -> GroupMessage:
        return GroupMessage(
            at=start + timedelta(seconds=i), group_id=group, sender=Member("bob"), text=f"m{i}", message_id=str(i)
        )

    for i, group in enumerate(["g1", "g2", "g1", "g1", "g1", "g3"]):
        recent.add(msg(i, group))
    now = start + timedelta(minutes=1)
    # g1 kept its last three by its own bound (m2..m4); the total of four then dropped g2's m1.
    assert [e.text for e in recent._recent("g1", now)] == ["m4", "m3", "m2"]
    assert "g2" not in recent._groups
    assert [e.text for e in recent._recent("g3", now)] == ["m5"]
    recent.add(msg(6, "g2"))
    assert [e.text for e in recent._recent("g1", now)] == ["m4", "m3"]
    assert sum(len(q) for q in recent._groups.values()) == 4
    recent.total = 2  # a reload with a smaller total keeps the newest
    assert sorted(e.text for q in recent._groups.values() for e in q) == ["m5", "m6"]
