"""How `--help` reads, the same for every qunbot command.

- Help texts are Markdown: a docstring's single line breaks are only where the source wraps,
  so they join into the paragraph (typer's default "rich" mode kept them, and the terminal's
  own wrapping then broke sentences mid-line: "one verdict per / output line").
- A flag (`--json`, `--verbose`, `--help`) takes no value, so it shows no type: typer ≥ 0.26
  labels every option with its type, flags included (`--help <bool>`).
"""

from __future__ import annotations

from typing import Any, Literal

import typer

MARKUP: Literal["markdown"] = "markdown"


def new_app(**kwargs: Any) -> typer.Typer:
    """A typer app with qunbot's help conventions."""
    _flags_show_no_type()
    return typer.Typer(rich_markup_mode=MARKUP, **kwargs)


def _flags_show_no_type() -> None:
    from typer import core

    option = getattr(core, "TyperOption", None)
    original = getattr(option, "display_type_rich", None)
    if option is None or original is None or getattr(original, "_qunbot", False):
        return  # an older typer shows no type for flags anyway

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        if getattr(self, "is_flag", False) or getattr(self, "count", False):
            return None
        return original(self, ctx)

    display_type_rich._qunbot = True  # type: ignore[attr-defined]  # a mark on the function: patch typer once
    option.display_type_rich = display_type_rich
