"""The chat-command layer every plugin uses: one tokenizer for every command.

A command is a word at the start of a message, bare (签到) or behind a configured prefix
(/签到). People type commands the way they chat, so the tokenizer forgives:
- punctuation around the word, half- or full-width: 签到！ 签到~ 【签到】 「签到」 签到。
- an argument glued on, when the command declares what its argument looks like
  (`glued="number"`: 投2, 猜50; or a vocabulary the runtime knows, `glued="plugin"`: 关闭入群欢迎).

The word must still stand alone: "签到了吗" and "签到好累" are chat, not commands, and "投资"
is not a vote (a glued argument must be of the declared kind). Lookup is one dict access per
message; only messages whose first character starts a command that takes a glued argument
(投, 猜, 关…) try its few prefixes. The tables are built per group at load from each plugin's
resolved config.
"""

from __future__ import annotations

import re
import shlex
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bot.core.plugin import Command, CommandSpec
from bot.core.text import strip_mention

_SPACES = str.maketrans({"\u2005": " ", "\u3000": " ", "\u00a0": " ", "\t": " ", "\n": " "})

# Punctuation people put around a command, half- and full-width (text is read after NFKC,
# which makes ！～：( half-width, but `trim_punctuation` may get raw text).
# Not "@" (mentions are arguments) and not "-" or "+" (signs of numbers).
OPENERS = "【「『《〈〔“‘([{<\"'#*~.。、,，!?:;…·（［｛＜＂＇＃＊～．！？：；"
CLOSERS = "】」』》〉〕”’)]}>\"'*~.。、,，!?:;…·）］｝＞＂＇＊～．！？：；"
EDGES = "".join(dict.fromkeys(OPENERS + CLOSERS))
_OPENER_SET = frozenset(OPENERS)
_CLOSER_SET = frozenset(CLOSERS)
# What may sit between a command and its glued argument (投:2, 关闭-欢迎 would be odd but harmless).
_GLUE = " :：,，、"

# A glued number is digits alone (投2, 猜50, 投第2, 投2号): "投2个" and "投资" stay chat.
NUMBER_ARG = re.compile(r"第?\d{1,9}号?")
GLUED_NUMBER = "number"


@dataclass(frozen=True, slots=True)
class Match:
    spec: CommandSpec
    command: Command


def fold(word: str) -> str:
    return unicodedata.normalize("NFKC", word).casefold().strip()


def trim_punctuation(text: str) -> str:
    """Text without the punctuation and spaces around it (【进群】 → 进群, 签到！ → 签到).
    For any plugin that reads a whole short message as a word, as commands are read."""
    return text.strip().strip(EDGES).strip()


class CommandTable:
    def __init__(
        self, entries: Iterable[tuple[str, CommandSpec]], vocabularies: Mapping[str, Iterable[str]] | None = None
    ) -> None:
        self._by_word: dict[str, CommandSpec] = {}
        for word, spec in entries:
            # First registration wins (plugins are added in priority order).
            self._by_word.setdefault(fold(word), spec)
        vocab = {name: frozenset(fold(w) for w in words if w) for name, words in (vocabularies or {}).items()}
        # Commands that take an argument glued on (投2): by word, with how to recognise the argument.
        self._glued: dict[str, frozenset[str] | None] = {}
        for word, spec in self._by_word.items():
            if spec.glued is None:
                continue
            if spec.glued == GLUED_NUMBER:
                self._glued[word] = None
            elif spec.glued in vocab:
                self._glued[word] = vocab[spec.glued]
            else:
                raise ValueError(
                    f"plugin {spec.plugin}: command {spec.word} takes a glued {spec.glued!r}, which is neither "
                    f"{GLUED_NUMBER!r} nor a known vocabulary ({', '.join(sorted(vocab)) or 'none'})"
                )
        self._glued_first = frozenset(w[0] for w in self._glued)
        # The longest head a command can be: its word with a run of punctuation around it.
        self._longest_padded = max((len(w) for w in self._by_word), default=0) + 12
        self._glued_longest = max((len(w) for w in self._glued), default=0)

    def __contains__(self, word: str) -> bool:
        return fold(word) in self._by_word

    def specs(self) -> list[CommandSpec]:
        seen: dict[int, CommandSpec] = {}
        for spec in self._by_word.values():
            seen.setdefault(id(spec), spec)
        return list(seen.values())

    def may_start(self, normalized: str, prefixes: Iterable[str]) -> bool:
        """Cheap pre-check on the already-normalised text: could it be a command at all?"""
        if not normalized or len(normalized) > 2000:
            return False
        for prefix in prefixes:
            if prefix and normalized.startswith(prefix):
                normalized = normalized[len(prefix) :].lstrip()
                break
        head = normalized.partition(" ")[0]
        if head in self._by_word:
            return True
        first = head[:1]
        if first in self._glued_first:
            return True
        if len(head) > self._longest_padded:
            return False  # Chinese chat has few spaces: most heads are far longer than any command
        # Punctuation around the word costs a strip only for the messages that have it.
        if first in _OPENER_SET:
            head = normalized.lstrip(OPENERS).partition(" ")[0]
            if head[:1] in self._glued_first:
                return True
        elif head[-1:] not in _CLOSER_SET:
            return False
        return head.rstrip(CLOSERS) in self._by_word

    def parse(self, text: str, prefixes: Iterable[str], bot_name: str) -> Match | None:
        if not text or len(text) > 2000:  # commands are short; skip the work for essays
            return None
        raw = unicodedata.normalize("NFKC", strip_mention(text, bot_name)).translate(_SPACES).strip()
        for prefix in prefixes:
            if prefix and raw.startswith(prefix):
                raw = raw[len(prefix) :].lstrip()
                break
        head, _, rest = raw.lstrip(OPENERS).partition(" ")
        word = head.rstrip(CLOSERS)
        spec = self._by_word.get(word.casefold())
        rest = rest.strip()
        if rest and not rest.strip(EDGES):
            rest = ""  # "签到 ！"
        if spec is not None:
            if spec.glued is not None and rest:
                rest = rest.rstrip(CLOSERS)  # "投 2！", "【投 2】"
            return Match(spec, Command(word=spec.word, typed=word, args=split_args(rest), rest=rest))
        return self._glued_match(head, rest)

    def _glued_match(self, head: str, rest: str) -> Match | None:
        """投2, 猜50, 关闭入群欢迎: a command word with its declared kind of argument glued on."""
        folded = head.casefold()
        if folded[:1] not in self._glued_first:
            return None
        for size in range(min(len(folded) - 1, self._glued_longest), 0, -1):
            if folded[:size] not in self._glued:
                continue
            vocabulary = self._glued[folded[:size]]
            arg = head[size:].strip(_GLUE).rstrip(CLOSERS) if len(head) == len(folded) else folded[size:]
            arg = arg.strip(_GLUE)
            if not arg:
                continue
            known = NUMBER_ARG.fullmatch(arg) is not None if vocabulary is None else arg.casefold() in vocabulary
            if not known:
                continue
            spec = self._by_word[folded[:size]]
            full = f"{arg} {rest}".strip()
            return Match(spec, Command(word=spec.word, typed=head[:size], args=(arg, *split_args(rest)), rest=full))
        return None


def split_args(rest: str) -> tuple[str, ...]:
    """Whitespace-separated arguments; quotes group words when they balance."""
    if not rest:
        return ()
    try:
        return tuple(shlex.split(rest))
    except ValueError:  # unbalanced quote: fall back to plain splitting, never fail
        return tuple(rest.split())
