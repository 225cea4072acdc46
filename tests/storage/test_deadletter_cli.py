"""`qunbot deadletter list|replay`, and `qunbot run` with the database away: what an
operator types and reads."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from bot.cli import app
from tests.faults.pgserver import free_port

runner = CliRunner()


def _config(folder: Path, url: str, extra: str = "") -> Path:
    path = folder / "config" / "bot.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'timezone: Asia/Shanghai\nstorage:\n  url: "{url}"\n{extra}', encoding="utf-8")
    return path


def test_list_and_replay_set_aside_events(tmp_path: Path) -> None:
    config = _config(tmp_path, f"sqlite:///{tmp_path / 'db' / 'bot.db'}")
    dead = tmp_path / "db" / "bot.deadletter.jsonl"
    dead.parent.mkdir()
    event = {
        "type": "GroupMessage",
        "at": "2026-12-01T08:00:00+08:00",
        "group_id": "g1",
        "sender": {"id": "a\u0000b", "name": "A"},
        "text": "hi",
        "message_id": "m1",
    }
    dead.write_text(
        json.dumps({"error": "CharacterNotInRepertoireError: invalid byte sequence 0x00", "event": event}) + "\n",
        encoding="utf-8",
    )

    listed = runner.invoke(app, ["deadletter", "list", "--config", str(config)])
    assert listed.exit_code == 0, listed.output
    assert 'member="a\\u0000b"' in listed.output  # the invisible character shown
    assert "1 set-aside events in" in listed.output and "1 × CharacterNotInRepertoireError" in listed.output

    replayed = runner.invoke(app, ["deadletter", "replay", "--config", str(config)])
    assert replayed.exit_code == 0, replayed.output
    assert "replayed 1 set-aside events" in replayed.output and "1 written, 0 refused again" in replayed.output
    assert not dead.exists()
    again = runner.invoke(app, ["deadletter", "list", "--config", str(config)])
    assert "no set-aside events" in again.output


def test_run_with_the_database_away_exits_1_with_one_line_naming_it(tmp_path: Path) -> None:
    url = f"postgresql://qunbot:s3cret@127.0.0.1:{free_port()}/qunbot"
    config = _config(tmp_path, url, "  connect_retry_seconds: 0\n")
    result = runner.invoke(app, ["run", "--config", str(config)], input="")
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.startswith("qunbot:")]
    assert lines == [lines[0]] and "cannot reach the database postgresql+asyncpg://qunbot:***@127.0.0.1" in lines[0]
    assert "s3cret" not in result.output
