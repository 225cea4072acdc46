"""A pitch between quotation marks is someone else's words: repeated to mock it or to ask
about it, it is no ad of the sender's unless there is also a way to reach someone."""

from __future__ import annotations

import pytest

from plugins.antispam.checks import Message
from plugins.antispam.config import AntispamConfig
from plugins.antispam.detector import Detector
from tests.plugins.antispam.test_checks import result


@pytest.mark.parametrize(
    ("text", "spam"),
    [
        ("哈哈哈 我都习惯了 每个群都有人发“宝妈兼职 日结”", False),
        ("你们听说过那个“宝妈在家刷单”吗，我邻居做了，先赚了三百，后来全没了", False),
        ("有人知道这个是不是真的吗？「养老项目，年收益12%保本保息」", False),
        # The pitch outside the quotes, or a way to reach the sender: the sender's own ad.
        ("宝妈兼职 日结，回复“兼职”拉你进群", True),
        ("“宝妈兼职 日结” 加V：abc12345", True),
        ("宝妈兼职 日结 “真实可靠”", True),
        ("“宝妈兼职 日结 一天三百” 想做的私我", True),
    ],
)
def test_a_quoted_pitch_is_not_the_senders_ad(text: str, spam: bool) -> None:
    # The rule alone: the text model, which may set aside a content rule's finding, is off.
    rules_only = Detector(AntispamConfig(classifier={"enabled": False}), stateful=False)
    r = result(rules_only, "ad_content", Message(text))
    assert r.spam is spam, r.details
