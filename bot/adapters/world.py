"""One in-memory world of contacts, groups and members, shared by the console adapter, the
scenario simulator and the tests' recording fake. `WorldPlatform` implements the core's
Platform interface against it and records every action the bot takes."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.core.clock import Clock
from bot.core.events import Event, Member, MembersJoined, MembersLeft
from bot.core.platform import ActionRecord, Capability, GroupInfo, PlatformError, SendResult

WECHAT_GROUP_LIMIT = 500
# Images posted in the simulated world, kept for `fetch_image` (the oldest go first).
IMAGES_KEPT = 1000
# Above this many members, WeChat turns "add" into an invitation the invitee must accept.
DIRECT_ADD_LIMIT = 40


@dataclass
class WorldGroup:
    id: str
    topic: str = ""
    owner: str | None = None
    admins: set[str] = field(default_factory=set)
    # Member ids in joining order, as dict keys: `in` is a lookup, where a list was a scan
    # of the group on every console line (a tenth of the console's time at 400 a group).
    members: dict[str, None] = field(default_factory=dict)


class World:
    def __init__(self, bot: Member) -> None:
        self.bot = bot
        self.contacts: dict[str, Member] = {bot.id: bot}
        self.groups: dict[str, WorldGroup] = {}
        self.images: OrderedDict[str, bytes] = OrderedDict()  # message id -> image file

    def post_image(self, message_id: str, data: bytes) -> None:
        """Keep the image of a posted message, for `WorldPlatform.fetch_image`."""
        self.images[message_id] = data
        self.images.move_to_end(message_id)
        while len(self.images) > IMAGES_KEPT:
            self.images.popitem(last=False)

    def add_contact(self, member_id: str, name: str = "") -> Member:
        existing = self.contacts.get(member_id)
        if existing is not None and (not name or existing.name == name):
            return existing
        member = Member(member_id, name or (existing.name if existing else "") or member_id)
        self.contacts[member_id] = member
        return member

    def contact(self, member_id: str) -> Member:
        return self.contacts.get(member_id) or self.add_contact(member_id)

    def add_group(
        self,
        group_id: str,
        topic: str = "",
        owner: str | None = None,
        admins: list[str] | None = None,
        members: list[str] | None = None,
    ) -> WorldGroup:
        group = WorldGroup(group_id, topic or group_id, owner, set(admins or ()), {})
        for mid in [self.bot.id, *(members or ())]:
            if mid not in group.members:
                self.contact(mid)
                group.members[mid] = None
        if owner and owner not in group.members:
            self.contact(owner)
            group.members[owner] = None
        self.groups[group_id] = group
        return group

    def group(self, group_id: str) -> WorldGroup:
        group = self.groups.get(group_id)
        if group is None:
            group = self.add_group(group_id)
        return group

    def join(self, group_id: str, member_ids: list[str]) -> list[Member]:
        group = self.group(group_id)
        added = []
        for mid in member_ids:
            member = self.contact(mid)
            if mid not in group.members:
                group.members[mid] = None
                added.append(member)
        return added

    def leave(self, group_id: str, member_ids: list[str]) -> list[Member]:
        group = self.group(group_id)
        gone = []
        for mid in member_ids:
            if mid in group.members:
                del group.members[mid]
                gone.append(self.contact(mid))
        return gone


class WorldPlatform:
    """The Platform interface over a World. `on_event` receives what the bot's own actions
    cause (a removal → MembersLeft, an accepted invite → MembersJoined)."""

    def __init__(
        self,
        world: World,
        clock: Clock,
        *,
        on_action: Callable[[ActionRecord], None] | None = None,
        on_event: Callable[[Event], None] | None = None,
        can_remove: bool | None = True,
        keep_actions: bool = True,
        bot: Member | None = None,
    ) -> None:
        self.world = world
        # Several accounts share one world (the simulator's `bots:`): each platform is one of them.
        self._bot = bot or world.bot
        # A simulated fault of the account (None, "rate_limited", "banned", "disconnected"):
        # its sends fail the way the Wechaty adapter reports them.
        self.fault: str | None = None
        self.clock = clock
        # Every action, for tests and transcripts. A long-running bot (the console) passes
        # keep_actions=False: `on_action` sees each one, and nothing piles up per send.
        self.actions: list[ActionRecord] = []
        self._keep_actions = keep_actions
        self.on_action = on_action
        self.on_event = on_event
        self.can_remove = can_remove
        self._seq = 0

    @property
    def bot(self) -> Member:
        return self._bot

    @property
    def connected(self) -> bool:
        return self.fault != "disconnected"

    def _check_fault(self, what: str) -> None:
        if self.fault == "rate_limited":
            raise PlatformError(f"{what} failed: 操作过于频繁，请稍后再试", rate_limited=True)
        if self.fault == "banned":
            raise PlatformError(f"{what} failed: 该账号已被封号，限制登录")
        if self.fault == "disconnected":
            raise PlatformError("not connected to the puppet service (reconnecting)")

    @property
    def capabilities(self) -> frozenset[Capability]:
        return frozenset(Capability)

    def _record(self, record: ActionRecord) -> None:
        if self._keep_actions:
            self.actions.append(record)
        if self.on_action is not None:
            self.on_action(record)

    def _stamp(self) -> str:
        return self.clock.now().isoformat(timespec="seconds")

    def _next_id(self) -> str:
        self._seq += 1
        return f"out-{self._seq}"

    async def say(self, group_id: str, text: str, mentions: tuple[str, ...] = ()) -> SendResult:
        self._check_fault(f"say to {group_id}")
        if group_id not in self.world.groups or self.bot.id not in self.world.groups[group_id].members:
            raise PlatformError(f"the bot is not in group {group_id}")
        if self._keep_actions or self.on_action is not None:  # else the record is built for nobody
            self._record(ActionRecord("say", self._stamp(), group=group_id, text=text, mentions=list(mentions)))
        return SendResult(True, self._next_id())

    async def send_private(self, contact_id: str, text: str) -> SendResult:
        self._check_fault(f"say to {contact_id}")
        if self._keep_actions or self.on_action is not None:
            self._record(ActionRecord("private", self._stamp(), to=contact_id, text=text))
        return SendResult(True, self._next_id())

    async def remove_member(self, group_id: str, member_id: str, reason: str = "") -> None:
        self._check_fault(f"remove {member_id} from {group_id}")
        group = self.world.group(group_id)
        if member_id not in group.members:
            raise PlatformError(f"{member_id} is not in group {group_id}", permanent=True)
        self._record(ActionRecord("kick", self._stamp(), group=group_id, member=member_id, reason=reason))
        gone = self.world.leave(group_id, [member_id])
        if gone and self.on_event is not None:
            self.on_event(
                MembersLeft(
                    at=self.clock.now(),
                    group_id=group_id,
                    members=tuple(gone),
                    removed_by=self.bot,
                    group_topic=group.topic,
                )
            )

    async def invite(self, group_id: str, contact_id: str) -> None:
        self._check_fault(f"invite {contact_id} to {group_id}")
        group = self.world.group(group_id)
        if len(group.members) >= WECHAT_GROUP_LIMIT:
            raise PlatformError(f"group {group_id} is full")
        self._record(ActionRecord("invite", self._stamp(), group=group_id, member=contact_id))
        if len(group.members) > DIRECT_ADD_LIMIT:
            return  # an invitation the contact still has to accept
        added = self.world.join(group_id, [contact_id])
        if added and self.on_event is not None:
            self.on_event(
                MembersJoined(
                    at=self.clock.now(),
                    group_id=group_id,
                    members=tuple(added),
                    inviter=self.bot,
                    group_topic=group.topic,
                )
            )

    async def accept_friend(self, request_id: str) -> None:
        self._record(ActionRecord("accept_friend", self._stamp(), member=request_id))

    async def group_info(self, group_id: str) -> GroupInfo | None:
        group = self.world.groups.get(group_id)
        if group is None:
            return None
        return GroupInfo(
            id=group.id,
            topic=group.topic,
            owner_id=group.owner,
            admin_ids=frozenset(group.admins),
            member_count=len(group.members),
            bot_can_remove=self.can_remove if group.owner != self.bot.id else True,
        )

    async def members(self, group_id: str) -> list[Member]:
        group = self.world.groups.get(group_id)
        return [self.world.contact(m) for m in group.members] if group else []

    async def fetch_image(self, message_id: str, max_bytes: int) -> bytes:
        data = self.world.images.get(message_id)
        if data is None:
            raise PlatformError(f"message {message_id} has no image")
        if len(data) > max_bytes:
            raise PlatformError(f"the image of message {message_id} is larger than {max_bytes} bytes")
        return data

    async def groups(self) -> list[GroupInfo]:
        out = []
        for gid, group in self.world.groups.items():
            if self.bot.id in group.members:
                info = await self.group_info(gid)
                if info is not None:
                    out.append(info)
        return out


def plain_photo(width: int = 96, height: int = 64) -> bytes:
    """A PNG with no code in it (a soft gradient), as an ordinary photo: what a simulator image
    step marked `photo: true` carries. Written with the standard library only."""
    import struct
    import zlib

    rows = b"".join(b"\x00" + bytes((x * 2 + y) % 256 for x in range(width)) for y in range(height))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def qr_image(payload: str) -> bytes:
    """A PNG of a QR code holding `payload`, as a phone would post it: what the simulator and
    the console attach to an image message that carries a QR payload. Needs segno (in the
    `qr` extra)."""
    try:
        import segno
    except ImportError:
        raise ValueError("an image with a QR code needs segno: pip install 'qunbot[qr]'") from None
    import io

    out = io.BytesIO()
    segno.make(payload, error="m", micro=False).save(out, kind="png", scale=6, border=4)
    return out.getvalue()
