"""The hooks through which one process tells the others sharing its database what changed, and
hands an action to the account on duty in another group (several accounts, DESIGN §6).

The core defines the interfaces; `bot.cluster.bus.PgBus` (PostgreSQL LISTEN/NOTIFY) and
`bot.cluster.handoff.ClusterHandoff` implement them, and the composition root plugs them in.
Without them (one account: the default, and always on SQLite) `Services.bus` and
`Services.handoff` are None, and nothing is published or handed over.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel

from bot.core.outbox import DoneCallback

P = TypeVar("P", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Topic(Generic[P]):
    """A kind of notice and the model of its payload (JSON, at most a few kilobytes: PostgreSQL
    caps a notification at 8000 bytes)."""

    name: str
    model: type[P]


class Bus(Protocol):
    async def publish(self, topic: Topic[P], payload: P) -> None:
        """Tell every other process (not this one: it made the change and applied it). Never
        raises: a notice that cannot be sent is logged, and the others catch up on their
        periodic re-read or their resync after an outage."""
        ...

    def subscribe(
        self,
        topic: Topic[P],
        on_message: Callable[[P], Awaitable[None]],
        *,
        on_resync: Callable[[], Awaitable[None]] | None = None,
    ) -> Callable[[], None]:
        """Call `on_message` for each notice on `topic` from another process, and `on_resync`
        after the listening connection came back from an outage (notices sent meanwhile are
        lost: re-read everything). Returns the function that unsubscribes."""
        ...


HandoffKind = Literal["say", "invite"]


class Handoff(Protocol):
    def acts_in(self, group_id: str) -> bool:
        """Whether this account is on duty in `group_id` (act here) or another must (hand over)."""
        ...

    async def served_groups(self) -> frozenset[str]:
        """Every group some running account is in (from the database)."""
        ...

    async def pass_on(
        self,
        group_id: str,
        kind: HandoffKind,
        payload: Mapping[str, Any],
        key: str,
        *,
        on_done: DoneCallback | None = None,
        merge: bool = False,
    ) -> bool:
        """Hand an action for `group_id` to the account on duty there. `key` makes it idempotent:
        a second hand-over with the same key is ignored (returns False). `on_done` is called
        once, here, when the other account reports it sent or failed (or it expired untaken).
        `merge` (a say): it may share one message with the lines handed over next to it."""
        ...
