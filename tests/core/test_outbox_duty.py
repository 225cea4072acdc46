"""The outbox's duty hook (several accounts): group actions carry the duty token they were
queued under and reach the platform only while it holds; private messages are never fenced."""

from __future__ import annotations

from bot.core.duty import OffDuty
from bot.core.events import Event
from bot.core.outbox import ItemState
from bot.core.platform import SendResult
from tests.core.test_outbox import make


class Gate:
    """A duty gate under the test's control: the token per group now, and every check made."""

    def __init__(self, tokens: dict[str, int]) -> None:
        self.tokens = tokens
        self.checks: list[tuple[str, int | None]] = []

    async def acts_in(self, event: Event) -> bool:
        return True

    def token(self, group_id: str) -> int | None:
        return self.tokens.get(group_id)

    async def may_act(self, group_id: str, token: int | None) -> bool:
        self.checks.append((group_id, token))
        return token is not None and self.tokens.get(group_id) == token


async def test_actions_go_out_while_the_token_holds() -> None:
    _, platform, outbox = make(min_gap=0, jitter=0)
    gate = outbox.duty = Gate({"g1": 7})
    [item] = outbox.say("g1", "在的")
    assert item.fence_token == 7
    await outbox.drain()
    assert item.state is ItemState.SENT and [c[1] for c in platform.calls] == ["say"]
    assert gate.checks == [("g1", 7)]


async def test_an_action_queued_under_an_old_token_is_refused_without_a_platform_call() -> None:
    _, platform, outbox = make(min_gap=0, jitter=0)
    gate = outbox.duty = Gate({"g1": 1})
    outcomes: list[tuple[SendResult | None, Exception | None]] = []

    async def done(result: SendResult | None, error: Exception | None) -> None:
        outcomes.append((result, error))

    [say] = outbox.say("g1", "欢迎")
    say.on_done = done
    kick = outbox.remove("g1", "spammer", "广告")
    gate.tokens["g1"] = 2  # another account took over (or we lost and re-took the duty) meanwhile
    later = outbox.say("g1", "queued after the takeover")  # stamped 2: ours again
    await outbox.drain()
    assert (say.state, kick.state, later[0].state) == (ItemState.DISCARDED, ItemState.DISCARDED, ItemState.SENT)
    assert [c[1:3] for c in platform.calls] == [("say", "g1")]  # the refused ones never reached the platform
    assert outbox.stats.fenced == 2 and outbox.stats.sent == 1 and outbox.stats.failed == 0
    assert outbox.pending == 0
    [(result, error)] = outcomes
    assert result is None and isinstance(error, OffDuty)


async def test_not_on_duty_at_all_means_no_group_action_but_private_messages_go() -> None:
    _, platform, outbox = make(min_gap=0, jitter=0)
    gate = outbox.duty = Gate({})
    [say] = outbox.say("g1", "hi")
    [private] = outbox.send_private("alice", "hi")
    assert say.fence_token is None
    await outbox.drain()
    assert say.state is ItemState.DISCARDED and private.state is ItemState.SENT
    assert [c[1] for c in platform.calls] == ["private"]
    assert gate.checks == [("g1", None)]


async def test_without_a_gate_nothing_is_checked() -> None:
    _, platform, outbox = make(min_gap=0, jitter=0)
    [say] = outbox.say("g1", "hi")
    assert say.fence_token is None
    await outbox.drain()
    assert say.state is ItemState.SENT and outbox.stats.fenced == 0 and len(platform.calls) == 1
