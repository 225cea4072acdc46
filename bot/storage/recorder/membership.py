"""Membership stays: joins open a stay, leaves close one, and member lists bring a group's
stays in line with who is there (`sync_member_lists`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage.bulk import BulkStatement, DriverValues
from bot.storage.models import EventType, Membership, UTCDateTime, table_of
from bot.storage.recorder.fold import to_json

log = logging.getLogger("bot.storage.recorder")

_MEMBERSHIPS = table_of(Membership)
# A member list may close this many stays of a group at once, whatever its size; past it, only
# while at least half the group's recorded members are still listed (see `sync_member_lists`).
_UNSEEN_LEAVES_FLOOR = 3


class MembershipWriter:
    """Writes a batch's membership ops (`Batch.membership`) in its transaction."""

    def __init__(
        self,
        insert: Callable[[sa.Table], Any],
        values: DriverValues,
        contacts_upsert: BulkStatement,
        log_insert: BulkStatement,
        in_lock_order: Callable[[dict[Any, list[Any]]], list[list[Any]]],
    ) -> None:
        self._insert = insert
        self._values = values
        self._contacts_upsert = contacts_upsert
        self._log_insert = log_insert
        self._in_lock_order = in_lock_order

    async def write(self, conn: AsyncConnection, ops: list[tuple[str, dict[str, Any]]]) -> None:
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
                await self.sync_member_lists(conn, rows)

    async def sync_member_lists(self, conn: AsyncConnection, lists: list[dict[str, Any]]) -> None:
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
                    (stamp(at), EventType.LEAVE, gid, mid, None, None, None, to_json({"noticed": "member_list"}))
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
