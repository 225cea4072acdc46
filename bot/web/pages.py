# Over 500 lines: one route per console page, each a few lines around the service it calls.
"""The console's pages. Each action calls the service its chat command calls (the plugins'
states, the stats reports, the config loader and reload) and writes an audit row."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bot.core.health import account_status
from bot.core.plugin import Permission
from bot.stats.overview import GroupLine
from bot.web import configedit
from bot.web.auth import (
    PASSWORD_USER,
    WebUser,
    check_csrf,
    client_address,
    require_user,
    start_session,
    verify_password,
)
from bot.web.chat import admin_groups
from bot.web.server import WebConsole
from bot.web.store import SCOPES

router = APIRouter(include_in_schema=False)
User = Annotated[WebUser, Depends(require_user)]
Csrf = Depends(check_csrf)


def _console(request: Request) -> WebConsole:
    return request.app.state.console


def _page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    templates = request.app.state.templates
    return templates.TemplateResponse(request, name, context, status_code=status)


def _back(url: str, note: str = "") -> RedirectResponse:
    from urllib.parse import quote

    return RedirectResponse(f"{url}{'?note=' + quote(note) if note else ''}", status_code=303)


# --- logging in -----------------------------------------------------------------------------
@router.get("/login")
async def login_page(request: Request) -> HTMLResponse:
    console = _console(request)
    return _page(request, "login.html", {"password": console.settings.password() is not None, "error": ""})


@router.post("/login", dependencies=[Csrf])
async def login_password(request: Request, password: Annotated[str, Form()] = "") -> Response:
    console = _console(request)
    client = client_address(request)
    stored = console.settings.password()
    if console.limiter.blocked(client):
        return _page(request, "login.html", {"password": True, "error": "尝试次数太多，请一分钟后再试。"}, 429)
    ok = stored is not None and await asyncio.to_thread(verify_password, stored, password)
    if not ok:
        console.limiter.failed(client)
        return _page(request, "login.html", {"password": stored is not None, "error": "密码不对。"}, 401)
    start_session(request, PASSWORD_USER, "管理员（密码）", None)
    await console.audit(PASSWORD_USER, "login.password", client)
    return _back("/")


@router.get("/login/link/{token}")
async def link_page(request: Request, token: str) -> HTMLResponse:
    # Not used up here: chat apps open links to draw previews. The button below logs in.
    return _page(request, "link.html", {"token": token})


@router.post("/login/link/{token}", dependencies=[Csrf])
async def link_login(request: Request, token: str) -> Response:
    console = _console(request)
    client = client_address(request)
    if console.limiter.blocked(client):
        return _page(request, "link.html", {"token": token, "error": "尝试次数太多，请一分钟后再试。"}, 429)
    user = await console.store.consume_link(token, console.now())
    if user is None:
        console.limiter.failed(client)
        error = "链接无效、已过期或已经用过。请私聊机器人发送“后台”获取新链接。"
        return _page(request, "link.html", {"token": "", "error": error}, 403)
    groups = await admin_groups(console.services, user.user_id)
    if groups is not None and not groups:
        return _page(request, "link.html", {"token": "", "error": "你已不是任何群的管理员。"}, 403)
    start_session(request, user.user_id, user.user_name, groups)
    await console.audit(user.user_id, "login.link", client)
    return _back("/")


@router.post("/logout", dependencies=[Csrf])
async def logout(request: Request) -> Response:
    request.session.clear()
    return _back("/login")


# --- 总览 -------------------------------------------------------------------------------------
_SORTS = {
    "id": lambda g: g.id,
    "name": lambda g: g.topic,
    "members": lambda g: g.members,
    "today": lambda g: g.active_today,
    "week": lambda g: g.active_week,
    "retention": lambda g: -1.0 if g.retention is None else g.retention,
    "alerts": lambda g: g.ads_removed + g.failed_sends,
}


async def _overview_lines(console: WebConsole, user: WebUser, q: str, sort: str, desc: bool) -> list[GroupLine]:
    lines = await console.overview(user.groups)
    live = await _live_groups(console)
    for line in lines:
        info = live.get(line.id)
        if info is not None:
            line.members = (
                info.member_count or line.members
            )  # the platform's count: includes members from before the bot
            line.topic = info.topic or line.topic
        line.topic = console.group_name(line.id, line.topic)
    if q:
        needle = q.casefold()
        lines = [g for g in lines if needle in g.id.casefold() or needle in g.topic.casefold()]
    key = _SORTS.get(sort, _SORTS["members"])
    lines.sort(key=key, reverse=desc)
    return lines


async def _live_groups(console: WebConsole) -> dict[str, Any]:
    return await console.live_groups()


def _alerts(console: WebConsole) -> list[str]:
    """Outages and held sends, for the overview's banner."""
    services = console.services
    alerts = []
    if services.db is not None:
        health = services.db.health
        if not health.up:
            alerts.append(f"⚠️ 数据库连接中断：{health.reason}。聊天记录暂存在内存里，恢复后写入。")
        elif health.outages:
            alerts.append(f"本次运行以来数据库中断过 {health.outages} 次（已恢复）。")
    recorder = services.recorder
    if recorder is not None and recorder.dead_letter_path.exists() and recorder.dead_letter_path.stat().st_size:
        alerts.append("有被数据库拒收的事件暂存在磁盘上：qunbot deadletter list 查看，下次启动时自动重试。")
    if services.outbox.breaker_open:
        alerts.append("⚠️ 平台提示发送太频繁，发送已暂停（熔断），稍后自动恢复。")
    return alerts


