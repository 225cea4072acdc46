# Over 500 lines: the one class implementing Platform over the puppet service (mapping.py is pure).
"""The core's Platform interface over a puppet-service connection, and the inbound mapping
from puppet events to qunbot events (DESIGN §2)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from operator import methodcaller
from typing import Any, TypeVar

from bot.adapters.wechaty.connection import PuppetConnection
from bot.adapters.wechaty.mapping import (
    is_friend_request,
    mentions_bot,
    message_kind,
    platform_time,
    split_quote,
    to_platform_error,
    with_mentions,
)
from bot.config.models import WechatySettings
from bot.core.clock import Clock
from bot.core.events import (
    Event,
    FriendRequest,
    GroupMessage,
    GroupRenamed,
    Member,
    MembersJoined,
    MembersLeft,
    MessageKind,
    PrivateMessage,
)
from bot.core.platform import Capability, GroupInfo, PlatformError, SendResult

log = logging.getLogger("qunbot.wechaty")

T = TypeVar("T")
Handler = Callable[[Event], Awaitable[None]]

# Contact names change rarely; a group topic is re-read after a topic, join or leave event.
CONTACT_TTL = 600.0
TOPIC_TTL = 120.0
# Members read concurrently when a whole member list is resolved to names.
_PARALLEL_READS = 8
# After room_add / room_delete: how often and how long to re-read the member list before
# concluding (puppets may apply the change a moment after the call returns).
VERIFY_READS = 4
VERIFY_PAUSE = 0.5

_URL = re.compile(r"https?://[^\s<>\"'，。]+", re.IGNORECASE)
# Media kinds whose raw text is the puppet's XML envelope, useless to plugins and to the log.
# wechaty-grpc ImageType: 1 thumbnail, 2 HD, 3 artwork.
_IMAGE_HD = 2
_MEDIA = frozenset(
    {MessageKind.IMAGE, MessageKind.VIDEO, MessageKind.VOICE, MessageKind.EMOTICON, MessageKind.CONTACT_CARD}
)


def removal_right(bot_id: str, owner_id: str | None, admin_ids: frozenset[str], admins_can_remove: bool) -> bool | None:
    """May the bot remove members? The owner may; a group admin may when the puppet allows it
    (`admins_can_remove`); anyone else may not. Unknown owner: None (destructive actions fail
    closed on None)."""
    if owner_id and owner_id == bot_id:
        return True
    if admins_can_remove and bot_id in admin_ids:
        return True
    if owner_id:
        return False
    return None


@dataclass
class _Cached:
    value: Any
    expires: float


@dataclass
class ProbeResult:
    """Where the account may remove members, as found at log-in."""

    can_remove: dict[str, bool | None] = field(default_factory=dict)
    topics: dict[str, str] = field(default_factory=dict)


class WechatyPlatform:
    """Implements `bot.core.platform.Platform` on a `PuppetConnection`."""

    def __init__(
        self,
        connection: PuppetConnection,
        settings: WechatySettings,
        clock: Clock,
        fallback_bot: Member,
        *,
        redact: Callable[[str], str] = str,
        url_link_payload: Callable[..., Any] | None = None,
    ) -> None:
        self.connection = connection
        connection.sink = self.on_puppet_event
        self.settings = settings
        self.clock = clock
        self._bot = fallback_bot
        self._redact = redact
        self._url_link_payload = url_link_payload
        self._handler: Handler | None = None
        self._attached = asyncio.Event()
        self._contacts: dict[str, _Cached] = {}
        self._topics: dict[str, _Cached] = {}
        self._probed_session = -1
        self._listed_session = -1
        self._tasks: set[asyncio.Task[Any]] = set()
        # One HTTP client for image downloads, made at the first one: building a client loads
        # the CA bundle (tens of ms of CPU), which must neither repeat per image nor count
        # against the download's timeout.
        self._http: Any = None
        self.probe = ProbeResult()
        # Called once per log-in session when the account is ready (its groups loaded): the
        # runner reads every group's member list then (`BotApp.refresh_members`).
        self.on_ready: Callable[[], Awaitable[None]] | None = None

    # --- identity ------------------------------------------------------------------------
    @property
    def bot(self) -> Member:
        return self._bot

    @property
    def capabilities(self) -> frozenset[Capability]:
        return frozenset({Capability.REMOVE, Capability.INVITE, Capability.FRIEND_REQUESTS})

    @property
    def connected(self) -> bool:
        """Logged in to the puppet service now (account health counts how long it is not)."""
        return self.connection.logged_in.is_set() and self.connection.puppet is not None

    def attach(self, handler: Handler) -> None:
        """Start handing events to the bot. Events that arrive earlier wait, in order."""
        self._handler = handler
        self._attached.set()

    # --- calls -----------------------------------------------------------------------------
    async def _puppet(self) -> Any:
        conn = self.connection
        if not conn.logged_in.is_set() or conn.puppet is None:
            try:
                async with asyncio.timeout(self.settings.send_wait):
                    await conn.logged_in.wait()
            except TimeoutError:
                raise PlatformError("not connected to the puppet service (reconnecting)") from None
        if conn.puppet is None:
            raise PlatformError("not connected to the puppet service (reconnecting)")
        return conn.puppet

    async def _call(self, what: str, call: Callable[[Any], Awaitable[T]], puppet: Any = None) -> T:
        """One call to the service, bounded by rpc_timeout; every failure becomes a
        PlatformError with a redacted message (rate_limited for "too frequent")."""
        if puppet is None:
            puppet = await self._puppet()
        try:
            async with asyncio.timeout(self.settings.rpc_timeout):
                return await call(puppet)
        except TimeoutError:
            raise PlatformError(f"{what}: no answer within {self.settings.rpc_timeout:g} s") from None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise to_platform_error(what, exc, self._redact) from exc

    # --- Platform: actions -----------------------------------------------------------------
    async def say(self, group_id: str, text: str, mentions: tuple[str, ...] = ()) -> SendResult:
        names = [(m, (await self._member(m)).name) for m in mentions]
        body = with_mentions(text, names)
        message_id = await self._call(
            f"say in {group_id}", lambda p: p.message_send_text(group_id, body, list(mentions) or None)
        )
        return SendResult(True, str(message_id) if message_id else None)

    async def send_private(self, contact_id: str, text: str) -> SendResult:
        message_id = await self._call(
            f"private message to {contact_id}", lambda p: p.message_send_text(contact_id, text)
        )
        return SendResult(True, str(message_id) if message_id else None)

    async def remove_member(self, group_id: str, member_id: str, reason: str = "") -> None:
        # Someone who already left (or was removed by an admin meanwhile) cannot be removed:
        # the member list says so, and the outbox does not retry a permanent refusal.
        members = await self._call(f"members of {group_id}", lambda p: p.room_members(group_id))
        if member_id not in members:
            raise PlatformError(f"remove {member_id} from {group_id}: {member_id} is not in the group", permanent=True)
        # What python-wechaty's `room.delete(contact)` calls; its own re-read afterwards is a
        # no-op on an already loaded room, so the member list is read fresh here.
        await self._call(f"remove {member_id} from {group_id}", lambda p: p.room_delete(group_id, member_id))
        if not await self._membership_becomes(group_id, member_id, present=False):
            raise PlatformError(
                f"remove {member_id} from {group_id}: the service accepted the call but {member_id} is still "
                "a member (only the group owner, and with some puppets an admin, can remove members)"
            )
        self._topics.pop(group_id, None)
        log.info("wechaty: removed %s from %s (%s)", member_id, group_id, reason or "no reason given")

    async def invite(self, group_id: str, contact_id: str) -> None:
        members = await self._call(f"members of {group_id}", lambda p: p.room_members(group_id))
        if contact_id in members:
            log.info("wechaty: %s is already in %s; nothing to invite", contact_id, group_id)
            return
        # What python-wechaty's `room.add(contact)` calls. Above 40 members WeChat turns it into
        # an invitation the contact must accept, and the call returns before that: membership
        # is read afresh to tell which happened.
        await self._call(f"add {contact_id} to {group_id}", lambda p: p.room_add(group_id, contact_id))
        if await self._membership_becomes(group_id, contact_id, present=True):
            log.info("wechaty: added %s to %s", contact_id, group_id)
        else:
            log.info("wechaty: invitation to %s sent to %s; they join once they accept it", group_id, contact_id)

    async def accept_friend(self, request_id: str) -> None:
        await self._call(f"accept friend request {request_id}", lambda p: p.friendship_accept(request_id))

    async def _membership_becomes(self, group_id: str, member_id: str, *, present: bool) -> bool:
        for attempt in range(VERIFY_READS):
            members = await self._call(f"members of {group_id}", lambda p: p.room_members(group_id))
            if (member_id in members) == present:
                return True
            if attempt + 1 < VERIFY_READS:
                await asyncio.sleep(VERIFY_PAUSE)
        return False

    # --- Platform: reads -------------------------------------------------------------------
    async def group_info(self, group_id: str) -> GroupInfo | None:
        payload = await self._call(f"read group {group_id}", lambda p: p.room_payload(group_id))
        return self._group_info(group_id, payload)

    def _group_info(self, group_id: str, payload: Any) -> GroupInfo | None:
        if payload is None or not (getattr(payload, "id", "") or getattr(payload, "member_ids", None)):
            return None
        owner = getattr(payload, "owner_id", "") or None
        admins = frozenset(getattr(payload, "admin_ids", None) or ())
        topic = getattr(payload, "topic", "") or ""
        self._topics[group_id] = _Cached(topic, self._now() + TOPIC_TTL)
        return GroupInfo(
            id=group_id,
            topic=topic,
            owner_id=owner,
            admin_ids=admins,
            member_count=len(getattr(payload, "member_ids", None) or ()),
            bot_can_remove=removal_right(self.bot.id, owner, admins, self.settings.admins_can_remove),
        )

    async def members(self, group_id: str) -> list[Member]:
        ids = await self._call(f"members of {group_id}", lambda p: p.room_members(group_id))
        return await self._resolve(list(ids))

    async def groups(self) -> list[GroupInfo]:
        room_ids = await self._call("list groups", lambda p: p.room_list())
        semaphore = asyncio.Semaphore(_PARALLEL_READS)

        async def one(room_id: str) -> tuple[GroupInfo | None, Any]:
            async with semaphore:
                payload = await self._call(f"read group {room_id}", lambda p: p.room_payload(room_id))
                return self._group_info(room_id, payload), payload

        out = []
        for info, payload in await asyncio.gather(*(one(r) for r in room_ids)):
            member_ids = getattr(payload, "member_ids", None) or ()
            if info is not None and (not member_ids or self.bot.id in member_ids):
                out.append(info)
        return out

    async def fetch_image(self, message_id: str, max_bytes: int) -> bytes:
        # What python-wechaty's `message.to_image().hd()` calls: the puppet hands the image over
        # as a FileBox, inline (base64) or as a URL on the service's side. The HD image, not
        # the artwork: a QR code reads as well, at a fraction of the bytes.
        box = await self._call(f"read image {message_id}", lambda p: p.message_image(message_id, _IMAGE_HD))
        inline = getattr(box, "base64", None)
        if inline:
            if len(inline) * 3 // 4 > max_bytes + 3:  # checked before decoding anything
                raise PlatformError(f"the image of message {message_id} is larger than {max_bytes} bytes")
            try:
                data = base64.b64decode(
                    inline.split(b",", 1)[-1] if isinstance(inline, bytes) else inline.split(",", 1)[-1], validate=False
                )
            except (binascii.Error, ValueError) as exc:
                raise PlatformError(f"read image {message_id}: not base64 ({exc})") from None
            if len(data) > max_bytes:
                raise PlatformError(f"the image of message {message_id} is larger than {max_bytes} bytes")
            return data
        url = getattr(box, "remoteUrl", None)
        if url:
            return await self._download(str(url), message_id, max_bytes)
        raise PlatformError(f"read image {message_id}: the service sent no image data")

    async def _download(self, url: str, message_id: str, max_bytes: int) -> bytes:
        """An image the service serves by URL, read up to `max_bytes` within rpc_timeout."""
        import httpx

        if self._http is None:
            self._http = httpx.AsyncClient()
        chunks: list[bytes] = []
        size = 0
        try:
            async with (
                asyncio.timeout(self.settings.rpc_timeout),
                self._http.stream("GET", url) as response,
            ):
                response.raise_for_status()
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise PlatformError(f"the image of message {message_id} is larger than {max_bytes} bytes")
                    chunks.append(chunk)
        except TimeoutError:
            raise PlatformError(f"read image {message_id}: no answer within {self.settings.rpc_timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise PlatformError(f"read image {message_id}: {self._redact(str(exc))}") from None
        return b"".join(chunks)

    # --- extras beyond the core interface --------------------------------------------------
    async def send_url_link(
        self, conversation_id: str, url: str, title: str, description: str = "", thumbnail_url: str = ""
    ) -> SendResult:
        """Send a link card. The payload is built here: python-wechaty's `UrlLink.create`
        would download the page first."""
        if self._url_link_payload is None:
            raise PlatformError("link cards are not available")
        payload = self._url_link_payload(url, title, description, thumbnail_url)
        body = json.dumps(dataclasses.asdict(payload))
        message_id = await self._call(
            f"link card to {conversation_id}", lambda p: p.message_send_url(conversation_id, body)
        )
        return SendResult(True, str(message_id) if message_id else None)

    async def room_qr_code(self, group_id: str) -> str:
        """The group's join QR code (python-wechaty's own `room.qr_code()` omits the room id)."""
        return str(await self._call(f"QR code of {group_id}", lambda p: p.room_qr_code(group_id)))

    # --- names and topics (cached) -----------------------------------------------------------
    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    async def _member(self, contact_id: str, puppet: Any = None, *, fresh: bool = False) -> Member:
        """Member(id, name); a failed read gives the bare id rather than failing the caller."""
        if not contact_id:
            return Member("", "")
        cached = self._contacts.get(contact_id)
        if cached is not None and not fresh and cached.expires > self._now():
            return cached.value
        try:
            payload = await self._call(f"read contact {contact_id}", lambda p: p.contact_payload(contact_id), puppet)
        except PlatformError as exc:
            log.debug("wechaty: %s", exc)
            return cached.value if cached is not None else Member(contact_id)
        member = Member(contact_id, getattr(payload, "name", "") or "")
        self._contacts[contact_id] = _Cached(member, self._now() + CONTACT_TTL)
        return member

    async def _resolve(self, ids: list[str], puppet: Any = None) -> list[Member]:
        semaphore = asyncio.Semaphore(_PARALLEL_READS)

        async def one(contact_id: str) -> Member:
            async with semaphore:
                return await self._member(contact_id, puppet)

        return list(await asyncio.gather(*(one(i) for i in ids)))

    async def _topic(self, group_id: str, puppet: Any = None) -> str:
        cached = self._topics.get(group_id)
        if cached is not None and cached.expires > self._now():
            return cached.value
        try:
            payload = await self._call(f"read group {group_id}", lambda p: p.room_payload(group_id), puppet)
        except PlatformError as exc:
            log.debug("wechaty: %s", exc)
            return cached.value if cached is not None else ""
        topic = getattr(payload, "topic", "") or ""
        self._topics[group_id] = _Cached(topic, self._now() + TOPIC_TTL)
        return topic

    # --- inbound ---------------------------------------------------------------------------
    async def on_puppet_event(self, name: str, payload: Any, puppet: Any) -> None:
        """The connection's sink: one puppet event → at most one qunbot event, handed to the
        bot once it is attached."""
        if name == "login":
            await self._on_login(getattr(payload, "contact_id", ""), puppet)
            return
        if name == "ready":
            self._maybe_probe(puppet)
            self._maybe_list_members()
            return
        if name == "logout":
            log.warning(
                "wechaty: the account was logged out (%s); waiting for it to log in again",
                self._redact(str(getattr(payload, "data", "") or "")),
            )
            return
        if name == "scan":
            qrcode = getattr(payload, "qrcode", "") or ""
            log.warning(
                "wechaty: the puppet service waits for a log-in scan (status %s)%s",
                getattr(payload, "status", "?"),
                f": open https://wechaty.js.org/qrcode/{qrcode} and scan it" if qrcode else "",
            )
            return
        if name == "error":
            log.warning(
                "wechaty: the puppet service reported an error: %s",
                self._redact(str(getattr(payload, "data", payload))),
            )
            return
        if name == "room-invite":
            log.info(
                "wechaty: the account was invited to a group (invitation %s); accept it in WeChat",
                getattr(payload, "room_invitation_id", "?"),
            )
            return
        event = await self._convert(name, payload, puppet)
        if event is None:
            return
        await self._attached.wait()
        assert self._handler is not None
        await self._handler(event)

    async def _on_login(self, contact_id: str, puppet: Any) -> None:
        if not contact_id:
            return
        self._bot = await self._member(contact_id, puppet, fresh=True)
        log.info("wechaty: logged in as %s (%s)", self._bot.display, contact_id)

    def _maybe_list_members(self) -> None:
        if self.on_ready is None or self._listed_session == self.connection.sessions:
            return
        self._listed_session = self.connection.sessions
        task = asyncio.create_task(self._list_members(self.on_ready), name="wechaty-member-lists")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _list_members(self, read: Callable[[], Awaitable[None]]) -> None:
        # Events are handed over only once the app is attached; so is this.
        await self._attached.wait()
        try:
            await read()
        except Exception:
            log.exception("wechaty: reading the member lists after log-in failed")

    def _maybe_probe(self, puppet: Any) -> None:
        if not self.settings.probe_groups or self._probed_session == self.connection.sessions:
            return
        self._probed_session = self.connection.sessions
        task = asyncio.create_task(self.probe_groups(puppet), name="wechaty-probe")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def probe_groups(self, puppet: Any = None) -> ProbeResult:
        """List the groups and where the account may remove members (owner, or admin when
        `admins_can_remove`), and log it, so an operator sees at start-up where ad removal
        will only warn."""
        try:
            room_ids = await self._call("list groups", lambda p: p.room_list(), puppet)
        except PlatformError as exc:
            log.warning("wechaty: could not list the groups: %s", exc)
            return self.probe
        result = ProbeResult()
        for room_id in room_ids:
            try:
                payload = await self._call(f"read group {room_id}", methodcaller("room_payload", room_id), puppet)
            except PlatformError as exc:
                log.warning("wechaty: %s", exc)
                result.can_remove[room_id] = None
                continue
            info = self._group_info(room_id, payload)
            if info is None:
                continue
            result.can_remove[room_id] = info.bot_can_remove
            result.topics[room_id] = info.topic
        self.probe = result

        def listed(value: bool | None) -> str:
            names = [f"{result.topics.get(g) or g} ({g})" for g, v in result.can_remove.items() if v is value]
            return ", ".join(names) or "none"

        log.info(
            "wechaty: %d group(s); may remove members in: %s; may not: %s; unknown: %s",
            len(result.can_remove),
            listed(True),
            listed(False),
            listed(None),
        )
        return result

    async def _convert(self, name: str, payload: Any, puppet: Any) -> Event | None:
        now = self.clock.now()
        tz = self.clock.tz
        if name == "message":
            return await self._message(str(getattr(payload, "message_id", "") or ""), puppet)
        if name == "room-join":
            group_id = payload.room_id
            self._topics.pop(group_id, None)
            joined = await self._resolve(list(payload.invited_ids or ()), puppet)
            inviter_id = getattr(payload, "inviter_id", "") or ""
            inviter = await self._member(inviter_id, puppet) if inviter_id else None
            if any(m.id == self.bot.id for m in joined):
                log.info("wechaty: the account joined group %s", group_id)
            return MembersJoined(
                at=platform_time(payload.timestamp, tz, now),
                group_id=group_id,
                members=tuple(joined),
                inviter=inviter,
                group_topic=await self._topic(group_id, puppet),
            )
        if name == "room-leave":
            group_id = payload.room_id
            self._topics.pop(group_id, None)
            removed_ids = list(payload.removed_ids or ())
            left = await self._resolve(removed_ids, puppet)
            remover_id = getattr(payload, "remover_id", "") or ""
            # A member who leaves on their own is reported as their own remover.
            self_removed = not remover_id or remover_id in removed_ids
            removed_by = None if self_removed else await self._member(remover_id, puppet)
            if self.bot.id in removed_ids:
                log.warning("wechaty: the account left or was removed from group %s", group_id)
            return MembersLeft(
                at=platform_time(payload.timestamp, tz, now),
                group_id=group_id,
                members=tuple(left),
                removed_by=removed_by,
                group_topic=await self._topic(group_id, puppet),
            )
        if name == "room-topic":
            group_id = payload.room_id
            self._topics[group_id] = _Cached(payload.new_topic or "", self._now() + TOPIC_TTL)
            changer_id = getattr(payload, "changer_id", "") or ""
            return GroupRenamed(
                at=platform_time(payload.timestamp, tz, now),
                group_id=group_id,
                old_topic=payload.old_topic or "",
                new_topic=payload.new_topic or "",
                changed_by=await self._member(changer_id, puppet) if changer_id else None,
            )
        if name == "friendship":
            return await self._friendship(str(getattr(payload, "friendship_id", "") or ""), puppet)
        return None

    async def _message(self, message_id: str, puppet: Any) -> Event | None:
        if not message_id:
            return None
        mp = await self._call(f"read message {message_id}", lambda p: p.message_payload(message_id), puppet)
        kind = message_kind(mp.type)
        at = platform_time(mp.timestamp, self.clock.tz, self.clock.now())
        text = mp.text or ""
        url: str | None = None
        quote = None
        if kind is MessageKind.TEXT:  # a quote-reply: the reply is the text, the quoted message apart
            text, quote = split_quote(text)
        if kind is MessageKind.URL:
            text, url = await self._link(message_id, text, puppet)
        elif kind is MessageKind.MINI_PROGRAM:
            text = await self._mini_program(message_id, text, puppet)
        elif kind is MessageKind.FILE:
            text = mp.filename or ""
        elif kind in _MEDIA:
            text = ""
        if url is None and (found := _URL.search(text)):
            url = found.group(0)
        # The service echoes the bot's own sends back; the core drops them, so spare the lookup.
        own = bool(mp.from_id) and mp.from_id == self.bot.id
        sender = self.bot if own else await self._member(mp.from_id, puppet)
        if mp.room_id:
            bot = self.bot
            mention_ids = tuple(mp.mention_ids or ())
            return GroupMessage(
                at=at,
                group_id=mp.room_id,
                sender=sender,
                text=text,
                kind=kind,
                url=url,
                mentions=mention_ids,
                mentions_bot=kind is MessageKind.TEXT and mentions_bot(text, mention_ids, bot.id, bot.name),
                message_id=mp.id or message_id,
                group_topic=await self._topic(mp.room_id, puppet),
                quote=quote,
            )
        return PrivateMessage(at=at, sender=sender, text=text, kind=kind, url=url, message_id=mp.id or message_id)

    async def _link(self, message_id: str, text: str, puppet: Any) -> tuple[str, str | None]:
        try:
            link = await self._call(f"read link {message_id}", lambda p: p.message_url(message_id), puppet)
        except PlatformError as exc:
            log.debug("wechaty: %s", exc)
            return text, None
        words = "\n".join(w for w in (link.title, link.description) if w)
        return (words or text), (link.url or None)

    async def _mini_program(self, message_id: str, text: str, puppet: Any) -> str:
        try:
            mp = await self._call(
                f"read mini program {message_id}", lambda p: p.message_mini_program(message_id), puppet
            )
        except PlatformError as exc:
            log.debug("wechaty: %s", exc)
            return text
        words = "\n".join(w for w in (getattr(mp, "title", ""), getattr(mp, "description", "")) if w)
        return words or text

    async def _friendship(self, friendship_id: str, puppet: Any) -> Event | None:
        if not friendship_id:
            return None
        fp = await self._call(
            f"read friend request {friendship_id}", lambda p: p.friendship_payload(friendship_id), puppet
        )
        if not is_friend_request(fp.type):
            log.debug("wechaty: friendship event %s of type %s ignored", friendship_id, fp.type)
            return None
        return FriendRequest(
            at=self.clock.now(),
            contact=await self._member(fp.contact_id, puppet),
            hello=fp.hello or "",
            request_id=fp.id or friendship_id,
        )

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()
            self._http = None
