"""Folding a batch of events into the rows to write: one pass over the events, one method
per event type, rows in their bulk statement's column order."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from bot.core import events as ev
from bot.core.clock import business_day, day_start
from bot.core.events import Event, Member
from bot.storage.bulk import DriverValues
from bot.storage.models import EventType
from bot.storage.recorder.contacts import KnownContacts

# The rows' column order, which is their bulk statement's (`writer`).
LOG_COLUMNS = ("at", "type", "group_id", "member_id", "kind", "text", "message_id", "meta")
CONTACT_COLUMNS = ("id", "name", "first_seen", "last_seen")
DAILY_COLUMNS = ("group_id", "member_id", "day", "messages", "first_at", "last_at")
_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboundMessage(Event):
    """A message the bot itself sent (recorded for transcripts and relay ledgers)."""

    group_id: str | None
    text: str
    message_id: str | None = None


def utc(at: datetime) -> datetime:
    # Comparing datetimes of different zones costs ~1 µs each; fold everything in UTC.
    return at if at.tzinfo is UTC else at.astimezone(UTC)


def to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


@dataclass(slots=True)
class GroupChange:
    first_at: datetime
    topic: str = ""
    active: bool | None = None  # None: unchanged; True/False: the bot joined/left
    changed_at: datetime | None = None


class Batch:
    """One batch of events folded into the rows to write.

    Rows for the bulk statements hold driver values already (`DriverValues`): folding is
    the one pass over the events, and the parameters are then the rows as they are."""

    def __init__(
        self,
        tz: tzinfo,
        full_text: bool,
        sources: dict[tuple[str, str], str],
        values: DriverValues,
        known: KnownContacts,
    ) -> None:
        self.tz = tz
        self.known = known
        self.full_text = full_text
        self.sources = sources
        self.stamp = values.stamp
        self.day_value = values.day
        # Rows in their statement's column order (`LOG_COLUMNS`, `CONTACT_COLUMNS`, ...).
        self.log: list[tuple[Any, ...]] = []
        self.contacts: dict[str, list[Any]] = {}  # id -> [id, name, first_seen, last_seen]
        self.groups: dict[str, GroupChange] = {}
        # (group, member, day) -> [group_id, member_id, day, messages, first_at, last_at]
        self.daily: dict[tuple[str, str, date], list[Any]] = {}
        # In event order: ("open", row) for a join, ("close", params) for a leave.
        self.membership: list[tuple[str, dict[str, Any]]] = []
        # Chat messages with a platform id, not counted yet: (group, message id, daily key, stamp).
        self.keyed: list[tuple[str, str, tuple[str, str, date], Any]] = []
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
                to_json(meta) if meta else None,
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
            change = self.groups[group_id] = GroupChange(first_at=at)
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
            meta = to_json(found) if found else None
        # NUL and the like were cleaned where the event entered the bot (`events.storable`).
        text = e.text if self.full_text else None
        message_id = e.message_id or None  # "" is no id: it would make every such message one
        self.log.append((stamp, EventType.MESSAGE, gid, mid, e.kind._value_, text, message_id, meta))
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
        if message_id is not None:
            # Counted unless it is in the log already (`count_new`): another account, or a replay,
            # may have logged this message already.
            self.keyed.append((gid, message_id, key, stamp))
        else:
            self.count(key, stamp)

    def count(self, key: tuple[str, str, date], stamp: Any) -> None:
        """One message in the daily rollup: (group, member, local day), sent at `stamp`."""
        day = self.daily.get(key)
        if day is None:
            self.daily[key] = [key[0], key[1], self.day_value(key[2]), 1, stamp, stamp]
        else:
            day[3] += 1
            if stamp < day[4]:
                day[4] = stamp
            elif stamp > day[5]:
                day[5] = stamp

    def count_new(self, logged: set[tuple[str, str]]) -> None:
        """Count the messages with a platform id that are not in `logged`, the (group, message
        id) the event log holds already; one delivered twice in this batch counts once."""
        for gid, message_id, key, stamp in self.keyed:
            if (gid, message_id) not in logged:
                logged.add((gid, message_id))
                self.count(key, stamp)

    def private_message(self, e: ev.PrivateMessage) -> None:
        stamp = self.stamp(utc(e.at))
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
        at = utc(e.at)
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
        at = utc(e.at)
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
        # Contacts and stays are worked out when written (`membership.sync_member_lists`): only members
        # without an open stay need rows, and which those are is in the database.
        at = utc(e.at)
        self.group(e.group_id, at, e.group_topic)
        members = {m.id: m.name for m in e.members if m.id}
        self.membership.append(("sync", {"group_id": e.group_id, "at": at, "members": members}))

    def group_renamed(self, e: ev.GroupRenamed) -> None:
        at = utc(e.at)
        stamp = self.stamp(at)
        by = e.changed_by.id if e.changed_by else None
        meta: dict[str, Any] = {"old_topic": e.old_topic, "new_topic": e.new_topic}
        if by:
            meta["changed_by"] = by
        self.entry(stamp, EventType.RENAME, group_id=e.group_id, member_id=by, meta=meta)
        self.seen(e.changed_by, stamp)
        self.group(e.group_id, at, e.new_topic)

    def friend_request(self, e: ev.FriendRequest) -> None:
        stamp = self.stamp(utc(e.at))
        meta = {"request_id": e.request_id} if e.request_id else None
        self.entry(stamp, EventType.FRIEND_REQUEST, member_id=e.contact.id, text=e.hello, meta=meta)
        self.seen(e.contact, stamp)

    def bot_joined(self, e: ev.BotJoinedGroup) -> None:
        at = utc(e.at)
        stamp = self.stamp(at)
        inviter = e.inviter.id if e.inviter else None
        meta = {"inviter": inviter} if inviter else None
        self.entry(stamp, EventType.BOT_JOINED, group_id=e.group_id, member_id=inviter, meta=meta)
        self.seen(e.inviter, stamp)
        self.group(e.group_id, at, e.group_topic, active=True)

    def bot_left(self, e: ev.BotLeftGroup) -> None:
        at = utc(e.at)
        stamp = self.stamp(at)
        by = e.removed_by.id if e.removed_by else None
        meta = {"removed_by": by} if by else None
        self.entry(stamp, EventType.BOT_LEFT, group_id=e.group_id, member_id=by, meta=meta)
        self.seen(e.removed_by, stamp)
        self.group(e.group_id, at, active=False)

    def outbound(self, e: OutboundMessage) -> None:
        at = utc(e.at)
        self.entry(self.stamp(at), EventType.BOT_MESSAGE, group_id=e.group_id, text=e.text, message_id=e.message_id)
        if e.group_id:
            self.group(e.group_id, at)


FOLD: dict[type[Event], Callable[[Batch, Any], None]] = {
    ev.GroupMessage: Batch.group_message,
    ev.PrivateMessage: Batch.private_message,
    ev.MembersJoined: Batch.members_joined,
    ev.MembersLeft: Batch.members_left,
    ev.GroupRenamed: Batch.group_renamed,
    ev.FriendRequest: Batch.friend_request,
    ev.BotJoinedGroup: Batch.bot_joined,
    ev.BotLeftGroup: Batch.bot_left,
    ev.MemberList: Batch.member_list,
    OutboundMessage: Batch.outbound,
}
RECORDED_TYPES: frozenset[type[Event]] = frozenset(FOLD)
