"""关键词拉好友入群: a private message with a keyword (进群, or 加群 + a topic) makes the
bot invite the sender into the matching group.

With several candidate groups the least full one under `member_cap` is chosen (open
invitations count as members-to-be); when all are full the member gets a polite answer and
the admins are told, once a day. Someone already in one of the groups is told so. A friend
request whose greeting holds a keyword is accepted (where the platform supports it) and
followed by the invite.

Invites go through the outbox's moderation lane (its own, much slower pace: by default
15-25 s between invites and at most 40 an hour) and a daily cap per account and,
optionally, per group. Every invite is a row in `invite_records` (keyword, rule, how it
was asked, status queued → sent → joined, or failed), and the recorder is told the
source ("keyword:进群"), so the join is stored with it and retention can be broken down by
source. Above 40 members WeChat turns an add into an invitation the invitee must accept:
the row stays "sent" until the join arrives.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.core.clock import business_day, day_start
from bot.core.context import Context, PluginHost, Services
from bot.core.events import FriendRequest, Member, MembersJoined, PrivateMessage
from bot.core.platform import Capability, GroupInfo, SendResult
from bot.core.plugin import STOP, Plugin
from bot.core.templates import Template
from bot.storage.repo import KeyValueRepo
from plugins.invite.config import InviteConfig
from plugins.invite.matching import ChooseTopic, InviteMatcher, RuleMatch
from plugins.invite.models import InviteRecord
from plugins.invite.store import InviteStore

log = logging.getLogger("qunbot.plugin.invite")

MEMBER_PLACEHOLDERS = ("name", "group", "keyword")
CHOOSE_PLACEHOLDERS = ("name", "keyword", "topics", "topic")
ADMIN_PLACEHOLDERS = ("keyword", "groups", "cap", "group")

plugin = Plugin(
    "invite",
    title="关键词拉群",
    aliases=("邀请", "加群", "进群", "拉群"),
    config=InviteConfig,
    priority=45,
    description="私聊发送关键词（如“进群”“加群 读书”），自动邀请进最空的群；好友验证含关键词自动通过",
)


@dataclass
class Candidate:
    group_id: str
    info: GroupInfo
    members: int
    size: int  # members plus open invitations


@dataclass
class InviteState:
    host: PluginHost
    matcher: InviteMatcher
    groups: dict[int, list[str]]  # rule index -> candidate group ids, resolved at load
    store: InviteStore | None
    kv: KeyValueRepo | None
    last_asked: dict[str, datetime] = field(default_factory=dict)  # contact + request -> when

    @property
    def config(self) -> InviteConfig:
        return self.host.config_for(None)

    @property
    def services(self) -> Services:
        return self.host.services


@plugin.state
async def _state(host: PluginHost) -> InviteState:
    services = host.services
    config: InviteConfig = host.config_for(None)
    resolved: dict[int, list[str]] = {}
    for rule in config.rules:
        ids: list[str] = []
        for selector in rule.groups:
            ids.extend(g for g in sorted(services.config.groups_in([selector])) if g not in ids)
        resolved[id(rule)] = ids
    store = kv = None
    if services.db is not None:
        store = InviteStore(services.db, services.bot.id)
        kv = KeyValueRepo(services.db)
        # The recorder keeps join sources in memory: after a restart, tell it again about
        # invitations that are still open, so their joins are stored with their source.
        recorder = services.recorder
        if recorder is not None:
            since = services.clock.now() - timedelta(hours=config.pending_hours)
            for record in await store.open_invites(since):
                recorder.record_membership_source(record.group_id, record.contact_id, record.source)
    return InviteState(host, InviteMatcher(config.rules), resolved, store, kv)


@plugin.guide
def _guide(state: InviteState) -> list[tuple[str, str]]:
    """For a member's private 帮助: the keywords and topics as configured."""
    entries = []
    plain = [keyword for keyword, topics in state.matcher.topics() if not topics]
    if plain:
        entries.append((" / ".join(plain), "我会邀请你进群"))
    for keyword, topics in state.matcher.topics():
        if topics:
            entries.append(
                (" / ".join(f"{keyword} {t}" for t in topics), f"加入对应话题的群（只发“{keyword}”可以看有哪些）")
            )
    return entries


@plugin.on(PrivateMessage)
async def on_private(event: PrivateMessage, ctx: Context, state: InviteState) -> object:
    found = state.matcher.private(event.text)
    if found is None:
        return False
    await _handle(state, ctx, event.sender, found, via="private")
    return STOP  # answered: a keyword reply rule for the same word must not answer too


