"""The games' storage on SQLite and PostgreSQL: conditional closes happen once, entries and
votes are one per member, points are ledger rows, and a restart keeps a lottery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from bot.storage.db import Database
from bot.storage.points import PointsLedger
from plugins.games.models import Lottery, Poll, Round
from plugins.games.repo import Award, GamesRepo, draw_winners
from tests.harness import chat
from tests.plugins.games.common import WORLD, config, last

T0 = datetime(2026, 12, 1, tzinfo=UTC)


async def test_lottery_entries_and_draw(database: Database) -> None:
    repo = GamesRepo(database)
    lot = await repo.add_lottery(
        Lottery(
            group_id="g1",
            prize="电影票",
            keyword="我要",
            winners=2,
            ends_at=T0 + timedelta(hours=1),
            seed=2**62 + 12345,
            created_by="owner1",
            created_at=T0,
        )
    )
    assert lot.id is not None
    assert await repo.join(lot.id, "alice", "Alice", T0) == (True, 1)
    assert await repo.join(lot.id, "alice", "Alice", T0) == (False, 1)
    for i, member in enumerate(["bob", "carol", "dave"], start=2):
        assert await repo.join(lot.id, member, member, T0) == (True, i)
    result = await repo.draw(lot.id, T0 + timedelta(hours=1), "time", None)
    assert result is not None and len(result.winners) == 2
    expected = draw_winners(2**62 + 12345, ["alice", "bob", "carol", "dave"], 2)
    assert [w.member_id for w in result.winners] == expected
    again = await repo.lottery(lot.id)
    assert again is not None and again.winner_ids == expected and again.seed == 2**62 + 12345
    assert again.ends_at == T0 + timedelta(hours=1)
    assert await repo.draw(lot.id, T0, "admin", "owner1") is None  # drawn once
    assert await repo.join(lot.id, "erin", "Erin", T0) == (None, 0)  # closed
    assert not await repo.cancel_lottery(lot.id, T0, "owner1")
    assert await repo.open_lotteries() == []


async def test_votes_one_per_member(database: Database) -> None:
    repo = GamesRepo(database)
    poll = await repo.add_poll(
        Poll(
            group_id="g1",
            title="午饭",
            options=["面", "饭"],
            ends_at=T0 + timedelta(hours=1),
            created_by="owner1",
            created_at=T0,
        )
    )
    assert poll.id is not None and poll.options == ["面", "饭"]
    assert await repo.vote(poll.id, "alice", 1, T0, allow_change=False) == ("voted", None)
    assert await repo.vote(poll.id, "alice", 2, T0, allow_change=False) == ("locked", 1)
    assert await repo.vote(poll.id, "alice", 2, T0, allow_change=True) == ("changed", 1)
    assert await repo.vote(poll.id, "alice", 2, T0, allow_change=True) == ("same", 2)
    assert await repo.vote(poll.id, "bob", 2, T0, allow_change=True) == ("voted", None)
    assert await repo.tally(poll.id) == {2: 2}
    assert await repo.close_poll(poll.id, T0)
    assert not await repo.close_poll(poll.id, T0)
    assert await repo.vote(poll.id, "carol", 1, T0, allow_change=True) == ("closed", None)
    latest = await repo.latest_poll("g1")
    assert latest is not None and latest.status == "closed"


async def test_a_round_is_won_once_and_pays_once(database: Database) -> None:
    repo = GamesRepo(database)
    rnd = await repo.add_round(
        Round(
            group_id="g1",
            kind="quiz",
            question="q",
            answers=["a"],
            started_by="o",
            started_at=T0,
            ends_at=T0 + timedelta(minutes=1),
        )
    )
    assert rnd.id is not None
    award = Award(10, "game:quiz", f"game:quiz:{rnd.id}")
    won = await repo.finish_round(rnd.id, "won", T0, winner="alice", award=award)
    assert won is not None and won.total == 10
    assert await repo.finish_round(rnd.id, "won", T0, winner="bob", award=award) is None
    assert await repo.finish_round(rnd.id, "timeout", T0) is None
    assert await PointsLedger(database).total("g1", "alice") == 10
    assert await PointsLedger(database).total("g1", "bob") == 0
    assert await repo.times_asked("g1") == {"q": 1}


async def test_lottery_restart_through_the_pipeline(tmp_path: Path, db_url: str) -> None:
    cfg = config(tmp_path)
    async with chat(cfg, WORLD, db_url=db_url) as bot:
        await bot.say("g1", "owner1", "发起抽奖 电影票 2人 口令=我要 截止=20:00")
        await bot.say("g1", "alice", "我要")
        await bot.say("g1", "bob", "我要")
    async with chat(cfg, {**WORLD, "clock": "2026-12-01T19:00:00+08:00"}, db_url=db_url) as bot:
        await bot.say("g1", "carol", "我要")
        assert "当前 3 人" in last(bot)
        await bot.wait("2h")
        result = bot.assert_said("g1", contains="开奖啦", count=1)
        assert len(set(result.mentions)) == 2 and set(result.mentions) <= {"alice", "bob", "carol"}


def _games_diffs(conn: Connection) -> list[object]:
    def ours(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
        table = obj if type_ == "table" else getattr(obj, "table", None)
        return str(getattr(table, "name", "")).startswith("games_")

    context = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": ours})
    return list(compare_metadata(context, SQLModel.metadata))


async def test_the_migration_matches_the_models(database: Database) -> None:
    async with database.engine.connect() as conn:
        assert await conn.run_sync(_games_diffs) == []
