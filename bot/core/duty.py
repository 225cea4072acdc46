"""The hook through which the core asks who acts in a group (several accounts, DESIGN §6).

The core defines the interface; `bot.cluster.ClusterDuty` implements it on PostgreSQL, and the
composition root plugs it in. Without it (one account: the default, and always on SQLite) the
dispatcher and the outbox make no check at all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from bot.core.events import Event


@dataclass(frozen=True, slots=True)
class AccountRow:
    """One bot account sharing the database, as the 账号状态 command and the web console show it."""

    account_id: str
    running: bool  # its lease holds
    budget_left: int | None
    budget: int | None
    trouble: str | None
    duties: int  # groups where it is on duty now


class DutyGate(Protocol):
    async def acts_in(self, event: Event) -> bool:
        """Whether this account handles `event`; if not, it is only recorded (another account
        is on duty in its group). Answered from memory on the ordinary path."""
        ...

    def on_duty(self, group_id: str) -> bool:
        """Whether this account is on duty in `group_id` now (from memory): for work that starts
        on its own, such as a scheduled broadcast, rather than from an event."""
        ...

    def token(self, group_id: str) -> int | None:
        """The fencing token an action queued now for `group_id` carries (None: not on duty)."""
        ...

    async def may_act(self, group_id: str, token: int | None) -> bool:
        """Checked right before an action reaches the platform: does `token` still hold?"""
        ...

    def on_duty_gained(self, callback: Callable[[str, int], Awaitable[None]]) -> Callable[[], None]:
        """Call `callback(group_id, token)` each time this account takes a group's duty, so work
        that fell due while nobody held it (a broadcast) is done late rather than never.
        Returns a function that unsubscribes."""
        ...

    async def roster(self) -> list[AccountRow]:
        """Every account registered in the shared database, with its standing and duty count."""
        ...


class OffDuty(Exception):
    """An action refused at the last moment: another account is on duty in the group now."""
