"""The layering rules of DESIGN §1, enforced: a failing test names the offending import."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLATFORM_LIBRARIES = {"wechaty", "wechaty_puppet", "wechaty_puppet_service", "grpclib", "grpc"}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def offenders(folder: str, forbidden: callable) -> list[str]:  # type: ignore[valid-type]
    out = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for name in imports_of(path):
            if forbidden(name):
                out.append(f"{path.relative_to(ROOT)} imports {name}")
    return out


def test_core_imports_no_adapter_no_plugin_no_platform_library() -> None:
    def bad(name: str) -> bool:
        top = name.split(".")[0]
        return name.startswith("bot.adapters") or top == "plugins" or top in PLATFORM_LIBRARIES

    assert offenders("bot/core", bad) == []


def test_cluster_is_core_level() -> None:
    # bot/cluster coordinates accounts for the core: like the core, no adapter, plugin or
    # platform library; and the core reaches it only through the `DutyGate` hook, never by import.
    def bad(name: str) -> bool:
        top = name.split(".")[0]
        return name.startswith("bot.adapters") or top == "plugins" or top in PLATFORM_LIBRARIES

    assert offenders("bot/cluster", bad) == []
    assert offenders("bot/core", lambda name: name.startswith("bot.cluster")) == []


def test_plugins_import_no_adapter_and_no_platform_library() -> None:
    def bad(name: str) -> bool:
        return name.startswith("bot.adapters") or name.split(".")[0] in PLATFORM_LIBRARIES

    assert offenders("plugins", bad) == []


def test_storage_imports_no_adapter_and_no_plugin() -> None:
    def bad(name: str) -> bool:
        return name.startswith("bot.adapters") or name.split(".")[0] == "plugins"

    assert offenders("bot/storage", bad) == []


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    # Guard against a checker that passes because it reads nothing.
    sample = tmp_path / "x.py"
    sample.write_text("from bot.adapters.world import World\nimport wechaty\n", encoding="utf-8")
    assert imports_of(sample) == {"bot.adapters.world", "wechaty"}


# A file this long has several jobs or a stated reason not to be split (issue 18).
LONG_FILE_LINES = 550
LONG_FILE_REASON = ("# Over 500 lines:", "// Over 500 lines:")


def test_long_files_say_why_at_the_top() -> None:
    unexplained = []
    for pattern in ("*.py", "*.mjs"):
        for path in sorted(ROOT.rglob(pattern)):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith((".", "build/")) or "/node_modules/" in rel or "/." in rel:
                continue
            lines = path.read_text(encoding="utf-8").splitlines()
            if len(lines) <= LONG_FILE_LINES:
                continue
            if not any(line.startswith(LONG_FILE_REASON) for line in lines[:2]):
                unexplained.append(f"{rel}: {len(lines)} lines")
    assert unexplained == [], "split these along their responsibilities, or say why not on their first line"
