"""Fixtures of the end-to-end tests: the puppet-service gateway (tests/wechaty_gateway) and a
real `qunbot run` process, both on free ports. `functional_stack` is one pair shared by the
feature tests; `stack_factory` gives a module its own pair (the recovery tests kill theirs).

They skip, with the reason, when node, the gateway's Node packages or the `wechaty` extra is
missing; `.ci/run` installs all three, so in CI they run."""

from __future__ import annotations

import importlib
import importlib.util
import secrets
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.support import ENDPOINT_ENV, TOKEN_ENV, Bot, Gateway, missing_requirement

MISSING = missing_requirement()

BOT_ID = "bot_self"
BOT_NAME = "HarnessBot"

# No ban risk on the gateway: small gaps keep the suite fast. Liveness is tuned to notice a
# dead service within seconds.
BASE_CONFIG = """\
timezone: Asia/Shanghai
adapter: wechaty
bot: {{id: {bot_id}, name: {bot_name}}}
bot_admins: [contact_admin]
storage: {{url: "{storage_url}"}}
outbox:
  min_gap: 0.05
  jitter: 0
  per_group_per_minute: 1000
  per_minute: 1000
  per_hour: 100000
  moderation_gap: 0.1
  moderation_jitter: 0
  moderation_per_hour: 1000
  backoff_initial: 0.5
  backoff_max: 1
  breaker_cooldown: 1
dispatch: {{stale_after_seconds: 30}}
wechaty:
  heartbeat_interval: 1
  liveness_timeout: 3
  rpc_timeout: 5
  connect_timeout: 3
  send_wait: 15
  reconnect: {{initial_delay: 0.2, max_delay: 1, reset_after: 5}}
on_bot_joined: {{introduce: false}}
notify: {{private_to_group_admins: false, private_to_bot_admins: false}}
"""


def write_config(
    workdir: Path, plugins_yaml: str, *, bot_id: str = BOT_ID, storage_url: str | None = None, extra: str = ""
) -> Path:
    """`extra`: more top-level sections (e.g. `cluster:`), placed before `plugins:`."""
    path = workdir / "bot.yaml"
    url = storage_url or f"sqlite+aiosqlite:///{workdir / 'bot.db'}"
    text = BASE_CONFIG.format(bot_id=bot_id, bot_name=BOT_NAME, storage_url=url) + textwrap.dedent(extra)
    path.write_text(text + "plugins:\n" + textwrap.indent(textwrap.dedent(plugins_yaml), "  "), encoding="utf-8")
    return path


# The world of the shared functional stack: the gateway's built-in rooms plus one room per
# feature, so tests do not see each other's traffic.
CONTACTS = ["alice", "bob", "carol", "dave", "eve", "mallory", "frank", "grace", "heidi", "ivan", "admin"]
WORLD: dict[str, Any] = {
    "self": {"id": BOT_ID, "name": BOT_NAME},
    "contacts": [{"id": f"contact_{c}", "name": c.capitalize()} for c in CONTACTS],
    "rooms": [
        {
            "id": "room_dev@chatroom",
            "topic": "Dev Team",
            "ownerId": "contact_alice",
            "memberIds": [BOT_ID, "contact_alice", "contact_bob", "contact_mallory"],
        },
        {
            "id": "room_fun@chatroom",
            "topic": "Fun Group",
            "ownerId": BOT_ID,
            "memberIds": [BOT_ID, "contact_alice", "contact_carol"],
        },
        {
            "id": "room_checkin@chatroom",
            "topic": "打卡群",
            "ownerId": "contact_alice",
            "memberIds": [BOT_ID, "contact_alice", "contact_bob", "contact_carol"],
        },
        {
            "id": "room_ads@chatroom",
            "topic": "广告测试群",
            "ownerId": BOT_ID,
            "memberIds": [BOT_ID, "contact_alice", "contact_mallory", "contact_ivan"],
        },
        {
            "id": "room_ads_guest@chatroom",
            "topic": "别人的群",
            "ownerId": "contact_alice",
            "memberIds": [BOT_ID, "contact_alice", "contact_mallory"],
        },
        {
            "id": "room_live@chatroom",
            "topic": "直播间",
            "ownerId": "contact_admin",
            "memberIds": [BOT_ID, "contact_admin", "contact_eve"],
        },
        {
            "id": "room_hall@chatroom",
            "topic": "听课群",
            "ownerId": "contact_admin",
            "memberIds": [BOT_ID, "contact_admin", "contact_frank"],
        },
        {"id": "room_join@chatroom", "topic": "新人群", "ownerId": BOT_ID, "memberIds": [BOT_ID, "contact_admin"]},
    ],
}

