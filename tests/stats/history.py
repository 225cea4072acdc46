"""Hand-built histories: events fed through the real recorder, so the rollups and the raw
event log are written exactly as the running bot writes them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.core.events import Event, GroupMessage, Member, MembersJoined, MembersLeft
from bot.storage.db import Database
from bot.storage.recorder import Recorder


@dataclass
class History:
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    steps: list[tuple[Event, str | None]] = field(default_factory=list)
    _seq: int = 0

    def at(self, when: str) -> datetime:
        """'2026-12-01 09:00' in the history's timezone (or an ISO time with an offset)."""
        parsed = datetime.fromisoformat(when)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=self.tz)

    def join(
        self, group: str, member: str, when: str, inviter: str | None = None, source: str | None = None
    ) -> History:
        ev = MembersJoined(
            at=self.at(when),
            group_id=group,
            members=(Member(member, member.title()),),
            inviter=Member(inviter, inviter.title()) if inviter else None,
        )
        self.steps.append((ev, source))
        return self

    def leave(self, group: str, member: str, when: str, removed_by: str | None = None) -> History:
        ev = MembersLeft(
            at=self.at(when),
            group_id=group,
            members=(Member(member, member.title()),),
            removed_by=Member(removed_by, removed_by.title()) if removed_by else None,
        )
        self.steps.append((ev, None))
        return self

    def say(self, group: str, member: str, when: str, text: str = "你好", times: int = 1) -> History:
        for _ in range(times):
            self._seq += 1
            ev = GroupMessage(
                at=self.at(when),
                group_id=group,
                sender=Member(member, member.title()),
                text=text,
                message_id=f"h{self._seq}",
            )
            self.steps.append((ev, None))
        return self

    async def write(self, db: Database) -> None:
        recorder = Recorder(db, self.tz, dead_letter_path=None)
        for event, source in sorted(self.steps, key=lambda s: s[0].at):
            if source is not None:
                assert isinstance(event, MembersJoined)
                recorder.record_membership_source(event.group_id, event.members[0].id, source)
            recorder.record(event)
            if source is not None:
                await recorder.flush()
        await recorder.flush()
