"""自动踢广告 through the full pipeline: the simulator's world, the real dispatcher, the
outbox and a fresh SQLite database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa

from plugins.antispam.models import AntispamDecision, AntispamStrike
from plugins.antispam.verdict import RULE_TITLES
from tests.harness import chat, write_config

LINK = "进来看看，好东西 https://shop-example.com/a/123"
AD = "兼职日结，日入300+，一部手机就能做，加V：abc888"

CONFIG = """
bot_admins: [boss]
groups:
  - {id: g1, name: 宝妈交流群}
  - {id: g2, name: 读书群}
  - {id: g3, name: 试运行群}
plugins:
  antispam:
    new_member: {action: warn, minutes: 60, messages: 3}
    strikes: {limit: 2, window_hours: 24}
    overrides:
      - groups: [g3]
        dry_run: true
  keyword_reply:
    rules:
      - {keywords: [看看], match: contains, replies: ["看看什么呀"]}
"""

WORLD = {
    "contacts": [
        {"id": "owner1", "name": "群主"},
        {"id": "alice", "name": "Alice"},
        {"id": "bob", "name": "Bob"},
        {"id": "boss", "name": "老板"},
        {"id": "spammer", "name": "小美"},
        {"id": "newbie", "name": "新人"},
    ],
    "groups": [
        {
            "id": "g1",
            "topic": "宝妈交流群",
            "owner": "owner1",
            "admins": ["alice"],
            "members": ["owner1", "alice", "bob"],
        },
        {"id": "g2", "topic": "读书群", "owner": "owner1", "admins": [], "members": ["owner1", "bob"]},
        {"id": "g3", "topic": "试运行群", "owner": "owner1", "admins": [], "members": ["owner1", "bob"]},
    ],
}


async def settle(bot) -> None:  # type: ignore[no-untyped-def]
    """Wait for the anti-spam audit rows: they are written behind the chat, not on its path."""
    await bot.sim.app.dispatcher.runtime.hosts["antispam"].state.executor.settle()


async def decisions(bot) -> list[AntispamDecision]:  # type: ignore[no-untyped-def]
    await settle(bot)
    async with bot.sim.app.db.session() as s:
        return list((await s.exec(sa.select(AntispamDecision).order_by(AntispamDecision.id))).scalars())


async def test_a_new_member_posting_a_link_is_warned_and_no_keyword_reply_follows(tmp_path: Path) -> None:
    async with chat(write_config(tmp_path, CONFIG), WORLD) as bot:
        await bot.join("g1", "newbie")
        bot.new_actions()
        await bot.say("g1", "newbie", LINK)
        warning = bot.assert_said("g1", contains="请勿发布广告")
        assert warning.mentions == ["newbie"]
        assert "新成员发链接/联系方式" in (warning.text or "")
        assert "1/2" in (warning.text or "")
        assert bot.said("g1", contains="看看什么呀") == []  # propagation stopped
        assert not [a for a in bot.actions if a.action == "kick"]
        rows = await decisions(bot)
    # The new-member rule warns; the text model may read the lure too, as it moves with retraining.
    assert [(r.outcome, r.rules.split(",")[0]) for r in rows] == [("warned", "new_member")]
    assert {c["name"] for c in rows[0].checks or []} >= {"ad_content", "links", "new_member"}


async def test_removal_when_configured_and_admins_told(tmp_path: Path) -> None:
    config = CONFIG.replace("new_member: {action: warn,", "new_member: {action: remove,")
    async with chat(write_config(tmp_path, config), WORLD) as bot:
        await bot.join("g1", "newbie")
        await bot.say("g1", "newbie", LINK)
        kick = bot.assert_kicked("g1", "newbie")
        assert "新成员" in (kick.reason or "")
        notice = bot.assert_private("owner1", contains="已将 新人（newbie）移出群「宝妈交流群」")
        assert "shop-example.com" in (notice.text or "")
        bot.assert_private("boss", contains="解封 newbie")
        bot.assert_said("g1", contains="已将 新人 移出本群")


async def test_an_admin_or_long_time_member_posting_the_same_link_is_untouched(tmp_path: Path) -> None:
    async with chat(write_config(tmp_path, CONFIG), WORLD) as bot:
        bot.new_actions()
        await bot.say("g1", "alice", LINK)  # a group admin
        await bot.say("g1", "bob", LINK)  # a member the bot never saw join: established
        said = bot.new_actions()
        assert [a.text for a in said] == ["看看什么呀", "看看什么呀"]  # only the keyword replies
        await bot.say("g1", "alice", AD)  # even a plain ad from an admin: recorded, not acted on
        assert bot.said("g1", contains="请勿") == []
        rows = await decisions(bot)
    assert [(r.member_id, r.outcome) for r in rows] == [("alice", "exempt")]


async def test_a_clear_ad_is_removed_at_once_and_the_spammer_is_refused_everywhere(tmp_path: Path) -> None:
    async with chat(write_config(tmp_path, CONFIG), WORLD) as bot:
        await bot.join("g1", "spammer")
        await bot.say("g1", "spammer", AD)
        bot.assert_kicked("g1", "spammer")
        bot.new_actions()
        await bot.join("g2", "spammer", inviter="bob")
        kick = bot.assert_kicked("g2", "spammer")
        assert "黑名单" in (kick.reason or "")
        bot.assert_private("owner1", contains="黑名单成员 小美（spammer）加入了群「读书群」，已移出")
        assert bot.said("g2", contains="欢迎") == []
        rows = await decisions(bot)
    assert [(r.group_id, r.outcome, r.rules) for r in rows] == [
        ("g1", "removed", "ad_content,contact,new_member,classifier"),
        ("g2", "removed", "blacklisted"),
    ]


async def test_dry_run_removes_nobody_and_records_would_remove(tmp_path: Path) -> None:
    async with chat(write_config(tmp_path, CONFIG), WORLD) as bot:
        await bot.join("g3", "spammer")
        await bot.say("g3", "spammer", AD)
        await bot.say("g3", "spammer", LINK)
        await bot.finish()
        assert not [a for a in bot.actions if a.action == "kick"]
        assert bot.said("g3", contains="请勿") == []
        assert bot.said("g3", contains="看看什么呀")  # nothing acted: other plugins still answer
        bot.assert_private("owner1", contains="【试运行】")
        rows = await decisions(bot)
    assert [r.outcome for r in rows] == ["would_remove", "would_warn"]  # dry-run strikes are not kept
    assert all(r.dry_run for r in rows)


async def test_warnings_add_up_to_a_removal_within_the_window(tmp_path: Path) -> None:
    async with chat(write_config(tmp_path, CONFIG), WORLD) as bot:
        await bot.join("g1", "newbie")
        await bot.say("g1", "newbie", LINK)
        bot.assert_said("g1", contains="1/2")
        await bot.wait("1h")
        await bot.say("g1", "newbie", "再看看这个 https://shop-example.com/b")
        bot.assert_kicked("g1", "newbie")
        await settle(bot)
        async with bot.sim.app.db.session() as s:
            strikes = (await s.exec(sa.select(sa.func.count()).select_from(AntispamStrike))).scalar_one()
    assert strikes == 1  # the second offence was the removal


async def test_fail_closed_when_the_bot_may_not_remove(tmp_path: Path) -> None:
    world = {**WORLD, "bot": {"id": "wxid_bot", "name": "小助手", "can_remove": False}}
    async with chat(write_config(tmp_path, CONFIG), world) as bot:
        await bot.join("g1", "spammer")
        await bot.say("g1", "spammer", AD)
        assert not [a for a in bot.actions if a.action == "kick"]
        bot.assert_said("g1", contains="请勿发布广告")  # a warning is still fine
        bot.assert_private("owner1", contains="没有移出成员的权限")
        rows = await decisions(bot)
    assert [r.outcome for r in rows] == ["failed_closed"]


async def test_unknown_roles_fail_closed(tmp_path: Path) -> None:
    async with chat(write_config(tmp_path, CONFIG), WORLD) as bot:
        services = bot.sim.app.services

        async def no_info(group_id: str):  # type: ignore[no-untyped-def]
            return None

        bot.sim.platform.group_info = no_info  # type: ignore[method-assign]
        services.groups.forget("g1")
        await bot.join("g1", "spammer")
        await bot.say("g1", "spammer", AD)
        assert not [a for a in bot.actions if a.action == "kick"]
        bot.assert_private("boss", contains="无法确认群主和管理员身份")


async def test_pardon_lets_a_removed_member_back(tmp_path: Path) -> None:
    async with chat(write_config(tmp_path, CONFIG), WORLD) as bot:
        await bot.join("g1", "spammer")
        await bot.say("g1", "spammer", AD)
        bot.assert_kicked("g1", "spammer")
        await bot.say("g1", "alice", "黑名单")
        bot.assert_said("g1", contains="小美（spammer）")
        await bot.say("g1", "bob", "解封 spammer")
        bot.assert_said("g1", contains="需要群管理员权限")
        await bot.say("g1", "alice", "解封 spammer")
        bot.assert_said("g1", contains="spammer：已解除拉黑")
        bot.new_actions()
        await bot.join("g2", "spammer")
        assert not [a for a in bot.new_actions() if a.action == "kick"]
        await bot.private("boss", "解封 nobody")
        bot.assert_private("boss", contains="nobody 不在黑名单里")


async def test_replay_over_shared_history(tmp_path: Path) -> None:
    quiet = CONFIG.replace("new_member: {action: warn,", "new_member: {action: ignore,").replace(
        "  antispam:\n", "  antispam:\n    ad_content: {action: ignore}\n    contact: {action: ignore}\n"
    )
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    async with chat(write_config(tmp_path, quiet), WORLD, db_url=db_url) as bot:
        await bot.join("g1", "spammer")
        await bot.say("g1", "spammer", AD)
        await bot.say("g1", "bob", "今天天气真好")
        await bot.say("g1", "alice", AD)
        assert not [a for a in bot.actions if a.action == "kick"]
    async with chat(write_config(tmp_path, CONFIG, "strict.yaml"), WORLD, db_url=db_url) as bot:
        await bot.wait("1h")
        await bot.say("g1", "alice", "广告回放 3")
        reply = bot.assert_said("g1", contains="按当前规则回放")
        assert "会移出 1 人" in (reply.text or "")  # the rules of today judge yesterday's history
        assert "spammer" in (reply.text or "") and "alice" not in (reply.text or "")
        assert not [a for a in bot.actions if a.action == "kick"]  # a replay never acts


async def test_replay_counts_strikes_as_the_live_bot_does_to_the_edge_of_the_window(tmp_path: Path) -> None:
    # The second ad comes exactly `window_hours` (24) after the first: the live bot counts the
    # first strike still, and removes; a replay of the same history must say so too.
    async with chat(write_config(tmp_path, CONFIG), WORLD) as bot:
        await bot.say("g1", "bob", MILD)
        bot.assert_said("g1", contains="1/2")
        await bot.wait("24h")
        await bot.say("g1", "bob", MILD)
        bot.assert_kicked("g1", "bob")
    quiet = CONFIG.replace(
        "  antispam:\n", "  antispam:\n    ad_content: {action: ignore}\n    classifier: {action: ignore}\n"
    )
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'edge.db'}"
    async with chat(write_config(tmp_path, quiet, "quiet.yaml"), WORLD, db_url=db_url) as bot:
        await bot.say("g1", "bob", MILD)
        await bot.wait("24h")
        await bot.say("g1", "bob", MILD)
        assert not [a for a in bot.actions if a.action == "kick"]
    async with chat(write_config(tmp_path, CONFIG, "strict.yaml"), WORLD, db_url=db_url) as bot:
        await bot.wait("25h")  # each run's clock starts at the same instant: past the second ad
        await bot.say("g1", "alice", "广告回放 3")
        reply = bot.assert_said("g1", contains="按当前规则回放")
        assert "2 条消息：会移出 1 人" in (reply.text or "") and "bob" in (reply.text or "")


async def test_a_restart_remembers_who_is_new(tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'restart.db'}"
    async with chat(write_config(tmp_path, CONFIG), WORLD, db_url=db_url) as bot:
        await bot.join("g1", "newbie")
        await bot.say("g1", "newbie", "大家好，新人报到")
    async with chat(write_config(tmp_path, CONFIG), WORLD, db_url=db_url) as bot:
        await bot.say("g1", "newbie", LINK)  # still within the first 3 messages and the first hour
        bot.assert_said("g1", contains="新成员发链接")


async def test_flood_and_mentions(tmp_path: Path) -> None:
    config = CONFIG.replace("  antispam:\n", "  antispam:\n    flood: {action: warn, messages: 5, seconds: 10}\n")
    async with chat(write_config(tmp_path, config), WORLD) as bot:
        for i in range(5):
            await bot.say("g1", "bob", f"刷屏{i}")
        bot.assert_said("g1", contains="刷屏")
        bot.new_actions()
        many = " ".join(f"@m{i}" for i in range(9))
        await bot.say("g1", "bob", f"{many} 快来看")
        bot.assert_said("g1", contains="过多@他人")


async def test_spam_test_command_explains(tmp_path: Path) -> None:
    async with chat(write_config(tmp_path, CONFIG), WORLD) as bot:
        await bot.say("g1", "alice", "测广告 加薇❤信 abc123 领福利")
        reply = bot.assert_said("g1", contains="算广告")
        assert "引流联系方式：✔" in (reply.text or "")
        await bot.say("g1", "alice", "测广告 今晚吃什么")
        calm = bot.assert_said("g1", contains="不算广告")
    # Admins read Chinese: every check by its label, never by its id (ids stay in spam-check JSON).
    for text in (reply.text or "", calm.text or ""):
        labels = [line[2:].split("：", 1)[0] for line in text.splitlines() if line.startswith("· ")]
        assert labels and all(label in RULE_TITLES.values() for label in labels), labels
        assert not any(f"{name}：" in text for name in RULE_TITLES), text
        assert "（text）" not in text


MILD = "兼职日结，有意私聊"  # an ad that only warns: strikes add up to a removal


def slow_writes(bot, seconds: float) -> None:  # type: ignore[no-untyped-def]
    """Make every audit write take `seconds` (a database busy with another writer)."""
    writer = bot.sim.app.dispatcher.runtime.hosts["antispam"].state.executor.writer
    record_actions = writer.store.record_actions

    async def slow(*args, **kwargs):  # type: ignore[no-untyped-def]
        await asyncio.sleep(seconds)
        return await record_actions(*args, **kwargs)

    writer.store.record_actions = slow


async def test_the_third_strike_removes_also_after_a_restart(tmp_path: Path) -> None:
    config = write_config(tmp_path, CONFIG.replace("limit: 2,", "limit: 3,"))
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'strikes.db'}"
    async with chat(config, WORLD, db_url=db_url) as bot:
        slow_writes(bot, 0.2)
        await bot.say("g1", "bob", MILD)
        bot.assert_said("g1", contains="1/3")
        await bot.wait("1h")
        await bot.say("g1", "bob", MILD)
        bot.assert_said("g1", contains="2/3")  # counted from memory, the rows still being written
        # no settle: closing the bot (the plugin's shutdown) writes what is queued
    async with chat(config, WORLD, db_url=db_url) as bot:
        await bot.wait("2h")
        await bot.say("g1", "bob", MILD)  # the two strikes were reloaded from the database
        bot.assert_kicked("g1", "bob")
        bot.assert_private("owner1", contains="第 3 次违规")
        rows = await decisions(bot)
    assert [(r.outcome, r.strikes) for r in rows] == [("warned", 1), ("warned", 2), ("removed", 3)]


async def test_a_pardon_clears_the_strikes_being_counted(tmp_path: Path) -> None:
    async with chat(write_config(tmp_path, CONFIG), WORLD) as bot:
        await bot.say("g1", "bob", MILD)
        bot.assert_said("g1", contains="1/2")
        await bot.say("g1", "alice", "解封 bob")
        bot.assert_said("g1", contains="已清除 1 条警告记录")
        bot.new_actions()
        await bot.say("g1", "bob", MILD)
        assert not [a for a in bot.new_actions() if a.action == "kick"]
        bot.assert_said("g1", contains="1/2")
        await settle(bot)
        async with bot.sim.app.db.session() as s:
            strikes = (await s.exec(sa.select(sa.func.count()).select_from(AntispamStrike))).scalar_one()
    assert strikes == 1  # the pardoned strike is gone from the database too


async def test_a_reload_keeps_the_strikes_and_loses_no_rows(tmp_path: Path) -> None:
    path = write_config(tmp_path, CONFIG)
    async with chat(path, WORLD) as bot:
        app = bot.sim.app
        await bot.say("g1", "bob", MILD)  # a strike on day 1
        await bot.wait("30h")
        await bot.say("g1", "bob", MILD)  # outside the 24-hour window: a first strike again
        bot.assert_said("g1", contains="1/2")
        before = app.dispatcher.runtime.hosts["antispam"].state
        write_config(tmp_path, CONFIG.replace("window_hours: 24", "window_hours: 48"))
        assert await app.reload(path)
        assert app.dispatcher.runtime.hosts["antispam"].state is not before
        await bot.say("g1", "bob", MILD)  # the 48-hour window reaches back to day 1: third strike
        bot.assert_kicked("g1", "bob")
        rows = await decisions(bot)
    assert [(r.outcome, r.strikes) for r in rows] == [("warned", 1), ("warned", 1), ("removed", 3)]
