"""YAML loading that keeps the source line of every key, for errors that point at the line.

Every YAML file qunbot reads (bot.yaml, simulator scenarios, question banks) goes through
`load_yaml`, so all of them read the same way:

- YAML 1.2 (ruamel.yaml): only true/false are booleans, so `keywords: [no, on]` stays words and
  `replies: [12:30]` stays a time (YAML 1.1, PyYAML's, read them as False/True and 750);
- a key written twice in one mapping is an error naming both lines, never a silent last-wins;
- safe loading only: config files are data, never code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.config.errors import ConfigError, ConfigIssue, LineMap, Loc, format_path

_MERGE_TAG = "tag:yaml.org,2002:merge"


def _yaml() -> YAML:
    # The pure-Python safe loader: its resolver follows YAML 1.2 unless a file says `%YAML 1.1`.
    return YAML(typ="safe", pure=True)


def load_yaml(path: str | Path) -> tuple[Any, LineMap]:
    """The file's data and the line of every key path; ConfigError listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigIssue(str(path), None, "", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigIssue(str(path), None, "", f"cannot read: {exc}")]) from None
    return parse_yaml(text, str(path))


def parse_yaml(text: str, filename: str = "<string>") -> tuple[Any, LineMap]:
    yaml = _yaml()
    try:
        node = yaml.compose(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or str(exc)
        raise ConfigError([ConfigIssue(filename, line, "", f"invalid YAML: {problem}")]) from None
    except YAMLError as exc:
        raise ConfigError([ConfigIssue(filename, None, "", f"invalid YAML: {exc}")]) from None
    if node is None:
        return {}, LineMap(filename, {(): 1})
    reader = _Reader(yaml, filename)
    try:
        data = reader.construct(node, ())
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigError([ConfigIssue(filename, line, "", f"invalid YAML: {exc.problem or exc}")]) from None
    except (YAMLError, ValueError) as exc:
        raise ConfigError([ConfigIssue(filename, None, "", f"invalid YAML: {exc}")]) from None
    if reader.issues:
        raise ConfigError(reader.issues)
    return data, LineMap(filename, reader.lines)


class _Reader:
    """Builds plain data from the node tree, noting each key's line and every duplicate key."""

    def __init__(self, yaml: YAML, filename: str) -> None:
        self._constructor = yaml.constructor
        self._file = filename
        self.lines: dict[Loc, int] = {}
        self.issues: list[ConfigIssue] = []
        # Mappings already checked and merged: an alias (`*name`) visits the same node again, and
        # after its merge keys were resolved it holds a merged key next to its override.
        self._flattened: set[int] = set()

    def construct(self, node: Node, loc: Loc) -> Any:
        self.lines.setdefault(loc, node.start_mark.line + 1)
        if isinstance(node, MappingNode):
            return self._mapping(node, loc)
        if isinstance(node, SequenceNode):
            items = []
            for i, child in enumerate(node.value):
                sub = (*loc, i)
                self.lines[sub] = child.start_mark.line + 1
                items.append(self.construct(child, sub))
            return items
        return self._scalar(node)

    def _scalar(self, node: Node) -> Any:
        return self._constructor.construct_object(node, deep=True)

    def _mapping(self, node: MappingNode, loc: Loc) -> dict[Any, Any]:
        if id(node) not in self._flattened:
            self._flattened.add(id(node))
            self._check_duplicates(node, loc)
            self._constructor.flatten_mapping(node)  # resolve merge keys (<<) into plain pairs
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = self._key(key_node)
            sub = (*loc, key)
            self.lines[sub] = key_node.start_mark.line + 1
            out[key] = self.construct(value_node, sub)
        return out

    def _check_duplicates(self, node: MappingNode, loc: Loc) -> None:
        # Duplicates are looked for among the keys written in this mapping; keys brought in by a
        # merge (`<<: *defaults`) are meant to be overridden by the ones written beside it.
        first_line: dict[Any, int] = {}
        for key_node, _value in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self._key(key_node)
            line = key_node.start_mark.line + 1
            if key in first_line:
                self.issues.append(
                    ConfigIssue(
                        self._file,
                        line,
                        format_path((*loc, key)),
                        f"duplicate key: also written on line {first_line[key]} (keep one of them)",
                    )
                )
            else:
                first_line[key] = line

    def _key(self, node: Node) -> str:
        # Keys are names: `12: x` or `no: x` is the key "12" / "no" wherever it is written.
        if isinstance(node, ScalarNode):
            return str(node.value)
        return str(self._scalar(node))
