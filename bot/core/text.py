"""Text normalisation for matching: one canonical form for keywords, commands and regexes.

`normalize` is on the hot path (every message, before every matcher), so the common cases
are short-circuited: pure ASCII skips Unicode work entirely, and the characters that make
ordinary Chinese chat text non-NFKC (full-width punctuation, U+3000, U+2005) are mapped
directly, which is several times cheaper than running full NFKC over CJK text.
"""

from __future__ import annotations

import re
import unicodedata

# Invisible characters that only serve to dodge keyword filters ("加\u200b微\u200b信") or to
# flip display direction. Deleted for matching only; the stored message keeps them.
_INVISIBLE = (
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e"
    "\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
    "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\u206a\u206b\u206c\u206d\u206e\u206f"
    "\u3164\ufeff\uffa0" + "".join(map(chr, range(0xFE00, 0xFE10)))
)
# Spaces NFKC would map to U+0020 anyway; mapped here so the text can stay on the fast path.
_ODD_SPACES = "\u00a0\u1680\u202f\u205f\u3000" + "".join(map(chr, range(0x2000, 0x200B)))

_FAST_MAP: dict[str, str] = {c: "" for c in _INVISIBLE}
_FAST_MAP.update({c: " " for c in _ODD_SPACES})
# Full-width ASCII (U+FF01..U+FF5E) is exactly ASCII shifted by 0xFEE0.
_FAST_MAP.update({chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)})

_SURROGATES = "\ud800-\udfff"
_ODD_RE = re.compile(f"[{re.escape(''.join(_FAST_MAP))}{_SURROGATES}]")
_INVISIBLE_RE = re.compile(f"[{re.escape(_INVISIBLE)}]")
# A lone surrogate (from a badly decoded payload) cannot be encoded as UTF-8: RE2, the database
# and the network would all choke on it later. Replace it once, here.
_SURROGATE_RE = re.compile(f"[{_SURROGATES}]")

# Above this length, collecting every odd character would cost more than plain NFKC.
_FAST_PATH_MAX = 4096


def normalize(text: str) -> str:
    """The matching form of `text`: NFKC (full-width to half-width), case-folded, invisible
    characters removed, every whitespace run (U+2005, U+3000, NBSP, newlines...) collapsed to
    one space, stripped. Never raises on odd input; lone surrogates become U+FFFD."""
    if text.isascii():
        return " ".join(text.lower().split())
    if len(text) <= _FAST_PATH_MAX:
        found = _ODD_RE.findall(text)
        # One str.replace per distinct character: cheaper than a Python callback per hit.
        for char in set(found):
            text = text.replace(char, _FAST_MAP.get(char, "\ufffd"))
    else:
        text = _SURROGATE_RE.sub("\ufffd", _INVISIBLE_RE.sub("", text))
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    return " ".join(text.casefold().split())


# What may follow "@name": WeChat puts U+2005 there; people type a space or nothing at the end.
_MENTION_END = frozenset("\u2005 \u00a0\u3000\t\n")
_AT_SIGNS = ("@", "＠")


def strip_mention(text: str, bot_name: str) -> str:
    """Remove a leading and/or trailing "@<bot_name>" (with the U+2005 or space WeChat puts
    after it) and the whitespace around the cut. "@小助手们" is someone else and stays.
    Text without such a mention is returned unchanged."""
    if not bot_name or ("@" not in text and "＠" not in text):
        return text
    body = text.strip()
    changed = False
    for at in _AT_SIGNS:
        tag = at + bot_name
        if body.startswith(tag):
            rest = body[len(tag) :]
            if not rest or rest[0] in _MENTION_END:
                body = rest.lstrip()
                changed = True
                break
    for at in _AT_SIGNS:
        tag = at + bot_name
        if body.endswith(tag):
            head = body[: -len(tag)]
            # "foo@小助手" could be an e-mail-like word; require a boundary before the "@".
            if not head or head[-1].isspace():
                body = head.rstrip()
                changed = True
                break
    return body if changed else text


def normalize_for_command(text: str, bot_name: str) -> str:
    """`normalize` after removing the bot's own @-mention: the form command words and
    keywords addressed to the bot are compared against."""
    return normalize(strip_mention(text, bot_name))
