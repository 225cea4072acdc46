"""Login links, API tokens and the audit table. No web framework here: the `后台` chat
command creates links through it too."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bot.storage.db import Database
from bot.web.models import WebApiToken, WebAudit, WebLoginLink

SCOPES = ("read", "send", "broadcast")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class LinkUser:
    user_id: str
    user_name: str


class WebStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- one-time login links ------------------------------------------------------------
    async def create_link(self, user_id: str, user_name: str, now: datetime, valid: timedelta) -> str:
        token = new_token()
        row = WebLoginLink(
            token_hash=token_hash(token), user_id=user_id, user_name=user_name, created_at=now, expires_at=now + valid
        )
        async with self.db.session() as session:
            session.add(row)
            await session.commit()
        return token

    async def consume_link(self, token: str, now: datetime) -> LinkUser | None:
        """The link's user, once: a conditional UPDATE marks it used, so two clicks racing
        (or two replicas) cannot both log in."""
        t = WebLoginLink.__table__.c  # type: ignore[attr-defined]
        key = token_hash(token)
        async with self.db.engine.begin() as conn:
            done = await conn.execute(
                sa.update(WebLoginLink.__table__)  # type: ignore[arg-type]
                .where(t.token_hash == key, t.used_at.is_(None), t.expires_at > now)
                .values(used_at=now)
            )
            if done.rowcount != 1:
                return None
            row = (await conn.execute(sa.select(t.user_id, t.user_name).where(t.token_hash == key))).one()
        return LinkUser(row.user_id, row.user_name)

    # --- audit -----------------------------------------------------------------------------
    async def audit(
        self,
        now: datetime,
        user_id: str,
        action: str,
        target: str = "",
        group_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        async with self.db.session() as session:
            session.add(
                WebAudit(at=now, user_id=user_id, action=action, target=target, group_id=group_id, detail=detail)
            )
            await session.commit()

    async def audit_log(self, groups: list[str] | None, limit: int = 100) -> list[WebAudit]:
        t = WebAudit.__table__.c  # type: ignore[attr-defined]
        query = sa.select(WebAudit).order_by(t.id.desc()).limit(limit)
        if groups is not None:
            query = query.where(t.group_id.in_(groups))
        async with self.db.session() as session:
            return list((await session.execute(query)).scalars())

    # --- API tokens ----------------------------------------------------------------------
    async def create_token(
        self, name: str, scopes: list[str], groups: list[str] | None, by: str, now: datetime
    ) -> tuple[str, WebApiToken]:
        unknown = [s for s in scopes if s not in SCOPES]
        if unknown or not scopes:
            raise ValueError(f"权限范围只能是 {', '.join(SCOPES)}")
        token = new_token("qb_")
        row = WebApiToken(
            name=name,
            token_hash=token_hash(token),
            scopes=",".join(scopes),
            groups=groups,
            created_by=by,
            created_at=now,
        )
        async with self.db.session() as session:
            session.add(row)
            await session.commit()
            await session.refresh(row)
        return token, row

    async def tokens(self) -> list[WebApiToken]:
        t = WebApiToken.__table__.c  # type: ignore[attr-defined]
        async with self.db.session() as session:
            return list((await session.execute(sa.select(WebApiToken).order_by(t.id))).scalars())

    async def revoke_token(self, token_id: int, now: datetime) -> bool:
        t = WebApiToken.__table__.c  # type: ignore[attr-defined]
        async with self.db.engine.begin() as conn:
            done = await conn.execute(
                sa.update(WebApiToken.__table__)  # type: ignore[arg-type]
                .where(t.id == token_id, t.revoked_at.is_(None))
                .values(revoked_at=now)
            )
        return done.rowcount == 1

    async def token_for(self, token: str, now: datetime) -> WebApiToken | None:
        t = WebApiToken.__table__.c  # type: ignore[attr-defined]
        async with self.db.session() as session:
            row = (
                await session.execute(
                    sa.select(WebApiToken).where(t.token_hash == token_hash(token), t.revoked_at.is_(None))
                )
            ).scalar_one_or_none()
            if row is not None:
                row.last_used_at = now
                await session.commit()
                await session.refresh(row)
            return row
