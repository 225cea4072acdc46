"""One name per environment setting (QUNBOT_DATABASE_URL, QUNBOT_LOG), read by every command:
units on the settings, the commands in-process, and a bot run followed by `qunbot stats` and
`qunbot deadletter` in fresh processes that find the bot's database through the environment
alone, as inside the container."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.config import load_config
from bot.config.env import Environment, environment
from bot.config.errors import ConfigError
from tests.harness import write_config

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.mark.parametrize(
    ("variables", "url", "log"),
    [
        ({}, None, None),
        ({"QUNBOT_DATABASE_URL": "  "}, None, None),
        ({"QUNBOT_DATABASE_URL": "postgresql://q:pw@db:5432/q"}, "postgresql+asyncpg://q:pw@db:5432/q", None),
        ({"QUNBOT_DATABASE_URL": "sqlite:///data/x.db"}, "sqlite+aiosqlite:///data/x.db", None),
        ({"QUNBOT_LOG": "debug"}, None, "DEBUG"),
        ({"qunbot_log": "info"}, None, "INFO"),
    ],
)
def test_settings_are_read_under_one_prefix(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], url: str | None, log: str | None
) -> None:
    for name in ("QUNBOT_DATABASE_URL", "QUNBOT_LOG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    env = Environment()
    assert (env.database_url, env.log) == (url, log)


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("QUNBOT_DATABASE_URL", "mysql://qunbot:hunter2@db/qunbot", "not a usable database URL"),
        ("QUNBOT_DATABASE_URL", "nonsense hunter2", "not a usable database URL"),
        ("QUNBOT_LOG", "loud", "'DEBUG'"),
    ],
)
def test_a_bad_value_names_the_variable_and_never_the_password(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, problem: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as err:
        environment()
    (issue,) = err.value.issues
    assert issue.path == name and problem in issue.problem and "hunter2" not in str(err.value)


def test_the_database_url_replaces_storage_url_for_every_config_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = write_config(tmp_path, "storage:\n  url: sqlite:///in-the-yaml.db\n")
    assert load_config(cfg)[0].storage.url == "sqlite+aiosqlite:///in-the-yaml.db"
    monkeypatch.setenv("QUNBOT_DATABASE_URL", "postgresql://q:pw@postgres:5432/q")
    assert load_config(cfg)[0].storage.url == "postgresql+asyncpg://q:pw@postgres:5432/q"
    result = runner.invoke(app, ["check-config", str(cfg)])
    assert result.exit_code == 0 and "postgresql+asyncpg://q:***@postgres:5432/q" in result.output


def test_a_bad_environment_value_stops_every_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write_config(tmp_path, "timezone: UTC\n")
    monkeypatch.setenv("QUNBOT_DATABASE_URL", "mysql://qunbot:hunter2@db/qunbot")
    commands = [["check-config", str(cfg)], ["deadletter", "list", "-c", str(cfg)], ["stats", "growth", "-c", str(cfg)]]
    for args in commands:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "QUNBOT_DATABASE_URL: not a usable database URL" in result.output, args
        assert "hunter2" not in result.output


def test_the_bot_and_the_admin_commands_meet_in_the_same_database(tmp_path: Path) -> None:
    """As in the container: the YAML names one database, the environment another; the bot
    writes to the environment's, and stats and deadletter read the same one."""
    cfg = write_config(
        tmp_path,
        "timezone: Asia/Shanghai\nstorage:\n  url: sqlite:///never-used.db\nconsole:\n  groups: [g1]\n"
        "plugins:\n  welcome: {}\n",
    )
    db = tmp_path / "container.db"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "QUNBOT_LOG": "WARNING",
        "QUNBOT_DATABASE_URL": f"sqlite:///{db}",
    }

    def qunbot(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            cwd=tmp_path,
        )

    ran = qunbot("run", "--config", str(cfg), stdin="+g1 carol dave < alice\ng1 alice: 你好\ng1 carol: 大家好\n")
    assert ran.returncode == 0, ran.stderr
    assert db.exists() and not (tmp_path / "never-used.db").exists()
    stats = qunbot("stats", "growth", "--config", str(cfg), "--group", "g1", "--days", "1", "--json")
    assert stats.returncode == 0, stats.stderr
    report = json.loads(stats.stdout)
    assert (report["joins"], report["members_after"]) == (2, 2), report
    dead = qunbot("deadletter", "list", "--config", str(cfg))
    assert dead.returncode == 0 and str(tmp_path) in dead.stdout, dead.stdout + dead.stderr


def test_alembic_reads_the_same_name(tmp_path: Path) -> None:
    ini = tmp_path / "alembic.ini"
    ini.write_text(
        f"[alembic]\nscript_location = {REPO / 'bot' / 'storage' / 'migrations'}\npath_separator = os\n",
        encoding="utf-8",
    )
    db = tmp_path / "alembic.db"
    env = {**os.environ, "PYTHONPATH": str(REPO), "QUNBOT_DATABASE_URL": f"sqlite:///{db}"}
    env.pop("QUNBOT_DB_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(ini), "upgrade", "heads"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert db.exists() and db.stat().st_size > 0
