# Over 500 lines: one short class per check (a dozen), sharing the scoring helpers at the top.
"""The checks. Each is built from its rule's config, looks at one message (and the facts
`textforms` found in it) and returns exactly one `CheckResult`: name, spam yes/no, details.

Checks never act and never touch the database. The stateful ones (flood, wave) keep small,
bounded in-memory windows; the detector gives every check the same `Probe`.
"""

from __future__ import annotations

import re
from array import array
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from operator import itemgetter
from typing import NamedTuple, Protocol

from bot.core.events import MessageKind

from .classifier import NEW, OLD, Scorer, prepare, standing
from .config import (
    MEDIA_KINDS,
    Action,
    AdContentRule,
    BlacklistRule,
    ClassifierRule,
    ContactRule,
    FloodRule,
    KindsRule,
    LinkRule,
    MentionsRule,
    NewMemberRule,
    Strictness,
    WaveRule,
)
from .lexicon import GREETING_PIECES
from .textforms import LOUD, Features, Link, Number, Phrase
from .verdict import CheckResult


class Message(NamedTuple):
    """A message as the checks see it: the app's own type, converted once at the edge
    (from a GroupMessage, a spam-check input line or an event-log row). Immutable."""

    text: str
    kind: MessageKind = MessageKind.TEXT
    url: str | None = None
    qr: bool = False  # the adapter (or the input) says the image is a QR code
    group_id: str = ""
    member_id: str = ""
    at: datetime | None = None
    mentions: int = 0
    # None: unknown (joined before the bot knew them) - such members count as established.
    member_age: timedelta | None = None
    member_messages: int | None = None  # messages sent before this one
    normalized: str | None = None  # `normalize(text)` when the caller has it already


@dataclass(slots=True)
class Probe:
    message: Message
    features: Features
    new_member: bool
    explain: bool = True  # False: negative results may carry short details (the hot path)

    @property
    def qr(self) -> bool:
        msg = self.message
        if msg.qr:
            return True
        if msg.kind in (MessageKind.IMAGE, MessageKind.OTHER):
            squeezed = self.features.squeezed
            return any(hint in squeezed for hint in _QR_HINTS)
        return False


_QR_HINTS = ("二维码", "扫码", "扫一扫", "长按识别", "识别图中", "qr")


class Check(Protocol):
    name: str

    # What `check` returns for a quiet message (see `is_quiet`), so the detector can skip
    # the call; None for checks that must always run (they keep state, or read the text).
    # Read-only here, so a check whose `quiet` is always a CheckResult satisfies it.
    @property
    def quiet(self) -> CheckResult | None: ...

    def check(self, probe: Probe) -> CheckResult: ...

    def check_quiet(self, squeezed: str, group_id: str, member_id: str, at: datetime | None, who: str) -> CheckResult:
        """What `check` returns for a quiet message with this squeezed text, sender, time and
        sender's standing (`classifier.standing`), without a `Probe` (the chat handler's hot
        path). Checks whose `quiet` is set return it."""
        ...

    # For checks without `quiet`: whether `check_quiet` keeps state or can fire. When it
    # does neither, the hot path calls it only to list every result of a fired verdict.
    @property
    def quiet_counts(self) -> bool: ...


def is_quiet(probe: Probe) -> bool:
    """An established member's plain text with nothing any content check looks for: no
    offer or blacklisted phrase, link, number, account, figure, mention or spacing trick.
    (`Analyzer.read` answers the text half of this without building the features.)"""
    f, msg = probe.features, probe.message
    if probe.new_member or msg.kind is not MessageKind.TEXT or msg.mentions or msg.url:
        return False
    if f.links or f.numbers or f.handles or f.solicitations or f.emails or f.spaced_out or f.mentions or f.digits:
        return False
    sq = f.squeezed
    if "赚" in sq or "挣" in sq or "折" in sq or "只要" in sq or "低至" in sq or "仅需" in sq:
        return False
    return not any(p.category in LOUD for p in f.phrases)


class _Content:
    """The stock answer of a content check on a quiet message: its `quiet` result."""

    quiet: CheckResult
    quiet_counts = False

    def check_quiet(self, squeezed: str, group_id: str, member_id: str, at: datetime | None, who: str) -> CheckResult:
        return self.quiet


def _result(name: str, spam: bool, details: str, action: Action) -> CheckResult:
    return CheckResult(name, spam, details, action if spam else Action.NONE)


# --- content ------------------------------------------------------------------------------


class BlacklistCheck(_Content):
    name = "blacklist"

    def __init__(self, rule: BlacklistRule) -> None:
        self.action = Action.of(rule.action)
        self._clean = self.quiet = CheckResult(self.name, False, "无违禁词")

    def check(self, probe: Probe) -> CheckResult:
        f = probe.features
        phrases = f.phrases
        hits = [p.text for p in phrases if p.category == "blacklist"] if phrases else None
        if hits:
            listed = "违禁词：" + "、".join(dict.fromkeys(hits))
            if f.scam_warning and not reachable(f, probe.message):
                # "代开发票是违法的，群里别发这些": the phrase named to warn against it, with no
                # way to reach anyone, as a group's rules name it.
                return CheckResult(self.name, False, f"{listed}（提醒防骗且无联系方式，不处理）")
            return _result(self.name, True, listed, self.action)
        return self._clean


