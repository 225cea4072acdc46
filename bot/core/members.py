"""Who is in each group: the platform's member lists, read at start-up, when the bot joins a
group, and every hour, and handed to the recorder as `MemberList` events.

Most groups exist before the bot: their members were never seen joining. The lists are how
the statistics know them (a stay of unknown join time), and how a departure the bot never
heard of is noticed. The recorder does the bookkeeping in bulk (one read of a group's open
stays, then bulk writes); this side only reads the lists, a few groups at a time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.core.clock import Clock
from bot.core.events import Event, MemberList, storable
from bot.core.platform import Platform

log = logging.getLogger("qunbot.members")

REFRESH_EVERY = timedelta(hours=1)
JOB_ID = "core:member_lists"
# Platform calls at once: a member list of 500 is one call, and the platform's rate limits
# apply to reads too.
PARALLEL = 4


@dataclass
class RefreshResult:
    groups: int = 0  # member lists read
    members: int = 0  # members listed in them
    failed: list[str] = field(default_factory=list)  # groups whose list could not be read


class MemberLists:
    def __init__(
        self,
        platform: Platform,
        clock: Clock,
        record: Callable[[Event], None],
        *,
        storage_up: Callable[[], bool] = lambda: True,
    ) -> None:
        self._platform = platform
        self._clock = clock
        self._record = record
        # While the database is away, lists would only pile up in the recorder's buffer
        # (half a million members an hour at 1,000 groups): the next read after it is back
        # does the same work.
        self._storage_up = storage_up
        self._running: asyncio.Lock = asyncio.Lock()
        self.last: RefreshResult | None = None

    async def refresh(self, group_ids: Sequence[str] | None = None) -> RefreshResult:
        """Read and record the member lists of `group_ids`, or of every group the bot is in.
        A group whose list cannot be read (or comes back empty: a group always holds the bot,
        so an empty list is the platform not answering) is skipped and named in the result;
        the bot itself is never recorded as a member;
        its stays stay as they are until a later list."""
        result = RefreshResult()
        if not self._storage_up():
            log.info("member lists: not read while the database is unreachable")
            result.failed.append("*")
            self.last = result
            return result
        async with self._running:  # an hourly run and a join's run never interleave their reads
            if group_ids is None:
                try:
                    group_ids = [info.id for info in await self._platform.groups()]
                except Exception as exc:
                    log.warning("member lists: cannot list the groups (%s); next try in %s", exc, REFRESH_EVERY)
                    result.failed.append("*")
                    self.last = result
                    return result
            gate = asyncio.Semaphore(PARALLEL)
            bot_id = self._platform.bot.id

            async def one(group_id: str) -> None:
                async with gate:
                    # The list's time is when it was asked for: whatever happens while it is
                    # read comes after it (the recorder compares stays with this time).
                    at = self._clock.now()
                    try:
                        members = await self._platform.members(group_id)
                    except Exception as exc:
                        log.debug("member list of %s not read: %s", group_id, exc)
                        result.failed.append(group_id)
                        return
                if not members:
                    result.failed.append(group_id)
                    return
                listed = tuple(m for m in members if m.id and m.id != bot_id)
                self._record(storable(MemberList(at=at, group_id=group_id, members=listed)))
                result.groups += 1
                result.members += len(listed)

            await asyncio.gather(*(one(g) for g in group_ids))
        if result.failed:
            # One line for the run, however many groups failed.
            log.warning(
                "member lists: %d of %d group(s) not read (%s)",
                len(result.failed),
                len(group_ids),
                ", ".join(sorted(result.failed)[:5]) + (" …" if len(result.failed) > 5 else ""),
            )
        log.info("member lists: %d group(s), %d member(s) read", result.groups, result.members)
        self.last = result
        return result

    async def scheduled(self, _fire: datetime) -> None:
        await self.refresh()
