"""群规 written from the anti-spam settings: the rules a group reads agree with what the bot
does (the warning's "第 n/limit 次" and the removal that follows)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bot.app import load_everything
from plugins.antispam import AntispamState, group_rules
from plugins.antispam.config import AntispamConfig
from plugins.antispam.rules_text import penalties, removed_at_once
from tests.harness import chat, write_config
from tests.plugins.antispam.test_scenarios import LINK, WORLD

# --- units --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, "24 小时内累计 3 次将被移出本群；明显的广告、新成员发群二维码或个人二维码直接移出。"),
        ({"strikes": {"limit": 5, "window_hours": 72}}, "3 天内累计 5 次将被移出本群"),
        ({"strikes": {"limit": 1}}, "发广告、引流一次即移出本群。"),
        ({"ad_content": {"remove_at": None}, "qr": {"enabled": False}}, "累计 3 次将被移出本群。"),
        (
            {"contact": {"action": "remove"}, "kinds": {"contact_card": "remove"}, "qr": {"enabled": False}},
            "；明显的广告、隐藏的联系方式、发名片直接移出。",
        ),
        ({"dry_run": True}, "发广告、引流的消息会被记录，由管理员处理。"),
    ],
)
def test_penalties_follow_the_settings(settings: dict[str, Any], expected: str) -> None:
    assert expected in penalties(AntispamConfig.model_validate(settings))


def test_the_default_rules_never_say_one_strike_and_out() -> None:
    text = penalties(AntispamConfig())
    assert "再犯" not in text and "累计 3 次" in text
    assert "新成员发群二维码或个人二维码" in removed_at_once(AntispamConfig())  # the QR rule removes those at once
    assert "新成员发群二维码或个人二维码" not in removed_at_once(AntispamConfig(qr={"enabled": False}))


def test_the_shipped_config_has_no_contradicting_rules_text() -> None:
    loaded = load_everything(Path(__file__).resolve().parents[3] / "config" / "bot.yaml")
    texts = [str(s.default.model_dump()) for s in loaded.plugins]
    assert not any("再犯移出" in t for t in texts)


# --- the handler, with a recording fake --------------------------------------------------------


@dataclass
class FakeCtx:
    now_at: datetime
    group_id: str = "g1"
    replies: list[str] = field(default_factory=list)

    def now(self) -> datetime:
        return self.now_at

    def reply(self, text: str, *, mention: bool = False) -> None:
        self.replies.append(text)


async def test_the_handler_renders_the_group_and_keeps_a_cooldown() -> None:
    config = AntispamConfig(rules_text="「{group}」群规：{penalties}", strikes={"limit": 4})
    state = AntispamState(None, None, None, None)  # type: ignore[arg-type]
    services: Any = SimpleNamespace(groups=SimpleNamespace(display_name=lambda gid: "宝妈交流群"))
    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    ctx = FakeCtx(t0)
    await group_rules(ctx, config, state, services)  # type: ignore[arg-type]
    ctx.now_at = t0 + timedelta(seconds=30)
    await group_rules(ctx, config, state, services)  # type: ignore[arg-type]
    ctx.now_at = t0 + timedelta(seconds=61)
    await group_rules(ctx, config, state, services)  # type: ignore[arg-type]
    assert len(ctx.replies) == 2
    assert ctx.replies[0].startswith("「宝妈交流群」群规：发广告、引流会收到提醒，24 小时内累计 4 次将被移出本群")


# --- the full pipeline --------------------------------------------------------------------------

CONFIG = """
bot_admins: [boss]
plugins:
  antispam:
    new_member: {action: warn, minutes: 60, messages: 3}
    overrides:
      - groups: [g2]
        strikes: {limit: 2}
"""


async def test_the_rules_say_what_the_warnings_do_in_each_group(tmp_path: Path) -> None:
    async with chat(write_config(tmp_path, CONFIG), WORLD) as bot:
        await bot.say("g1", "bob", "群规")
        await bot.say("g2", "bob", "规则")
        g1_rules = bot.assert_said("g1", contains="📌 群规").text or ""
        g2_rules = bot.assert_said("g2", contains="📌 群规").text or ""
        assert "累计 3 次将被移出本群" in g1_rules and "累计 2 次将被移出本群" in g2_rules
        await bot.join("g1", "newbie")
        await bot.say("g1", "newbie", LINK)
        warning = bot.assert_said("g1", contains="请勿发布广告").text or ""
        assert "第 1/3 次提醒，累计 3 次将被移出本群" in warning  # what the rules said
        await bot.say("g1", "alice", "群规")  # within the minute: the answer is still on screen
        assert len(bot.said("g1", contains="📌 群规")) == 1


async def test_rules_text_null_leaves_群规_to_a_keyword_reply(tmp_path: Path) -> None:
    config = (
        CONFIG
        + """    rules_text: null
  keyword_reply:
    rules:
      - {keywords: [群规], replies: ["本群群规见群公告"]}
"""
    )
    async with chat(write_config(tmp_path, config), WORLD) as bot:
        await bot.say("g1", "bob", "群规")
        [said] = bot.said("g1")
    assert said.text == "本群群规见群公告"
