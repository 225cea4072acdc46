"""Where a relay line goes: into our own outbox, or, with several accounts sharing one
PostgreSQL, to the account on duty in the target group (`Services.handoff`), which sends it."""

from __future__ import annotations

import logging

from bot.core.context import Services
from bot.core.events import GroupMessage
from plugins.relay.sender import RelaySender

log = logging.getLogger("qunbot.plugin.relay")


async def send(services: Services, sender: RelaySender, group_id: str, text: str, key: str) -> None:
    """Send `text` into `group_id`; `key` makes a hand-over idempotent (one relayed message,
    one target). Lines handed over are merged by the account that sends them, as our own
    sender merges a backlog (when `merge_backlog` is on)."""
    handoff = services.handoff
    if handoff is None or handoff.acts_in(group_id):
        sender.send(group_id, text)
        return
    try:
        await handoff.pass_on(group_id, "say", {"text": text}, key, merge=sender.merges)
    except Exception as exc:
        log.warning("relay: could not hand the line for %s to the account on duty there: %s", group_id, exc)


async def reachable(services: Services) -> frozenset[str] | None:
    """The groups a relay can reach: the bot's, and with several accounts every group another
    running account is in. None: the platform cannot say (then every target is attempted)."""
    present = await services.groups.present()
    handoff = services.handoff
    if present is not None and handoff is not None:
        try:
            present = present | await handoff.served_groups()
        except Exception as exc:
            log.warning("relay: could not read which groups the other accounts are in: %s", exc)
    return present


def message_key(event: GroupMessage) -> str:
    # Without a platform id the relay's ledger cannot tell repeats apart either: the time will do.
    return event.message_id or event.at.isoformat()
