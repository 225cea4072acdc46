"""Account health: rate-limit errors, bans and disconnects of this bot account (issue 17).

Fed by the outbox with every platform call (`observe`), and by the platform's `connected`
flag where the adapter has one. It says whether the account is *in trouble*:
- `rate_limits` "too frequent" answers within `rate_limit_window` seconds;
- a send refused with a ban message (the platform's words: 封号, banned, ...);
- disconnected (sends fail with "not connected", or the adapter says so) for longer than
  `disconnected_for` seconds.
Trouble ends after `calm_for` seconds without a new problem (and once connected again).

It is logged (one warning when trouble starts, one with counts when it ends), told to the bot
admins, shown by the 账号状态 command, the web console and the daily admin digest, and, with
several accounts, published with the account lease (bot.cluster): an account in trouble hands its duties
over to healthy accounts in its groups (bot.cluster.balance) and keeps recording.

Core-level (the 账号状态 command and the digest read it): works with one account too, where
nothing is handed over. Its settings are `cluster.health`.
"""

from __future__ import annotations

import logging
import re
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from bot.core.clock import Clock
from bot.core.duty import AccountRow, OffDuty
from bot.core.platform import PlatformError, SendResult

if TYPE_CHECKING:
    from bot.core.context import Services

log = logging.getLogger("qunbot.health")

# The platform's words for a blocked account, and for a connection that is down (the Wechaty
# adapter raises "not connected to the puppet service (reconnecting)").
BAN_WORDS = re.compile(r"封号|封禁|被封|账号异常|限制登录|\bbanned\b|\bsuspended\b|account (?:is )?blocked", re.I)
DISCONNECT_WORDS = re.compile(r"not connected|reconnecting|logged out|未登录|掉线", re.I)


class HealthSettings(BaseModel):
    """`cluster.health`: when this account counts as in trouble."""

    model_config = ConfigDict(extra="forbid")

    # Three is when the outbox opens its circuit breaker (outbox.breaker_threshold).
    rate_limits: int = Field(3, ge=1)  # this many "too frequent" answers ...
    rate_limit_window: float = Field(600.0, gt=0)  # ... within this many seconds
    disconnected_for: float = Field(120.0, gt=0)  # disconnected longer than this
    calm_for: float = Field(900.0, ge=0)  # trouble ends this long after the last problem


@dataclass(frozen=True, slots=True)
class HealthReport:
    """What the 账号状态 command, the web console and the digest show."""

    account: str
    trouble: str | None
    since: datetime | None  # when the trouble started
    rate_limits_recent: int  # within the window
    counts: dict[str, int]  # since start: sent, rate_limited, banned, disconnected, failed
    last_problem: str | None
    last_problem_at: datetime | None
    connected: bool
    on_duty: int | None = None  # groups where it is on duty (several accounts), else None
    budget_left: int | None = None
    budget: int | None = None

    def text(self) -> str:
        """The account's state in one short Chinese paragraph."""
        state = f"⚠️ 异常：{self.trouble}" if self.trouble else "正常"
        lines = [f"账号 {self.account}：{state}"]
        if self.since is not None and self.trouble:
            lines.append(f"  异常开始于 {self.since.strftime('%m-%d %H:%M')}")
        c = self.counts
        lines.append(
            f"  启动以来：发送 {c.get('sent', 0)} · 限流 {c.get('rate_limited', 0)} · 封禁提示 {c.get('banned', 0)}"
            f" · 断线 {c.get('disconnected', 0)} · 其他失败 {c.get('failed', 0)}"
        )
        if self.budget is not None and self.budget_left is not None:
            lines.append(f"  本小时还可发送 {self.budget_left}/{self.budget} 条")
        if self.on_duty is not None:
            lines.append(f"  值班群数：{self.on_duty}")
        if not self.connected:
            lines.append("  当前未连接")
        if self.last_problem and self.last_problem_at is not None:
            lines.append(f"  最近问题（{self.last_problem_at.strftime('%m-%d %H:%M')}）：{self.last_problem[:80]}")
        return "\n".join(lines)


TroubleCallback = Callable[[str | None, "HealthReport"], None]


