"""Each check on its own (one result per message), then the detector and the verdict."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.core.events import MessageKind
from plugins.antispam.checks import Message
from plugins.antispam.classifier import shipped_model
from plugins.antispam.config import Action, AntispamConfig
from plugins.antispam.detector import Detector, Windows
from plugins.antispam.verdict import CLEAN

T0 = datetime(2026, 12, 1, 8, tzinfo=UTC)


def result(detector: Detector, name: str, message: Message):  # type: ignore[no-untyped-def]
    verdict = detector.check(message)
    found = [r for r in verdict.results if r.name == name]
    assert len(found) == 1, [r.name for r in verdict.results]
    return found[0]


@pytest.fixture(scope="module")
def default() -> Detector:
    return Detector(AntispamConfig(), stateful=False)


@pytest.mark.parametrize(
    ("text", "spam", "action"),
    [
        ("宝妈在家也能赚钱！手机操作，每天1-2小时，日入200+，有意者加V：mama6688", True, Action.REMOVE),
        ("兼职日结，有意私聊", True, Action.WARN),
        ("读书群的朋友们，诚邀加入付费社群，前100名仅需9.9，名额有限，私聊我", True, Action.WARN),
        ("我生娃前做过一段时间兼职，带娃之后实在没精力了", False, Action.NONE),
        ("群里千万别信那些宝妈兼职刷单的，我表姐被骗了三千多，都是骗子！", False, Action.NONE),
        ("群规：只发个人闲置，商家、回收、代充、贷款、刷单的一律踢", False, Action.NONE),  # the rules
        ("提醒新人：本群只讨论，不荐股不带单，有人私聊你说带你赚钱的直接拉黑", False, Action.NONE),
        ("车位出租，每月300，有需要的邻居联系我 13700001111", False, Action.NONE),
        ("推荐一个搬家师傅，人很好，价格合理，电话 13912340000", False, Action.NONE),
        ("社区卫生服务中心可以免费领取叶酸，带身份证就行", False, Action.NONE),
    ],
)
def test_ad_content(default: Detector, text: str, spam: bool, action: Action) -> None:
    r = result(default, "ad_content", Message(text))
    assert (r.spam, r.action) == (spam, action), r.details


@pytest.mark.parametrize(
    ("text", "spam"),
    [
        ("➕薇❤信了解", True),
        ("咨询 一三九 二八七六 五四三二", True),
        ("联系 1 5 0 - 1 2 3 4 - 9 8 7 6", True),
        ("加我微信 bbmm2023", False),  # plain: the ad score decides
        ("物业经理电话 13857161234", False),
        ("上次群里有人说加V领奶粉，大家别信，那都是骗子", False),  # quoted in a warning
    ],
)
def test_contact(default: Detector, text: str, spam: bool) -> None:
    assert result(default, "contact", Message(text)).spam is spam


@pytest.mark.parametrize(
    ("message", "spam"),
    [
        (Message("戳链接👉 www点yunma点shop"), True),
        # A throwaway domain, whoever posts it (a hijacked account's phishing link); an
        # established member's link to an ordinary domain is the model's call.
        (Message("好东西 http://a.xyz/x"), True),
        (Message("好东西 http://a-shop.com.cn/x"), False),
        (Message("好东西 http://a.xyz/x", member_age=timedelta(0)), True),
        (Message("https://github.com/x/y"), False),
    ],
)
def test_links(default: Detector, message: Message, spam: bool) -> None:
    assert result(default, "links", message).spam is spam


def test_what_a_qr_code_points_to_is_a_link_only_when_it_is_a_web_address(default: Detector) -> None:
    pay = Message("AA 的转这里", kind=MessageKind.IMAGE, url="wxp://f2f1Tq7Kx3LmPz8VwR2Nc5", qr=True)
    assert not default.analyzer.analyze(pay.text, pay.url).links
    assert "f2f1" not in result(default, "ad_content", pay).details  # no "link" named after the code
    form = Message("登记一下", kind=MessageKind.IMAGE, url="https://rkpc.sq-wg.top/form", qr=True)
    assert result(default, "links", form).spam  # a throwaway domain behind a code, whoever posts it


def test_unknown_domains_policy() -> None:
    strict = Detector(AntispamConfig.model_validate({"links": {"unknown_domains": "warn"}}), stateful=False)
    assert result(strict, "links", Message("看 https://example.com/a")).spam
    assert not result(strict, "links", Message("看 https://github.com/a")).spam


NEW = {"member_age": timedelta(minutes=5), "member_messages": 0}


@pytest.mark.parametrize(
    ("message", "spam"),
    [
        (Message("看看 https://shop.example.com/1", **NEW), True),
        (Message("看看 https://shop.example.com/1"), False),  # unknown history: established
        (Message("看看 https://shop.example.com/1", member_age=timedelta(days=30), member_messages=200), False),
        (Message("看看 https://shop.example.com/1", member_age=timedelta(days=30), member_messages=1), True),  # 2nd msg
        (Message("我的项目 https://github.com/me/p", **NEW), False),  # allowed domains are fine
        (Message("王阿姨", kind=MessageKind.CONTACT_CARD, **NEW), True),
        (Message("领福利", kind=MessageKind.MINI_PROGRAM, **NEW), True),
        (Message("", kind=MessageKind.IMAGE, qr=True, **NEW), True),
        (Message("长按识别二维码", kind=MessageKind.IMAGE, **NEW), True),
        (Message("宝宝的照片", kind=MessageKind.IMAGE, **NEW), False),
        (Message("大家好，新人报到", **NEW), False),
        # A first image or video with nothing said, or only a hello, is presumed a QR code.
        (Message("", kind=MessageKind.IMAGE, **NEW), True),
        (Message("新人报到🙋 多多关照～", kind=MessageKind.IMAGE, **NEW), True),
        (Message("Hi 大家好呀，我是新来的", kind=MessageKind.VIDEO, **NEW), True),
        (Message("新人报到，这是我家狗狗", kind=MessageKind.IMAGE, **NEW), False),  # says more: the model's
        (Message("大家好", kind=MessageKind.IMAGE, member_age=timedelta(minutes=5), member_messages=2), False),
    ],
)
def test_new_member(default: Detector, message: Message, spam: bool) -> None:
    assert result(default, "new_member", message).spam is spam


def test_kinds_are_per_config() -> None:
    cfg = AntispamConfig.model_validate({"kinds": {"contact_card": "remove", "qr_code": "warn"}})
    detector = Detector(cfg, stateful=False)
    card = result(detector, "kinds", Message("王阿姨", kind=MessageKind.CONTACT_CARD))
    assert (card.spam, card.action) == (True, Action.REMOVE)
    qr = result(detector, "kinds", Message("", kind=MessageKind.IMAGE, qr=True))
    assert (qr.spam, qr.action) == (True, Action.WARN)
    assert not result(detector, "kinds", Message("文件", kind=MessageKind.FILE)).spam
    off = {"program_file": "ignore", "disguised_program": "ignore"}
    quiet = Detector(AntispamConfig.model_validate({"kinds": off}), stateful=False)
    assert "kinds" not in {r.name for r in quiet.check(Message("x.exe", kind=MessageKind.FILE)).results}


@pytest.mark.parametrize(
    ("name", "spam", "action", "details"),
    [
        ("护理部绩效分配表(最终版).xls.scr", True, Action.REMOVE, "伪装成 .xls 的程序文件（.scr）"),
        ("毕业照.JPG.exe", True, Action.REMOVE, "伪装成 .jpg 的程序文件（.exe）"),
        ("血糖检测报告查询.apk", True, Action.WARN, "程序文件（.apk）"),
        ("setup.v2.exe", True, Action.WARN, "程序文件（.exe）"),  # a version number, not a disguise
        ("工资调整通知_内部.docm", True, Action.WARN, "带宏的文档（.docm）"),
        ("2026年度调薪表.XLSM", True, Action.WARN, "带宏的文档（.xlsm）"),
        ("群相册.html", True, Action.WARN, "网页文件（.html）"),
        ("孕产妇补助申请表.docx.js", True, Action.REMOVE, "伪装成 .docx 的程序文件（.js）"),
        ("中奖名单.pdf.htm", True, Action.REMOVE, "伪装成 .pdf 的网页文件（.htm）"),
        ("班级通讯录.xlsx", False, Action.NONE, ""),
        ("html入门教程.pdf", False, Action.NONE, ""),
        ("聚会照片.zip", False, Action.NONE, ""),
        ("2026寒假作业.pdf", False, Action.NONE, ""),
        ("exe文件说明.docx", False, Action.NONE, ""),
    ],
)
def test_a_file_that_is_a_program_is_flagged_whoever_sends_it(
    name: str, spam: bool, action: Action, details: str
) -> None:
    old = {"member_age": timedelta(days=900), "member_messages": 800}
    checked = result(Detector(AntispamConfig(), stateful=False), "kinds", Message(name, kind=MessageKind.FILE, **old))
    assert (checked.spam, checked.action) == (spam, action) and details in checked.details
    assert not result(Detector(AntispamConfig(), stateful=False), "kinds", Message(name, **old)).spam  # a text


def test_mentions(default: Detector) -> None:
    assert result(default, "mentions", Message("快来", mentions=8)).spam
    assert not result(default, "mentions", Message("@a @b 快来")).spam


def test_blacklist_only_with_words() -> None:
    cfg = AntispamConfig.model_validate({"blacklist": {"words": ["代开发票"]}})
    r = result(Detector(cfg, stateful=False), "blacklist", Message("专业代❤开❤发❤票"))
    assert (r.spam, r.action) == (True, Action.REMOVE)
    assert "blacklist" not in {r.name for r in Detector(AntispamConfig(), stateful=False).check(Message("x")).results}


def test_a_blacklisted_phrase_named_to_warn_against_it_is_not_acted_on() -> None:
    detector = Detector(AntispamConfig.model_validate({"blacklist": {"words": ["代开发票"]}}), stateful=False)
    assert not result(detector, "blacklist", Message("代开发票是违法的，群里别发这些，发现一次就踢")).spam
    assert not detector.check(Message("群规：严禁发刷单、代开发票，违者踢")).spam
    assert not detector.check(Message("群里那个代开发票的又来了，大家别搭理")).spam
    assert not detector.check(Message("之前有人发代开发票，大家唔好理")).spam
    # A way to reach someone beside it: the warning words do not make it one.
    assert result(detector, "blacklist", Message("别信外面的，代开发票找我 13912345678")).spam


def test_flood_counts_per_member_in_a_window() -> None:
    cfg = AntispamConfig.model_validate({"flood": {"messages": 3, "seconds": 10}})
    detector = Detector(cfg)

    def say(member: str, seconds: float) -> bool:
        msg = Message("哈哈", group_id="g1", member_id=member, at=T0 + timedelta(seconds=seconds))
        return result(detector, "flood", msg).spam

    assert [say("a", 0), say("a", 1), say("b", 2), say("a", 2)] == [False, False, False, True]
    assert not say("a", 60)


def test_wave_crosses_groups_and_members_but_spares_chains() -> None:
    windows = Windows()
    detector = Detector(AntispamConfig(), windows=windows)
    other = Detector(AntispamConfig.model_validate({"dry_run": True}), windows=windows)  # another group's config
    ad = "扫码进群领取新人福利红包，名额有限先到先得 {n} 号"

    def send(d: Detector, group: str, member: str, minute: int, text: str) -> bool:
        msg = Message(text, group_id=group, member_id=member, at=T0 + timedelta(minutes=minute))
        return result(d, "wave", msg).spam

    hook = "复制这段话打开链接领取新人红包哦 https://x.example.com/{n}"
    assert not send(detector, "g1", "m1", 0, hook.format(n=1))
    assert not send(other, "g2", "m2", 1, hook.format(n=2))
    assert send(detector, "g3", "m3", 2, hook.format(n=3))  # near-same: only the link differs
    assert not send(detector, "g1", "m1", 30, hook.format(n=4))  # the window has passed
    chain = "接龙买橙子：1. 3栋 王姐 2箱 2. 5栋 小李 1箱"
    assert not any(send(detector, "g1", f"m{i}", 0, chain) for i in range(5))  # no link or number: not a wave
    assert ad  # (documented example)


def test_classifier_is_trained_from_the_shipped_corpus() -> None:
    model = shipped_model()
    assert model.score_text("兼职刷单日结，佣金秒到，加我了解") > 0.9
    assert model.score_text("今天天气真好，出去走走吧") < 0.5
    cfg = AntispamConfig.model_validate({"classifier": {"thresholds": {"lenient": 0.9, "normal": 0.9, "strict": 0.9}}})
    detector = Detector(cfg, stateful=False, classifier=model)
    assert result(detector, "classifier", Message("兼职刷单日结，佣金秒到，加我了解")).spam
    assert "classifier" not in {r.name for r in Detector(AntispamConfig(), stateful=False).check(Message("x")).results}


class FixedScore:
    """A text model that gives every message the same score."""

    def __init__(self, p: float) -> None:
        self.p = p

    def score(self, squeezed: str, kind: str = "text", who: str = "old") -> float:
        return self.p


class PitchScore:
    """A text model that reads only a short pitch ("兼职日结…" alone) as an ad, and reads any
    longer text around it as ordinary chat."""

    def score(self, squeezed: str, kind: str = "text", who: str = "old") -> float:
        return 0.95 if "兼职日结" in squeezed and len(squeezed) < 20 else 0.1


SOLITAIRE = "#接龙 周六亲子烘焙课报名\n1. 朵朵妈 2大1小\n2. 乐乐爸 1大1小\n3. 兼职日结 宝妈在家做\n4. 小雨妈妈 1大1小"


@pytest.mark.parametrize(
    ("text", "kind", "spam"),
    [
        (SOLITAIRE, MessageKind.TEXT, True),  # the pitch is one line of a 接龙
        ("「小雨妈妈：有做兼职的吗」\n- - - - - - -\n兼职日结 宝妈在家做", MessageKind.TEXT, True),
        ("「小雨妈妈：兼职日结 宝妈在家做」\n大家别信，这是骗人的，已经踢了", MessageKind.TEXT, False),  # quoted
        ("别点！这个是假的👇\n“兼职日结 宝妈在家做”\n都是骗子", MessageKind.TEXT, False),  # quoted to warn
        ("小雨妈妈的私房烘焙小店欢迎光临\n兼职日结 宝妈在家做", MessageKind.CONTACT_CARD, False),  # name, signature
        ("兼职日结 宝妈在家做，今天的菜价又涨了，大家买菜了吗", MessageKind.TEXT, False),  # one line
    ],
)
def test_the_model_reads_each_line_of_a_longer_text_but_not_quoted_ones(
    text: str, kind: MessageKind, spam: bool
) -> None:
    detector = Detector(AntispamConfig(), stateful=False, classifier=PitchScore())
    assert result(detector, "classifier", Message(text, kind=kind)).spam is spam
    if kind is MessageKind.TEXT:  # the chat handler's fast path decides the same
        assert detector.check_plain(text, None, "g1", "m1", T0).spam is spam


def test_a_taught_normal_message_of_several_lines_is_not_read_line_by_line() -> None:
    class Taught(PitchScore):
        def score(self, squeezed: str, kind: str = "text", who: str = "old") -> float:
            return 0.0 if len(squeezed) > 20 else super().score(squeezed, kind, who)  # the whole: taught

    detector = Detector(AntispamConfig(), stateful=False, classifier=Taught())
    assert not result(detector, "classifier", Message(SOLITAIRE)).spam


def test_an_established_members_plain_link_is_read_one_strictness_more_lenient() -> None:
    between = Detector(AntispamConfig(), stateful=False, classifier=FixedScore(0.87))  # normal 0.80, lenient 0.90
    shop = "宝妈们看看这个，好用不贵 https://m.tb.cn/h.5xYzAbc"
    plain_link = result(between, "classifier", Message(shop))  # no history: an established member
    assert not plain_link.spam and "老成员的普通链接，阈值 0.9" in plain_link.details
    assert result(between, "classifier", Message("宝妈们看看这个，好用不贵，真的很不错")).spam  # no link
    assert result(between, "classifier", Message("宝妈们看看这个 https://zhuanqian.top/a")).spam  # a cheap domain
    assert result(between, "classifier", Message(shop, **NEW)).spam  # a newcomer's link
    strict = Detector(AntispamConfig(strictness="strict"), stateful=False, classifier=FixedScore(0.77))
    assert not result(strict, "classifier", Message(shop)).spam  # strict 0.75, its plain links at normal's 0.80
    assert result(strict, "classifier", Message("宝妈们看看这个，好用不贵，真的很不错")).spam


def test_an_established_members_short_text_is_read_at_a_lower_bar() -> None:
    # Few grams beside the sender's standing: "替考 私" from a member without history.
    detector = Detector(AntispamConfig(), stateful=False, classifier=FixedScore(0.72))  # short 0.70, else 0.80
    short = result(detector, "classifier", Message("替考 私"))
    assert short.spam and "老成员的短消息，阈值 0.7" in short.details
    assert detector.check_plain("替考 私", None, "g", "m", None).spam  # the hot path agrees
    assert not result(detector, "classifier", Message("周末带孩子去哪里玩比较好呢，有推荐的吗")).spam
    assert result(detector, "classifier", Message("替考 私", **NEW)).spam  # newcomers: 0.65 anyway


def test_a_greeting_alone_is_not_read_by_the_model() -> None:
    """The model learned "你好呀" as a romance scammer's opener; a newcomer greeting the
    group is not one. Greeting words inside a longer text are read as usual."""
    eager = Detector(AntispamConfig(), stateful=False, classifier=FixedScore(0.99))
    greetings = (
        "你好",
        "大家好呀！",
        "Hello 大家好",
        "新人报到",
        "早上好☀️",
        "谢谢群主",
        "新人报到，请多关照🙏",
        "哈哈",
    )
    for text in greetings:
        for message in (Message(text, **NEW), Message(text)):
            checked = result(eager, "classifier", message)
            assert not checked.spam and checked.details == "内容太短或只是问候", text
        assert eager.check_plain(text, None, "g1", "m1", T0) is CLEAN, text
    assert result(eager, "classifier", Message("你好，兼职了解一下", **NEW)).spam
    assert result(eager, "classifier", Message("你好", kind=MessageKind.IMAGE, **NEW)).spam  # a caption: read


def test_a_newcomers_captioned_image_or_video_is_read_at_a_lower_bar() -> None:
    between = Detector(AntispamConfig(), stateful=False, classifier=FixedScore(0.6))  # 0.55 < p < 0.65
    for kind in (MessageKind.IMAGE, MessageKind.VIDEO):
        checked = result(between, "classifier", Message("三个月前后对比", kind=kind, **NEW))
        assert checked.spam and "新成员的图片或视频，阈值 0.55" in checked.details
        assert not result(between, "classifier", Message("三个月前后对比", kind=kind)).spam  # an established member
    assert not result(between, "classifier", Message("三个月前后对比", **NEW)).spam  # a text: 0.65
    lenient = AntispamConfig.model_validate({"strictness": "lenient"})
    assert not result(
        Detector(lenient, stateful=False, classifier=FixedScore(0.6)),
        "classifier",
        Message("实拍", kind=MessageKind.VIDEO, **NEW),
    ).spam  # lenient: 0.70


def test_characters_spaced_out_count_unless_all_they_say_is_hello(default: Detector) -> None:
    assert result(default, "ad_content", Message("兼 职 日 结 私 我", **NEW)).spam
    assert not result(default, "ad_content", Message("新 人 报 到，请 多 关 照🙏🙏", **NEW)).spam


@pytest.mark.parametrize(
    ("text", "spam"),
    [
        ("Part time job online, work at home, pay by day, contact me now", True),
        ("Luxury replica bags, AAA quality, wholesale and retail, WhatsApp me", True),
        ("Passive income! Join our team and invite friends", True),
        ("English Corner this Friday 7:30pm, newcomers welcome, contact me if you want to come", False),
        ("Does anyone know where to buy a UK plug adapter? Good price is fine", False),
        ("I want to learn English, any free trial classes you'd recommend?", False),
    ],
)
def test_english_ads_are_scored_by_their_phrases_not_by_words_inside_others(
    default: Detector, text: str, spam: bool
) -> None:
    assert result(default, "ad_content", Message(text)).spam is spam


def test_a_link_posing_as_a_state_body_is_flagged_whoever_posts_it_and_the_model_cannot_clear_it() -> None:
    calm = Detector(AntispamConfig(), stateful=False, classifier=FixedScore(0.05))  # reads as chat
    old = {"member_age": timedelta(days=700), "member_messages": 1500}
    lure = Message("兄弟们这个司机补贴大家都领了吗", kind=MessageKind.URL, url="http://sjbt-gov.top", **old)
    verdict = calm.check(lure)
    assert verdict.spam and "冒充 gov 的网址" in result(calm, "links", lure).details
    # So is a throwaway domain: a hijacked account's lure reads as chat too.
    album = Message("同学聚会照片合集（密码见群公告）", kind=MessageKind.URL, url="https://qzone-photo.top/a", **old)
    assert "廉价域名（.top）" in result(calm, "links", album).details and calm.check(album).spam
    # A warning that quotes an address never counts, nor does an e-mail address's dotted name.
    assert not calm.check(Message("简历发我邮箱 ll.wang@bytedance.com，标题写岗位", **old)).spam
    for warning in (
        "物业声明：停车费只在物业前台缴纳，群内 tingche-jf.top 等链接与物业无关，请勿点击",
        "昨天那个 jincheng-oa.top 是仿冒的，大家的OA账号只在所内网登录",
        "刚才那个验证链接大家别点，域名是 amazon-seller-verify.net，不是亚马逊官方",
        "群友提醒：“tmall-chaoshi.cc/quan”这种领券链接是假的，券只在淘宝APP里领",
        "刚有人发的那个“yz-chsi.com.cn-verify.top”是骗子的钓鱼网站，大家别点",
    ):
        assert not result(calm, "links", Message(warning, **old)).spam, warning


@pytest.mark.parametrize(
    ("url", "inner"),
    [
        ("http://dingsheng-oa.com.cn-login.top/kpi", "dingsheng-oa.com"),
        ("http://mail.xingchen-hd.com.mailbox-up.cn", "xingchen-hd.com"),
        ("https://sf-kuaidi.cn.hk8s.top/", "sf-kuaidi.cn"),
        ("http://xxx.gov.cn.abc.top", "gov"),  # a state body's name: said as such
        ("https://www2.gov.bc.ca/gov/content/health", ""),  # gov.bc.ca is a public suffix
        ("https://www.example.com.cn/a", ""),
        ("https://s3.cn-north-1.amazonaws.com.cn/b", ""),
    ],
)
def test_a_host_wearing_another_domain_name_is_phishing_whoever_posts_it(url: str, inner: str) -> None:
    calm = Detector(AntispamConfig(), stateful=False, classifier=FixedScore(0.05))
    old = {"member_age": timedelta(days=700), "member_messages": 1500}
    checked = result(calm, "links", Message("市场部Q4绩效核对表，请各位登录填写", kind=MessageKind.URL, url=url, **old))
    assert checked.spam is bool(inner)
    if inner:
        assert f"冒充 {inner} 的网址" in checked.details


def test_verdict_takes_the_strongest_action_and_lists_every_result(default: Detector) -> None:
    verdict = default.check(Message("进来看看 https://a.example.com，加V：abc888 领福利", **NEW))
    assert verdict.spam and verdict.action is Action.REMOVE
    names = [r.name for r in verdict.results]
    assert names == ["ad_content", "contact", "links", "new_member", "kinds", "mentions"]
    out = verdict.as_json("m1")
    assert out["id"] == "m1" and out["action"] == "kick"
    assert set(out["checks"][0]) == {"name", "spam", "details"}
    assert "广告内容" in verdict.rules and "新成员" in verdict.rules


def test_ignore_switches_a_rule_off() -> None:
    cfg = AntispamConfig.model_validate({"ad_content": {"action": "ignore"}, "contact": {"action": "ignore"}})
    verdict = Detector(cfg, stateful=False).check(Message("兼职日结，加V：abc888"))
    assert not verdict.spam
    assert "ad_content" not in [r.name for r in verdict.results]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"ad_content": {"threshold": 5, "remove_at": 3}}, "remove_at must be at least threshold"),
        ({"links": {"extra_allow_domains": ["not a domain"]}}, "not a domain"),
        ({"new_member": {"triggers": ["link", "carrier pigeon"]}}, "carrier pigeon"),
        ({"warn_text": "{who}"}, "unknown placeholder"),
        ({"flood": {"action": "ban"}}, "ignore"),
        ({"surprise": 1}, "Extra inputs"),
    ],
)
def test_config_rejects_mistakes(data: dict, problem: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError, match=problem):
        AntispamConfig.model_validate(data)


def test_the_chat_handlers_fast_path_decides_like_check() -> None:
    """`check_plain` (an established member's plain text) skips building anything for quiet
    text: same decisions as `check`, the full verdict whenever something fires (a flood of
    quiet messages included), `CLEAN` otherwise."""
    cfg = AntispamConfig.model_validate({"flood": {"messages": 3, "seconds": 10}})
    fast, full = Detector(cfg, explain=False), Detector(cfg, explain=False)
    texts = ["哈哈", "收到", "今天天气真好", "优惠券", "兼职日结，有意私聊", "加我微信 bbmm2023", "ok"]
    fired = 0
    for i in range(60):
        text, member = texts[i % len(texts)], f"m{i % 4}"
        at = T0 + timedelta(seconds=i // 2)
        plain = fast.check_plain(text, None, "g1", member, at)
        verdict = full.check(Message(text, group_id="g1", member_id=member, at=at))
        if plain is CLEAN:
            assert not verdict.spam
        else:
            assert plain == verdict
            fired += verdict.spam
    assert fired > 5


@pytest.mark.parametrize(("days", "spam"), [(400, False), (None, False), (0, True)])
def test_a_plain_link_weighs_by_the_senders_standing(days: int | None, spam: bool) -> None:
    """A long-time member's news or shop link with a few promotional words is not an ad; the
    same words and link from a member of today are."""
    detector = Detector(AntispamConfig(), stateful=False)
    message = Message(
        "今天京东秒杀，限时优惠，点这里看看 https://news.example-shop.com/item/123",
        kind=MessageKind.URL,
        member_age=timedelta(days=days) if days is not None else None,
        member_messages=0 if days == 0 else None,
    )
    assert result(detector, "ad_content", message).spam is spam


def test_every_check_has_a_chinese_label_in_one_place() -> None:
    """RULE_TITLES labels every check for chat (测广告, warnings, admin notes); the ids stay
    what spam-check's JSON and the CLI print."""
    import re

    from plugins.antispam.verdict import RULE_TITLES, CheckResult

    folder = Path(__file__).resolve().parents[3] / "plugins" / "antispam"
    source = "\n".join(p.read_text(encoding="utf-8") for p in folder.glob("*.py"))
    names = set(re.findall(r'^\s+name = "(\w+)"', source, re.M)) | set(re.findall(r'CheckResult\("(\w+)"', source))
    assert {"blacklist", "ad_content", "classifier", "qr_code", "llm", "taught"} <= names
    for name in names:
        title = CheckResult(name, True, "").title
        assert name in RULE_TITLES and re.search(r"[\u4e00-\u9fff]", title), (name, title)
        assert CheckResult(name, True, "x").as_json()["name"] == name


@pytest.mark.parametrize(
    ("days", "sent", "spam"),
    [(0, 0, True), (400, 500, False), (None, None, True)],
    ids=["newcomer", "long-time member", "unknown history"],
)
def test_a_number_spelled_in_characters_is_a_disguise_unless_a_known_regular_wrote_it(
    default: Detector, days: int | None, sent: int | None, spam: bool
) -> None:
    age = timedelta(days=days) if days is not None else None
    message = Message("开锁师傅电话 一三九 零零幺二 三四五六，晚上也能来", member_age=age, member_messages=sent)
    assert result(default, "contact", message).spam is spam
    assert result(default, "ad_content", message).spam is spam


def test_the_model_cannot_clear_an_account_id_spelled_out_character_by_character() -> None:
    """Its words only wrap the id ("群里不好讲 …"), and nobody types their own id so; a neighbour's
    number typed with spaces, or an account written plainly, is still the model's to clear."""
    calm = Detector(AntispamConfig(), stateful=False, classifier=FixedScore(0.1))
    spelled = calm.check(Message("群里不好说 想了解的 wx：Ｔ Ｙ Ｔ ９ ８ ７ ６"))
    assert spelled.spam and {r.name for r in spelled.fired} == {"ad_content", "contact"}
    assert not calm.check(Message("师傅电话 1 5 8 6 2 3 3 0 4 1 7 价格还行")).spam
    assert not calm.check(Message("麻烦加下我 v：lyx_mama 孩子们周末约着玩")).spam
    # A warning quoting the scammer's spelled-out id is the model's to clear, as before.
    assert not calm.check(Message("又来了，这次换成“葳信 z a o j i a o _ 7 7”，一样的骗子，大家看到直接举报")).spam
