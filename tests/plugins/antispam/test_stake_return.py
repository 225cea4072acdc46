"""The stake-and-return pitch (投1000返1500 and its spellings, told as a story too), read by
the ad-content rule alone."""

from __future__ import annotations

import pytest

from plugins.antispam.checks import Message, amount_value
from plugins.antispam.config import AntispamConfig
from plugins.antispam.detector import Detector
from tests.plugins.antispam.test_checks import result


@pytest.mark.parametrize(
    ("text", "spam"),
    [
        ("投1000返1500，三天到账", True),
        ("入500出900 三天一个周期 我自己都复投四轮了", True),
        ("t 2 k 反 3 k 5，周期三天，老玩家都懂", True),
        ("投 1️⃣0️⃣0️⃣0️⃣ 返 1️⃣5️⃣0️⃣0️⃣", True),
        ("充一百返三百，先到先得", True),
        ("投一万拿一万五 年底分红", True),
        # Told as a story: a few words between, and a return half as much again.
        ("我上个月投了3000，前天返了4500，已经提现了", True),
        ("一拖四的玩法听过没？今天放一百，明天拿四百", True),
        ("存十万三年变二十万，国家背书的", True),
        ("入金1k，出金4k，名额按进群顺序排", True),
        ("这个是连锁销售，投三万八，两年挣两百万", True),
        ("群里刚才那个说投1000返1500的是骗子，大家别信", False),  # a warning quoting it
        ("这个基金我投了3000，现在回本了", False),
        ("收入500出头，房租就要一半", False),
        ("定投三年 终于赚了两百 哈哈", False),  # a period, not a stake
        ("定投一年了 收益 -3% 还要坚持吗", False),
        ("存了一千块，后来取出来五百交学费", False),  # back less than went in
    ],
)
def test_a_stake_and_its_return_is_an_ad_on_its_own(text: str, spam: bool) -> None:
    # The rule alone: the text model, which may set aside a content rule's warning, is off.
    rules_only = Detector(AntispamConfig(classifier={"enabled": False}), stateful=False)
    r = result(rules_only, "ad_content", Message(text))
    assert r.spam is spam, r.details


@pytest.mark.parametrize(
    ("amount", "value"),
    [
        ("1500", 1500),
        ("3k", 3000),
        ("2.5w", 25_000),
        ("两千", 2000),
        ("三百八十万", 3_800_000),
        ("一万五", 15_000),
        ("一千二", 1200),
        ("一百零五", 105),
        ("十五", 15),
        ("六万九千八", 69_800),
        ("贰仟", 2000),
    ],
)
def test_amounts_read_as_spoken(amount: str, value: float) -> None:
    assert amount_value(amount) == value