# Money promised per day or per task: "日入200+", "月入过万", "每天赚300", "50元/单".
_EARNINGS = re.compile(  # (the look-behind after the first character: see textforms)
    r"(?:日|天|月|周)(?<![今昨前后当本].)(?:能|可以|就能|轻松|稳定)?(?:赚|挣|入|收入)(?:过|上|近|达|至少|轻松)?"
    r"好?(?:[0-9]+|[一二三四五六七八九十百千万几两]+)(?:元|块|w|万|百|千|k|\+)"
)
_PER_UNIT = re.compile(
    r"[0-9][0-9]*(?:\.[0-9]+)?\s*(?:元|块)?\s*(?:/|每)\s*(?:天|日|单|小时|h|条|次)(?![a-z])"
    r"|[0-9][0-9]*(?:\.[0-9]+)?\s*(?:元|块)\s*(?:一|每)\s*(?:份|套|张|单|天|小时|次)"
)
_PER_TASK = re.compile(r"(?:一|每)(?:单|天|小时)(?:[0-9]+|[一二三四五六七八九十几两]+)(?:元|块)")
# A price cut: "原价199现在只要19.9", "仅需9.9", "团购价59", "低至三折".
_PRICE_CUT = re.compile(
    r"(?:原价|仅需|只需|只要|现价|低至|秒杀价|团购价|到手价|特价|优惠价|内部价)"
    r"(?:[0-9]|[一二三四五六七八九十百千几两]+(?:折|元|块))"
    r"|充[0-9]+送[0-9]+|(?:限|仅限)前?[0-9]+(?:名|位|个)|前[0-9]+名"
)
# A discount: "三折", "一折起", "8.5折" (once; "打八折" in passing stays below the bar).
_DISCOUNT = re.compile(r"(?:[0-9](?:\.[0-9])?|[一二三四五六七八九])折")
# A stake and what it pays back, the get-rich pitch in four characters and every spelling:
# "投1000返1500", "入500出900", "t2k反3k5" (t for 投, 反 for 返), "头500回800", "充一百返三百",
# "投一万拿一万五"; or told as a story, a few words between the two ("投了3000返4500", "今天放
# 一百，明天拿四百", "存十万三年变二十万", "充了五百三天提了一千二"), and then the return must be
# half as much again as the stake ("定投三年终于赚了两百" is no pitch, nor is a period read as
# the stake: "投一年了 收益 -3%"). An ad on its own; a warning quoting one is capped like any
# other. Over the corpus and the frozen split, the told form found 125 ads the four-character
# one did not, and 4 ordinary lines, each a warning quoting a pitch. With the text model on,
# whose reading (`veto_below`) decides such warnings, no verdict changed; with it off, 112 more
# ads were caught and one more ordinary line flagged.
_NUMERAL_CHARS = "一二三四五六七八九十百千万两壹贰叁肆伍陆柒捌玖拾佰仟"
_DIGITS = f"0-9{_NUMERAL_CHARS}"
_AMOUNT = rf"(?:[0-9]+(?:\.[0-9]+)?(?:k|w|千|万|百)?|[{_NUMERAL_CHARS}]+)"
_STAKE_RETURN = re.compile(
    rf"(?:投|头|(?<![a-z])t|充|存|入|放|押|本金)(?:了|资|入|值|金)?({_AMOUNT})(?![年个月天周台头张部折成倍])"
    rf"(?:元|块|u)?((?:[^{_DIGITS}]|[{_DIGITS}]{{1,2}}(?:个月|个星期|年|天|周|期))"
    rf"{{0,6}}?)(?:返|反|回|出|赚|挣|得|拿|到手|变|翻|提)(?:了|现|来|金)?({_AMOUNT})"
)
_STAKE_VERBS = frozenset("投头t充存入放押本")
_NUMERALS = {char: value for value, char in enumerate("零一二三四五六七八九")} | {"两": 2}
_NUMERALS.update({char: value for value, char in enumerate("壹贰叁肆伍陆柒捌玖", 1)})
_UNITS = {"十": 10, "拾": 10, "百": 100, "佰": 100, "千": 1000, "仟": 1000, "k": 1000, "万": 10_000, "w": 10_000}
_LEADING_FIGURE = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def amount_value(amount: str) -> float:
    """The value of an `_AMOUNT`: "1500", "3k5" read as 3k (the comparison needs the order of
    magnitude only), "两千", "三百八十万", and a last digit after a unit as spoken: "一万五"
    15,000, "一千二" 1,200."""
    number = _LEADING_FIGURE.match(amount)
    if number:
        return float(number.group()) * _UNITS.get(amount[number.end() : number.end() + 1], 1)
    total = section = digit = 0
    unit = 1
    for char in amount:
        if char in _NUMERALS:
            digit = _NUMERALS[char]
        elif char in ("万", "w"):
            total += (section + digit) * 10_000
            section = digit = 0
            unit = 10_000
        elif char in _UNITS:
            unit = _UNITS[char]
            section += (digit or 1) * unit
            digit = 0
    if digit and unit >= 100 and len(amount) > 1 and amount[-2] in _UNITS:
        digit *= unit // 10  # "一万五": the digit right after a unit is the next place down
    return total + section + digit


def stake_and_return(squeezed: str) -> str:
    """The stake-and-return pitch in a squeezed text (`_STAKE_RETURN`), or ""."""
    for found in _STAKE_RETURN.finditer(squeezed):
        if not found.group(2) or amount_value(found.group(3)) >= 1.5 * amount_value(found.group(1)) > 0:
            return found.group()
    return ""


