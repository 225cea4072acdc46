"""The console adapter: chat lines in, the bot's actions out. No WeChat account needed.

Input, one line each (blank lines and lines starting with `#` are ignored)::

    g1 alice: 签到                 alice says "签到" in group g1
    g1 bob[url]: 点击领取 http://x   a message of another kind (url, image, mini_program, card, file …)
    pm alice: 进群                 alice sends the bot a private message
    +g1 carol dave < alice         carol and dave join g1, invited by alice (the "< alice" is optional)
    -g1 bob                        bob leaves g1 (append "< owner1" when someone removed him)
    wait 2                         pause 2 seconds (handy in piped demos)

Groups named in the config (and `console.groups`) exist from the start; any other group
id used in a line is created on first use, as are contacts.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from bot.adapters.world import World, WorldPlatform
from bot.core.clock import Clock
from bot.core.events import Event, GroupMessage, Member, MembersJoined, MembersLeft, MessageKind, PrivateMessage
from bot.core.platform import ActionRecord

_MESSAGE = re.compile(r"^(?P<target>\S+)\s+(?P<sender>[^:\s\[]+)(?:\[(?P<kind>[\w-]+)\])?\s*[:：]\s?(?P<text>.*)$")
_MEMBERSHIP = re.compile(r"^(?P<op>[+-])(?P<group>\S+)\s+(?P<members>[^<]+?)(?:\s*<\s*(?P<by>\S+))?\s*$")
_WAIT = re.compile(r"^wait\s+(?P<seconds>\d+(?:\.\d+)?)\s*s?$")
_URL = re.compile(r"https?://\S+", re.IGNORECASE)


class ConsoleLineError(ValueError):
    pass


@dataclass
class ParsedWait:
    seconds: float


def parse_line(line: str, world: World, clock: Clock, seq: int) -> Event | ParsedWait | None:
    """One console line → an event (or a pause); None for blank/comment lines."""
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    now = clock.now()
    if m := _WAIT.match(line):
        return ParsedWait(float(m.group("seconds")))
    if m := _MEMBERSHIP.match(line):
        gid = m.group("group")
        group = world.group(gid)
        ids = m.group("members").split()
        by = world.contact(m.group("by")) if m.group("by") else None
        if m.group("op") == "+":
            added = world.join(gid, ids)
            return MembersJoined(at=now, group_id=gid, members=tuple(added), inviter=by, group_topic=group.topic)
        gone = world.leave(gid, ids)
        return MembersLeft(at=now, group_id=gid, members=tuple(gone), removed_by=by, group_topic=group.topic)
    if m := _MESSAGE.match(line):
        target, text = m.group("target"), m.group("text")
        sender = world.contact(m.group("sender"))
        url_match = _URL.search(text)
        kind = MessageKind.parse(m.group("kind")) if m.group("kind") else (
            MessageKind.URL if url_match and url_match.group(0) == text.strip() else MessageKind.TEXT)
        url = url_match.group(0) if url_match else None
        if target in ("pm", "private"):
            return PrivateMessage(at=now, sender=sender, text=text, kind=kind, url=url, message_id=f"console-{seq}")
        group = world.group(target)
        if sender.id not in group.members:
            world.join(target, [sender.id])
        bot = world.bot
        mentions_bot = f"@{bot.name}" in text
        return GroupMessage(
            at=now, group_id=target, sender=sender, text=text, kind=kind, url=url,
            mentions=(bot.id,) if mentions_bot else (), mentions_bot=mentions_bot,
            message_id=f"console-{seq}", group_topic=group.topic,
        )
    raise ConsoleLineError(
        f"cannot read {line!r}; expected 'g1 alice: text', 'pm alice: text', '+g1 carol < alice' or '-g1 bob'"
    )


def format_action(record: ActionRecord, world: World) -> str:
    """A readable transcript line."""
    when = f"{record.at[5:10]} {record.at[11:19]}" if len(record.at) >= 19 else record.at
    bot = world.bot.display
    if record.action == "say":
        topic = world.groups[record.group].topic if record.group in world.groups else record.group
        return f"{when} [{record.group} {topic}] {bot}: {record.text}"
    if record.action == "private":
        return f"{when} [私聊 → {record.to}] {bot}: {record.text}"
    if record.action == "kick":
        return f"{when} [{record.group}] ✖ 移出 {record.member}（{record.reason}）"
    if record.action == "invite":
        return f"{when} [{record.group}] ＋ 邀请 {record.member}"
    return f"{when} {record.action} {record.member or ''}"


class ConsoleAdapter:
    """Feeds console lines to the bot and prints what it does."""

    def __init__(self, world: World, clock: Clock, out: TextIO | None = None) -> None:
        self.world = world
        self.clock = clock
        self.out = out or sys.stdout
        self.followups: asyncio.Queue[Event] = asyncio.Queue()
        self.platform = WorldPlatform(world, clock, on_action=self._print, on_event=self.followups.put_nowait,
                                      keep_actions=False)  # printed as they happen; kept, they would grow per send

    def _print(self, record: ActionRecord) -> None:
        print(format_action(record, self.world), file=self.out, flush=True)

    async def run(self, handle: Callable[[Event], object], source: TextIO, idle: Callable[[], bool]) -> None:
        """Read until end of input; then wait until the bot is idle (`idle()` true)."""
        seq = 0
        while True:
            line = await asyncio.to_thread(source.readline)
            if not line:
                break
            seq += 1
            try:
                item = parse_line(line, self.world, self.clock, seq)
            except ConsoleLineError as exc:
                sys.stderr.write(f"! {exc}\n")
                continue
            if item is None:
                continue
            if isinstance(item, ParsedWait):
                await asyncio.sleep(item.seconds)
                continue
            await handle(item)  # type: ignore[misc]
            await self._drain_followups(handle)
        while not idle() or not self.followups.empty():
            await self._drain_followups(handle)
            await asyncio.sleep(0.05)

    async def _drain_followups(self, handle: Callable[[Event], object]) -> None:
        while not self.followups.empty():
            await handle(self.followups.get_nowait())  # type: ignore[misc]


def console_world(bot: Member, group_ids: list[tuple[str, str]]) -> World:
    world = World(bot)
    for gid, topic in group_ids:
        world.add_group(gid, topic)
    return world
