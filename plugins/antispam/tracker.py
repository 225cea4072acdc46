"""What the new-member rules need to know, kept in memory: when each member joined and how
many messages they have sent since, per group.

Fed by MembersJoined and messages; at start-up it is filled from the database (recent
joins and their message counts), so a restart does not make yesterday's newcomer an
established member. Members whose join the bot never saw are not tracked, and untracked
members count as established. Entries drop out once they could no longer be "new".
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta

from .store import RecentJoin


class MemberTracker:
    __slots__ = ("_cap", "_entries", "_max_age", "_max_messages")

    def __init__(self, max_age: timedelta, max_messages: int, cap: int = 200_000) -> None:
        # (group, member) -> [joined_at, messages sent since]
        self._entries: OrderedDict[tuple[str, str], list[datetime | int]] = OrderedDict()
        self._max_age = max_age
        self._max_messages = max_messages
        self._cap = cap

    def load(self, joins: list[RecentJoin]) -> None:
        for j in joins:
            self._entries[(j.group_id, j.member_id)] = [j.joined_at, j.messages]

    def joined(self, group_id: str, member_id: str, at: datetime) -> None:
        key = (group_id, member_id)
        self._entries.pop(key, None)
        self._entries[key] = [at, 0]
        if len(self._entries) > self._cap:
            self._entries.popitem(last=False)

    def left(self, group_id: str, member_id: str) -> None:
        self._entries.pop((group_id, member_id), None)

    def observe(self, group_id: str, member_id: str, at: datetime) -> tuple[timedelta | None, int | None]:
        """(time since joining, messages before this one) for a member's new message, and
        count the message. (None, None) for a member whose join is unknown."""
        entry = self._entries.get((group_id, member_id))
        if entry is None:  # most members: one lookup
            return None, None
        joined_at, sent = entry
        age = at - joined_at  # type: ignore[operator]
        if age >= self._max_age and sent >= self._max_messages:  # type: ignore[operator]
            del self._entries[(group_id, member_id)]  # established for good
            return None, None
        entry[1] = sent + 1  # type: ignore[operator]
        return age, sent  # type: ignore[return-value]

    def peek(self, group_id: str, member_id: str) -> tuple[datetime, int] | None:
        entry = self._entries.get((group_id, member_id))
        return (entry[0], entry[1]) if entry else None  # type: ignore[return-value]

    def __len__(self) -> int:
        return len(self._entries)
