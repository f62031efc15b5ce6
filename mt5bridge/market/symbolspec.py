"""Symbol specifications in a TOML file: what a replay needs to trade a symbol as the broker does.

One table per symbol, its keys named as in the EA's HELLO (``mt5bridge/bridge/protocol.py``) plus the spread and the
commission, which HELLO does not carry::

    [symbols.EURUSD]
    digits = 5                 # prices are rounded to this many decimals
    point = 1e-05              # one point, in price
    tick_size = 1e-05          # smallest price change
    tick_value = 1.0           # account currency per tick_size per lot
    contract_size = 100000.0   # units per lot
    volume_min = 0.01          # lots
    volume_step = 0.01
    volume_max = 100.0
    stops_level = 0            # minimum SL/TP distance from the price, in points
    freeze_level = 0           # no modification this close to the price, in points
    spread_points = 8.0        # typical spread, in points
    commission_per_lot = 2.5   # account currency per lot on every deal, in and out (a round turn costs twice)
    swap_long = -6.9           # optional: account currency per lot per night held long (negative: charged)
    swap_short = 1.2           # optional: the same held short

``mt5bridge history --spec-out`` writes a symbol's table (keeping the other symbols) and docs/history.md
documents the layout. A key the layout does not know is refused, so a misspelt one is never silently ignored.
:func:`read_spec_file` checks every value and reports every problem at once, each naming the file, the symbol
and the key, with the nearest known key for a misspelt one (as ``check-config`` does for the configuration).
"""

from __future__ import annotations

import difflib
import math
import os
import re
from pathlib import Path

from mt5bridge.common.atomicfile import write_text

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

SPEC_KEYS: tuple[str, ...] = (
    "digits", "point", "tick_size", "tick_value", "contract_size", "volume_min", "volume_step", "volume_max",
    "stops_level", "freeze_level", "spread_points", "commission_per_lot", "swap_long", "swap_short",
)
# Swaps: account currency per lot per night, negative when charged; the terminal states them in units that
# depend on SYMBOL_SWAP_MODE, so they are the trader's to set, and 0 when left out.
OPTIONAL_KEYS = frozenset({"swap_long", "swap_short"})
_SIGNED = {"swap_long", "swap_short"}
_WHOLE = {"digits", "stops_level", "freeze_level"}
_POSITIVE = {"point", "tick_size", "tick_value", "contract_size", "volume_min", "volume_step", "volume_max"}
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")

_HEADER = """\
# Symbol specifications for mt5bridge (replay, simulation): one [symbols.NAME] table per symbol.
# Written by `mt5bridge history --spec-out`; the layout is described in docs/history.md.
# Key names follow the EA's HELLO: prices in the symbol's quote, money in the account currency,
# stops_level/freeze_level/spread_points in points, commission_per_lot per lot on every deal (in and out).
"""


class SpecFileError(ValueError):
    """A spec file that cannot be used: every problem found, one line each naming the file, the symbol, the key
    and what is wrong (``problems``), so a trader fixes them all in one go."""

    def __init__(self, problems: str | list[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))

    def __reduce__(self):
        return (type(self), (self.problems,))


