# Over 500 lines: the tests of one module, bot/core/outbox.py.
import asyncio
import itertools
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from bot.core.clock import VirtualClock
from bot.core.events import Member
from bot.core.outbox import (
    ItemState,
    OutboundItem,
    OutboundKind,
    Outbox,
    OutboxSettings,
    cap_parts,
    split_text,
)
from bot.core.platform import Capability, GroupInfo, PlatformError, SendResult

START = datetime(2026, 12, 1, 8, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


class FakePlatform:
    """Records every call with the virtual time; `fail` decides per call what goes wrong."""

    def __init__(self, clock: VirtualClock, fail: Callable[[int, str], object] | None = None) -> None:
        self.clock = clock
        self.calls: list[tuple[datetime, str, str, object]] = []
        self.fail = fail

    @property
    def bot(self) -> Member:
        return Member("wxid_bot", "小助手")

    @property
    def capabilities(self) -> frozenset[Capability]:
        return frozenset(Capability)

    def _record(self, action: str, target: str, what: object) -> SendResult | None:
        self.calls.append((self.clock.now(), action, target, what))
        outcome = self.fail(len(self.calls), action) if self.fail else None
        if isinstance(outcome, Exception):
            raise outcome
        return outcome if isinstance(outcome, SendResult) else None

    async def say(self, group_id: str, text: str, mentions: tuple[str, ...] = ()) -> SendResult:
        return self._record("say", group_id, (text, mentions)) or SendResult(ok=True, message_id="m")

    async def send_private(self, contact_id: str, text: str) -> SendResult:
        return self._record("private", contact_id, text) or SendResult(ok=True)

    async def remove_member(self, group_id: str, member_id: str, reason: str = "") -> None:
        self._record("remove", group_id, member_id)

    async def invite(self, group_id: str, contact_id: str) -> None:
        self._record("invite", group_id, contact_id)

    async def accept_friend(self, request_id: str) -> None: ...

    async def group_info(self, group_id: str) -> GroupInfo | None:
        return None

    async def members(self, group_id: str) -> list[Member]:
        return []

    async def groups(self) -> list[GroupInfo]:
        return []

    async def fetch_image(self, message_id: str, max_bytes: int) -> bytes:
        self._record("fetch_image", message_id, max_bytes)
        raise PlatformError(f"message {message_id} has no image")

    def times(self, action: str | None = None, target: str | None = None) -> list[datetime]:
        return [
            at
            for at, act, tgt, _ in self.calls
            if (action is None or act == action) and (target is None or tgt == target)
        ]


def make(seed: int = 1, fail: Callable[[int, str], object] | None = None, **settings: object):
    clock = VirtualClock(START)
    platform = FakePlatform(clock, fail)
    outbox = Outbox(platform, clock, OutboxSettings(**settings), random.Random(seed))
    return clock, platform, outbox


async def drive(clock: VirtualClock, outbox: Outbox, until: datetime | None = None, max_steps: int = 10_000) -> None:
    """What the simulator does: jump to the next due time, send, repeat."""
    for _ in range(max_steps):
        due = outbox.next_due()
        if due is None or (until is not None and due > until):
            return
        clock.advance_to(due)
        await outbox.send_next()
    raise AssertionError("outbox never went idle")


def gaps(times: list[datetime]) -> list[float]:
    return [(b - a).total_seconds() for a, b in itertools.pairwise(times)]


# --- split_text --------------------------------------------------------------------------

_SEPARATORS = (". ", "? ", "\n", "\n\n", " ", "\u3000", "\r\n")
# Clusters a hard cut should not break: emoji + skin tone, ZWJ family, flags, keycap, accents.
_SCOTLAND = "🏴" + "".join(chr(0xE0000 + ord(c)) for c in "gbsct") + "\U000e007f"
_CLUSTERS = ("😀", "👍🏽", "👨\u200d👩\u200d👧", "🇨🇳", _SCOTLAND, "❤️", "e\u0301", "1\ufe0f\u20e3")
_CONTINUATIONS = ("\u200d", "\u0301", "\ufe0f", "\u20e3", "\U0001f3fd", "\U000e0062", "\U000e007f")
_PIECES = [*"今天天气很好我们一起签到吧大家早上好", *"The quick brown fox jumps over the lazy dog"]
_PIECES += [*"。！？；…!「」", *_SEPARATORS, *_CLUSTERS]


@pytest.mark.parametrize("seed", range(40))
def test_split_text_loses_and_adds_nothing(seed: int) -> None:
    rng = random.Random(seed)
    text = "".join(rng.choices(_PIECES, k=rng.randint(0, 600)))
    for max_chars in (1, 2, 5, 17, 50, 200, 1500):
        parts = split_text(text, max_chars)
        assert "".join(parts) == text
        assert all(0 < len(p) <= max_chars for p in parts)
        for part in parts:
            part.encode("utf-8")
            if max_chars >= 17:  # every cluster fits: none may be cut
                assert not part.startswith(_CONTINUATIONS) and not part.endswith("\u200d"), parts
        if len(text) <= max_chars:
            assert parts == ([text] if text else [])


def test_split_prefers_line_breaks_then_sentences() -> None:
    text = "第一段落内容。\n" + "第二句话很长。第三句！" + "尾巴"
    assert split_text(text, 12) == ["第一段落内容。\n", "第二句话很长。第三句！", "尾巴"]
    assert split_text("Hello there. General Kenobi.", 20) == ["Hello there. ", "General Kenobi."]
    assert split_text("3.14159 is pi and e is 2.718", 12)[0] == "3.14159 is "
    assert split_text("一二三四五六七八九十", 4) == ["一二三四", "五六七八", "九十"]


def test_split_keeps_emoji_clusters_whole_when_it_can() -> None:
    family = "👨‍👩‍👧"
    parts = split_text("a" * 8 + family + "b" * 10, 10)
    assert "".join(parts) == "a" * 8 + family + "b" * 10
    assert not any(p.startswith("\u200d") or p.endswith("\u200d") for p in parts)
    flags = "🇨🇳🇯🇵🇺🇸"
    assert all(len(p) % 2 == 0 for p in split_text(flags, 3))
    assert split_text("abcde\u0301fg", 5) == ["abcd", "e\u0301fg"]


def test_split_rejects_silly_max() -> None:
    with pytest.raises(ValueError):
        split_text("x", 0)


# --- enqueueing ---------------------------------------------------------------------------


async def test_say_splits_and_mentions_only_the_first_part() -> None:
    clock, platform, outbox = make(max_chars=20, max_parts=10)
    items = outbox.say("g1", "@Alice\u2005" + "很长的一段话。" * 8, ("alice",))
    assert len(items) > 1 and outbox.pending == len(items)
    assert [i.kind for i in items] == [OutboundKind.SAY] * len(items)
    await drive(clock, outbox)
    sent = [what for _, _, _, what in platform.calls]
    assert sent[0][1] == ("alice",)
    assert all(mentions == () for _, mentions in sent[1:])
    assert "".join(text for text, _ in sent) == "@Alice\u2005" + "很长的一段话。" * 8
    assert all(i.state is ItemState.SENT for i in items)
    assert outbox.pending == 0 and outbox.next_due() is None


async def test_enqueue_validation() -> None:
    _, _, outbox = make()
    with pytest.raises(ValueError, match="group id"):
        outbox.say("", "hi")
    with pytest.raises(ValueError, match="member id"):
        outbox.remove("g1", "", "spam")
    assert outbox.say("g1", "  \n ") == []
    assert outbox.send_private("alice", "") == []
    assert outbox.pending == 0


# --- pacing ---------------------------------------------------------------------------------


async def test_gap_and_jitter_bounds() -> None:
    clock, platform, outbox = make(min_gap=2.0, jitter=3.0, per_minute=1000, per_group_per_minute=1000)
    for i in range(200):
        outbox.say(f"g{i % 7}", f"消息{i}")
    await drive(clock, outbox)
    times = platform.times()
    assert len(times) == 200
    assert times[0] == START  # nothing sent before: no wait
    spread = gaps(times)
    assert all(2.0 <= g <= 5.0 for g in spread)
    assert max(spread) - min(spread) > 1.0  # jitter is actually applied


async def test_jitter_is_reproducible_with_a_seed() -> None:
    async def run(seed: int) -> list[datetime]:
        clock, platform, outbox = make(seed=seed)
        for i in range(40):
            outbox.say("g1" if i % 2 else "g2", str(i))
            outbox.send_private("alice", str(i))
        await drive(clock, outbox)
        return platform.times()

    assert await run(5) == await run(5)
    assert await run(5) != await run(6)


async def test_per_group_cap_lets_another_group_go_first() -> None:
    clock, platform, outbox = make(min_gap=1.0, jitter=0.0, per_group_per_minute=10, per_minute=100)
    for i in range(11):
        outbox.say("g1", f"第{i + 1}条")
    await drive(clock, outbox, until=START + timedelta(seconds=9.5))
    assert len(platform.calls) == 10
    clock.advance_to(START + timedelta(seconds=9.5))
    outbox.say("g2", "别的群")
    await drive(clock, outbox)
    order = [(tgt, what[0]) for _, _, tgt, what in platform.calls]
    assert order[10] == ("g2", "别的群")
    assert order[11] == ("g1", "第11条")
    g1 = platform.times(target="g1")
    assert g1[10] >= g1[0] + timedelta(minutes=1)


async def test_account_wide_per_minute_cap() -> None:
    clock, platform, outbox = make(min_gap=0.5, jitter=0.0, per_minute=30, per_group_per_minute=100)
    for i in range(100):
        outbox.say(f"g{i % 20}", str(i))
    await drive(clock, outbox)
    times = platform.times()
    for i in range(len(times) - 30):
        assert times[i + 30] - times[i] >= timedelta(minutes=1)


async def test_fifo_per_chat_and_fair_across_chats() -> None:
    clock, platform, outbox = make(min_gap=1.0, jitter=0.0, per_group_per_minute=100, per_minute=100)
    for i in range(6):
        outbox.say("busy", f"b{i}")
    outbox.say("quiet", "q0")
    outbox.send_private("alice", "p0")
    await drive(clock, outbox)
    busy = [what[0] for _, _, tgt, what in platform.calls if tgt == "busy"]
    assert busy == [f"b{i}" for i in range(6)]
    targets = [tgt for _, _, tgt, _ in platform.calls]
    # The quiet chats do not wait behind the whole backlog of the busy one.
    assert targets.index("quiet") <= 2 and targets.index("alice") <= 2


async def test_moderation_lane_is_spaced_and_separate() -> None:
    clock, platform, outbox = make(moderation_gap=15.0, moderation_jitter=10.0, min_gap=1.5, jitter=1.5)
    for member in ("s1", "s2", "s3", "s4"):
        outbox.remove("g1", member, "spam")
    outbox.invite("g2", "carol")
    for i in range(10):
        outbox.say("g1", f"msg{i}")
    await drive(clock, outbox)
    moderation = [at for at, act, _, _ in platform.calls if act in ("remove", "invite")]
    assert len(moderation) == 5
    assert all(15.0 <= g <= 25.0 for g in gaps(moderation))
    messages = platform.times("say")
    # Messages do not queue behind the removals' long gaps.
    assert messages[-1] < moderation[-1]
    everything = sorted(at for at, _, _, _ in platform.calls)
    assert all(g >= 1.5 for g in gaps(everything))


async def test_moderation_hourly_cap() -> None:
    clock, platform, outbox = make(moderation_gap=1.0, moderation_jitter=0.0, moderation_per_hour=5)
    for i in range(7):
        outbox.remove("g1", f"m{i}", "spam")
    await drive(clock, outbox)
    times = platform.times("remove")
    assert times[5] >= times[0] + timedelta(hours=1)


# --- failures ---------------------------------------------------------------------------------


async def test_rate_limit_backs_off_then_breaker_opens_and_nothing_is_lost() -> None:
    limited = {1, 2, 3, 4}

    def fail(n: int, action: str) -> object:
        return PlatformError("操作过于频繁", rate_limited=True) if n in limited else None

    clock, platform, outbox = make(
        fail=fail, backoff_initial=60, backoff_max=1800, breaker_threshold=3, breaker_cooldown=900
    )
    items = [*outbox.say("g1", "一"), *outbox.say("g2", "二"), *outbox.say("g1", "三")]
    await drive(clock, outbox)
    times = platform.times()
    assert len(times) == 4 + 3
    spread = gaps(times)
    assert spread[0] >= 60  # first back-off
    assert spread[1] >= 120  # doubled
    assert spread[2] >= 900  # third in a row: the breaker holds everything for the cool-down
    assert spread[3] >= 900  # half-open attempt failed: open again
    assert [i.state for i in items] == [ItemState.SENT] * 3
    assert [what[0] for _, _, _, what in platform.calls[4:]] == ["一", "二", "三"]
    stats = outbox.stats
    assert (stats.sent, stats.rate_limited, stats.failed) == (3, 4, 0)
    assert sum(i.attempts for i in items) == 7  # every call counted, none lost


async def test_breaker_holds_every_send_while_open() -> None:
    def fail(n: int, action: str) -> object:
        return SendResult(ok=False, rate_limited=True, error="too frequent") if n <= 3 else None

    clock, platform, outbox = make(fail=fail, breaker_threshold=3, breaker_cooldown=900)
    for i in range(5):
        outbox.say(f"g{i}", "hi")
    outbox.remove("g9", "spammer", "ad")
    for _ in range(3):
        due = outbox.next_due()
        assert due is not None
        clock.advance_to(due)
        await outbox.send_next()
    assert outbox.breaker_open
    opened_at = clock.now()
    assert outbox.next_due() >= opened_at + timedelta(seconds=900)
    clock.advance(timedelta(seconds=600))
    assert await outbox.send_next() is None  # nothing goes while the breaker is open
    assert len(platform.calls) == 3 and outbox.pending == 6
    await drive(clock, outbox)
    assert not outbox.breaker_open
    assert len(platform.calls) == 3 + 6
    assert outbox.pending == 0


async def test_other_errors_retry_twice_then_report() -> None:
    def fail(n: int, action: str) -> object:
        return PlatformError("群已解散") if action == "say" else None

    results: list[tuple[OutboundItem, SendResult | None, Exception | None]] = []
    done: list[tuple[SendResult | None, Exception | None]] = []

    async def on_result(item: OutboundItem, result: SendResult | None, error: Exception | None) -> None:
        results.append((item, result, error))

    async def on_done(result: SendResult | None, error: Exception | None) -> None:
        done.append((result, error))

    clock = VirtualClock(START)
    platform = FakePlatform(clock, fail)
    outbox = Outbox(platform, clock, OutboxSettings(backoff_initial=60), random.Random(1), on_result)
    [item] = outbox.say("gone", "hello")
    item.on_done = on_done
    [later] = outbox.send_private("alice", "still works")
    await drive(clock, outbox)
    says = platform.times("say")
    assert len(says) == 3  # one try, two retries
    assert gaps(says)[0] >= 60 and gaps(says)[1] >= 120
    assert item.state is ItemState.FAILED and isinstance(item.error, PlatformError)
    assert later.state is ItemState.SENT
    assert [(r[0], r[2]) for r in results] == [(later, None), (item, item.error)]
    assert done == [(None, item.error)]
    assert outbox.stats.failed == 1 and outbox.stats.sent == 1 and outbox.stats.retried == 2


async def test_failed_send_result_is_retried_and_reported() -> None:
    def fail(n: int, action: str) -> object:
        return SendResult(ok=False, error="boom") if n == 1 else None

    clock, _, outbox = make(fail=fail, backoff_initial=10)
    [item] = outbox.say("g1", "x")
    await drive(clock, outbox)
    assert item.state is ItemState.SENT and item.attempts == 2 and item.result == SendResult(ok=True, message_id="m")


async def test_a_failing_callback_does_not_stop_the_outbox() -> None:
    async def broken(result: SendResult | None, error: Exception | None) -> None:
        raise RuntimeError("callback bug")

    clock, platform, outbox = make()
    first = outbox.remove("g1", "bob", "spam")
    first.on_done = broken
    outbox.say("g1", "next")
    await drive(clock, outbox)
    assert first.state is ItemState.SENT and first.result == SendResult(ok=True)
    assert len(platform.calls) == 2


async def test_nothing_is_lost_under_random_failures() -> None:
    rng = random.Random(99)

    def fail(n: int, action: str) -> object:
        roll = rng.random()
        if roll < 0.1:
            return PlatformError("too frequent", rate_limited=True)
        if roll < 0.2:
            return PlatformError("network")
        return None

    clock, platform, outbox = make(fail=fail, max_chars=30, backoff_initial=5, backoff_max=60, breaker_cooldown=120)
    items: list[OutboundItem] = []
    for i in range(150):
        group = f"g{i % 9}"
        if i % 10 == 0:
            items.append(outbox.remove(group, f"m{i}", "spam"))
        elif i % 7 == 0:
            items += outbox.send_private(f"c{i % 3}", f"私聊{i}")
        else:
            items += outbox.say(group, f"群{group}第{i}条" + "字" * (i % 40))
    await drive(clock, outbox)
    assert outbox.pending == 0
    assert all(i.state in (ItemState.SENT, ItemState.FAILED) for i in items)
    stats = outbox.stats
    assert stats.sent + stats.failed == len(items)
    sent_texts = [what[0] for _, act, _, what in platform.calls if act == "say"]
    for item in items:
        if item.state is ItemState.SENT and item.kind is OutboundKind.SAY:
            assert item.payload["text"] in sent_texts
    # Per chat, successfully sent parts went out in enqueue order.
    for group in {i.target for i in items if i.kind is OutboundKind.SAY}:
        mine = [i for i in items if i.kind is OutboundKind.SAY and i.target == group and i.state is ItemState.SENT]
        order = [what[0] for _, act, tgt, what in platform.calls if act == "say" and tgt == group]
        positions = [max(k for k, text in enumerate(order) if text == i.payload["text"]) for i in mine]
        assert positions == sorted(positions)


# --- loops ---------------------------------------------------------------------------------


async def test_drain_until_deadline_returns_leftovers() -> None:
    _, platform, outbox = make(min_gap=10.0, jitter=0.0)
    for i in range(10):
        outbox.say("g1", str(i))
    left = await outbox.drain(START + timedelta(seconds=35))
    assert len(platform.calls) == 4
    assert [i.payload["text"] for i in left] == [str(i) for i in range(4, 10)]
    assert await outbox.drain() == []
    assert len(platform.calls) == 10


async def test_discard_group() -> None:
    clock, platform, outbox = make()
    kept = outbox.say("g2", "stay")
    dropped = [*outbox.say("g1", "a"), outbox.remove("g1", "x", "spam")]
    assert outbox.discard_group("g1") == dropped
    assert all(i.state is ItemState.DISCARDED for i in dropped)
    assert outbox.pending == 1
    await drive(clock, outbox)
    assert kept[0].state is ItemState.SENT and len(platform.calls) == 1


async def test_run_wakes_on_enqueue_and_is_cancellable() -> None:
    clock, platform, outbox = make()
    task = asyncio.create_task(outbox.run())
    await asyncio.sleep(0)
    outbox.say("g1", "one")
    outbox.say("g2", "two")
    for _ in range(100):
        if len(platform.calls) == 2:
            break
        await asyncio.sleep(0)
    assert [tgt for _, _, tgt, _ in platform.calls] == ["g1", "g2"]
    # Idle: the loop waits for work instead of spinning the virtual clock forward.
    idle_at = clock.now()
    for _ in range(20):
        await asyncio.sleep(0)
    assert clock.now() == idle_at
    outbox.send_private("alice", "three")
    for _ in range(100):
        if len(platform.calls) == 3:
            break
        await asyncio.sleep(0)
    assert len(platform.calls) == 3
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_settings_are_strict() -> None:
    with pytest.raises(ValidationError):
        OutboxSettings(min_gap_seconds=1)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="backoff_max"):
        OutboxSettings(backoff_initial=100, backoff_max=10)
    with pytest.raises(ValidationError):
        OutboxSettings(per_minute=0)
    defaults = OutboxSettings()
    assert defaults.min_gap >= 1.0 and defaults.moderation_gap >= 15.0


