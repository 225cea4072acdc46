"""The activity recorder: writes events to the database in batches, off the message path.

`record()` only appends to an in-memory buffer. A background task writes the buffer every
`flush_interval` seconds, or as soon as `batch_size` events are waiting. Each batch is one
transaction that appends to the event log and maintains contacts, groups, memberships and
the daily activity rollup with bulk upserts.

When the database is unreachable (`bot.storage.health.is_outage`) nothing is given up: the
batch goes back to the buffer and the recorder waits for the database's health probe to see
it back. The buffer is bounded (`buffer_max_events`, `buffer_max_bytes`); past a limit the
oldest chat messages are dropped first, never joins, leaves or the bot's own messages, and
the drops are counted. A batch the database refuses for its data is split in halves until
the refused events are alone; only those are set aside, with the database's reason, in a
JSON-lines file under the data directory, which `replay_dead_letter()` (run at start-up and
by `qunbot deadletter replay`) writes again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import re
import types
import typing
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from enum import Enum
from itertools import chain, islice
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.core import events as ev
from bot.core.clock import business_day, day_start
from bot.core.events import Event, Member
from bot.storage.bulk import BulkStatement, DriverValues
from bot.storage.db import Database
from bot.storage.health import call_listener, describe, is_outage
from bot.storage.models import (
    Contact,
    DailyActivity,
    EventLog,
    EventType,
    Group,
    Membership,
    UTCDateTime,
    table_of,
)
from bot.storage.settings import StorageSettings

log = logging.getLogger(__name__)

_LOG = table_of(EventLog)
_CONTACTS = table_of(Contact)
_GROUPS = table_of(Group)
_MEMBERSHIPS = table_of(Membership)
_DAILY = table_of(DailyActivity)

_MAX_PENDING_SOURCES = 10_000
_PURGE_CHUNK = 5_000
_NEVER = datetime.min.replace(tzinfo=UTC)
_LOG_COLUMNS = ("at", "type", "group_id", "member_id", "kind", "text", "message_id", "meta")
_CONTACT_COLUMNS = ("id", "name", "first_seen", "last_seen")
_DAILY_COLUMNS = ("group_id", "member_id", "day", "messages", "first_at", "last_at")
# A contact's last_seen is refreshed at most this often by chat messages: rewriting every
# sender's row in every batch would double the rows a batch writes, for a figure nothing
# needs to the second (the event log and the daily rollup have the exact times).
CONTACT_REFRESH = timedelta(hours=1)
_REFRESH_SECONDS = CONTACT_REFRESH.total_seconds()
_MAX_KNOWN_CONTACTS = 200_000
# A member list may close this many stays of a group at once, whatever its size; past it, only
# while at least half the group's recorded members are still listed (see `_sync_member_lists`).
_UNSEEN_LEAVES_FLOOR = 3
_MAX_LISTED_PER_BATCH = 20_000  # members in the member lists of one batch (see `Recorder._take`)


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboundMessage(Event):
    """A message the bot itself sent (recorded for transcripts and relay ledgers)."""

    group_id: str | None
    text: str
    message_id: str | None = None


def data_path(settings: StorageSettings, config_path: Path | None, kind: str) -> Path:
    """`<data dir>/<database>.<kind>`: a file of the bot's own, as an absolute path, named
    after the database (SQLite: the file's name; PostgreSQL: `<db>-<host>-<port>`) so that two
    databases sharing a data directory (the examples' SQLite files in data/) never read each
    other's files."""
    db_file = settings.sqlite_path
    if db_file is not None:
        name = db_file.stem
    else:
        # Server, port and database: two bots on different servers (or test servers on free
        # ports) whose configs share a folder never share these files.
        url = make_url(settings.url)
        name = "-".join(str(part) for part in (url.database or "qunbot", url.host or "local", url.port or 5432))
        name = re.sub(r"[^\w.@-]", "_", name)
    return settings.resolved_data_dir(config_path) / f"{name}.{kind}"


def default_dead_letter_path(settings: StorageSettings, config_path: Path | None = None) -> Path:
    return data_path(settings, config_path, "deadletter.jsonl")


# Raw chat messages: what the buffer may drop, oldest first, when it is full. Everything
# else (joins, leaves, renames, the bot's own messages) is rare and carries state.
_DROPPABLE: frozenset[type[Event]] = frozenset({ev.GroupMessage, ev.PrivateMessage})
DROPPED = "raw messages dropped (buffer full)"  # the outage summary's name for them
# What an event costs in memory, roughly: the objects themselves, plus its text.
_EVENT_BYTES = 600
_MEMBER_BYTES = 150  # one listed member: the Member, its id and name


def _event_bytes(event: Event) -> int:
    if type(event) is ev.MemberList:
        return _EVENT_BYTES + _MEMBER_BYTES * len(event.members)
    text = getattr(event, "text", None)
    return _EVENT_BYTES + 2 * len(text) if text else _EVENT_BYTES


class _Outage(Exception):
    """A flush cannot go on: the database went away, or (`database` False) it refused rows
    that the dead-letter file cannot take. These events are still unwritten."""

    def __init__(self, unwritten: list[Event], cause: BaseException, *, database: bool = True) -> None:
        super().__init__(str(cause))
        self.unwritten = unwritten
        self.cause = cause
        self.database = database  # False: the database is there, the dead-letter file is not


def _utc(at: datetime) -> datetime:
    # Comparing datetimes of different zones costs ~1 µs each; fold everything in UTC.
    return at if at.tzinfo is UTC else at.astimezone(UTC)


@dataclass(slots=True)
class _GroupChange:
    first_at: datetime
    topic: str = ""
    active: bool | None = None  # None: unchanged; True/False: the bot joined/left
    changed_at: datetime | None = None


class _KnownContacts:
    """Contacts this recorder wrote lately: (name, last seen as a POSIX timestamp), by id. A
    chat message from one of them, under the same name, within `CONTACT_REFRESH` of that,
    needs no row. A float rather than two datetimes: some 80 bytes less for each of up to
    `_MAX_KNOWN_CONTACTS` contacts."""

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
        overflow = len(known) - _MAX_KNOWN_CONTACTS
        if overflow > 0:
            for member_id in list(islice(known, overflow)):
                del known[member_id]


class _Batch:
    """One batch of events folded into the rows to write.

    Rows for the bulk statements hold driver values already (`DriverValues`): folding is
    the one pass over the events, and the parameters are then the rows as they are."""

    def __init__(
        self,
        tz: tzinfo,
        full_text: bool,
        sources: dict[tuple[str, str], str],
        values: DriverValues,
        known: _KnownContacts,
    ) -> None:
        self.tz = tz
        self.known = known
        self.full_text = full_text
        self.sources = sources
        self.stamp = values.stamp
        self.day_value = values.day
        # Rows in their statement's column order (`_LOG_COLUMNS`, `_CONTACT_COLUMNS`, ...).
        self.log: list[tuple[Any, ...]] = []
        self.contacts: dict[str, list[Any]] = {}  # id -> [id, name, first_seen, last_seen]
        self.groups: dict[str, _GroupChange] = {}
        # (group, member, day) -> [group_id, member_id, day, messages, first_at, last_at]
        self.daily: dict[tuple[str, str, date], list[Any]] = {}
        # In event order: ("open", row) for a join, ("close", params) for a leave.
        self.membership: list[tuple[str, dict[str, Any]]] = []
        self._day_span: tuple[datetime, datetime, date] = (_NEVER, _NEVER, date.min)

    # -- folding helpers ------------------------------------------------------------------

    def entry(
        self,
        stamp: Any,
        type_: str,
        *,
        group_id: str | None = None,
        member_id: str | None = None,
        kind: str | None = None,
        text: str | None = None,
        message_id: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.log.append(
            (
                stamp,
                type_,
                group_id,
                member_id,
                kind,
                text if self.full_text else None,
                message_id,
                _json(meta) if meta else None,
            )
        )

    def seen(self, member: Member | None, stamp: Any) -> None:
        """A contact seen at `stamp` (a driver time value: they compare as times do)."""
        if member is None or not member.id:
            return
        row = self.contacts.get(member.id)
        if row is None:
            self.contacts[member.id] = [member.id, member.name, stamp, stamp]
            return
        if stamp < row[2]:
            row[2] = stamp
        if stamp >= row[3]:
            row[3] = stamp
            if member.name:
                row[1] = member.name

    def group(
        self,
        group_id: str,
        at: datetime,
        topic: str = "",
        active: bool | None = None,
    ) -> None:
        change = self.groups.get(group_id)
        if change is None:
            change = self.groups[group_id] = _GroupChange(first_at=at)
        change.first_at = min(change.first_at, at)
        if topic:
            change.topic = topic
        if active is not None:
            change.active = active
            change.changed_at = at

    # -- one method per event type ----------------------------------------------------------

    def day_of(self, at: datetime) -> date:
        # Batches are mostly one local day: cache that day's bounds instead of converting
        # every timestamp (DST-safe, the bounds come from the zone).
        start, end, day = self._day_span
        if start <= at < end:
            return day
        day = business_day(at, self.tz)
        self._day_span = (
            day_start(day, self.tz).astimezone(UTC),
            day_start(day + timedelta(days=1), self.tz).astimezone(UTC),
            day,
        )
        return day

    def group_message(self, e: ev.GroupMessage) -> None:
        # The hot path: written out rather than through the helpers above.
        at, gid, sender = e.at, e.group_id, e.sender
        if at.tzinfo is not UTC:
            at = at.astimezone(UTC)
        stamp = self.stamp(at)
        mid = sender.id
        meta: str | None = None
        if e.url or e.mentions or e.mentions_bot:
            found: dict[str, Any] = {}
            if e.url and self.full_text:
                found["url"] = e.url
            if e.mentions:
                found["mentions"] = list(e.mentions)
            if e.mentions_bot:
                found["mentions_bot"] = True
            meta = _json(found) if found else None
        # NUL and the like were cleaned where the event entered the bot (`events.storable`).
        text = e.text if self.full_text else None
        self.log.append((stamp, EventType.MESSAGE, gid, mid, e.kind._value_, text, e.message_id, meta))
        contact = self.contacts.get(mid)
        if contact is not None:
            if contact[3] <= stamp:
                contact[3] = stamp
                if sender.name:
                    contact[1] = sender.name
            else:
                self.seen(sender, stamp)
        elif not self.known.fresh(mid, sender.name, at):
            self.seen(sender, stamp)
        change = self.groups.get(gid)
        if change is None or (e.group_topic and e.group_topic != change.topic) or at < change.first_at:
            self.group(gid, at, e.group_topic)
        start, end, local_day = self._day_span
        key = (gid, mid, local_day if start <= at < end else self.day_of(at))
        day = self.daily.get(key)
        if day is None:
            self.daily[key] = [gid, mid, self.day_value(key[2]), 1, stamp, stamp]
        else:
            day[3] += 1
            if stamp < day[4]:
                day[4] = stamp
            elif stamp > day[5]:
                day[5] = stamp

    def private_message(self, e: ev.PrivateMessage) -> None:
        stamp = self.stamp(_utc(e.at))
        meta = {"url": e.url} if e.url and self.full_text else None
        self.entry(
            stamp,
            EventType.PRIVATE,
            member_id=e.sender.id,
            kind=str(e.kind),
            text=e.text,
            message_id=e.message_id,
            meta=meta,
        )
        self.seen(e.sender, stamp)

    def members_joined(self, e: ev.MembersJoined) -> None:
        at = _utc(e.at)
        stamp = self.stamp(at)
        inviter = e.inviter.id if e.inviter else None
        self.group(e.group_id, at, e.group_topic)
        self.seen(e.inviter, stamp)
        for member in e.members:
            source = self.sources.pop((e.group_id, member.id), None)
            meta: dict[str, Any] = {}
            if inviter:
                meta["inviter"] = inviter
            if source:
                meta["source"] = source
            self.entry(stamp, EventType.JOIN, group_id=e.group_id, member_id=member.id, meta=meta)
            self.seen(member, stamp)
            self.membership.append(
                (
                    "open",
                    {
                        "group_id": e.group_id,
                        "member_id": member.id,
                        "joined_at": at,
                        "known_from": at,
                        "left_at": None,
                        "inviter_id": inviter,
                        "source": source,
                        "removed": False,
                    },
                )
            )

    def members_left(self, e: ev.MembersLeft) -> None:
        at = _utc(e.at)
        stamp = self.stamp(at)
        removed_by = e.removed_by.id if e.removed_by else None
        self.group(e.group_id, at, e.group_topic)
        self.seen(e.removed_by, stamp)
        for member in e.members:
            meta = {"removed_by": removed_by} if removed_by else None
            self.entry(stamp, EventType.LEAVE, group_id=e.group_id, member_id=member.id, meta=meta)
            self.seen(member, stamp)
            self.membership.append(
                (
                    "close",
                    {
                        "b_group": e.group_id,
                        "b_member": member.id,
                        "b_left_at": at,
                        "b_removed": removed_by is not None,
                    },
                )
            )

    def member_list(self, e: ev.MemberList) -> None:
        # Contacts and stays are worked out when written (`_sync_member_lists`): only members
        # without an open stay need rows, and which those are is in the database.
        at = _utc(e.at)
        self.group(e.group_id, at, e.group_topic)
        members = {m.id: m.name for m in e.members if m.id}
        self.membership.append(("sync", {"group_id": e.group_id, "at": at, "members": members}))

    def group_renamed(self, e: ev.GroupRenamed) -> None:
        at = _utc(e.at)
        stamp = self.stamp(at)
        by = e.changed_by.id if e.changed_by else None
        meta: dict[str, Any] = {"old_topic": e.old_topic, "new_topic": e.new_topic}
        if by:
            meta["changed_by"] = by
        self.entry(stamp, EventType.RENAME, group_id=e.group_id, member_id=by, meta=meta)
        self.seen(e.changed_by, stamp)
        self.group(e.group_id, at, e.new_topic)

    def friend_request(self, e: ev.FriendRequest) -> None:
        stamp = self.stamp(_utc(e.at))
        meta = {"request_id": e.request_id} if e.request_id else None
        self.entry(stamp, EventType.FRIEND_REQUEST, member_id=e.contact.id, text=e.hello, meta=meta)
        self.seen(e.contact, stamp)

    def bot_joined(self, e: ev.BotJoinedGroup) -> None:
        at = _utc(e.at)
        stamp = self.stamp(at)
        inviter = e.inviter.id if e.inviter else None
        meta = {"inviter": inviter} if inviter else None
        self.entry(stamp, EventType.BOT_JOINED, group_id=e.group_id, member_id=inviter, meta=meta)
        self.seen(e.inviter, stamp)
        self.group(e.group_id, at, e.group_topic, active=True)

    def bot_left(self, e: ev.BotLeftGroup) -> None:
        at = _utc(e.at)
        stamp = self.stamp(at)
        by = e.removed_by.id if e.removed_by else None
        meta = {"removed_by": by} if by else None
        self.entry(stamp, EventType.BOT_LEFT, group_id=e.group_id, member_id=by, meta=meta)
        self.seen(e.removed_by, stamp)
        self.group(e.group_id, at, active=False)

    def outbound(self, e: OutboundMessage) -> None:
        at = _utc(e.at)
        self.entry(self.stamp(at), EventType.BOT_MESSAGE, group_id=e.group_id, text=e.text, message_id=e.message_id)
        if e.group_id:
            self.group(e.group_id, at)


_FOLD: dict[type[Event], Callable[[_Batch, Any], None]] = {
    ev.GroupMessage: _Batch.group_message,
    ev.PrivateMessage: _Batch.private_message,
    ev.MembersJoined: _Batch.members_joined,
    ev.MembersLeft: _Batch.members_left,
    ev.GroupRenamed: _Batch.group_renamed,
    ev.FriendRequest: _Batch.friend_request,
    ev.BotJoinedGroup: _Batch.bot_joined,
    ev.BotLeftGroup: _Batch.bot_left,
    ev.MemberList: _Batch.member_list,
    OutboundMessage: _Batch.outbound,
}
RECORDED_TYPES: frozenset[type[Event]] = frozenset(_FOLD)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _contacts_conflict(stmt: Any) -> Any:
    new, old = stmt.excluded, _CONTACTS.c
    newer = new.last_seen >= old.last_seen
    return stmt.on_conflict_do_update(
        index_elements=["id"],
        set_={
            # An empty name never replaces a known one; an older event never wins.
            "name": sa.case((sa.and_(new.name != sa.literal_column("''"), newer), new.name), else_=old.name),
            "first_seen": sa.case((new.first_seen < old.first_seen, new.first_seen), else_=old.first_seen),
            "last_seen": sa.case((newer, new.last_seen), else_=old.last_seen),
        },
    )


def _daily_conflict(stmt: Any) -> Any:
    new, old = stmt.excluded, _DAILY.c
    return stmt.on_conflict_do_update(
        index_elements=["group_id", "member_id", "day"],
        set_={
            "messages": old.messages + new.messages,
            "first_at": sa.case((new.first_at < old.first_at, new.first_at), else_=old.first_at),
            "last_at": sa.case((new.last_at > old.last_at, new.last_at), else_=old.last_at),
        },
    )


class Recorder:
    """Batches events into the database. One per process; start it after the database
    is open and stop it before closing the database (stop flushes)."""

    def __init__(
        self,
        db: Database,
        tz: tzinfo,
        settings: StorageSettings | None = None,
        *,
        dead_letter_path: Path | str | None = None,
    ) -> None:
        self._db = db
        self._tz = tz
        self._settings = settings or db.settings
        self.dead_letter_path = Path(dead_letter_path) if dead_letter_path else default_dead_letter_path(self._settings)
        self._buffer: deque[Event] = deque()
        self._bytes = 0  # `_event_bytes` of what is in `_buffer`
        self._no_shed_below = 0  # a shed found nothing to drop: do not rescan before this length
        self._in_flight = 0
        self._sources: dict[tuple[str, str], str] = {}
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._stopped = asyncio.Event()
        self._insert = postgresql.insert if db.dialect == "postgresql" else sqlite.insert
        dialect = db.engine.dialect
        self._values = DriverValues.for_dialect(dialect.name)
        self._known = _KnownContacts()
        self._log_insert = BulkStatement(_LOG, _LOG_COLUMNS, dialect)
        self._contacts_upsert = BulkStatement(_CONTACTS, _CONTACT_COLUMNS, dialect, _contacts_conflict)
        self._daily_upsert = BulkStatement(_DAILY, _DAILY_COLUMNS, dialect, _daily_conflict)
        self.written = 0  # events written to the database since start
        self.dead_lettered = 0  # events set aside (refused by the database) since start
        self.dropped = 0  # raw messages dropped from a full buffer since start
        # Called with the number dropped when a full buffer first drops messages (then again
        # only after the buffer had room): the app tells the bot admins.
        self.on_drop: Callable[[int], object] | None = None
        self._dropping = False
        self._done_at_outage = 0
        db.health.on_down.append(self._outage_began)
        db.health.reporters.append(self._report_outage)

    def _outage_began(self, _reason: str) -> None:
        self._done_at_outage = self.written + self.dead_lettered

    def _report_outage(self, counts: Counter[str]) -> None:
        # What waited: still pending, or handled since the outage began.
        counts["events buffered"] += self.pending + self.written + self.dead_lettered - self._done_at_outage

    # -- the synchronous, O(1) side ---------------------------------------------------------

    @property
    def pending(self) -> int:
        """Events accepted but not yet written (buffered or in the batch being written)."""
        return len(self._buffer) + self._in_flight

    @property
    def buffered_bytes(self) -> int:
        """The buffer's approximate size in memory (what `buffer_max_bytes` limits)."""
        return self._bytes

    def record(self, event: Event) -> None:
        """Queue an event for writing. Never touches the database; types that are not
        recorded (e.g. Tick) are ignored."""
        if type(event) not in _FOLD:
            log.debug("recorder: not recording %s", type(event).__name__)
            return
        if event.at.tzinfo is None:
            raise ValueError(f"{type(event).__name__}.at is a naive datetime: {event.at!r}")
        buffer = self._buffer
        buffer.append(event)
        self._bytes += _event_bytes(event)
        size = len(buffer)
        settings = self._settings
        if size >= settings.batch_size:
            self._wake.set()
        if (
            size > settings.buffer_max_events or self._bytes > settings.buffer_max_bytes
        ) and size >= self._no_shed_below:
            self._shed()

    def _shed(self) -> None:
        """Drop the oldest raw messages until the buffer is 1% under its limits (so that a
        full buffer sheds in steps, not on every event). Other events are never dropped."""
        settings = self._settings
        max_events = settings.buffer_max_events * 99 // 100
        max_bytes = settings.buffer_max_bytes * 99 // 100
        buffer = self._buffer
        kept: list[Event] = []
        dropped = 0
        while buffer and (len(buffer) + len(kept) > max_events or self._bytes > max_bytes):
            event = buffer.popleft()
            if type(event) in _DROPPABLE:
                self._bytes -= _event_bytes(event)
                dropped += 1
            else:
                kept.append(event)
        buffer.extendleft(reversed(kept))
        if not dropped:
            # Nothing droppable left: let the buffer grow a step before looking again.
            self._no_shed_below = len(buffer) + max(1, settings.buffer_max_events // 100)
            return
        self._no_shed_below = 0
        self.dropped += dropped
        self._db.health.count(DROPPED, dropped)
        if not self._dropping:
            self._dropping = True
            log.warning(
                "recorder: buffer full (%d events, ~%d MB): dropping the oldest chat messages (%d so far)",
                len(buffer),
                self._bytes // (1024 * 1024),
                self.dropped,
            )
            if self.on_drop is not None:
                call_listener(self.on_drop, dropped)

    def record_outbound(self, group_id: str | None, text: str, at: datetime, message_id: str | None = None) -> None:
        """Log a message the bot sent (type "bot_message"); text follows `store_text`."""
        self.record(OutboundMessage(at=at, group_id=group_id, text=text, message_id=message_id))

    def record_membership_source(self, group_id: str, member_id: str, source: str) -> None:
        """Say how a member is about to join (e.g. "keyword:进群"): the next join of that
        member in that group that this recorder writes carries it."""
        if len(self._sources) >= _MAX_PENDING_SOURCES:
            self._sources.pop(next(iter(self._sources)))
        self._sources[(group_id, member_id)] = source

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is not None:
            return
        self._stopping = False
        self._stopped.clear()
        self._task = asyncio.create_task(self._run(), name="storage-recorder")

    async def stop(self, *, patience: float = 0.0) -> bool:
        """Stop the background task and write everything still buffered. If the database is
        unreachable, wait up to `patience` seconds for it; what is still unwritten then is
        set aside (the dead-letter file, replayed at the next start) rather than lost.
        False when the database was still away at the end: the rows set aside then are safe
        on disk, but the flush failed, and `qunbot run` says so with its exit code. (Rows the
        database refused for their data are set aside as at any other time: not a failure.)"""
        self._stopping = True
        self._stopped.set()
        self._wake.set()
        if self._task is not None:
            task, self._task = self._task, None
            await task
        health = self._db.health
        await self.flush()
        if self._buffer and not health.up and patience > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(patience):
                    await health.wait_up()
            await self.flush()
        if self._buffer:
            events = list(self._buffer)
            self._buffer.clear()
            self._bytes = 0
            reason = f"unwritten at shutdown: database unreachable ({health.reason or 'no reason known'})"
            if await self._set_aside(events, reason):
                log.error(
                    "recorder: %d unwritten events set aside in %s (replayed at the next start)",
                    len(events),
                    self.dead_letter_path,
                )
            else:
                log.error("recorder stopped with %d events neither written nor set aside; they follow", len(events))
                for event in events:
                    log.error("unwritten event: %s", json.dumps(event_to_json(event), ensure_ascii=False))
            return False
        return True

    async def _run(self) -> None:
        health = self._db.health
        while not self._stopping:
            if not health.up:
                # Nothing to try until the health probe sees the database again (a full
                # buffer's wake-ups are no reason to try earlier).
                await _first(health.wait_up(), self._stopped.wait())
                if self._stopping:
                    return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.flush_interval):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # keep the task alive whatever happens; flush logs details
                log.exception("recorder: flush failed")

    # -- writing ------------------------------------------------------------------------------

    async def flush(self) -> None:
        """Write everything buffered now, in batches of `batch_size`, in arrival order. When
        the database is unreachable, what is unwritten stays buffered (nothing raised)."""
        async with self._lock:
            remaining = len(self._buffer)  # events queued meanwhile wait for the next flush
            health = self._db.health
            while remaining > 0 and self._buffer:
                size = min(self._settings.batch_size, remaining, len(self._buffer))
                batch = self._take(size)
                size = len(batch)
                self._bytes -= sum(map(_event_bytes, batch))
                remaining -= size
                self._in_flight = size
                unwritten: list[Event] = batch  # until the write says otherwise
                try:
                    await self._write_isolating(batch)
                    unwritten = []
                except _Outage as outage:
                    unwritten = outage.unwritten
                    if outage.database:
                        health.failed(outage.cause)
                finally:
                    self._in_flight = 0
                    if unwritten:
                        # Neither written nor set aside (or cancelled meanwhile): keep them,
                        # in order, for the next flush.
                        self._buffer.extendleft(reversed(unwritten))
                        self._bytes += sum(map(_event_bytes, unwritten))
                if unwritten:
                    return
                health.succeeded()
            if len(self._buffer) < self._settings.buffer_max_events // 2:
                self._dropping = False

    def _take(self, size: int) -> list[Event]:
        """The next batch: `size` events, or fewer once its member lists hold
        `_MAX_LISTED_PER_BATCH` members (an hourly read of a thousand groups is not one
        transaction of half a million rows)."""
        buffer = self._buffer
        batch: list[Event] = []
        listed = 0
        while len(batch) < size:
            event = buffer.popleft()
            batch.append(event)
            if type(event) is ev.MemberList:
                listed += len(event.members)
                if listed >= _MAX_LISTED_PER_BATCH:
                    break
        return batch

    async def _write_isolating(self, batch: list[Event]) -> None:
        """Write `batch`; if the database refuses it for its data, split it in halves until
        the refused events are alone, and set only those aside. Raises `_Outage` (with what
        is still unwritten) when the database is unreachable."""
        pieces = [batch]  # a stack: the last piece is written next
        refused: list[str] = []
        try:
            while pieces:
                piece = pieces.pop()
                try:
                    await self._write(piece)
                except Exception as exc:
                    if is_outage(exc):
                        raise _Outage([*piece, *chain.from_iterable(reversed(pieces))], exc) from exc
                    if len(piece) > 1:
                        half = len(piece) // 2
                        pieces += [piece[half:], piece[:half]]
                        continue
                    reason = describe(exc)
                    if not await self._set_aside(piece, reason):
                        # Nowhere to put it: keep everything left for the next flush.
                        raise _Outage([*piece, *chain.from_iterable(reversed(pieces))], exc, database=False) from exc
                    refused.append(reason)
                    continue
                self.written += len(piece)
        finally:
            if refused:
                # One line per batch, however many rows were refused.
                log.warning(
                    "recorder: the database refused %d event(s) (%s); set aside in %s",
                    len(refused),
                    refused[0],
                    self.dead_letter_path,
                )

    async def _set_aside(self, events: list[Event], reason: str) -> bool:
        lines = [
            json.dumps({"error": reason[:1000], "event": event_to_json(event)}, ensure_ascii=False) + "\n"
            for event in events
        ]
        try:
            await asyncio.to_thread(_append_lines, self.dead_letter_path, lines)
        except OSError as exc:
            log.error(
                "recorder: cannot write the dead-letter file %s (%s); the events stay buffered",
                self.dead_letter_path,
                exc,
            )
            return False
        self.dead_lettered += len(events)
        return True

    def _fold(self, events: Iterable[Event]) -> _Batch:
        batch = _Batch(self._tz, self._settings.store_text == "full", self._sources, self._values, self._known)
        for event in events:
            _FOLD[type(event)](batch, event)
        return batch

    async def _write(self, events: Sequence[Event]) -> None:
        # Sources are consumed by the fold: restore them if the transaction fails.
        sources = dict(self._sources) if self._sources else None
        try:
            batch = self._fold(events)
            async with self._db.engine.begin() as conn:
                if batch.log:
                    await self._log_insert.execute(conn, batch.log)
                # Parents before memberships (foreign keys); see `_in_lock_order`.
                await self._write_groups(conn, batch.groups)
                await self._write_contacts(conn, batch.contacts)
                await self._write_memberships(conn, batch.membership)
                await self._write_daily(conn, batch.daily)
            self._known.wrote(batch.contacts.values(), self._values.time)
        except BaseException:
            if sources is not None:
                self._sources.clear()
                self._sources.update(sources)
            raise

    def _in_lock_order(self, rows: dict[Any, list[Any]]) -> list[list[Any]]:
        """Upsert rows sorted by key on PostgreSQL, so that concurrent writers lock rows in the
        same order (no deadlock). SQLite has one writer at a time: sorting thousands of keys
        per batch would buy nothing there."""
        if self._db.dialect == "postgresql":
            return [rows[k] for k in sorted(rows)]
        return list(rows.values())

    async def _write_contacts(self, conn: AsyncConnection, contacts: dict[str, list[Any]]) -> None:
        if contacts:
            await self._contacts_upsert.execute(conn, self._in_lock_order(contacts))

    async def _write_groups(self, conn: AsyncConnection, groups: dict[str, _GroupChange]) -> None:
        # Rows differ in what they change, so group them by shape: one statement per shape.
        shapes: dict[tuple[bool, bool | None], list[dict[str, Any]]] = {}
        for gid in sorted(groups):
            change = groups[gid]
            is_active = True if change.active is None else change.active
            row = {
                "id": gid,
                "topic": change.topic,
                "owner_id": None,
                "active": is_active,
                "registered_at": change.changed_at if change.active else change.first_at,
                "left_at": change.changed_at if change.active is False else None,
            }
            shapes.setdefault((bool(change.topic), change.active), []).append(row)
        for (has_topic, active), rows in shapes.items():
            stmt = self._insert(_GROUPS)
            new, old = stmt.excluded, _GROUPS.c
            set_: dict[str, Any] = {}
            if has_topic:
                set_["topic"] = new.topic
            if active is not None:
                set_["active"] = new.active
                set_["left_at"] = new.left_at
            if not set_:
                stmt = stmt.on_conflict_do_nothing(index_elements=["id"])
            elif active is None:
                # Only the topic may change: skip the write when it did not.
                stmt = stmt.on_conflict_do_update(index_elements=["id"], set_=set_, where=old.topic != new.topic)
            else:
                stmt = stmt.on_conflict_do_update(index_elements=["id"], set_=set_)
            await conn.execute(stmt, rows)

    async def _write_memberships(self, conn: AsyncConnection, ops: list[tuple[str, dict[str, Any]]]) -> None:
        if not ops:
            return
        m = _MEMBERSHIPS.c
        open_stmt = self._insert(_MEMBERSHIPS)
        open_stmt = open_stmt.on_conflict_do_update(
            # At most one open stay per member: a duplicate join event changes nothing. A join
            # from before the bot first found the member present (an event delivered late, after
            # a member list was read) is the start of that stay: it gets the join time.
            index_elements=["group_id", "member_id"],
            index_where=m.left_at.is_(None),
            set_={
                "joined_at": open_stmt.excluded.joined_at,
                "known_from": open_stmt.excluded.known_from,
                "inviter_id": open_stmt.excluded.inviter_id,
                "source": open_stmt.excluded.source,
            },
            where=sa.and_(m.joined_at.is_(None), open_stmt.excluded.joined_at <= m.known_from),
        )
        close_stmt = (
            sa.update(_MEMBERSHIPS)
            .where(
                m.group_id == sa.bindparam("b_group"),
                m.member_id == sa.bindparam("b_member"),
                m.left_at.is_(None),
            )
            .values(left_at=sa.bindparam("b_left_at"), removed=sa.bindparam("b_removed"))
        )
        # A leave of someone with no open stay (in the group before the bot, and not in a member
        # list yet) still happened: it is recorded as a stay of unknown start that ends then,
        # so that leaves count. Not when a stay already ends at or after it (the same leave
        # delivered twice, or noticed earlier by a member list).
        p = _MEMBERSHIPS.alias("p")
        covered = sa.exists().where(
            p.c.group_id == sa.bindparam("b_group"),
            p.c.member_id == sa.bindparam("b_member"),
            sa.or_(p.c.left_at.is_(None), p.c.left_at >= sa.bindparam("b_left_at", type_=UTCDateTime())),
        )
        unseen_stmt = sa.insert(_MEMBERSHIPS).from_select(
            ["group_id", "member_id", "joined_at", "known_from", "left_at", "removed"],
            sa.select(
                sa.bindparam("b_group", type_=sa.String()),
                sa.bindparam("b_member", type_=sa.String()),
                sa.null(),
                sa.bindparam("b_left_at", type_=UTCDateTime()),
                sa.bindparam("b_left_at", type_=UTCDateTime()),
                sa.bindparam("b_removed", type_=sa.Boolean()),
            ).where(~covered),
        )
        for op, rows in _runs(ops):
            if op == "open":
                await conn.execute(open_stmt, rows)
            elif op == "close":
                await conn.execute(close_stmt, rows)
                await conn.execute(unseen_stmt, rows)
            else:
                await self._sync_member_lists(conn, rows)

    async def _sync_member_lists(self, conn: AsyncConnection, lists: list[dict[str, Any]]) -> None:
        """Bring the stays of each listed group in line with its member list (one per group in
        `lists`): one read of the groups' stays, then bulk writes.

        - A listed member without an open stay gets one, of unknown join time, known from the
          list's time — unless a stay of theirs ended at or after that time: a leave that
          happened after the list was read (events keep arriving while it is read).
        - An open stay of someone not in the list is closed at the list's time: they left
          without a leave event reaching the bot (a missed event, or a departure while the bot
          was down). Only stays known from before the list was read (a join that came while it
          was read is not in it), and not when the list lacks most of the group: a platform
          that is still loading its member lists right after log-in hands over partial ones,
          and closing on those would count half the group as leaving.
        """
        m = _MEMBERSHIPS.c
        earliest = min(x["at"] for x in lists)
        open_stays: dict[str, dict[str, datetime]] = {x["group_id"]: {} for x in lists}
        ended: dict[str, dict[str, datetime]] = {x["group_id"]: {} for x in lists}
        for chunk in _chunked(list(open_stays), 500):
            rows = await conn.execute(
                sa.select(m.group_id, m.member_id, m.known_from, m.left_at).where(
                    m.group_id.in_(chunk), sa.or_(m.left_at.is_(None), m.left_at >= earliest)
                )
            )
            for gid, mid, known_from, left_at in rows:
                if left_at is None:
                    open_stays[gid][mid] = known_from
                else:
                    last = ended[gid].get(mid)
                    ended[gid][mid] = left_at if last is None or left_at > last else last
        contacts: dict[str, list[Any]] = {}
        new_stays: list[dict[str, Any]] = []
        closes: list[dict[str, Any]] = []
        log_rows: list[tuple[Any, ...]] = []
        stamp = self._values.stamp
        for x in lists:
            gid, at, listed = x["group_id"], x["at"], x["members"]
            here, gone = open_stays[gid], ended[gid]
            for mid, name in listed.items():
                if mid in here or (mid in gone and gone[mid] >= at):
                    continue
                contacts[mid] = [mid, name, stamp(at), stamp(at)]
                new_stays.append(
                    {
                        "group_id": gid,
                        "member_id": mid,
                        "joined_at": None,
                        "known_from": at,
                        "left_at": None,
                        "inviter_id": None,
                        "source": None,
                        "removed": False,
                    }
                )
            absent = [mid for mid, known_from in here.items() if mid not in listed and known_from < at]
            if len(absent) > _UNSEEN_LEAVES_FLOOR and len(absent) * 2 > len(here):
                log.warning(
                    "member list of %s lacks %d of its %d recorded members: taken as incomplete, no stay closed",
                    gid,
                    len(absent),
                    len(here),
                )
                continue
            for mid in absent:
                closes.append({"b_group": gid, "b_member": mid, "b_left_at": at, "b_known": at})
                log_rows.append(
                    (stamp(at), EventType.LEAVE, gid, mid, None, None, None, _json({"noticed": "member_list"}))
                )
        if contacts:
            await self._contacts_upsert.execute(conn, self._in_lock_order(contacts))
        if new_stays:
            stmt = self._insert(_MEMBERSHIPS).on_conflict_do_nothing(
                index_elements=["group_id", "member_id"], index_where=m.left_at.is_(None)
            )
            await conn.execute(stmt, new_stays)
        if closes:
            await conn.execute(
                sa.update(_MEMBERSHIPS)
                .where(
                    m.group_id == sa.bindparam("b_group"),
                    m.member_id == sa.bindparam("b_member"),
                    m.left_at.is_(None),
                    m.known_from < sa.bindparam("b_known", type_=UTCDateTime()),
                )
                .values(left_at=sa.bindparam("b_left_at"), removed=False),
                closes,
            )
            await self._log_insert.execute(conn, log_rows)
            log.info("member lists: %d stay(s) closed for members gone without a leave event", len(closes))

    async def _write_daily(self, conn: AsyncConnection, daily: dict[tuple[str, str, date], list[Any]]) -> None:
        if daily:
            await self._daily_upsert.execute(conn, self._in_lock_order(daily))

    # -- maintenance --------------------------------------------------------------------------

    async def purge_text(self, now: datetime) -> int:
        """Clear the text (and URLs) of messages older than `purge_after_days`; the rest of
        the row and the rollups stay. Works in short transactions. Returns rows purged."""
        days = self._settings.purge_after_days
        if days is None:
            return 0
        cutoff = now - timedelta(days=days)
        c = _LOG.c
        if self._db.dialect == "postgresql":
            has_url = c.meta.op("?")(sa.literal("url", sa.String))
            without_url: Any = c.meta.op("-")(sa.literal("url", sa.String))
        else:
            has_url = sa.func.json_extract(c.meta, "$.url").is_not(None)
            without_url = sa.func.json_remove(c.meta, "$.url")
        purged, last_id = 0, 0
        while True:
            async with self._db.engine.begin() as conn:
                ids = (
                    (
                        await conn.execute(
                            sa.select(c.id)
                            .where(
                                c.id > last_id,
                                c.at < cutoff,
                                c.type.in_(EventType.WITH_TEXT),
                                sa.or_(c.text.is_not(None), has_url),
                            )
                            .order_by(c.id)
                            .limit(_PURGE_CHUNK)
                        )
                    )
                    .scalars()
                    .all()
                )
                if not ids:
                    return purged
                await conn.execute(sa.update(_LOG).where(c.id.in_(ids)).values(text=None, meta=without_url))
            purged += len(ids)
            last_id = ids[-1]

    async def replay_dead_letter(self, path: Path | str | None = None) -> int:
        """Queue the events of a dead-letter file again, flush, and rename the file to
        `*.replayed`. Events are cleaned as at the edge (`storable`: rows set aside for a NUL
        before it was cleaned there now go in); those refused again are set aside again, in a
        new file. A malformed line raises ValueError (with its number) and changes nothing."""
        path = Path(path) if path else self.dead_letter_path
        if not await asyncio.to_thread(path.exists):
            return 0
        text = await asyncio.to_thread(path.read_text, encoding="utf-8")
        events: list[Event] = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                events.append(ev.storable(event_from_json(json.loads(line)["event"])))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{number}: not a dead-letter event: {exc}") from exc
        await asyncio.to_thread(path.replace, path.with_name(path.name + ".replayed"))
        for event in events:
            self.record(event)
        await self.flush()
        return len(events)


def _chunked(items: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _runs(ops: list[tuple[str, dict[str, Any]]]) -> Iterable[tuple[str, list[dict[str, Any]]]]:
    """Split membership ops into runs that can each be one executemany without changing the
    outcome: same op, and no (group, member) twice in a run (join, leave, rejoin stay ordered);
    member lists: no group twice in a run."""
    run: list[dict[str, Any]] = []
    run_op = ""
    keys: set[tuple[str, str | None]] = set()
    for op, row in ops:
        if op == "open":
            key: tuple[str, str | None] = (row["group_id"], row["member_id"])
        elif op == "close":
            key = (row["b_group"], row["b_member"])
        else:
            key = (row["group_id"], None)
        if run and (op != run_op or key in keys):
            yield run_op, run
            run, keys = [], set()
        run_op = op
        run.append(row)
        keys.add(key)
    if run:
        yield run_op, run


def _append_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.writelines(lines)


# -- event (de)serialisation for the dead-letter file ------------------------------------------

_EVENT_CLASSES: dict[str, type[Event]] = {cls.__name__: cls for cls in _FOLD}


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Member):
        return {"id": value.id, "name": value.name}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def event_to_json(event: Event) -> dict[str, Any]:
    out: dict[str, Any] = {"type": type(event).__name__}
    for f in dataclasses.fields(event):
        out[f.name] = _jsonable(getattr(event, f.name))
    return out


def _convert(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return _convert(options[0], value) if len(options) == 1 else value
    if origin is tuple:
        (inner, *_rest) = typing.get_args(hint) or (Any,)
        return tuple(_convert(inner, v) for v in value)
    if hint is datetime:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError(f"naive timestamp {value!r}")
        return parsed
    if hint is Member:
        return Member(id=value["id"], name=value.get("name", ""))
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint(value)
    return value


def event_from_json(data: dict[str, Any]) -> Event:
    """Rebuild an event written by `event_to_json`."""
    data = dict(data)
    cls = _EVENT_CLASSES.get(data.pop("type", None))
    if cls is None:
        raise ValueError("unknown event type")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)}")
    return cls(**{k: _convert(hints[k], v) for k, v in data.items()})


async def _first(*waits: Any) -> None:
    """Wait until the first of these coroutines finishes; cancel the others."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
