"""多群同步直播: relay messages between groups.

A relay links a source group to target groups (one-to-many: the lecturer talks in the main
group and every audience group receives it) or several groups to each other (mesh). It
relays everyone, or only listed speakers; always, or only during a live session that an
admin starts and stops in chat (开始直播 / 结束直播), whose transcript is stored and
summarised at the end. Audience members ask questions from a target group with a prefix
(提问 …); the question goes to the source group, tagged with the asker and the group.

Loop-free by construction: the dispatcher never hands the bot's own (or `other_bots'`)
messages to plugins, the relay re-checks that and also ignores echoes of what it sent;
each message is claimed once in a database ledger; and routing walks the relay graph so a
message reaches every reachable group exactly once, cycles included (see `graph.py`).

Sends go through the outbox, which paces the account: relaying to N groups costs N sends
per message; a backlog per group is merged into fewer sends (see `sender.py`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

from bot.core.context import Context, PluginHost, Services
from bot.core.events import BotLeftGroup, GroupMessage, PrivateMessage
from bot.core.outbox import cap_text
from bot.core.plugin import Command, Permission, Plugin
from bot.core.scheduler import cron_trigger, date_trigger
from bot.core.templates import Template
from plugins.relay import route
from plugins.relay.config import (
    IDLE_PLACEHOLDERS,
    LINE_PLACEHOLDERS,
    NOTICE_PLACEHOLDERS,
    SUMMARY_PLACEHOLDERS,
    RelayConfig,
)
from plugins.relay.graph import Delivery, Link, RelayGraph, message_body, strip_question
from plugins.relay.models import RelaySession
from plugins.relay.sender import RelaySender
from plugins.relay.store import RelayStore, TranscriptLine

log = logging.getLogger("qunbot.plugin.relay")

plugin = Plugin(
    "relay",
    title="多群同步直播",
    aliases=("直播", "转播", "同步", "互通", "转发"),
    config=RelayConfig,
    priority=70,
    description="把一个群的发言同步到多个群（讲座直播），或多个群互通；支持提问转发与直播记录",
)


@dataclass
class RelayState:
    host: PluginHost
    graph: RelayGraph
    sender: RelaySender
    store: RelayStore | None
    sessions: dict[str, RelaySession] = field(default_factory=dict)  # relay name -> open session
    # relay name -> when its open session last relayed something (for the idle end).
    last_active: dict[str, datetime] = field(default_factory=dict)
    # Targets the bot is not in that a relay skipped: each is logged once.
    skipped: set[str] = field(default_factory=set)

    @property
    def config(self) -> RelayConfig:
        return self.host.config_for(None)

    def speakers_now(self, link: Link) -> frozenset[str] | None:
        """Who this relay carries right now (empty: everyone), or None when it is off."""
        session = self.sessions.get(link.name)
        if session is None and not link.spec.always_on:
            return None
        if session is not None and session.speakers:
            return frozenset(session.speakers)
        return frozenset(link.spec.speakers)


@plugin.targets
def _targets(config: RelayConfig) -> list[tuple[str, list[str]]]:
    # The source too: a relay from a group the bot is not in hears nothing.
    return [
        (f"转发「{link.name}」", [*([link.source] if link.source else []), *link.targets, *link.mesh])
        for link in config.relays
    ]


@plugin.state
async def _state(host: PluginHost) -> RelayState:
    services = host.services
    config: RelayConfig = host.config_for(None)
    for override in host.settings.per_group.values():
        if cast(RelayConfig, override).relays != config.relays:  # the loader validated it with RelayConfig
            log.warning("relay: `relays` in a per-group override is ignored; define relays at the top level")
            break
    graph = RelayGraph.build(config, services.config.groups_in)
    for link in graph.links:
        if (link.mesh and len(link.mesh) < 2) or (not link.mesh and not link.targets):
            log.warning("relay %r links fewer than two groups once its sets are resolved: it relays nothing", link.name)
    sender = RelaySender(
        services.outbox, services.clock, merge=config.merge_backlog, echo_window=config.echo_window_seconds
    )
    store = None
    if services.db is not None:
        store = RelayStore(services.db, store_text=services.config.storage.store_text == "full")
    state = RelayState(host, graph, sender, store)
    if store is not None:
        for session in await store.open_sessions():
            if session.relay in graph.by_name:
                state.sessions[session.relay] = session
                # What was relayed before the restart is not looked up: a full idle period anew.
                state.last_active[session.relay] = services.clock.now()
                _watch_idle(state, session.relay)
            else:
                log.warning(
                    "relay: open session %s of relay %r, which is no longer configured", session.id, session.relay
                )
        # Ledger rows guard against duplicates and replays, which come within minutes or
        # hours; older ones are dropped nightly.
        keep = timedelta(days=config.ledger_days)

        async def purge(fire: datetime) -> None:
            removed = await store.purge_ledger(fire - keep)
            log.debug("relay: purged %d ledger rows", removed)

        services.scheduler.add(
            "relay:purge_ledger", cron_trigger("17 4 * * *", services.clock.tz), purge, grace=timedelta(days=1)
        )
    return state


# --- relaying --------------------------------------------------------------------------


@plugin.on(GroupMessage, concerns=lambda state, group_id: state.graph.involves(group_id))
async def relay_message(event: GroupMessage, ctx: Context, state: RelayState, services: Services) -> bool:
    gid = event.group_id  # one the relay graph involves (`concerns`)
    # The dispatcher already drops these; a relay that loops is costly enough to check twice.
    if event.sender.id == services.bot.id or event.sender.id in services.config.other_bots:
        return False
    if state.sender.is_echo(gid, event.text) or _is_command(event, services):
        return False
    config = state.config
    body = message_body(event, config.kinds, config.labels)
    if body is None:
        return False
    body = cap_text(body, config.max_chars)
    if state.graph.question_links(gid):
        asked = await _forward_question(event, ctx, state, body)
        if asked is not None:
            return asked
    deliveries = state.graph.reach(gid, event.sender.id, state.speakers_now, state.host.enabled_in)
    if deliveries:
        deliveries = await _reachable(state, deliveries)
    if not deliveries:
        return False
    now = ctx.now()
    for name in {d.link.name for d in deliveries if d.link.name in state.sessions}:
        state.last_active[name] = now
    sessions = {d.link.name: state.sessions[d.link.name] for d in deliveries if d.link.name in state.sessions}
    if state.store is not None:
        lines = [TranscriptLine(s.id) for s in sessions.values() if s.id is not None]
        if not await state.store.claim(event, [d.target for d in deliveries], now, lines, text=body):
            log.info("relay: %s in %s was already relayed", event.message_id, gid)
            return False
    origin = services.groups.display_name(gid, event.group_topic)
    for delivery in deliveries:
        line = _line(state, delivery, origin, event.sender.display, body)
        key = f"relay:{gid}:{route.message_key(event)}:{delivery.target}"
        await route.send(state.host.services, state.sender, delivery.target, line, key)
    return True


async def _forward_question(event: GroupMessage, ctx: Context, state: RelayState, body: str) -> bool | None:
    """A question from a target group: to the source group(s) only. None: not a question."""
    cfg: RelayConfig = state.host.config_for(event.group_id)
    question = strip_question(body, cfg.question_prefixes)
    if question is None:
        return None
    links = [link for link in state.graph.question_links(event.group_id) if state.speakers_now(link) is not None]
    sources = list(dict.fromkeys(link.source for link in links if link.source))
    sources = [s for s in sources if state.host.enabled_in(s)]
    if not sources:
        return None
    now = ctx.now()
    if state.store is not None:
        lines = [
            # A stored session has its id (the database gave it on insert).
            TranscriptLine(state.sessions[link.name].id, question=True)  # type: ignore[arg-type]
            for link in links
            if link.name in state.sessions
        ]
        if not await state.store.claim(event, sources, now, lines, text=question):
            return False
    for link in links:
        if link.name in state.sessions:
            state.last_active[link.name] = now
    origin = ctx.services.groups.display_name(event.group_id, event.group_topic)
    for source in sources:
        template = state.host.config_for(source).question_format
        values = {"name": event.sender.display, "group": origin, "text": question}
        text = Template.parse(template, LINE_PLACEHOLDERS).render(values)
        key = f"relay-question:{event.group_id}:{route.message_key(event)}:{source}"
        await route.send(state.host.services, state.sender, source, text, key)
    return True


async def _reachable(state: RelayState, deliveries: list[Delivery]) -> list[Delivery]:
    """The deliveries to groups the bot is in (all of them when the platform cannot say):
    a send elsewhere would only fail, after retries that hold up the outbox."""
    present = await route.reachable(state.host.services)
    if present is None:
        return deliveries
    kept = []
    for delivery in deliveries:
        if delivery.target in present:
            kept.append(delivery)
        elif delivery.target not in state.skipped:
            state.skipped.add(delivery.target)
            log.warning("relay %r: the bot is not in %s; not relaying there", delivery.link.name, delivery.target)
    return kept


def _line(state: RelayState, delivery: Delivery, origin: str, name: str, body: str) -> str:
    cfg: RelayConfig = state.host.config_for(delivery.target)
    link = delivery.link
    template = link.spec.format or (cfg.mesh_format if link.mesh else cfg.format)
    return Template.parse(template, LINE_PLACEHOLDERS).render({"name": name, "group": origin, "text": body})


def _is_command(event: GroupMessage, services: Services) -> bool:
    """Commands (签到, 开始直播 ...) are for the bot in this group, not for the audience."""
    dispatcher = services.dispatcher
    if dispatcher is None or not event.text:
        return False
    table = dispatcher.runtime.table_for(event.group_id)
    return table.parse(event.text, services.config.commands.prefixes, services.bot.name) is not None


@plugin.on(BotLeftGroup)
async def forget_group(event: BotLeftGroup, state: RelayState) -> bool:
    state.sender.forget_group(event.group_id)
    return False


# --- live sessions ---------------------------------------------------------------------


async def _pick_link(cmd: Command, ctx: Context, state: RelayState, starting: bool) -> Link | None:
    """The relay a start/stop command means: named in the arguments, or the only one this
    group controls. Replies (and returns None) when that is unclear or not allowed."""
    words = [a for a in cmd.args if not a.startswith(("@", "＠"))]
    named = [w for w in words if w in state.graph.by_name]
    here = ctx.group_id
    is_bot_admin = ctx.services.groups.is_bot_admin(ctx.sender.id if ctx.sender else "")
    # With @-mentions, other words may be the rest of a display name ("@Alice Wang").
    if words and not named and not getattr(ctx.event, "mentions", ()):
        ctx.reply(f"没有名为「{words[0]}」的转发。可用：{_names(state.graph.links)}")
        return None
    if named:
        link = state.graph.by_name[named[0]]
    else:
        candidates = state.graph.links_controlled_from(here) if here else []
        if not candidates and is_bot_admin and len(state.graph.links) == 1:
            candidates = list(state.graph.links)
        if starting:
            idle = [c for c in candidates if c.name not in state.sessions]
            candidates = idle or candidates
        else:
            live = [c for c in candidates if c.name in state.sessions]
            candidates = live or candidates
        if not candidates:
            ctx.reply("这个群没有配置直播转发。" if here else f"请写明转发名称：{_names(state.graph.links)}")
            return None
        if len(candidates) > 1:
            ctx.reply(f"这里有多个转发，请写明名称，例如“{cmd.typed} {candidates[0].name}”。可用：{_names(candidates)}")
            return None
        link = candidates[0]
    # The core has checked that the asker is an admin where they typed (or a bot admin):
    # a group admin controls only the relays whose source (or mesh) is that group.
    if not is_bot_admin and not (here and link.controlled_from(here)):
        ctx.reply(f"只有源群「{_group_name(ctx, link)}」的管理员或机器人管理员可以控制直播「{link.name}」。")
        return None
    return link


@plugin.command(
    "开始直播",
    permission=Permission.GROUP_ADMIN,
    scope="both",
    words_from=lambda c: c.start_words,
    usage="[转发名] [@讲师]",
    help="开始直播：同步发言到各群并记录",
)
async def start_live(cmd: Command, ctx: Context, state: RelayState, event: GroupMessage | PrivateMessage) -> None:
    link = await _pick_link(cmd, ctx, state, starting=True)
    if link is None:
        return
    if link.name in state.sessions:
        ctx.reply(f"直播「{link.name}」已经在进行中。发送“{state.config.stop_words[0]}”结束。")
        return
    bot_id = ctx.services.bot.id
    mentioned = [m for m in getattr(event, "mentions", ()) if m != bot_id]
    who = ctx.sender.id if ctx.sender else ""
    if state.store is None:
        ctx.reply("没有数据库，无法记录直播。")
        return
    session = await state.store.start_session(link.name, ctx.group_id or "", who, ctx.now(), mentioned or None)
    if session is None:
        ctx.reply(f"直播「{link.name}」已经在进行中。")
        return
    state.sessions[link.name] = session
    state.last_active[link.name] = ctx.now()
    _watch_idle(state, link.name)
    speakers = session.speakers or link.spec.speakers
    who_speaks = "、".join(await _member_names(ctx, link, speakers)) if speakers else "所有人"
    targets = [t for t in _audience(link) if t != _home(ctx, link)]
    present = await route.reachable(ctx.services)
    missing = [t for t in targets if present is not None and t not in present]
    off = [t for t in targets if t not in missing and not state.host.enabled_in(t)]
    reached = [t for t in targets if t not in missing and t not in off]
    names = [await _display(ctx, t) for t in reached]
    lines = [
        f"🎙️ 直播「{link.name}」开始：{who_speaks}的发言将同步到 {len(reached)} 个群（{'、'.join(names)}）。"
        if reached
        else f"🎙️ 直播「{link.name}」开始，但没有可以同步的群。"
    ]
    if missing:
        lines.append(f"⚠️ 机器人不在这些群里，无法同步：{'、'.join([await _display(ctx, t) for t in missing])}")
    if off:
        lines.append(f"⚠️ 这些群关闭了直播转发：{'、'.join([await _display(ctx, t) for t in off])}")
    lines.append(f"结束时发送“{state.config.stop_words[0]}”。")
    _announce(ctx, link, "\n".join(lines))
    source_name = await _display(ctx, _home(ctx, link))
    for target in reached:
        notice = state.host.config_for(target).start_notice
        if notice:
            text = _notice(notice, link, source_name, state.host.config_for(target))
            await route.send(state.host.services, state.sender, target, text, f"relay-start:{session.id}:{target}")


@plugin.command(
    "结束直播",
    permission=Permission.GROUP_ADMIN,
    scope="both",
    words_from=lambda c: c.stop_words,
    usage="[转发名]",
    help="结束直播并给出小结",
)
async def stop_live(cmd: Command, ctx: Context, state: RelayState) -> None:
    link = await _pick_link(cmd, ctx, state, starting=False)
    if link is None:
        return
    session = state.sessions.get(link.name)
    if session is None or session.id is None or state.store is None:
        ctx.reply(f"直播「{link.name}」没有在进行。")
        return
    summary = await _end_session(ctx, state, link, session, ctx.sender.id if ctx.sender else "", _home(ctx, link))
    _announce(ctx, link, summary if summary is not None else f"直播「{link.name}」已经结束了。")


async def _end_session(
    ctx: Context, state: RelayState, link: Link, session: RelaySession, by: str, home: str
) -> str | None:
    """End a live session: record it, tell the audience groups, and return the summary for
    the home group (None: it had ended already, e.g. in another process)."""
    assert session.id is not None and state.store is not None
    now = ctx.now()
    state.sessions.pop(link.name, None)
    state.last_active.pop(link.name, None)
    state.host.services.scheduler.remove(_idle_job(link.name))
    if not await state.store.end_session(session.id, by, now):
        return None
    present = await route.reachable(ctx.services)
    targets = [
        t for t in _audience(link) if t != home and state.host.enabled_in(t) and (present is None or t in present)
    ]
    config = state.config
    summary = await state.store.summary(session, now, len(targets), config.summary_questions)
    source_name = await _display(ctx, home)
    values = {
        "relay": link.name,
        "source": source_name,
        "duration": _duration(summary.ended_at - summary.started_at),
        "messages": summary.messages,
        "questions": summary.questions,
        "speakers": summary.speakers,
        "groups": summary.groups,
    }
    lines = [Template.parse(config.summary, SUMMARY_PLACEHOLDERS).render(values)]
    if summary.asked:
        lines.append("提问：")
        for i, row in enumerate(summary.asked, start=1):
            where = await _display(ctx, row.group_id)
            lines.append(f"{i}. {row.member_name or row.member_id}（{where}）：{row.text or '…'}")
        if summary.questions > len(summary.asked):
            lines.append(f"……共 {summary.questions} 个提问")
    for target in targets:
        notice = state.host.config_for(target).stop_notice
        if notice:
            text = _notice(notice, link, source_name, state.host.config_for(target))
            await route.send(state.host.services, state.sender, target, text, f"relay-stop:{session.id}:{target}")
    return "\n".join(lines)


# --- forgotten sessions ----------------------------------------------------------------


def _idle_job(name: str) -> str:
    return f"relay:idle:{name}"


def _watch_idle(state: RelayState, name: str) -> None:
    """Check the session `idle_end_minutes` after its last relayed message (no job per
    message: when the check finds newer activity, it looks again that much later)."""
    minutes = state.config.idle_end_minutes
    if not minutes or name not in state.sessions:
        return
    clock = state.host.services.clock
    due = state.last_active.get(name, clock.now()) + timedelta(minutes=minutes)
    state.host.services.scheduler.add(
        _idle_job(name),
        date_trigger(due, clock.tz),
        lambda _fire: _end_if_idle(state, name),
        grace=timedelta(days=7),
        on_missed=lambda _fire: _end_if_idle(state, name),
    )


async def _end_if_idle(state: RelayState, name: str) -> None:
    session = state.sessions.get(name)
    link = state.graph.by_name.get(name)
    if session is None or session.id is None or link is None or state.store is None:
        return
    idle = timedelta(minutes=state.config.idle_end_minutes)
    now = state.host.services.clock.now()
    if now - state.last_active.get(name, session.started_at) < idle:
        _watch_idle(state, name)
        return
    home = link.source or (session.group_id if session.group_id in link.mesh else link.mesh[0])
    ctx = state.host.context(group_id=home)
    summary = await _end_session(ctx, state, link, session, "", home)
    if summary is None:
        return
    log.info("relay %r: no message for %s, the live session ended by itself", name, idle)
    notice = Template.parse(state.config.idle_end_notice, IDLE_PLACEHOLDERS).render(
        {"relay": name, "idle": _idle_text(state.config.idle_end_minutes), "start": state.config.start_words[0]}
    )
    ctx.say(f"{notice}\n{summary}", group_id=home)


@plugin.command(
    "直播状态",
    permission=Permission.GROUP_ADMIN,
    scope="both",
    words_from=lambda c: c.status_words,
    help="查看转发与直播状态",
)
async def live_status(ctx: Context, state: RelayState) -> None:
    if not state.graph.links:
        ctx.reply("没有配置任何转发。")
        return
    lines = ["转发状态："]
    present = await route.reachable(ctx.services)
    for link in state.graph.links:
        session = state.sessions.get(link.name)
        shape = f"互通 {len(link.mesh)} 个群" if link.mesh else f"{link.source} → {len(link.targets)} 个群"
        if session is not None:
            since = session.started_at.astimezone(ctx.clock.tz).strftime("%m-%d %H:%M")
            status = f"直播中（{since} 起）"
        else:
            status = "常开" if link.spec.always_on else "未开始"
        lines.append(f"  {link.name}：{shape}，{status}")
        missing = [g for g in link.groups if present is not None and g not in present]
        if missing:
            lines.append(f"    ⚠️ 机器人不在：{'、'.join([await _display(ctx, g) for g in missing])}")
    backlog = state.sender.backlog()
    if backlog:
        lines.append(f"待发送（合并中）：{backlog} 条")
    ctx.reply("\n".join(lines))


# --- helpers ---------------------------------------------------------------------------


def _announce(ctx: Context, link: Link, text: str) -> None:
    """Answer the admin; when they typed elsewhere (a private chat), tell the home group too."""
    ctx.reply(text)
    home = _home(ctx, link)
    if ctx.group_id != home:
        ctx.say(text, group_id=home)


def _audience(link: Link) -> list[str]:
    return list(link.mesh) if link.mesh else list(link.targets)


def _names(links: tuple[Link, ...] | list[Link]) -> str:
    return "、".join(link.name for link in links) or "（无）"


def _notice(template: str, link: Link, source: str, config: RelayConfig) -> str:
    prefix = config.question_prefixes[0] if config.question_prefixes else ""
    values = {"relay": link.name, "source": source, "prefix": prefix}
    return Template.parse(template, NOTICE_PLACEHOLDERS).render(values)


def _home(ctx: Context, link: Link) -> str:
    """The group a session is about: the source, or for a mesh the group it was started in."""
    if link.source:
        return link.source
    return ctx.group_id if ctx.group_id in link.mesh else link.mesh[0]


async def _member_names(ctx: Context, link: Link, member_ids: list[str]) -> list[str]:
    try:
        members = await ctx.services.platform.members(_home(ctx, link))
    except Exception:  # names are cosmetic: ids will do
        members = []
    names = {m.id: m.display for m in members}
    return [names.get(mid, mid) for mid in member_ids]


def _group_name(ctx: Context, link: Link) -> str:
    return ctx.services.groups.display_name(link.source or (link.mesh[0] if link.mesh else ""))


async def _display(ctx: Context, group_id: str) -> str:
    await ctx.services.groups.info(group_id)  # fills the topic cache when the config names none
    return ctx.services.groups.display_name(group_id)


def _idle_text(minutes: float) -> str:
    hours, rest = divmod(round(minutes), 60)
    if hours and not rest:
        return f"{hours} 小时"
    return _duration(timedelta(minutes=minutes))


def _duration(delta: timedelta) -> str:
    minutes = max(0, round(delta.total_seconds() / 60))
    hours, minutes = divmod(minutes, 60)
    return f"{hours} 小时 {minutes} 分钟" if hours else f"{minutes} 分钟"
