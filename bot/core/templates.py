"""Safe reply and welcome templates.

Syntax: ``{name}`` placeholders and ``{{`` / ``}}`` for literal braces, nothing else. Only
whitelisted names are accepted, checked when the config loads; attribute access, indexing,
conversions and format specs are rejected, and rendering is plain string concatenation of
``str(value)``: `str.format` never sees an admin-written string or a user-controlled object.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any

from pydantic import AfterValidator

# "{{", "}}", a "{...}" field (anything but braces inside), or a lone brace.
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_NAME = re.compile(r"[^\W\d]\w*")  # an identifier; CJK names such as {昵称} are fine


class TemplateError(ValueError):
    """A template that cannot be used; the message names the problem and the allowed names."""


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template: immutable, hashable, cheap to render. Parse once, at load."""

    source: str
    # Alternating literal text and placeholder names: (literal, name, literal, name, ..., literal)
    parts: tuple[str, ...]

    @classmethod
    def parse(cls, text: str, allowed: Iterable[str]) -> Template:
        """Parse `text`, accepting only placeholders named in `allowed`. Cached: parsing the
        same text with the same names again returns the same object."""
        if not isinstance(text, str):
            raise TemplateError(f"a template must be text, not {type(text).__name__}")
        return _parse(text, frozenset(allowed))

    @property
    def names(self) -> frozenset[str]:
        """The placeholder names this template uses."""
        return frozenset(self.parts[1::2])

    def render(self, values: Mapping[str, object]) -> str:
        """Substitute ``str(value)`` for each placeholder; a missing or None value renders as
        "". Values are never formatted or introspected beyond ``str()``."""
        parts = self.parts
        if len(parts) == 1:
            return parts[0]
        out = list(parts)
        for i in range(1, len(parts), 2):
            value = values.get(parts[i])
            out[i] = "" if value is None else str(value)
        return "".join(out)

    def __str__(self) -> str:
        return self.source


def _allowed_list(allowed: frozenset[str]) -> str:
    return ", ".join(f"{{{name}}}" for name in sorted(allowed)) if allowed else "none"


def _fail(problem: str, allowed: frozenset[str]) -> TemplateError:
    return TemplateError(f"{problem}; allowed placeholders: {_allowed_list(allowed)}")


@lru_cache(maxsize=4096)
def _parse(text: str, allowed: frozenset[str]) -> Template:
    parts: list[str] = []
    literal: list[str] = []
    pos = 0
    for token in _TOKEN.finditer(text):
        literal.append(text[pos : token.start()])
        pos = token.end()
        lexeme = token.group()
        if lexeme == "{{":
            literal.append("{")
        elif lexeme == "}}":
            literal.append("}")
        elif lexeme == "{":
            at = token.start() + 1
            raise _fail(f"unclosed '{{' at position {at} (write {{{{ for a literal brace)", allowed)
        elif lexeme == "}":
            at = token.start() + 1
            raise _fail(f"'}}' without a matching '{{' at position {at} (write }}}} for a literal brace)", allowed)
        else:
            name = token.group(1)
            if name not in allowed:
                raise _fail(_why_not(name, allowed), allowed)
            parts.append("".join(literal))
            parts.append(name)
            literal = []
    literal.append(text[pos:])
    parts.append("".join(literal))
    return Template(text, tuple(parts))


def _why_not(name: str, allowed: frozenset[str]) -> str:
    shown = "{" + name + "}"
    if not name.strip():
        return f"empty placeholder {shown}"
    if name.strip() in allowed:
        return f"placeholder {shown} has spaces inside the braces"
    for mark, what in (
        ("!", "conversions such as !r are"),
        (":", "format specs such as :>10 are"),
        (".", "attribute access is"),
        ("[", "indexing is"),
    ):
        if mark in name:
            return f"placeholder {shown}: {what} not allowed"
    if not _NAME.fullmatch(name):
        return f"placeholder {shown} is not a name"
    close = difflib.get_close_matches(name, sorted(allowed), n=1)
    hint = f" (did you mean {{{close[0]}}}?)" if close else ""
    return f"unknown placeholder {shown}{hint}"


def placeholders(*allowed: str) -> AfterValidator:
    """The check that makes a `str` config field a template using only `allowed` placeholders::

        Text = Annotated[str, placeholders("members", "group")]

        class WelcomeConfig(PluginConfig):
            text: Text = "欢迎 {members}"

    The field keeps the plain string (so configs dump back unchanged); it is checked when the
    config loads, so the error names the field, and the parse is cached for `Template.parse`.
    Type checkers see a `str`."""
    names = frozenset(allowed)

    def check(text: str) -> str:
        _parse(text, names)
        return text

    return AfterValidator(check)


def template_type(*allowed: str) -> Any:
    """`Annotated[str, placeholders(*allowed)]` built at run time, for code that makes field
    types dynamically. In an annotation write the `Annotated` form: a type checker cannot read
    a type returned by a function."""
    return Annotated[str, placeholders(*allowed)]