class AdContentCheck(_Content):
    """An ad is an offer plus a way to reach the seller: offer words, calls to action and
    contact channels add up; a phrase that is an ad on its own reaches the threshold alone;
    hidden contact details are strong evidence; a message warning *about* scams is not one."""

    name = "ad_content"

    def __init__(self, rule: AdContentRule) -> None:
        self.threshold = rule.threshold
        self.remove_at = rule.remove_at
        self.action = Action.of(rule.action)
        self._nothing = self.quiet = CheckResult(self.name, False, f"得分 0（{self.threshold} 分算广告）：无推销内容")
        self._short: dict[int, CheckResult] = {}  # score -> the hot path's short negative result

    def score(self, probe: Probe) -> tuple[int, list[tuple[str, int]]]:
        """The score and its parts, (what, points) each."""
        f = probe.features
        msg = probe.message
        threshold = self.threshold
        parts: list[tuple[str, int]] = []
        strong: list[str] = []
        offers: list[Phrase] = []
        ctas: list[str] = []
        vouch = ""
        warning = False
        for p in f.phrases:  # one pass, sorted by kind
            category = p.category
            if category == "strong":
                strong.append(p.text)
                parts.append((p.text, threshold))
            elif category == "offer":
                offers.append(p)
            elif category == "cta":
                if p.text not in ctas:
                    ctas.append(p.text)
            elif category == "vouch":
                vouch = vouch or p.text
            elif category == "warning":
                warning = True
        for p in offers:
            if not strong or not any(p.text in s for s in strong):
                # "兼职" inside "兼职日结" is the same evidence, counted once
                parts.append((p.text, p.weight))
        sq = f.squeezed
        money = _EARNINGS.search(sq) if ("赚" in sq or "挣" in sq or "入" in sq) else None
        if money:
            parts.append((money.group(), 3))
        rate = _PER_UNIT.search(f.norm) if f.digits else None
        if rate is None and ("元" in sq or "块" in sq):
            rate = _PER_TASK.search(sq)
        if rate:
            parts.append((rate.group(), 2))
        price = _PRICE_CUT.search(sq) if (f.digits or "只要" in sq or "低至" in sq or "仅需" in sq) else None
        if price:
            parts.append((price.group(), 2))
        discount = _DISCOUNT.search(sq) if "折" in sq else None
        if discount:
            parts.append((discount.group(), 1))
        stake = stake_and_return(sq) if not _STAKE_VERBS.isdisjoint(sq) else ""
        if stake:
            strong.append(stake)
            parts.append((stake, threshold))
        offered = sum(map(_POINTS, parts))
        if not offered and not probe.explain and not _dodgy(f):
            # Nothing offered and nothing hidden: never an ad (see the cap below), and the
            # hot path need not say more.
            return 0, parts
        for text in ctas[:2]:
            parts.append((text, 1))

        channels: list[tuple[str, int]] = []
        if f.handles:
            # An account id spelled out in a group everyone can already reach each other in
            # is how sellers move a chat elsewhere (still capped: nothing offered, no ad).
            channels.append((f"账号 {f.handles[0].ident}", 3))
        if f.numbers:
            for n in f.numbers:
                if n.kind in ("mobile", "qq", "group", "phone"):
                    channels.append((f"号码 {n.digits}", 2))
                    break
            else:
                if any(n.kind == "landline" for n in f.numbers):
                    channels.append(("座机/400电话", 1))
        bad_links = (
            sorted((link for link in f.links if not link.allowed), key=_link_weight, reverse=True) if f.links else ()
        )
        if bad_links:
            link = bad_links[0]
            if link.plain and standing(msg.member_age, msg.member_messages) == OLD:
                # A long-time member sharing news or a shop they use: a plain link of theirs
                # is no way to reach a seller.
                parts.append((f"老成员分享的链接 {link.host}", 0))
            else:
                channels.append((f"链接 {link.host}", _link_weight(link)))
        if f.emails:
            channels.append(("邮箱", 1))
        kind = msg.kind
        if kind is MessageKind.CONTACT_CARD:
            channels.append(("名片", 2))
        elif kind is MessageKind.MINI_PROGRAM:
            channels.append(("小程序", 1))
        if kind is not MessageKind.TEXT and probe.qr:
            channels.append(("二维码", 2))
        budget = 4  # several channels say little more than one
        for text, weight in channels:
            take = min(weight, budget)
            if take > 0:
                parts.append((text, take))
                budget -= take

        hidden = _hidden(f, _known_regular(msg)) if (f.solicitations or f.handles or f.numbers or f.links) else ""
        if hidden:
            parts.append((f"隐藏写法（{hidden}）", threshold))
        elif f.spaced_out and not only_greets(f.squeezed):
            # Spacing every character out only serves to slip past filters, but a hello typed
            # so ("新 人 报 到，请 多 关 照") slips nothing past.
            parts.append(("逐字隔开", 3))
            offered += 3
        if vouch and not hidden and not strong:
            parts.append((f"推荐他人（{vouch}）", -2))
        if probe.new_member and (offered or ctas or channels):
            parts.append(("新成员", 1))
        if warning and not strong:
            # Words like 诈骗/别信 mark a warning *about* an ad, often quoting one.
            parts.append(("提醒防骗", -2))
        score = sum(map(_POINTS, parts))
        if score >= threshold and not offered and not hidden and not any(x.suspicious for x in bad_links):
            # "有需要的邻居联系我 137…" offers nothing: a call to action and a phone number
            # alone are how neighbours lend a ladder, not an ad.
            parts.append(("没有推销内容", threshold - 1 - score))
            score = threshold - 1
        if score >= threshold and warning and not reachable(f, msg):
            # "别信那些加V刷单的，都是骗子": quoting an ad to warn about it, with no way to
            # reach anyone, is not an ad.
            parts.append(("提醒防骗且无联系方式", threshold - 1 - score))
            score = threshold - 1
        if score >= threshold and not reachable(f, msg) and only_quoted(f.norm, parts):
            # A pitch quoted to mock or to ask about it ("每个群都有人发“宝妈兼职 日结”"), with
            # no way to reach anyone, even without a warning word.
            parts.append(("只是引用别人的话且无联系方式", threshold - 1 - score))
            score = threshold - 1
        return score, parts

    def check(self, probe: Probe) -> CheckResult:
        f = probe.features
        # The common case on the hot path: nothing offered in words or figures and nothing
        # hidden can never score as an ad (see `score`), so the scoring is skipped.
        if (
            not probe.explain
            and not (
                f.digits
                or "赚" in f.squeezed
                or "挣" in f.squeezed
                or "返" in f.squeezed
                or "反" in f.squeezed
                or "投" in f.squeezed
                or "折" in f.squeezed
                or "只要" in f.squeezed
                or "低至" in f.squeezed
                or "仅需" in f.squeezed
            )
            and not any(p.category in _OFFERING for p in f.phrases)
            and not _dodgy(f)
        ):
            return self._nothing
        score, parts = self.score(probe)
        spam = score >= self.threshold
        if not spam and not probe.explain:
            short = self._short.get(score)
            if short is None:
                short = self._short[score] = CheckResult(self.name, False, f"得分 {score}（{self.threshold} 分算广告）")
            return short
        action = self.action
        if spam and self.remove_at is not None and score >= self.remove_at and action > Action.NONE:
            action = Action.REMOVE
        shown = " ".join(f"{t}{w:+d}" for t, w in parts) if parts else "无广告特征"
        return _result(self.name, spam, f"得分 {score}（{self.threshold} 分算广告）：{shown}", action)


