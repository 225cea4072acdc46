"""Every chart renders to a PNG, with and without a CJK font."""

from __future__ import annotations

import logging
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot import stats
from bot.stats import Period, Scope, charts
from bot.storage.db import Database
from tests.stats.history import History

SH = ZoneInfo("Asia/Shanghai")
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
async def db(tmp_path: Path) -> Database:
    database = await Database.open(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")
    h = History(SH)
    for i in range(12):
        h.join("g1", f"m{i}", f"2026-12-{1 + i:02d} 09:00", source="keyword:进群" if i % 2 else None)
        for d in range(i + 1, 28, 2 + i % 3):
            h.say("g1", f"m{i}", f"2026-12-{d:02d} {8 + (i * 3 + d) % 14:02d}:15", times=1 + i % 4)
    h.leave("g1", "m3", "2026-12-10 10:00").leave("g1", "m5", "2026-12-12 10:00", removed_by="m0")
    await h.write(database)
    yield database  # type: ignore[misc]
    await database.close()


async def render_all(db: Database, out: Path) -> list[Path]:
    scope = Scope.one("g1", "宝妈交流群")
    period = Period(date(2026, 12, 1), date(2026, 12, 28))
    as_of = datetime(2026, 12, 29, 9, tzinfo=SH)
    return [
        charts.growth_chart(await stats.growth(db, SH, scope, period), out / "growth.png"),
        charts.activity_chart(await stats.activity(db, SH, scope, period), out / "activity.png"),
        charts.retention_chart(
            await stats.retention(db, SH, scope, period, as_of=as_of, by="week"), out / "retention.png"
        ),
        charts.heatmap_chart(await stats.heatmap(db, SH, scope, period), out / "heatmap.png"),
    ]


async def test_charts_render(db: Database, tmp_path: Path) -> None:
    for path in await render_all(db, tmp_path):
        assert path.read_bytes()[:8] == PNG and path.stat().st_size > 10_000


async def test_without_a_cjk_font_charts_still_render_in_english(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(charts, "cjk_font", lambda: None)
    charts._warn_no_font.cache_clear()
    with caplog.at_level(logging.WARNING, logger="qunbot.stats.charts"):
        paths = await render_all(db, tmp_path)
    assert all(p.read_bytes()[:8] == PNG for p in paths)
    assert "fonts-noto-cjk" in caplog.text


def test_text_falls_back_to_group_ids() -> None:
    text = charts._Text(None)
    assert text("成员", "members") == "members"
    assert text.scope(Scope.one("g1", "宝妈交流群")) == "g1"
    assert text.scope(Scope(None, "全部群")) == "all groups"
    assert charts._Text("Noto Sans CJK SC").scope(Scope.one("g1", "宝妈交流群")) == "宝妈交流群"
