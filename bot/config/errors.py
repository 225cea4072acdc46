"""Configuration errors that always name the file, the line and the key path."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    file: str
    line: int | None
    path: str
    problem: str
    # A warning is shown (check-config, the start-up log) but does not stop the config loading.
    warning: bool = False

    def __str__(self) -> str:
        line = self.line if self.line is not None else 0
        kind = "warning: " if self.warning else ""
        return f"{self.file}:{line}: {self.path or '<root>'}: {kind}{self.problem}"

    def as_warning(self) -> ConfigIssue:
        return ConfigIssue(self.file, self.line, self.path, self.problem, warning=True)


class ConfigError(Exception):
    """One or more problems in a configuration file; `str()` is one line per problem."""

    def __init__(self, issues: Sequence[ConfigIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


def format_path(loc: Iterable[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


class LineMap:
    """Maps key paths (tuples of keys and list indexes) to 1-based source lines."""

    def __init__(self, file: str | Path, lines: Mapping[Loc, int]) -> None:
        self.file = str(file)
        self._lines = dict(lines)

    def line_of(self, loc: Loc) -> int | None:
        # Fall back to the closest ancestor that has a line (a missing key is reported
        # on its parent mapping's line).
        loc = tuple(loc)
        while loc:
            if loc in self._lines:
                return self._lines[loc]
            loc = loc[:-1]
        return self._lines.get((), 1)

    def top_level_keys(self) -> list[str]:
        """The file's top-level keys, in the order they are written."""
        keys = [(line, loc[0]) for loc, line in self._lines.items() if len(loc) == 1 and isinstance(loc[0], str)]
        return [key for _, key in sorted(keys)]

    def issue(self, loc: Loc, problem: str) -> ConfigIssue:
        return ConfigIssue(self.file, self.line_of(loc), format_path(loc), problem)

    def from_validation(self, err: ValidationError, prefix: Loc = ()) -> list[ConfigIssue]:
        issues = []
        for e in err.errors(include_url=False):
            loc = prefix + tuple(p for p in e["loc"] if not _is_union_tag(p))
            issues.append(self.issue(loc, _problem_text(e)))
        return issues


def _is_union_tag(part: object) -> bool:
    # pydantic puts tags such as "function-after[...]" or model names into locs of union members.
    return isinstance(part, str) and ("[" in part or part[:1].isupper())


# Keys whose values are credentials: a problem report never echoes them (tokens, webhook secrets).
_SECRET_KEYS = frozenset({"token", "secret", "password", "passwd", "api_key"})


def _is_secret(loc: object) -> bool:
    names = [p for p in loc if isinstance(p, str)] if isinstance(loc, (list, tuple)) else []
    return bool(names) and (names[-1].lower() in _SECRET_KEYS or names[-1].lower().endswith(("_token", "_secret")))


def _problem_text(e: Mapping[str, object]) -> str:
    kind = e.get("type")
    msg = str(e.get("msg", "invalid"))
    if kind == "extra_forbidden":
        return "unknown key (check the spelling)"
    if kind == "missing":
        return "required key is missing"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if "input" in e and _is_secret(e.get("loc", ())):
        return f"{msg} (value hidden: it is a secret)"
    if "input" in e and kind not in ("model_type", "dict_type") and repr(e["input"]) not in msg:
        shown = repr(e["input"])
        if len(shown) > 60:
            shown = shown[:57] + "..."
        return f"{msg} (got {shown})"
    return msg