_OFFERING = frozenset(("strong", "offer"))
# What a member quotes: someone else's words, between quotation marks.
_QUOTED = re.compile(r'“[^”]{1,40}”|「[^」]{1,40}」|『[^』]{1,40}』|"[^"]{1,40}"')


def only_quoted(norm: str, parts: list[tuple[str, int]]) -> bool:
    """Whether everything the score counted is inside quotation marks: another's pitch
    repeated ("有人说“宝妈兼职一部手机就能做”，都是骗人的"), not the sender's own. A call to
    action outside the quotes ("“宝妈兼职 日结” 私我") makes the pitch the sender's. Judged on
    half the writers (A–HW) with a model trained on the other half, both ways: 7 of 2,010 false
    positives gone, no ad lost (9 when a call to action outside counted for nothing)."""
    if not ("“" in norm or "「" in norm or "『" in norm or '"' in norm):
        return False
    rest = prepare(_QUOTED.sub("，", norm))
    return not any(points > 0 and what in rest for what, points in parts)


_POINTS = itemgetter(1)  # of a (what, points) part


def _dodgy(f: Features) -> bool:
    """Anything that lets a message be an ad without offering anything in words."""
    if not (f.solicitations or f.handles or f.numbers or f.links):
        return bool(f.spaced_out)
    return bool(
        f.spaced_out
        or any(how for _, how in f.solicitations)
        or any(h.hidden for h in f.handles)
        or any(n.hidden for n in f.numbers)
        or not all(x.plain for x in f.links)
    )


def _link_weight(link: Link) -> int:
    return 3 if not link.plain else 1 if link.commerce else 2


def reachable(f: Features, msg: Message) -> bool:
    """Whether the message carries an actual way to reach someone (not just the words)."""
    return bool(
        f.handles
        or [n for n in f.numbers if n.kind != "number" or n.hidden]
        or [x for x in f.links if not x.allowed]
        or msg.kind in (MessageKind.CONTACT_CARD, MessageKind.MINI_PROGRAM)
    )


# How people with nothing to hide often type a number too (by voice input, or older members
# spelling it 一三八…): a long-time member sharing a plumber's number this way is not dodging a
# filter; a newcomer may be. Digits spaced out one by one or mixed with symbols stay evidence.
_TYPED_BY_HAND = frozenset({"用汉字写数字"})


def _known_regular(msg: Message) -> bool:
    """A member whose history we know and who is long established (unknown history counts as
    established elsewhere, but is no proof that a number spelled out is innocent)."""
    known = msg.member_age is not None or msg.member_messages is not None
    return known and standing(msg.member_age, msg.member_messages) == OLD


def _disguised(n: Number, old: bool) -> str:
    """How the number was disguised, where that counts as evidence for this sender."""
    return "" if old and n.hidden in _TYPED_BY_HAND else n.hidden


def _hidden(f: Features, old: bool) -> str:
    for text, how in f.solicitations:
        if how:
            return f"{text}: {how}"
    for h in f.handles:
        if h.hidden:
            return f"{h.ident}: {h.hidden}"
    for n in f.numbers:
        if how := _disguised(n, old):
            return f"{n.digits}: {how}"
    for link in f.links:
        if link.hidden:
            return f"{link.host}: {link.hidden}"
    return ""


class ContactCheck(_Content):
    """Solicitations to add an account or call, written to dodge filters."""

    name = "contact"

    def __init__(self, rule: ContactRule) -> None:
        self.action = Action.of(rule.action)
        self._none = self.quiet = CheckResult(self.name, False, "无")

    def check(self, probe: Probe) -> CheckResult:
        f = probe.features
        if not (f.solicitations or f.handles or f.numbers):
            return self._none
        found = [f"{text}（{how}）" for text, how in f.solicitations if how]
        found += [f"{h.ident}（{h.hidden}）" for h in f.handles if h.hidden]
        old = _known_regular(probe.message)
        found += [f"{n.digits}（{how}）" for n in f.numbers if (how := _disguised(n, old))]
        if found and f.scam_warning and not reachable(f, probe.message):
            return _result(self.name, False, "防骗提醒中的引用，没有真实联系方式", self.action)
        if found:
            return _result(self.name, True, "隐藏的联系方式：" + "；".join(found), self.action)
        plain = len(f.handles) + len(f.numbers) + len(f.solicitations)
        return _result(self.name, False, f"{plain} 个普通联系方式" if plain else "无", self.action)


