# Over 500 lines: one pass that reads every form and fact of a message; its steps share the compiled tables.
"""Read a message once, the way a spam filter has to: every form the checks look at, and the
facts they share (phrases, links, numbers, account handles, obfuscation), in one pass.

Forms of the text:

- ``norm``: the core matching form (`bot.core.text.normalize`: NFKC so full-width letters and
  digits become ASCII, case-folded, invisible characters removed) with look-alike letters
  (Cyrillic "а", Greek "ν"), enclosed digits (❶, ➀) and traditional characters common in ads
  (賺, 職, 號) mapped to their plain forms;
- ``squeezed``: ``norm`` with everything that is not a letter, a digit or a CJK character
  removed, so "加 ❤ 微 ❤ 信" reads "加微信" and "兼。职" reads "兼职". Phrases are matched here,
  all of them in one Aho-Corasick pass;
- a link form in which "点com", "。com", "(.)", "dot" and spaces inside an address become
  plain dots, so hidden addresses are found and marked as hidden.

Obfuscation is itself evidence: ordinary members write "加我微信" and "138 1234 5678", not
"➕薇❤信" or "一三八一二三四五六七八".
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import ahocorasick
import phonenumbers

from bot.core.text import normalize

from . import charmaps, lexicon

# The patterns searched on every message start with a character class or alternatives that
# each start with a plain character ("[ab][ab]*", not "[ab]+"; "x|y|dot", not "[xy]|dot";
# look-behinds after the first character): then `re` skips to the places where a match can
# start instead of trying every position, several times faster on chat-length text.

# --- character maps ------------------------------------------------------------------------

_HOMOGLYPHS = {
    # Cyrillic and Greek letters that look Latin
    "а": "a",
    "е": "e",
    "о": "o",
    "р": "p",
    "с": "c",
    "х": "x",
    "у": "y",
    "к": "k",
    "м": "m",
    "т": "t",
    "і": "i",
    "ј": "j",
    "ѕ": "s",
    "ԁ": "d",
    "ɡ": "g",
    "ν": "v",
    "ο": "o",
    "α": "a",
    "ι": "i",
    "κ": "k",
    "τ": "t",
    "υ": "u",
    "ρ": "p",
    "χ": "x",
    "ѵ": "v",
    "ᴠ": "v",
    "ⅴ": "v",
    "ｖ": "v",
    # plus signs used for 加
    "➕": "+",
    "✚": "+",
    "✙": "+",
    "＋": "+",
    # the satellite emoji reads 卫星 (wèixīng), a homophone of 微信; the penguin is QQ's mascot
    "🛰": "卫星",
    "🐧": "企鹅",
    "丨": "|",  # a CJK stroke, in chat only ever a bar between digits or words ("135丨0922")
}
# Enclosed and dingbat digits NFKC leaves alone.
for _base, _start in ((1, 0x2776), (1, 0x2780), (1, 0x278A), (1, 0x24F5)):
    for _i in range(10):
        _HOMOGLYPHS[chr(_start + _i)] = str((_base + _i) % 10)
_HOMOGLYPHS["⓿"] = "0"
_HOMOGLYPHS["🄋"] = "0"

# Look-alike letters (Unicode's confusables) and traditional characters (OpenCC), from
# maintained data (`charmaps`); the hand-written entries above win where both speak.
_MAP = {c: v for c, v in _HOMOGLYPHS.items() if c != v}
for _char, _plain in (*charmaps.confusable_letters().items(), *charmaps.traditional_to_simplified().items()):
    _MAP.setdefault(_char, _plain)
_TABLE = str.maketrans(_MAP)
# Sets, not character classes, for "does the text hold one of these characters": the map has
# characters beyond U+FFFF (mathematical letters, emoji), and `re` tests a class of those one
# range at a time, about 2.5 µs per chat line where `isdisjoint` takes 0.6.
_MAPPED = frozenset(_MAP)

_CJK = "\u3400-\u4dbf\u4e00-\u9fff"
_NOT_WORD = re.compile(f"[^0-9a-z+{_CJK}][^0-9a-z+{_CJK}]*")  # what squeezing removes
_LATIN = re.compile("[0-9a-z]")
_DIGIT = re.compile("[0-9]")

_CHINESE_DIGITS = "〇零一二三四五六七八九幺两壹贰叁肆伍陆柒捌玖"
_DIGIT_OF = str.maketrans({c: d for c, d in zip(_CHINESE_DIGITS, "0012345678912123456789", strict=True)})

# A run of at least 5 digit characters (ASCII or Chinese) with at most 3 separator characters
# (spaces, punctuation, emoji: anything not a letter, digit or CJK) between neighbours.
_DIGITISH = f"0-9{_CHINESE_DIGITS}"
_FIVE_DIGITISH = re.compile(f"[{_DIGITISH}][{_DIGITISH}]{{4}}")
_NUMBER_RUN = re.compile(f"[{_DIGITISH}](?:[^\\w{_CJK}]{{0,3}}[{_DIGITISH}]){{4,}}")
# Separators people use in dates, prices and phone numbers; anything else between digits
# (emoji, hearts, stars) is there to dodge filters.
_PLAIN_SEPARATORS = frozenset(" -.:/,~()+#*_、")

# Spaced-out characters: "装 修 公 司" or "宝❤妈❤兼❤职".
_SPACED_CJK = re.compile(f"[{_CJK}][^\\w{_CJK}]+(?:[{_CJK}][^\\w{_CJK}]+){{4,}}[{_CJK}]")
_SPACED_ALNUM = re.compile(r"(?<![a-z0-9])(?:[a-z0-9][ \t❤♥★☆·•*_~-]+){4,}[a-z0-9](?![a-z0-9])")

# --- accounts -------------------------------------------------------------------------------

_ACCOUNT_WORDS = sorted({*lexicon.OBFUSCATED_ACCOUNT, *lexicon.PLAIN_ACCOUNT, "wechat", "微"}, key=len, reverse=True)
# Homophones of 微信 and 扣扣 (`lexicon.WEI_SOUND`): after the listed words, so 微信 itself is
# found as the plain word it is.
_SOUNDALIKE = f"[{lexicon.WEI_SOUND}][{lexicon.XIN_SOUND}]|v[{lexicon.XIN_SOUND}]|[{lexicon.KOU_SOUND}]{{2}}"
# A heart after a character read wei is 心, xin: "危❤：s h u…" names 微信 ("V❤X" is vx already).
_HEARTS = frozenset("❤♥♡❣💗💓💕💖💘💝💞💟")
_WEI_HEART = re.compile(f"(?<=[{lexicon.WEI_SOUND}])[{''.join(sorted(_HEARTS))}](?![{lexicon.XIN_SOUND}])")
_ACCOUNT_ALT = (
    "|".join(re.escape(w) for w in _ACCOUNT_WORDS if w not in ("v", "q", "扣", "薇", "微")) + "|" + _SOUNDALIKE
)
_VERBS = "|".join(
    re.escape(v) for v in sorted((*lexicon.ADD_VERBS_PLAIN, *lexicon.ADD_VERBS_OBFUSCATED), key=len, reverse=True)
)
_FILLERS = ("我", "个", "一下", "下", "个人", "好友")
# On the squeezed form: an "add" verb, an optional 我/个/一下, then an account word. A bare
# "v" or "q" counts unless it starts an ordinary word ("加vip会员", "加quick").
_SOLICIT = re.compile(
    f"(?P<verb>{_VERBS})(?:{'|'.join(_FILLERS)})?"
    f"(?P<acct>{_ACCOUNT_ALT}|薇|微(?=信|x|芯)|v(?!ip|lo|ue|s)|q(?!u|ing)|扣(?=扣|\\d))"
)
# On the normal form: an account word, then an id. Single letters need a separator so "dev_x"
# or "mv 123456" do not count.
_HANDLE = re.compile(
    # Not inside a word or an address: "docs.qq.com/doc/DQWxYZ…" holds no "wx" account.
    f"(?<![a-z0-9_/.=?&%#-])(?P<acct>{_ACCOUNT_ALT}|微|薇|[vq](?=\\s*[:：=]|\\s+[a-z0-9]))"
    r"\s*(?:号码|号|id)?\s*(?:是|为|[:：=→👉]|同号)?\s*"
    r"(?P<id>[a-z][a-z0-9_-]{4,24}|@[a-z][a-z0-9_]{3,31}|[1-9][0-9]{4,11})(?![a-z0-9_])"
)
# Single letters and look-alikes stand in for 微信/QQ to dodge filters.
_OBFUSCATED = frozenset((*lexicon.OBFUSCATED_ACCOUNT, "v", "q", "扣", "薇"))
_SOUNDS_ALIKE = re.compile(_SOUNDALIKE)


def _obfuscated(account_word: str) -> bool:
    return account_word in _OBFUSCATED or (
        account_word not in lexicon.PLAIN_ACCOUNT and _SOUNDS_ALIKE.fullmatch(account_word) is not None
    )


# Words that make the number after them a way to reach someone.
_CONTACT_WORD = re.compile(r"电话|手机|联系|致电|热线|tel|call|微信|vx|wx|v|q|扣|号|☎|📞|拨打|打给")
_ACCOUNT_TITLE = {"wechat": "微信", "qq": "QQ", "telegram": "Telegram", "other": "账号"}
_VERB = re.compile("[加+伽嘉珈茄]")  # every "add" verb has one of these
# Every account word starts with one of these: no such character, no handle to look for.
_ACCOUNT_HINT = re.compile(
    "微|薇|嶶|溦|徽|威|维|扣|蔻|抠|企|鹅|飞|卫|绿|vx|wx|qq|tg|wechat|weixin|telegram|v(?<![a-z]v)(?![a-z])|q(?<![a-z]q)(?![a-z])"
)


def _names_account(norm: str, squeezed: str) -> bool:
    """Whether a text may name an account: a word above in its normal form, or a homophone of
    微信 or 扣扣 in its squeezed form (where "蔚 ⊙ 鑫" reads 蔚鑫; not single characters read wei
    or kou: 为, 位 and 口 are in every other message)."""
    return _ACCOUNT_HINT.search(norm) is not None or _SOUNDS_ALIKE.search(squeezed) is not None


def _account_hinted(norm: str, squeezed: str) -> bool:
    """`_names_account`, or an id spelled out after a colon."""
    return _names_account(norm, squeezed) or _spelled_id(norm) is not None


def _spelled_id(norm: str) -> str | None:
    """The id spelled out after a colon (`_SPELLED_ID`), if it holds three letters or more."""
    if ":" not in norm and "：" not in norm:
        return None
    found = _SPELLED_ID.search(norm)
    return found.group(1) if found is not None and sum(map(str.isalpha, found.group(1))) >= 3 else None


# An id spelled out character by character right after a colon ("威❤：s h u a n g l a n g 0 0 7",
# "w：l o a n 6 4 7"): an account to reach, whatever word stands before it (over the corpus and
# its frozen split, 236 of 237 such lines were ads). At least three letters: spaced digits alone
# are a number (`_find_numbers`).
_SPELLED_ID = re.compile(r"[:：]\s*((?:[a-z0-9][ \t❤♥★☆·•*_~-]+){5,}[a-z0-9])(?![a-z0-9])")
_GROUP_NUMBER = re.compile(r"群号?\s*(?:是|为|[:：])?\s*$")
# Decoration between characters ("微❤信"), removed where handles are looked for.
_DECOR = re.compile(f"[^\\w\\s{_CJK}!-/:-@\\[-`{{-~]+")
_CJK_GAP = re.compile(f"(?<=[{_CJK}])\\s+|\\s+(?=[{_CJK}])")
_FULLWIDTH = re.compile("[\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]")
_EMAIL = re.compile(r"[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}")
_MENTION = re.compile(r"[@＠][^\s@＠\u2005]{1,24}")

# --- the quiet test (`Analyzer.read`, mirroring `checks.is_quiet`) -------------------------------

# Phrase categories that make a message more than chat.
LOUD = frozenset(("strong", "offer", "blacklist"))
# Characters that make a text busy: a digit (figures, numbers, accounts) and the money and
# discount characters the ad check reads without a phrase (as it reads 只要/低至/仅需).
# Latin letters only matter near a link or account hint.
_BUSY = re.compile("[0-9赚挣折]")
_PRICE_WORDS = ("只要", "低至", "仅需")
# Found with the phrases, in the same pass, what makes `read` look closer: the price words,
# two Chinese digits in a row (a number needs five) and the two characters where an add
# verb or a filler meets an account word (every solicitation has them).
_MARKERS = frozenset(
    (
        *_PRICE_WORDS,
        *(a + b for a in _CHINESE_DIGITS for b in _CHINESE_DIGITS),
        *(
            before[-1] + word[0]
            for before in (*lexicon.ADD_VERBS_PLAIN, *lexicon.ADD_VERBS_OBFUSCATED, *_FILLERS)
            for word in _ACCOUNT_WORDS
        ),
        # The homophones themselves (a verb before one is too common a pair: "我为", "个位").
        *(a + b for a in lexicon.WEI_SOUND for b in lexicon.XIN_SOUND),
        *(a + b for a in lexicon.KOU_SOUND for b in lexicon.KOU_SOUND),
    )
)
_LETTER = re.compile("[a-z]")
# In the core normal form: a digit, letter or busy character, or one the look-alike map changes.
_ANY_BUSY = frozenset("0123456789abcdefghijklmnopqrstuvwxyz赚挣折").union(_MAP)

# --- links ----------------------------------------------------------------------------------

_TLDS = frozenset(lexicon.KNOWN_TLDS)
_URL_TAIL = r"[^\s<>\"'，。！？、）】」》\u4e00-\u9fff]*"
_SCHEME_URL = re.compile(r"(?:https?|ftp)://[^\s<>\"'，。！？、）】」》\u4e00-\u9fff]+")
# A dotted name without a scheme ("abc.com/x"); kept only if its last label is a known TLD.
# Neither part of an e-mail address is one: not the host after "@", nor a dotted name before
# it ("ll.wang@bytedance.com" is no link to a .wang site).
_BARE_URL = re.compile(
    r"(?<![a-z0-9@._/-])((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+([a-z]{2,10}))"
    rf"(?![a-z0-9@-])(?::\d{{2,5}})?(?:[/?]{_URL_TAIL})?"
)
_DOT_LETTER = re.compile(r"[a-z0-9]\.[a-z]")
_FAKE_DOT_HINT = re.compile(r"点|點|。|丶|·|•|dot| \.|\. |\(\.\)|\[\.\]|（\.）")
# Addresses found only after undoing "点com" tricks must end in one of these: English words
# such as ".live" or ".me" after "。" would otherwise read as links.
_HIDDEN_TLDS = frozenset(
    (
        "com",
        "cn",
        "net",
        "org",
        "top",
        "xyz",
        "vip",
        "cc",
        "icu",
        "club",
        "site",
        "online",
        "shop",
        "wang",
        "ren",
        "tk",
        "cyou",
        "ltd",
        "info",
    )
)
# Dots written to dodge link filters, between two letters or digits.
_FAKE_DOT = re.compile(
    r"(?<=[a-z0-9])\s*(?:点|點|。|\(\.\)|\[\.\]|（\.）|\(点\)|【点】|\[点\]|dot|丶|·|•|\s\.|\.\s)\s*(?=[a-z0-9])"
)
_URL_SPACES = re.compile(r"(?<=[a-z0-9:/.])[ \t]+(?=[a-z0-9:/.])")
_LINK_HINT = re.compile(r"\.|点|點|。|丶|·|•|dot|://")


@dataclass(frozen=True, slots=True)
class Phrase:
    """A lexicon entry, as the matcher returns it."""

    text: str
    category: str  # strong | offer | cta | warning | vouch | blacklist
    weight: int = 0


@dataclass(frozen=True, slots=True)
class Link:
    text: str
    host: str
    allowed: bool
    hidden: str = ""  # how it was obfuscated, or ""
    suspicious: str = ""  # why the host is suspicious, or ""
    commerce: bool = False  # a shop or app members share (jd, taobao, douyin ...)
    posing: str = ""  # the bank, shop or state body whose name the host borrows, or ""
    cheap: bool = False  # on a top-level domain that costs next to nothing (.top, .cc, .vip …)

    @property
    def plain(self) -> bool:
        """Written out openly, to a host with nothing suspicious about it (no short link, IP,
        cheap domain or borrowed name): how news and shop links between members look."""
        return not (self.hidden or self.suspicious)


@dataclass(frozen=True, slots=True)
class Number:
    digits: str
    kind: str  # mobile | landline | qq | group | number
    hidden: str = ""  # how it was obfuscated, or ""


@dataclass(frozen=True, slots=True)
class Handle:
    account: str  # wechat | qq | telegram | other (an id spelled out after a colon: `_SPELLED_ID`)
    ident: str
    hidden: str = ""  # how it was disguised, e.g. `SPELLED_OUT`


# An account id typed one character at a time ("wx：Ｔ Ｙ Ｔ ９ ８ ７ ６"): nobody writes their own
# id so but to slip it past a filter.
SPELLED_OUT = "账号逐字隔开"


@dataclass(slots=True)
class Features:
    """Everything the checks read about one message's text. The sequences are empty tuples
    unless something was found (most messages: nothing, and nothing allocated)."""

    raw: str
    norm: str
    squeezed: str
    phrases: Sequence[Phrase] = ()
    links: Sequence[Link] = ()
    numbers: Sequence[Number] = ()
    handles: Sequence[Handle] = ()
    solicitations: Sequence[tuple[str, str]] = ()  # (what was written, how hidden)
    emails: Sequence[str] = ()
    spaced_out: str = ""  # a run of spaced-out characters, or ""
    mentions: int = 0
    digits: bool = False  # any ASCII digit in the squeezed form

    @property
    def scam_warning(self) -> bool:
        return any(p.category == "warning" for p in self.phrases)

    def of(self, category: str) -> list[Phrase]:
        if not self.phrases:
            return []
        return [p for p in self.phrases if p.category == category]


def squeeze(text: str) -> str:
    """The squeezed form of already-normalised text (see the module docstring)."""
    return _NOT_WORD.sub("", text)


def deep_normalize(text: str) -> str:
    """`normalize` plus look-alike, enclosed-digit and traditional-character mapping."""
    norm = normalize(text)
    return norm if _MAPPED.isdisjoint(norm) else norm.translate(_TABLE)


def phrase_key(phrase: str) -> str:
    """How a lexicon or blacklist phrase is stored: the squeezed form of its normal form."""
    return squeeze(deep_normalize(phrase))


class PhraseAutomaton:
    """Every phrase of the lexicon in one Aho-Corasick automaton over the squeezed form.

    It walks the UTF-8 bytes of the text (spelled as Latin-1 characters), not its
    characters: pyahocorasick looks a character up among a node's children one by one, and
    the root of a Chinese lexicon has some 260 of them, which every character of ordinary
    chat is compared against; byte-wise the root has a dozen and no node more than 64
    (the scan takes about 40% less time). Whole UTF-8 sequences only match whole characters
    in UTF-8 text, so the hits are exactly those of a character-wise automaton.

    `markers` are strings that are not phrases but worth knowing about (`scan`)."""

    __slots__ = ("_automaton", "_phrases")

    def __init__(self, entries: Iterable[tuple[str, Phrase]], markers: Iterable[str] = ()) -> None:
        phrases: list[Phrase] = []
        ids: dict[str, list[int]] = {}  # key -> indices of its phrases
        for key, phrase in entries:
            ids.setdefault(normalize(key), []).append(len(phrases))
            phrases.append(phrase)
        marked = set(markers)
        for key in marked:
            ids.setdefault(key, [])
        self._phrases = tuple(phrases)
        self._automaton: ahocorasick.Automaton | None = None
        if ids:
            automaton = ahocorasick.Automaton()
            for key, indices in ids.items():
                automaton.add_word(_as_bytes(key), (tuple(indices), key in marked))
            automaton.make_automaton()
            self._automaton = automaton

    def match(self, squeezed: str) -> list[Phrase]:
        """Every phrase found, each once, in lexicon order."""
        return self.scan(squeezed)[0]

    def scan(self, squeezed: str) -> tuple[list[Phrase], bool]:
        """`match`, and whether a marker was found."""
        if self._automaton is None:
            return [], False
        hits: list[int] = []
        marked = False
        for _, (indices, marker) in self._automaton.iter(squeezed.encode().decode("latin-1")):
            hits += indices
            marked = marked or marker
        if not hits:
            return [], marked
        phrases = self._phrases
        if len(hits) == 1:
            return [phrases[hits[0]]], marked
        return [phrases[i] for i in sorted(set(hits))], marked


def _as_bytes(text: str) -> str:
    return text.encode().decode("latin-1")


class Analyzer:
    """Compiled once per configuration: the phrase automaton and the link allow-list."""

    def __init__(
        self,
        *,
        strong: Iterable[str],
        offer: dict[str, int],
        cta: Iterable[str],
        warning: Iterable[str],
        vouching: Iterable[str] = lexicon.VOUCHING,
        blacklist: Iterable[str] = (),
        allowed_domains: Iterable[str] = (),
        commerce_domains: Iterable[str] = lexicon.COMMERCE_DOMAINS,
        shorteners: Iterable[str] = lexicon.SHORTENERS,
        suspicious_tlds: Iterable[str] = lexicon.SUSPICIOUS_TLDS,
        posed_names: dict[str, tuple[str, ...]] = lexicon.POSED_NAMES,
        strong_weight: int = 4,
    ) -> None:
        entries: list[tuple[str, Phrase]] = []

        def add(words: Iterable[str], category: str, weight: int | dict[str, int]) -> None:
            for word in words:
                key = phrase_key(word)
                if key:
                    w = weight[word] if isinstance(weight, dict) else weight
                    entries.append((key, Phrase(word, category, w)))

        add(strong, "strong", strong_weight)
        add(offer, "offer", offer)
        add(cta, "cta", 1)
        add(warning, "warning", 0)
        add(vouching, "vouch", -2)
        add(blacklist, "blacklist", 0)
        self._phrases = PhraseAutomaton(entries, _MARKERS)
        self._allowed = frozenset(d.lower().strip(".") for d in allowed_domains if d.strip("."))
        self._commerce = frozenset(d.lower().strip(".") for d in commerce_domains if d.strip("."))
        self._shorteners = frozenset(d.lower() for d in shorteners)
        self._suspicious_tlds = frozenset(t.lower().lstrip(".") for t in suspicious_tlds)
        self._posed = {name: frozenset(domains) for name, domains in posed_names.items()}

    # --- the one entry point ---------------------------------------------------------------
    def analyze(self, text: str, url: str | None = None, normalized: str | None = None) -> Features:
        """`normalized`: the core `normalize(text)` if the caller already has it (the
        dispatcher shares one per event)."""
        if normalized is None:
            norm = deep_normalize(text) if text else ""
        else:
            norm = normalized if _MAPPED.isdisjoint(normalized) else normalized.translate(_TABLE)
        f = self._features(text, norm, _NOT_WORD.sub("", norm))
        if url:
            host = host_of(url)
            if host and all(link.host != host for link in f.links):
                f.links = [*f.links, self._link(url.strip(), host, "")]
        return f

    def read(self, text: str, normalized: str | None = None) -> tuple[str, Features | None]:
        """`analyze` for a plain text message (no URL), with the common case decided
        early: (squeezed form, None) when the text is quiet, that is when no finder and no
        content check would find anything in it (no loud phrase, link, e-mail, number,
        account, solicitation, money or price word, mention or spaced-out run: the text half
        of `checks.is_quiet`); else (squeezed form, the features `analyze` gives). Most chat
        is quiet, and is told so without building `Features` or running the finders."""
        if normalized is None:
            normalized = normalize(text) if text else ""
        if _ANY_BUSY.isdisjoint(normalized):
            norm = normalized  # the common case: one scan says there is nothing to map either
            squeezed = _NOT_WORD.sub("", norm)
            busy = False
        else:
            norm = normalized if _MAPPED.isdisjoint(normalized) else normalized.translate(_TABLE)
            squeezed = _NOT_WORD.sub("", norm)
            # Letters without digits ("ok", "app") make no figure, and only a link (or an
            # e-mail) or an account can be found in them, which `analyze` looks for only
            # after a hint.
            busy = _BUSY.search(norm) is not None or (
                _LETTER.search(norm) is not None
                and (_LINK_HINT.search(norm) is not None or _account_hinted(norm, squeezed))
            )
        if not squeezed:
            return squeezed, None  # `analyze` reads nothing in it either
        if busy or "@" in text or "＠" in text or (len(norm) - len(squeezed) >= 5 and _SPACED_CJK.search(norm)):
            return squeezed, self._features(text, norm, squeezed)
        phrases, marked = self._phrases.scan(squeezed)
        if marked:
            if _FIVE_DIGITISH.search(squeezed) or _SOLICIT.search(squeezed):
                return squeezed, self._features(text, norm, squeezed)
            price = "只要" in squeezed or "低至" in squeezed or "仅需" in squeezed
        else:
            price = False
        if not price and (not phrases or not any(p.category in LOUD for p in phrases)):
            return squeezed, None
        # Loud phrases or a price word, and nothing for any finder (the tests above say so):
        # the features are the phrases alone.
        return squeezed, Features(text, norm, squeezed, phrases)

    def _features(self, text: str, norm: str, squeezed: str) -> Features:
        """Everything `analyze` finds in the text's forms."""
        f = Features(text, norm, squeezed)
        if squeezed:
            # Each finder runs only when the characters it needs are there: most chat lines
            # have no Latin letters and few digits, and pay for one automaton pass only.
            f.phrases = self._phrases.match(squeezed)
            latin = _LATIN.search(squeezed) is not None
            f.digits = latin and _DIGIT.search(squeezed) is not None
            # Separators are gone from the squeezed form, so any number worth reading
            # ("1 3 8…", "一三八…", "1️⃣3️⃣…") is five digit characters in a row there.
            digitish = _FIVE_DIGITISH.search(squeezed) is not None
            verbs = _VERB.search(squeezed) is not None
            if latin or digitish or verbs:
                fullwidth = not text.isascii() and _FULLWIDTH.search(text) is not None
                if latin:
                    self._find_links(f, fullwidth)
                if digitish:
                    self._find_numbers(f, fullwidth, "\u20e3" in text)
                self._find_accounts(f, fullwidth, verbs, latin or digitish)
            if len(norm) - len(squeezed) >= 5:
                spaced = _SPACED_CJK.search(norm)
                if spaced:
                    f.spaced_out = spaced.group()
            if "@" in text or "＠" in text:
                f.mentions = len(_MENTION.findall(text))
        return f

    # --- links -------------------------------------------------------------------------------
    def _find_links(self, f: Features, fullwidth: bool) -> None:
        norm = f.norm
        if not _LINK_HINT.search(norm):
            return
        links: list[Link] = []
        seen: set[str] = set()
        hidden_how = "全角字符" if fullwidth else ""
        if "." in norm:
            for found in _links_in(norm):
                host = host_of(found)
                if host and host not in seen:
                    seen.add(host)
                    links.append(self._link(found, host, hidden_how))
        if _FAKE_DOT_HINT.search(norm) and _FAKE_DOT.search(norm):
            linkform = _URL_SPACES.sub("", _FAKE_DOT.sub(".", norm))
            for found in _links_in(linkform) if linkform != norm else ():
                host = host_of(found)
                if host and host not in seen and host.rpartition(".")[2] in _HIDDEN_TLDS:
                    seen.add(host)
                    links.append(self._link(found, host, "网址变形（点com、空格等）"))
        if links:
            f.links = links
        if "@" in norm:
            f.emails = _EMAIL.findall(norm)

    def _link(self, text: str, host: str, hidden: str) -> Link:
        allowed = _under(host, self._allowed)
        posing = "" if allowed else _posing(host, self._posed) or _nested_domain(host)
        tld = host.rpartition(".")[2]
        cheap = not allowed and tld in self._suspicious_tlds
        return Link(
            text,
            host,
            allowed,
            hidden,
            f"冒充 {posing} 的网址" if posing else "" if allowed else self._suspicion(host, tld, cheap),
            commerce=not allowed and _under(host, self._commerce),
            posing=posing,
            cheap=cheap,
        )

    def is_allowed(self, host: str) -> bool:
        return _under(host, self._allowed)

    def _suspicion(self, host: str, tld: str, cheap: bool) -> str:
        if host in self._shorteners:
            return "短链接"
        # Only digits and dots (IPv4) or a colon (IPv6) can parse: a failed parse raises, which
        # costs more than the rest of the link's reading.
        if ":" in host or not host.strip("0123456789."):
            try:
                ipaddress.ip_address(host)
                return "IP 地址"
            except ValueError:
                pass
        return f"廉价域名（.{tld}）" if cheap else ""

    # --- numbers -----------------------------------------------------------------------------
    def _find_numbers(self, f: Features, fullwidth: bool, keycaps: bool) -> None:
        norm = f.norm
        numbers: list[Number] = []
        for m in _NUMBER_RUN.finditer(norm):
            span = m.group()
            digits = "".join(ch for ch in span.translate(_DIGIT_OF) if ch.isdigit())
            if len(digits) < 5:
                continue
            chinese = sum(1 for ch in span if ch in _CHINESE_DIGITS)
            separators = [ch for ch in span if not ch.isdigit() and ch not in _CHINESE_DIGITS]
            if chinese >= 3:
                hidden = "用汉字写数字"
            elif keycaps:
                hidden = "表情符号数字"
            elif any(ch not in _PLAIN_SEPARATORS and not ch.isascii() for ch in separators):
                hidden = "数字间插符号"
            elif len(separators) >= 4 and len(separators) >= len(digits) // 2:
                hidden = "数字逐个隔开"
            elif fullwidth:
                hidden = "全角数字"
            else:
                hidden = ""
            before = norm[max(0, m.start() - 10) : m.start()]
            kind = _number_kind(digits, before)
            if kind == "number" and len(digits) >= 8:
                kind = _dialled_kind(digits, international=before.endswith("+"))
            if kind == "number" and hidden and len(digits) >= 7 and _CONTACT_WORD.search(before):
                kind = "phone"
            if kind == "number":
                continue  # an order number, a price, a date, a counting rhyme: not a way to reach anyone
            numbers.append(Number(digits, kind, hidden))
        if numbers:
            f.numbers = numbers

    # --- accounts ------------------------------------------------------------------------------
    def _find_accounts(self, f: Features, fullwidth: bool, verbs: bool, ids: bool) -> None:
        squeezed, norm = f.squeezed, f.norm
        if not _HEARTS.isdisjoint(norm) and (xin := _WEI_HEART.sub("心", norm)) != norm:
            squeezed, norm = _NOT_WORD.sub("", xin), xin  # for finding accounts only
        solicitations: list[tuple[str, str]] = []
        for m in _SOLICIT.finditer(squeezed) if verbs else ():
            verb, acct = m.group("verb"), m.group("acct")
            hidden = ""
            if verb in lexicon.ADD_VERBS_OBFUSCATED:
                hidden = f"用“{verb}”代替“加”"
            elif _obfuscated(acct):
                hidden = f"用“{acct}”代替{_ACCOUNT_TITLE[_account_name(acct)]}"
            elif acct == "微信" and "微信" not in norm.replace(" ", ""):
                hidden = "字间插符号"
            solicitations.append((m.group(), hidden))
        if solicitations:
            f.solicitations = solicitations
        if not ids:
            return
        spelled = _spelled_id(norm)  # found once: it is a hint and a handle
        if spelled is None and not _names_account(norm, squeezed):
            return
        # Addresses, decoration and spaces next to Chinese characters removed: "微 ❤ 信：id"
        # and "V 信：id" read "微信:id" and "v信:id".
        plain = _CJK_GAP.sub("", _DECOR.sub("", _SCHEME_URL.sub(" ", norm) if "://" in norm else norm))
        despaced = None
        spaced = _SPACED_ALNUM.search(plain) if plain.count(" ") >= 4 else None
        if spaced:
            despaced = plain[: spaced.start()] + re.sub(r"[^a-z0-9]", "", spaced.group()) + plain[spaced.end() :]
        split = "字间插符号" if plain != norm else ""
        handles: list[Handle] = []
        seen: set[str] = set()
        for form, how in ((plain, ""), (despaced, SPELLED_OUT)):
            if form is None:
                continue
            for m in _HANDLE.finditer(form):
                ident = m.group("id")
                if ident in seen:
                    continue
                acct = m.group("acct")
                account = _account_name(acct)
                if ident.isdigit() and account == "wechat" and acct in ("v", "微", "薇") and len(ident) < 6:
                    continue
                seen.add(ident)
                hidden = how
                if not hidden and _obfuscated(acct):
                    hidden = f"用“{acct}”代替{_ACCOUNT_TITLE[account]}"
                if not hidden and split and acct in ("微信", "微信号", "微") and "微信" not in norm:
                    hidden = split
                if not hidden and fullwidth:
                    hidden = "全角字符"
                handles.append(Handle(account, ident, hidden))
        if spelled is not None and (ident := re.sub(r"[^a-z0-9]", "", spelled)) not in seen:
            handles.append(Handle("other", ident, SPELLED_OUT))
        if handles:
            f.handles = handles
            # A number right after "QQ"/"群" reads as an account or group number, not a phone.
            if f.numbers:
                handle_ids = {h.ident for h in handles}
                f.numbers = [n for n in f.numbers if n.digits not in handle_ids]


