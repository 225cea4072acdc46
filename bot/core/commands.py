"""The chat-command layer every plugin uses.

A command is a word at the start of a message, bare (签到) or behind a configured prefix
(/签到). The word must stand alone: "签到" and "签到 明天" are commands, "签到了吗" is not,
so ordinary chat does not trigger them. Lookup is one dict access per message; the tables
are built per group at load from each plugin's resolved config.
"""

from __future__ import annotations

import shlex
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from bot.core.plugin import Command, CommandSpec
from bot.core.text import strip_mention

_SPACES = str.maketrans({"\u2005": " ", "\u3000": " ", "\u00a0": " ", "\t": " ", "\n": " "})


@dataclass(frozen=True, slots=True)
class Match:
    spec: CommandSpec
    command: Command


def fold(word: str) -> str:
    return unicodedata.normalize("NFKC", word).casefold().strip()


class CommandTable:
    def __init__(self, entries: Iterable[tuple[str, CommandSpec]]) -> None:
        self._by_word: dict[str, CommandSpec] = {}
        for word, spec in entries:
            # First registration wins (plugins are added in priority order).
            self._by_word.setdefault(fold(word), spec)

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
        return normalized.partition(" ")[0] in self._by_word

    def parse(self, text: str, prefixes: Iterable[str], bot_name: str) -> Match | None:
        if not text or len(text) > 2000:  # commands are short; skip the work for essays
            return None
        raw = unicodedata.normalize("NFKC", strip_mention(text, bot_name)).translate(_SPACES).strip()
        for prefix in prefixes:
            if prefix and raw.startswith(prefix):
                raw = raw[len(prefix) :].lstrip()
                break
        head, _, rest = raw.partition(" ")
        spec = self._by_word.get(head.casefold())
        if spec is None:
            return None
        rest = rest.strip()
        return Match(spec, Command(word=spec.word, typed=head, args=split_args(rest), rest=rest))


def split_args(rest: str) -> tuple[str, ...]:
    """Whitespace-separated arguments; quotes group words when they balance."""
    if not rest:
        return ()
    try:
        return tuple(shlex.split(rest))
    except ValueError:  # unbalanced quote: fall back to plain splitting, never fail
        return tuple(rest.split())
