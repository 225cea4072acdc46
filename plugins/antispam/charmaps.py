"""Character maps built once at import from maintained data, not hand-kept tables.

- Traditional → simplified Chinese from OpenCC's `t2s` conversion, read character by
  character over the CJK blocks (about 3,500 pairs; ads use 賺錢/職/號 to slip past
  simplified-only filters).
- Look-alike letters and digits from Unicode's confusables data (as shipped by
  `confusable_homoglyphs`): every non-ASCII character Unicode lists as confusable with an ASCII
  letter or digit maps to it (Cyrillic а, Greek ν, Cherokee Ꮩ, small capitals, Roman numerals…),
  except CJK characters and punctuation, which are text in their own right (〇 is a digit).

Both feed the one translate table `textforms` applies; building them takes a few tens of
milliseconds at import, and matching stays a single `str.translate`.
"""

from __future__ import annotations

import json
import unicodedata
from importlib import resources

# CJK blocks whose characters OpenCC may convert (the BMP ones: the table stays small).
_CJK_BLOCKS = ((0x3400, 0x4DC0), (0x4E00, 0xA000), (0xF900, 0xFB00))


def traditional_to_simplified() -> dict[str, str]:
    import opencc

    converter = opencc.OpenCC("t2s")
    chars = [chr(c) for lo, hi in _CJK_BLOCKS for c in range(lo, hi)]
    converted = converter.convert("\n".join(chars)).split("\n")
    if len(converted) != len(chars):  # a multi-character result would shift the lines
        raise RuntimeError("OpenCC's t2s changed the number of lines; cannot build the table")
    return {t: s for t, s in zip(chars, converted, strict=True) if t != s and len(s) == 1}


def _is_cjk_or_punctuation(char: str) -> bool:
    code = ord(char)
    if 0x2E80 <= code <= 0x9FFF or 0xF900 <= code <= 0xFAFF or 0xFE30 <= code <= 0xFE4F or code >= 0x20000:
        return True
    return unicodedata.category(char)[0] in "PZC"


def confusable_letters() -> dict[str, str]:
    """Non-ASCII look-alikes of ASCII letters and digits → the lower-case letter or digit."""
    data = json.loads(resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8"))
    out: dict[str, str] = {}
    for target, entries in data.items():
        if len(target) != 1 or not target.isascii() or not target.isalnum():
            continue
        plain = target.lower()
        for entry in entries:
            char = entry.get("c", "")
            if len(char) != 1 or char.isascii() or _is_cjk_or_punctuation(char):
                continue
            # NFKC already folds full-width and mathematical letters; what is left after it
            # (Cyrillic, Greek, Cherokee, small capitals…) is what the table has to map.
            folded = unicodedata.normalize("NFKC", char).casefold()
            if folded.isascii():
                continue
            out.setdefault(folded if len(folded) == 1 else char, plain)
    return out
