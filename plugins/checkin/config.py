"""Configuration of the check-in plugin (群签到 / 打卡): typed, unknown keys rejected,
templates checked against their placeholder lists when the config loads."""

from __future__ import annotations

from datetime import time
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from bot.core.commands import fold
from bot.core.plugin import PluginConfig
from bot.core.templates import template_type


def _hhmm(value: Any) -> Any:
    """ "HH:MM" → time. YAML 1.1 reads an unquoted 04:00 as the base-60 number 240 (minutes),
    so an int is taken as minutes after midnight: quoting is optional."""
    if isinstance(value, time):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value < 24 * 60:
            return time(value // 60, value % 60)
        raise ValueError(f'not a time of day: {value!r} (write it as "HH:MM")')
    if isinstance(value, str):
        hours, sep, minutes = value.strip().partition(":")
        if sep and hours.isdigit() and minutes.isdigit() and len(minutes) == 2:
            h, m = int(hours), int(minutes)
            if 0 <= h < 24 and 0 <= m < 60:
                return time(h, m)
    raise ValueError(f'not a time of day: {value!r} (write it as "HH:MM", e.g. "04:00")')


ClockTime = Annotated[time, BeforeValidator(_hhmm)]

SUCCESS_FIELDS = (
    "member",
    "rank",
    "streak",
    "longest",
    "points",
    "base",
    "bonus",
    "total",
    "days",
    "date",
    "time",
    "group",
    "bonus_note",
)
ALREADY_FIELDS = ("member", "rank", "streak", "longest", "total", "days", "date", "time", "group")
WINDOW_FIELDS = ("member", "start", "end", "time")
BONUS_FIELDS = ("streak", "bonus")
MY_POINTS_FIELDS = ("member", "total", "points_rank", "streak", "longest", "days", "today", "makeups_left")
MAKEUP_FIELDS = ("member", "date", "cost", "streak", "longest", "total", "used", "limit", "left", "points")
INVITE_FIELDS = ("inviter", "members", "points", "total")
MERGED_HEADER_FIELDS = ("date", "count", "group")
MERGED_LINE_FIELDS = ("member", "rank", "streak", "longest", "points", "base", "bonus", "total", "days", "time")
SUMMARY_FIELDS = ("date", "count", "group")

ReplyMode = Literal["each", "merged", "silent"]
# When `replies.summary_at` is not set, a silent group still gets its daily summary then.
SILENT_SUMMARY_AT = time(21, 0)


class StreakBonus(PluginConfig):
    """Extra points on a streak day: `every: 7` pays on days 7, 14, 21 …; `on_day: 30` pays
    once, on the 30th consecutive day (a milestone). Several rules may pay on the same day."""

    every: int | None = Field(None, ge=1)
    on_day: int | None = Field(None, ge=1)
    points: int = Field(ge=1, le=100_000)

    @model_validator(mode="after")
    def _one_kind(self) -> StreakBonus:
        if (self.every is None) == (self.on_day is None):
            raise ValueError("give exactly one of `every` (repeating) or `on_day` (a milestone)")
        return self

    def pays_on(self, streak: int) -> bool:
        if self.every is not None:
            return streak % self.every == 0
        return streak == self.on_day


class PointsRules(PluginConfig):
    base: int = Field(5, ge=0, le=100_000)  # every check-in
    # Plus a random 0..random_max (0: off); reproducible with the simulator's --seed.
    random_max: int = Field(0, ge=0, le=100_000)
    streak_bonuses: list[StreakBonus] = Field(
        default_factory=lambda: [StreakBonus(every=7, points=20), StreakBonus(on_day=30, points=100)]
    )


class ActivityPoints(PluginConfig):
    """Points for chatting: each counted message earns `points`, at most `daily_cap` a day.
    Commands and messages another plugin acted on (ads removed, …) never count."""

    enabled: bool = False
    points: int = Field(1, ge=1, le=1000)
    daily_cap: int = Field(10, ge=1, le=100_000)
    min_chars: int = Field(2, ge=0, le=1000)  # text shorter than this (after trimming) earns nothing
    min_interval_seconds: float = Field(30, ge=0, le=86_400)  # a burst of messages counts once
    # Counts are kept in memory and written this many seconds after the first unwritten point
    # (and on shutdown / before any query): a crash loses at most this much of them.
    flush_seconds: float = Field(2, ge=0.5, le=10)


class InvitePoints(PluginConfig):
    """Points for the inviter when someone joins through them; taken back if the newcomer
    leaves within `revoke_within_days`. Each newcomer pays an inviter once, ever."""

    enabled: bool = False
    points: int = Field(10, ge=1, le=100_000)
    revoke_within_days: float = Field(3, ge=0, le=365)
    # Said in the group when points are awarded; null: award silently.
    announce: template_type(*INVITE_FIELDS) | None = None  # type: ignore[valid-type]


class MakeupRules(PluginConfig):
    enabled: bool = True
    cost: int = Field(20, ge=0, le=100_000)
    monthly_limit: int = Field(2, ge=0, le=31)  # make-ups a member may buy per calendar month
    max_days_back: int = Field(7, ge=1, le=366)  # how far back a missed day may be made up
    # Whether a make-up day also earns the base check-in points (streak bonuses never).
    award_base: bool = False


class CheckinWindow(PluginConfig):
    """Check-in allowed only from `start` to `end` local time (may cross midnight)."""

    start: ClockTime
    end: ClockTime

    @model_validator(mode="after")
    def _not_empty(self) -> CheckinWindow:
        if self.start == self.end:
            raise ValueError("start and end are equal: the window would be empty")
        return self

    def contains(self, at: time) -> bool:
        at = at.replace(second=0, microsecond=0, tzinfo=None)
        if self.start < self.end:
            return self.start <= at < self.end
        return at >= self.start or at < self.end


class ReplySettings(PluginConfig):
    """How check-ins are answered in the group.

    - `each`: every check-in gets its own @-reply (a 200-member group: 200 messages a morning).
    - `merged` (default): one message per `window_seconds`, opened by the first check-in,
      listing who checked in with rank, streak and points (each @-mentioned); members who
      checked in again, were outside the check-in window, or whose check-in was held during
      a database outage are listed in the same message. A long list goes out as several
      messages of at most `max_lines` lines, each within the outbox's length cap.
    - `silent`: check-ins are not confirmed; only what did not get recorded (outside the
      check-in window, the outage queue full) is said, merged as above. The day's summary is
      posted at `summary_at` (21:00 when not set).
    `summary_at` also gives `each` and `merged` groups a daily summary."""

    mode: ReplyMode = "merged"
    window_seconds: float = Field(60, ge=1, le=3600)
    max_lines: int = Field(20, ge=3, le=100)
    summary_at: ClockTime | None = None

    @property
    def summary_time(self) -> time | None:
        if self.summary_at is not None:
            return self.summary_at
        return SILENT_SUMMARY_AT if self.mode == "silent" else None


class CommandWords(PluginConfig):
    """Words of the query and admin commands (the check-in words are `keywords`)."""

    my_points: list[str] = Field(default_factory=lambda: ["我的积分", "查积分"])
    today_board: list[str] = Field(default_factory=lambda: ["签到榜", "今日签到"])
    streak_board: list[str] = Field(default_factory=lambda: ["连续签到榜", "连签榜"])
    points_board: list[str] = Field(default_factory=lambda: ["积分榜", "积分排行"])
    calendar: list[str] = Field(default_factory=lambda: ["我的签到", "签到日历"])
    history: list[str] = Field(default_factory=lambda: ["积分明细"])
    makeup: list[str] = Field(default_factory=lambda: ["补签"])
    add_points: list[str] = Field(default_factory=lambda: ["加分"])
    deduct_points: list[str] = Field(default_factory=lambda: ["扣分"])
    admin_makeup: list[str] = Field(default_factory=lambda: ["代补签"])


class CheckinTexts(PluginConfig):
    success: template_type(*SUCCESS_FIELDS) = (  # type: ignore[valid-type]
        "✅ 签到成功！今日第{rank}位\n🔥 连续签到 {streak} 天（最长 {longest} 天）\n"
        "💰 获得 {points} 积分，共 {total} 积分{bonus_note}"
    )
    bonus_note: template_type(*BONUS_FIELDS) = "\n🎁 连续签到 {streak} 天奖励 {bonus} 积分！"  # type: ignore[valid-type]
    already: template_type(*ALREADY_FIELDS) = (  # type: ignore[valid-type]
        "今天已经签到过啦（今日第{rank}位），明天再来吧～\n🔥 连续签到 {streak} 天，共 {total} 积分"
    )
    outside_window: template_type(*WINDOW_FIELDS) = (  # type: ignore[valid-type]
        "⏰ 签到时间是每天 {start}–{end}，现在 {time} 不能签到哦～"
    )
    my_points: template_type(*MY_POINTS_FIELDS) = (  # type: ignore[valid-type]
        "💰 {member}：{total} 积分（第{points_rank}名）\n🔥 连续签到 {streak} 天，最长 {longest} 天，"
        "累计 {days} 天\n📌 今天{today}，本月还可补签 {makeups_left} 次"
    )
    makeup_success: template_type(*MAKEUP_FIELDS) = (  # type: ignore[valid-type]
        "🔄 补签成功：{date}（消耗 {cost} 积分，本月已补签 {used}/{limit} 次）\n"
        "🔥 连续签到 {streak} 天，剩余 {total} 积分"
    )
    # While the database is unreachable: the check-in is held and done when it is back
    # (with the time it was sent), and the member then gets the usual reply after `held_done`.
    held: str = "⏳ 数据库暂时连不上，你的签到已记下（按现在的时间算），恢复后自动补上并告诉你结果。"
    held_again: str = "⏳ 你的签到已经记下了，数据库恢复后自动补上。"
    held_done: str = "⏳ 刚才记下的签到已补上：\n"
    # Merged replies (`replies.mode: merged`): a header, then one line per check-in; the
    # member is @-mentioned (or named, with `mention: false`) at the start of the line.
    merged_header: template_type(*MERGED_HEADER_FIELDS) = "✅ {date}签到（{count} 人）："  # type: ignore[valid-type]
    merged_line: template_type(*MERGED_LINE_FIELDS) = (  # type: ignore[valid-type]
        "{member} 第{rank}位，连续 {streak} 天，+{points} 积分（共 {total}）"
    )
    merged_bonus: template_type(*BONUS_FIELDS) = " 🎁连签 {streak} 天奖励 {bonus}"  # type: ignore[valid-type]
    # Then the members, after these headings.
    merged_already: str = "今天已经签到过："
    merged_outside: template_type("start", "end") = "⏰ 不在签到时间（每天 {start}–{end}），没有记上："  # type: ignore[valid-type]
    merged_held: str = "⏳ 数据库暂时连不上，这些签到已记下，恢复后自动补上："
    merged_not_held: str = "⚠️ 数据库暂时连不上，这些签到没有记下，请过几分钟再发一次："
    # The daily summary (`replies.summary_at`), followed by the earliest check-ins and the longest streaks.
    summary: template_type(*SUMMARY_FIELDS) = "📋 {date}签到小结：共 {count} 人签到"  # type: ignore[valid-type]


class CheckinConfig(PluginConfig):
    keywords: list[str] = Field(default_factory=lambda: ["签到", "打卡"])
    # The business day starts at this local time (configured timezone), e.g. "04:00": a
    # check-in at 01:30 still counts for the evening before.
    day_starts_at: ClockTime = time(0, 0)
    window: CheckinWindow | None = None
    mention: bool = True  # @-mention the member in personal replies (and in merged ones)
    replies: ReplySettings = Field(default_factory=ReplySettings)
    points: PointsRules = Field(default_factory=PointsRules)
    activity: ActivityPoints = Field(default_factory=ActivityPoints)
    invite: InvitePoints = Field(default_factory=InvitePoints)
    makeup: MakeupRules = Field(default_factory=MakeupRules)
    top_n: int = Field(10, ge=1, le=50)  # leaderboard length
    # A leaderboard is shown at most once per this many seconds per group (boards are long,
    # and a flood of them gets an account flagged); repeats within it are ignored.
    board_cooldown_seconds: float = Field(30, ge=0, le=3600)
    # The most an admin may add or deduct in one command (a typo guard).
    admin_max_points: int = Field(10_000, ge=1, le=10_000_000)
    words: CommandWords = Field(default_factory=CommandWords)
    texts: CheckinTexts = Field(default_factory=CheckinTexts)

    @model_validator(mode="after")
    def _words_distinct(self) -> CheckinConfig:
        if not [k for k in self.keywords if k.strip()]:
            raise ValueError("keywords: at least one check-in word is needed")
        seen: dict[str, str] = {}
        lists = {"keywords": self.keywords, **{f"words.{k}": v for k, v in self.words.model_dump().items()}}
        for where, words in lists.items():
            for word in words:
                if not word.strip():
                    continue
                if any(c.isspace() for c in word.strip()):
                    raise ValueError(f"{where}: {word!r}: a command word cannot contain spaces")
                key = fold(word)
                if key in seen and seen[key] != where:
                    raise ValueError(f"{where}: {word!r} is already used by {seen[key]}")
                seen[key] = where
        return self
