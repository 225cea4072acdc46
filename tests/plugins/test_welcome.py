"""入群欢迎语 through the full pipeline."""

from __future__ import annotations

from pathlib import Path

from tests.harness import chat, write_config

CONFIG = """
bot_admins: [owner1]
groups:
  - {id: g1, name: 宝妈交流群}
  - {id: g2, name: 读书群, sets: [quiet]}
plugins:
  welcome:
    text: "欢迎 {members} 加入「{group}」（{count} 人，{newcomers} 位新朋友，邀请人：{inviter}）"
    merge_window_seconds: 30
    private_text: "你好 {members}，请先阅读群公告。"
    overrides:
      - groups: [set:quiet]
        enabled: false
"""


async def test_a_burst_of_joins_is_one_welcome_mentioning_everyone(tmp_path: Path) -> None:
    async with chat(write_config(tmp_path, CONFIG)) as bot:
        await bot.join("g1", "carol", inviter="alice")
        await bot.join("g1", "dave", "erin", inviter="alice")
        await bot.wait("10s")
        await bot.join("g1", "frank")
        bot.assert_silent()  # nothing until the merge window closes
        await bot.wait("1m")
        welcome = bot.assert_said("g1", contains="欢迎", count=1)
    assert welcome.mentions == ["carol", "dave", "erin", "frank"]
    assert "@Carol" in (welcome.text or "") and "@frank" in (welcome.text or "")
    assert "宝妈交流群" in (welcome.text or "")
    assert "8 人" in (welcome.text or "")  # the bot, owner1, alice, bob and the four newcomers
    assert "4 位新朋友" in (welcome.text or "")
    assert "Alice" in (welcome.text or "")
    bot.assert_private("carol", contains="请先阅读群公告")


async def test_joins_after_the_window_get_their_own_welcome(tmp_path: Path) -> None:
    async with chat(write_config(tmp_path, CONFIG)) as bot:
        await bot.join("g1", "carol")
        await bot.wait("2m")
        await bot.join("g1", "dave")
        await bot.wait("2m")
    first, second = bot.said("g1", contains="欢迎")
    assert first.mentions == ["carol"] and second.mentions == ["dave"]


async def test_welcome_is_sent_even_when_the_scenario_ends_inside_the_window(tmp_path: Path) -> None:
    async with chat(write_config(tmp_path, CONFIG)) as bot:
        await bot.join("g1", "carol", "dave")
        await bot.finish()
        bot.assert_said("g1", contains="欢迎", count=1)


async def test_off_in_a_group_set_and_never_for_the_bot(tmp_path: Path) -> None:
    async with chat(write_config(tmp_path, CONFIG)) as bot:
        await bot.join("g2", "carol")
        await bot.wait("1m")
        assert bot.said("g2", contains="欢迎") == []
        await bot.leave("g1", "wxid_bot")
        await bot.join("g1", "wxid_bot")
        await bot.wait("1m")
        assert all("@小助手" not in (a.text or "") for a in bot.said("g1"))
        assert bot.said("g1", contains="欢迎 ") == []


async def test_someone_who_left_before_the_welcome_is_not_welcomed(tmp_path: Path) -> None:
    async with chat(write_config(tmp_path, CONFIG)) as bot:
        await bot.join("g1", "carol", "dave")
        await bot.leave("g1", "carol")
        await bot.wait("1m")
        await bot.join("g1", "erin")
        await bot.leave("g1", "erin")
        await bot.wait("1m")
    (welcome,) = bot.said("g1", contains="欢迎")
    assert welcome.mentions == ["dave"] and "carol" not in (welcome.text or "")
