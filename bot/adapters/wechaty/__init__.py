"""The Wechaty adapter: qunbot on WeChat through a Wechaty puppet service (gRPC).

Everything that touches python-wechaty lives in this package, and only `library` (and
`_puppet`, which it loads) imports it, at run time, once the endpoint is known. The other
modules work without the `qunbot[wechaty]` extra, so their tests run on a base install.

- `library`    python-wechaty loaded with its workarounds (and why each is needed);
- `_puppet`    the puppet-service client with its client bugs fixed;
- `connection` connect, watch liveness, reconnect with back-off and jitter;
- `platform`   the core's Platform interface, and puppet events → qunbot events;
- `mapping`    pure conversions (message kinds, timestamps, mentions, errors);
- `redact`     keeps the token out of every log line, the library's included;
- `runner`     `run_wechaty(loaded)`, called by `qunbot run`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.app import LoadedConfig


async def run_wechaty(loaded: LoadedConfig) -> int:
    from bot.adapters.wechaty.library import check_available

    try:
        check_available()
    except ImportError as exc:
        raise SystemExit(f"the wechaty adapter is not available: {exc} (pip install 'qunbot[wechaty]')") from None
    from bot.adapters.wechaty.runner import run_wechaty as run

    return await run(loaded)


__all__ = ["run_wechaty"]