# Sections of the plugins written alongside this adapter; each is enabled only when its
# plugin is in the tree (the tests of a missing one skip and say which).
FEATURE_PLUGINS = {
    "checkin": """\
checkin:
  only_in: [room_checkin@chatroom]
  replies: {mode: each}  # test_check_in reads the member's own reply
""",
    "antispam": """\
antispam:
  only_in: [room_ads@chatroom, room_ads_guest@chatroom]
""",
    "relay": """\
relay:
  relays:
    - {name: 直播, source: room_live@chatroom, targets: [room_hall@chatroom]}
""",
    "invite": """\
invite:
  rules:
    - {name: 进群, keywords: [进群], groups: [room_join@chatroom]}
""",
}
BASIC_PLUGINS = """\
welcome:
  text: "欢迎 {members} 加入「{group}」！"
  merge_window_seconds: 0
  only_in: [room_dev@chatroom, room_fun@chatroom]
keyword_reply:
  rules:
    - {name: ding, keywords: [ding], match: exact, replies: [dong], groups: [room_dev@chatroom]}
    - {name: 问候, keywords: [早上好], match: prefix, replies: ["{member} 早上好"], mention: true,
       groups: [room_dev@chatroom]}
    - {name: 私聊, keywords: [你好], match: exact, private: true, groups: [], replies: ["你好，我是群助手"]}
"""


def plugin_missing(name: str) -> str | None:
    """Why plugin `name` cannot be tested end to end yet, or None."""
    if importlib.util.find_spec(f"plugins.{name}") is None:
        return f"plugins/{name} is not in the tree yet"
    module = importlib.import_module(f"plugins.{name}")
    if getattr(module, "plugin", None) is None:
        return f"plugins/{name} does not expose `plugin` yet"
    return None


class Stack:
    """One gateway and one bot talking to it."""

    def __init__(
        self,
        workdir: Path,
        plugins_yaml: str,
        world: dict[str, Any] | None = None,
        gateway_env: dict[str, str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.token = f"e2e-secret-{secrets.token_hex(8)}"
        self.gateway = Gateway(workdir, self.token, world=world, env=gateway_env)
        self.config = write_config(workdir, plugins_yaml)
        # Endpoint and token from the environment, as docker-compose passes them.
        self.bot = Bot(workdir, self.config, {ENDPOINT_ENV: self.gateway.endpoint, TOKEN_ENV: self.token})

    def start(self) -> Stack:
        self.gateway.start()
        self.bot.start()
        return self

    def close(self) -> None:
        self.bot.stop()
        self.gateway.close()

    def assert_token_never_logged(self) -> None:
        log = self.bot.log()
        assert self.token not in log, "the puppet-service token leaked into the bot's output"
        assert "token<***>" in log  # python-wechaty did try to log it: redacted


@pytest.fixture(scope="session")
def functional_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One gateway + one bot with every feature plugin that exists, shared by the tests of
    welcome, keyword reply, check-in, ad removal, keyword invite and relay."""
    if MISSING:
        pytest.skip(MISSING)
    sections = [BASIC_PLUGINS] + [text for name, text in FEATURE_PLUGINS.items() if plugin_missing(name) is None]
    stack = Stack(tmp_path_factory.mktemp("e2e-functional"), "".join(sections), world=WORLD)
    try:
        yield stack.start()
    finally:
        stack.close()


@pytest.fixture(scope="module")
def stack_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if MISSING:
        pytest.skip(MISSING)
    stacks: list[Stack] = []

    def make(plugins_yaml: str, **kwargs: Any) -> Stack:
        stack = Stack(tmp_path_factory.mktemp("e2e"), plugins_yaml, **kwargs)
        stacks.append(stack)
        return stack.start()

    yield make
    for stack in stacks:
        stack.close()
