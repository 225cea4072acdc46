"""End-to-end throughput: group messages through the whole bot.

100,000 group messages go through the real dispatcher with every plugin of the default
config on, the keyword plugin loaded with 10,000 rules, and the recorder writing to SQLite.
The end-to-end figure is the whole work: the outbox worker runs beside the dispatcher (pacing
off, as on the console) and sends every reply, each sent reply is recorded, and the shutdown
(outbox drain, final flush) is inside the timing. The dispatch-only figure, printed beside it,
leaves the outbox stopped: replies are queued, never sent. Scheduled jobs (the check-in points
flush) run beside the dispatcher, as in `qunbot run`, and inside the timing. The baseline, measured in the same
run, is the raw batched SQLite insert rate of the same event-log rows without any bot in front.

`outbox_send_us` is the cost of one send (pick, platform call, settle, result callback) with
a short and with a long queue spread over many chats: it must not grow with the queue.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.__main__ import figure
from bench.matching_bench import _messages, _word, keyword_match_rate
from bot.adapters.world import World, WorldPlatform
from bot.app import BotApp, LoadedConfig, load_everything
from bot.config.errors import LineMap
from bot.core.clock import VirtualClock
from bot.core.events import GroupMessage, Member
from bot.core.loader import load_plugins
from bot.core.manage import plugin as core_plugin
from bot.core.outbox import Outbox, OutboxSettings
from bot.core.platform import SendResult
from bot.core.scheduler import Scheduler
from bot.runner import CONSOLE_OUTBOX

REPO = Path(__file__).resolve().parent.parent
N_MESSAGES = 100_000
N_RULES = 10_000
N_GROUPS = 50
MEMBERS_PER_GROUP = 200


def bench_config() -> LoadedConfig:
    """The default config (every plugin on) with 10,000 keyword rules."""
    base = load_everything(REPO / "config" / "bot.yaml")
    rng = random.Random(11)
    # FAQ-style keywords of 3-6 characters (product names, questions): a few percent of
    # chat hits a rule, as in a real group. The matching bench uses harsher 2-5 character ones.
    rules = [
        {
            "keywords": [_word(rng, 3, 6)],
            "match": rng.choice(["contains", "contains", "exact", "prefix"]),
            "replies": [f"回复{i}"],
        }
        for i in range(N_RULES)
    ]
    rules += [{"keywords": [kw], "match": "contains", "replies": ["收到"]} for kw in ("群规", "红包", "优惠券")]
    plugins = dict(base.config.plugins)
    plugins["keyword_reply"] = {"rules": rules}
    config = base.config.model_copy(update={"plugins": plugins})
    settings = load_plugins(config, LineMap("<bench>", {}), builtin=[core_plugin])
    return LoadedConfig(config, base.lines, settings, None)


def make_events(start: datetime, n: int) -> list[GroupMessage]:
    rng = random.Random(5)
    texts = _messages(rng, n, ["签到", "群规", "早上好", "红包", "优惠券"])
    events = []
    for i, text in enumerate(texts):
        gid = f"g{i % N_GROUPS}"
        mid = f"m{rng.randrange(MEMBERS_PER_GROUP)}_{gid}"
        events.append(
            GroupMessage(
                at=start + timedelta(milliseconds=10 * i),
                group_id=gid,
                sender=Member(mid, mid),
                text=text,
                message_id=f"bench-{i}",
            )
        )
    return events


async def pipeline_rate(n: int = N_MESSAGES, *, send: bool = True) -> tuple[float, dict[str, int]]:
    """Messages/s, and the dispatcher's counters plus what the recorder wrote, what it still
    had to write after the last message, and how long the shutdown took. With `send`, the
    outbox worker sends the replies as they come and the shutdown drains it; without, the
    replies stay queued and the figure is dispatch and recording only."""
    loaded = bench_config()
    start = datetime(2026, 12, 1, 8, tzinfo=UTC)
    clock = VirtualClock(start)
    world = World(Member("wxid_bot", "小助手"))
    for g in range(N_GROUPS):
        world.add_group(f"g{g}", f"群{g}", "owner1", [], [f"m{i}_g{g}" for i in range(MEMBERS_PER_GROUP)])
    platform = WorldPlatform(world, clock, keep_actions=False)
    events = make_events(start, n)
    with tempfile.TemporaryDirectory() as tmp:
        app = BotApp(
            loaded,
            platform,
            clock,
            rng=random.Random(1),
            db_url=f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}",
            outbox_settings_override=CONSOLE_OUTBOX,
        )
        await app.start()
        assert app.dispatcher is not None and app.recorder is not None and app.services is not None
        outbox = app.services.outbox
        handle = app.dispatcher.dispatch
        began = time.perf_counter()
        worker = asyncio.create_task(outbox.run(), name="outbox") if send else None
        # Time is virtual, so the bench fires the scheduler's due jobs itself, every 1,000
        # messages; but beside the dispatcher, as `qunbot run` does (the scheduler has its own
        # task there), not between two messages: a job that waits for the database (the
        # check-in points flush, queued behind the recorder's batch) holds up no message.
        # Its work is still timed: the last run is awaited before the clock stops.
        scheduler = app.services.scheduler
        jobs: asyncio.Task[None] | None = None
        for i, event in enumerate(events):
            clock.advance_to(event.at)
            await handle(event)
            if i % 1000 == 0:
                jobs = asyncio.create_task(_run_due_after(jobs, scheduler))
        if jobs is not None:
            await jobs
        # Whether the recorder and the outbox kept up: what they still had after the last message.
        behind, queued = app.recorder.pending, outbox.pending
        stop_began = time.perf_counter()
        if worker is not None:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
            await app.stop()  # drains the outbox, then the recorder's final flush
            written = app.recorder.written
        else:
            await app.recorder.flush()
            written = app.recorder.written
        done = time.perf_counter()
        stats = dict(app.dispatcher.stats)
        stats["recorded"] = written
        stats["unwritten_after_last_message"] = behind
        stats["queued_sends_after_last_message"] = queued
        stats["shutdown_ms"] = round((done - stop_began) * 1000)
        stats["sent"] = outbox.stats.sent
        stats["unsent"] = outbox.pending
        if worker is None:
            await app.stop(drain_seconds=0)
    return n / (done - began), stats


async def _run_due_after(previous: asyncio.Task[None] | None, scheduler: Scheduler) -> None:
    """The scheduler's due jobs, once the previous run is over: one run at a time, as its
    own loop runs them."""
    if previous is not None:
        await previous
    await scheduler.run_due()


class _NullPlatform:
    """Answers every send at once: what is left is the outbox's own cost."""

    async def say(self, group_id: str, text: str, mentions: tuple[str, ...] = ()) -> SendResult:
        return SendResult(True, "x")


