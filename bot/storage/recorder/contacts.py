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


class KnownContacts:
    """Contacts this recorder wrote lately: (name, last seen as a POSIX timestamp), by id. A
    chat message from one of them, under the same name, within `CONTACT_REFRESH` of that,
    needs no row. A float rather than two datetimes: some 80 bytes less for each of up to
    `MAX_KNOWN_CONTACTS` contacts."""

    __slots__ = ("_rows",)

    def __init__(self) -> None:
        self._rows: dict[str, tuple[str, float]] = {}

    def fresh(self, member_id: str, name: str, at: datetime) -> bool:
        """Whether a message from this contact at `at` under `name` needs no contact row."""
        known = self._rows.get(member_id)
        if known is None or (name and name != known[0]):
            return False
        seen = known[1]
        return seen <= at.timestamp() < seen + _REFRESH_SECONDS

    def wrote(self, rows: Iterable[list[Any]], to_time: Callable[[Any], datetime]) -> None:
        """Remember contact rows once their transaction committed (a failed batch must not
        let later batches skip them)."""
        known = self._rows
        for member_id, name, _first, last in rows:
            seen = to_time(last).timestamp()
            old = known.pop(member_id, None)  # re-inserted: the dict's order is age
            if old is not None:
                if not name:
                    name = old[0]
                if seen < old[1]:  # a late, older event: the newer time stands
                    seen = old[1]
            known[member_id] = (name, seen)
        overflow = len(known) - MAX_KNOWN_CONTACTS
        if overflow > 0:
            for member_id in list(islice(known, overflow)):
                del known[member_id]