class LinkCheck(_Content):
    name = "links"

    def __init__(self, rule: LinkRule) -> None:
        self.action = Action.of(rule.action)
        self.unknown = Action.of(rule.unknown_domains)
        self._none = self.quiet = CheckResult(self.name, False, "无链接")

    def check(self, probe: Probe) -> CheckResult:
        links = probe.features.links
        if not links:
            return self._none
        bad: list[str] = []
        action = Action.NONE
        for link in links:
            if link.hidden:
                bad.append(f"{link.host}（{link.hidden}）")
                action = max(action, self.action)
            elif link.suspicious and (
                probe.new_member or ((link.posing or link.cheap) and not probe.features.scam_warning)
            ):
                # A host passing for a bank or a government office, or on a throwaway domain
                # (.top, .cc, .vip …), is phishing or an ad whoever posts it (a long-time
                # member's account is what phishers hijack; members' own links to such
                # domains were 36 of 680 in the corpus, nearly all warnings quoting one),
                # unless the message warns about it.
                bad.append(f"{link.host}（{link.suspicious}）")
                action = max(action, self.action)
            elif not link.allowed and self.unknown > Action.NONE:
                bad.append(f"{link.host}（不在允许名单）")
                action = max(action, self.unknown)
        if bad and action > Action.NONE:
            return _result(self.name, True, "; ".join(bad), action)
        hosts = ", ".join(dict.fromkeys(link.host for link in links))
        return _result(self.name, False, f"链接：{hosts}", self.action)


# --- who posts what ------------------------------------------------------------------------


class NewMemberCheck(_Content):
    name = "new_member"

    def __init__(self, rule: NewMemberRule) -> None:
        self.action = Action.of(rule.action)
        self.triggers = frozenset(rule.triggers)
        self.rule = rule
        self._established = self.quiet = CheckResult(self.name, False, "老成员")
        self._fine = CheckResult(self.name, False, "新成员，内容无限制项")

    def check(self, probe: Probe) -> CheckResult:
        if not probe.new_member:
            return self._established
        msg, f = probe.message, probe.features
        found: list[str] = []
        t = self.triggers
        if "link" in t:
            found += [f"链接 {link.host}" for link in f.links if not link.allowed]
        if "contact_card" in t and msg.kind is MessageKind.CONTACT_CARD:
            found.append("名片")
        if "mini_program" in t and msg.kind is MessageKind.MINI_PROGRAM:
            found.append("小程序")
        if "file" in t and msg.kind is MessageKind.FILE:
            found.append("文件")
        if "qr_code" in t and probe.qr:
            found.append("二维码")
        elif "first_media" in t and msg.member_messages == 0 and msg.kind in MEDIA_KINDS:
            # The classic ad of a newcomer: an image or a video (usually a QR code) as the
            # very first thing they post, with nothing said but perhaps a hello. A caption that
            # says more is the text model's to read (it knows the kind and the sender's standing).
            image = msg.kind is MessageKind.IMAGE
            if not f.squeezed:
                found.append(BARE_FIRST_IMAGE if image else "第一条消息就是不带文字的视频")
            elif only_greets(f.squeezed):
                found.append(GREETING_FIRST_IMAGE if image else "第一条消息就是只打了招呼的视频")
        if "contact" in t:
            found += [f"账号 {h.ident}" for h in f.handles]
            found += [f"号码 {n.digits}" for n in f.numbers if n.kind in ("qq", "group") or n.hidden]
            found += [text for text, _ in f.solicitations]
        if found:
            return _result(self.name, True, "新成员发了" + "、".join(dict.fromkeys(found)), self.action)
        return self._fine


# What the new-member check finds in a newcomer's first image with nothing said (or a hello
# only). Its warning presumes a QR code, so the QR reader sets it aside when it read the image
# and found none (`slowchecks`).
BARE_FIRST_IMAGE = "第一条消息就是不带文字的图片"
GREETING_FIRST_IMAGE = "第一条消息就是只打了招呼的图片"
PRESUMED_QR_DETAILS = frozenset("新成员发了" + found for found in (BARE_FIRST_IMAGE, GREETING_FIRST_IMAGE))

_KIND_TITLES = {"contact_card": "名片", "mini_program": "小程序", "file": "文件"}
# Every message kind as admins read it in chat (测广告 details).
_KIND_NAMES = {
    MessageKind.TEXT: "文字",
    MessageKind.URL: "链接",
    MessageKind.IMAGE: "图片",
    MessageKind.MINI_PROGRAM: "小程序",
    MessageKind.CONTACT_CARD: "名片",
    MessageKind.FILE: "文件",
    MessageKind.VIDEO: "视频",
    MessageKind.VOICE: "语音",
    MessageKind.EMOTICON: "表情",
    MessageKind.SYSTEM: "系统消息",
    MessageKind.OTHER: "其他消息",
}
_KIND_FIELDS = {
    MessageKind.CONTACT_CARD: "contact_card",
    MessageKind.MINI_PROGRAM: "mini_program",
    MessageKind.FILE: "file",
}


# A file name ending in the extension of a file that runs code when opened, perhaps after a
# document's or photo's one: a program, a script, an Office document with macros, a web page or
# compiled help (how phishing pages and malware travel as attachments; in the corpus every
# .docm, .xlsm, .html and .js file was an ad).
_PROGRAM_FILE = re.compile(
    r"(?:\.(?P<shown>[a-z0-9]{2,5}))?\.(?P<ext>exe|scr|pif|bat|cmd|vbs|vbe|js|jse|wsf|hta|msi|apk|lnk|ps1"
    r"|docm|dotm|xlsm|xltm|pptm|ppsm|html?|mht|chm)\s*$"
)
_CODE_FILE_TITLES = {
    **dict.fromkeys(("docm", "dotm", "xlsm", "xltm", "pptm", "ppsm"), "带宏的文档"),
    **dict.fromkeys(("html", "htm", "mht"), "网页文件"),
    "chm": "帮助文件",
}
# What a program poses as when it wears a second extension.
_HARMLESS_LOOKING = frozenset(
    "pdf doc docx xls xlsx ppt pptx txt rtf wps jpg jpeg png gif bmp heic mp4 mov avi mp3 wav zip rar 7z".split()  # noqa: SIM905
)


