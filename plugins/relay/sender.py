"""Relay sends, paced by the outbox and merged while they wait.

A lecture relayed to ten groups costs ten sends per message, and the outbox caps the
account (by default 30 messages a minute, 10 per group): a lecturer faster than that
would build an ever-growing backlog. So each target group has at most one relay item
waiting in the outbox; lines arriving meanwhile are queued here and go out together, in
order, as the next message to that group once the waiting one has been sent. The lag
stays bounded by the outbox's pace and no line is lost or repeated.

It also remembers what it sent where, so an echo of it (a puppet re-delivering the
bot's message under another id, or a second relay bot copying it) is never relayed again.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta

from bot.core.clock import Clock
from bot.core.outbox import ItemState, OutboundItem, Outbox
from bot.core.platform import SendResult

_ECHO_MEMORY = 200  # remembered texts per group


class RelaySender:
    def __init__(self, outbox: Outbox, clock: Clock, *, merge: bool, echo_window: float) -> None:
        self._outbox = outbox
        self._clock = clock
        self._merge = merge
        self._echo_window = timedelta(seconds=echo_window)
        self._inflight: dict[str, OutboundItem] = {}
        self._waiting: dict[str, deque[str]] = {}
        self._sent: dict[str, deque[tuple[datetime, str]]] = {}
        self.merged = 0  # lines that shared a send with an earlier one

    def send(self, group_id: str, text: str) -> None:
        if not text.strip():
            return
        if not self._merge:
            self._enqueue(group_id, text)
            return
        self._waiting.setdefault(group_id, deque()).append(text)
        item = self._inflight.get(group_id)
        if item is None or item.state is not ItemState.QUEUED:
            self._flush(group_id)

    @property
    def merges(self) -> bool:
        return self._merge

    def backlog(self, group_id: str | None = None) -> int:
        """Lines waiting here (not yet handed to the outbox)."""
        if group_id is not None:
            return len(self._waiting.get(group_id, ()))
        return sum(len(q) for q in self._waiting.values())

    def forget_group(self, group_id: str) -> None:
        """The bot left the group: nothing more goes there."""
        self._waiting.pop(group_id, None)
        self._inflight.pop(group_id, None)
        self._sent.pop(group_id, None)

    def is_echo(self, group_id: str, text: str) -> bool:
        sent = self._sent.get(group_id)
        if not sent or not text:
            return False
        horizon = self._clock.now() - self._echo_window
        while sent and sent[0][0] < horizon:
            sent.popleft()
        stripped = text.strip()
        return any(stripped == old for _, old in sent)

    # --- internals ---------------------------------------------------------------------
    def _flush(self, group_id: str) -> None:
        queue = self._waiting.get(group_id)
        if not queue:
            self._waiting.pop(group_id, None)
            return
        limit = self._outbox.settings.max_chars
        lines = [queue.popleft()]
        size = len(lines[0])
        while queue and size + 1 + len(queue[0]) <= limit:
            line = queue.popleft()
            size += 1 + len(line)
            lines.append(line)
        self.merged += len(lines) - 1
        if not queue:
            del self._waiting[group_id]
        self._enqueue(group_id, "\n".join(lines))

    def _enqueue(self, group_id: str, text: str) -> None:
        items = self._outbox.say(group_id, text)
        if not items:
            return
        sent = self._sent.setdefault(group_id, deque(maxlen=_ECHO_MEMORY))
        now = self._clock.now()
        sent.append((now, text.strip()))
        if len(items) > 1:  # split by the outbox: an echo comes back part by part
            sent.extend((now, str(item.payload.get("text", "")).strip()) for item in items)
        if self._merge:
            last = items[-1]
            self._inflight[group_id] = last

            async def done(_result: SendResult | None, _error: Exception | None) -> None:
                self._done(group_id, last)

            last.on_done = done

    def _done(self, group_id: str, item: OutboundItem) -> None:
        if self._inflight.get(group_id) is item:
            del self._inflight[group_id]
            self._flush(group_id)
