"""Commands as people type them, through the dispatcher and the real plugins.

Handler level: a recording plugin sees exactly the Command the tokenizer made of each form.
Pipeline level: the shipped config/bot.yaml in the simulator (tests/harness.py): plugin
aliases in 开启/关闭, glued and punctuated commands, Chinese deadlines, the invite topic list,
private and admin help."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.app import LoadedConfig, load_everything
from bot.config.errors import LineMap
from bot.config.models import BotConfig
from bot.core import manage
from bot.core.loader import PluginSettings
from bot.core.plugin import Command, Plugin
from tests.harness import Chat, chat

REPO = Path(__file__).resolve().parents[2]


def recording_plugin(seen: list[tuple[str, tuple[str, ...]]]) -> Plugin:
    plugin = Plugin("recorder", aliases=("记录器",))

    @plugin.command("投", glued="number", usage="编号")
    async def vote(cmd: Command) -> None:
        seen.append((cmd.word, cmd.args))

    @plugin.command("签到")
    async def check_in(cmd: Command) -> None:
        seen.append((cmd.word, cmd.args))

    return plugin


def loaded(*plugins: Plugin) -> LoadedConfig:
    cfg = BotConfig.model_validate({"bot_admins": ["owner1"]})
    settings = [PluginSettings(p, p.priority, p.config()) for p in (manage.plugin, *plugins)]
    return LoadedConfig(cfg, LineMap("<test>", {}), settings)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("投2", ("投", ("2",))),
        ("投 2", ("投", ("2",))),
        ("投２！", ("投", ("2",))),
        ("【投 3】", ("投", ("3",))),
        ("/投2", ("投", ("2",))),
        ("@小助手\u2005投2", ("投", ("2",))),
        ("签到", ("签到", ())),
        ("签到！", ("签到", ())),
        ("签到~", ("签到", ())),
        ("【签到】", ("签到", ())),
        ("「签到」", ("签到", ())),
        ("签到。", ("签到", ())),
        ("投资", None),
        ("投2个", None),
        ("签到了吗", None),
        ("签到好累", None),
    ],
)
async def test_the_handler_gets_one_command_for_every_form(
    text: str, expected: tuple[str, tuple[str, ...]] | None
) -> None:
    seen: list[tuple[str, tuple[str, ...]]] = []
    async with chat(loaded(recording_plugin(seen))) as bot:
        await bot.say("g1", "alice", text)
        if expected is None:
            bot.assert_silent()
    assert seen == ([expected] if expected else [])


async def test_a_plugin_is_switched_by_its_alias_glued_or_not() -> None:
    async with chat(loaded(recording_plugin([]))) as bot:
        await bot.say("g1", "owner1", "关闭 记录器")
        bot.assert_said("g1", contains="已在本群关闭“recorder”")
        await bot.say("g1", "owner1", "开启记录器")
        bot.assert_said("g1", contains="已在本群开启“recorder”")
        await bot.say("g1", "owner1", "关闭 记录")
        bot.assert_said("g1", contains="你是不是想说：recorder")


# --- the real plugins, the shipped config --------------------------------------------------

CONFIG = REPO / "config" / "bot.yaml"


def texts(bot: Chat, *, to: str | None = None, group: str | None = None) -> list[str]:
    out = []
    for action in bot.new_actions():
        private = to is not None and action.action == "private" and action.to == to
        if private or (group is not None and action.action == "say" and action.group == group):
            out.append(action.text or "")
    return out


async def test_plugin_names_as_the_readme_writes_them() -> None:
    async with chat(load_everything(CONFIG)) as bot:
        for text, name in [("关闭 欢迎", "入群欢迎"), ("关闭打卡", "签到打卡"), ("关闭 踢广告", "自动踢广告")]:
            await bot.say("g1", "owner1", text)
            bot.assert_said("g1", contains=f"已在本群关闭“{name}”")
        bot.new_actions()
        await bot.join("g1", "carol")
        assert not [a for a in bot.new_actions() if a.action == "say" and "欢迎" in (a.text or "")]
        await bot.say("g1", "owner1", "开启入群欢迎")
        bot.assert_said("g1", contains="已在本群开启“入群欢迎”")
        await bot.say("g1", "owner1", "关闭 欢乐")
        said = bot.assert_said("g1", contains="没有叫“欢乐”的功能")
        assert "你是不是想说：入群欢迎" in said.text


async def test_spacing_and_punctuation_in_real_commands() -> None:
    async with chat(load_everything(CONFIG)) as bot:
        await bot.say("g1", "alice", "签到！")
        await bot.say("g1", "bob", "【签到】")
        await bot.wait("61s")  # check-in replies are merged per minute by default
        merged = bot.assert_said("g1", contains="签到（2 人）")
        assert set(merged.mentions) == {"alice", "bob"}
        bot.new_actions()
        for chat_line in ("签到了吗", "签到好累"):
            await bot.say("g1", "bob", chat_line)
        bot.assert_silent()
        await bot.say("g1", "owner1", "发起投票 午饭吃什么 火锅 烧烤 截止=下午三点半")
        bot.assert_said("g1", contains="截止：今天 15:30")
        await bot.say("g1", "alice", "投2")
        bot.assert_said("g1", contains="已投给 2. 烧烤")
        await bot.say("g1", "bob", "投 1！")
        bot.assert_said("g1", contains="已投给 1. 火锅")
        await bot.say("g1", "owner1", "猜数字")
        bot.new_actions()
        await bot.say("g1", "alice", "猜50")
        reply = bot.assert_said("g1")
        assert "用法" not in reply.text and ("大" in reply.text or "小" in reply.text or "猜中" in reply.text)


@pytest.mark.parametrize(
    ("deadline", "shown"),
    [("九点", "今天 09:00"), ("晚上十点", "今天 22:00"), ("8点一刻", "今天 08:15"), ("一小时后", "今天 09:00")],
)
async def test_lottery_deadlines_in_chinese(deadline: str, shown: str) -> None:
    # The harness's clock starts at 08:00 (Asia/Shanghai).
    async with chat(load_everything(CONFIG)) as bot:
        await bot.say("g1", "owner1", f"发起抽奖 电影票 {deadline}")
        bot.assert_said("g1", contains=f"开奖：{shown}")


async def test_an_ambiguous_deadline_is_explained() -> None:
    async with chat(load_everything(CONFIG)) as bot:
        await bot.say("g1", "owner1", "发起投票 周末去哪 爬山 看电影 截止=明天三点")
        bot.assert_said("g1", contains="是凌晨还是下午")


async def test_an_unknown_topic_right_after_the_keyword_gets_the_list() -> None:
    async with chat(load_everything(CONFIG)) as bot:
        await bot.private("alice", "加群")
        bot.assert_private("alice", contains="想加入哪个群？请发送：加群 读书 / 加群 英语")
        await bot.private("alice", "加群 游泳")
        bot.assert_private("alice", contains="没有“游泳”这个群")
        bot.new_actions()
        await bot.private("alice", "加群 游泳")  # the same request at once: the cooldown
        bot.assert_silent()
        await bot.private("alice", "【加群 读书】")  # punctuation around it; alice is in g2 already
        bot.assert_private("alice", contains="你已经在「读书群」里啦")


async def test_private_help_lists_what_a_member_can_do_there() -> None:
    async with chat(load_everything(CONFIG)) as bot:
        await bot.say("g1", "alice", "签到")
        bot.new_actions()
        await bot.private("alice", "帮助")
        text = "\n".join(texts(bot, to="alice"))
        for wanted in ("帮助", "进群 / 入群", "加群 读书 / 加群 英语", "我的积分"):
            assert wanted in text, wanted
        assert "发起抽奖" not in text and "群列表" not in text  # not a member's, not in private
        await bot.private("alice", "签到")
        status = "\n".join(texts(bot, to="alice"))
        assert "签到要在群里发送" in status and "「宝妈交流群」今天已签到（第1位）" in status


async def test_an_admins_help_in_a_group_is_short_and_the_full_menu_goes_private() -> None:
    async with chat(load_everything(CONFIG)) as bot:
        await bot.say("g2", "alice", "帮助")  # alice is an admin of g2
        actions = bot.new_actions()
        group = [a.text or "" for a in actions if a.action == "say" and a.group == "g2"]
        private = [a.text or "" for a in actions if a.action == "private" and a.to == "alice"]
        assert group and private
        assert "管理员命令已私聊发给你" in group[-1]
        assert not any("［群管理员］" in t for t in group)
        assert any("发起抽奖" in t for t in private)
        # No section is split: every entry line has its section's title earlier in the same message.
        for message in [*group, *private]:
            title_seen = False
            for line in message.splitlines():
                if re.match(r"^【.+】$", line):
                    title_seen = True
                elif line.startswith("  "):
                    assert title_seen, message
        # A member's 帮助 in a group gets nothing privately.
        await bot.say("g1", "bob", "帮助")
        assert not [a for a in bot.new_actions() if a.action == "private"]