@router.get("/")
async def home(
    request: Request, user: User, q: str = "", sort: str = "members", desc: bool = True, note: str = ""
) -> HTMLResponse:
    console = _console(request)
    lines = await _overview_lines(console, user, q, sort, desc)
    context = {"lines": lines, "q": q, "sort": sort, "desc": desc, "note": note, "alerts": _alerts(console)}
    name = "overview_table.html" if request.headers.get("hx-request") else "overview.html"
    return _page(request, name, context)


# --- 群详情 -----------------------------------------------------------------------------------
@router.get("/groups/{group_id}")
async def group_page(request: Request, group_id: str, user: User, days: int = 30) -> HTMLResponse:
    user.check(group_id)
    console = _console(request)
    from bot.web import reports

    days = max(7, min(days, 180))
    data = await reports.group_report(console, group_id, days)
    info = await console.services.groups.info(group_id)
    name = console.group_name(group_id, info.topic if info is not None else "")
    return _page(
        request,
        "group.html",
        {"gid": group_id, "name": name, "days": days, "data": data},
    )


@router.get("/groups/{group_id}/members.csv")
async def group_csv(request: Request, group_id: str, user: User, days: int = 30) -> Response:
    user.check(group_id)
    from bot.web import reports

    body = await reports.members_csv(_console(request), group_id, max(1, min(days, 365)))
    return Response(
        "\ufeff" + body,  # a BOM: Excel opens UTF-8 Chinese correctly
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="members-{_safe(group_id)}.csv"'},
    )


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:60] or "group"


# --- 广告审核 ---------------------------------------------------------------------------------
@router.get("/antispam")
async def antispam_page(request: Request, user: User, group: str = "", note: str = "") -> HTMLResponse:
    console = _console(request)
    state = console.state("antispam")
    if group:
        user.check(group)
    decisions, bans = [], []
    if state is not None and state.store is not None:
        await state.executor.settle()
        rows = await state.store.decisions(group or None, limit=300)
        decisions = [d for d in rows if user.sees(d.group_id) or (d.group_id == "*" and user.is_bot_admin)][:100]
        bans = [b for b in await state.store.bans() if user.sees(b.group_id) or user.is_bot_admin]
    return _page(
        request,
        "antispam.html",
        {"on": state is not None, "decisions": decisions, "bans": bans, "group": group, "note": note},
    )


@router.post("/antispam/{decision_id}/{verdict}", dependencies=[Csrf])
async def antispam_mark(request: Request, decision_id: int, verdict: str, user: User) -> Response:
    if verdict not in ("ham", "spam"):
        raise HTTPException(404)
    console = _console(request)
    state = console.state("antispam")
    if state is None or state.store is None:
        raise HTTPException(409, "自动踢广告没有开启")
    decision = await state.store.decision(decision_id)
    if decision is None:
        raise HTTPException(404, "没有这条记录")
    user.check(decision.group_id)
    from plugins.antispam import chat_teaching

    ctx = _acting_context(console, "antispam", user, decision.group_id)
    if verdict == "ham":
        text = await chat_teaching.pardon_mistake(state, ctx, console.services, decision.member_id, by_id=True)
    else:
        text = await chat_teaching.confirm_decision(state, ctx, decision)
    await console.audit(
        user.id, f"antispam.{verdict}", decision.member_id, decision.group_id, decision=decision_id, result=text
    )
    return _back("/antispam", text)


