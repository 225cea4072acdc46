"""The recorder's bounded buffer of events waiting to be written.

It holds events in arrival order and knows roughly what they weigh in memory. Past its
limits it sheds the oldest raw chat messages, never joins, leaves or the bot's own
messages (`shed`); the recorder counts and reports what was dropped.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from bot.core import events as ev
from bot.core.events import Event
from bot.storage.settings import StorageSettings

# Raw chat messages: what the buffer may drop, oldest first, when it is full. Everything
# else (joins, leaves, renames, the bot's own messages) is rare and carries state.
_DROPPABLE: frozenset[type[Event]] = frozenset({ev.GroupMessage, ev.PrivateMessage})
# What an event costs in memory, roughly: the objects themselves, plus its text.
_EVENT_BYTES = 600
_MEMBER_BYTES = 150  # one listed member: the Member, its id and name
MAX_LISTED_PER_BATCH = 20_000  # members in the member lists of one batch (see `EventBuffer.take`)


def event_bytes(event: Event) -> int:
    if type(event) is ev.MemberList:
        return _EVENT_BYTES + _MEMBER_BYTES * len(event.members)
    text = getattr(event, "text", None)
    return _EVENT_BYTES + 2 * len(text) if text else _EVENT_BYTES


class EventBuffer:
    """Events in arrival order, with their approximate size in memory (`bytes`)."""

    __slots__ = ("_events", "_no_shed_below", "_settings", "bytes")

    def __init__(self, settings: StorageSettings) -> None:
        self._events: deque[Event] = deque()
        self._settings = settings
        self.bytes = 0  # `event_bytes` of what is held
        self._no_shed_below = 0  # a shed found nothing to drop: do not rescan before this length

    def __len__(self) -> int:
        return len(self._events)

    def __iter__(self) -> Iterator[Event]:
        return iter(self._events)

    def add(self, event: Event) -> bool:
        """Append an event. True when the buffer is past a limit and worth a `shed`."""
        events = self._events
        events.append(event)
        self.bytes += event_bytes(event)
        size = len(events)
        settings = self._settings
        return (
            size > settings.buffer_max_events or self.bytes > settings.buffer_max_bytes
        ) and size >= self._no_shed_below

    def shed(self) -> int:
        """Drop the oldest raw messages until the buffer is 1% under its limits (so that a
        full buffer sheds in steps, not on every event). Other events are never dropped.
        Returns how many were dropped."""
        settings = self._settings
        max_events = settings.buffer_max_events * 99 // 100
        max_bytes = settings.buffer_max_bytes * 99 // 100
        events = self._events
        kept: list[Event] = []
        dropped = 0
        while events and (len(events) + len(kept) > max_events or self.bytes > max_bytes):
            event = events.popleft()
            if type(event) in _DROPPABLE:
                self.bytes -= event_bytes(event)
                dropped += 1
            else:
                kept.append(event)
        events.extendleft(reversed(kept))
        if not dropped:
            # Nothing droppable left: let the buffer grow a step before looking again.
            self._no_shed_below = len(events) + max(1, settings.buffer_max_events // 100)
        else:
            self._no_shed_below = 0
        return dropped

    def take(self, size: int) -> list[Event]:
        """The next batch, taken out: `size` events, or fewer once its member lists hold
        `MAX_LISTED_PER_BATCH` members (an hourly read of a thousand groups is not one
        transaction of half a million rows)."""
        events = self._events
        batch: list[Event] = []
        listed = 0
        while len(batch) < size:
            event = events.popleft()
            batch.append(event)
            if type(event) is ev.MemberList:
                listed += len(event.members)
                if listed >= MAX_LISTED_PER_BATCH:
                    break
        self.bytes -= sum(map(event_bytes, batch))
        return batch

    def put_back(self, events: list[Event]) -> None:
        """Return unwritten events to the front, in order, for the next flush."""
        self._events.extendleft(reversed(events))
        self.bytes += sum(map(event_bytes, events))

    def take_all(self) -> list[Event]:
        events = list(self._events)
        self._events.clear()
        self.bytes = 0
        return events