def _under(host: str, domains: frozenset[str]) -> bool:
    """Whether `host` is one of `domains` or a subdomain of one (one set lookup per label)."""
    while True:
        if host in domains:
            return True
        dot = host.find(".")
        if dot < 0:
            return False
        host = host[dot + 1 :]


# Second-level labels under a country code ("com.cn", "gov.uk", "co.jp"): with the country
# code they make the public suffix, and the label before them is the owner's registered name.
_SECOND_LEVEL = frozenset({"com", "net", "org", "gov", "edu", "co", "ac", "mil"})
_NAME_WORDS = re.compile(r"[-_]+|(?<=[a-z])(?=[0-9])|(?<=[0-9])(?=[a-z])")


def _owned_labels(labels: list[str]) -> list[str]:
    """A host's labels without its public suffix ("com", "com.cn", "gov.uk")."""
    suffix = 2 if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL else 1
    return labels[:-suffix]


def _region_codes_only(labels: list[str]) -> bool:
    """Labels that are all region codes ("bc.ca" after "gov"): with what precedes them, a suffix."""
    return all(len(x) <= 2 for x in labels)


def _posing(host: str, names: dict[str, frozenset[str]]) -> str:
    """The name of `names` that `host` borrows without being that name's own domain, or "".
    The words of a host are its labels split at hyphens and at letter/digit boundaries; the
    public suffix is left out, so "gov" in "beijing.gov.cn" is the suffix, not a word."""
    labels = host.split(".")
    if len(labels) < 2:
        return ""
    owned = _owned_labels(labels)
    last = len(owned) - 1
    for i, label in enumerate(owned):
        for word in _NAME_WORDS.split(label) if not label.isalpha() else (label,):
            real = names.get(word)
            if (
                real is None
                or _under(host, real)
                or (
                    # its registered name, or a name followed only by region codes (gov.bc.ca)
                    label == word and (i == last or _region_codes_only(labels[i + 1 :]))
                )
            ):
                continue
            return word
    return ""


