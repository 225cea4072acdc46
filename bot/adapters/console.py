"""The console adapter: chat lines in, the bot's actions out. No WeChat account needed.

Input, one line each (blank lines and lines starting with `#` are ignored)::

    g1 alice: 签到                 alice says "签到" in group g1
    g1 bob[url]: 点击领取 http://x   a message of another kind (url, image, mini_program, card, file …)
    g1 bob[qr:https://u.wechat.com/x]: 扫码   an image of a QR code holding that text (the caption is optional)
    pm alice: 进群                 alice sends the bot a private message
    +g1 carol dave < alice         carol and dave join g1, invited by alice (the "< alice" is optional)
    -g1 bob                        bob leaves g1 (append "< owner1" when someone removed him)
    wait 2                         pause 2 seconds (handy in piped demos)

Groups named in the config (and `console.groups`) exist from the start; any other group
id used in a line is created on first use, as are contacts.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import re
import secrets
import stat
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TextIO

from bot.adapters.world import World, WorldPlatform, qr_image
from bot.core.clock import Clock
from bot.core.events import Event, GroupMessage, Member, MembersJoined, MembersLeft, MessageKind, PrivateMessage
from bot.core.platform import ActionRecord

_MESSAGE = re.compile(
    r"^(?P<target>\S+)\s+(?P<sender>[^:\s\[]+)(?:\[(?P<kind>[\w-]+)(?::(?P<qr>[^\]]+))?\])?"
    r"\s*[:：]\s?(?P<text>.*)$"
)
_MEMBERSHIP = re.compile(r"^(?P<op>[+-])(?P<group>\S+)\s+(?P<members>[^<]+?)(?:\s*<\s*(?P<by>\S+))?\s*$")
_WAIT = re.compile(r"^wait\s+(?P<seconds>\d+(?:\.\d+)?)\s*s?$")
_URL = re.compile(r"https?://\S+", re.IGNORECASE)


class ConsoleLineError(ValueError):
    pass


@dataclass
class ParsedWait:
    seconds: float


def parse_line(line: str, world: World, clock: Clock, seq: int, run: str = "") -> Event | ParsedWait | None:
    """One console line → an event (or a pause); None for blank/comment lines."""
    line = line.strip()
    if not line:
        return None
    # Each form starts with its own character; a chat line (nearly every line) tries one pattern.
    first = line[0]
    if first == "#":
        return None
    now = clock.now()
    if first == "w" and (m := _WAIT.match(line)):
        return ParsedWait(float(m.group("seconds")))
    if first in "+-" and (m := _MEMBERSHIP.match(line)):
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
        target, sender_id, kind_name, qr, text = m.groups()
        sender = world.contact(sender_id)
        url_match = _URL.search(text) if "://" in text else None
        if qr is not None and kind_name != "qr":
            raise ConsoleLineError(
                f"cannot read {line!r}; an image with a QR code is written 'g1 bob[qr:CONTENT]: caption'"
            )
        url = url_match.group(0) if url_match else None
        kind = (
            MessageKind.IMAGE
            if qr is not None
            else MessageKind.parse(kind_name)
            if kind_name
            else (MessageKind.URL if url is not None and url == text.strip() else MessageKind.TEXT)
        )
        if qr is not None:
            try:
                world.post_image(f"console-{run}{seq}", qr_image(qr.strip()))
            except ValueError as exc:
                raise ConsoleLineError(str(exc)) from None
        if target in ("pm", "private"):
            return PrivateMessage(
                at=now, sender=sender, text=text, kind=kind, url=url, message_id=f"console-{run}{seq}"
            )
        group = world.group(target)
        if sender.id not in group.members:
            world.join(target, [sender.id])
        bot = world.bot
        mentions_bot = f"@{bot.name}" in text
        return GroupMessage(
            at=now,
            group_id=target,
            sender=sender,
            text=text,
            kind=kind,
            url=url,
            mentions=(bot.id,) if mentions_bot else (),
            mentions_bot=mentions_bot,
            message_id=f"console-{run}{seq}",
            group_topic=group.topic,
        )
    raise ConsoleLineError(
        f"cannot read {line!r}; expected 'g1 alice: text', 'pm alice: text', '+g1 carol < alice' or '-g1 bob'"
    )


def format_action(record: ActionRecord, world: World) -> str:
    """A readable transcript line."""
    when = f"{record.at[5:10]} {record.at[11:19]}" if len(record.at) >= 19 else record.at
    bot = record.account or world.bot.display
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
        self.platform = WorldPlatform(
            world, clock, on_action=self._print, on_event=self.followups.put_nowait, keep_actions=False
        )  # printed as they happen; kept, they would grow per send
        self.lines_read = 0
        # Message ids unique across runs on one database, as a platform's are: the event log
        # keeps one row per (group, message id).
        self._run = f"{secrets.token_hex(4)}-"

    def _print(self, record: ActionRecord) -> None:
        print(format_action(record, self.world), file=self.out, flush=True)

    async def run(
        self,
        handle: Callable[[Event], Awaitable[object]],
        source: TextIO,
        idle: Callable[[], bool],
        stop: asyncio.Event | None = None,
    ) -> int:
        """Read until end of input, then wait until the bot is idle (`idle()` true). When
        `stop` is set, read nothing more: the lines already read are still handled (they are
        out of the pipe, nothing else would handle them), then it returns without waiting
        for idle. Returns the number of lines read."""
        stop = stop or asyncio.Event()
        lines = LineSource(source)
        try:
            while (chunk := await lines.next_chunk(stop)) is not None:
                for line in chunk:
                    self.lines_read += 1
                    if await self._line(handle, line, stop) and not self.followups.empty():
                        await self._drain_followups(handle)
        finally:
            lines.close()
        while not stop.is_set() and (not idle() or not self.followups.empty()):
            await self._drain_followups(handle)
            await _sleep_unless(stop, 0.05)
        await self._drain_followups(handle)
        return self.lines_read

    async def _line(self, handle: Callable[[Event], Awaitable[object]], line: str, stop: asyncio.Event) -> bool:
        """Handle one line; True when it became an event."""
        try:
            item = parse_line(line, self.world, self.clock, self.lines_read, self._run)
        except ConsoleLineError as exc:
            sys.stderr.write(f"! {exc}\n")
            return False
        if item is None:
            return False
        if isinstance(item, ParsedWait):
            await _sleep_unless(stop, item.seconds)
            return False
        await handle(item)
        return True

    async def _drain_followups(self, handle: Callable[[Event], Awaitable[object]]) -> None:
        while not self.followups.empty():
            await handle(self.followups.get_nowait())


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()


class LineSource:
    """Lines from the console's input, a chunk at a time.

    Reading a line at a time through a thread cost a thread hand-over per line (the console
    read about 2,000 lines/s). Here one read takes whatever the pipe holds, up to `CHUNK`
    bytes, and it is cut into lines in one pass:
    - a pipe, terminal or socket is read on the event loop once it is readable (a read of a
      readable descriptor does not block), so stopping never leaves a read half done;
    - a regular file (`< file`) never waits for a writer, and is read in a worker thread;
    - a stream without a descriptor (tests' StringIO) is read in a worker thread too.
    The last, unterminated line is kept until the next chunk completes it (or input ends)."""

    CHUNK = 1 << 16

    def __init__(self, source: TextIO) -> None:
        self.source = source
        self._fd = _descriptor(source)
        self._regular = self._fd is not None and stat.S_ISREG(os.fstat(self._fd).st_mode)
        encoding = getattr(source, "encoding", None) or "utf-8"
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        self._tail = ""
        self._ended = False
        self._loop: asyncio.AbstractEventLoop | None = None

    async def next_chunk(self, stop: asyncio.Event) -> list[str] | None:
        """The next complete lines (at least one), or None at the end of input or once
        `stop` is set."""
        while not self._ended and not stop.is_set():
            text = await self._read(stop)
            if text is None:  # stopped while waiting for input
                return None
            if not text:
                self._ended = True
                last = self._tail + self._decoder.decode(b"", final=True)
                self._tail = ""
                return [last] if last else None
            lines = (self._tail + text).split("\n")
            self._tail = lines.pop()
            if lines:
                return lines
        return None

    async def _read(self, stop: asyncio.Event) -> str | None:
        fd = self._fd
        if fd is None:
            return await asyncio.to_thread(self.source.read, self.CHUNK)
        if not self._regular:
            try:
                if not await self._readable(fd, stop):
                    return None
            except OSError:  # not pollable (/dev/null): reads never wait, like a file's
                self._regular = True
        data = os.read(fd, self.CHUNK) if not self._regular else await asyncio.to_thread(os.read, fd, self.CHUNK)
        return self._decoder.decode(data) if data else ""

    async def _readable(self, fd: int, stop: asyncio.Event) -> bool:
        loop = self._loop = asyncio.get_running_loop()
        ready = loop.create_future()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_reader(fd, wake)
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait((ready, stopping), return_when=asyncio.FIRST_COMPLETED)
        finally:
            loop.remove_reader(fd)
            stopping.cancel()
            ready.cancel()
        return not stop.is_set()

    def close(self) -> None:
        if self._loop is not None and self._fd is not None:
            self._loop.remove_reader(self._fd)


def _descriptor(source: TextIO) -> int | None:
    """The source's file descriptor (read directly: the console is its only reader, and
    nothing has been read through the text layer before), or None for an in-memory stream."""
    try:
        return source.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def console_world(bot: Member, group_ids: list[tuple[str, str]]) -> World:
    world = World(bot)
    for gid, topic in group_ids:
        world.add_group(gid, topic)
    return world
