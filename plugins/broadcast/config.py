"""The broadcast plugin's YAML section::

broadcast:
  default_grace: 10m
  broadcasts:
    morning:                       # a name: letters first (numbers are chat-made ids)
      cron: "0 8 * * 1-5"          # or  every: 2h (+ start: "2026-12-01 08:00")
                                   # or  at: "2026-12-24 20:00"   or  when: 每天08:00
      to: [g1, set:learning]       # or  to: all
      messages: ["早上好！今天是{date} {weekday}"]
      grace: 15m
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, field_validator, model_validator

from bot.config.refs import GroupRefs
from bot.core.plugin import PluginConfig
from bot.core.scheduler import cron_trigger
from bot.core.templates import template_type
from bot.core.timeparse import parse_duration
from plugins.broadcast.schedule import (
    DEFAULT_MIN_INTERVAL,
    Schedule,
    SpecError,
    local_datetime,
    parse_when,
    require_min_interval,
)
from plugins.broadcast.syntax import ALL, target_values

# Values rendered for the occurrence (its local date and time), per target group.
PLACEHOLDERS = ("date", "time", "weekday", "group", "year", "month", "day")
MessageText = template_type(*PLACEHOLDERS)

_NAME = re.compile(r"[^\W\d][\w\-]*")
_LOCAL = re.compile(
    r"(?P<y>\d{4})[-/.](?P<mo>\d{1,2})[-/.](?P<d>\d{1,2})[ T]+(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2}))?"
    r"\s*(?P<tz>Z|[+-]\d{2}:?\d{2})?"
)


def _duration(value: object) -> timedelta:
    try:
        return parse_duration(value)
    except SpecError as exc:
        raise ValueError(str(exc)) from None


Duration = Annotated[timedelta, BeforeValidator(_duration)]


def _local_iso(value: object) -> str:
    """A date-time written in YAML → ISO text; without an offset it is local time in the
    configured timezone (applied when the schedule is built)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        raise ValueError("needs a time of day too, e.g. 2026-12-24 20:00")
    match = _LOCAL.fullmatch(str(value).strip())
    if match is None:
        raise ValueError(f"not a date-time: {value!r} (write e.g. 2026-12-24 20:00)")
    parts = {k: int(v) for k, v in match.groupdict().items() if v and k != "tz"}
    try:
        day = date(parts["y"], parts["mo"], parts["d"])
        clock = time(parts["h"], parts["mi"], parts.get("s", 0))
    except ValueError as exc:
        raise ValueError(f"{value!r}: {exc}") from None
    text = f"{day.isoformat()}T{clock.isoformat()}"
    offset = match.group("tz")
    if offset:
        text += "+00:00" if offset == "Z" else (offset if ":" in offset else f"{offset[:3]}:{offset[3:]}")
    return text


LocalDateTime = Annotated[str, BeforeValidator(_local_iso)]


def _targets(value: object) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ValueError("list the groups: group ids, set:name, or all")
    out: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise ValueError("each target is a group id, set:name, or all")
        for selector in target_values(item):
            if selector == "here":
                raise ValueError("本群/here only makes sense in chat; name the group")
            if selector not in out:
                out.append(selector)
    return out


def _name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"broadcast name {name!r}: start with a letter; use letters, digits, _ or - "
            "(plain numbers are the ids of broadcasts made in chat)"
        )
    return name


BroadcastName = Annotated[str, AfterValidator(_name)]


class BroadcastEntry(PluginConfig):
    """One broadcast from YAML. Exactly one of cron / every / at / when."""

    cron: str | None = None
    every: Duration | None = None
    start: LocalDateTime | None = None  # the first occurrence of `every` (default: local midnight)
    at: LocalDateTime | None = None
    when: str | None = None  # the chat syntax: 每天08:00, 工作日 9点, 每周一三五 20:00 …
    to: Annotated[list[str], BeforeValidator(_targets), GroupRefs(keywords=(ALL,))]
    messages: list[MessageText] = Field(default_factory=list)  # type: ignore[valid-type]
    text: MessageText | None = None  # type: ignore[valid-type]  # shorthand for one message
    grace: Duration | None = None  # default: the plugin's default_grace

    @field_validator("cron")
    @classmethod
    def _cron_parses(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                cron_trigger(value, _UTC)
            except ValueError as exc:
                raise ValueError(f"not a cron expression (minute hour day month weekday): {exc}") from None
        return value

    @field_validator("when")
    @classmethod
    def _when_parses(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_when(value, _UTC)
            except SpecError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("every")
    @classmethod
    def _every_positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value < timedelta(minutes=1):
            raise ValueError("must be at least 1m")
        return value

    @model_validator(mode="after")
    def _one_schedule_and_some_content(self) -> BroadcastEntry:
        given = [k for k in ("cron", "every", "at", "when") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of cron, every, at, when" + (f" (got {', '.join(given)})" if given else "")
            )
        if self.start is not None and self.every is None:
            raise ValueError("start only goes with every")
        if not self.messages and not self.text:
            raise ValueError("give the content: messages: [...] or text: ...")
        if ALL in self.to and len(self.to) > 1:
            raise ValueError("to: all already means every group")
        return self

    def all_messages(self) -> list[str]:
        return [*([self.text] if self.text else []), *self.messages]

    def schedule(self, tz: tzinfo) -> Schedule:
        if self.cron is not None:
            return Schedule(kind="cron", cron=self.cron, label=f"cron {self.cron}")
        if self.every is not None:
            start = self.start or _LOCAL_EPOCH
            seconds = int(self.every.total_seconds())
            return Schedule(kind="interval", every_seconds=seconds, start=start, label="")
        if self.at is not None:
            return Schedule(kind="date", at=self.at, label=local_datetime(self.at, tz).strftime("%Y-%m-%d %H:%M"))
        assert self.when is not None
        return parse_when(self.when, tz)


# `every` without `start` counts from a fixed local midnight, so `every: 2h` fires at even
# hours and every process computes the same occurrences.
_LOCAL_EPOCH = "2000-01-01T00:00:00"


class BroadcastConfig(PluginConfig):
    # A broadcast that fell due while the bot was down is sent when the bot is back within
    # this long after its time, and recorded as missed otherwise (per broadcast: `grace`).
    default_grace: Duration = timedelta(minutes=10)
    # How far back start-up looks for occurrences that fell due while the bot was down.
    catch_up_limit: Duration = timedelta(days=7)
    # No broadcast, from YAML or chat, cron included, may send more often than this: a
    # schedule with a shorter gap anywhere (cron "* * * * *", 每2分钟, every: 1m) is refused.
    min_interval: Duration = DEFAULT_MIN_INTERVAL
    broadcasts: dict[BroadcastName, BroadcastEntry] = Field(default_factory=dict)

    @field_validator("min_interval")
    @classmethod
    def _min_interval_floor(cls, value: timedelta) -> timedelta:
        if value < timedelta(minutes=1):
            raise ValueError("must be at least 1m (a cron fires at most once a minute anyway)")
        return value

    @field_validator("broadcasts")
    @classmethod
    def _no_flood(cls, value: dict[str, BroadcastEntry], info: ValidationInfo) -> dict[str, BroadcastEntry]:
        minimum = info.data.get("min_interval", DEFAULT_MIN_INTERVAL)  # absent when itself invalid
        for name, entry in value.items():
            try:
                require_min_interval(entry.schedule(_UTC), minimum)
            except SpecError as exc:
                raise ValueError(f"{name}: {exc} (see min_interval)") from None
        return value


# Schedules are validated at load before the configured timezone is applied.
_UTC = UTC