def _acting_context(console: WebConsole, plugin: str, user: WebUser, group_id: str | None) -> Any:
    """A plugin context whose sender is the console user (so audit rows and pardons name
    them), for calling a chat command's service from the web."""
    from bot.core.events import Member, PrivateMessage

    host = console.host(plugin)
    assert host is not None
    event = PrivateMessage(at=console.now(), sender=Member(user.id, user.name), text="")
    return host.context(event, group_id=group_id)


# --- 定时群发 ---------------------------------------------------------------------------------
def _broadcasts(console: WebConsole) -> Any:
    state = console.state("broadcast")
    if state is None:
        raise HTTPException(409, "定时群发没有开启（配置里没有 broadcast 插件）")
    return state


def _level(user: WebUser) -> Permission:
    return Permission.BOT_ADMIN if user.is_bot_admin else Permission.GROUP_ADMIN


@router.get("/broadcasts")
async def broadcasts_page(request: Request, user: User, note: str = "", edit: str = "") -> HTMLResponse:
    console = _console(request)
    state = console.state("broadcast")
    form = {"when": "", "group": "", "content": "", "replace": ""}
    if edit and state is not None:
        from plugins.broadcast.service import Refused

        definition = state.find(edit)
        if definition is None or definition.source != "chat":
            raise HTTPException(404, f"没有可编辑的定时群发 {edit}（写在配置里的请在“配置”页修改）")
        home = next((g for g in definition.targets if user.sees(g)), None) if not user.is_bot_admin else None
        try:
            state.check_manage(definition, _level(user), home)
        except Refused as exc:
            raise HTTPException(403, str(exc)) from None
        form = {
            "when": definition.schedule.describe(),
            "group": ",".join(t for t in definition.targets if t != "all"),
            "content": "\n---\n".join(definition.messages),
            "replace": definition.name,
        }
    rows = []
    if state is not None:
        for definition in state.defs.values():
            if user.is_bot_admin or any(state.reaches(definition, g) for g in user.groups or ()):
                rows.append(
                    {
                        "name": definition.name,
                        "source": definition.source,
                        "when": definition.schedule.describe(),
                        "targets": state.targets_text(definition),
                        "next": state.when(state.next_fire(definition)),
                        "paused": state.paused(definition),
                        "text": "\n---\n".join(definition.messages),
                    }
                )
    groups = sorted(user.groups) if user.groups is not None else None
    return _page(
        request,
        "broadcasts.html",
        {
            "on": state is not None,
            "rows": rows,
            "note": note,
            "groups": groups,
            "tz": console.services.config.timezone,
            "form": form,
        },
    )


def _command_text(when: str, group: str, content: str) -> str:
    target = f" 群={group}" if group else ""
    return f"{when.strip()}{target}\n{content}"


@router.post("/broadcasts/preview", dependencies=[Csrf])
async def broadcast_preview(
    request: Request,
    user: User,
    when: Annotated[str, Form()] = "",
    group: Annotated[str, Form()] = "",
    content: Annotated[str, Form()] = "",
) -> HTMLResponse:
    from plugins.broadcast import preview

    console = _console(request)
    state = _broadcasts(console)
    fires, error = preview(state, _command_text(when, group, content or "…"), 5)
    return _page(request, "broadcast_preview.html", {"fires": fires, "error": error, "tz": state.tz})


@router.post("/broadcasts", dependencies=[Csrf])
async def broadcast_create(
    request: Request,
    user: User,
    when: Annotated[str, Form()] = "",
    group: Annotated[str, Form()] = "",
    content: Annotated[str, Form()] = "",
    replace: Annotated[str, Form()] = "",
) -> Response:
    from plugins.broadcast import create_from_text

    console = _console(request)
    state = _broadcasts(console)
    if not user.is_bot_admin and group not in (user.groups or ()):
        raise HTTPException(403, "群管理员只能给自己管理的群设置定时群发")
    home_group = group if not user.is_bot_admin else None
    old = None
    if replace:  # an edit: the new one is created, then the old one deleted (its report stays)
        from plugins.broadcast.service import Refused

        old = state.find(replace)
        if old is None or old.source != "chat":
            raise HTTPException(404, f"没有可编辑的定时群发 {replace}")
        try:
            state.check_manage(old, _level(user), home_group)
        except Refused as exc:
            raise HTTPException(403, str(exc)) from None
    ok, text = await create_from_text(
        state, _command_text(when, group, content), asker=user.id, level=_level(user), group_id=home_group
    )
    if ok and old is not None:
        await state.delete(old)
        text += f"\n（已替换原来的 #{old.name}）"
    action = ("broadcast.edit" if old else "broadcast.create") if ok else "broadcast.refused"
    await console.audit(user.id, action, when, group or None, result=text, replaced=replace or None)
    return _back("/broadcasts", text)


