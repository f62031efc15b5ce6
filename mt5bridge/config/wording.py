"""How a configuration's keys and values are written back to the trader: the one error type (a list of
problems, one line each) and values quoted as TOML.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from collections.abc import Iterable
from typing import Any, NamedTuple

from pydantic import BaseModel

# --- errors --------------------------------------------------------------------------------------------------


class ConfigIssue(NamedTuple):
    """One thing wrong with a configuration file."""

    source: str
    key: str  # dotted TOML key, "" when the problem is the file itself
    value: str  # the value given, written as TOML; "" when there is none
    problem: str

    def __str__(self) -> str:
        if not self.key:
            return f"{self.source}: {self.problem}"
        if self.value.startswith("{"):
            return f"{self.source}: [{self.key}]: {self.problem}"
        return f"{self.source}: {self.key} = {self.value}: {self.problem}"


class ConfigError(ValueError):
    """A configuration that cannot be used. ``issues`` holds every problem found, one line each in ``str()``."""

    def __init__(self, source: str, issues: list[ConfigIssue]) -> None:
        self.source = source
        self.issues = issues
        super().__init__("\n".join(str(issue) for issue in issues))

    @property
    def lines(self) -> list[str]:
        return [str(issue) for issue in self.issues]


# --- TOML writing --------------------------------------------------------------------------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _key(part: str) -> str:
    return part if _BARE_KEY.fullmatch(part) else _toml_string(part)


def _dotted(parts: Iterable[str]) -> str:
    return ".".join(_key(str(p)) for p in parts)


def _toml_string(text: str) -> str:
    out = []
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in "\b\t\n\f\r":
            out.append({"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_value(value: Any) -> str:
    """``value`` as TOML; also how values are quoted in error messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, BaseModel):
        return _toml_value(value.model_dump(by_alias=True))
    return _toml_string(str(value))