# A label that ends a domain name, found inside a host's own part ("dingsheng-oa.com" in
# dingsheng-oa.com.cn-login.top, "icbc-jifen.cn" in icbc-jifen.cn.hk8s.top): a phishing
# host wearing the name of the site it imitates in front of its own.
_INNER_SUFFIXES = frozenset({"com", "net", "org", "gov", "edu", "cn"})


def _nested_domain(host: str) -> str:
    """The domain name a host carries inside its own part, or "". Region codes after the
    label make it a real public suffix instead ("gov" in www2.gov.bc.ca)."""
    labels = host.split(".")
    owned = _owned_labels(labels)
    for i in range(1, len(owned) - 1):
        if owned[i] in _INNER_SUFFIXES and not _region_codes_only(labels[i + 1 :]):
            end = i + 1
            while end < len(owned) - 1 and owned[end] in _INNER_SUFFIXES:
                end += 1  # xxx.gov.cn.abc.top: the inner name is xxx.gov.cn
            return ".".join(owned[i - 1 : end])
    return ""


def _links_in(text: str) -> list[str]:
    found = _SCHEME_URL.findall(text) if "://" in text else []
    rest = _SCHEME_URL.sub(" ", text) if found else text
    if _DOT_LETTER.search(rest):
        found += [m.group() for m in _BARE_URL.finditer(rest) if m.group(2) in _TLDS]
    return found


