# Over 500 lines: one pacing state machine (lanes, windows, back-off, breaker) sharing its queues.
"""The outbox: every outbound action of one bot account goes through here (DESIGN §4).

WeChat bans accounts that send too fast, so sends are paced, not fired:

- two lanes with separate budgets: messages (group and private) and moderation (removals
  and invites, spaced much further apart, with an hourly cap);
- within a lane, a minimum gap plus random jitter between sends, drawn once per send from
  the injected rng (a seeded virtual run is reproducible); any two actions, whatever their
  lane, are at least `min_gap` apart;
- sliding-window caps: per chat per minute, per account per minute and per hour (messages),
  per hour (moderation); the bot admins are alerted once when the hourly message budget is
  80% used (`on_budget`);
- a long text is split into at most `max_parts` messages; what does not fit is cut, and the
  last part says so (…（已截断）): one pasted essay never becomes hundreds of sends;
- FIFO per chat (the parts of a long text stay in order), fair across chats: among the
  items that may go now, the chat served least recently goes first;
- "too frequent" answers back off exponentially, and a run of them opens a circuit breaker
  that holds every send until a cool-down has passed; the items wait, none is dropped;
- other failures are retried `max_retries` times, then reported through the callbacks; a
  refusal the platform marks permanent (removing someone who is not in the group) is not
  retried.

Enqueueing is synchronous and never blocks. `run()` is the real-time worker; the simulator
drives `next_due()` / `send_next()` itself on a virtual clock, so nothing here sleeps
except `run()` and `drain()`, and only through the clock.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import random
import re
import unicodedata
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bot.core.clock import Clock
from bot.core.duty import DutyGate, OffDuty
from bot.core.platform import Platform, PlatformError, SendResult

log = logging.getLogger("qunbot.outbox")


class OutboxSettings(BaseModel):
    """Pacing for one bot account. Cautious by default: field reports say 0.5 s gaps get an
    account "too frequent" after ~120 sends, and invites need 15-25 s between them."""

    model_config = ConfigDict(extra="forbid")

    # Messages: seconds between two sends (also the floor between any two actions), plus a
    # random 0..jitter seconds drawn per send.
    min_gap: float = Field(1.5, ge=0)
    jitter: float = Field(1.5, ge=0)
    per_group_per_minute: int = Field(10, ge=1)  # to one chat (group or contact), any 60 s
    per_minute: int = Field(30, ge=1)  # from the whole account, any 60 s
    max_chars: int = Field(1500, ge=20)  # longer texts are split into several messages ...
    max_parts: int = Field(3, ge=1)  # ... at most this many; the rest is cut, ending in …（已截断）
    # Messages (group and private) from the whole account in any hour; the bot admins are told
    # once when `budget_alert` of it has been used.
    per_hour: int = Field(600, ge=1)
    budget_alert: float = Field(0.8, gt=0, le=1)
    # Removals and invites: their own, stricter lane.
    moderation_gap: float = Field(15.0, ge=0)
    moderation_jitter: float = Field(10.0, ge=0)
    moderation_per_hour: int = Field(40, ge=1)
    # Failures: back off backoff_initial, doubling up to backoff_max. After breaker_threshold
    # consecutive rate-limit errors the breaker holds every send for at least breaker_cooldown.
    backoff_initial: float = Field(60.0, gt=0)
    backoff_max: float = Field(1800.0, gt=0)
    breaker_threshold: int = Field(3, ge=1)
    breaker_cooldown: float = Field(900.0, ge=0)
    max_retries: int = Field(2, ge=0)  # after an ordinary (not rate-limit) failure

    @model_validator(mode="after")
    def _backoff_order(self) -> OutboxSettings:
        if self.backoff_max < self.backoff_initial:
            raise ValueError("backoff_max must be at least backoff_initial")
        return self


# --- items -------------------------------------------------------------------------------


class OutboundKind(StrEnum):
    SAY = "say"
    PRIVATE = "private"
    REMOVE = "remove"
    INVITE = "invite"


class Lane(StrEnum):
    MESSAGE = "message"
    MODERATION = "moderation"


# In the order the scheduler looks at them (iterating the enum itself costs a generator per loop).
_LANES = (Lane.MESSAGE, Lane.MODERATION)


class ItemState(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"
    DISCARDED = "discarded"


# What to send, by kind (read-only):
#   say: text, mentions · private: text · remove: member_id, reason · invite: contact_id
Payload = Mapping[str, Any]

# Called once when an item is finally sent (result) or given up (result with ok=False, or
# the exception). Removals and invites report SendResult(ok=True) on success.
DoneCallback = Callable[[SendResult | None, Exception | None], Awaitable[None]]
ResultCallback = Callable[["OutboundItem", SendResult | None, Exception | None], Awaitable[None]]
# Called with (messages sent in the last hour, the hourly budget) when the alert level is reached.
BudgetCallback = Callable[[int, int], Awaitable[None]]

TRUNCATED = "…（已截断）"

_LANE_OF = {
    OutboundKind.SAY: Lane.MESSAGE,
    OutboundKind.PRIVATE: Lane.MESSAGE,
    OutboundKind.REMOVE: Lane.MODERATION,
    OutboundKind.INVITE: Lane.MODERATION,
}


@dataclass(eq=False, slots=True)
class OutboundItem:
    kind: OutboundKind
    target: str  # the group (say, remove, invite) or the contact (private)
    payload: Payload
    enqueued_at: datetime
    on_done: DoneCallback | None = None
    attempts: int = 0  # platform calls made for this item, rate-limited ones included
    state: ItemState = ItemState.QUEUED
    result: SendResult | None = None
    error: Exception | None = None
    seq: int = 0  # global enqueue order
    errors: int = 0  # ordinary failures so far (rate limits are not counted)
    not_before: datetime | None = None  # retry time after an ordinary failure
    fence_token: int | None = None  # several accounts: the duty token when queued (see bot.core.duty)

    @property
    def lane(self) -> Lane:
        return _LANE_OF[self.kind]

    @property
    def chat(self) -> tuple[str, str]:
        """The conversation this item goes to: ("c", contact) or ("g", group)."""
        return ("c" if self.kind is OutboundKind.PRIVATE else "g", self.target)

    def __repr__(self) -> str:
        return f"<OutboundItem {self.kind} {self.target} #{self.seq} {self.state}>"


@dataclass(slots=True)
class OutboxStats:
    sent: int = 0
    failed: int = 0
    rate_limited: int = 0
    retried: int = 0
    fenced: int = 0  # refused: another account was on duty in the group by then


# --- splitting ---------------------------------------------------------------------------

# A sentence end, with closing quotes/brackets and following spaces kept on the left part.
_SENTENCE_END = re.compile(r"(?:[。！？!?；;…]+|\.(?=\s))[”’\"'）)」』】》]*\s*")
_WHITESPACE = re.compile(r"\s+")


def split_text(text: str, max_chars: int) -> list[str]:
    """Split `text` into parts of at most `max_chars` characters, preferring line breaks, then
    sentence ends, then spaces, then a hard cut that does not break an emoji or a character
    and its combining marks. ``"".join(parts) == text`` always; "" gives []."""
    if max_chars < 1:
        raise ValueError("max_chars must be at least 1")
    if len(text) <= max_chars:
        return [text] if text else []
    parts: list[str] = []
    start = 0
    while len(text) - start > max_chars:
        cut = _cut(text, start, start + max_chars)
        parts.append(text[start:cut])
        start = cut
    parts.append(text[start:])
    return parts


def cap_parts(parts: list[str], max_parts: int, max_chars: int, marker: str = TRUNCATED) -> list[str]:
    """The first `max_parts` parts, the last of them ending in `marker` (shortened, at a
    character boundary, so that it still fits in `max_chars`)."""
    if len(parts) <= max_parts:
        return parts
    kept = parts[:max_parts]
    kept[-1] = _with_marker(kept[-1], max_chars, marker)
    return kept


def cap_text(text: str, max_chars: int, marker: str = TRUNCATED) -> str:
    """`text` if it has at most `max_chars` characters, else its beginning (cut at a character
    boundary) followed by `marker`, `max_chars` characters in all."""
    if len(text) <= max_chars:
        return text
    return _with_marker(text, max_chars, marker)


def _with_marker(text: str, max_chars: int, marker: str) -> str:
    text = text.rstrip()
    room = max(max_chars - len(marker), 1)
    if len(text) > room:
        text = text[: _hard_cut(text, 0, room)].rstrip()
    return text + marker


def _cut(text: str, start: int, end: int) -> int:
    """Where to end the part beginning at `start` (exclusive; start < cut <= end)."""
    window = text[start:end]
    half = len(window) // 2

    def usable(offset: int) -> bool:
        # 0 means "none found"; a whitespace-only part would be an empty message.
        return offset > 0 and not window[:offset].isspace()

    newline = window.rfind("\n") + 1
    sentence = 0
    for sentence_match in _SENTENCE_END.finditer(window):
        sentence = sentence_match.end()
    for offset in (newline, sentence):
        if offset >= half and usable(offset):
            return start + offset
    for offset in (newline, sentence):
        if usable(offset):
            return start + offset
    space = 0
    for space_match in _WHITESPACE.finditer(window):
        space = space_match.end()
    if space >= half and usable(space):
        return start + space
    return _hard_cut(text, start, end)


def _hard_cut(text: str, start: int, end: int) -> int:
    cut = end
    floor = max(start + 1, end - 32)  # a cluster longer than this gets cut anyway
    while cut > floor and _inside_cluster(text, cut):
        cut -= 1
    return cut if not _inside_cluster(text, cut) else end


def _inside_cluster(text: str, i: int) -> bool:
    """Would cutting between text[i-1] and text[i] split a user-perceived character?"""
    before, after = text[i - 1], text[i]
    if before == "\u200d" or after == "\u200d" or (before == "\r" and after == "\n"):
        return True
    code = ord(after)
    if (
        0xFE00 <= code <= 0xFE0F  # variation selectors (emoji presentation)
        or 0x1F3FB <= code <= 0x1F3FF  # skin-tone modifiers
        or 0xE0020 <= code <= 0xE007F  # tag characters (subdivision flags)
        or 0xE0100 <= code <= 0xE01EF
        or (0xDC00 <= code <= 0xDFFF and 0xD800 <= ord(before) <= 0xDBFF)  # a surrogate pair
    ):
        return True
    if unicodedata.category(after) in ("Mn", "Me", "Mc"):
        return True
    if _is_regional(after) and _is_regional(before):
        # Flags are pairs of regional indicators: cut only after an even run of them.
        run = 0
        j = i - 1
        while j >= 0 and _is_regional(text[j]):
            run += 1
            j -= 1
        return run % 2 == 1
    return False


def _is_regional(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


# --- the outbox --------------------------------------------------------------------------

# A queue's head as the scheduler sees it: [eligible_at, rank, key]. `eligible_at` leaves out
# the lane-wide bounds; `rank` is (when its chat was last served, head seq). An entry stays
# valid while it is `Outbox._entries[key]`: re-indexing or emptying the queue retires it, and
# retired entries are skipped when they come to the top of a heap.
_Entry = list[Any]

_NEVER = datetime.min.replace(tzinfo=UTC)
_MINUTE = timedelta(minutes=1)
_HOUR = timedelta(hours=1)


@dataclass(slots=True)
class _LaneState:
    gap: float
    jitter: float
    window: deque[datetime]  # the last `cap` call times; the oldest bounds the next one
    span: timedelta
    next_at: datetime | None = None
    # The hourly budget of the message lane: call times within the last hour (expired ones
    # are dropped as calls are made, so its length is the hour's use).
    hourly: deque[datetime] | None = None

    def window_opens(self) -> datetime | None:
        opens = None
        if len(self.window) == self.window.maxlen:
            opens = self.window[0] + self.span
        hourly = self.hourly
        if hourly is not None and len(hourly) == hourly.maxlen:
            budget_opens = hourly[0] + _HOUR
            if opens is None or budget_opens > opens:
                opens = budget_opens
        return opens


@dataclass(slots=True)
class _Outcome:
    item: OutboundItem
    final: bool = False
    result: SendResult | None = None
    error: Exception | None = None


class Outbox:
    def __init__(
        self,
        platform: Platform,
        clock: Clock,
        settings: OutboxSettings,
        rng: random.Random,
        on_result: ResultCallback | None = None,
        on_budget: BudgetCallback | None = None,
    ) -> None:
        self.platform = platform
        self.clock = clock
        self.settings = settings
        self._rng = rng
        self._on_result = on_result
        self.on_budget = on_budget
        self._min_gap = timedelta(seconds=settings.min_gap)
        self._lanes = {
            Lane.MESSAGE: _LaneState(
                settings.min_gap,
                settings.jitter,
                deque(maxlen=settings.per_minute),
                _MINUTE,
                hourly=deque(maxlen=settings.per_hour),
            ),
            Lane.MODERATION: _LaneState(
                settings.moderation_gap,
                settings.moderation_jitter,
                deque(maxlen=settings.moderation_per_hour),
                _HOUR,
            ),
        }
        # (lane, scope, target) -> FIFO of waiting items; only non-empty queues are kept.
        self._queues: dict[tuple[Lane, str, str], deque[OutboundItem]] = {}
        # Message call times per chat (the per-chat cap; also "served least recently").
        self._chats: dict[tuple[str, str], deque[datetime]] = {}
        # The heads of the queues, per lane, so a send never scans every queue: those that may
        # not go yet, by when they may (`_waiting`), and those that may, by rank (`_ready`).
        self._entries: dict[tuple[Lane, str, str], _Entry] = {}
        self._waiting: dict[Lane, list[tuple[datetime, int, _Entry]]] = {lane: [] for lane in Lane}
        self._ready: dict[Lane, list[tuple[tuple[datetime, int], _Entry]]] = {lane: [] for lane in Lane}
        self._pending = 0
        self._seq = itertools.count(1)
        self._last_call: datetime | None = None
        self._rate_limit_streak = 0
        self._blocked_until: datetime | None = None
        self._stats = OutboxStats()
        self._wakeup = asyncio.Event()
        self._lock = asyncio.Lock()
        self._calls = 0
        self._budget_alerted = False
        self._budget_alert_due: int | None = None  # the hour's use to report, once the call is done
        # Several accounts: group actions carry the duty token and go out only while it holds.
        self.duty: DutyGate | None = None
        # Told of every platform call and how it went (account health: rate limits, bans).
        self.on_attempt: Callable[[OutboundItem, SendResult | None, Exception | None], None] | None = None

    # --- enqueue (synchronous, never blocks) -----------------------------------------
    def say(self, group_id: str, text: str, mentions: tuple[str, ...] = ()) -> list[OutboundItem]:
        """Queue `text` for a group, split into parts if long; mentions go on the first part."""
        parts = self._parts(text, "group", group_id)
        return [
            self._add(OutboundKind.SAY, group_id, {"text": part, "mentions": tuple(mentions) if i == 0 else ()})
            for i, part in enumerate(parts)
        ]

    def send_private(self, contact_id: str, text: str) -> list[OutboundItem]:
        parts = self._parts(text, "contact", contact_id)
        return [self._add(OutboundKind.PRIVATE, contact_id, {"text": part}) for part in parts]

    def remove(self, group_id: str, member_id: str, reason: str = "") -> OutboundItem:
        _require_id("member", member_id)
        return self._add(OutboundKind.REMOVE, group_id, {"member_id": member_id, "reason": reason})

    def invite(self, group_id: str, contact_id: str) -> OutboundItem:
        _require_id("contact", contact_id)
        return self._add(OutboundKind.INVITE, group_id, {"contact_id": contact_id})

    def discard_group(self, group_id: str) -> list[OutboundItem]:
        """Drop everything waiting for a group (the bot left it). Returns the dropped items;
        their callbacks are not called."""
        dropped: list[OutboundItem] = []
        for lane in _LANES:
            queue = self._queues.pop((lane, "g", group_id), None)
            self._entries.pop((lane, "g", group_id), None)
            if queue:
                dropped.extend(queue)
        for item in dropped:
            item.state = ItemState.DISCARDED
        self._pending -= len(dropped)
        if dropped:
            log.info("outbox: dropped %d item(s) for group %s", len(dropped), group_id)
        return dropped

    def _parts(self, text: str, what: str, target: str) -> list[str]:
        _require_id(what, target)
        settings = self.settings
        parts = [p for p in split_text(text, settings.max_chars) if p.strip()]
        if not parts:
            log.warning("outbox: empty message to %s %s not sent", what, target)
        elif len(parts) > settings.max_parts:
            log.warning(
                "outbox: a %d-character message to %s %s would take %d messages; sending the first %d, cut",
                len(text),
                what,
                target,
                len(parts),
                settings.max_parts,
            )
            parts = cap_parts(parts, settings.max_parts, settings.max_chars)
        return parts

    def _add(self, kind: OutboundKind, target: str, payload: dict[str, Any]) -> OutboundItem:
        _require_id("group" if kind is not OutboundKind.PRIVATE else "contact", target)
        item = OutboundItem(kind, target, MappingProxyType(payload), self.clock.now(), seq=next(self._seq))
        if self.duty is not None and kind is not OutboundKind.PRIVATE:
            item.fence_token = self.duty.token(target)
        key = (item.lane, *item.chat)
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = deque()
        queue.append(item)
        if len(queue) == 1:
            self._index(key)
        self._pending += 1
        self._wakeup.set()
        return item

    # --- state ---------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        return self._pending

    def pending_items(self) -> list[OutboundItem]:
        return sorted((item for queue in self._queues.values() for item in queue), key=lambda i: i.seq)

    @property
    def stats(self) -> OutboxStats:
        return replace(self._stats)

    @property
    def breaker_open(self) -> bool:
        return (
            self._rate_limit_streak >= self.settings.breaker_threshold
            and self._blocked_until is not None
            and self.clock.now() < self._blocked_until
        )

    @property
    def blocked_until(self) -> datetime | None:
        """Until when a rate-limit back-off (or the open breaker) holds every send."""
        return self._blocked_until

    # --- scheduling ----------------------------------------------------------------------
    def _lane_ready(self, lane: Lane) -> datetime:
        """The earliest time the lane's next call may happen, from account-level limits."""
        state = self._lanes[lane]
        ready = _NEVER
        floor = self._last_call + self._min_gap if self._last_call else None
        for bound in (state.next_at, state.window_opens(), floor, self._blocked_until):
            if bound is not None and bound > ready:
                ready = bound
        return ready

    def _head_eligible_at(self, key: tuple[Lane, str, str], item: OutboundItem) -> datetime:
        """When a queue's head may go as far as it alone is concerned (lane bounds aside)."""
        at = item.enqueued_at
        if item.not_before is not None and item.not_before > at:
            at = item.not_before
        if key[0] is Lane.MESSAGE:
            window = self._chats.get(item.chat)
            if window is not None and len(window) >= self.settings.per_group_per_minute:
                opens = window[-self.settings.per_group_per_minute] + _MINUTE
                if opens > at:
                    at = opens
        return at

    def _index(self, key: tuple[Lane, str, str]) -> None:
        """(Re-)enter a queue's head in the scheduling heaps after it or its chat changed: a
        new queue, a send from it, a retry delay. Only that queue's entry changes: a chat's
        window moves only when that chat's message queue sends."""
        queue = self._queues.get(key)
        if not queue:
            self._entries.pop(key, None)
            return
        head = queue[0]
        window = self._chats.get(head.chat) if key[0] is Lane.MESSAGE else None
        # Fairness: the chat served least recently first, then the oldest item.
        entry: _Entry = [self._head_eligible_at(key, head), (window[-1] if window else _NEVER, head.seq), key]
        self._entries[key] = entry
        heapq.heappush(self._waiting[key[0]], (entry[0], head.seq, entry))

    def _valid(self, entry: _Entry) -> bool:
        return self._entries.get(entry[2]) is entry

    def _promote(self, lane: Lane, now: datetime) -> list[tuple[tuple[datetime, int], _Entry]]:
        """Move the lane's heads that may go by `now` to its ready heap; return that heap with
        a valid entry on top (or empty)."""
        waiting, ready = self._waiting[lane], self._ready[lane]
        while waiting and (waiting[0][0] <= now or not self._valid(waiting[0][2])):
            _, _, entry = heapq.heappop(waiting)
            if self._valid(entry):
                heapq.heappush(ready, (entry[1], entry))
        while ready and not self._valid(ready[0][1]):
            heapq.heappop(ready)
        return ready

    def next_due(self) -> datetime | None:
        """The earliest time at which some queued item may be sent, or None when idle. (When
        something may go already, a time not after now.)"""
        if not self._queues:
            return None
        due: datetime | None = None
        now = self.clock.now()
        for lane in _LANES:
            ready, waiting = self._promote(lane, now), self._waiting[lane]
            if ready:
                head = ready[0][1][0]  # one that may go (its time is not after now)
            elif waiting:
                head = waiting[0][0]
            else:
                continue
            at = max(head, self._lane_ready(lane))
            if due is None or at < due:
                due = at
        return due

    def _pick(self, now: datetime) -> tuple[Lane, str, str] | None:
        """The queue to serve now: among the heads that may go, the lowest rank (moderation
        items rank before messages). Its entry leaves the heap; `_index` re-enters the queue
        once the call is settled."""
        best: list[tuple[tuple[datetime, int], _Entry]] | None = None
        for lane in _LANES:
            if self._lane_ready(lane) > now:
                continue
            ready = self._promote(lane, now)
            if ready and (best is None or ready[0][0] < best[0][0]):
                best = ready
        if best is None:
            return None
        _, entry = heapq.heappop(best)
        # An _Entry is a list (its sort keys change in place), so its items are typed Any.
        return entry[2]  # type: ignore[no-any-return]

    # --- sending -------------------------------------------------------------------------
    async def send_next(self) -> OutboundItem | None:
        """Make one platform call for the item due now, if any, and return that item (check
        its `state`: a rate-limited or retried item is still QUEUED). None if nothing is due."""
        async with self._lock:
            now = self.clock.now()
            key = self._pick(now)
            if key is None:
                return None
            item = self._queues[key][0]
            try:
                if self.duty is not None and item.kind is not OutboundKind.PRIVATE and not await self._on_duty(item):
                    outcome = self._fence_off(key, item)
                else:
                    item.attempts += 1
                    result, error = await self._call(item)
                    outcome = self._settle(key, item, result, error)
                    if self.on_attempt is not None:
                        try:
                            self.on_attempt(item, result, error)
                        except Exception:
                            log.exception("outbox: the attempt observer failed")
            finally:
                self._index(key)  # sent, retried or rate limited: its head or its rank changed
        if outcome.final:
            await self._report(outcome)
        if self._budget_alert_due is not None:
            used, self._budget_alert_due = self._budget_alert_due, None
            if self.on_budget is not None:
                try:
                    await self.on_budget(used, self.settings.per_hour)
                except Exception:
                    log.exception("outbox: the send-budget alert failed")
        return item

    async def _on_duty(self, item: OutboundItem) -> bool:
        assert self.duty is not None
        return await self.duty.may_act(item.target, item.fence_token)

    def _fence_off(self, key: tuple[Lane, str, str], item: OutboundItem) -> _Outcome:
        # Not a platform call: no budget spent. Reported as given up, so callers can tell.
        self._stats.fenced += 1
        log.info("outbox: %s to %s not sent: another account is on duty there", item.kind, item.target)
        error = OffDuty(f"another account is on duty in {item.target}")
        self._finish(key, item, ItemState.DISCARDED, None, error)
        return _Outcome(item, True, None, error)

    async def _call(self, item: OutboundItem) -> tuple[SendResult | None, Exception | None]:
        platform, payload, target = self.platform, item.payload, item.target
        result: SendResult | None = None
        try:
            match item.kind:
                case OutboundKind.SAY:
                    result = await platform.say(target, payload["text"], payload["mentions"])
                case OutboundKind.PRIVATE:
                    result = await platform.send_private(target, payload["text"])
                case OutboundKind.REMOVE:
                    await platform.remove_member(target, payload["member_id"], payload["reason"])
                case OutboundKind.INVITE:
                    await platform.invite(target, payload["contact_id"])
        except Exception as exc:
            return None, exc
        # Removals and invites return nothing: success is SendResult(ok=True), like a send.
        return (result if isinstance(result, SendResult) else SendResult(ok=True)), None

    def _settle(
        self,
        key: tuple[Lane, str, str],
        item: OutboundItem,
        result: SendResult | None,
        error: Exception | None,
    ) -> _Outcome:
        done_at = self.clock.now()
        self._record_call(item, done_at)
        rate_limited = (isinstance(error, PlatformError) and error.rate_limited) or (
            result is not None and not result.ok and result.rate_limited
        )
        if rate_limited:
            self._stats.rate_limited += 1
            self._back_off(item, done_at, error or (result.error if result else None))
            return _Outcome(item)  # stays at the head of its queue
        if error is None and result is not None and result.ok:
            self._rate_limit_streak = 0
            self._blocked_until = None
            self._stats.sent += 1
            self._finish(key, item, ItemState.SENT, result, None)
            return _Outcome(item, True, result, None)
        item.errors += 1
        reason = error if error is not None else (result.error if result else None) or "unknown error"
        if isinstance(error, PlatformError) and error.permanent:
            self._stats.failed += 1
            log.warning("outbox: %s to %s refused, not retried: %s", item.kind, item.target, reason)
            self._finish(key, item, ItemState.FAILED, result, error)
            return _Outcome(item, True, result, error)
        if item.errors > self.settings.max_retries:
            self._stats.failed += 1
            log.error(
                "outbox: %s to %s failed after %d attempt(s), giving up: %s",
                item.kind,
                item.target,
                item.attempts,
                reason,
            )
            self._finish(key, item, ItemState.FAILED, result, error)
            return _Outcome(item, True, result, error)
        self._stats.retried += 1
        delay = self._backoff_seconds(item.errors)
        item.not_before = done_at + timedelta(seconds=delay)
        log.warning(
            "outbox: %s to %s failed (%s); retry %d/%d in %.0f s",
            item.kind,
            item.target,
            reason,
            item.errors,
            self.settings.max_retries,
            delay,
        )
        return _Outcome(item)

    def _record_call(self, item: OutboundItem, at: datetime) -> None:
        # Every call counts against the budgets, failed or not: the platform saw it.
        lane_of = _LANE_OF[item.kind]
        lane = self._lanes[lane_of]
        lane.window.append(at)
        lane.next_at = at + timedelta(seconds=lane.gap + self._rng.uniform(0, lane.jitter))
        self._last_call = at
        if lane_of is Lane.MESSAGE:
            window = self._chats.get(item.chat)
            if window is None:
                window = self._chats[item.chat] = deque(maxlen=self.settings.per_group_per_minute)
            window.append(at)
            self._spend_budget(lane, at)
        self._calls += 1
        if self._calls % 512 == 0:
            self._forget_quiet_chats(at)

    def _spend_budget(self, lane: _LaneState, at: datetime) -> None:
        hourly = lane.hourly
        assert hourly is not None
        hourly.append(at)
        expired = at - _HOUR
        while hourly[0] <= expired:
            hourly.popleft()
        used, budget = len(hourly), self.settings.per_hour
        if not self._budget_alerted and used >= budget * self.settings.budget_alert:
            self._budget_alerted = True
            self._budget_alert_due = used
            log.warning(
                "outbox: %d of the %d messages this account may send per hour were sent in the last hour", used, budget
            )
        elif self._budget_alerted and used < budget / 2:
            self._budget_alerted = False  # well below again: the next climb is worth another alert

    def budget_left(self) -> int:
        """Messages this account may still send this hour: the hourly budget less what went
        out in the last hour and what waits in the message lane (it will go out)."""
        hourly = self._lanes[Lane.MESSAGE].hourly
        since = self.clock.now() - _HOUR
        used = sum(1 for at in hourly if at > since) if hourly is not None else 0
        waiting = sum(len(q) for key, q in self._queues.items() if key[0] is Lane.MESSAGE)
        return max(0, self.settings.per_hour - used - waiting)

    @property
    def sent_last_hour(self) -> int:
        """Messages (group and private) sent in the hour up to the latest send."""
        hourly = self._lanes[Lane.MESSAGE].hourly
        return len(hourly) if hourly is not None else 0

    def _forget_quiet_chats(self, now: datetime) -> None:
        # Chats without a send in the last minute constrain nothing; keep the dict small.
        quiet = [chat for chat, window in self._chats.items() if window[-1] + _MINUTE <= now]
        for chat in quiet:
            del self._chats[chat]

    def _backoff_seconds(self, n: int) -> float:
        return min(self.settings.backoff_initial * 2.0 ** (n - 1), self.settings.backoff_max)

    def _back_off(self, item: OutboundItem, now: datetime, why: object) -> None:
        self._rate_limit_streak += 1
        streak = self._rate_limit_streak
        delay = self._backoff_seconds(streak)
        opens_breaker = streak >= self.settings.breaker_threshold
        if opens_breaker:
            delay = max(delay, self.settings.breaker_cooldown)
        self._blocked_until = now + timedelta(seconds=delay)
        if opens_breaker:
            log.warning(
                "outbox: circuit breaker open after %d rate-limit errors (last: %s to %s: %s); "
                "holding %d queued item(s) until %s",
                streak,
                item.kind,
                item.target,
                why,
                self._pending,
                self._blocked_until.isoformat(),
            )
        else:
            log.warning(
                "outbox: rate limited on %s to %s (%s); backing off %.0f s",
                item.kind,
                item.target,
                why,
                delay,
            )

    def _finish(
        self,
        key: tuple[Lane, str, str],
        item: OutboundItem,
        state: ItemState,
        result: SendResult | None,
        error: Exception | None,
    ) -> None:
        queue = self._queues.get(key)
        # The queue may have been discarded (and even refilled) while the call was in flight.
        if queue and queue[0] is item:
            queue.popleft()
            if not queue:
                del self._queues[key]
            self._pending -= 1
        item.state, item.result, item.error = state, result, error

    async def _report(self, outcome: _Outcome) -> None:
        item, result, error = outcome.item, outcome.result, outcome.error
        if self._on_result is not None:
            try:
                await self._on_result(item, result, error)
            except Exception:
                log.exception("outbox: result callback failed for %s to %s", item.kind, item.target)
        if item.on_done is not None:
            try:
                await item.on_done(result, error)
            except Exception:
                log.exception("outbox: result callback failed for %s to %s", item.kind, item.target)

    # --- loops ---------------------------------------------------------------------------
    async def run(self) -> None:
        """The real-time worker: sleep (on the clock) until something is due or something is
        enqueued, send, repeat. Cancel the task to stop it."""
        while True:
            self._wakeup.clear()
            due = self.next_due()
            if due is not None and due <= self.clock.now():
                try:
                    await self.send_next()
                except Exception:  # a bug here must not silence the account for good
                    log.exception("outbox: unexpected error while sending")
                    await asyncio.sleep(1)
                continue
            if due is None:  # nothing queued: only an enqueue can wake it (no tasks to build)
                await self._wakeup.wait()
                continue
            waits: set[asyncio.Future[Any]] = {
                asyncio.ensure_future(self._wakeup.wait()),
                asyncio.ensure_future(self.clock.sleep_until(due)),
            }
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waits:
                    waiter.cancel()

    async def drain(self, deadline: datetime | None = None) -> list[OutboundItem]:
        """Shutdown: keep sending, at the usual pace, until the queue is empty or the next
        send would be after `deadline`. Returns (and logs) the items left unsent."""
        while self._pending:
            due = self.next_due()
            if due is None or (deadline is not None and due > deadline):
                break
            if due > self.clock.now():
                await self.clock.sleep_until(due)
            await self.send_next()
        left = self.pending_items()
        if left:
            log.warning(
                "outbox: %d item(s) left unsent: %s",
                len(left),
                ", ".join(f"{item.kind} to {item.target}" for item in left[:20]),
            )
        return left


def _require_id(what: str, value: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"outbox: a {what} id is required, got {value!r}")