# --- flood guards -------------------------------------------------------------------------


async def test_a_huge_message_is_cut_to_max_parts_and_says_so() -> None:
    clock, platform, outbox = make(max_chars=100, max_parts=3)
    text = "这是一句很长的直播内容。" * 100_000  # 1.2 M characters
    items = outbox.say("g1", text)
    assert len(items) == 3
    await drive(clock, outbox)
    sent = [what[0] for _, _, _, what in platform.calls]
    assert len(sent) == 3 and all(len(part) <= 100 for part in sent)
    assert sent[-1].endswith("…（已截断）") and not any("已截断" in part for part in sent[:-1])
    assert "".join(sent).removesuffix("…（已截断）") == text[: len("".join(sent)) - len("…（已截断）")]


def test_cap_parts_keeps_short_texts_and_cuts_at_a_character_boundary() -> None:
    assert cap_parts(["a", "b"], 3, 20) == ["a", "b"]
    parts = cap_parts(["x" * 19 + "👍🏽", "more"], 1, 20)  # only room for 14 characters
    assert parts == ["x" * 14 + "…（已截断）"]
    parts = cap_parts(["x" * 13 + "👍🏽" + "yy", "more"], 1, 20)
    assert parts == ["x" * 13 + "…（已截断）"]  # the emoji and its skin tone go together


