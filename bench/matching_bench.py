"""Throughput of the keyword path: `normalize` + `KeywordMatcher.match` per message.

.venv/bin/python -c "from bench.matching_bench import keyword_match_rate as r; print(r())"
"""

from __future__ import annotations

import random
import time

from bot.core.matching import KeywordMatcher, MatchMode
from bot.core.text import normalize

# ~400 frequent characters: keywords and chat built from them overlap the way real ones do.
_COMMON = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面"
    "而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性"
    "好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第"
    "向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管"
    "特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处"
    "理世车收群签到红包优惠券领取扫码加微信免费课程团购宝妈孩子学习作业老师早安晚安谢谢请问怎么哪里多少钱"
)
_PUNCT = "，。！？：；、（）～ "


def _word(rng: random.Random, low: int, high: int) -> str:
    return "".join(rng.choices(_COMMON, k=rng.randint(low, high)))


def _rules(rng: random.Random, n: int) -> list[tuple[str, MatchMode, int]]:
    modes = [MatchMode.CONTAINS] * 7 + [MatchMode.EXACT] * 2 + [MatchMode.PREFIX]
    rules = [(_word(rng, 2, 5), rng.choice(modes), i) for i in range(n)]
    # A few typical admin keywords, some written with full-width or mixed-case Latin.
    extra = ["签到", "红包", "加微信", "ＶＸ", "Q群", "优惠券", "免费课程", "早安", "多少钱", "怎么领"]
    rules += [(kw, MatchMode.CONTAINS, n + i) for i, kw in enumerate(extra)]
    return rules


def _messages(rng: random.Random, n: int, keywords: list[str]) -> list[str]:
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 4)):
            parts.append(_word(rng, 3, 10))
            parts.append(rng.choice(_PUNCT))
        if rng.random() < 0.2:
            parts.insert(rng.randrange(len(parts) + 1), rng.choice(keywords))
        if rng.random() < 0.1:
            parts.append(rng.choice(["OK", "哈哈哈😂", "ＨＥＬＬＯ", "666", "@小助手\u2005"]))
        out.append("".join(parts))
    return out


def keyword_match_rate(n_rules: int = 10_000, n_messages: int = 100_000, seed: int = 7) -> float:
    """Messages per second through normalize + match, with `n_rules` realistic Chinese rules."""
    rng = random.Random(seed)
    rules = _rules(rng, n_rules)
    matcher = KeywordMatcher(rules)
    messages = _messages(rng, n_messages, [kw for kw, _, _ in rules[-50:]])
    match = matcher.match
    hits = 0
    start = time.perf_counter()
    for text in messages:
        if match(normalize(text)):
            hits += 1
    elapsed = time.perf_counter() - start
    assert hits, "benchmark messages never matched: the generator is broken"
    return n_messages / elapsed