@router.post("/broadcasts/{name}/{verb}", dependencies=[Csrf])
async def broadcast_change(request: Request, name: str, verb: str, user: User) -> Response:
    console = _console(request)
    state = _broadcasts(console)
    definition = state.find(name)
    if definition is None:
        raise HTTPException(404, f"没有找到定时群发 {name}")
    from plugins.broadcast.service import Refused

    home = next((g for g in definition.targets if user.sees(g)), None) if not user.is_bot_admin else None
    try:
        state.check_manage(definition, _level(user), home)
    except Refused as exc:
        raise HTTPException(403, str(exc)) from None
    if verb == "pause":
        await state.set_paused(definition, True)
        note = f"已暂停 {definition.name}"
    elif verb == "resume":
        await state.set_paused(definition, False)
        note = f"已恢复 {definition.name}（暂停期间的不补发）"
    elif verb == "delete":
        if definition.source == "yaml":
            raise HTTPException(409, "写在配置文件里的群发请在“配置”页删除")
        await state.delete(definition)
        note = f"已删除 #{definition.name}"
    else:
        raise HTTPException(404)
    await console.audit(user.id, f"broadcast.{verb}", definition.name, home)
    return _back("/broadcasts", note)


@router.get("/broadcasts/{name}")
async def broadcast_report(request: Request, name: str, user: User) -> HTMLResponse:
    console = _console(request)
    state = _broadcasts(console)
    definition = state.find(name) or await state.archived(name)
    if definition is None:
        raise HTTPException(404, f"没有找到定时群发 {name}")
    if not user.is_bot_admin and not any(state.reaches(definition, g) for g in user.groups or ()):
        raise HTTPException(403, "群管理员只能查看发往自己群的定时群发")
    report = await state.report(definition)
    occurrences = [(state.when(at), counts) for at, counts in report.per_occurrence]
    per_group = [
        (console.group_name(gid), gid, counts) for gid, counts in sorted(report.per_group.items()) if user.sees(gid)
    ]
    failures = [(state.when(at), gid, detail) for at, gid, detail in report.failures if user.sees(gid)]
    return _page(
        request,
        "broadcast_report.html",
        {
            "d": definition,
            "describe": state.describe(definition),
            "occurrences": occurrences,
            "per_group": per_group,
            "failures": failures,
        },
    )


# --- 直播 -------------------------------------------------------------------------------------
@router.get("/relay")
async def relay_page(request: Request, user: User) -> HTMLResponse:
    """Relays whose groups the user sees; their live state and recent sessions, with the
    questions asked (read from the relay plugin's own state and tables)."""
    console = _console(request)
    state = console.state("relay")
    links, sessions = [], []
    if state is not None:
        for link in state.graph.links:
            if not any(user.sees(g) for g in link.groups if g):
                continue
            speakers = state.speakers_now(link)
            links.append(
                {
                    "name": link.name,
                    "source": console.group_name(link.source) if link.source else "",
                    "targets": [console.group_name(g) for g in (link.mesh or link.targets)],
                    "mesh": bool(link.mesh),
                    "live": speakers is not None,
                    "speakers": sorted(speakers or ()),
                    "always_on": link.spec.always_on,
                }
            )
        if state.store is not None and links:
            for session in await state.store.recent_sessions([row["name"] for row in links]):
                lines = await state.store.transcript(session.id)
                sessions.append(
                    {
                        "s": session,
                        "messages": sum(1 for line in lines if not line.question),
                        "speakers": sorted({line.member_name or line.member_id for line in lines if not line.question}),
                        "questions": [line for line in lines if line.question],
                    }
                )
    return _page(request, "relay.html", {"on": state is not None, "links": links, "sessions": sessions})


# --- 试一试 -----------------------------------------------------------------------------------
@router.get("/try")
async def try_page(request: Request, user: User) -> HTMLResponse:
    console = _console(request)
    groups = sorted(user.groups) if user.groups is not None else sorted(await _live_groups(console))
    return _page(request, "try.html", {"groups": groups, "outcome": None})


