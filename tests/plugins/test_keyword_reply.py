"""关键词自动回复: rules, scopes, cooldowns, regexes, through the full pipeline."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bot.app import load_everything
from bot.core.matching import RegexError, SafeRegex
from plugins.keyword_reply import KeywordReplyConfig, compile_rules, required_literal
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
    assert [h.rule.replies[0] for h in hits] == ["回复9999", "回复999", "回复99", "回复9"] or {
        h.rule.replies[0] for h in hits
    } == {"回复9999", "回复999", "回复99", "回复9"}


def test_default_config_rules_load() -> None:
    loaded = load_everything(Path(__file__).resolve().parents[2] / "config" / "bot.yaml")
    names = [s.name for s in loaded.plugins]
    assert "keyword_reply" in names and "welcome" in names


# --- the regex prefilter ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pattern", "required"),
    [
        ("^(?:查|查询)快递\\s*(?P<number>[A-Za-z0-9]{8,20})$", "快递"),
        ("^查快递\\s*(?P<number>[a-z0-9]{8,20})$", "查快递"),
        ("(?P<city>\\w+)天气怎么样", "天气怎么样"),
        ("快递?", "快"),  # the last character is optional
        ("快递{2,}单号", "单号"),
        ("订单[0-9]+号", "订单"),
        ("vx号码", "号码"),  # letters have case variants: left out
        ("a|快递", ""),  # a top-level alternative: nothing is required
        ("快递{|b}", ""),  # "{" that starts no repeat is text in RE2: not understood, no filter
        ("(快递)", ""),
        ("[快递]", ""),
        ("\\p{Han}+快递", ""),
        ("\\Q快递\\E", ""),
        ("[[:digit:]]快递", ""),
    ],
)
def test_required_literal_is_conservative(pattern: str, required: str) -> None:
    assert required_literal(pattern) == required


def test_required_literal_is_in_every_match() -> None:
    rng = random.Random(3)
    atoms = [
        "快",
        "递",
        "查",
        "号",
        "a",
        "B",
        "1",
        " ",
        ".",
        "^",
        "$",
        "\\d",
        "\\s",
        "\\w",
        "\\.",
        "[快a]",
        "[^递]",
        "(",
        ")",
        "(?:",
        "(?i)",
        "(?-i)",
        "(?s)",
        "(?P<x>",
        "(?:)",
        "|",
        "*",
        "+",
        "?",
        "{2}",
        "{1,3}",
        "{0,}",
        "{",
        "}",
        "]",
        "-",
        "\\b",
        "\\A",
        "\\z",
    ]
    alphabet = "快递查号aAbB1 .-{}]"
    checked = 0
    for _ in range(6000):
        pattern = "".join(rng.choice(atoms) for _ in range(rng.randint(1, 8)))
        try:
            regex = SafeRegex.compile(pattern)
        except RegexError:
            continue
        required = required_literal(pattern)
        for _ in range(30):
            text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))
            if regex.search(text) is not None:
                assert required in text, (pattern, required, text)
                checked += bool(required)
    assert checked > 1000  # matches that a non-empty literal was checked against


async def test_regex_rules_behind_a_keyword_rule_and_each_other(tmp_path: Path) -> None:
    cfg = """
plugins:
  keyword_reply:
    rules:
      - {name: 天气1, match: regex, pattern: "(?P<city>\\\\w+)天气$", replies: ["A {city}"], priority: 5}
      - {name: 天气2, match: regex, pattern: "北京天气", replies: ["B"], priority: 1}
      - {name: 关键词, keywords: [天气], match: contains, replies: ["C {keyword}"], priority: 3}
"""
    async with chat(write_config(tmp_path, cfg)) as bot:
        await bot.say("g1", "alice", "北京天气")  # all three match: priority 1 wins
        await bot.say("g1", "bob", "上海天气")  # the keyword rule (3) beats the regex (5)
        await bot.say("g1", "carol", "上海下雨")  # none
    assert [a.text for a in bot.said("g1")] == ["B", "C 关键词"]
