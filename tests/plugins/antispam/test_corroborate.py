"""The text model setting aside what the rules found (`Detector._corroborate`), with a
stand-in model whose probability each test chooses."""

from __future__ import annotations

import pytest

from bot.core.events import MessageKind
from plugins.antispam.checks import Message
from plugins.antispam.config import Action, AntispamConfig
from plugins.antispam.detector import Detector
from tests.plugins.antispam.test_checks import NEW, result


class ReadsAs:
    """A text model that gives every text the same probability."""

    def __init__(self, p: float) -> None:
        self.p = p

    def score(self, squeezed: str, kind: str = "text", who: str = "old") -> float:
        return self.p


FORM = "学校发的校服征订二维码，老师让转到家长群"
GROUP_CODE = {"kind": MessageKind.IMAGE, "url": "https://weixin.qq.com/g/AbCdEf", "qr": True, **NEW}


@pytest.mark.parametrize(
    ("message", "p", "warned"),
    [
        (Message(FORM, **GROUP_CODE), 0.05, False),  # the caption reads as plainly ordinary
        (Message(FORM, **GROUP_CODE), 0.3, True),  # not plainly: a lure can read as a notice
        (Message("", **GROUP_CODE), 0.05, True),  # nothing to read
        (Message("大家好，新人报到", **GROUP_CODE), 0.05, True),  # a hello says nothing either
        (Message(FORM + " xf.sq-wg.top/a", **GROUP_CODE), 0.05, True),  # a link beside the code's own
    ],
)
def test_a_newcomers_code_with_an_ordinary_caption_is_the_text_models_to_clear(
    message: Message, p: float, warned: bool
) -> None:
    detector = Detector(AntispamConfig(), stateful=False, classifier=ReadsAs(p))
    assert result(detector, "new_member", message).spam is warned


@pytest.mark.parametrize(("p", "removed"), [(0.05, False), (0.3, True)])
def test_a_removal_for_ad_phrases_is_set_aside_only_when_the_model_reads_plain_chat(p: float, removed: bool) -> None:
    config = AntispamConfig.model_validate({"blacklist": {"words": ["代开发票"]}})
    detector = Detector(config, stateful=False, classifier=ReadsAs(p))
    r = result(detector, "ad_content", Message("群规：不荐股 不带单 不收费 谁发谁踢"))
    assert (r.spam, r.action) == ((True, Action.REMOVE) if removed else (False, Action.NONE)), r.details
    # The operator's own phrases stay removed, however the text reads.
    assert result(detector, "blacklist", Message("代开发票，量大从优")).action is Action.REMOVE


@pytest.mark.parametrize(
    ("message", "p", "warned"),
    [
        (Message("研招网公布的报考数据", kind=MessageKind.URL, url="https://yz.chsi.com.cn/k", **NEW), 0.05, False),
        (Message("新人 分享一篇讲 context 的文章 https://go.dev/blog/context", **NEW), 0.05, False),
        (Message("新人 分享一篇讲 context 的文章 https://go.dev/blog/context", **NEW), 0.3, True),  # not plainly
        (Message("领取入口", kind=MessageKind.URL, url="https://t.cn/A6aBcDe", **NEW), 0.05, True),  # a short link
        (Message("看看 https://shop.example.com/1 电话 13912345678", **NEW), 0.05, True),  # a number beside it
    ],
)
def test_a_newcomers_plain_link_read_as_plainly_ordinary_is_the_text_models_to_clear(
    message: Message, p: float, warned: bool
) -> None:
    detector = Detector(AntispamConfig(), stateful=False, classifier=ReadsAs(p))
    assert result(detector, "new_member", message).spam is warned