class KindsCheck(_Content):
    name = "kinds"

    def __init__(self, rule: KindsRule) -> None:
        self.actions = {kind: Action.of(getattr(rule, field)) for kind, field in _KIND_FIELDS.items()}
        self.qr_action = Action.of(rule.qr_code)
        self.program_action = Action.of(rule.program_file)
        self.disguised_action = Action.of(rule.disguised_program)
        self._allowed: dict[MessageKind, CheckResult] = {}
        self.quiet = CheckResult(self.name, False, f"允许的消息类型（{_KIND_NAMES[MessageKind.TEXT]}）")

    @staticmethod
    def needed(rule: KindsRule) -> bool:
        return any(
            getattr(rule, f) != "ignore"
            for f in (*_KIND_FIELDS.values(), "qr_code", "program_file", "disguised_program")
        )

    def check(self, probe: Probe) -> CheckResult:
        kind = probe.message.kind
        action = self.actions.get(kind, Action.NONE)
        if action > Action.NONE:
            return _result(self.name, True, f"本群不允许发{_KIND_TITLES[_KIND_FIELDS[kind]]}", action)
        if kind is MessageKind.FILE:
            program = _PROGRAM_FILE.search(probe.message.text.lower())
            if program is not None:
                ext, shown = program.group("ext"), program.group("shown")
                title = _CODE_FILE_TITLES.get(ext, "程序文件")
                if shown in _HARMLESS_LOOKING and self.disguised_action > Action.NONE:
                    return _result(self.name, True, f"伪装成 .{shown} 的{title}（.{ext}）", self.disguised_action)
                if self.program_action > Action.NONE:
                    return _result(self.name, True, f"{title}（.{ext}）", self.program_action)
        if self.qr_action > Action.NONE and probe.qr:
            return _result(self.name, True, "本群不允许发二维码", self.qr_action)
        allowed = self._allowed.get(kind)
        if allowed is None:  # one result per kind: this runs on every message that is not quiet
            allowed = self._allowed[kind] = _result(
                self.name, False, f"允许的消息类型（{_KIND_NAMES.get(kind, kind.value)}）", Action.NONE
            )
        return allowed


class MentionsCheck(_Content):
    name = "mentions"

    def __init__(self, rule: MentionsRule) -> None:
        self.action = Action.of(rule.action)
        self.max = rule.max
        self._none = self.quiet = CheckResult(self.name, False, "@了 0 人")
        self._fewer: dict[int, CheckResult] = {}  # count -> its negative result, made once

    def check(self, probe: Probe) -> CheckResult:
        count = max(probe.message.mentions, probe.features.mentions)
        if not count:
            return self._none
        if count >= self.max:
            return _result(self.name, True, f"@了 {count} 人（上限 {self.max}）", self.action)
        fewer = self._fewer.get(count)
        if fewer is None:
            fewer = self._fewer[count] = _result(self.name, False, f"@了 {count} 人", self.action)
        return fewer


# --- over time (in memory, bounded) ---------------------------------------------------------


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