@plugin.on(FriendRequest)
async def on_friend_request(event: FriendRequest, ctx: Context, state: InviteState, services: Services) -> object:
    if not state.config.accept_friend_requests:
        return False
    found = state.matcher.greeting(event.hello)
    if found is None:
        return False
    if Capability.FRIEND_REQUESTS not in services.platform.capabilities:
        log.info("invite: %s asked to join by friend request, but this platform cannot accept them", event.contact.id)
        return False
    if not event.request_id:
        log.warning("invite: friend request from %s has no request id; cannot accept it", event.contact.id)
        return False
    try:
        # A direct platform call, not a chat send: nothing to pace but the invite after it.
        await services.platform.accept_friend(event.request_id)
    except Exception as exc:
        log.warning("invite: accepting the friend request of %s failed: %s", event.contact.id, exc)
        return False
    await _handle(state, ctx, event.contact, found, via="friend_request")
    return STOP


@plugin.on(MembersJoined)
async def on_join(event: MembersJoined, ctx: Context, state: InviteState) -> bool:
    if state.store is None or not event.members:
        return False
    joined = await state.store.mark_joined(event.group_id, [m.id for m in event.members], ctx.now())
    return joined > 0


# --- the request -------------------------------------------------------------------------


async def _handle(
    state: InviteState, ctx: Context, contact: Member, found: RuleMatch | ChooseTopic, *, via: str
) -> None:
    config = state.config
    now = ctx.now()
    # The same request again at once gets no second answer (every answer is a send);
    # a different one is answered: the topic asked for after "想加入哪个群？", or an unknown
    # topic right after the bare keyword (加群, then 加群 游泳: the list again, naming 游泳).
    what = f"{found.keyword}\x00{found.asked}" if isinstance(found, ChooseTopic) else found.phrase
    asked = f"{contact.id}\x00{what}"
    last = state.last_asked.get(asked)
    if last is not None and now - last < timedelta(seconds=config.repeat_cooldown_seconds):
        return
    state.last_asked[asked] = now
    if len(state.last_asked) > 10_000:
        horizon = now - timedelta(seconds=config.repeat_cooldown_seconds)
        state.last_asked = {k: v for k, v in state.last_asked.items() if v >= horizon}
    if isinstance(found, ChooseTopic):
        values = {
            "name": contact.display,
            "keyword": found.keyword,
            "topics": " / ".join(found.phrases),
            "topic": found.asked,
        }
        template = config.unknown_topic if found.asked else config.choose
        ctx.send_private(contact.id, _render(template, CHOOSE_PLACEHOLDERS, values))
        return
    await _invite(state, ctx, contact, found, via=via, now=now)


