"""Log lines that no frame can forge: text from outside the bridge is escaped before it reaches a log.

An EA's identity, its symbol, a BYE reason, a FAILSAFE detail, a RESULT's text, the operator's `by`: all of it
comes from outside and ends up in log lines. A newline in it would start a line of its own that looks like the
bridge's (timestamp, level and all); an escape sequence would reach the trader's terminal. Rather than trust
every log call to escape its arguments, the formatter escapes the whole rendered message: control characters
(C0, DEL, C1), the Unicode line and paragraph separators and the bidirectional overrides become visible
escapes such as ``\\n`` or ``\\x1b``. A traceback keeps its lines, each indented, so that an exception message
carrying a newline cannot put a line at the start of the log either.
"""

from __future__ import annotations

import logging

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_ESCAPES: dict[int, str] = {}
for _code in [*range(0x20), 0x7F, *range(0x80, 0xA0)]:
    _ESCAPES[_code] = _NAMED.get(chr(_code), f"\\x{_code:02x}")
# Line and paragraph separators end a line in some viewers; the bidirectional controls reorder what is shown.
for _code in [0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C]:
    _ESCAPES[_code] = f"\\u{_code:04x}"

TRACEBACK_INDENT = "  "


def escape(text: str) -> str:
    """``text`` with every control character shown as an escape; plain printable text is returned as it is."""
    # isprintable() is False for every character escaped here (and for a few harmless ones, such as a
    # no-break space, which translate() leaves alone): the common case costs one C-level scan.
    return text if text.isprintable() else text.translate(_ESCAPES)


class SafeFormatter(logging.Formatter):
    """A ``logging.Formatter`` whose lines cannot be forged by the text they carry."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape(super().formatMessage(record))

    def formatException(self, ei) -> str:
        return "\n".join(TRACEBACK_INDENT + escape(line) for line in super().formatException(ei).split("\n"))

    def formatStack(self, stack_info: str) -> str:
        return "\n".join(TRACEBACK_INDENT + escape(line) for line in stack_info.split("\n"))


def protect(logger: logging.Logger | None = None) -> None:
    """Make every handler of ``logger`` (the root logger) escape what it writes.

    However the process set up its logging (``logging.basicConfig``, a program that embeds the bridge), a
    handler with a plain ``logging.Formatter`` gets a :class:`SafeFormatter` of the same format. A handler with
    a formatter of its own kind (JSON, say) is left to it. With no handler at all, Python's last-resort handler
    writes warnings to stderr: it is protected too.
    """
    logger = logger or logging.getLogger()
    handlers = list(logger.handlers)
    if not handlers and logging.lastResort is not None:
        handlers = [logging.lastResort]
    for handler in handlers:
        current = handler.formatter
        if isinstance(current, SafeFormatter):
            continue
        if current is None:
            handler.setFormatter(SafeFormatter())
        elif type(current) is logging.Formatter:
            safe = SafeFormatter()
            safe.__dict__.update(current.__dict__)   # the same format, style and time format
            handler.setFormatter(safe)