async def test_the_hourly_budget_holds_sends_and_alerts_once_at_80_percent() -> None:
    alerts: list[tuple[int, int]] = []

    async def on_budget(used: int, budget: int) -> None:
        alerts.append((used, budget))

    clock, platform, outbox = make(min_gap=1, jitter=0, per_minute=1000, per_group_per_minute=1000, per_hour=10)
    outbox.on_budget = on_budget
    for i in range(25):
        outbox.say(f"g{i % 3}", f"消息{i}")
    await drive(clock, outbox, until=START + timedelta(minutes=59))
    assert len(platform.calls) == 10  # the hour's budget, then nothing
    assert alerts == [(8, 10)]
    assert outbox.sent_last_hour == 10
    await drive(clock, outbox)
    times = platform.times()
    assert len(times) == 25
    # Never more than 10 in any hour.
    assert all(sum(1 for t in times if a <= t < a + timedelta(hours=1)) <= 10 for a in times)
    assert alerts == [(8, 10)]  # the rolling hour never dropped below half: no second alert


async def test_a_permanent_refusal_is_not_retried() -> None:
    def fail(n: int, action: str) -> object:
        return PlatformError("bob is not in group g1", permanent=True) if action == "remove" else None

    clock, platform, outbox = make(fail=fail, backoff_initial=60)
    item = outbox.remove("g1", "bob", "spam")
    await drive(clock, outbox)
    assert platform.times("remove") == [platform.times("remove")[0]]  # one call
    assert item.state is ItemState.FAILED and item.attempts == 1
    assert outbox.stats.failed == 1 and outbox.stats.retried == 0


