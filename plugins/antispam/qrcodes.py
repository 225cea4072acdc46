"""QR codes in images: what a code points to (`classify`), and reading codes out of image
bytes within fixed bounds (`QrReader`).

Decoding uses zxing-cpp (module `zxingcpp`) and Pillow, both in the optional `qr` extra
(pip install 'qunbot[qr]'). Without them `QrReader.create` says so once in the log and
returns None: the QR check is then skipped, everything else runs.

Bounds: an image over `max_bytes` is not fetched past that size (the platform stops
reading); an image whose header gives more than `max_pixels` is refused before its pixels
are decoded (a "decompression bomb" costs nothing); an image over `DECODE_PIXELS` is
scaled down before the QR search (a QR code that fills a phone screen survives it), so one
decode takes a bounded time. Decoding runs in one worker thread, never on the event loop;
at most `MAX_PENDING` images wait for it, past that new ones are skipped.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple
from urllib.parse import urlsplit

log = logging.getLogger("qunbot.plugin.antispam")

# Images above this many pixels are scaled down to it before the QR search.
DECODE_PIXELS = 4_000_000
# Images waiting for (or in) the decoder; more are skipped rather than queued.
MAX_PENDING = 8


class QrTarget(NamedTuple):
    """What a QR code points to: a kind (a key of `QrActions`), a title for people, and the
    payload shortened for notices."""

    kind: str
    title: str
    shown: str


# (kind, title, pattern on the payload, scheme and host lower-cased). First match wins.
_TARGETS: tuple[tuple[str, str, re.Pattern[str]], ...] = tuple(
    (kind, title, re.compile(pattern))
    for kind, title, pattern in (
        ("group_invite", "微信群邀请", r"^https?://weixin\.qq\.com/g/"),
        ("group_invite", "企业微信群邀请", r"^https?://work\.weixin\.qq\.com/gm?/"),
        ("group_invite", "QQ群邀请", r"^https?://(?:jq\.qq\.com/|qm\.qq\.com/cgi-bin/qm/qr\?.*\bk=.*\bjump_from=)"),
        ("contact", "微信个人名片", r"^https?://u\.wechat\.com/"),
        ("contact", "企业微信名片", r"^https?://work\.weixin\.qq\.com/u/"),
        ("contact", "QQ名片", r"^https?://qm\.qq\.com/"),
        ("official_account", "公众号", r"^https?://(?:weixin\.qq\.com/r/|mp\.weixin\.qq\.com/mp/)"),
        ("payment", "微信收款码", r"^(?:wxp://|https?://payapp\.weixin\.qq\.com/)"),
        ("payment", "支付宝收款码", r"^(?:https?://qr\.alipay\.com/|alipays?://)"),
        ("telegram", "Telegram", r"^(?:https?://(?:www\.)?(?:t|telegram)\.me/|tg://)"),
    )
)
_SCHEME_HOST = re.compile(r"^([a-z][a-z0-9+.-]*://)([^/?#]*)", re.IGNORECASE)
_BARE_DOMAIN = re.compile(r"^(?:www\.)?[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}(?:[/:?#]\S*)?$", re.IGNORECASE)


def _lower_head(payload: str) -> str:
    """The payload with its scheme and host lower-cased (paths keep their case)."""
    m = _SCHEME_HOST.match(payload)
    return payload if m is None else m.group(1).lower() + m.group(2).lower() + payload[m.end() :]


def classify(payload: str) -> QrTarget:
    """What a decoded QR payload points to."""
    text = payload.strip()
    shown = text if len(text) <= 80 else text[:77] + "…"
    head = _lower_head(text)
    for kind, title, pattern in _TARGETS:
        if pattern.search(head):
            return QrTarget(kind, title, shown)
    if head.startswith(("http://", "https://")) or _BARE_DOMAIN.match(text):
        host = link_host(text)
        return QrTarget("link", f"链接 {host}" if host else "链接", shown)
    return QrTarget("text", "文字", shown)


def link_host(payload: str) -> str:
    text = payload.strip()
    if "://" not in text:
        text = "http://" + text
    try:
        return (urlsplit(text).hostname or "").lower()
    except ValueError:
        return ""


class QrError(Exception):
    """An image that cannot or may not be read; the message says why, for the audit row."""


def decode(data: bytes, max_pixels: int) -> list[str]:
    """The payloads of the QR codes in an image file (runs in the worker thread)."""
    import zxingcpp
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:  # reads the header only
            width, height = img.size
            if width * height > max_pixels:
                raise QrError(f"图片太大（{width}×{height} 像素，上限 {max_pixels}）")
            if width * height > DECODE_PIXELS:
                # JPEG can decode straight at a reduced scale; everything is scaled down after.
                scale = (DECODE_PIXELS / (width * height)) ** 0.5
                img.draft("L", (int(width * scale), int(height * scale)))
            gray = img.convert("L")
    except QrError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise QrError(f"无法读取图片（{type(exc).__name__}）") from None
    if gray.width * gray.height > DECODE_PIXELS:
        scale = (DECODE_PIXELS / (gray.width * gray.height)) ** 0.5
        gray = gray.resize((max(1, int(gray.width * scale)), max(1, int(gray.height * scale))))
    found = zxingcpp.read_barcodes(gray, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode))
    return [b.text for b in found if b.text]


class QrReader:
    """Reads QR codes out of images in one worker thread (see the module's bounds)."""

    def __init__(self, decoder: Callable[[bytes, int], list[str]] = decode) -> None:
        self._decode = decoder
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qunbot-qr")
        self.pending = 0

    @classmethod
    def create(cls) -> QrReader | None:
        """A reader, or None (logged once: the caller builds one per plugin start) when the
        `qr` extra is not installed."""
        missing = [name for name in ("zxingcpp", "PIL") if not _importable(name)]
        if missing:
            log.warning(
                "antispam: QR codes in images are not read: %s not installed (pip install 'qunbot[qr]')",
                " and ".join({"zxingcpp": "zxing-cpp", "PIL": "Pillow"}[m] for m in missing),
            )
            return None
        return cls()

    @property
    def busy(self) -> bool:
        return self.pending >= MAX_PENDING

    async def scan(self, fetch: Callable[[], Awaitable[bytes]], max_pixels: int) -> list[str]:
        """Fetch an image and decode it in the worker thread (`pending` counts both steps).
        Raises QrError for an image it may not or cannot read; the fetch's own errors pass."""
        self.pending += 1
        try:
            data = await fetch()
            return await asyncio.get_running_loop().run_in_executor(self._pool, self._decode, data, max_pixels)
        finally:
            self.pending -= 1

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _importable(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True
