"""What the new-member rules need to know, kept in memory: when each member joined and how
many messages they have sent since, per group.

Fed by MembersJoined and messages; at start-up it is filled from the database (recent
joins and their message counts), so a restart does not make yesterday's newcomer an
established member. Members whose join the bot never saw are not tracked, and untracked
members count as established. Entries drop out once they could no longer be "new".
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import islice

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
    __slots__ = ("_cap", "_entries", "_max_age", "_max_messages")

    def __init__(self, max_age: timedelta, max_messages: int, cap: int = 200_000) -> None:
        # (group, member) -> join time and messages sent since, packed (see `_pack`), oldest
        # join first. A plain dict: an OrderedDict costs some 60 bytes more an entry, and
        # the oldest are dropped a tenth of `cap` at a time rather than one by one.
        self._entries: dict[tuple[str, str], int] = {}
        self._max_age = max_age
        self._max_messages = max_messages
        self._cap = cap

    def load(self, joins: list[RecentJoin]) -> None:
        for j in joins:
            self._entries[(j.group_id, j.member_id)] = _pack(j.joined_at, j.messages)

    def joined(self, group_id: str, member_id: str, at: datetime) -> None:
        key = (group_id, member_id)
        self._entries.pop(key, None)
        self._entries[key] = _pack(at, 0)
        if len(self._entries) > self._cap:
            for old in list(islice(self._entries, max(1, self._cap // 10))):
                del self._entries[old]

    def left(self, group_id: str, member_id: str) -> None:
        self._entries.pop((group_id, member_id), None)

    def observe(self, group_id: str, member_id: str, at: datetime) -> tuple[timedelta | None, int | None]:
        """(time since joining, messages before this one) for a member's new message, and
        count the message. (None, None) for a member whose join is unknown."""
        key = (group_id, member_id)
        entry = self._entries.get(key)
        if entry is None:  # most members: one lookup
            return None, None
        age = at - _joined(entry)
        sent = entry & _MAX_SENT
        if age >= self._max_age and sent >= self._max_messages:
            del self._entries[key]  # established for good
            return None, None
        if sent < _MAX_SENT:
            self._entries[key] = entry + 1
        return age, sent

    def peek(self, group_id: str, member_id: str) -> tuple[datetime, int] | None:
        entry = self._entries.get((group_id, member_id))
        return (_joined(entry), entry & _MAX_SENT) if entry is not None else None

    def __len__(self) -> int:
        return len(self._entries)