class AccountHealth:
    def __init__(
        self,
        account_id: str,
        settings: HealthSettings,
        clock: Clock,
        *,
        connected: Callable[[], bool | None] | None = None,
    ) -> None:
        self.account_id = account_id
        self.settings = settings
        self.clock = clock
        self._connected = connected or (lambda: None)
        self._rate_limits: deque[datetime] = deque(maxlen=settings.rate_limits)
        self.counts: Counter[str] = Counter()
        self._disconnected_since: datetime | None = None
        self._banned_at: datetime | None = None
        self._last_problem: str | None = None
        self._last_problem_at: datetime | None = None
        self._trouble: str | None = None
        self._trouble_since: datetime | None = None
        self._counts_at_start: Counter[str] = Counter()
        # Told when trouble starts (the reason) and ends (None): the app tells the bot admins.
        self.on_change: list[TroubleCallback] = []
        # Extra figures for the report (duty count, budget), set by the app.
        self.extra: Callable[[], dict[str, Any]] | None = None

    # --- input ---------------------------------------------------------------------------
    def observe(self, _item: object, result: SendResult | None, error: Exception | None) -> None:
        """One platform call by the outbox and how it went."""
        now = self.clock.now()
        if isinstance(error, OffDuty):
            return  # not a platform call
        if error is None and result is not None and result.ok:
            self.counts["sent"] += 1
            self._disconnected_since = None
            if self._trouble is not None:
                self.trouble()  # may be over
            return
        why = str(error if error is not None else (result.error if result else None) or "unknown error")
        rate_limited = (isinstance(error, PlatformError) and error.rate_limited) or (
            result is not None and result.rate_limited
        )
        if rate_limited:
            self.counts["rate_limited"] += 1
            self._rate_limits.append(now)
        elif BAN_WORDS.search(why):
            self.counts["banned"] += 1
            self._banned_at = now
        elif DISCONNECT_WORDS.search(why):
            self.counts["disconnected"] += 1
            if self._disconnected_since is None:
                self._disconnected_since = now
        else:
            self.counts["failed"] += 1
            return  # an ordinary failure (one group, one member) says nothing about the account
        self._last_problem, self._last_problem_at = why, now
        self.trouble()

    # --- state ---------------------------------------------------------------------------
    def _assess(self, now: datetime) -> str | None:
        s = self.settings
        # The adapter's flag, where it has one, is the truth; else failed sends tell.
        connected = self._connected()
        if connected is False and self._disconnected_since is None:
            self._disconnected_since = now
        elif connected is True:
            self._disconnected_since = None
        calm = timedelta(seconds=s.calm_for)
        if self._banned_at is not None and now - self._banned_at < calm:
            return "账号被封禁或受限（发送被拒：封号/受限提示）"
        if self._disconnected_since is not None and now - self._disconnected_since >= timedelta(
            seconds=s.disconnected_for
        ):
            minutes = (now - self._disconnected_since).total_seconds() / 60
            return f"已断线 {minutes:.0f} 分钟"
        window = timedelta(seconds=s.rate_limit_window)
        recent = [t for t in self._rate_limits if now - t < window]
        if len(recent) >= s.rate_limits:
            return f"{s.rate_limit_window / 60:g} 分钟内被限流 {len(recent)} 次"
        if self._trouble is not None and self._last_problem_at is not None and now - self._last_problem_at < calm:
            return self._trouble  # not calm for long enough yet
        return None

    def trouble(self) -> str | None:
        """Why the account is in trouble now, or None; logs and tells when that changes."""
        now = self.clock.now()
        trouble = self._assess(now)
        if (trouble is None) != (self._trouble is None):
            if trouble is not None:
                self._trouble_since = now
                self._counts_at_start = Counter(self.counts)
                log.warning(
                    "health: account %s is in trouble: %s (last: %s)", self.account_id, trouble, self._last_problem
                )
            else:
                during = self.counts - self._counts_at_start
                log.warning(
                    "health: account %s is healthy again after %.0f s (meanwhile: %s)",
                    self.account_id,
                    (now - (self._trouble_since or now)).total_seconds(),
                    ", ".join(f"{k} {v}" for k, v in sorted(during.items())) or "nothing",
                )
                self._trouble_since = None
            self._trouble = trouble
            report = self.report()
            for callback in list(self.on_change):
                try:
                    callback(trouble, report)
                except Exception:
                    log.exception("health: a trouble callback failed")
        elif trouble is not None:
            self._trouble = trouble  # the reason's wording may change (minutes)
        return trouble

    def report(self) -> HealthReport:
        now = self.clock.now()
        window = timedelta(seconds=self.settings.rate_limit_window)
        extra = self.extra() if self.extra is not None else {}
        return HealthReport(
            account=self.account_id,
            trouble=self._trouble,
            since=self._trouble_since,
            rate_limits_recent=sum(1 for t in self._rate_limits if now - t < window),
            counts=dict(self.counts),
            last_problem=self._last_problem,
            last_problem_at=self._last_problem_at,
            connected=self._connected() is not False and self._disconnected_since is None,
            on_duty=extra.get("on_duty"),
            budget_left=extra.get("budget_left"),
            budget=extra.get("budget"),
        )


@dataclass(frozen=True, slots=True)
class AccountsStatus:
    """This account's health and, with several accounts, every account's standing."""

    me: HealthReport | None
    roster: list[AccountRow]
    roster_error: str | None = None

    def text(self) -> str:
        lines = [self.me.text()] if self.me is not None else ["本账号没有健康记录。"]
        if self.roster:
            lines.append(f"共享数据库中的账号（{len(self.roster)} 个）：")
            for row in self.roster:
                state = "运行中" if row.running else "未运行"
                if row.trouble:
                    state += f"，异常：{row.trouble}"
                budget = f"，本小时还可发 {row.budget_left}/{row.budget}" if row.budget_left is not None else ""
                lines.append(f"  {row.account_id}：{state}，值班 {row.duties} 个群{budget}")
        elif self.roster_error:
            lines.append(f"读取其他账号失败：{self.roster_error}")
        return "\n".join(lines)


async def account_status(services: Services) -> AccountsStatus:
    """What the 账号状态 command, the web console's 账号 page and the admin digest show."""
    me = services.health.report() if services.health is not None else None
    if services.duty is None:
        return AccountsStatus(me, [])
    try:
        return AccountsStatus(me, await services.duty.roster())
    except Exception as exc:  # the database is away: still show this account
        return AccountsStatus(me, [], f"{type(exc).__name__}: {exc}")
