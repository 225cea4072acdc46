"""/api/v1: tokens created in the console (hashed at rest, scoped: read / send / broadcast,
optionally limited to some groups). The same services as the console and the chat commands."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from bot.core.plugin import Permission
from bot.stats.people import names
from bot.storage.models import Membership
from bot.web.models import WebApiToken
from bot.web.server import WebConsole

router = APIRouter(prefix="/api/v1", tags=["api"])
_bearer = HTTPBearer(auto_error=False, description="在后台“API 令牌”页创建的令牌")


class Caller:
    def __init__(self, token: WebApiToken) -> None:
        self.token = token
        self.name = f"api:{token.name}"
        self.scopes = set(token.scopes.split(","))
        self.groups = set(token.groups) if token.groups is not None else None

    def need(self, scope: str) -> None:
        if scope not in self.scopes:
            raise HTTPException(403, f"this token lacks the {scope!r} scope")

    def check(self, group_id: str) -> None:
        if self.groups is not None and group_id not in self.groups:
            raise HTTPException(403, "this token is not for this group")


def _console(request: Request) -> WebConsole:
    return request.app.state.console  # type: ignore[no-any-return]


async def caller(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Caller:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    console = _console(request)
    token = await console.store.token_for(credentials.credentials, console.now())
    if token is None:
        raise HTTPException(401, "unknown or revoked token", headers={"WWW-Authenticate": "Bearer"})
    return Caller(token)


Auth = Annotated[Caller, Depends(caller)]


class GroupOut(BaseModel):
    id: str
    topic: str
    in_group: bool
    members: int
    active_today: int
    active_7d: int
    retention_7d: float | None
    ads_removed_7d: int
    failed_sends_7d: int


@router.get("/groups", response_model=list[GroupOut], summary="Every group with today's figures")
async def list_groups(request: Request, who: Auth) -> list[dict[str, Any]]:
    who.need("read")
    console = _console(request)
    lines = await console.overview(frozenset(who.groups) if who.groups is not None else None)
    for line in lines:
        line.topic = console.group_name(line.id, line.topic)
    return [line.as_json() for line in lines]


@router.get("/groups/{group_id}/stats", summary="Growth, activity, retention and lurkers of one group")
async def group_stats(request: Request, group_id: str, who: Auth, days: int = 30) -> dict[str, Any]:
    who.need("read")
    who.check(group_id)
    from bot.web.reports import group_report

    return await group_report(_console(request), group_id, max(7, min(days, 180)))


class MemberOut(BaseModel):
    id: str
    name: str
    joined_at: str | None = Field(
        description="When the bot saw the member join; null when they were there before the bot"
    )
    known_since: str = Field(description="Since when the bot has known the member to be in the group")
    inviter: str | None


@router.get("/groups/{group_id}/members", response_model=list[MemberOut], summary="Current members")
async def list_members(request: Request, group_id: str, who: Auth) -> list[dict[str, Any]]:
    who.need("read")
    who.check(group_id)
    db = _console(request).services.db
    assert db is not None
    m = Membership.__table__.c  # type: ignore[attr-defined]
    async with db.engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(m.member_id, m.joined_at, m.known_from, m.inviter_id)
                .where(m.group_id == group_id, m.left_at.is_(None))
                .order_by(m.known_from)
            )
        ).all()
    known = await names(db, [r.member_id for r in rows])
    return [
        {
            "id": r.member_id,
            "name": known.get(r.member_id, ""),
            "joined_at": r.joined_at.isoformat() if r.joined_at is not None else None,
            "known_since": r.known_from.isoformat(),
            "inviter": r.inviter_id,
        }
        for r in rows
    ]


class SendIn(BaseModel):
    text: str = Field(min_length=1, max_length=4000)
    mentions: list[str] = Field(default_factory=list, max_length=50)


@router.post("/groups/{group_id}/messages", status_code=202, summary="Send a message to a group (queued on the outbox)")
async def send(request: Request, group_id: str, body: SendIn, who: Auth) -> dict[str, Any]:
    who.need("send")
    who.check(group_id)
    console = _console(request)
    items = console.services.outbox.say(group_id, body.text, tuple(body.mentions))
    await console.audit(who.name, "api.send", group_id, group_id, chars=len(body.text), pieces=len(items))
    return {"queued": len(items)}


class BroadcastIn(BaseModel):
    when: str = Field(description="The same time syntax as chat: 每天08:00, 工作日 9点半, 2026-12-24 20:00, cron …")
    group: str = Field("", description="A group id; empty for every group (tokens for all groups only)")
    content: str = Field(min_length=1, max_length=4000)


@router.post("/broadcasts", status_code=201, summary="Create a scheduled broadcast (定时群发)")
async def create_broadcast(request: Request, body: BroadcastIn, who: Auth) -> dict[str, Any]:
    who.need("broadcast")
    console = _console(request)
    state = console.state("broadcast")
    if state is None:
        raise HTTPException(409, "the broadcast plugin is off")
    if who.groups is not None:
        if not body.group:
            raise HTTPException(403, "a token for some groups must name one of them")
        who.check(body.group)
    from plugins.broadcast import create_from_text

    target = f" 群={body.group}" if body.group else " 全部群"
    level = Permission.BOT_ADMIN if who.groups is None else Permission.GROUP_ADMIN
    ok, text = await create_from_text(
        state,
        f"{body.when.strip()}{target}\n{body.content}",
        asker=who.name,
        level=level,
        group_id=body.group if who.groups is not None else None,
    )
    await console.audit(who.name, "api.broadcast" if ok else "api.broadcast.refused", body.when, body.group or None)
    if not ok:
        raise HTTPException(422, text)
    return {"created": True, "message": text}
