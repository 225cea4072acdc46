"""Matchers compiled once at load: many keywords in one pass, and admin regexes on RE2.

`KeywordMatcher` puts every contains/prefix keyword into one Aho-Corasick automaton and
every exact keyword into a dict, so matching costs one scan of the message however many
rules there are. `SafeRegex` runs admin-written patterns on RE2, whose matching time is
linear in the text: no pattern can hang the bot with catastrophic backtracking.

Both expect text that went through `bot.core.text.normalize` (half-width, case-folded,
single spaces); keywords are normalised the same way when the matcher is built.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Any, Generic, TypeVar

import ahocorasick
import re2

from bot.core.text import normalize

T = TypeVar("T")


def root_first(words: Sequence[str]) -> list[int]:
    """Where to start filling a `pyahocorasick` automaton so that its root lists the most
    used characters first: the position of one word per first character, most used first.
    Add those words, then every word (adding one again changes nothing).

    The automaton keeps a node's children in the order they were added and finds the next
    character by a linear scan of them (each step a pointer to follow). Every walk that
    falls back to the root looks among every first character of every word: a few thousand
    for the text model's grams, which came in code point order. How many words each
    character occurs in stands for how common it is in chat. Deeper nodes have few children;
    ordering them too measured no faster. What the automaton finds, and in which order,
    does not change: only how long a step looks."""
    counts = Counter(char for word in words for char in word)
    first: dict[str, int] = {}
    for i, word in enumerate(words):
        first.setdefault(word[:1], i)
    return [first[char] for char, _ in counts.most_common() if char in first]


class MatchMode(StrEnum):
    EXACT = "exact"  # the whole message is the keyword
    CONTAINS = "contains"  # the keyword appears anywhere
    PREFIX = "prefix"  # the message starts with the keyword


class KeywordMatcher(Generic[T]):
    """Maps normalised text to the values of every rule whose keyword matches.

    Built from ``(pattern, mode, value)`` entries; `match` returns the values in insertion
    order (each at most once), so callers pick by their own priority. Immutable after
    construction.
    """

    __slots__ = ("_automaton", "_exact", "_values")

    def __init__(self, entries: Iterable[tuple[str, MatchMode | str, T]] = ()) -> None:
        values: list[T] = []
        exact: dict[str, list[int]] = {}
        # keyword -> (indices matching anywhere, indices matching only at the start)
        scan: dict[str, tuple[list[int], list[int]]] = {}
        for pattern, mode, value in entries:
            try:
                how = MatchMode(mode)
            except ValueError:
                raise ValueError(
                    f"unknown match mode {mode!r} for keyword {pattern!r}; "
                    f"use one of: {', '.join(m.value for m in MatchMode)}"
                ) from None
            key = normalize(pattern)
            if not key:
                raise ValueError(f"keyword {pattern!r} is empty once normalised")
            index = len(values)
            values.append(value)
            if how is MatchMode.EXACT:
                exact.setdefault(key, []).append(index)
            else:
                anywhere, at_start = scan.setdefault(key, ([], []))
                (anywhere if how is MatchMode.CONTAINS else at_start).append(index)

        self._values = tuple(values)
        self._exact = {key: tuple(ids) for key, ids in exact.items()}
        self._automaton: ahocorasick.Automaton | None = None
        if scan:
            automaton = ahocorasick.Automaton()
            keys = list(scan)
            for i in [*root_first(keys), *range(len(keys))]:  # common first characters first
                key = keys[i]
                anywhere, at_start = scan[key]
                # The end index of a prefix hit must be len(key) - 1 (i.e. it starts at 0).
                automaton.add_word(key, (len(key) - 1, tuple(anywhere), tuple(at_start)))
            automaton.make_automaton()
            self._automaton = automaton

    def match(self, normalized_text: str) -> list[T]:
        """Values of every rule matching `normalized_text`, in insertion order."""
        hits: list[int] = []
        if self._automaton is not None:
            for end, (last, anywhere, at_start) in self._automaton.iter(normalized_text):
                if anywhere:
                    hits += anywhere
                if at_start and end == last:
                    hits += at_start
        exact = self._exact.get(normalized_text)
        if exact:
            hits += exact
        if not hits:
            return []
        values = self._values
        if len(hits) == 1:
            return [values[hits[0]]]
        # A keyword occurring twice yields its ids twice: dedupe, then restore insertion order.
        return [values[i] for i in sorted(set(hits))]

    def first(self, normalized_text: str) -> T | None:
        """The earliest-added matching value, or None."""
        found = self.match(normalized_text)
        return found[0] if found else None

    def __len__(self) -> int:
        return len(self._values)

    def __bool__(self) -> bool:
        return bool(self._values)

    def __repr__(self) -> str:
        return f"KeywordMatcher({len(self._values)} rules)"


class RegexError(ValueError):
    """An admin regex RE2 cannot run; the message says why in plain words."""


# RE2's own messages are terse; these say what to change.
_RE2_HINTS = (
    ("invalid perl operator: (?=", "look-ahead (?=...) is not supported"),
    ("invalid perl operator: (?!", "negative look-ahead (?!...) is not supported"),
    ("invalid perl operator: (?<=", "look-behind (?<=...) is not supported"),
    ("invalid perl operator: (?<!", "negative look-behind (?<!...) is not supported"),
    ("invalid perl operator: (?>", "atomic groups (?>...) are not supported"),
    ("pattern too large", "pattern too large for the memory limit (simplify it or reduce repetition counts)"),
    ("invalid repetition size", "repetition count too large (at most {1000})"),
    ("missing )", "unbalanced parentheses: a '(' is never closed"),
    ("unexpected )", "unbalanced parentheses: a ')' has no matching '('"),
    ("missing ]", "a '[' character class is never closed"),
    ("invalid escape sequence: \\Z", "\\Z is not supported; use \\z for end of text"),
)


def _explain(raw: str) -> str:
    for needle, hint in _RE2_HINTS:
        if needle in raw:
            return f"{hint} ({raw})"
    if raw.startswith("invalid escape sequence: \\") and raw[-1:].isdigit():
        return f"backreferences like \\1 are not supported ({raw})"
    if raw.startswith("invalid named capture group"):
        return f"group names must be letters, digits and underscores ({raw})"
    return raw


class SafeRegex:
    """An admin-written regular expression compiled on RE2 (linear-time, memory-bounded).

    Patterns run on normalised text and ignore case, so ``VX`` also matches "vx".
    `search` returns the named groups of the first match (``{}`` when the pattern has none:
    compare with ``is not None``), so templates can use captured values.
    """

    __slots__ = ("_names", "_regex", "pattern")

    DEFAULT_MAX_MEM = 4 << 20  # bytes of RE2 program memory per pattern

    def __init__(self, pattern: str, regex: Any) -> None:
        self.pattern = pattern
        self._regex = regex
        self._names = tuple(regex.groupindex)

    @classmethod
    def compile(cls, pattern: str, *, max_mem: int = DEFAULT_MAX_MEM, ignore_case: bool = True) -> SafeRegex:
        if not isinstance(pattern, str) or not pattern:
            raise RegexError("empty regular expression")
        options = re2.Options()
        options.max_mem = max_mem
        options.log_errors = False  # we report the error ourselves, readably
        options.case_sensitive = not ignore_case
        try:
            regex = re2.compile(pattern, options)
        except re2.error as exc:
            raw = exc.args[0] if exc.args else str(exc)
            if isinstance(raw, bytes):
                raw = raw.decode("utf-8", "replace")
            raise RegexError(f"cannot use regex {pattern!r}: {_explain(str(raw))}") from None
        except UnicodeEncodeError:
            raise RegexError(f"cannot use regex {pattern!r}: it contains invalid characters") from None
        return cls(pattern, regex)

    @property
    def group_names(self) -> tuple[str, ...]:
        return self._names

    def search(self, text: str) -> dict[str, str] | None:
        """Named groups of the first match in `text` (unmatched groups are ""), or None."""
        try:
            found = self._regex.search(text)
        except UnicodeEncodeError:
            # Lone surrogates (normalize already replaces them; raw text may not).
            found = self._regex.search(text.encode("utf-8", "replace").decode("utf-8"))
        if found is None:
            return None
        if not self._names:
            return {}
        return {name: value or "" for name, value in found.groupdict().items()}

    def __repr__(self) -> str:
        return f"SafeRegex({self.pattern!r})"
