"""群活互动: group games and activities — 抽奖 (lottery), 投票 (poll), 答题 (quiz from a YAML
question bank), 猜数字 (guess the number) and 掷骰子 (dice).

Games are per group and started by group admins; their state lives in the database
(tables `games_*`) and survives restarts. Points go to the shared ledger as `game:<name>`.
The commands and their syntax are in README.md (群活互动).
"""

from __future__ import annotations

# Importing the game modules registers their commands on the declaration, in this order
# (the order 帮助 lists them in); `state` adds the start-up factory and the listener.
from plugins.games import lottery, poll, quiz, fun, state  # noqa: F401  # isort: skip
from plugins.games.base import plugin

__all__ = ["plugin"]
