"""关键词自动回复: rules, scopes, cooldowns, regexes, through the full pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.app import load_everything
from plugins.keyword_reply import KeywordReplyConfig, compile_rules
from tests.harness import chat, write_config

CONFIG = """
bot_admins: [owner1]
groups:
  - {id: g1, name: 宝妈交流群, sets: [moms]}
  - {id: g2, name: 读书群}
plugins:
  keyword_reply:
    rules:
      - name: 群规
        keywords: [群规, 规则]
        replies: ["群规：不发广告"]
        cooldown_seconds: 60
      - name: 问候
        keywords: [早上好]
        match: prefix
        replies: ["A {member}", "B {member}"]
        pick: cycle
      - name: 优惠
        keywords: [优惠券]
        match: contains
        replies: ["优惠券在群公告里"]
        groups: [set:moms]
        mention: true
      - name: 快递
        match: regex
        pattern: "^查快递\\\\s*(?P<number>[a-z0-9]{8,20})$"
        replies: ["单号 {number} 收到"]
      - name: 私聊
        keywords: [你好]
        private: true
        groups: []
        replies: ["你好，我是小助手"]
      - name: 高优先
        keywords: [群规]
        match: contains
        priority: -1
        groups: [g2]
        replies: ["g2 的群规"]
"""


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return write_config(tmp_path, CONFIG)


async def test_exact_match_on_normalised_text_and_cooldown(config_path: Path) -> None:
    async with chat(config_path) as bot:
        await bot.say("g1", "alice", "  群规 ")
        await bot.say("g1", "bob", "群规")  # within the 60 s cooldown: silent
        await bot.say("g1", "alice", "我想看群规")  # exact rule: no match
        await bot.wait("61s")
        await bot.say("g1", "alice", "@小助手\u2005群规")
    assert len(bot.said("g1", contains="不发广告")) == 2


async def test_prefix_cycle_and_template(config_path: Path) -> None:
    async with chat(config_path) as bot:
        await bot.say("g1", "alice", "早上好呀")
        await bot.say("g1", "bob", "ＥＡＲＬＹ 早上好")  # not a prefix
        await bot.say("g1", "bob", "早上好")
        await bot.say("g1", "alice", "早上好")
    texts = [a.text for a in bot.said("g1")]
    assert texts == ["A Alice", "B Bob", "A Alice"]


async def test_scope_by_group_set_and_mention(config_path: Path) -> None:
    async with chat(config_path) as bot:
        await bot.say("g1", "alice", "请问优惠券在哪里")
        await bot.say("g2", "alice", "请问优惠券在哪里")
    hit = bot.assert_said("g1", contains="优惠券在群公告里")
    assert hit.mentions == ["alice"] and (hit.text or "").startswith("@Alice")
    assert bot.said("g2") == []


async def test_priority_picks_the_lower_number(config_path: Path) -> None:
    async with chat(config_path) as bot:
        await bot.say("g2", "alice", "群规")
    assert [a.text for a in bot.said("g2")] == ["g2 的群规"]


async def test_regex_with_named_group(config_path: Path) -> None:
    async with chat(config_path) as bot:
        await bot.say("g1", "alice", "查快递 SF1234567890")
        await bot.say("g1", "alice", "查快递 x")
    assert [a.text for a in bot.said("g1")] == ["单号 sf1234567890 收到"]


async def test_private_rule_only_in_private(config_path: Path) -> None:
    async with chat(config_path) as bot:
        await bot.say("g1", "alice", "你好")
        await bot.private("alice", "你好")
    assert bot.said("g1") == []
    bot.assert_private("alice", contains="我是小助手")


async def test_ten_thousand_rules_compile_into_one_matcher(config_path: Path) -> None:
    rules = [{"keywords": [f"关键词{i}"], "match": "contains", "replies": [f"回复{i}"]} for i in range(10_000)]
    config = KeywordReplyConfig.model_validate({"rules": rules})
    compiled = compile_rules(config, lambda sel: set(sel))
    assert compiled.regex_rules == []
    hits = compiled.matcher.match("我想问关键词9999的事")
    assert [h.rule.replies[0] for h in hits] == ["回复9999", "回复999", "回复99", "回复9"] or \
        {h.rule.replies[0] for h in hits} == {"回复9999", "回复999", "回复99", "回复9"}


def test_default_config_rules_load() -> None:
    loaded = load_everything(Path(__file__).resolve().parents[2] / "config" / "bot.yaml")
    names = [s.name for s in loaded.plugins]
    assert "keyword_reply" in names and "welcome" in names
