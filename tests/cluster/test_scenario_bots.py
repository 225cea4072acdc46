"""The scenario file's `bots:` list and the account steps: validated with pydantic, errors
naming the file and line; one-bot scenarios are unchanged (no database needed here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.adapters.simulator import ScenarioError, Simulation, load_scenario
from bot.config.errors import ConfigError
from tests.cluster.simkit import write_cluster_config

HEAD = """clock: "2026-12-01T08:00:00+08:00"
groups:
  - {id: g1, members: [alice]}
  - {id: g2, members: [alice]}
"""


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "scenario.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_scenario(path)
    return [str(issue) for issue in caught.value.issues]


@pytest.mark.parametrize(
    ("bots", "expected"),
    [
        ("bots:\n  - {id: a, groupz: [g1]}\n", "scenario.yaml:6: bots[0].groupz: unknown key"),
        ("bots:\n  - {id: a, groups: [g9]}\n", "scenario.yaml:5: bots: bot a: unknown group 'g9'"),
        ("bots:\n  - {id: a}\n  - {id: a}\n", "scenario.yaml:5: bots: bot a is listed twice"),
        ("bots:\n  - {name: x}\n", "scenario.yaml:6: bots[0].id: required key is missing"),
        ("bot: {id: a}\nbots:\n  - {id: b}\n", "give either bot (one account) or bots (several), not both"),
    ],
)
def test_a_bad_bots_list_names_the_line(tmp_path: Path, bots: str, expected: str) -> None:
    found = problems(tmp_path, HEAD + bots)
    assert any(expected in p for p in found), found


def test_accounts_default_to_every_group_and_one_bot_is_still_the_bot(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(HEAD + "bots:\n  - {id: a, name: 甲}\n  - {id: b, groups: [g2]}\n", encoding="utf-8")
    scenario, _ = load_scenario(path)
    assert [(a.id, a.name, a.groups) for a in scenario.accounts] == [("a", "甲", None), ("b", "b", ["g2"])]
    path.write_text(HEAD, encoding="utf-8")
    one, _ = load_scenario(path)
    assert [(a.id, a.name) for a in one.accounts] == [("wxid_bot", "小助手")]


async def test_several_bots_need_the_cluster_in_the_config(tmp_path: Path) -> None:
    from bot.app import load_everything

    path = tmp_path / "two.yaml"
    path.write_text(HEAD + "bots:\n  - {id: a}\n  - {id: b}\n", encoding="utf-8")
    scenario, lines = load_scenario(path)
    loaded = load_everything(write_cluster_config(tmp_path, None, ["a", "b"]))
    with pytest.raises(ScenarioError, match=r"several bots need cluster\.enabled"):
        await Simulation(scenario, lines, loaded).start()


async def test_account_steps_are_checked_with_the_step_number(tmp_path: Path) -> None:
    from bot.app import load_everything

    path = tmp_path / "one.yaml"
    path.write_text(
        HEAD + "steps:\n  - {stop: nobody}\n  - {account: wxid_bot, state: asleep}\n  - {stop: wxid_bot, when: 3s}\n",
        encoding="utf-8",
    )
    scenario, lines = load_scenario(path)
    sim = Simulation(scenario, lines, load_everything(write_cluster_config(tmp_path, None, [])))
    await sim.start()
    try:
        with pytest.raises(ScenarioError, match=r"one.yaml:6: step 1: unknown bot 'nobody'"):
            await sim.step(scenario.steps[0], 1)
        with pytest.raises(ScenarioError, match=r"one.yaml:7: step 2: state must be one of ok, rate_limited"):
            await sim.step(scenario.steps[1], 2)
        with pytest.raises(ScenarioError, match=r"step 3: unknown key\(s\) \['when'\] in a stop step"):
            await sim.step(scenario.steps[2], 3)
    finally:
        await sim.close()


async def test_one_bot_can_be_stopped_and_resumed(tmp_path: Path) -> None:
    """A single account too: stopped, it hears nothing; resumed, it answers again."""
    from bot.app import load_everything

    path = tmp_path / "one.yaml"
    path.write_text(HEAD, encoding="utf-8")
    scenario, lines = load_scenario(path)
    sim = Simulation(scenario, lines, load_everything(write_cluster_config(tmp_path, None, [])))
    await sim.start()
    try:
        question = {"group": "g1", "from": "alice", "text": "怎么联系群主？"}
        await sim.step({"stop": "wxid_bot"})
        await sim.step(question)
        assert sim.actions == []
        await sim.step({"resume": "wxid_bot"})
        await sim.step(question)
        assert [a.action for a in sim.actions] == ["say"] and sim.actions[0].account is None
    finally:
        await sim.close()
