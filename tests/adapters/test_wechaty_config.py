"""Configuration of the wechaty adapter: settings, credentials from config or environment,
secrets never echoed, and python-wechaty loaded only when the adapter runs."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.adapters.wechaty import library
from bot.adapters.wechaty.runner import resolve_credentials
from bot.config import load_config
from bot.config.errors import ConfigError
from bot.config.models import WechatySettings

ROOT = Path(__file__).resolve().parents[2]
TOKEN_ENV = "WECHATY_PUPPET_SERVICE_TOKEN"
ENDPOINT_ENV = "WECHATY_PUPPET_SERVICE_ENDPOINT"


def test_credentials_come_from_the_config_first_then_the_environment() -> None:
    env = {ENDPOINT_ENV: "svc:9000", TOKEN_ENV: "env-token"}
    from_env = resolve_credentials(WechatySettings(), env)
    assert (from_env.endpoint, from_env.token) == ("svc:9000", "env-token")
    assert "env-token" not in from_env.source and TOKEN_ENV in from_env.source
    configured = resolve_credentials(WechatySettings(endpoint="127.0.0.1:8788", token="cfg-token"), env)
    assert (configured.endpoint, configured.token) == ("127.0.0.1:8788", "cfg-token")


def test_missing_or_bad_credentials_stop_with_what_to_set() -> None:
    with pytest.raises(SystemExit) as missing:
        resolve_credentials(WechatySettings(), {})
    assert ENDPOINT_ENV in str(missing.value) and TOKEN_ENV in str(missing.value)
    with pytest.raises(SystemExit) as bad:
        resolve_credentials(WechatySettings(), {ENDPOINT_ENV: "no-port", TOKEN_ENV: "secret-xyz"})
    assert "host:port" in str(bad.value) and "secret-xyz" not in str(bad.value)


def test_settings_validation() -> None:
    assert WechatySettings(endpoint=" 10.0.0.2:8788 ").endpoint == "10.0.0.2:8788"
    for endpoint in ("localhost", ":8788", "host:http", "host:70000"):
        with pytest.raises(ValidationError):
            WechatySettings(endpoint=endpoint)
    with pytest.raises(ValidationError, match="liveness_timeout"):
        WechatySettings(heartbeat_interval=30, liveness_timeout=20)
    with pytest.raises(ValidationError, match="max_delay"):
        WechatySettings.model_validate({"reconnect": {"initial_delay": 10, "max_delay": 5}})
    numeric = WechatySettings.model_validate({"token": 1234567})
    assert numeric.token is not None and numeric.token.get_secret_value() == "1234567"
    assert "1234567" not in repr(numeric) and "1234567" not in str(numeric.model_dump())


def test_config_errors_never_echo_a_secret(tmp_path: Path) -> None:
    path = tmp_path / "bot.yaml"
    path.write_text(
        textwrap.dedent("""\
        adapter: wechaty
        wechaty:
          token: [tok-in-a-list]
          endpoint: "nope"
        notify:
          webhooks:
            - {kind: dingtalk, url: "https://oapi.dingtalk.com/robot/send", secret: 998877}
    """),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text = str(err.value)
    assert "tok-in-a-list" not in text and "998877" not in text
    assert "wechaty.token" in text and "value hidden" in text
    assert "bot.yaml:4: wechaty.endpoint" in text  # non-secrets are still shown


async def test_run_wechaty_without_the_extra_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.adapters.wechaty import run_wechaty

    monkeypatch.setattr(library, "find_spec", lambda name: None)
    with pytest.raises(SystemExit, match=r"pip install 'qunbot\[wechaty\]'"):
        await run_wechaty(None)  # type: ignore[arg-type]


def test_check_available_names_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(library, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match="python-wechaty is not installed"):
        library.check_available()
    monkeypatch.setattr(library.sys, "version_info", (3, 13, 0))
    with pytest.raises(ImportError, match="telnetlib"):
        library.check_available()


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )


def test_the_core_the_console_and_the_adapter_modules_never_import_python_wechaty() -> None:
    result = _run("""
        import sys

        def loaded():
            return sorted(m for m in sys.modules if m.split(".")[0] in {"wechaty", "wechaty_puppet",
                          "wechaty_puppet_service", "wechaty_grpc", "grpclib"})

        import bot.app, bot.cli, bot.runner, bot.adapters.console, bot.adapters.simulator
        import plugins.welcome, plugins.keyword_reply
        print(loaded())
        import bot.adapters.wechaty, bot.adapters.wechaty.runner, bot.adapters.wechaty.platform
        print(loaded())
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines() == ["[]", "[]"]


def test_load_sets_the_endpoint_first_and_makes_import_wechaty_work_on_3_11() -> None:
    try:
        library.check_available()
    except ImportError as exc:
        pytest.skip(f"the wechaty extra is not installed here ({exc})")
    result = _run("""
        import os
        from bot.adapters.wechaty import library
        lib = library.load("127.0.0.1:1")
        assert os.environ["WECHATY_PUPPET_SERVICE_ENDPOINT"] == "127.0.0.1:1"
        import wechaty  # fails on 3.11+ without the PuppetOptions.__hash__ fix
        puppet = lib.puppet_class(lib.options_class(token="t"))
        assert puppet.options.end_point == "127.0.0.1:1"
        assert {"PuppetService", "Room", "Wechaty"} <= lib.logger_names
        payload = library.url_link_payload(lib, "https://e.x/a", "T", "D")
        print(type(payload).__name__, payload.url, payload.title, payload.description)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("UrlLinkPayload https://e.x/a T D")


def test_the_example_config_is_valid() -> None:
    from bot.app import load_everything

    loaded = load_everything(ROOT / "config" / "wechaty" / "bot.yaml")
    assert loaded.config.adapter == "wechaty"
    assert loaded.config.wechaty.token is None and loaded.config.wechaty.endpoint is None  # from the environment


def test_the_wechaty_config_turns_on_every_plugin_the_default_config_does() -> None:
    from bot.app import load_everything

    wechaty = load_everything(ROOT / "config" / "wechaty" / "bot.yaml")
    default = load_everything(ROOT / "config" / "bot.yaml")
    assert {s.name for s in wechaty.plugins} == {s.name for s in default.plugins}
    assert set(wechaty.config.plugins) == set(default.config.plugins)
    assert wechaty.warnings == [] and wechaty.config.bot_admins == []  # no demo ids on a real account


def test_docker_compose_mounts_the_config_folder_and_polls_it() -> None:
    """The watch needs a folder mount (a file mount keeps showing the replaced file), the
    image runs the file in that folder, and the database URL reaches every command."""
    from bot.config.yamlio import load_yaml

    compose, _lines = load_yaml(ROOT / "docker-compose.yml")
    service = compose["services"]["qunbot"]
    mounts = [v for v in service["volumes"] if str(v).endswith(":/app/config")]
    assert mounts == ["${QUNBOT_CONFIG_DIR:-./config/wechaty}:/app/config"]
    assert (ROOT / "config" / "wechaty" / "bot.yaml").is_file()
    env = service["environment"]
    assert env["QUNBOT_CONFIG_POLL"] == "true" and env["QUNBOT_DATABASE_URL"].startswith("postgresql://")
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert 'CMD ["qunbot", "run", "--config", "/app/config/bot.yaml"]' in dockerfile
    assert "COPY config/wechaty/bot.yaml ./config/bot.yaml" in dockerfile
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    assert "QUNBOT_CONFIG_DIR" in example and "QUNBOT_CONFIG=" not in example
