"""Plugin loading: find each enabled plugin module, validate its YAML section against the
plugin's own model, and resolve per-group and group-set overrides once, at load.

A plugin section::

    plugins:
      welcome:
        enabled: true            # reserved keys (not part of the plugin's model) ...
        priority: 50
        only_in: [g1, set:moms]  # default: every group
        not_in: [g9]
        overrides:               # later entries win; a key replaces the default's value whole
          - groups: [set:vip]
            text: "..."
        text: "..."              # ... everything else is the plugin's own config
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from bot.config.errors import ConfigError, ConfigIssue, LineMap, Loc
from bot.config.models import BotConfig
from bot.config.refs import check_group_references, group_references
from bot.core.plugin import Plugin, PluginConfig

RESERVED = frozenset({"enabled", "priority", "only_in", "not_in", "overrides"})
PLUGIN_PACKAGE = "plugins"


@dataclass
class PluginSettings:
    plugin: Plugin
    priority: int
    default: PluginConfig
    per_group: dict[str, PluginConfig] = field(default_factory=dict)
    only_in: frozenset[str] | None = None
    not_in: frozenset[str] = frozenset()
    # Groups whose override says `enabled: false` / `true`.
    group_enabled: dict[str, bool] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.plugin.name

    def for_group(self, group_id: str | None) -> PluginConfig:
        if group_id is None:
            return self.default
        return self.per_group.get(group_id, self.default)

    def enabled_in(self, group_id: str) -> bool:
        """Whether config enables the plugin in this group (admin toggles come on top)."""
        explicit = self.group_enabled.get(group_id)
        if explicit is not None:
            return explicit
        if group_id in self.not_in:
            return False
        return self.only_in is None or group_id in self.only_in

    def configs(self) -> list[PluginConfig]:
        """Every distinct resolved config (for compiling matchers once per config)."""
        seen: dict[int, PluginConfig] = {id(self.default): self.default}
        for cfg in self.per_group.values():
            seen.setdefault(id(cfg), cfg)
        return list(seen.values())


def available_plugins() -> list[str]:
    pkg = importlib.import_module(PLUGIN_PACKAGE)
    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_"))


def import_plugin(name: str) -> Plugin:
    module = importlib.import_module(f"{PLUGIN_PACKAGE}.{name}")
    plugin = getattr(module, "plugin", None)
    if not isinstance(plugin, Plugin):
        raise TypeError(f"module {module.__name__} has no `plugin = Plugin(...)` declaration")
    if plugin.name != name:
        raise TypeError(f"module {module.__name__} declares plugin {plugin.name!r}")
    return plugin


def plugin_settings(config: BotConfig, lines: LineMap, name: str) -> PluginSettings | None:
    """One plugin's resolved settings (defaults and per-group overrides), for tools that read
    what a plugin would use without loading the others (`qunbot stats`), switched on or not.
    None when the config has no section for it; a ConfigError for an invalid section."""
    if name not in config.plugins:
        return None
    raw = config.plugins[name] or {}
    loc: Loc = ("plugins", name)
    if not isinstance(raw, dict):
        raise ConfigError([lines.issue(loc, "must be a mapping of settings")])
    settings, problems = _resolve(import_plugin(name), raw, config, lines, loc)
    if problems:
        raise ConfigError(problems)
    return settings


def load_plugins(
    config: BotConfig,
    lines: LineMap,
    builtin: list[Plugin] = (),  # type: ignore[assignment]
    warnings: list[ConfigIssue] | None = None,
) -> list[PluginSettings]:
    """Validate every plugin section, and the groups and group sets each one names; raise one
    ConfigError listing every problem. Warnings (group ids the config does not list) go to
    `warnings` when it is given."""
    issues: list[ConfigIssue] = []
    loaded: list[PluginSettings] = []
    known = available_plugins()
    for plugin in builtin:
        loaded.append(PluginSettings(plugin, plugin.priority, plugin.config()))
    for name, raw in config.plugins.items():
        loc: Loc = ("plugins", name)
        raw = {} if raw is None else raw
        if not isinstance(raw, dict):
            issues.append(lines.issue(loc, "must be a mapping of settings"))
            continue
        enabled = _switch(raw.get("enabled", True))
        if enabled is None:
            issues.append(lines.issue((*loc, "enabled"), "must be true or false"))
            continue
        if not enabled:
            continue
        if name not in known:
            issues.append(lines.issue(loc, f"unknown plugin (available: {', '.join(known)})"))
            continue
        try:
            plugin = import_plugin(name)
        except Exception as exc:  # a broken plugin module is a config-time error, not a crash
            issues.append(lines.issue(loc, f"plugin failed to import: {type(exc).__name__}: {exc}"))
            continue
        settings, problems = _resolve(plugin, raw, config, lines, loc)
        issues.extend(problems)
        if settings is not None:
            errors, doubts = check_group_references(config, list(group_references(settings.default, loc)), lines)
            issues.extend(errors)
            if warnings is not None:
                warnings.extend(issue.as_warning() for issue in doubts)
            loaded.append(settings)
    if issues:
        raise ConfigError(issues)
    return loaded


def _resolve(
    plugin: Plugin, raw: dict[str, Any], config: BotConfig, lines: LineMap, loc: Loc
) -> tuple[PluginSettings | None, list[ConfigIssue]]:
    issues: list[ConfigIssue] = []
    base = {k: v for k, v in raw.items() if k not in RESERVED}

    def validate(data: dict[str, Any], provenance: dict[str, Loc]) -> PluginConfig | None:
        try:
            return plugin.config.model_validate(data)
        except ValidationError as err:
            for e in err.errors(include_url=False):
                key = e["loc"][0] if e["loc"] else None
                prefix = provenance.get(str(key), loc) if key is not None else loc
                sub = ValidationError.from_exception_data(err.title, [e])  # type: ignore[list-item]
                issues.extend(lines.from_validation(sub, prefix[:-1] if key is not None else prefix))
            return None

    default = validate(base, {k: (*loc, k) for k in base})
    priority = raw.get("priority", plugin.priority)
    if not isinstance(priority, int) or isinstance(priority, bool):
        issues.append(lines.issue((*loc, "priority"), "must be an integer"))
        priority = plugin.priority
    only_in = _selectors(raw.get("only_in"), (*loc, "only_in"), config, lines, issues)
    not_in = _selectors(raw.get("not_in"), (*loc, "not_in"), config, lines, issues) or set()
    settings = PluginSettings(
        plugin=plugin,
        priority=priority,
        default=default or plugin.config.model_construct(),
        only_in=frozenset(only_in) if only_in is not None else None,
        not_in=frozenset(not_in),
    )
    overrides = raw.get("overrides") or []
    if not isinstance(overrides, list):
        issues.append(lines.issue((*loc, "overrides"), "must be a list of {groups: [...], ...} entries"))
        overrides = []
    merged_for: dict[str, dict[str, Any]] = {}
    provenance_for: dict[str, dict[str, Loc]] = {}
    for i, entry in enumerate(overrides):
        eloc: Loc = (*loc, "overrides", i)
        if not isinstance(entry, dict):
            issues.append(lines.issue(eloc, "must be a mapping"))
            continue
        targets = _selectors(entry.get("groups"), (*eloc, "groups"), config, lines, issues)
        if not targets:
            issues.append(lines.issue((*eloc, "groups"), "required: the groups or sets this override applies to"))
            continue
        fields = {k: v for k, v in entry.items() if k not in ("groups", "enabled")}
        for gid in targets:
            if "enabled" in entry:
                switch = _switch(entry["enabled"])
                if switch is None:
                    issues.append(lines.issue((*eloc, "enabled"), "must be true or false"))
                else:
                    settings.group_enabled[gid] = switch
            if fields:
                merged_for.setdefault(gid, dict(base)).update(fields)
                prov = provenance_for.setdefault(gid, {k: (*loc, k) for k in base})
                prov.update({k: (*eloc, k) for k in fields})
    # Groups with identical merged settings share one model instance (and compiled matchers).
    cache: dict[str, PluginConfig | None] = {}
    for gid, data in merged_for.items():
        key = repr(sorted(data.items(), key=lambda kv: kv[0]))
        if key not in cache:
            cache[key] = validate(data, provenance_for[gid])
        cfg = cache[key]
        if cfg is not None:
            settings.per_group[gid] = cfg
    return (settings if not issues else None), _dedupe(issues)


_SWITCH = TypeAdapter(bool)


def _switch(value: Any) -> bool | None:
    """A reserved `enabled:` as the plugins' own switches read it: true/false, and the words
    people write for them (yes/no, on/off), which YAML 1.2 leaves as text. None: neither."""
    try:
        return _SWITCH.validate_python(value)
    except ValidationError:
        return None


def _dedupe(issues: list[ConfigIssue]) -> list[ConfigIssue]:
    # An override shared by several groups is validated once per distinct merge, but two
    # merges can still fail on the same default key: report each problem once.
    seen: list[ConfigIssue] = []
    for i in issues:
        if i not in seen:
            seen.append(i)
    return seen


def _selectors(value: Any, loc: Loc, config: BotConfig, lines: LineMap, issues: list[ConfigIssue]) -> set[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        issues.append(lines.issue(loc, "must be a list of group ids or set names (set:name)"))
        return None
    for i, sel in enumerate(value):
        if sel.startswith("set:") and sel[4:] not in config.group_sets:
            issues.append(lines.issue((*loc, i), f"unknown group set {sel[4:]!r}"))
    return config.groups_in(value)
