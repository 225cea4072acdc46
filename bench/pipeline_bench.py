"""End-to-end throughput: group messages through the whole bot.

100,000 group messages go through the real dispatcher with every plugin of the default
config on, the keyword plugin loaded with 10,000 rules, and the recorder writing to SQLite;
the figure includes the final flush. The baseline, measured in the same run, is the raw
batched SQLite insert rate of the same event-log rows without any bot in front.
"""

from __future__ import annotations

import random
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
        {"keywords": [_word(rng, 3, 6)], "match": rng.choice(["contains", "contains", "exact", "prefix"]),
         "replies": [f"回复{i}"]}
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
        events.append(GroupMessage(
            at=start + timedelta(milliseconds=10 * i), group_id=gid, sender=Member(mid, mid), text=text,
            message_id=f"bench-{i}",
        ))
    return events


async def pipeline_rate(n: int = N_MESSAGES) -> tuple[float, dict[str, int]]:
    """Messages/s, and the dispatcher's counters plus what the recorder wrote, what it still
    had to write after the last message, and how long that final flush took."""
    loaded = bench_config()
    start = datetime(2026, 12, 1, 8, tzinfo=UTC)
    clock = VirtualClock(start)
    world = World(Member("wxid_bot", "小助手"))
    for g in range(N_GROUPS):
        world.add_group(f"g{g}", f"群{g}", "owner1", [], [f"m{i}_g{g}" for i in range(MEMBERS_PER_GROUP)])
    platform = WorldPlatform(world, clock)
    events = make_events(start, n)
    with tempfile.TemporaryDirectory() as tmp:
        app = BotApp(loaded, platform, clock, rng=random.Random(1),
                     db_url=f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")
        await app.start()
        assert app.dispatcher is not None and app.recorder is not None
        handle = app.dispatcher.dispatch
        began = time.perf_counter()
        for event in events:
            clock.advance_to(event.at)
            await handle(event)
        # Whether the recorder kept up: what it still had to write after the last message.
        behind = app.recorder.pending
        flush_began = time.perf_counter()
        await app.recorder.flush()
        done = time.perf_counter()
        elapsed = done - began
        stats = dict(app.dispatcher.stats)
        stats["recorded"] = app.recorder.written
        stats["unwritten_after_last_message"] = behind
        stats["final_flush_ms"] = round((done - flush_began) * 1000)
        stats["queued_sends"] = app.services.outbox.pending if app.services else 0
        await app.stop(drain_seconds=0)
    return n / elapsed, stats


async def figures() -> list[dict[str, object]]:
    from bench.storage_bench import raw_insert_rate

    baseline = await raw_insert_rate(N_MESSAGES)
    rate, stats = await pipeline_rate()
    keyword = keyword_match_rate(N_RULES, N_MESSAGES)
    return [
        figure("pipeline_messages_per_s", rate, "messages/s", baseline,
               target=20_000, messages=N_MESSAGES, keyword_rules=N_RULES, handled=stats["handled"],
               recorded=stats["recorded"], unwritten_after_last_message=stats["unwritten_after_last_message"],
               final_flush_ms=stats["final_flush_ms"],
               baseline_name="raw SQLite batched insert of the same event rows"),
        figure("keyword_match_messages_per_s", keyword, "messages/s", None, target=100_000, rules=N_RULES),
    ]


