"""What the new-member rules need to know, kept in memory: when each member joined and how
many messages they have sent since, per group.

Fed by MembersJoined and messages; at start-up it is filled from the database (recent
joins and their message counts), so a restart does not make yesterday's newcomer an
established member. Members whose join the bot never saw are not tracked, and untracked
members count as established. Entries drop out once they could no longer be "new".
"""

from __future__ import annotations

import heapq
from datetime import UTC, datetime, timedelta

from .store import RecentJoin

# An entry is one int, (microseconds since the epoch of the join) << _BITS | messages sent:
# a [datetime, count] list costs some 100 bytes more, over up to `cap` members.
_BITS = 20
_MAX_SENT = (1 << _BITS) - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def _pack(joined_at: datetime, sent: int) -> int:
    return ((joined_at - _EPOCH) // _US) << _BITS | min(sent, _MAX_SENT)


def _joined(entry: int) -> datetime:
    return _EPOCH + timedelta(microseconds=entry >> _BITS)


class MemberTracker:
    __slots__ = ("_cap", "_entries", "_max_age", "_max_messages", "_size")

    def __init__(self, max_age: timedelta, max_messages: int, cap: int = 200_000) -> None:
        # group -> member -> join time and messages sent since, packed (see `_pack`). Per group
        # rather than keyed by (group, member): a key tuple costs 56 bytes for each of up to
        # `cap` members. Past the cap the oldest joins are dropped, a tenth of `cap` at a time.
        self._entries: dict[str, dict[str, int]] = {}
        self._size = 0
        self._max_age = max_age
        self._max_messages = max_messages
        self._cap = cap

    def load(self, joins: list[RecentJoin]) -> None:
        for j in joins:
            self._put(j.group_id, j.member_id, _pack(j.joined_at, j.messages))

    def _put(self, group_id: str, member_id: str, entry: int) -> None:
        members = self._entries.get(group_id)
        if members is None:
            members = self._entries[group_id] = {}
        if members.pop(member_id, None) is None:
            self._size += 1
        members[member_id] = entry

    def _drop(self, group_id: str, members: dict[str, int], member_id: str) -> None:
        del members[member_id]
        self._size -= 1
        if not members:
            del self._entries[group_id]

    def joined(self, group_id: str, member_id: str, at: datetime) -> None:
        self._put(group_id, member_id, _pack(at, 0))
        if self._size > self._cap:
            self._drop_oldest(max(1, self._cap // 10))

    def _drop_oldest(self, count: int) -> None:
        # One pass over every entry, once per `cap // 10` joins: the join time is the high bits.
        oldest = heapq.nsmallest(
            count, ((entry, g, m) for g, members in self._entries.items() for m, entry in members.items())
        )
        for _entry, group_id, member_id in oldest:
            self._drop(group_id, self._entries[group_id], member_id)

    def left(self, group_id: str, member_id: str) -> None:
        members = self._entries.get(group_id)
        if members is not None and member_id in members:
            self._drop(group_id, members, member_id)

    def observe(self, group_id: str, member_id: str, at: datetime) -> tuple[timedelta | None, int | None]:
        """(time since joining, messages before this one) for a member's new message, and
        count the message. (None, None) for a member whose join is unknown."""
        members = self._entries.get(group_id)
        entry = members.get(member_id) if members is not None else None
        if entry is None:  # most members: one or two lookups
            return None, None
        assert members is not None
        age = at - _joined(entry)
        sent = entry & _MAX_SENT
        if age >= self._max_age and sent >= self._max_messages:
            self._drop(group_id, members, member_id)  # established for good
            return None, None
        if sent < _MAX_SENT:
            members[member_id] = entry + 1
        return age, sent

    def peek(self, group_id: str, member_id: str) -> tuple[datetime, int] | None:
        members = self._entries.get(group_id)
        entry = members.get(member_id) if members is not None else None
        return (_joined(entry), entry & _MAX_SENT) if entry is not None else None

    def __len__(self) -> int:
        return self._size
