"""The stats plugin's settings (`plugins.stats` in config/bot.yaml), also read by `qunbot stats`."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from bot.core.plugin import PluginConfig

_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class DigestConfig(PluginConfig):
    enabled: bool = True
    time: str = "09:00"  # local time (the configured timezone)

    @field_validator("time")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not _HHMM.match(value.strip()):
            raise ValueError(f"not a time of day: {value!r} (use HH:MM, e.g. 09:00)")
        return value.strip()

    @property
    def hour_minute(self) -> tuple[int, int]:
        hour, minute = self.time.split(":")
        return int(hour), int(minute)


class WeeklyDigestConfig(DigestConfig):
    weekday: Weekday = "mon"


class StatsConfig(PluginConfig):
    # Admin command words; `群数据 30` or `数据 30天` asks for the last 30 days.
    command_words: list[str] = Field(default_factory=lambda: ["群数据", "数据"], min_length=1)
    default_days: int = Field(7, ge=1, le=366)
    max_days: int = Field(90, ge=1, le=366)
    # A lurker: a member for at least this many days who posted nothing in this many days.
    lurk_days: int = Field(14, ge=1, le=365)
    # The active core: the fewest top posters who together sent this share of the messages.
    core_share: float = Field(0.5, gt=0, le=1)
    top: int = Field(3, ge=0, le=20)  # top posters named in summaries
    # Retention: "in group on day N" and "active within `active_window_days` from day N".
    retention_days: list[int] = Field(default_factory=lambda: [1, 7, 30], min_length=1, max_length=8)
    active_window_days: int = Field(7, ge=1, le=60)
    retention_lookback_days: int = Field(60, ge=1, le=366)  # summaries: cohorts of the last N days
    # Check-in rate without the check-in plugin's records: messages containing these words.
    checkin_words: list[str] = Field(default_factory=lambda: ["签到", "打卡"], min_length=1)
    daily_digest: DigestConfig = Field(default_factory=DigestConfig)
    weekly_digest: WeeklyDigestConfig = Field(default_factory=WeeklyDigestConfig)

    @field_validator("retention_days")
    @classmethod
    def _days(cls, value: list[int]) -> list[int]:
        if any(n < 0 or n > 365 for n in value):
            raise ValueError("retention days are between 0 and 365")
        return sorted(set(value))
