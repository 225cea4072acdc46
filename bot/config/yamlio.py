"""YAML loading that keeps the source line of every key, for errors that point at the line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bot.config.errors import ConfigError, ConfigIssue, LineMap, Loc

# Safe loader only: config files are data, never code.
_Loader = yaml.SafeLoader


def load_yaml(path: str | Path) -> tuple[Any, LineMap]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigIssue(str(path), None, "", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigIssue(str(path), None, "", f"cannot read: {exc}")]) from None
    return parse_yaml(text, str(path))


def parse_yaml(text: str, filename: str = "<string>") -> tuple[Any, LineMap]:
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([ConfigIssue(filename, line, "", f"invalid YAML: {problem}")]) from None
    lines: dict[Loc, int] = {}
    if node is None:
        return {}, LineMap(filename, {(): 1})
    try:
        data = _construct(node, (), lines)
    except _DuplicateKey as dup:
        raise ConfigError([ConfigIssue(filename, dup.line, dup.path, "duplicate key")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigIssue(filename, None, "", f"invalid YAML: {exc}")]) from None
    return data, LineMap(filename, lines)


class _DuplicateKey(Exception):
    def __init__(self, line: int, path: str) -> None:
        self.line, self.path = line, path


def _construct(node: yaml.Node, loc: Loc, lines: dict[Loc, int]) -> Any:
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        loader = _Loader("")
        loader.flatten_mapping(node)  # resolve YAML merge keys (<<)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                key = str(key)
            sub = (*loc, str(key) if not isinstance(key, str) else key)
            if key in out:
                from bot.config.errors import format_path

                raise _DuplicateKey(key_node.start_mark.line + 1, format_path(sub))
            lines[sub] = key_node.start_mark.line + 1
            out[key] = _construct(value_node, sub, lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, child in enumerate(node.value):
            sub = (*loc, i)
            lines[sub] = child.start_mark.line + 1
            items.append(_construct(child, sub, lines))
        return items
    loader = _Loader("")
    return loader.construct_object(node, deep=True)
