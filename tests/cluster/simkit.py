"""Several bot accounts in one simulation (a scenario's `bots:`), on the PostgreSQL of
`QUNBOT_TEST_PG`, with the leases on the virtual clock: what the cluster tests drive."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bot.adapters.simulator import Scenario, Simulation
from bot.app import load_everything
from bot.config.errors import LineMap
from bot.config.yamlio import load_yaml
from bot.core.platform import ActionRecord

REPO = Path(__file__).resolve().parents[2]


def write_cluster_config(tmp_path: Path, url: str | None, bots: list[str], **sections: Any) -> Path:
    """The repository's config/bot.yaml (every plugin, as shipped) on `url`, with the accounts
    as other bots, a quick outbox and the cluster on; `sections` replace top-level keys."""
    data, _lines = load_yaml(REPO / "config" / "bot.yaml")
    data["adapter"] = "console"
    data["other_bots"] = bots
    data["storage"] = {"url": url} if url else {"url": f"sqlite+aiosqlite:///{tmp_path / 'one.db'}"}
    data["outbox"] = {"min_gap": 1, "jitter": 0}
    data["cluster"] = {"enabled": url is not None, "lease_ttl": 30, "safety_margin": 5}
    plugins = data["plugins"]
    plugins["antispam"]["teaching"]["model_dir"] = str(tmp_path / "antispam")
    plugins.pop("broadcast", None)
    data.update(sections)
    path = tmp_path / f"bot-{len(bots)}.yaml"
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")  # JSON is YAML
    return path


@asynccontextmanager
async def simulation(
    config: Path, scenario: dict[str, Any], db_url: str | None, seed: int = 0
) -> AsyncIterator[Simulation]:
    loaded = load_everything(config)
    sim = Simulation(Scenario.model_validate(scenario), LineMap("<test>", {}), loaded, db_url=db_url, seed=seed)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.close()


def on_duty(sim: Simulation, group: str) -> list[str]:
    return [a.id for a in sim.accounts if a.running and a.app.cluster is not None and a.app.cluster.on_duty(group)]


def shape(actions: list[ActionRecord]) -> Counter[tuple[str, str]]:
    """What was done where, without who or the exact (possibly random) text: say/kick/invite
    per group, private messages per recipient."""
    return Counter((a.action, a.group or a.to or "") for a in actions)


def by_account(actions: list[ActionRecord]) -> Counter[str]:
    return Counter(a.account or "" for a in actions)
