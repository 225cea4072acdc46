"""Who should be on duty where, by send budget and health (bot.cluster.balance): unit tests."""

from __future__ import annotations

from collections import Counter

from bot.cluster.balance import Standing, preferred, should_hand_over

GROUPS = [f"g{n:03d}" for n in range(300)]
FULL = Standing(budget_left=600, budget=600)


def spread(candidates: dict[str, Standing]) -> Counter[str | None]:
    return Counter(preferred(g, candidates) for g in GROUPS)


def test_equal_budgets_spread_groups_evenly_and_the_same_way_everywhere() -> None:
    counts = spread({"a": FULL, "b": FULL, "c": FULL})
    assert all(80 <= counts[x] <= 120 for x in "abc"), counts
    # Deterministic: every process computes the same answer, whatever order it lists them in.
    assert [preferred(g, {"c": FULL, "b": FULL, "a": FULL}) for g in GROUPS] == [
        preferred(g, {"a": FULL, "b": FULL, "c": FULL}) for g in GROUPS
    ]


def test_budget_left_weighs_the_choice() -> None:
    low = Standing(budget_left=100, budget=600)  # level 1 of 4
    counts = spread({"a": low, "b": FULL, "c": FULL})
    assert counts["a"] < 60 and counts["b"] > 100 and counts["c"] > 100, counts


def test_an_account_in_trouble_is_chosen_only_when_everyone_is() -> None:
    sick = Standing(budget_left=600, budget=600, trouble="banned")
    assert spread({"a": sick, "b": FULL})["a"] == 0
    assert spread({"a": sick})["a"] == len(GROUPS)  # alone, it still serves
    assert set(spread({"a": sick, "b": sick})) == {"a", "b"}


def test_a_pinned_account_wins_where_it_runs() -> None:
    assert preferred("g1", {"a": FULL, "p": Standing(budget_left=0, budget=600)}, pinned="p") == "p"
    assert preferred("g1", {"a": FULL}, pinned="p") == "a"
    assert preferred("g1", {}) is None


def test_the_holder_hands_over_only_to_a_clearly_better_account() -> None:
    # Same level: sticky, whoever rendezvous prefers.
    group = next(g for g in GROUPS if preferred(g, {"a": FULL, "b": FULL}) == "b")
    assert should_hand_over("a", group, {"a": FULL, "b": FULL}) is False
    one_level_less = Standing(budget_left=400, budget=600)  # level 3
    assert should_hand_over("a", group, {"a": one_level_less, "b": FULL}) is False
    two_levels_less = Standing(budget_left=200, budget=600)  # level 2
    assert should_hand_over("a", group, {"a": two_levels_less, "b": FULL}) is True
    # In trouble: to any healthy account; never to another one in trouble.
    sick = Standing(trouble="rate limited")
    assert should_hand_over("a", group, {"a": sick, "b": FULL}) is True
    assert should_hand_over("a", group, {"a": sick, "b": sick}) is False


def test_levels_are_quarters_of_the_budget() -> None:
    assert [Standing(budget_left=n, budget=600).level for n in (0, 1, 150, 151, 450, 600, 900)] == [0, 1, 1, 2, 3, 4, 4]
    assert Standing().level == 4  # unknown counts as full
    assert Standing(budget_left=0, budget=600).weight == 0.25
