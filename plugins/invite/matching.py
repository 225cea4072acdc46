"""Which invite rule a private message or a friend request's greeting asks for. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.commands import trim_punctuation
from bot.core.matching import KeywordMatcher
from bot.core.text import normalize
from plugins.invite.config import InviteRule

_SEPARATORS = " :：,，、-—"


@dataclass(frozen=True, slots=True)
class RuleMatch:
    rule: InviteRule
    keyword: str  # as configured
    phrase: str  # "进群", "加群 读书": what the source is named after

    @property
    def source(self) -> str:
        return f"keyword:{self.phrase}"


@dataclass(frozen=True, slots=True)
class ChooseTopic:
    """The keyword needs a topic and none (or an unknown one) was given."""

    keyword: str
    phrases: tuple[str, ...]
    asked: str = ""  # the topic asked for that no rule has (加群 游泳), "" when none was given


class InviteMatcher:
    def __init__(self, rules: list[InviteRule]) -> None:
        self._plain: dict[str, RuleMatch] = {}
        self._topics: dict[str, dict[str, RuleMatch]] = {}
        self._order: dict[str, int] = {}
        entries_prefix: list[tuple[str, str, str]] = []
        entries_contains: list[tuple[str, str, str]] = []
        for rule in rules:
            for keyword in rule.keywords:
                key = normalize(keyword)
                self._order.setdefault(key, len(self._order))
                if rule.topic:
                    phrase = f"{keyword} {rule.topic}"
                    self._topics.setdefault(key, {})[normalize(rule.topic)] = RuleMatch(rule, keyword, phrase)
                else:
                    self._plain[key] = RuleMatch(rule, keyword, keyword)
                entries_prefix.append((keyword, "prefix", key))
                entries_contains.append((keyword, "contains", key))
        self._prefix: KeywordMatcher[str] = KeywordMatcher(entries_prefix)
        self._contains: KeywordMatcher[str] = KeywordMatcher(entries_contains)

    def _keys(self, matcher: KeywordMatcher[str], text: str) -> list[str]:
        # Longest keyword first ("加群聊" before "加群"), then configuration order.
        return sorted(dict.fromkeys(matcher.match(text)), key=lambda k: (-len(k), self._order[k]))

    def private(self, text: str) -> RuleMatch | ChooseTopic | None:
        """A private message: the bare keyword, or the keyword followed by a topic."""
        folded = trim_punctuation(normalize(text))  # 【进群】, 进群！ as commands are read
        if not folded:
            return None
        if folded in self._plain:
            return self._plain[folded]
        for key in self._keys(self._prefix, folded):
            topics = self._topics.get(key)
            if not topics:
                continue
            rest = folded[len(key) :].strip(_SEPARATORS)
            if rest in topics:
                return topics[rest]
            return self._choose(key, rest)
        return None

    def greeting(self, text: str) -> RuleMatch | ChooseTopic | None:
        """A friend request's verification text: a keyword anywhere (and its topic, if any)."""
        folded = normalize(text)
        if not folded:
            return None
        for key in self._keys(self._contains, folded):
            topics = self._topics.get(key, {})
            after = folded[folded.find(key) + len(key) :]
            for topic, match in topics.items():
                if topic in after:
                    return match
            if key in self._plain:
                return self._plain[key]
            if topics:
                return self._choose(key)
        return None

    def _choose(self, key: str, asked: str = "") -> ChooseTopic:
        matches = list(self._topics[key].values())
        return ChooseTopic(matches[0].keyword, tuple(m.phrase for m in matches), asked)

    def topics(self) -> list[tuple[str, list[str]]]:
        """What a member can send: each plain keyword, and each keyword with its topics, in
        configuration order (for 帮助)."""
        by_key: dict[str, list[str]] = {m.keyword: [] for m in self._plain.values()}
        for topics in self._topics.values():
            for match in topics.values():
                by_key.setdefault(match.keyword, []).append(match.rule.topic)
        return list(by_key.items())
