"""The dispatcher through the full pipeline: filtering, ordering, isolation, commands."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import pytest

from bot.app import LoadedConfig
from bot.config.errors import LineMap
from bot.config.models import BotConfig
from bot.core import manage
from bot.core.context import Context
from bot.core.events import GroupMessage, Member
from bot.core.loader import PluginSettings
from bot.core.plugin import STOP, Command, Permission, Plugin
from tests.harness import chat


def loaded_with(*plugins: Plugin, **config: object) -> LoadedConfig:
    cfg = BotConfig.model_validate({"bot_admins": ["owner1"], **config})
    settings = [PluginSettings(p, p.priority, p.config()) for p in (manage.plugin, *plugins)]
    return LoadedConfig(cfg, LineMap("<test>", {}), settings)


def echo_plugin(name: str, priority: int, seen: list[str], *, stop: bool = False, fail: bool = False) -> Plugin:
    plugin = Plugin(name, priority=priority)

    @plugin.on(GroupMessage)
    async def handle(event: GroupMessage, ctx: Context) -> object:
        seen.append(name)
        if fail:
            raise RuntimeError("boom")
        if stop:
            return STOP
        return None

    return plugin


async def test_priority_order_stop_and_error_isolation() -> None:
    seen: list[str] = []
    plugins = [
        echo_plugin("late", 90, seen),
        echo_plugin("stopper", 50, seen, stop=True),
        echo_plugin("broken", 10, seen, fail=True),
        echo_plugin("first", 1, seen),
    ]
    async with chat(loaded_with(*plugins)) as bot:
        await bot.say("g1", "alice", "hello")
    # "broken" raised, yet "stopper" still ran; "late" never saw the event.
    assert seen == ["first", "broken", "stopper"]


async def test_a_handler_is_left_out_of_groups_it_does_not_concern() -> None:
    seen: list[str] = []
    asked: list[str] = []
    plugin = Plugin("only_g2", priority=50)

    def concerns(state: object, group_id: str) -> bool:
        asked.append(group_id)
        return group_id == "g2"

    @plugin.on(GroupMessage, concerns=concerns)
    async def handle(event: GroupMessage) -> None:
        seen.append(event.group_id)

    async with chat(loaded_with(plugin)) as bot:
        for group in ("g1", "g2", "g1", "g2"):
            await bot.say(group, "alice", "hello")
    assert seen == ["g2", "g2"]
    assert asked == ["g1", "g2"]  # once per group, when its plan is made


async def test_own_messages_duplicates_and_stale_messages_reach_no_plugin() -> None:
    seen: list[str] = []
    async with chat(loaded_with(echo_plugin("p", 50, seen), other_bots=["otherbot"])) as bot:
        await bot.say("g1", "wxid_bot", "I am the bot")  # the bot's own echo
        await bot.say("g1", "alice", "one", id="m1")
        await bot.say("g1", "alice", "one again", id="m1")  # same platform id
        assert seen == ["p"]
        app = bot.sim.app
        old = GroupMessage(
            at=bot.sim.clock.now() - timedelta(hours=1),
            group_id="g1",
            sender=Member("alice", "Alice"),
            text="from a replay",
            message_id="m-old",
        )
        await app.handle(old)
        assert seen == ["p"]
        assert app.dispatcher.stats["stale"] == 1
        assert app.dispatcher.stats["own"] == 1
        assert app.dispatcher.stats["duplicate"] == 1


async def test_same_message_twice_under_different_ids_is_one() -> None:
    seen: list[str] = []
    async with chat(loaded_with(echo_plugin("p", 50, seen))) as bot:
        app = bot.sim.app
        app.dispatcher.dedup_by_content = True  # as for a puppet (the simulator's ids are unique)
        at = bot.sim.clock.now()
        for message_id in ("a1", "a2"):  # one message delivered twice: same timestamp, new id
            await app.handle(
                GroupMessage(at=at, group_id="g1", sender=Member("alice", "Alice"), text="same", message_id=message_id)
            )
        assert seen == ["p"]
        later = at + timedelta(milliseconds=300)  # the member really says it again
        await app.handle(
            GroupMessage(at=later, group_id="g1", sender=Member("alice", "Alice"), text="same", message_id="a3")
        )
        assert seen == ["p", "p"]


async def test_in_a_scenario_the_same_text_twice_is_two_messages() -> None:
    seen: list[str] = []
    async with chat(loaded_with(echo_plugin("p", 50, seen))) as bot:
        await bot.say("g1", "alice", "签到")
        await bot.say("g1", "alice", "签到")
    assert seen == ["p", "p"]


def admin_plugin(calls: list[str]) -> Plugin:
    plugin = Plugin("adminish", title="管理测试")

    @plugin.command("清空", permission=Permission.GROUP_ADMIN, help="清空数据")
    async def wipe(cmd: Command, ctx: Context) -> None:
        calls.append(f"wipe:{cmd.rest}")
        ctx.reply("已清空")

    @plugin.command("查看", help="查看数据")
    async def look(cmd: Command, ctx: Context) -> None:
        calls.append(f"look:{','.join(cmd.args)}")
        ctx.reply("数据如下")

    return plugin


async def test_commands_check_permission_and_parse_arguments() -> None:
    calls: list[str] = []
    async with chat(loaded_with(admin_plugin(calls))) as bot:
        await bot.say("g1", "alice", "清空 全部")
        bot.assert_said("g1", contains="群管理员权限")
        assert calls == []
        await bot.say("g1", "owner1", "/清空 全部")  # the owner is a group admin
        bot.assert_said("g1", contains="已清空")
        await bot.say("g1", "alice", "查看 a 'b c'")
        await bot.say("g1", "alice", "查看一下吧")  # the word must stand alone
        await bot.say("g1", "alice", "@小助手\u2005#查看 x")
    assert calls == ["wipe:全部", "look:a,b c", "look:x"]


async def test_help_lists_only_what_the_asker_may_use() -> None:
    async with chat(loaded_with(admin_plugin([]))) as bot:
        await bot.say("g1", "alice", "帮助")
        member_help = bot.new_actions()[-1].text or ""
        await bot.say("g1", "owner1", "帮助")
        actions = bot.new_actions()
        owner_help = "\n".join(a.text or "" for a in actions if a.action == "private" and a.to == "owner1")
        owner_in_group = "\n".join(a.text or "" for a in actions if a.action == "say")
    assert "查看" in member_help and "清空" not in member_help and "群列表" not in member_help
    # An admin's full menu goes privately (owner1 is also a bot admin here); the group gets the short one.
    assert "清空" in owner_help and "群列表" in owner_help
    assert "清空" not in owner_in_group and "管理员命令已私聊发给你" in owner_in_group


async def test_plugin_switch_is_kept_across_restarts(tmp_path: Path) -> None:
    seen: list[str] = []
    db = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    loaded = loaded_with(echo_plugin("p", 50, seen))
    async with chat(loaded, db_url=db) as bot:
        await bot.say("g1", "alice", "关闭 p")
        bot.assert_said("g1", contains="群管理员权限")
        await bot.say("g1", "owner1", "关闭 p")
        bot.assert_said("g1", contains="已在本群关闭")
        await bot.say("g1", "alice", "after off")
    assert seen == []  # core commands stop propagation; then p is off in g1
    async with chat(loaded, db_url=db) as bot:
        await bot.say("g1", "alice", "still off")
        await bot.say("g2", "alice", "on in g2")
        assert seen == ["p"]
        await bot.say("g1", "owner1", "开启 p")
        await bot.say("g1", "alice", "back on")
    assert seen == ["p", "p"]


async def test_bot_added_to_a_group_introduces_itself_and_tells_admins() -> None:
    async with chat(loaded_with()) as bot:
        await bot.leave("g1", "wxid_bot")
        bot.assert_private("owner1", contains="已离开")
        await bot.join("g1", "wxid_bot", inviter="alice")
    bot.assert_said("g1", contains="我是小助手")
    bot.assert_private("owner1", contains="拉进了群")


@pytest.mark.parametrize("word", ["群列表", "/群列表"])
async def test_group_list_is_for_bot_admins(word: str) -> None:
    async with chat(loaded_with()) as bot:
        await bot.private("alice", word)
        assert "权限" in (bot.new_actions()[-1].text or "")
        await bot.private("owner1", word)
        listing = bot.new_actions()[-1].text or ""
    assert "g1" in listing and "g2" in listing


async def test_the_bot_leaving_and_rejoining_marks_the_group_and_is_no_membership() -> None:
    import sqlalchemy as sa

    from bot.storage.models import Group, Membership

    async with chat(loaded_with()) as bot:
        await bot.leave("g1", "wxid_bot", "bob")
        app = bot.sim.app
        await app.recorder.flush()
        async with app.db.session() as s:
            group = (await s.execute(sa.select(Group).where(Group.id == "g1"))).scalar_one()
            assert group.active is False
            bot_rows = (await s.execute(sa.select(Membership).where(Membership.member_id == "wxid_bot"))).all()
            assert bot_rows == []
            # Bob was in g1 before the bot (found at start-up): his leave closes that stay.
            [bob] = (await s.execute(sa.select(Membership).where(Membership.member_id == "bob"))).scalars().all()
            assert bob.joined_at is None and bob.left_at is not None
        await bot.join("g1", "wxid_bot")
        await app.recorder.flush()
        async with app.db.session() as s:
            group = (await s.execute(sa.select(Group).where(Group.id == "g1"))).scalar_one()
            assert group.active is True


async def test_the_bot_lets_database_threads_take_the_gil_promptly() -> None:
    # bot.app._SWITCH_INTERVAL: at CPython's default, a busy event loop starved aiosqlite's
    # threads (round trips of seconds during a burst; the recorder fell far behind).
    sys.setswitchinterval(0.005)
    async with chat(loaded_with()):
        assert sys.getswitchinterval() == pytest.approx(0.0005)
