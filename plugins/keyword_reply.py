"""关键词自动回复: rules that answer keywords in groups or private chat.

All plain keywords (exact / contains / prefix) of a config are compiled at load into one
multi-pattern matcher, so matching costs one pass over the message whatever the number of
rules. Regex rules run on RE2 (linear time: an admin's regex cannot hang the bot); a
pattern RE2 cannot run is a config error naming the rule.
"""

from __future__ import annotations

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


@dataclass
class CompiledRule:
    index: int
    rule: Rule
    templates: list[Template]
    group_ids: frozenset[str] | None  # None: every group
    regex: SafeRegex | None = None
    cursor: count = field(default_factory=count)

    def applies_to(self, group_id: str | None) -> bool:
        if group_id is None:
            return self.rule.private
        return self.group_ids is None or group_id in self.group_ids


@dataclass
class CompiledRules:
    matcher: KeywordMatcher[CompiledRule]
    regex_rules: list[CompiledRule]


@dataclass
class KeywordState:
    host: PluginHost
    compiled: dict[int, CompiledRules]  # by id() of the resolved config
    last_fired: dict[tuple[int, int, str], datetime] = field(default_factory=dict)
    recent: dict[str, list[datetime]] = field(default_factory=dict)

    def rules_for(self, config: KeywordReplyConfig) -> CompiledRules:
        return self.compiled[id(config)]


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
    return CompiledRules(KeywordMatcher(entries), regex_rules)


plugin = Plugin("keyword_reply", title="关键词回复", config=KeywordReplyConfig, priority=60,
                description="按关键词自动回复，支持精确/包含/前缀/正则匹配")


@plugin.state
async def _state(host: PluginHost) -> KeywordState:
    config = host.services.config
    compiled = {id(cfg): compile_rules(cfg, config.groups_in) for cfg in host.settings.configs()}  # type: ignore[arg-type]
    return KeywordState(host, compiled)


@plugin.on(GroupMessage, PrivateMessage)
async def reply(event: GroupMessage | PrivateMessage, ctx: Context, config: KeywordReplyConfig,
                state: KeywordState) -> bool:
    if not event.text:
        return False
    group_id = event.group_id if isinstance(event, GroupMessage) else None
    rules = state.rules_for(config)
    text = ctx.text
    if not text:
        return False
    best: CompiledRule | None = None
    for candidate in rules.matcher.match(text):
        if candidate.applies_to(group_id) and (best is None or _rank(candidate) < _rank(best)):
            best = candidate
    captures: dict[str, str] = {}
    for candidate in rules.regex_rules:
        if best is not None and _rank(candidate) > _rank(best):
            continue
        if not candidate.applies_to(group_id):
            continue
        assert candidate.regex is not None
        found = candidate.regex.search(text)
        if found is not None and (best is None or _rank(candidate) < _rank(best)):
            best, captures = candidate, found
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
    local = now.astimezone(ctx.clock.tz)
    values: dict[str, object] = {
        "member": event.sender.display,
        "group": ctx.services.groups.display_name(group_id, getattr(event, "group_topic", "")) if group_id else "",
        "date": local.strftime("%Y-%m-%d"),
        "time": local.strftime("%H:%M"),
        "keyword": rule.name or (rule.keywords[0] if rule.keywords else ""),
        **captures,
    }
    ctx.reply(template.render(values), mention=rule.mention and group_id is not None)
    return True


def _rank(rule: CompiledRule) -> tuple[int, int]:
    return (rule.rule.priority, rule.index)


def _may_fire(state: KeywordState, config: KeywordReplyConfig, rule: CompiledRule, where: str, now: datetime) -> bool:
    key = (id(config), rule.index, where)
    cooldown = rule.rule.cooldown_seconds
    last = state.last_fired.get(key)
    if cooldown and last is not None and now - last < timedelta(seconds=cooldown):
        return False
    window = [t for t in state.recent.get(where, ()) if now - t < timedelta(minutes=1)]
    if len(window) >= config.max_replies_per_minute:
        state.recent[where] = window
        return False
    window.append(now)
    state.recent[where] = window
    state.last_fired[key] = now
    return True