def host_of(url: str) -> str:
    """The host of a web address; "" for anything else (a payment code's wxp://…, weixin://…),
    which is no link to judge."""
    scheme, sep, _ = url.partition("://")
    if sep and scheme.strip().lower() not in ("http", "https"):
        return ""
    target = url if sep else f"http://{url}"
    try:
        host = urlsplit(target).hostname or ""
    except ValueError:
        return ""
    return host.strip(".").lower()


def _number_kind(digits: str, before: str) -> str:
    before = before.replace(" ", "")
    if re.search(r"(?:qq|扣扣|企鹅|鹅|q)(?:号)?[:：]?$", before):
        return "qq"
    if _GROUP_NUMBER.search(before):
        return "group"
    if len(digits) == 11 and digits[0] == "1" and digits[1] in "3456789":
        return "mobile"
    if digits[0] == "0" and 10 <= len(digits) <= 12:
        return "landline"
    if digits.startswith("400") and len(digits) == 10:
        return "landline"
    return "number"


def _dialled_kind(digits: str, international: bool) -> str:
    """What libphonenumber makes of a run the plain rules did not read as a phone number:
    +86 / 0086 / 86 before a mobile number, other countries' numbers, landlines without the
    leading 0. "number" when it is no valid number anywhere (an order number, a date)."""
    if digits.startswith("00"):
        digits, international = digits[2:], True
    try:
        parsed = phonenumbers.parse(("+" if international else "") + digits, None if international else "CN")
    except phonenumbers.NumberParseException:
        return "number"
    if not phonenumbers.is_valid_number(parsed):
        return "number"
    kind = phonenumbers.number_type(parsed)
    if parsed.country_code == 86:
        if kind == phonenumbers.PhoneNumberType.MOBILE:
            return "mobile"
        # A plain 8-digit run that happens to be a valid local number is too often a figure.
        return "landline" if len(digits) >= 10 else "number"
    return "phone" if international else "number"


def _account_name(word: str) -> str:
    word = word.lower()
    return (
        lexicon.OBFUSCATED_ACCOUNT.get(word)
        or lexicon.PLAIN_ACCOUNT.get(word)
        or ("qq" if word[:1] in lexicon.KOU_SOUND else "wechat")
    )