def read_spec_file(path: str | os.PathLike[str], *, partial: bool = False) -> dict[str, dict]:
    """Every symbol's specification in the file, checked: ``{"EURUSD": {"digits": 5, ...}, ...}``.

    ``partial``: a table may leave keys out (replay takes them from the symbol's preset); a key the layout
    does not know is refused either way, so a misspelt one is never silently ignored."""
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecFileError(f"{where}: cannot read the spec file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise SpecFileError(f"{where}: not UTF-8 text (byte {exc.start})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecFileError(f"{where}: not valid TOML: {exc}") from None
    symbols = data.get("symbols")
    if not isinstance(symbols, dict) or not symbols:
        raise SpecFileError(f"{where}: no [symbols.NAME] table; see docs/history.md for the layout")
    checked, problems = {}, []
    for name, spec in symbols.items():
        try:
            checked[name] = check_spec(spec, f"{where}: symbols.{name}", partial=partial)
        except SpecFileError as exc:
            problems += exc.problems
    if problems:
        raise SpecFileError(problems)
    return checked


def check_spec(spec: object, where: str, *, partial: bool = False) -> dict:
    """The specification with every key (``partial``: every key given) known and in range; else SpecFileError
    with every problem, each naming ``where`` and the key (a misspelt key with the nearest known one)."""
    if not isinstance(spec, dict):
        raise SpecFileError(f"{where}: expected a table of keys, got {spec!r}")
    problems = []
    meant = set()
    for key in spec:
        if key in SPEC_KEYS:
            continue
        close = difflib.get_close_matches(key, SPEC_KEYS, n=1, cutoff=0.6)
        if close:
            meant.add(close[0])
            problems.append(f"{where}.{key} = {spec[key]!r}: unknown key; did you mean {close[0]}?")
        else:
            problems.append(f"{where}.{key} = {spec[key]!r}: unknown key; a symbol's table has {', '.join(SPEC_KEYS)}")
    missing = [k for k in SPEC_KEYS if k not in spec and k not in OPTIONAL_KEYS and k not in meant]
    if missing and not partial:
        problems.append(f"{where}: missing {', '.join(missing)}")
    sound = set()
    for key in SPEC_KEYS:
        if key not in spec:
            continue
        problem = _value_problem(key, spec[key])
        if problem:
            problems.append(f"{where}.{key} = {spec[key]!r}: {problem}")
        else:
            sound.add(key)
    if {"volume_min", "volume_max"} <= sound and spec["volume_min"] > spec["volume_max"]:
        problems.append(f"{where}: volume_min {spec['volume_min']!r} is above volume_max {spec['volume_max']!r}")
    if problems:
        raise SpecFileError(problems)
    out = dict(spec)
    for key in _WHOLE & set(spec):
        out[key] = int(spec[key])
    return out


def _value_problem(key: str, value: object) -> str | None:
    """What is wrong with one key's value, or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "expected a number"
    if key in _WHOLE and (value != int(value) or value < 0):
        return "expected a whole number >= 0"
    if key in _POSITIVE and not value > 0:
        return "must be above 0"
    if value < 0 and key not in _SIGNED:
        return "must not be negative"
    if key == "digits" and value > 10:
        return "at most 10"
    return None


def write_spec(path: str | os.PathLike[str], symbol: str, spec: dict) -> None:
    """Write ``symbol``'s specification into the spec file at ``path``, creating it or replacing that symbol's
    keys while keeping the other symbols. The file is replaced atomically."""
    where = f"{path}: symbols.{symbol}"
    new = check_spec({k: spec[k] for k in SPEC_KEYS if k in spec}, where)
    target = Path(path)
    symbols: dict[str, dict] = {}
    if target.exists():
        # Other symbols may be partial tables written for replay (the preset fills the rest): keep them as they are.
        symbols = {name: dict(s) for name, s in read_spec_file(target, partial=True).items()}
    merged = dict(symbols.get(symbol, {}))
    merged.update(new)
    symbols[symbol] = merged
    lines = [_HEADER]
    for name in sorted(symbols):
        lines.append(f"\n[symbols.{_key(name)}]\n")
        table = symbols[name]
        ordered = [k for k in SPEC_KEYS if k in table] + sorted(k for k in table if k not in SPEC_KEYS)
        lines.extend(f"{_key(k)} = {_value(table[k])}\n" for k in ordered)
    write_text(target, "".join(lines))


def _key(name: str) -> str:
    if _BARE_KEY.match(name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'  # e.g. a broker's "EURUSD.r" or "US30.cash"


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # shortest text that reads back to the same double, as TOML allows
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise SpecFileError(f"cannot write {value!r} into a spec file")
