"""关键词自动回复: rules that answer keywords in groups or private chat.

All plain keywords (exact / contains / prefix) of a config are compiled at load into one
multi-pattern matcher, so matching costs one pass over the message whatever the number of
rules. Regex rules run on RE2 (linear time: an admin's regex cannot hang the bot); a
pattern RE2 cannot run is a config error naming the rule.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import insort
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import count
from typing import Literal

from pydantic import Field, model_validator

from bot.core.context import Context, PluginHost
from bot.core.events import GroupMessage, PrivateMessage
from bot.core.matching import KeywordMatcher, RegexError, SafeRegex
from bot.core.plugin import Plugin, PluginConfig
from bot.core.templates import Template, TemplateError
from bot.core.text import normalize

BASE_PLACEHOLDERS = ("member", "group", "date", "time", "keyword")


class Rule(PluginConfig):
    name: str = ""
    keywords: list[str] = Field(default_factory=list)
    match: Literal["exact", "contains", "prefix", "regex"] = "exact"
    pattern: str | None = None  # for match: regex (RE2 syntax)
    replies: list[str] = Field(min_length=1)
    pick: Literal["random", "cycle"] = "random"
    # Where the rule applies: None = every group; a list of group ids / set:names; [] = no group.
    groups: list[str] | None = None
    private: bool = False
    cooldown_seconds: float = Field(0, ge=0)
    mention: bool = False
    priority: int = 0  # lower wins when several rules match one message

    @model_validator(mode="after")
    def _check(self) -> Rule:
        label = f"rule {self.name!r}" if self.name else "this rule"
        if self.match == "regex":
            if not self.pattern:
                raise ValueError(f"{label}: match: regex needs a pattern")
            try:
                regex = SafeRegex.compile(self.pattern)
            except RegexError as exc:
                raise ValueError(f"{label}: regex cannot run: {exc}") from None
            allowed = (*BASE_PLACEHOLDERS, *regex.group_names)
        else:
            if not [k for k in self.keywords if normalize(k)]:
                raise ValueError(f"{label}: needs at least one non-empty keyword")
            if self.pattern:
                raise ValueError(f"{label}: pattern is only for match: regex")
            allowed = BASE_PLACEHOLDERS
        for i, reply in enumerate(self.replies):
            try:
                Template.parse(reply, allowed)
            except TemplateError as exc:
                raise ValueError(f"{label}: replies[{i}]: {exc}") from None
        return self


class KeywordReplyConfig(PluginConfig):
    rules: list[Rule] = Field(default_factory=list)
    # Replies in one group are capped so a keyword storm cannot make the bot spam.
    max_replies_per_minute: int = Field(20, ge=1)


# A reply is only ever limited over the last minute.
_MINUTE = timedelta(minutes=1)


@dataclass
class CompiledRule:
    index: int
    rule: Rule
    templates: list[Template]
    group_ids: frozenset[str] | None  # None: every group
    regex: SafeRegex | None = None
    cursor: count = field(default_factory=count)
    # Derived once from `rule`, read on every message that matches it.
    rank: tuple[int, int] = field(init=False)  # lower wins: (priority, position in the config)
    private: bool = field(init=False)
    cooldown: timedelta | None = field(init=False)
    keyword: str = field(init=False)  # the {keyword} placeholder
    # For a regex rule: text every match contains ("" when none is known); a message
    # without it skips the regex.
    required: str = field(init=False, default="")

    def __post_init__(self) -> None:
        rule = self.rule
        self.rank = (rule.priority, self.index)
        self.private = rule.private
        self.cooldown = timedelta(seconds=rule.cooldown_seconds) if rule.cooldown_seconds else None
        self.keyword = rule.name or (rule.keywords[0] if rule.keywords else "")
        if self.regex is not None:
            self.required = required_literal(self.regex.pattern)

    def applies_to(self, group_id: str | None) -> bool:
        if group_id is None:
            return self.private
        return self.group_ids is None or group_id in self.group_ids


@dataclass
class CompiledRules:
    matcher: KeywordMatcher[CompiledRule]
    regex_rules: list[CompiledRule]  # best rank first


@dataclass
class _Stamp:
    """{date} and {time} for the minute of `lo` (wall clock, in `lo`'s timezone)."""

    lo: datetime
    hi: datetime
    date: str
    time: str


@dataclass
class KeywordState:
    host: PluginHost
    compiled: dict[int, CompiledRules]  # by id() of the resolved config
    last_fired: dict[tuple[int, int, str], datetime] = field(default_factory=dict)
    # Where → reply times within the last minute, oldest first.
    recent: dict[str, list[datetime]] = field(default_factory=dict)
    stamp: _Stamp | None = None

    def rules_for(self, config: KeywordReplyConfig) -> CompiledRules:
        return self.compiled[id(config)]

    def date_and_time(self, local: datetime) -> tuple[str, str]:
        """local.strftime("%Y-%m-%d"), local.strftime("%H:%M"), formatted once a minute.
        Datetimes sharing a tzinfo compare by wall-clock fields, the ones both formats
        read, so every `local` inside the cached minute formats the same."""
        stamp = self.stamp
        if stamp is None or stamp.lo.tzinfo is not local.tzinfo or not stamp.lo <= local < stamp.hi:
            lo = local.replace(second=0, microsecond=0)
            try:
                hi = lo + _MINUTE
            except OverflowError:  # the last minute there is: nothing to cache
                return local.strftime("%Y-%m-%d"), local.strftime("%H:%M")
            stamp = self.stamp = _Stamp(lo, hi, local.strftime("%Y-%m-%d"), local.strftime("%H:%M"))
        return stamp.date, stamp.time


# Characters RE2's case-insensitive matching leaves alone: ASCII other than letters, and
# letters, digits and punctuation of caseless scripts (CJK, kana, Hangul …). A literal made of
# them is found by a plain `in`, whatever the case options.
_CASELESS_CATEGORIES = frozenset({"Lo", "Nd", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po"})
# Escapes that are one atom of two characters: classes, anchors and control characters.
_SIMPLE_ESCAPES = frozenset("dDwWsSbBAzaftnrv")
_REPEAT = re.compile(r"\{\d+(?:,\d*)?\}")  # {n} {n,} {n,m}
_FLAGS = re.compile(r"\(\?[A-Za-z-]*\)")  # (?i) (?-s) …


def _caseless(char: str) -> bool:
    if char.isascii():
        return not char.isalpha()
    return unicodedata.category(char) in _CASELESS_CATEGORIES


def required_literal(pattern: str) -> str:
    """A piece of text every match of `pattern` contains ("" if none is found).

    Deliberately conservative: only runs of plain characters outside any group, class or
    alternation, none made optional by a quantifier, and only caseless characters; any
    syntax not understood here gives "" (no filtering)."""
    if "[:" in pattern or "\\Q" in pattern:
        return ""
    best = ""
    run: list[str] = []
    depth = 0
    i, n = 0, len(pattern)

    def close() -> None:
        nonlocal best, run
        if len(run) > len(best):
            best = "".join(run)
        run = []

    while i < n:
        c = pattern[i]
        if c == "\\":
            nxt = pattern[i + 1] if i + 1 < n else ""
            if depth == 0:
                close()
            if nxt in _SIMPLE_ESCAPES or (nxt.isascii() and not nxt.isalnum() and nxt):
                i += 2
                continue
            return ""  # \p{..}, \x{..}, octal, \C …: not worth understanding here
        if c == "[":  # a class: one atom, skipped
            if depth == 0:
                close()
            i += 1
            if i < n and pattern[i] == "^":
                i += 1
            if i < n and pattern[i] == "]":
                i += 1
            while i < n and pattern[i] != "]":
                i += 2 if pattern[i] == "\\" else 1
            if i >= n:
                return ""
            i += 1
            continue
        if c in "*+?{":
            # Repeats the atom before it: if that was the run's last character, it may be
            # missing (or repeated) in a match.
            if depth == 0 and run:
                run.pop()
                close()
            if c == "{":
                repeat = _REPEAT.match(pattern, i)
                if repeat is None:  # RE2 reads a "{" that starts no repeat as plain text
                    return ""
                i = repeat.end()
            else:
                i += 1
            continue
        if c == "(":
            flags = _FLAGS.match(pattern, i)
            if flags is not None:
                # "(?i)" sets flags and is no atom: a repeat after it applies to what came before.
                i = flags.end()
                continue
            if depth == 0:
                close()
            depth += 1
        elif c == ")":
            depth -= 1
            if depth < 0:
                return ""
        elif c == "|":
            if depth == 0:
                return ""  # a top-level alternative: no text is required
        elif depth == 0:
            if c in ".^$" or not _caseless(c):
                close()
            else:
                run.append(c)
        i += 1
    if depth != 0:
        return ""
    close()
    return best


def compile_rules(config: KeywordReplyConfig, resolve_groups) -> CompiledRules:  # type: ignore[no-untyped-def]
    entries = []
    regex_rules = []
    for index, rule in enumerate(config.rules):
        is_regex = rule.match == "regex"
        regex = SafeRegex.compile(rule.pattern) if is_regex and rule.pattern else None
        allowed = (*BASE_PLACEHOLDERS, *(regex.group_names if regex else ()))
        compiled = CompiledRule(
            index=index,
            rule=rule,
            templates=[Template.parse(r, allowed) for r in rule.replies],
            group_ids=frozenset(resolve_groups(rule.groups)) if rule.groups is not None else None,
            regex=regex,
        )
        if is_regex:
            regex_rules.append(compiled)
        else:
            entries.extend((kw, rule.match, compiled) for kw in rule.keywords if normalize(kw))
    # The best-ranked regex that matches wins: trying them best first, the first match ends it.
    regex_rules.sort(key=lambda r: r.rank)
    return CompiledRules(KeywordMatcher(entries), regex_rules)


plugin = Plugin(
    "keyword_reply",
    title="关键词回复",
    aliases=("自动回复", "关键词", "关键字", "回复"),
    config=KeywordReplyConfig,
    priority=60,
    description="按关键词自动回复，支持精确/包含/前缀/正则匹配",
)


@plugin.state
async def _state(host: PluginHost) -> KeywordState:
    config = host.services.config
    compiled = {id(cfg): compile_rules(cfg, config.groups_in) for cfg in host.settings.configs()}  # type: ignore[arg-type]
    return KeywordState(host, compiled)


@plugin.on(GroupMessage, PrivateMessage)
async def reply(
    event: GroupMessage | PrivateMessage, ctx: Context, config: KeywordReplyConfig, state: KeywordState
) -> bool:
    if not event.text:
        return False
    group_id = event.group_id if isinstance(event, GroupMessage) else None
    text = ctx.text
    if not text:
        return False
    best, captures = best_rule(state.compiled[id(config)], text, group_id)
    if best is None:
        return False
    now = ctx.now()
    if not _may_fire(state, config, best, group_id or f"pm:{event.sender.id}", now):
        return True  # matched but cooling down: still handled, so nothing else answers it
    rule = best.rule
    template = (
        best.templates[next(best.cursor) % len(best.templates)]
        if rule.pick == "cycle"
        else ctx.services.rng.choice(best.templates)
    )
    if len(template.parts) == 1:  # no placeholders (most replies): nothing to look up
        text = template.parts[0]
    else:
        day, clock = state.date_and_time(now.astimezone(ctx.clock.tz))
        values: dict[str, object] = {
            "member": event.sender.display,
            "group": ctx.services.groups.display_name(group_id, getattr(event, "group_topic", "")) if group_id else "",
            "date": day,
            "time": clock,
            "keyword": best.keyword,
            **captures,
        }
        text = template.render(values)
    ctx.reply(text, mention=rule.mention and group_id is not None)
    return True


def best_rule(rules: CompiledRules, text: str, group_id: str | None) -> tuple[CompiledRule | None, dict[str, str]]:
    """The rule that answers the normalised `text` here (best rank wins), with a regex's
    named captures. The handler and the console's 试一试 both ask this."""
    best: CompiledRule | None = None
    for candidate in rules.matcher.match(text):
        if (best is None or candidate.rank < best.rank) and candidate.applies_to(group_id):
            best = candidate
    captures: dict[str, str] = {}
    for candidate in rules.regex_rules:
        if best is not None and candidate.rank > best.rank:
            break  # the rest rank lower still
        if not candidate.applies_to(group_id) or (candidate.required and candidate.required not in text):
            continue
        assert candidate.regex is not None
        found = candidate.regex.search(text)
        if found is not None:
            best, captures = candidate, found
            break
    return best, captures


def _may_fire(state: KeywordState, config: KeywordReplyConfig, rule: CompiledRule, where: str, now: datetime) -> bool:
    key = (id(config), rule.index, where)
    cooldown = rule.cooldown
    if cooldown is not None:
        last = state.last_fired.get(key)
        if last is not None and now - last < cooldown:
            return False
    window = state.recent.get(where)
    if window is None:
        window = state.recent[where] = []
    # Kept sorted, the replies older than a minute are a prefix.
    stale = 0
    for t in window:
        if now - t < _MINUTE:
            break
        stale += 1
    if stale:
        del window[:stale]
    if len(window) >= config.max_replies_per_minute:
        return False
    if not window or window[-1] <= now:
        window.append(now)
    else:  # the clock went back
        insort(window, now)
    state.last_fired[key] = now
    return True
