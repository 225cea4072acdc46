"""`qunbot stats …`: tables, JSON, CSV, PNG, and clear errors."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.storage.db import Database
from tests.stats.test_retention import december

RANGE = ["--from", "2026-12-01", "--to", "2026-12-14", "--as-of", "2027-01-20T10:00"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("stats-cli")
    db_file = tmp / "bot.db"

    async def fill() -> None:
        db = await Database.open(f"sqlite+aiosqlite:///{db_file}")
        await december().write(db)
        await db.close()

    asyncio.run(fill())
    config = tmp / "bot.yaml"
    config.write_text(
        f"""
timezone: Asia/Shanghai
bot: {{id: wxid_bot, name: 小助手}}
storage: {{url: "sqlite:///{db_file}"}}
groups:
  - {{id: g1, name: 宝妈交流群, sets: [parents]}}
  - {{id: g2, name: 读书群}}
plugins:
  stats: {{retention_days: [1, 7, 30], active_window_days: 7}}
""",
        encoding="utf-8",
    )
    return config, tmp


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["stats", *args])
    return result.exit_code, result.stdout, result.stderr


def test_retention_json_matches_the_engine(setup: tuple[Path, Path]) -> None:
    config, _ = setup
    code, out, err = run("retention", "-c", str(config), "-g", "g1", "--by", "day", "--json", *RANGE)
    assert code == 0, err
    data = json.loads(out)
    assert data["scope"] == {"label": "宝妈交流群", "groups": ["g1"]}
    assert data["total"]["size"] == 6  # the bot (wxid_bot in the config) is not a member
    assert data["total"]["in_group"]["7"] == {"measured": 6, "count": 5, "share": 0.8333}
    assert [c["cohort"] for c in data["cohorts"]] == [
        "2026-12-01",
        "2026-12-02",
        "2026-12-03",
        "2026-12-08",
        "2026-12-14",
    ]


def test_retention_csv_table_and_png(setup: tuple[Path, Path]) -> None:
    config, tmp = setup
    code, out, _ = run("retention", "-c", str(config), "--set", "parents", "--by", "source", "--csv", *RANGE)
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows[-1]["cohort"] == "total" and rows[-1]["size"] == "6"
    assert rows[-1]["active_d1_share"] == "0.6667"
    code, out, _ = run("retention", "-c", str(config), "-g", "g1", *RANGE)
    assert code == 0 and "total" in out and "not measurable yet" in out
    png = tmp / "retention.png"
    code, _, err = run("retention", "-c", str(config), "-g", "g1", "--png", str(png), *RANGE)
    assert code == 0 and png.read_bytes()[:4] == b"\x89PNG" and "chart written" in err


def test_other_reports(setup: tuple[Path, Path]) -> None:
    config, tmp = setup
    window = ["--from", "2026-12-01", "--to", "2026-12-31"]
    code, out, _ = run("growth", "-c", str(config), "-g", "g1", "--json", *window)
    assert code == 0 and json.loads(out)["joins"] == 8  # bob twice, not the bot
    code, out, _ = run("activity", "-c", str(config), "-g", "g1", *window)
    assert code == 0 and "WAU" in out and "week" in out
    code, out, _ = run("members", "-c", str(config), "-g", "g1", "--csv", *window)
    assert code == 0 and out.splitlines()[0] == "list,group,member,name,messages,last_active"
    code, out, _ = run("heatmap", "-c", str(config), "--json", *window)
    assert code == 0 and json.loads(out)["total"] == 9
    assert run("heatmap", "-c", str(config), "--png", str(tmp / "h.png"), *window)[0] == 0
    code, out, _ = run("checkin", "-c", str(config), "-g", "g1", "--json", *window)
    assert code == 0 and json.loads(out)["report"] == "checkin_rate"
    code, out, _ = run("action", "-c", str(config), "-g", "g1", "-k", "你好", "--since", "2026-12-02", "--json")
    assert code == 0 and json.loads(out)["acted"] == 1
    code, out, _ = run("summary", "-c", str(config), "-g", "g1", *window, "--as-of", "2027-01-20T10:00")
    assert code == 0 and "「宝妈交流群」" in out and "移出：Bob" in out


def test_errors_are_one_clear_line(setup: tuple[Path, Path], tmp_path: Path) -> None:
    config, _ = setup
    code, _, err = run("growth", "-c", str(config), "--set", "nope")
    assert code == 2 and "unknown group set 'nope'" in err
    for report in ("growth", "activity", "members", "checkin", "summary"):
        code, out, err = run(report, "-c", str(config), "-g", "nosuch", *RANGE)
        assert (code, out) == (2, ""), report
        assert "unknown group 'nosuch'" in err and "groups: g1, g2" in err, err
    code, _, err = run("growth", "-c", str(config), "-g", "g1", "-g", "nosuch", "-g", "gone")
    assert code == 2 and "unknown groups 'nosuch', 'gone'" in err
    # A group the config names is known, data or not.
    (config.parent / "more.yaml").write_text(
        config.read_text(encoding="utf-8").replace(
            "  - {id: g2, name: 读书群}", "  - {id: g2, name: 读书群}\n  - {id: g9}"
        ),
        encoding="utf-8",
    )
    code, _, err = run("growth", "-c", str(config.parent / "more.yaml"), "-g", "g9", *RANGE)
    assert code == 0, err
    code, _, err = run("growth", "-c", str(config), "--from", "2026-13-01")
    assert code == 2 and "--from: not a date" in err
    code, _, err = run("retention", "-c", str(config), "--by", "month")
    assert code == 2 and "--by must be one of" in err
    code, _, err = run("members", "-c", str(config), "--png", "x.png")
    assert code != 0
    code, _, err = run("growth", "-c", str(config), "--db", f"sqlite:///{tmp_path / 'missing.db'}")
    assert code == 2 and "no database" in err
    code, _, err = run("growth", "-c", str(config), "--json", "--csv")
    assert code == 2 and "exclude each other" in err
