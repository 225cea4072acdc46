"""Keep the puppet-service token out of every log line and error message.

python-wechaty logs the token itself: `PuppetService.__init__` warns "there are endpoint<…>
and token<…>" at WARNING on every connection. Its loggers (made by
`wechaty_puppet.get_logger`) do not propagate and carry their own stderr (and optional file)
handlers, so a filter on the root logger alone would not see those lines (and their names,
"Room", "Message", "PuppetService"…, share no prefix). `install` therefore puts one filter on
the root handlers, on every handler of every existing logger and on the loggers themselves,
and routes the loggers the library created through the root handlers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

MASK = "***"


class SecretRedactor(logging.Filter):
    """Replaces each secret by `***` in the formatted message and in the exception text of a
    record. It never drops a record."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__("qunbot.redact")
        # Longest first, so a secret containing another is masked whole.
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler's own error path
            return True
        clean = self.redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            # Format the traceback now, so the handler prints the redacted copy.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def _attach(target: logging.Logger | logging.Handler, redactor: SecretRedactor) -> None:
    if redactor not in target.filters:
        target.addFilter(redactor)


def install(redactor: SecretRedactor, library_loggers: Iterable[str] = (), level: int | None = None) -> None:
    """Attach `redactor` everywhere a record can be emitted. The loggers named in
    `library_loggers` (python-wechaty's) lose their private handlers and propagate to the root
    handlers instead, at `level` when given. Idempotent."""
    library = set(library_loggers)
    root = logging.getLogger()
    _attach(root, redactor)
    for handler in root.handlers:
        _attach(handler, redactor)
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if not isinstance(logger, logging.Logger):
            continue  # a PlaceHolder: no handlers of its own
        if name in library:
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
            logger.propagate = True
            if level is not None:
                logger.setLevel(level)
        _attach(logger, redactor)
        for handler in logger.handlers:
            _attach(handler, redactor)
