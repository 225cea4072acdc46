"""Which account should be on duty in a group, by send budget and health (issue 17).

Every account publishes its standing with each lease renewal: how many messages it may still
send this hour (its outbox budget, `outbox.per_hour`, minus what it sent in the last hour and
what waits in its queue) and whether it is in trouble (bot.cluster.health). From that, every
account computes the same preferred account per group, with weighted rendezvous hashing: each
(group, account) pair gets a pseudo-random score, scaled by the account's weight, and the
highest score wins. Groups spread over the accounts in proportion to their weights, and when
one account's weight changes only the groups it wins or loses move.

- The weight is the budget left in quarters (1-4, and 1/4 when nothing is left), so small
  changes move nothing. An account in trouble has no weight while any account in the group
  has one: a lone account keeps serving even in trouble.
- Duties are sticky: the account on duty hands a group over only when the preferred one is
  at least `HAND_OVER_LEVELS` quarters richer, or when it is in trouble itself (see
  `should_hand_over`). So three accounts with full budgets keep whoever took a group first,
  and a large broadcast that empties one account's budget moves most of that account's
  groups (and their unsent deliveries) to the accounts with budget left, once.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

# Quarters of the hourly budget: a coarse level, so that a few sends move no group.
LEVELS = 4
# The account on duty keeps a group unless the preferred one is this many levels richer.
HAND_OVER_LEVELS = 2


@dataclass(frozen=True, slots=True)
class Standing:
    """What an account publishes about itself with each renewal."""

    budget_left: int | None = None  # messages it may still send this hour (None: unknown)
    budget: int | None = None  # its hourly budget (outbox.per_hour)
    trouble: str | None = None  # why it is in trouble, or None

    @property
    def level(self) -> int:
        """0-4: the budget left in quarters, rounded up (unknown counts as full)."""
        if self.budget_left is None or not self.budget:
            return LEVELS
        left = min(max(self.budget_left, 0), self.budget)
        return math.ceil(LEVELS * left / self.budget)

    @property
    def weight(self) -> float:
        if self.trouble is not None:
            return 0.0
        return float(self.level) or 0.25


def _unit(group_id: str, account_id: str) -> float:
    """A stable pseudo-random number in (0, 1) for the pair: the same on every machine."""
    digest = hashlib.blake2b(f"{group_id}\x00{account_id}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") + 1) / (2**64 + 2)


def preferred(group_id: str, candidates: dict[str, Standing], pinned: str | None = None) -> str | None:
    """The account that should be on duty in `group_id`, among the running accounts in it."""
    if not candidates:
        return None
    if pinned is not None and pinned in candidates:
        return pinned
    weights = {account: s.weight for account, s in candidates.items()}
    if not any(weights.values()):  # everyone is in trouble: all equal
        weights = dict.fromkeys(candidates, 1.0)
    # Weighted rendezvous: score = -w / ln(u); the highest wins (ties by id, for determinism).
    return max(
        (account for account, w in weights.items() if w > 0),
        key=lambda account: (-weights[account] / math.log(_unit(group_id, account)), account),
    )


def should_hand_over(me: str, group_id: str, candidates: dict[str, Standing], pinned: str | None = None) -> bool:
    """Should `me`, on duty in `group_id`, hand it over now? Only to a clearly better account."""
    best = preferred(group_id, candidates, pinned)
    if best is None or best == me:
        return False
    if pinned is not None and best == pinned:
        return True
    mine, theirs = candidates.get(me, Standing()), candidates[best]
    if mine.trouble is not None:
        return theirs.trouble is None
    return theirs.level - mine.level >= HAND_OVER_LEVELS
