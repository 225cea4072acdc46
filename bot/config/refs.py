"""Group references in plugin settings: the groups and group sets that broadcasts, invites and
relays name, checked against the config's `groups` and `group_sets` when the config loads.

A plugin marks a field that holds group ids or set names with `GroupSelectors` (a list) or
`Annotated[str | None, GroupRefs()]` (one); the check walks the validated model and needs no
per-plugin code:

- `set:NAME` (or a bare NAME that is a set) naming no set is an error: nothing would be sent;
- a plain group id that is in neither `groups` nor any set is a warning: the id may be a typo,
  or a group the config simply does not list (when the config lists no groups at all, there is
  nothing to compare with and nothing is said).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel

from bot.config.errors import ConfigIssue, LineMap, Loc
from bot.config.models import BotConfig


@dataclass(frozen=True, slots=True)
class GroupRefs:
    """Field marker: the value is group ids and/or `set:name` selectors; `keywords` are words
    the field also accepts that are neither (broadcast's `all`)."""

    keywords: tuple[str, ...] = ()


GroupSelectors = Annotated[list[str], GroupRefs()]


def group_references(model: BaseModel, loc: Loc) -> Iterator[tuple[Loc, str, GroupRefs]]:
    """Every (key path, selector, marker) in a validated model, at any depth."""
    for name, field in type(model).model_fields.items():
        value = getattr(model, name, None)
        sub = (*loc, field.alias or name)
        marker = next((m for m in field.metadata if isinstance(m, GroupRefs)), None)
        if marker is not None:
            if isinstance(value, str):
                yield sub, value, marker
            elif isinstance(value, list):
                for i, item in enumerate(value):
                    if isinstance(item, str):
                        yield (*sub, i), item, marker
            continue
        yield from _nested(value, sub)


def _nested(value: Any, loc: Loc) -> Iterator[tuple[Loc, str, GroupRefs]]:
    if isinstance(value, BaseModel):
        yield from group_references(value, loc)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _nested(item, (*loc, i))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _nested(item, (*loc, str(key)))


def check_group_references(
    config: BotConfig, refs: list[tuple[Loc, str, GroupRefs]], lines: LineMap
) -> tuple[list[ConfigIssue], list[ConfigIssue]]:
    """(errors, warnings) for the references found by `group_references`."""
    errors: list[ConfigIssue] = []
    warnings: list[ConfigIssue] = []
    sets = config.group_sets
    known = {entry.id for entry in config.groups} | {gid for members in sets.values() for gid in members}
    set_names = ", ".join(sets) or "none"
    for loc, selector, marker in refs:
        if selector in marker.keywords or selector in sets:
            continue
        if selector.startswith("set:"):
            if selector[4:] not in sets:
                errors.append(lines.issue(loc, f"unknown group set {selector[4:]!r} (sets: {set_names})"))
        elif known and selector not in known:
            warnings.append(
                lines.issue(loc, f"group {selector!r} is not in `groups` or any group set (is the id right?)")
            )
    return errors, warnings