async def outbox_send_cost(queued: int, chats: int = 1_000, sends: int = 10_000, rounds: int = 5) -> float:
    """Microseconds per send through `Outbox.send_next` (pacing off) with `queued` replies
    waiting across `chats` groups: the median of `rounds` rounds of `sends` sends each, the
    queue topped up to `queued` before each round. A round is long enough that the garbage
    collector's share is in it as it falls on every send, not as one pause that happens to
    land in a short round (a single full collection over the waiting items made one 2,000-send
    round look several times slower than the next). CPU time, not wall time: on a shared host
    the wall clock also counts the time other processes had the processor."""
    clock = VirtualClock(datetime(2026, 12, 1, 8, tzinfo=UTC))
    settings = OutboxSettings.model_validate({**OutboxSettings().model_dump(), **CONSOLE_OUTBOX})
    recorded: list[str] = []

    async def on_result(item: object, result: SendResult | None, error: Exception | None) -> None:
        recorded.append("x")

    outbox = Outbox(_NullPlatform(), clock, settings, random.Random(1), on_result=on_result)  # type: ignore[arg-type]
    for i in range(queued + sends):
        outbox.say(f"g{i % chats}", f"回复{i}")
    for _ in range(sends):  # fill the per-chat windows first: the steady state
        await outbox.send_next()
    timings = []
    for _ in range(rounds):
        for i in range(sends):  # back to `queued` waiting
            outbox.say(f"g{i % chats}", f"回复{i}")
        began = time.process_time()
        for _ in range(sends):
            await outbox.send_next()
        timings.append((time.process_time() - began) / sends * 1e6)
    return statistics.median(timings)


async def figures() -> list[dict[str, object]]:
    from bench.storage_bench import raw_insert_rate

    baseline = await raw_insert_rate(N_MESSAGES)
    rate, stats = await pipeline_rate()
    dispatch_rate, dispatch_stats = await pipeline_rate(send=False)
    keyword = keyword_match_rate(N_RULES, N_MESSAGES)
    short, long = await outbox_send_cost(100), await outbox_send_cost(100_000)
    return [
        figure(
            "pipeline_messages_per_s",
            rate,
            "messages/s",
            baseline,
            target=20_000,
            messages=N_MESSAGES,
            keyword_rules=N_RULES,
            handled=stats["handled"],
            sent=stats["sent"],
            unsent=stats["unsent"],
            recorded=stats["recorded"],
            unwritten_after_last_message=stats["unwritten_after_last_message"],
            queued_sends_after_last_message=stats["queued_sends_after_last_message"],
            shutdown_ms=stats["shutdown_ms"],
            dispatch_only_messages_per_s=round(dispatch_rate),
            baseline_name="raw SQLite batched insert of the same event rows",
        ),
        figure(
            "pipeline_dispatch_only_messages_per_s",
            dispatch_rate,
            "messages/s",
            baseline,
            messages=N_MESSAGES,
            handled=dispatch_stats["handled"],
            recorded=dispatch_stats["recorded"],
            replies_not_sent=dispatch_stats["unsent"],
            final_flush_ms=dispatch_stats["shutdown_ms"],
            baseline_name="raw SQLite batched insert of the same event rows",
        ),
        figure("outbox_send_us_queue_100", short, "µs/send", None, chats=1_000, rounds="median of 5 × 10,000 sends"),
        figure(
            "outbox_send_us_queue_100000",
            long,
            "µs/send",
            short,
            chats=1_000,
            rounds="median of 5 × 10,000 sends",
            note="ratio: long queue over short; flat is 1",
        ),
        figure("keyword_match_messages_per_s", keyword, "messages/s", None, target=100_000, rules=N_RULES),
    ]
