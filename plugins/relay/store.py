"""Relay storage: claiming messages in the ledger, sessions and transcripts."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from bot.core.events import GroupMessage
from bot.storage.db import Database
from plugins.relay.models import RelayLedger, RelaySession, RelayTranscript


def origin_key(event: GroupMessage) -> str:
    """The ledger key of a message: its platform id, or (without one) who said what when."""
    if event.message_id:
        return f"m:{event.group_id}:{event.message_id}"
    digest = hashlib.sha1(f"{event.kind}\x00{event.text}\x00{event.url or ''}".encode(), usedforsecurity=False)
    return f"f:{event.group_id}:{event.sender.id}:{int(event.at.timestamp())}:{digest.hexdigest()[:16]}"


@dataclass(frozen=True, slots=True)
class TranscriptLine:
    session_id: int
    question: bool = False


@dataclass(frozen=True, slots=True)
class Summary:
    messages: int
    questions: int
    speakers: int
    groups: int
    started_at: datetime
    ended_at: datetime
    asked: list[RelayTranscript]


class RelayStore:
    def __init__(self, db: Database, *, store_text: bool = True) -> None:
        self._db = db
        self._store_text = store_text

    def _insert(self, table: Any) -> Any:
        make = postgresql.insert if self._db.dialect == "postgresql" else sqlite.insert
        return make(table)

    async def claim(
        self,
        event: GroupMessage,
        targets: Sequence[str],
        at: datetime,
        transcript: Sequence[TranscriptLine] = (),
        *,
        text: str | None = None,
    ) -> bool:
        """Record that this message is being relayed; False if it already was (nothing is
        written then). Transcript lines are written in the same transaction."""
        stmt = (
            self._insert(RelayLedger.__table__)
            .values(
                origin_key=origin_key(event),
                group_id=event.group_id,
                member_id=event.sender.id,
                message_id=event.message_id,
                at=at,
                targets=list(targets),
            )
            .on_conflict_do_nothing(index_elements=["origin_key"])
        )
        async with self._db.transaction() as s:
            result = await s.exec(stmt)
            if not result.rowcount:  # type: ignore[attr-defined]
                return False
            for line in transcript:
                s.add(
                    RelayTranscript(
                        session_id=line.session_id,
                        at=at,
                        group_id=event.group_id,
                        member_id=event.sender.id,
                        member_name=event.sender.display,
                        kind=event.kind.value,
                        text=(text if text is not None else event.text) if self._store_text else None,
                        question=line.question,
                        meta={"url": event.url} if event.url and self._store_text else None,
                    )
                )
        return True

    async def purge_ledger(self, before: datetime) -> int:
        async with self._db.transaction() as s:
            result = await s.exec(sa.delete(RelayLedger).where(col(RelayLedger.at) < before))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    # --- sessions ------------------------------------------------------------------------
    async def open_sessions(self) -> list[RelaySession]:
        query = select(RelaySession).where(col(RelaySession.ended_at).is_(None)).order_by(col(RelaySession.id))
        async with self._db.session() as s:
            return list((await s.exec(query)).all())

    async def recent_sessions(self, relays: list[str], limit: int = 20) -> list[RelaySession]:
        """The latest sessions of these relays, newest first (the console's 直播 page)."""
        query = (
            select(RelaySession)
            .where(col(RelaySession.relay).in_(relays))
            .order_by(col(RelaySession.id).desc())
            .limit(limit)
        )
        async with self._db.session() as s:
            return list((await s.exec(query)).all())

    async def start_session(
        self, relay: str, group_id: str, by: str, at: datetime, speakers: list[str] | None
    ) -> RelaySession | None:
        """Open a session; None when the relay already has an open one (maybe opened by
        another process sharing the database)."""
        row = RelaySession(relay=relay, group_id=group_id, started_at=at, started_by=by, speakers=speakers)
        try:
            async with self._db.transaction() as s:
                s.add(row)
                await s.flush()
        except IntegrityError:
            return None
        return row

    async def end_session(self, session_id: int, by: str, at: datetime) -> bool:
        async with self._db.transaction() as s:
            result = await s.exec(
                sa.update(RelaySession)
                .where(col(RelaySession.id) == session_id, col(RelaySession.ended_at).is_(None))
                .values(ended_at=at, ended_by=by)
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def transcript(self, session_id: int) -> list[RelayTranscript]:
        query = (
            select(RelayTranscript)
            .where(col(RelayTranscript.session_id) == session_id)
            .order_by(col(RelayTranscript.at), col(RelayTranscript.id))
        )
        async with self._db.session() as s:
            return list((await s.exec(query)).all())

    async def summary(self, session: RelaySession, ended_at: datetime, groups: int, list_questions: int) -> Summary:
        assert session.id is not None
        t = RelayTranscript
        async with self._db.session() as s:
            counts = (
                await s.exec(
                    sa.select(
                        sa.func.count().filter(col(t.question).is_(False)),
                        sa.func.count().filter(col(t.question).is_(True)),
                        sa.func.count(sa.distinct(col(t.member_id))).filter(col(t.question).is_(False)),
                    ).where(col(t.session_id) == session.id)
                )
            ).one()
            asked = (
                list(
                    (
                        await s.exec(
                            select(t)
                            .where(col(t.session_id) == session.id, col(t.question).is_(True))
                            .order_by(col(t.at), col(t.id))
                            .limit(list_questions)
                        )
                    ).all()
                )
                if list_questions
                else []
            )
        return Summary(
            messages=int(counts[0] or 0),
            questions=int(counts[1] or 0),
            speakers=int(counts[2] or 0),
            groups=groups,
            started_at=session.started_at,
            ended_at=ended_at,
            asked=asked,
        )
