"""The web console against the real pipeline: the simulator's world and virtual clock, a
fresh SQLite database, and the FastAPI app on the same event loop (httpx's ASGI transport)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the web extra is not installed (pip install 'qunbot[web]')")

import httpx

from bot.web.server import create_app
from tests.harness import Chat, chat, write_config

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
LINK = re.compile(r"http://testserver(/login/link/\S+)")

WORLD: dict[str, Any] = {
    "contacts": [
        {"id": "owner1", "name": "群主"},
        {"id": "alice", "name": "Alice"},
        {"id": "bob", "name": "Bob"},
        {"id": "boss", "name": "老板"},
        {"id": "spammer", "name": "小美"},
    ],
    "groups": [
        {
            "id": "g1",
            "topic": "宝妈交流群",
            "owner": "owner1",
            "admins": ["alice"],
            "members": ["owner1", "alice", "bob", "spammer"],
        },
        {"id": "g2", "topic": "读书群", "owner": "owner1", "admins": [], "members": ["owner1", "bob"]},
        {"id": "g3", "topic": "<script>alert('x')</script>", "owner": "owner1", "members": ["owner1", "bob"]},
    ],
}


def web_config(tmp_path: Path, extra: str = "") -> Path:
    return write_config(
        tmp_path,
        f"""
bot_admins: [boss]
web:
  public_url: http://testserver
plugins:
  broadcast: {{}}
  antispam:
    teaching: {{model_dir: "{tmp_path / "models"}"}}
{extra}""",
    )


@dataclass
class Web:
    bot: Chat
    client: httpx.AsyncClient

    @property
    def app(self) -> Any:
        return self.bot.sim.app

    async def link_for(self, user: str) -> str:
        """The path of the one-time link the bot sends `user` for `后台`."""
        await self.bot.private(user, "后台")
        reply = self.bot.assert_private(user, contains="管理后台登录链接")
        found = LINK.search(reply.text or "")
        assert found, reply.text
        return found.group(1)

    async def csrf(self, path: str = "/") -> str:
        page = await self.client.get(path)
        found = CSRF.search(page.text)
        assert found, f"no CSRF token on {path}: {page.status_code} {page.text[:200]}"
        return found.group(1)

    async def login(self, user: str = "boss") -> None:
        link = await self.link_for(user)
        token = await self.csrf(link)
        done = await self.client.post(link, data={"csrf": token})
        assert done.status_code == 303 and done.headers["location"] == "/", done.text

    async def post(self, path: str, data: dict[str, Any] | None = None, page: str = "/") -> httpx.Response:
        return await self.client.post(path, data={"csrf": await self.csrf(page), **(data or {})})

    async def flush(self) -> None:
        await self.app.recorder.flush()


@pytest.fixture
async def web(tmp_path: Path) -> AsyncIterator[Web]:
    async with chat(web_config(tmp_path), WORLD) as bot:
        app = create_app(bot.sim.app)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Web(bot, client)