class FloodWindows:
    """Recent message times per (group, member): the last few of each sender, as whole
    microseconds since the epoch in a small `array` (some 150 bytes a sender, where a list
    of the events' datetimes kept about 600 alive), bounded: past `cap` senders, the oldest tenth is
    dropped (their windows are long over by then in any real chat: 20,000 senders hold every
    sender of the last 30 s at over 600 messages a second)."""

    def __init__(self, cap: int = 20_000) -> None:
        self._times: dict[tuple[str, str], array[int]] = {}
        self._cap = cap
        self.get = self._times.get  # a sender's window, or None (one lookup on the hot path)

    def open(self, key: tuple[str, str]) -> array[int]:
        """A new sender's window."""
        times = array("q")
        self._times[key] = times
        if len(self._times) > self._cap:
            for old in list(islice(self._times, self._cap // 10)):
                del self._times[old]
        return times


class FloodCheck:
    name = "flood"
    quiet = None  # keeps count of every message
    quiet_counts = True

    def __init__(self, rule: FloodRule, windows: FloodWindows) -> None:
        self.action = Action.of(rule.action)
        self.messages = rule.messages
        self.span = timedelta(seconds=rule.seconds)
        self.span_us = self.span // _US
        self.windows = windows
        self._unknown = CheckResult(self.name, False, "无发送者或时间")
        self._normal = CheckResult(self.name, False, "发言频率正常")

    def check(self, probe: Probe) -> CheckResult:
        msg = probe.message
        return self.check_quiet("", msg.group_id, msg.member_id, msg.at, OLD)

    def check_quiet(self, squeezed: str, group_id: str, member_id: str, at: datetime | None, who: str) -> CheckResult:
        """Counts the message whatever it says (the text is not read)."""
        if at is None or not member_id:
            return self._unknown
        keep = self.messages
        times = self.windows.get((group_id, member_id))
        if times is None:
            times = self.windows.open((group_id, member_id))
        now = (at - _EPOCH) // _US
        times.append(now)
        if len(times) > keep:
            del times[: len(times) - keep]  # the last `keep` times, oldest first
        if len(times) >= keep and now - times[0] <= self.span_us:
            secs = (now - times[0]) / 1e6
            return _result(self.name, True, f"{secs:.0f} 秒内 {len(times)} 条消息", self.action)
        return self._normal


_VARIABLE = re.compile(r"[0-9a-z][0-9a-z]*")


class _Skeleton:
    """Senders of one text skeleton within the window: a queue plus distinct counts, so
    each new copy costs O(1) however big the wave."""

    __slots__ = ("entries", "groups", "members")

    def __init__(self) -> None:
        self.entries: deque[tuple[datetime, str, str]] = deque()
        self.members: dict[str, int] = {}
        self.groups: dict[str, int] = {}

    def add(self, at: datetime, group: str, member: str, span: timedelta, keep: int) -> None:
        entries, members, groups = self.entries, self.members, self.groups
        while entries and (at - entries[0][0] > span or len(entries) >= keep):
            _, old_group, old_member = entries.popleft()
            members[old_member] -= 1
            if not members[old_member]:
                del members[old_member]
            groups[old_group] -= 1
            if not groups[old_group]:
                del groups[old_group]
        entries.append((at, group, member))
        members[member] = members.get(member, 0) + 1
        groups[group] = groups.get(group, 0) + 1


class WaveWindows:
    """Who sent which text skeleton recently, across every group the bot manages (bounded
    like `FloodWindows`)."""

    KEEP = 500  # copies remembered per skeleton: plenty to count a wave

    def __init__(self, cap: int = 20_000) -> None:
        self._seen: dict[str, _Skeleton] = {}
        self._cap = cap

    def add(self, key: str, at: datetime, group: str, member: str, span: timedelta) -> tuple[int, int]:
        """Record one copy; (distinct members, distinct groups) within the window."""
        skeleton = self._seen.get(key)
        if skeleton is None:
            skeleton = self._seen[key] = _Skeleton()
            if len(self._seen) > self._cap:
                for old in list(islice(self._seen, self._cap // 10)):
                    del self._seen[old]
        skeleton.add(at, group, member, span, self.KEEP)
        return len(skeleton.members), len(skeleton.groups)


class WaveCheck:
    """The same text (numbers, ids and links aside) from several members or groups."""

    name = "wave"
    quiet = None  # a wave of plain texts still needs its hook checked

    def __init__(self, rule: WaveRule, windows: WaveWindows) -> None:
        self.action = Action.of(rule.action)
        self.rule = rule
        self.quiet_counts = not rule.require_hook  # else a quiet text (no hook) is never counted
        self.span = timedelta(minutes=rule.minutes)
        self.windows = windows
        self._unknown = CheckResult(self.name, False, "无发送者或时间")
        self._short = CheckResult(self.name, False, "内容太短，不比较")
        self._no_hook = CheckResult(self.name, False, "没有链接、号码、账号或名片")

    def check(self, probe: Probe) -> CheckResult:
        msg, f = probe.message, probe.features
        if msg.at is None or not msg.member_id:
            return self._unknown
        if len(f.squeezed) < self.rule.min_chars:
            return self._short
        if self.rule.require_hook and not _has_hook(probe):
            return self._no_hook
        return self._copy(f.squeezed, msg.group_id, msg.member_id, msg.at)

    def check_quiet(self, squeezed: str, group_id: str, member_id: str, at: datetime | None, who: str) -> CheckResult:
        if at is None or not member_id:
            return self._unknown
        if len(squeezed) < self.rule.min_chars:
            return self._short
        if self.rule.require_hook:
            return self._no_hook  # a quiet text carries no link, number or account, and is text
        return self._copy(squeezed, group_id, member_id, at)

    def _copy(self, squeezed: str, group_id: str, member_id: str, at: datetime) -> CheckResult:
        """Record one copy of the text's skeleton and judge the wave so far."""
        skeleton = _VARIABLE.sub("#", squeezed)
        if len(skeleton) - skeleton.count("#") < self.rule.min_chars:
            return self._short
        members, groups = self.windows.add(skeleton[:120], at, group_id, member_id, self.span)
        if members >= self.rule.members or groups >= self.rule.groups:
            return _result(
                self.name, True, f"{self.rule.minutes:g} 分钟内 {members} 人在 {groups} 个群发了相同内容", self.action
            )
        return _result(self.name, False, f"{members} 人发过", self.action)


def _has_hook(probe: Probe) -> bool:
    f = probe.features
    if f.numbers or f.handles or f.solicitations:
        return True
    if f.links and any(not link.allowed for link in f.links):
        return True
    kind = probe.message.kind
    return kind is not MessageKind.TEXT and (kind in (MessageKind.CONTACT_CARD, MessageKind.MINI_PROGRAM) or probe.qr)


# A voice message or sticker is read when the platform gives it text (a transcript, a caption);
# over WeChat it has none, and then there is nothing to read.
_UNREAD = frozenset((MessageKind.SYSTEM,))
LINE_MIN_CHARS = 4  # squeezed characters a line of a longer text needs to be read on its own
_QUOTE_MARKS = {"「": "」", "『": "』", "“": "”", '"': '"', "‘": "’", "'": "'"}  # opening: closing
_TEXT = MessageKind.TEXT


def model_reads(kind: str, squeezed: str, min_chars: int) -> bool:
    """Whether the text model scores a message (the check, and `evaluate`'s figures): not when
    there is nothing to read, no text at all (a bare image or voice message says nothing about
    itself; the new-member rules and the QR check look at those), a system message, or a very
    short plain text.
    `kind` is a `MessageKind` or its value."""
    return (
        bool(squeezed) and kind not in _UNREAD and (kind != MessageKind.TEXT or reads_plain_text(squeezed, min_chars))
    )


def reads_plain_text(squeezed: str, min_chars: int) -> bool:
    """Whether the model reads a plain text: not one too short, nor one that only greets."""
    return len(squeezed) >= min_chars and not only_greets(squeezed)


_GREETING = re.compile("(?:{})+".format("|".join(map(re.escape, sorted(GREETING_PIECES, key=len, reverse=True)))))
# The pieces' characters: a text with any other is no greeting, told by one C-level set test
# (this runs on every plain text; the pattern alone took some 0.5 µs a message).
_GREETING_CHARS = frozenset("".join(GREETING_PIECES))


def says_nothing(squeezed: str) -> bool:
    """Nothing typed, or only a hello: a caption that says nothing of what an image is for."""
    return not squeezed or only_greets(squeezed)


def only_greets(squeezed: str) -> bool:
    """Whether a squeezed text is made only of greetings and thanks (`GREETING_PIECES`)."""
    return _GREETING_CHARS.issuperset(squeezed) and _GREETING.fullmatch(squeezed) is not None


class ClassifierCheck:
    name = "classifier"
    quiet = None  # reads the text itself
    quiet_counts = True

    def __init__(self, rule: ClassifierRule, model: Scorer, strictness: Strictness) -> None:
        self.action = Action.of(rule.action)
        self.thresholds = rule.by_standing(strictness)
        # Each standing's (threshold, its words in the details): a float's str() costs more
        # than the rest of a result, and the thresholds never change.
        self._bars = {who: (t, f"（阈值 {t}）") for who, t in self.thresholds.items()}
        media = rule.threshold_for(strictness, NEW, MessageKind.IMAGE)
        self._newcomer_media_bar = (media, f"（新成员的图片或视频，阈值 {media}）")
        bar = rule.plain_link_bar(strictness)
        self._plain_link_bar = (bar, f"（老成员的普通链接，阈值 {bar}）")
        short = rule.threshold_for(strictness, OLD, MessageKind.TEXT, size=0)  # any length under short_chars
        self._short_bar = (short, f"（老成员的短消息，阈值 {short}）")
        self.short_chars = rule.short_chars
        self.min_chars = rule.min_chars
        self.model = model
        self._short = _result(self.name, False, "内容太短或只是问候", self.action)

    def check(self, probe: Probe) -> CheckResult:
        msg = probe.message
        squeezed = probe.features.squeezed
        if not model_reads(msg.kind, squeezed, self.min_chars):
            return self._short
        who = standing(msg.member_age, msg.member_messages)
        kind = msg.kind.value
        # The whole text last: a `ScoreMemo` keeps the last score it gave, the message's.
        # Only a typed text's lines are the sender's own sentences: a card's are its name and
        # signature, a mini-program's its title and description.
        line = self._likeliest_line(msg.text, kind, who) if msg.kind is _TEXT and "\n" in msg.text else 0.0
        p = self.model.score(squeezed, kind, who)
        if p and line > p:  # (0 is a taught normal message: none of its lines counts either)
            p = line
        links = probe.features.links
        if who == OLD and links and all(link.plain for link in links):
            return self._judge_at(p, self._plain_link_bar)
        if who == NEW and msg.kind in MEDIA_KINDS:
            return self._judge_at(p, self._newcomer_media_bar)
        return self._judge(p, who, squeezed)

    def _likeliest_line(self, text: str, kind: str, who: str) -> float:
        """The highest score of the text's own lines, read one by one. A pitch slipped into a
        接龙, after a greeting or under a quoted question is one line among honest ones, and
        the whole text's score dilutes it (the model weighs every gram by 1/sqrt(count)). A
        quoted line (「…」, the message replied to, or “…”, a scam quoted to warn about it) is
        not the sender's words and is skipped, as are lines too short to say anything."""
        best = 0.0
        for line in text.split("\n"):
            line = line.strip()
            if line[:1] in _QUOTE_MARKS and line[-1:] == _QUOTE_MARKS[line[0]]:
                continue
            squeezed = prepare(line)
            if len(squeezed) >= LINE_MIN_CHARS:
                best = max(best, self.model.score(squeezed, kind, who))
        return best

    def check_quiet(self, squeezed: str, group_id: str, member_id: str, at: datetime | None, who: str) -> CheckResult:
        """A plain text of one line (the detector gives texts of several lines a `Probe`, and
        `check` reads their lines): reads the squeezed text and the sender's standing only."""
        return self.judged(self.quiet_score(squeezed, who), who, squeezed)

    # `check_quiet` in steps, for the detector's hot path: the score, whether it fires, and
    # the result only when some check fired.
    def quiet_score(self, squeezed: str, who: str) -> float | None:
        """The model's score of a plain text; None when it is too short to be read."""
        if not reads_plain_text(squeezed, self.min_chars):
            return None
        return self.model.score(squeezed, "text", who)

    def fires(self, p: float | None, who: str, squeezed: str) -> bool:
        return p is not None and p >= self._bar(who, squeezed)[0]

    def judged(self, p: float | None, who: str, squeezed: str) -> CheckResult:
        return self._short if p is None else self._judge(p, who, squeezed)

    def _judge(self, p: float, who: str, squeezed: str) -> CheckResult:
        return self._judge_at(p, self._bar(who, squeezed))

    def _bar(self, who: str, squeezed: str) -> tuple[float, str]:
        """The threshold and its words: by the sender's standing, lower for an established
        member's short text (`ClassifierRule.short_thresholds`)."""
        if who == OLD and len(squeezed) < self.short_chars:
            return self._short_bar
        return self._bars[who]

    def _judge_at(self, p: float, bar: tuple[float, str]) -> CheckResult:
        threshold, said = bar
        spam = p >= threshold
        return CheckResult(self.name, spam, f"广告概率 {p:.3f}{said}", self.action if spam else Action.NONE, p)
