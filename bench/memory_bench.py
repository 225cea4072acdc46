"""Memory over a long run: RSS of the whole bot at 1,000 groups × 500 distinct members.

The real pipeline (dispatcher, every plugin of the default config, the recorder on SQLite,
replies sent through the outbox with pacing off) gets the 500,000 joins, then 300,000 group
messages, 10 ms apart. RSS is read after the joins and at every 100,000 messages; the bot
must stay flat once its per-member and per-message structures have filled to their caps.

Messages are generated as they are fed, so the bench holds none of them itself; the
platform answers from arithmetic and keeps no transcript.

    python -m bench memory
    python -m bench.memory_bench --messages 60000 --groups 50 --members 200 --trace
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.__main__ import figure
from bench.matching_bench import _messages
from bot.app import BotApp, load_everything
from bot.core.clock import VirtualClock
from bot.core.events import GroupMessage, Member, MembersJoined
from bot.core.heap import resident_mb
from bot.core.platform import Capability, GroupInfo, SendResult
from bot.runner import CONSOLE_OUTBOX

REPO = Path(__file__).resolve().parent.parent
N_GROUPS = 1_000
MEMBERS_PER_GROUP = 500
N_MESSAGES = 300_000
CHECKPOINT = 100_000
RSS_TARGET_MB = 300


class LeanPlatform:
    """A platform for long runs: groups and members are arithmetic, sends are counted."""

    def __init__(self, groups: int, members: int) -> None:
        self._bot = Member("wxid_bot", "小助手")
        self._groups = groups
        self._members = members
        self.sent = 0

    @property
    def bot(self) -> Member:
        return self._bot

    @property
    def capabilities(self) -> frozenset[Capability]:
        return frozenset(Capability)

    async def say(self, group_id: str, text: str, mentions: tuple[str, ...] = ()) -> SendResult:
        self.sent += 1
        return SendResult(True, f"out-{self.sent}")

    async def send_private(self, contact_id: str, text: str) -> SendResult:
        self.sent += 1
        return SendResult(True, f"out-{self.sent}")

    async def remove_member(self, group_id: str, member_id: str, reason: str = "") -> None:
        self.sent += 1

    async def invite(self, group_id: str, contact_id: str) -> None:
        self.sent += 1

    async def accept_friend(self, request_id: str) -> None:
        return None

    async def group_info(self, group_id: str) -> GroupInfo | None:
        return GroupInfo(
            id=group_id, topic=f"群{group_id}", owner_id="owner1", member_count=self._members + 2, bot_can_remove=True
        )

    async def members(self, group_id: str) -> list[Member]:
        return [Member(f"m{i}_{group_id}", f"m{i}") for i in range(self._members)]

    async def groups(self) -> list[GroupInfo]:
        return [
            GroupInfo(
                id=f"g{g}", topic=f"群g{g}", owner_id="owner1", member_count=self._members + 2, bot_can_remove=True
            )
            for g in range(self._groups)
        ]


def joins(start: datetime, groups: int, members: int) -> Iterator[MembersJoined]:
    """Every member joins, 50 at a time (as invitations land in a real group)."""
    at = start
    for g in range(groups):
        gid = f"g{g}"
        for first in range(0, members, 50):
            at += timedelta(milliseconds=10)
            yield MembersJoined(
                at=at,
                group_id=gid,
                group_topic=f"群{gid}",
                members=tuple(Member(f"m{i}_{gid}", f"m{i}") for i in range(first, min(first + 50, members))),
            )


def messages(start: datetime, n: int, groups: int, members: int, *, offset: int = 0) -> Iterator[GroupMessage]:
    rng = random.Random(5 + offset)
    texts = _messages(rng, 20_000, ["签到", "群规", "早上好", "红包", "优惠券"])
    for i in range(offset, offset + n):
        gid = f"g{rng.randrange(groups)}"
        mid = f"m{rng.randrange(members)}_{gid}"
        yield GroupMessage(
            at=start + timedelta(milliseconds=10 * i),
            group_id=gid,
            sender=Member(mid, mid[:8]),
            text=texts[i % len(texts)],
            message_id=f"bench-{i}",
        )


async def memory_run(
    n: int = N_MESSAGES,
    groups: int = N_GROUPS,
    members: int = MEMBERS_PER_GROUP,
    *,
    checkpoint: int = CHECKPOINT,
    trace: bool = False,
) -> dict[str, float]:
    """RSS (MB) before, after the joins and at every `checkpoint` messages; with `trace`,
    prints the biggest tracemalloc growth between checkpoints."""
    loaded = load_everything(REPO / "config" / "bot.yaml")
    start = datetime(2026, 12, 1, 8, tzinfo=UTC)
    clock = VirtualClock(start)
    platform = LeanPlatform(groups, members)
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        app = BotApp(
            loaded,
            platform,
            clock,
            rng=random.Random(1),
            db_url=f"sqlite+aiosqlite:///{Path(tmp) / 'memory.db'}",
            outbox_settings_override=CONSOLE_OUTBOX,
        )
        await app.start()
        assert app.dispatcher is not None and app.recorder is not None and app.services is not None
        sender = asyncio.create_task(app.services.outbox.run())
        handle = app.dispatcher.dispatch
        scheduler = app.services.scheduler  # driven as the simulator does: time is virtual
        out["start_mb"] = resident_mb()
        at = start
        for i, event in enumerate(joins(start, groups, members)):
            at = event.at
            clock.advance_to(at)
            await handle(event)
            if i % 100 == 0:
                await scheduler.run_due()
        clock.advance(timedelta(minutes=2))  # the merged welcomes go out
        await scheduler.run_due()
        await app.recorder.flush()
        gc.collect()
        out["joined_mb"] = resident_mb()
        if trace:
            tracemalloc.start(12)
            before = tracemalloc.take_snapshot()
        began = time.perf_counter()
        for i, event in enumerate(messages(at + timedelta(seconds=1), n, groups, members), 1):
            clock.advance_to(event.at)
            await handle(event)
            if i % 100 == 0:
                await scheduler.run_due()  # welcome flushes, points flushes, reports
            if i % checkpoint == 0:
                await app.recorder.flush()
                gc.collect()
                out[f"rss_{i // 1000}k_mb"] = resident_mb()
                if trace:
                    after = tracemalloc.take_snapshot()
                    print(
                        f"--- {i} messages, rss {out[f'rss_{i // 1000}k_mb']:.0f} MB, "
                        f"{time.perf_counter() - began:.0f} s"
                    )
                    for stat in after.compare_to(before, "traceback")[:8]:
                        print(f"{stat.size_diff / 1024:+.0f} KiB {stat.count_diff:+d} blocks")
                        for line in stat.traceback.format()[-8:]:
                            print("   ", line)
                    before = after
        out["sent"] = platform.sent
        out["elapsed_s"] = time.perf_counter() - began
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        await app.stop(drain_seconds=0)
    return out


async def figures() -> list[dict[str, object]]:
    result = await memory_run()
    steps = [k for k in result if k.startswith("rss_")]
    first, last = result[steps[0]], result[steps[-1]]
    return [
        figure(
            f"memory_{key.removeprefix('rss_').removesuffix('_mb')}_messages_rss",
            result[key],
            "MB",
            None,
            target=RSS_TARGET_MB,
            groups=N_GROUPS,
            members_per_group=MEMBERS_PER_GROUP,
            after_joins_mb=round(result["joined_mb"], 1),
        )
        for key in steps
    ] + [figure("memory_growth_100k_to_300k", (last - first) / first * 100, "%", None, target=10)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=N_MESSAGES)
    parser.add_argument("--groups", type=int, default=N_GROUPS)
    parser.add_argument("--members", type=int, default=MEMBERS_PER_GROUP)
    parser.add_argument("--checkpoint", type=int, default=CHECKPOINT)
    parser.add_argument("--trace", action="store_true", help="print tracemalloc growth between checkpoints")
    args = parser.parse_args()
    result = asyncio.run(
        memory_run(args.messages, args.groups, args.members, checkpoint=args.checkpoint, trace=args.trace)
    )
    for key, value in result.items():
        print(f"{key}: {value:.1f}")


if __name__ == "__main__":
    main()
