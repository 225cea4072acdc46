"""What `textforms` finds in a message: obfuscated accounts, numbers and links, table-driven."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.core.text import normalize
from plugins.antispam import lexicon
from plugins.antispam.checks import Message, Probe, is_quiet
from plugins.antispam.textforms import Analyzer, deep_normalize, squeeze

DATA = Path(__file__).resolve().parents[3] / "tests" / "data"


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer(
        strong=lexicon.STRONG,
        offer=lexicon.OFFER,
        cta=lexicon.CALL_TO_ACTION,
        warning=lexicon.SCAM_WARNING,
        blacklist=["办证刻章"],
        allowed_domains=lexicon.ALLOWED_DOMAINS,
    )


@pytest.mark.parametrize(
    ("raw", "squeezed"),
    [
        ("加 ❤ 微 ❤ 信", "加微信"),
        ("ＶＸ：ＡＢＣ１２３", "vxabc123"),  # full-width
        ("兼。職，日-結", "兼职日结"),  # traditional characters, punctuation between
        ("ⅴx ❶❷❸", "vx123"),  # roman numeral five, dingbat digits
        ("Vх", "vx"),  # Cyrillic х
        ("1️⃣3️⃣8️⃣", "138"),  # keycap digits
        # From maintained data (charmaps): OpenCC's traditional forms, Unicode's confusables.
        ("穩賺不賠，資金盤內測", "稳赚不赔资金盘内测"),
        ("後臺諮詢", "后台咨询"),
        ("加ᏙＸ", "加vx"),  # Cherokee Ꮩ
        ("ᴡx号", "wx号"),  # small capital W
    ],
)
def test_squeezed_form(raw: str, squeezed: str) -> None:
    assert squeeze(deep_normalize(raw)) == squeezed


def test_chinese_text_is_not_read_as_look_alike_letters() -> None:
    assert deep_normalize("三〇八，一口价") == "三〇八,一口价"


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("➕V了解", True),
        ("加薇❤信了解", True),
        ("加vx领福利", True),
        ("加威信详聊", True),
        ("+q咨询", True),
        ("伽微信", True),
        ("加我蔚鑫详聊", True),  # a homophone no list names: read by its sound
        ("有意的加寇寇", True),
        ("加我微信吧，方便发照片", False),
        ("加群的时候记得改备注", False),
    ],
)
def test_solicitations(analyzer: Analyzer, text: str, hidden: bool) -> None:
    found = analyzer.analyze(text).solicitations
    if "加群" in text:
        assert not found
        return
    assert found, text
    assert bool(found[0][1]) is hidden


@pytest.mark.parametrize(
    ("text", "account", "ident", "hidden"),
    [
        ("加V：mama6688", "wechat", "mama6688", True),
        ("微信 bbmm2023", "wechat", "bbmm2023", False),
        ("微❤信 qiming888", "wechat", "qiming888", True),
        ("微 信：paobu_dk", "wechat", "paobu_dk", True),
        ("V信：aozhou_milk", "wechat", "aozhou_milk", True),
        ("wx:qinzi_tour", "wechat", "qinzi_tour", True),
        ("加我QQ 2837465910", "qq", "2837465910", False),
        ("扣扣：3 5 6 7 8 9 1 2 3", "qq", "356789123", True),
        ("tg: @data_sell", "telegram", "@data_sell", False),
        ("Ｖ：ＣＺ８８８８８", "wechat", "cz88888", True),
        ("葳信：sunni_869", "wechat", "sunni_869", True),
        ("蔚 鑫：d i a n d i a n 0 7 1 6", "wechat", "diandian0716", True),
        ("v鑫 huahua2026", "wechat", "huahua2026", True),
        ("叩叩 38475920", "qq", "38475920", True),
        ("危❤：lx883399", "wechat", "lx883399", True),  # a heart for 心 (xin) after a wei
        ("V❤X：a1b2c3d4e5 要的来", "wechat", "a1b2c3d4e5", True),  # vx with a heart inside
        # An id spelled out after a colon is an account, whatever the word before it.
        ("有意的老板联系 ❤威：s h u a n g l a n g 0 0 7", "other", "shuanglang007", True),
        ("我给大家留个号：y·o·u·x·i·7·7·8", "other", "youxi778", True),
    ],
)
def test_handles(analyzer: Analyzer, text: str, account: str, ident: str, hidden: bool) -> None:
    handles = analyzer.analyze(text).handles
    assert handles, text
    assert (handles[0].account, handles[0].ident, bool(handles[0].hidden)) == (account, ident, hidden)


@pytest.mark.parametrize(
    "text",
    [
        "python v3.12 发布了",
        "我vx发你了",
        "加vip会员看剧",
        "UID 123456789",
        "成为新人的第一天 day1",
        "维新变法 100 周年",
        "密码：a b c 1",
    ],
)
def test_not_handles(analyzer: Analyzer, text: str) -> None:
    assert analyzer.analyze(text).handles == ()


@pytest.mark.parametrize(
    ("text", "digits", "kind", "how"),
    [
        ("电话 13857161234", "13857161234", "mobile", ""),
        ("电话 138 1234 5678", "13812345678", "mobile", ""),
        ("185-6789-0123", "18567890123", "mobile", ""),
        ("咨询 一三九 二八七六 五四三二", "13928765432", "mobile", "用汉字写数字"),
        ("壹叁捌 陆陆陆陆 捌捌捌捌", "13866668888", "mobile", "用汉字写数字"),
        ("电话 1 3 9 0 5 7 1 2 3 4 5", "13905712345", "mobile", "数字逐个隔开"),
        ("1️⃣3️⃣8️⃣0️⃣0️⃣1️⃣3️⃣8️⃣0️⃣0️⃣0️⃣", "13800138000", "mobile", "表情符号数字"),
        ("☎️ 1５８-２２２２-３３３３", "15822223333", "mobile", "全角数字"),
        ("1❤3❤8❤0❤0❤0❤0❤1❤1❤1❤1", "13800001111", "mobile", "数字间插符号"),
        ("总机 0571-87061007", "057187061007", "landline", ""),
        ("群号：826354917", "826354917", "group", ""),
        ("鹅号 三四七八八二一零九", "347882109", "qq", "用汉字写数字"),
        ("VX同步 丨 1 3 5 丨 0 9 2 2 丨 7 7 1 4", "13509227714", "mobile", "数字逐个隔开"),
    ],
)
def test_numbers(analyzer: Analyzer, text: str, digits: str, kind: str, how: str) -> None:
    numbers = analyzer.analyze(text).numbers
    assert numbers, text
    assert (numbers[0].digits, numbers[0].kind, numbers[0].hidden) == (digits, kind, how)


@pytest.mark.parametrize(
    "text",
    [
        "教宝宝数数：一二三四五六七八九十",  # a counting rhyme is not a phone number
        "快递单号 YT7512345678901",
        "2024-12-01 08:00 开会",
        "腾讯会议号：123 456 789",
        "原价2999现价999",
    ],
)
def test_not_numbers(analyzer: Analyzer, text: str) -> None:
    assert analyzer.analyze(text).numbers == ()


@pytest.mark.parametrize(
    ("text", "host", "allowed", "hidden", "suspicious"),
    [
        ("https://github.com/moby/moby/issues/1", "github.com", True, False, ""),
        ("看 https://www.bilibili.com/video/BV1xx", "www.bilibili.com", True, False, ""),
        ("腾讯文档 https://docs.qq.com/doc/DZm", "docs.qq.com", True, False, ""),
        ("https://zhuanlan.zhihu.com/p/1", "zhuanlan.zhihu.com", True, False, ""),
        ("www点yunma点shop", "www.yunma.shop", False, True, "廉价域名（.shop）"),
        ("pan点baidu点com/s/1abc", "pan.baidu.com", True, True, ""),
        ("www . zhuanqian-app . com", "www.zhuanqian-app.com", False, True, ""),
        ("h t t p : / / q p 8 8 8 . c c", "qp888.cc", False, True, "廉价域名（.cc）"),
        ("ｗｗｗ．ｓｅｏ－ｐａｉｍｉｎｇ．ｃｏｍ", "www.seo-paiming.com", False, True, ""),
        ("链接：t.cn/A6aBcDeF", "t.cn", False, False, "短链接"),
        ("abc-shop.com/x 看看", "abc-shop.com", False, False, ""),
        ("duzhe点cn/invite", "duzhe.cn", False, True, ""),
        ("校服尺码 https://ks.wjx.top/vm/YkT3Qx2.aspx", "ks.wjx.top", True, False, ""),  # 问卷星
    ],
)
def test_links(analyzer: Analyzer, text: str, host: str, allowed: bool, hidden: bool, suspicious: str) -> None:
    links = analyzer.analyze(text).links
    assert links, text
    link = links[0]
    assert (link.host, link.allowed, bool(link.hidden), link.suspicious) == (host, allowed, hidden, suspicious)


@pytest.mark.parametrize(
    "text",
    [
        "1. 乐乐妈 大人1小孩1\n2. 朵朵妈",
        "ok. me too",
        "路由器后台是 192.168.1.1",
        "邮箱 teacher_li@163.com",
        "简历发 ll.wang@bytedance.com",  # a dotted name before "@" is no .wang site
        "Node.js 升级到 20",
        "python 3.12",
    ],
)
def test_not_links(analyzer: Analyzer, text: str) -> None:
    assert analyzer.analyze(text).links == ()


@pytest.mark.parametrize(
    ("host", "posing"),
    [
        ("sjbt-gov.top", "gov"),  # a state body's name on a throwaway domain
        ("sellercentral-amazon-verify.com", "amazon"),
        ("amazon.verify-login.com", "amazon"),  # the name as a subdomain of another domain
        ("icbc95588.com", "icbc"),  # words split at letters and digits too
        ("12306-cn.com", "12306"),
        ("qq-login.xyz", "qq"),
        ("sellercentral.amazon.com", ""),  # the name's own domain
        ("amazon.co.jp", ""),  # under a country's second level
        ("yz.chsi.com.cn", ""),
        ("beijing.gov.cn", ""),  # gov in the public suffix
        ("www2.gov.bc.ca", ""),  # gov followed by region codes only
        ("mp.weixin.qq.com", ""),  # under one of the name's other real domains
        ("steam-edu.cn", ""),  # not a name phishers borrow here
    ],
)
def test_a_host_borrowing_a_banks_or_a_state_bodys_name_poses_as_it(analyzer: Analyzer, host: str, posing: str) -> None:
    link = analyzer.analyze(f"看看 http://{host}/a").links[0]
    assert link.posing == posing
    assert (link.suspicious == f"冒充 {posing} 的网址") if posing else not link.suspicious.startswith("冒充")


def test_url_field_is_a_link(analyzer: Analyzer) -> None:
    links = analyzer.analyze("免费看小说", url="http://read-free.xyz/book").links
    assert [(x.host, x.suspicious) for x in links] == [("read-free.xyz", "廉价域名（.xyz）")]


def test_phrases_match_across_separators_and_blacklist_in_the_same_pass(analyzer: Analyzer) -> None:
    f = analyzer.analyze("💰 兼 💰 职 💰 日 💰 结 💰 私 💰 聊 💰，另外办❤证❤刻❤章")
    assert {p.text for p in f.of("strong")} >= {"兼职日结"}
    assert [p.text for p in f.of("blacklist")] == ["办证刻章"]
    assert f.spaced_out


def test_mentions_are_counted(analyzer: Analyzer) -> None:
    assert analyzer.analyze("@a @b\u2005@c 看这里").mentions == 3


# `read` decides most chat before any features are built; its answer must be exactly what
# `analyze` and `is_quiet` would say. Edge cases of every test it makes, then the corpora.
READ_CASES = [
    "",
    "   ",
    "😂😂",
    "大家早上好",
    "收到，谢谢群主！",
    "ok",
    "OK。好的",
    "hello 微信",
    "app下载慢",
    "abc.com 看看",
    "ok 点 com",
    "加油加油",
    "加我微信",
    "加v",
    "+1",
    "一二三四五六",
    "三五个人一起去",
    "@张三 你好",
    "＠所有人 开会",
    "只要998",
    "低至一折",
    "仅需",
    "赚钱了",
    "打折了",
    "宝 妈 兼 职 日 结",
    "哈 哈 哈",
    "賺錢",
    "ＶＸ",
    "優惠券",
    "１２３",
    "红包",
    "优惠券领取",
    "代开发票",
    "办证刻章",
    "dot",
    "别信，都是骗子",
    "谢谢推荐",
    "扫码",
    "兼职日结",
    "ⅴx ❶❷❸",
    "Vх",
    "1️⃣3️⃣8️⃣",
    "周末去哪玩？",
    "我家娃上次也这样，三四天就好了",
    "qq",
    "tg群",
    "www",
    "q我",
    "邮箱a@b.cn",
    "加我蔚鑫",
    "成为新人的第一天",
    "口口声声说爱你",
    "老板：x i a o m e i",
    "房号：3 0 2",
]


def test_read_tells_quiet_text_exactly_as_the_features_do(analyzer: Analyzer) -> None:
    corpus = [
        json.loads(line)["text"]
        for name in ("spam_corpus.jsonl", "spam_corpus_heldout.jsonl")
        for line in (DATA / name).read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    quiet = loud = 0
    for text in READ_CASES + corpus:
        for normalized in (None, normalize(text)):
            squeezed, features = analyzer.read(text, normalized)
            full = analyzer.analyze(text, None, normalized)
            assert squeezed == full.squeezed, text
            if features is None:
                assert is_quiet(Probe(Message(text), full, new_member=False)), text
                quiet += 1
            else:
                assert features == full, text
                loud += 1
    assert quiet > 100 and loud > 100  # both answers are exercised


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("有需要联系 +86 138 1234 5678", "mobile"),
        ("电话0086-139-8765-4321", "mobile"),
        ("8613812345678 随时打", "mobile"),
        ("一三八 一二三四 五六七八", "mobile"),
        ("热线 021-12345678", "landline"),
    ],
)
def test_phone_numbers_in_any_spelling(analyzer: Analyzer, text: str, kind: str) -> None:
    numbers = analyzer.analyze(text).numbers
    assert numbers and numbers[0].kind == kind, numbers


@pytest.mark.parametrize("text", ["订单号 2026120112345678", "价格 12345678 元", "快递单号 SF1234567890123"])
def test_figures_are_not_phone_numbers(analyzer: Analyzer, text: str) -> None:
    assert not analyzer.analyze(text).numbers


def test_the_homophones_of_wechat_and_qq_are_pypinyins_readings() -> None:
    """`lexicon.WEI_SOUND`, `XIN_SOUND` and `KOU_SOUND` are copies of pypinyin's data: every
    character of the basic CJK block whose main reading is that syllable."""
    pypinyin = pytest.importorskip("pypinyin")
    from pypinyin.constants import PINYIN_DICT

    from plugins.antispam import lexicon

    def read_as(syllable: str) -> str:
        return "".join(
            chr(code)
            for code in range(0x4E00, 0xA000)
            if code in PINYIN_DICT and pypinyin.lazy_pinyin(chr(code), style=pypinyin.Style.NORMAL)[0] == syllable
        )

    for syllable, copy in (("wei", lexicon.WEI_SOUND), ("xin", lexicon.XIN_SOUND), ("kou", lexicon.KOU_SOUND)):
        assert copy == read_as(syllable), f"{syllable}: copy {read_as(syllable)!r} into lexicon"
