"""python-wechaty 0.10.7, loaded with the workarounds it needs. The only module that imports it.

What qunbot uses of it: the puppet-service gRPC client (`wechaty_puppet_service.PuppetService`:
the channel, the event stream parser, the payload calls) and the payload types of
`wechaty_puppet`. What it deliberately does not use, and why:

- `wechaty.Wechaty` (the bot object): `start()` swallows errors (it `print`s them), sleeps
  60 s and restarts recursively on a network error, and stops the whole event loop on a
  puppet error; it never reconnects when the event stream ends; its heartbeat bridge listens
  to "heart-beat" while the puppet emits "heartbeat"; on login its plugin manager starts a
  second APScheduler and probes local port 5000 with a blocking telnet connect, failing the
  login when that port is in use. The adapter runs its own connection loop instead
  (`connection.py`).
- `Room` / `Contact` / `Message` (the user classes): `Room.load` and `Contact.load` keep every
  object in a process-wide pool bound to the puppet of the first connection, so after a
  reconnect they call a closed channel; their payloads are cached forever (a renamed group
  keeps its old topic) and `room.ready(force_sync=True)` returns early when the room is
  already loaded, so the member list is stale after `room.add` / `room.delete`; `Room.say`
  prefixes "@name" for every mention even when the text already has it. The adapter calls
  the same puppet methods these classes call (`room.delete` → `room_delete`, `room.add` →
  `room_add`, `room.say` → `message_send_text`) and re-reads payloads where it matters.
- `UrlLink.create(url)` downloads the page to fill in the card; `url_link_payload` builds
  the payload directly.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from dataclasses import dataclass
from importlib.util import find_spec
from typing import Any

ENDPOINT_ENV = "WECHATY_PUPPET_SERVICE_ENDPOINT"
TOKEN_ENV = "WECHATY_PUPPET_SERVICE_TOKEN"

# Logger names python-wechaty creates with `wechaty_puppet.get_logger` (non-propagating, with
# their own stderr handler). Found by a diff of the logger registry around the first import;
# this list covers the case where something imported the library before us.
KNOWN_LOGGERS = frozenset(
    {
        "Accessory",
        "Config",
        "Contact",
        "ContactSelf",
        "Favorite",
        "FileBox",
        "FriendShip",
        "Image",
        "Message",
        "MiniProgram",
        "PuppetService",
        "Room",
        "RoomInvitation",
        "Tag",
        "UrlLink",
        "Wechaty",
        "WechatyPuppet",
        "WechatyPuppet.Schema.Base",
        "WechatyPuppet.Schemas.Event",
        "WechatyPuppetServiceConfig",
        "wechaty.plugin",
        "grpclib",
        "hpack",
        "h2",
    }
)


def check_available() -> None:
    """Raise ImportError with the fix when the `wechaty` extra cannot work here, without
    importing it (the import has side effects, see `load`)."""
    if sys.version_info >= (3, 13):
        raise ImportError(
            "python-wechaty needs Python 3.11 or 3.12: its puppet-service client imports telnetlib, "
            "which Python 3.13 removed"
        )
    missing = [name for name in ("wechaty_puppet", "wechaty_puppet_service", "grpclib") if find_spec(name) is None]
    if missing:
        raise ImportError(f"python-wechaty is not installed (missing {', '.join(missing)})")


@dataclass(frozen=True)
class Library:
    """The pieces of python-wechaty the adapter uses, after the workarounds."""

    puppet_class: type[Any]  # QunbotPuppetService
    options_class: type[Any]  # wechaty_puppet.PuppetOptions
    url_link_payload_class: type[Any]  # wechaty_puppet.UrlLinkPayload
    logger_names: frozenset[str]


_loaded: Library | None = None


def load(endpoint: str) -> Library:
    """Import python-wechaty for `endpoint` (host:port). Idempotent."""
    global _loaded
    check_available()
    # python-wechaty-puppet-service reads the endpoint from the environment when it builds a
    # puppet; without one it looks the token up at https://api.chatie.io (needs the internet
    # and puts the token in a URL). Set it before anything of the library is imported.
    os.environ[ENDPOINT_ENV] = endpoint
    if _loaded is not None:
        return _loaded
    before = set(logging.Logger.manager.loggerDict)

    import wechaty_puppet.schemas.puppet as puppet_schema

    # Python 3.11+ rejects a dataclass field whose default is an unhashable dataclass instance,
    # and python-wechaty's `WechatyOptions.puppet_options = PuppetOptions()` is one: `import
    # wechaty` fails with "mutable default … is not allowed" unless PuppetOptions is hashable.
    # qunbot itself only needs wechaty_puppet(_service), but anything else in the process
    # (a REPL, a wechaty plugin) may import `wechaty`, so the fix goes in first.
    if puppet_schema.PuppetOptions.__hash__ is None:
        puppet_schema.PuppetOptions.__hash__ = object.__hash__

    from wechaty_puppet import PuppetOptions, UrlLinkPayload

    with warnings.catch_warnings():
        # python-wechaty-puppet-service imports telnetlib (deprecated in 3.11/3.12) for the
        # endpoint "ping" the adapter replaces; the warning would only confuse operators.
        warnings.filterwarnings("ignore", message=".*telnetlib", category=DeprecationWarning)
        from bot.adapters.wechaty._puppet import make_puppet_class

        puppet_class = make_puppet_class()

    created = set(logging.Logger.manager.loggerDict) - before
    _loaded = Library(
        puppet_class=puppet_class,
        options_class=PuppetOptions,
        url_link_payload_class=UrlLinkPayload,
        logger_names=frozenset(created) | KNOWN_LOGGERS,
    )
    return _loaded


def url_link_payload(library: Library, url: str, title: str, description: str = "", thumbnail_url: str = "") -> Any:
    """A link card payload, built directly: python-wechaty's `UrlLink.create(url)` downloads the
    page (network access from the bot, and a slow, blocking-prone send)."""
    return library.url_link_payload_class(
        url=url, title=title or url, description=description, thumbnailUrl=thumbnail_url
    )
