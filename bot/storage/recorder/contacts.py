"""Which contacts need a row: the ones this recorder has not written lately under that name."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

# A contact's last_seen is refreshed at most this often by chat messages: rewriting every
# sender's row in every batch would double the rows a batch writes, for a figure nothing
# needs to the second (the event log and the daily rollup have the exact times).
CONTACT_REFRESH = timedelta(hours=1)
_REFRESH_SECONDS = CONTACT_REFRESH.total_seconds()
MAX_KNOWN_CONTACTS = 200_000


# A known contact is one int: (minutes since the epoch it was last seen) << 32 | a 32-bit hash
# of its name. A (name, timestamp) tuple costs some 48 bytes more for each of up to
# `MAX_KNOWN_CONTACTS` contacts; a hash can only mistake a rename for the same name once in
# four billion, and then the row is rewritten at the next hourly refresh anyway.
_NAME_BITS = 32
_NAME_MASK = (1 << _NAME_BITS) - 1


def _name_hash(name: str) -> int:
    return hash(name) & _NAME_MASK


class KnownContacts:
    """Contacts this recorder wrote lately: when last seen and under which name, by id. A chat
    message from one of them, under the same name, within `CONTACT_REFRESH` of that, needs no
    row."""

    __slots__ = ("_rows",)

    def __init__(self) -> None:
        self._rows: dict[str, int] = {}

    def fresh(self, member_id: str, name: str, at: datetime) -> bool:
        """Whether a message from this contact at `at` under `name` needs no contact row."""
        known = self._rows.get(member_id)
        if known is None or (name and _name_hash(name) != known & _NAME_MASK):
            return False
        seen = (known >> _NAME_BITS) * 60
        return seen <= at.timestamp() < seen + _REFRESH_SECONDS

    def wrote(self, rows: Iterable[list[Any]], to_time: Callable[[Any], datetime]) -> None:
        """Remember contact rows once their transaction committed (a failed batch must not
        let later batches skip them)."""
        known = self._rows
        for member_id, name, _first, last in rows:
            seen = int(to_time(last).timestamp()) // 60
            old = known.pop(member_id, None)  # re-inserted: the dict's order is age
            named = _name_hash(name) if name or old is None else old & _NAME_MASK
            if old is not None and seen < old >> _NAME_BITS:  # a late, older event: the newer time stands
                seen = old >> _NAME_BITS
            known[member_id] = seen << _NAME_BITS | named
        overflow = len(known) - MAX_KNOWN_CONTACTS
        if overflow > 0:
            for member_id in list(islice(known, overflow)):
                del known[member_id]
