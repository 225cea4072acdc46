"""Where a message goes: the relay graph, compiled once per (re)load. Pure; no I/O.

Every relay contributes directed edges: one-to-many ``source → target``, a mesh every
``a → b`` among its groups. A message travels from the group it was said in along every
*active* edge that admits its speaker, breadth first, and reaches each group it can reach
exactly once: a group already reached (the origin included) is never entered again, so a
cycle (a mesh, or links A→B→C→A) ends where it started. The bot never relays its own
messages, so this walk is the only way a message crosses more than one link.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bot.core.events import GroupMessage, MessageKind
from bot.core.text import normalize
from plugins.relay.config import RelayConfig, RelayLink


@dataclass(frozen=True, slots=True)
class Link:
    """A relay with its group selectors resolved to ids."""

    name: str
    spec: RelayLink
    source: str | None
    targets: tuple[str, ...]
    mesh: tuple[str, ...]

    @property
    def groups(self) -> tuple[str, ...]:
        return self.mesh if self.mesh else (self.source or "", *self.targets)

    def next_hops(self, group_id: str) -> tuple[str, ...]:
        if self.mesh:
            return tuple(g for g in self.mesh if g != group_id) if group_id in self.mesh else ()
        return self.targets if group_id == self.source else ()

    def controlled_from(self, group_id: str) -> bool:
        """Whether an admin of this group may start and stop the relay's sessions."""
        return group_id in self.mesh if self.mesh else group_id == self.source


@dataclass(frozen=True, slots=True)
class Delivery:
    target: str
    link: Link  # the link whose edge reached the target (its format applies)


# (link) -> the speakers it admits now (empty: everyone), or None when it is not active.
Activity = Callable[[Link], "frozenset[str] | None"]


class RelayGraph:
    def __init__(self, links: Iterable[Link]) -> None:
        self.links = tuple(links)
        self.by_name = {link.name: link for link in self.links}
        self._groups = frozenset(g for link in self.links for g in link.groups if g)
        # Target group -> one-to-many links that take questions from it.
        self._askable: dict[str, list[Link]] = {}
        for link in self.links:
            if not link.mesh and link.spec.questions:
                for target in link.targets:
                    self._askable.setdefault(target, []).append(link)

    @classmethod
    def build(cls, config: RelayConfig, resolve: Callable[[list[str]], set[str]]) -> RelayGraph:
        links = []
        for spec in config.relays:
            source = spec.source
            # Keep the configured order (it decides formats and notice order); drop repeats.
            targets = [g for g in _ordered(spec.targets, resolve) if g != source]
            mesh = _ordered(spec.mesh, resolve)
            links.append(Link(spec.name, spec, source, tuple(targets), tuple(mesh)))
        return cls(links)

    def involves(self, group_id: str) -> bool:
        return group_id in self._groups

    def links_controlled_from(self, group_id: str) -> list[Link]:
        return [link for link in self.links if link.controlled_from(group_id)]

    def reach(
        self, origin: str, speaker: str, activity: Activity, allow: Callable[[str], bool] = lambda _: True
    ) -> list[Delivery]:
        """Every group the message from `speaker` in `origin` must reach, each once, in
        breadth-first order (nearest first; among equals, configuration order). A group
        `allow` refuses (the relay is switched off there) is neither reached nor crossed."""
        admitted: list[Link] = []
        for link in self.links:
            speakers = activity(link)
            if speakers is not None and (not speakers or speaker in speakers):
                admitted.append(link)
        if not admitted:
            return []
        seen = {origin}
        out: list[Delivery] = []
        frontier = deque([origin])
        while frontier:
            here = frontier.popleft()
            for link in admitted:
                for there in link.next_hops(here):
                    if there not in seen:
                        seen.add(there)
                        if not allow(there):
                            continue
                        out.append(Delivery(there, link))
                        frontier.append(there)
        return out

    def question_links(self, group_id: str) -> list[Link]:
        """One-to-many links that take audience questions from this target group."""
        return self._askable.get(group_id, [])


def _ordered(selectors: list[str], resolve: Callable[[list[str]], set[str]]) -> list[str]:
    out: list[str] = []
    for selector in selectors:
        # A set expands in id order: sets are unordered in config.
        for gid in sorted(resolve([selector])):
            if gid not in out:
                out.append(gid)
    return out


def strip_question(text: str, prefixes: Iterable[str]) -> str | None:
    """The question without its prefix ("提问：几点开始？" → "几点开始？"), or None when the
    text does not start with a prefix or nothing follows it. Matching is on the normalised
    text (full-width, case), so "提问:" and "提问：" both work."""
    stripped = text.lstrip()
    folded = normalize(stripped)
    for prefix in prefixes:
        key = normalize(prefix)
        if key and folded.startswith(key):
            # Cut the same number of visible characters from the original text.
            rest = _cut_prefix(stripped, key)
            rest = rest.lstrip(" \u2005\u3000:：,，、-—").strip()
            return rest or None
    return None


def _cut_prefix(text: str, folded_prefix: str) -> str:
    for i in range(1, len(text) + 1):
        if normalize(text[:i]) == folded_prefix:
            return text[i:]
    return ""


def message_body(event: GroupMessage, kinds: Iterable[MessageKind], labels: dict[MessageKind, str]) -> str | None:
    """What the other groups see of a message (without the speaker line), or None when
    this kind is not relayed or there is nothing to show."""
    kind = event.kind
    if kind is MessageKind.SYSTEM or kind not in kinds:
        return None
    text = event.text.strip()
    url = (event.url or "").strip()
    if url and url in text:
        url = ""
    if kind in (MessageKind.TEXT, MessageKind.URL):
        body = " ".join(p for p in (text, url) if p)
        return body or None
    label = labels.get(kind) or labels.get(MessageKind.OTHER) or "[消息]"
    return " ".join(p for p in (label, text, url) if p)