async def _invite(
    state: InviteState, ctx: Context, contact: Member, match: RuleMatch, *, via: str, now: datetime
) -> None:
    config, services, store = state.config, state.services, state.store
    if store is None:
        log.error("invite: no database; cannot record invites, so none are made")
        return
    say = _Replier(ctx, contact, match)
    tz = services.clock.tz
    day = business_day(now, tz)
    wanted = [g for g in state.groups.get(id(match.rule), []) if state.host.enabled_in(g)]

    # 1. Already in one of the groups (or invited and not yet accepted)?
    candidates: list[tuple[str, GroupInfo, int]] = []
    elsewhere: list[str] = []  # groups this account is not in
    for gid in wanted:
        info = await services.groups.info(gid, fresh=True)
        if info is None:
            elsewhere.append(gid)
            continue  # the bot is not (or no longer) in this group
        members = await services.platform.members(gid)
        if not any(m.id == services.bot.id for m in members):
            elsewhere.append(gid)
            continue
        if any(m.id == contact.id for m in members):
            say(config.already_member, group=_name(services, gid, info))
            return
        candidates.append((gid, info, info.member_count or len(members)))
    handoff = services.handoff
    if handoff is not None and elsewhere:
        # Several accounts: the groups another running account is in count too, by what the
        # database knows of their members (every account records its groups' member lists).
        served = await handoff.served_groups()
        known = await store.recorded_groups([g for g in elsewhere if g in served], contact.id)
        for gid in elsewhere:
            if gid not in known:
                continue
            topic, count, present = known[gid]
            info = GroupInfo(gid, topic, member_count=count)
            if present:
                say(config.already_member, group=_name(services, gid, info))
                return
            candidates.append((gid, info, count))
        order = {gid: i for i, gid in enumerate(wanted)}
        candidates.sort(key=lambda c: order[c[0]])  # ties still go by configuration order
    if not candidates:
        log.warning("invite: rule %r has no group the bot is in (%s)", match.rule.label, ", ".join(wanted) or "-")
        say(config.all_full)
        await _tell_admins_once(
            state,
            ctx,
            f"{day}:nogroup:{match.rule.label}",
            config.admin_full,
            keyword=match.phrase,
            groups="、".join(wanted) or "-",
            cap=config.member_cap,
        )
        return
    pending_since = now - timedelta(hours=config.pending_hours)
    open_invite = await store.open_invite(contact.id, [c[0] for c in candidates], pending_since)
    if open_invite is not None:
        info = next(c[1] for c in candidates if c[0] == open_invite.group_id)
        say(config.pending, group=_name(services, open_invite.group_id, info))
        return

    # 2. Daily caps.
    today, per_group = await store.count_since(day_start(day, tz), day_start(day + timedelta(days=1), tz))
    if config.daily_cap is not None and today >= config.daily_cap:
        say(config.try_tomorrow)
        await _tell_admins_once(
            state, ctx, f"{day}:daily_cap", config.admin_daily_cap, keyword=match.phrase, cap=config.daily_cap
        )
        return

    # 3. The least full group under the cap (open invitations count as members-to-be).
    pending = await store.pending([c[0] for c in candidates], pending_since)
    open_groups: list[Candidate] = []
    capped: list[str] = []
    for gid, info, count in candidates:
        size = count + pending.get(gid, 0)
        if size >= config.member_cap:
            continue
        if config.daily_cap_per_group is not None and per_group.get(gid, 0) >= config.daily_cap_per_group:
            capped.append(gid)
            continue
        open_groups.append(Candidate(gid, info, count, size))
    if not open_groups:
        if capped:
            say(config.try_tomorrow)
            await _tell_admins_once(
                state,
                ctx,
                f"{day}:group_cap:{match.rule.label}",
                config.admin_group_cap,
                keyword=match.phrase,
                cap=config.daily_cap_per_group,
                groups="、".join(_name(services, g) for g in capped),
            )
        else:
            say(config.all_full)
            await _tell_admins_once(
                state,
                ctx,
                f"{day}:full:{match.rule.label}",
                config.admin_full,
                keyword=match.phrase,
                cap=config.member_cap,
                groups="、".join(_name(services, c[0], c[1]) for c in candidates),
            )
        return
    chosen = min(open_groups, key=lambda c: c.size)  # min() keeps configuration order on ties

    # 4. Record, tell the recorder where the join comes from, queue the invite, answer.
    record = await store.add(
        InviteRecord(
            bot_id=store.bot_id,
            group_id=chosen.group_id,
            contact_id=contact.id,
            contact_name=contact.name,
            keyword=match.phrase,
            rule=match.rule.label,
            via=via,
            source=match.source,
            created_at=now,
        )
    )
    if services.recorder is not None:
        services.recorder.record_membership_source(chosen.group_id, contact.id, match.source)
    group_name = _name(services, chosen.group_id, chosen.info)
    record_id = record.id
    assert record_id is not None

    async def done(result: SendResult | None, error: Exception | None) -> None:
        at = services.clock.now()
        if error is None and result is not None and result.ok:
            await store.mark_sent(record_id, at)
            return
        reason = str(error) if error is not None else (result.error if result else None) or "unknown error"
        log.warning("invite: inviting %s into %s failed: %s", contact.id, chosen.group_id, reason)
        await store.mark_failed(record_id, reason)
        say(config.failed, group=group_name)

    if handoff is not None and not handoff.acts_in(chosen.group_id):
        # Another account is on duty there: it carries the invite out (and this one answers).
        try:
            await handoff.pass_on(
                chosen.group_id, "invite", {"contact_id": contact.id}, f"invite:{record_id}", on_done=done
            )
        except Exception as exc:
            await done(None, exc)
            return
    else:
        ctx.invite(chosen.group_id, contact.id).on_done = done
    direct = chosen.members <= config.direct_add_limit  # WeChat's rule: the size before the add
    say(config.inviting if direct else config.invitation_sent, group=group_name)


class _Replier:
    def __init__(self, ctx: Context, contact: Member, match: RuleMatch) -> None:
        self._ctx, self._contact, self._match = ctx, contact, match

    def __call__(self, template: str, *, group: str = "") -> None:
        values = {"name": self._contact.display, "group": group, "keyword": self._match.phrase}
        self._ctx.send_private(self._contact.id, _render(template, MEMBER_PLACEHOLDERS, values))


async def _tell_admins_once(state: InviteState, ctx: Context, key: str, template: str, **values: object) -> None:
    """Admins hear about a situation once (per day, as the key says), not per request."""
    text = _render(template, ADMIN_PLACEHOLDERS, values)
    if state.kv is not None:
        kv_key = f"notified:{key}"
        if await state.kv.get(plugin.name, kv_key):
            return
        await state.kv.set(plugin.name, kv_key, True, ctx.now())
    await ctx.notify_admins(text)


def _render(template: str, names: tuple[str, ...], values: Mapping[str, object]) -> str:
    return Template.parse(template, names).render(values)


def _name(services: Services, group_id: str, info: GroupInfo | None = None) -> str:
    return services.groups.display_name(group_id, info.topic if info else "")