@router.post("/try", dependencies=[Csrf])
async def try_message(
    request: Request,
    user: User,
    group: Annotated[str, Form()] = "",
    member: Annotated[str, Form()] = "",
    text: Annotated[str, Form()] = "",
    new_member: Annotated[bool, Form()] = False,
) -> HTMLResponse:
    user.check(group)
    from bot.web.playground import try_message as run

    outcome = await run(_console(request), group, member.strip() or "someone", text, new_member)
    return _page(request, "try_result.html", {"outcome": outcome, "text": text})


# --- 配置 -------------------------------------------------------------------------------------
@router.get("/config")
async def config_page(request: Request, user: User, note: str = "") -> HTMLResponse:
    user.check_bot_admin()
    console = _console(request)
    path = configedit.config_path(console)
    text = await asyncio.to_thread(path.read_text, encoding="utf-8")
    return _page(request, "config.html", {"text": text, "path": path, "note": note, "check": None})


@router.post("/config/check", dependencies=[Csrf])
async def config_check(request: Request, user: User, text: Annotated[str, Form()] = "") -> HTMLResponse:
    user.check_bot_admin()
    console = _console(request)
    check = await configedit.check(console, text)
    return _page(request, "config_check.html", {"check": check})


@router.post("/config", dependencies=[Csrf])
async def config_save(request: Request, user: User, text: Annotated[str, Form()] = "") -> Response:
    user.check_bot_admin()
    console = _console(request)
    check = await configedit.check(console, text)
    if check.problems:
        path = configedit.config_path(console)
        return _page(request, "config.html", {"text": text, "path": path, "note": "", "check": check}, 422)
    applied = await configedit.save_and_reload(console, text)
    await console.audit(user.id, "config.save", str(configedit.config_path(console)), changes=check.changes)
    note = "已保存并重新加载" if applied else "已保存，但重新加载失败（仍在使用上一个配置，原因已私聊告知机器人管理员）"
    if check.changes:
        note += f"：{len(check.changes)} 处变化"
    return _back("/config", note)


# --- 审计、API 令牌 ---------------------------------------------------------------------------
@router.get("/accounts")
async def accounts_page(request: Request, user: User) -> HTMLResponse:
    """账号: the bot accounts' health and duties, from the service the 账号状态 command uses."""
    if not user.is_bot_admin:
        raise HTTPException(403, "账号状态只对机器人管理员开放")
    status = await account_status(_console(request).services)
    return _page(request, "accounts.html", {"status": status})


@router.get("/audit")
async def audit_page(request: Request, user: User) -> HTMLResponse:
    console = _console(request)
    rows = await console.store.audit_log(None if user.is_bot_admin else sorted(user.groups or ()))
    tz = console.services.config.tz
    return _page(request, "audit.html", {"rows": rows, "tz": tz})


@router.get("/tokens")
async def tokens_page(request: Request, user: User, note: str = "") -> HTMLResponse:
    user.check_bot_admin()
    console = _console(request)
    rows = await console.store.tokens()
    return _page(request, "tokens.html", {"rows": rows, "scopes": SCOPES, "note": note, "new": None})


@router.post("/tokens", dependencies=[Csrf])
async def token_create(
    request: Request,
    user: User,
    name: Annotated[str, Form()] = "",
    scopes: Annotated[list[str] | None, Form()] = None,
    groups: Annotated[str, Form()] = "",
) -> Response:
    user.check_bot_admin()
    console = _console(request)
    chosen = [g.strip() for g in groups.replace("，", ",").split(",") if g.strip()] or None
    try:
        token, row = await console.store.create_token(
            name.strip() or "未命名", scopes or [], chosen, user.id, console.now()
        )
    except ValueError as exc:
        return _back("/tokens", str(exc))
    await console.audit(user.id, "token.create", row.name, scopes=row.scopes, groups=chosen)
    rows = await console.store.tokens()
    # Shown once, here: only its hash is kept.
    return _page(request, "tokens.html", {"rows": rows, "scopes": SCOPES, "note": "", "new": token})


@router.post("/tokens/{token_id}/revoke", dependencies=[Csrf])
async def token_revoke(request: Request, token_id: int, user: User) -> Response:
    user.check_bot_admin()
    console = _console(request)
    done = await console.store.revoke_token(token_id, console.now())
    await console.audit(user.id, "token.revoke", str(token_id))
    return _back("/tokens", "已吊销" if done else "没有这个令牌，或已吊销")
