"""Helpers that read like a conversation, over the real pipeline (the simulator's world,
virtual clock and a fresh SQLite database)::

    async with chat(CONFIG) as bot:
        await bot.say("g1", "alice", "签到")
        bot.assert_said("g1", contains="第1位")
"""

from __future__ import annotations

import shutil
import tempfile
import textwrap
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bot.adapters.simulator import Scenario, Simulation
from bot.app import LoadedConfig, load_everything
from bot.config.errors import LineMap
from bot.core.platform import ActionRecord
from bot.storage.db import Database
from bot.storage.settings import StorageSettings

_template_db: Path | None = None


async def fresh_sqlite_url() -> str:
    """A fresh, already-migrated SQLite database: a copy of one migrated once per test run
    (migrating every test's database from scratch dominated the suite's run time)."""
    global _template_db
    if _template_db is None:
        folder = Path(tempfile.mkdtemp(prefix="qunbot-template-"))
        path = folder / "template.db"
        db = await Database.open(StorageSettings(url=f"sqlite+aiosqlite:///{path}"))
        await db.close()
        _template_db = path
    target = _template_db.parent / f"{uuid.uuid4().hex}.db"
    shutil.copyfile(_template_db, target)
    return f"sqlite+aiosqlite:///{target}"


DEFAULT_WORLD: dict[str, Any] = {
    "clock": "2026-12-01T08:00:00+08:00",
    "bot": {"id": "wxid_bot", "name": "小助手"},
    "contacts": [
        {"id": "owner1", "name": "群主"},
        {"id": "alice", "name": "Alice"},
        {"id": "bob", "name": "Bob"},
        {"id": "carol", "name": "Carol"},
        {"id": "dave", "name": "Dave"},
    ],
    "groups": [
        {"id": "g1", "topic": "宝妈交流群", "owner": "owner1", "admins": [], "members": ["owner1", "alice", "bob"]},
        {"id": "g2", "topic": "读书群", "owner": "owner1", "admins": ["alice"], "members": ["owner1", "alice"]},
    ],
}


def write_config(tmp_path: Path, yaml_text: str, name: str = "bot.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(yaml_text), encoding="utf-8")
    return path


class Chat:
    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self._mark = 0

    @property
    def actions(self) -> list[ActionRecord]:
        return self.sim.actions

    def new_actions(self) -> list[ActionRecord]:
        """Actions since the last call (a way to look at one exchange at a time)."""
        out = self.sim.actions[self._mark :]
        self._mark = len(self.sim.actions)
        return out

    async def step(self, **step: Any) -> None:
        await self.sim.step(step)

    async def say(self, group: str, sender: str, text: str, **extra: Any) -> None:
        await self.sim.step({"group": group, "from": sender, "text": text, **extra})

    async def private(self, sender: str, text: str) -> None:
        await self.sim.step({"private": sender, "text": text})

    async def join(self, group: str, *members: str, inviter: str | None = None) -> None:
        step: dict[str, Any] = {"join": group, "members": list(members)}
        if inviter:
            step["inviter"] = inviter
        await self.sim.step(step)

    async def leave(self, group: str, *members: str) -> None:
        await self.sim.step({"leave": group, "members": list(members)})

    async def wait(self, duration: str) -> None:
        await self.sim.step({"wait": duration})

    async def finish(self) -> None:
        await self.sim.finish()

    # --- assertions -------------------------------------------------------------------
    def said(self, group: str | None = None, contains: str = "") -> list[ActionRecord]:
        return [
            a
            for a in self.sim.actions
            if a.action == "say" and (group is None or a.group == group) and contains in (a.text or "")
        ]

    def assert_said(self, group: str, contains: str = "", count: int | None = None) -> ActionRecord:
        hits = self.said(group, contains)
        assert hits, f"nothing said in {group} containing {contains!r}; actions: {self._dump()}"
        if count is not None:
            assert len(hits) == count, f"said {len(hits)} times, expected {count}: {self._dump()}"
        return hits[-1]

    def assert_private(self, to: str, contains: str = "") -> ActionRecord:
        hits = [a for a in self.sim.actions if a.action == "private" and a.to == to and contains in (a.text or "")]
        assert hits, f"no private message to {to} containing {contains!r}; actions: {self._dump()}"
        return hits[-1]

    def assert_kicked(self, group: str, member: str) -> ActionRecord:
        hits = [a for a in self.sim.actions if a.action == "kick" and a.group == group and a.member == member]
        assert hits, f"{member} was not removed from {group}; actions: {self._dump()}"
        return hits[-1]

    def assert_silent(self) -> None:
        new = self.new_actions()
        assert not new, f"expected no actions, got {[a.as_json() for a in new]}"

    def _dump(self) -> list[dict[str, object]]:
        return [a.as_json() for a in self.sim.actions]


@asynccontextmanager
async def chat(
    config: LoadedConfig | Path,
    world: dict[str, Any] | None = None,
    *,
    db_url: str | None = None,
    seed: int = 0,
) -> AsyncIterator[Chat]:
    loaded = config if isinstance(config, LoadedConfig) else load_everything(config)
    scenario = Scenario.model_validate({**DEFAULT_WORLD, **(world or {}), "steps": []})
    db_url = db_url or await fresh_sqlite_url()
    sim = Simulation(scenario, LineMap("<test>", {}), loaded, db_url=db_url, seed=seed)
    await sim.start()
    try:
        yield Chat(sim)
    finally:
        await sim.close()
