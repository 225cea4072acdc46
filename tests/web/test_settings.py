"""The `web:` section: validated like every section (unknown keys, ranges, named lines), and
the password helper's hash verifies."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.app import load_everything
from bot.cli import app
from bot.config.errors import ConfigError
from bot.web.auth import verify_password
from tests.harness import write_config


def test_web_section_errors_name_their_lines(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        """\
        web:
          port: 99999
          bogus: 1
          public_url: bot.example.com
          webhooks:
            - {url: "https://x", secret: s, events: [nope]}
        """,
    )
    with pytest.raises(ConfigError) as caught:
        load_everything(path)
    found = {(i.line, i.path) for i in caught.value.issues}
    assert found == {(2, "web.port"), (3, "web.bogus"), (4, "web.public_url"), (6, "web.webhooks[0].events")}


def test_the_console_command_is_loaded_only_with_a_web_section(tmp_path: Path) -> None:
    without = load_everything(write_config(tmp_path, "bot_admins: [a]\n"))
    assert "web" not in {s.name for s in without.plugins}
    forced = load_everything(write_config(tmp_path, "bot_admins: [a]\n"), web_default=True)
    assert "web" in {s.name for s in forced.plugins} and forced.config.web is not None
    assert forced.config.web.host == "127.0.0.1" and forced.config.web.base_url == "http://127.0.0.1:8080"


def test_web_password_prints_an_argon2_hash() -> None:
    result = CliRunner().invoke(app, ["web-password"], input="s3cret\ns3cret\n")
    assert result.exit_code == 0, result.output
    hashed = result.output.strip().splitlines()[-1]
    assert hashed.startswith("$argon2id$") and verify_password(hashed, "s3cret")
    assert not verify_password(hashed, "wrong")