# --- scheduling without scans ----------------------------------------------------------------


def _expected_pick(outbox: Outbox, now: datetime, last_served: dict[tuple[str, str], datetime]):
    """The rule spelled out as a scan over every queue: among the heads that may go now, the
    chat served least recently, then the oldest item; moderation before messages."""
    best, best_rank, due = None, None, None
    for key, queue in outbox._queues.items():
        head = queue[0]
        at = max(outbox._head_eligible_at(key, head), outbox._lane_ready(key[0]))
        due = at if due is None or at < due else due
        if at > now:
            continue
        served = last_served.get(head.chat) if head.lane.value == "message" else None
        rank = (served or datetime.min.replace(tzinfo=START.tzinfo), head.seq)
        if best_rank is None or rank < best_rank:
            best, best_rank = head, rank
    return best, due


@pytest.mark.parametrize("seed", range(6))
async def test_indexed_pick_matches_a_scan_of_every_queue(seed: int) -> None:
    """The heaps choose exactly what a scan would, through retries, rate limits, the breaker,
    discarded groups and per-chat caps."""
    rng = random.Random(seed)

    def fail(n: int, action: str) -> object:
        roll = rng.random()
        if roll < 0.04:
            return PlatformError("too frequent", rate_limited=True)
        if roll < 0.12:
            return PlatformError("network")
        return None

    clock, _platform, outbox = make(
        seed,
        fail=fail,
        min_gap=0.5,
        jitter=1,
        per_group_per_minute=3,
        per_minute=12,
        backoff_initial=2,
        backoff_max=30,
        breaker_cooldown=40,
        moderation_gap=5,
    )
    last_served: dict[tuple[str, str], datetime] = {}
    sends = 0
    for step in range(1500):
        roll = rng.random()
        if roll < 0.3:
            outbox.say(f"g{rng.randrange(12)}", f"第{step}条")
        elif roll < 0.34:
            outbox.send_private(f"c{rng.randrange(4)}", f"私聊{step}")
        elif roll < 0.37:
            outbox.remove(f"g{rng.randrange(12)}", f"m{step}")
        elif roll < 0.38:
            outbox.discard_group(f"g{rng.randrange(12)}")
        elif roll < 0.6:
            clock.advance(timedelta(seconds=rng.uniform(0, 4)))
        else:
            now = clock.now()
            expected, due = _expected_pick(outbox, now, last_served)
            actual_due = outbox.next_due()
            if due is None or due > now:
                assert actual_due == due
            else:
                assert actual_due is not None and actual_due <= now
            item = await outbox.send_next()
            assert item is expected
            if item is not None:
                sends += 1
                if item.lane.value == "message":
                    last_served[item.chat] = clock.now()
    assert sends > 100
    await drive(clock, outbox)
    assert outbox.pending == 0 and outbox.next_due() is None


async def test_scheduling_heaps_stay_small() -> None:
    """Retired heap entries are dropped as they surface: a long run leaves no trail."""
    clock, _platform, outbox = make(min_gap=0, jitter=0, per_group_per_minute=1000, per_minute=100_000)
    for round_ in range(50):
        for g in range(20):
            outbox.say(f"g{g}", f"{round_}")
        if round_ % 10 == 0:
            outbox.discard_group("g3")
        await drive(clock, outbox)
    sizes = [len(h) for heaps in (outbox._waiting, outbox._ready) for h in heaps.values()]
    assert sum(sizes) <= 20 and not outbox._entries
