"""Price history files read into numpy arrays: MetaTrader 5 tick and bar exports, and plain CSV.

Three formats are recognised by their header line:

- MT5 tick export (tab-separated): ``<DATE> <TIME> <BID> <ASK> <LAST> <VOLUME> <FLAGS>``. MT5 writes only
  the fields that changed on a tick, so an empty BID or ASK means "unchanged" and the last known price is
  carried forward. Rows before both sides are known, and rows that change neither side (LAST or VOLUME
  only, as on exchange symbols), are not quotes and are skipped.
- MT5 bar export (tab-separated): ``<DATE> <TIME> <OPEN> <HIGH> <LOW> <CLOSE> <TICKVOL> <VOL> <SPREAD>``.
  The bar volume is TICKVOL, the spread is in points.
- Plain CSV with a header, comma-separated, columns in any order and case: ``time,open,high,low,close,volume``
  with an optional ``spread`` (points), or ``time,bid,ask`` with an optional ``volume``.

A tick's volume, when the file leaves it empty or zero, is 1: MetaTrader's tick volume counts each quote once,
and a zero only says the broker reports no real volume for the symbol.

Times are read as the wall-clock of the file and shifted to UTC by ``utc_offset_hours``: MT5 writes broker
server time (commonly UTC+2, UTC+3 in summer), and an integer epoch written by MT5 is server time too, so it is
shifted the same way. A price file is trusted only after checking it: every rejected value raises a
:class:`MarketDataError` that names the file, the line and the column.

Two readers, one answer: the compiled one (``ext/_marketread.pyx``) takes the plain files in one pass in C and
declines anything unusual, a bad value included; the Python one below reads what it declines and alone explains
what is wrong. A large file's arrays are kept in the cache of ``mt5bridge.market.cache``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from itertools import islice
from typing import Callable, Union

import numpy as np

from mt5bridge.market.cache import MarketCache, default_cache

try:
    from mt5bridge.market import _marketread
except ImportError as exc:  # pragma: no cover - exercised by a test that hides the module
    raise ImportError(
        f"mt5bridge's compiled price-file reader (mt5bridge.market._marketread) is not built or does not load: {exc}."
        " Build it by installing the package from its source folder: `python -m pip install .` (or `python -m pip"
        " install -e .` while developing, or `python setup.py build_ext --inplace` after pulling new sources)."
    ) from exc

SUPPORTED_TIMEFRAMES_S: tuple[int, ...] = (60, 300, 900, 3600)
TIMEFRAME_LABELS: dict[int, str] = {60: "M1", 300: "M5", 900: "M15", 3600: "H1"}
TIMEFRAME_BY_LABEL: dict[str, int] = {label: seconds for seconds, label in TIMEFRAME_LABELS.items()}


def timeframe_seconds(label: str) -> int:
    """The seconds of a timeframe named as MT5 names it (M1, M5, M15, H1; any case), or a ValueError."""
    seconds = TIMEFRAME_BY_LABEL.get(label.strip().upper())
    if seconds is None:
        raise ValueError(f"unknown timeframe {label!r}; use one of {', '.join(TIMEFRAME_BY_LABEL)}")
    return seconds

MT5_TICK_HEADER = ("<DATE>", "<TIME>", "<BID>", "<ASK>", "<LAST>", "<VOLUME>", "<FLAGS>")
MT5_BAR_HEADER = ("<DATE>", "<TIME>", "<OPEN>", "<HIGH>", "<LOW>", "<CLOSE>", "<TICKVOL>", "<VOL>", "<SPREAD>")
CSV_BAR_COLUMNS = ("time", "open", "high", "low", "close", "volume")
CSV_BAR_OPTIONAL = ("spread",)
CSV_TICK_COLUMNS = ("time", "bid", "ask")
CSV_TICK_OPTIONAL = ("volume",)

# Where a history came from (``Ticks.source_format`` / ``Bars.source_format``): MT5's own exports are in the broker's
# server time; a plain CSV is read as written.
MT5_TICK_EXPORT = "MT5 tick export"
MT5_BAR_EXPORT = "MT5 bar export"
CSV_FILE = "CSV"

ACCEPTED_HEADERS = (
    "MT5 tick export '" + "\\t".join(MT5_TICK_HEADER) + "', "
    "MT5 bar export '" + "\\t".join(MT5_BAR_HEADER) + "', "
    "CSV 'time,open,high,low,close,volume[,spread]' or CSV 'time,bid,ask[,volume]' (any order and case)"
)

PathLike = Union[str, "os.PathLike[str]"]

_INF = math.inf
_MS_PER_DAY = 86_400_000
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
# Below this an integer epoch is read as seconds: 10**11 s is the year 5138, 10**11 ms is 1973-03-03.
_EPOCH_SECONDS_LIMIT = 10**11


class MarketDataError(ValueError):
    """A price file that cannot be used, with the place and the reason: ``path:line: reason``.

    ``line`` is the 1-based line of the file, 0 when the problem is not about one line.
    """

    def __init__(self, path: PathLike, line: int, reason: str) -> None:
        self.path = os.fspath(path)
        self.line = int(line)
        self.reason = reason
        super().__init__(f"{self.path}:{self.line}: {reason}")

    def __reduce__(self):  # keeps the three fields when the error crosses a process boundary
        return (type(self), (self.path, self.line, self.reason))


@dataclass(frozen=True)
class Ticks:
    """Quotes in time order: UTC milliseconds since 1970, bid, ask and tick volume."""

    times_ms: np.ndarray  # int64, non-decreasing
    bid: np.ndarray  # float64
    ask: np.ndarray  # float64
    volume: np.ndarray  # float64
    source_format: str = ""  # MT5_TICK_EXPORT, CSV_FILE, or "" when not read from a file

    def __post_init__(self) -> None:
        n = len(self.times_ms)
        if not (len(self.bid) == len(self.ask) == len(self.volume) == n):
            raise ValueError("Ticks arrays must all have the same length")

    def __len__(self) -> int:
        return len(self.times_ms)


@dataclass(frozen=True)
class Bars:
    """Bars in time order; ``times_ms`` is each bar's OPEN time in UTC milliseconds since 1970.

    Prices are bid prices, as on MetaTrader's charts; ``spread_points`` times ``point`` is the spread in price.
    """

    times_ms: np.ndarray  # int64, strictly increasing
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    spread_points: np.ndarray
    timeframe_s: int
    point: float
    source_format: str = ""  # MT5_BAR_EXPORT, CSV_FILE, or "" when not read from a file
    has_spread: bool = True  # False for a CSV without a spread column (its spread_points are all 0)

    def __post_init__(self) -> None:
        n = len(self.times_ms)
        columns = (self.open, self.high, self.low, self.close, self.volume, self.spread_points)
        if any(len(c) != n for c in columns):
            raise ValueError("Bars arrays must all have the same length")

    def __len__(self) -> int:
        return len(self.times_ms)


# ---------------------------------------------------------------------------------------------------------
# Reading


def read_market_file(
    path: PathLike, *, utc_offset_hours: float = 0.0, point: float | None = None, cache: MarketCache | None | bool = None
) -> Ticks | Bars:
    """Read a tick or bar history file, detecting its format from the header line.

    ``utc_offset_hours``: the file's clock is UTC plus this many hours (MT5 server time, e.g. 2); it is
    subtracted so the arrays hold UTC. ``point``: the price of one spread point for bar files; when None it is
    10**-d, d being the most decimals written in any price (MT5 writes prices with the symbol's digits).
    Tick files do not need it.

    ``cache``: where the parsed arrays of a large file are kept, keyed by a hash of its content
    (``mt5bridge.market.cache``); None for the default cache folder, False for none.

    Raises :class:`MarketDataError` for any content problem, ``OSError`` when the file cannot be read and
    ``ValueError`` for an offset beyond 24 hours or a point that is not a positive number.
    """
    if not math.isfinite(utc_offset_hours) or abs(utc_offset_hours) > 24:
        raise ValueError(f"utc_offset_hours must be between -24 and 24, not {utc_offset_hours!r}")
    if point is not None and not (0.0 < point < _INF):
        raise ValueError(f"point must be a positive number, not {point!r}")
    path = os.fspath(path)
    offset_ms = round(utc_offset_hours * 3_600_000)
    store = default_cache() if cache is None else (cache or None)
    with open(path, "rb") as fh:
        # Read, not mapped: a mapped file cut short while it is read (an export being rewritten) would kill the
        # process with SIGBUS; a copy costs a few tens of milliseconds per 100 MB.
        raw = fh.read()
    key = store.key(raw, offset_ms, point) if store is not None else None
    if key is not None:
        cached = store.load(key)
        if cached is not None:
            return cached
    data = parse_market_bytes(path, raw, offset_ms, point)
    if key is not None:
        store.save(key, data)
    return data


def parse_market_bytes(path: str, raw: bytes, offset_ms: int, point: float | None, *, compiled: bool = True) -> Ticks | Bars:
    """The content of a price file read: by the compiled reader when it takes the file, else by the Python one,
    which alone explains what is wrong with a file (``compiled=False`` asks it directly)."""
    if compiled and _marketread is not None:  # None only where a benchmark measures the Python reader alone
        data = _parse_compiled(path, raw, offset_ms, point)
        if data is not None:
            return data
    return _parse_python(path, raw, offset_ms, point)


def _parse_python(path: str, raw: bytes, offset_ms: int, point: float | None) -> Ticks | Bars:
    lines = _decode_lines(bytes(raw), path)

    header = lines[0].strip() if lines else ""
    if not header and not any(line.strip() for line in lines):
        raise MarketDataError(path, 0, "the file is empty")

    tab_names = tuple(c.strip().upper() for c in header.split("\t"))
    if tab_names == MT5_TICK_HEADER:
        return replace(_read_mt5_ticks(path, lines, offset_ms), source_format=MT5_TICK_EXPORT)
    if tab_names == MT5_BAR_HEADER:
        return replace(_read_mt5_bars(path, lines, offset_ms, point), source_format=MT5_BAR_EXPORT)
    if "," in header and "\t" not in header:
        return replace(_read_csv(path, lines, header, offset_ms, point), source_format=CSV_FILE)
    raise MarketDataError(path, 1, f"unrecognised header {_shorten(header)!r}; accepted headers: {ACCEPTED_HEADERS}")


# ---------------------------------------------------------------------------------------------------------
# The compiled reader (ext/_marketread.pyx): the plain files in one pass in C; None for anything unusual.


def _parse_compiled(path: str, raw: bytes, offset_ms: int, point: float | None) -> Ticks | Bars | None:
    if _is_utf16(raw):
        try:
            # C decodes and re-encodes at several hundred MB/s; the parser then reads ASCII.
            data = bytes(raw).decode("utf-16" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-16-le").encode()
        except UnicodeError:
            return None
        start = 0
    else:
        data = raw
        start = 3 if raw[:3] == b"\xef\xbb\xbf" else 0
    end = data.find(b"\n", start)
    if end < 0:
        return None
    try:
        header = data[start:end].decode("ascii")
    except UnicodeDecodeError:
        return None
    if header.endswith("\r"):
        header = header[:-1]
    if "\r" in header:
        return None
    header = header.strip()
    tab_names = tuple(c.strip().upper() for c in header.split("\t"))
    if tab_names == MT5_TICK_HEADER:
        columns = _marketread.mt5_ticks(data, end + 1)
        return None if columns is None else _ticks(columns, offset_ms, MT5_TICK_EXPORT)
    if tab_names == MT5_BAR_HEADER:
        columns = _marketread.mt5_bars(data, end + 1)
        return None if columns is None else _bars(path, columns, offset_ms, point, MT5_BAR_EXPORT, True)
    if "," not in header or "\t" in header:
        return None
    names = tuple(c.strip().lower() for c in header.split(","))
    given = set(names)
    if len(given) != len(names):
        return None
    if given & {"bid", "ask"}:
        if not (set(CSV_TICK_COLUMNS) <= given <= set(CSV_TICK_COLUMNS + CSV_TICK_OPTIONAL)):
            return None
        index = [names.index(c) for c in CSV_TICK_COLUMNS]
        columns = _marketread.csv_ticks(data, end + 1, len(names), *index, _index(names, "volume"))
        return None if columns is None else _ticks(columns, offset_ms, CSV_FILE)
    if not (set(CSV_BAR_COLUMNS) <= given <= set(CSV_BAR_COLUMNS + CSV_BAR_OPTIONAL)):
        return None
    index = [names.index(c) for c in CSV_BAR_COLUMNS]
    columns = _marketread.csv_bars(data, end + 1, len(names), *index, _index(names, "spread"))
    return None if columns is None else _bars(path, columns, offset_ms, point, CSV_FILE, "spread" in names)


def _index(names: tuple[str, ...], name: str) -> int:
    return names.index(name) if name in names else -1


def _ticks(columns, offset_ms: int, source_format: str) -> Ticks:
    times, bid, ask, volume = columns
    times -= offset_ms
    return Ticks(times_ms=times, bid=bid, ask=ask, volume=volume, source_format=source_format)


def _bars(path: str, columns, offset_ms: int, point: float | None, source_format: str,
          has_spread: bool) -> Bars | None:
    times, o, h, lo, c, volume, spread, digits = columns
    times -= offset_ms
    try:
        timeframe_s = infer_timeframe(times, path)
    except MarketDataError:
        return None  # the Python reader says it, the same way
    if np.any(times % (timeframe_s * 1000)):
        return None  # the Python reader names the first bar off its boundary, with the time as written
    return Bars(times_ms=times, open=o, high=h, low=lo, close=c, volume=volume, spread_points=spread,
                timeframe_s=timeframe_s, point=point if point is not None else _point_from_decimals(digits),
                source_format=source_format, has_spread=has_spread)


def _is_utf16(raw: bytes) -> bool:
    # MT5 saves "Unicode" exports as UTF-16 LE with a BOM; a UTF-16 file whose BOM was lost is ASCII text with
    # a zero after each byte.
    return raw[:2] in (b"\xff\xfe", b"\xfe\xff") or (len(raw) >= 2 and raw[0] != 0 and raw[1] == 0)


def _decode_lines(raw: bytes, path: str) -> list[str]:
    # MT5 saves "Unicode" exports as UTF-16 LE with a BOM; everything else is expected as UTF-8 (ASCII
    # included), with or without a BOM.
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    elif len(raw) >= 2 and raw[0] != 0 and raw[1] == 0:
        encoding = "utf-16-le"  # a UTF-16 file whose BOM was lost: ASCII text with a zero after each byte
    else:
        encoding = "utf-8-sig"
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1 if encoding == "utf-8-sig" else 0
        raise MarketDataError(
            path, line, f"not readable as {encoding.replace('-sig', '')} text ({exc.reason} at byte {exc.start});"
            " save it as UTF-8 or as MT5's Unicode export"
        ) from None
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.split("\n")


def _shorten(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


class _Rows:
    """The data lines after the header, with the bookkeeping every format shares.

    Blank lines are allowed only at the end of a file: a blank line inside the data usually means two files
    were pasted together or a row was lost.
    """

    def __init__(self, path: str, lines: list[str], separator: str, columns: tuple[str, ...]) -> None:
        self.path = path
        self.lines = lines
        self.separator = separator
        self.columns = columns
        self.blank_line = 0

    def __iter__(self):
        """(line number, fields) of every data row. A row with the wrong number of fields raises, unless it is
        blank: a blank line is noted, and any data row after it raises."""
        separator, count = self.separator, len(self.columns)
        for line_no, line in enumerate(islice(self.lines, 1, None), 2):
            fields = line.split(separator)
            if len(fields) != count:
                self.bad_row(line_no, fields)
                continue
            if self.blank_line:
                raise self.blank_inside()
            yield line_no, fields

    def error(self, line: int, reason: str) -> MarketDataError:
        return MarketDataError(self.path, line, reason)

    def bad_row(self, line: int, fields: list[str]) -> None:
        """Called when a row has the wrong number of fields: a blank line is noted, anything else raises."""
        if not self.lines[line - 1].strip():
            if not self.blank_line:
                self.blank_line = line
            return
        sep = "tab" if self.separator == "\t" else "comma"
        raise self.error(
            line,
            f"expected {len(self.columns)} {sep}-separated columns ({', '.join(self.columns)}), found {len(fields)}",
        )

    def blank_inside(self) -> MarketDataError:
        return self.error(self.blank_line, "blank line inside the data (only trailing blank lines are allowed)")

    def no_data(self) -> MarketDataError:
        return MarketDataError(self.path, 0, "the file has a header but no data rows")

    def time_text(self, line: int, time_columns: tuple[int, ...]) -> str:
        fields = self.lines[line - 1].split(self.separator)
        return " ".join(fields[i].strip() for i in time_columns)

    def out_of_order(self, line: int, prev_line: int, time_columns: tuple[int, ...]) -> MarketDataError:
        now = self.time_text(line, time_columns)
        before = self.time_text(prev_line, time_columns)
        return self.error(line, f"time {now!r} is earlier than {before!r} on line {prev_line}")

    def bar_out_of_order(self, line: int, prev_line: int, time_columns: tuple[int, ...], same: bool) -> MarketDataError:
        now = self.time_text(line, time_columns)
        if same:
            return self.error(line, f"duplicate bar time {now!r}: the bar on line {prev_line} has the same time")
        before = self.time_text(prev_line, time_columns)
        return self.error(line, f"bar time {now!r} is not after {before!r} on line {prev_line}")

    def explain(self, line: int, checks: list[tuple[str, str, Callable[[str], object]]]) -> MarketDataError:
        """The first field that does not parse, found again slowly after the fast path failed."""
        for column, text, parse in checks:
            try:
                parse(text)
            except (ValueError, OverflowError):
                what, hint = _FIELD_KINDS.get(parse, ("number", ""))
                return self.error(line, f"{column} {text!r} is not a {what}{hint}")
        return self.error(line, f"row could not be read: {_shorten(self.lines[line - 1])!r}")  # pragma: no cover


# ---------------------------------------------------------------------------------------------------------
# Dates and times: epoch milliseconds computed directly, the date part cached, because one file holds
# millions of ticks over a few hundred dates and datetime objects would dominate the reading time.


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil)."""
    if m <= 2:
        y -= 1
    era = y // 400
    yoe = y - era * 400
    doy = (153 * ((m + 9) % 12) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def _date_ms(text: str) -> int:
    """'YYYY-MM-DD' or 'YYYY.MM.DD' to the epoch milliseconds of its midnight; ValueError otherwise."""
    if len(text) != 10 or text[4] != text[7] or text[4] not in "-.":
        raise ValueError(text)
    digits = text[:4] + text[5:7] + text[8:]
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError(text)
    y, m, d = int(text[:4]), int(text[5:7]), int(text[8:])
    if not 1 <= m <= 12:
        raise ValueError(text)
    leap = m == 2 and y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    if not 1 <= d <= _DAYS_IN_MONTH[m - 1] + leap:
        raise ValueError(text)
    return _days_from_civil(y, m, d) * _MS_PER_DAY


def _clock_ms(text: str) -> int:
    """'HH:MM', 'HH:MM:SS' or 'HH:MM:SS.fff' to milliseconds since midnight; ValueError otherwise.

    Fractions finer than a millisecond are truncated: the engine's clock is in milliseconds.
    """
    n = len(text)
    if n < 5 or text[2] != ":":
        raise ValueError(text)
    sec_text, frac = "00", ""
    if n > 5:
        if n < 8 or text[5] != ":":
            raise ValueError(text)
        sec_text = text[6:8]
        if n > 8:
            if text[8] != "." or n == 9 or n > 18:
                raise ValueError(text)
            frac = text[9:]
    digits = text[:2] + text[3:5] + sec_text + frac
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError(text)
    h, m, s = int(text[:2]), int(text[3:5]), int(sec_text)
    if h > 23 or m > 59 or s > 59:
        raise ValueError(text)
    ms = int((frac + "00")[:3]) if frac else 0
    return ((h * 60 + m) * 60 + s) * 1000 + ms


def _csv_time_ms(text: str) -> int:
    """A CSV time field without caching; the fast path in the CSV reader caches the same arithmetic."""
    if text.isascii() and text.isdigit():
        n = int(text)
        return n * 1000 if n < _EPOCH_SECONDS_LIMIT else n
    if len(text) < 16 or text[10] not in " T":
        raise ValueError(text)
    clock = text[11:-1] if text.endswith("Z") else text[11:]
    return _date_ms(text[:10]) + _clock_ms(clock)


_FIELD_KINDS = {
    _date_ms: ("date", " (expected YYYY.MM.DD)"),
    _clock_ms: ("time", " (expected HH:MM:SS[.fff])"),
    _csv_time_ms: (
        "time",
        " (expected YYYY-MM-DD HH:MM[:SS[.fff]], YYYY-MM-DDTHH:MM[:SS[.fff]][Z], YYYY.MM.DD HH:MM[:SS[.fff]]"
        " or an integer epoch in seconds or milliseconds)",
    ),
}


class _Clock:
    """Time texts of one file to epoch milliseconds, remembering what repeats.

    Rows are in time order, so the date of a row is nearly always the previous row's: it is compared, not
    parsed. Whole seconds are cached; a millisecond fraction is added to them.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, int] = {}
        self.last_day: str | None = None  # None, not "": an empty date field must still be parsed and refused
        self.last_day_ms = 0

    def day(self, text: str) -> int:
        if text != self.last_day:
            self.last_day_ms = _date_ms(text)
            self.last_day = text
        return self.last_day_ms

    def time_of_day(self, text: str) -> int:
        if len(text) == 12 and text[8] == "." and text[9:].isdigit():
            sec, ms = text[:8], int(text[9:])
        else:
            sec, ms = text, 0
        sec_ms = self.seconds.get(sec)
        if sec_ms is None:
            sec_ms = self.seconds[sec] = _clock_ms(sec)
        return sec_ms + ms

    def csv_time(self, text: str) -> int:
        if len(text) >= 16 and text[10] in " T":
            clock = text[11:-1] if text[-1] == "Z" else text[11:]
            return self.day(text[:10]) + self.time_of_day(clock)
        return _csv_time_ms(text)


def _optional_number(text: str) -> float:
    """A number field MT5 may leave empty; the reader's fast path treats an empty field as "not given"."""
    return float(text) if text.strip() else 0.0


def _decimals(text: str) -> int:
    k = text.find(".")
    return len(text.rstrip()) - k - 1 if k >= 0 else 0


def _point_from_decimals(digits: int) -> float:
    return float(f"1e-{digits}")  # the double nearest to 10**-digits, as MT5's SymbolInfo point


# ---------------------------------------------------------------------------------------------------------
# MT5 exports


def _read_mt5_ticks(path: str, lines: list[str], offset_ms: int) -> Ticks:
    rows = _Rows(path, lines, "\t", MT5_TICK_HEADER)
    seconds: dict[str, int] = {}
    times: list[int] = []
    bids: list[float] = []
    asks: list[float] = []
    volumes: list[float] = []
    bid = ask = 0.0  # 0 means "not known yet": a real price is positive
    prev_t = -(2**62)
    prev_line = 0
    seen_rows = 0
    # Consecutive ticks nearly always share the date and often the second: remembering the last ones turns
    # the time arithmetic into two string comparisons for most rows.
    last_ds: str | None = None  # None, not "": empty fields must still be parsed and refused
    last_sec: str | None = None
    day_ms = sec_ms = 0
    add_time, add_bid, add_ask, add_volume = times.append, bids.append, asks.append, volumes.append
    for line_no, f in rows:
        ds, ts, bs, as_, ls, vs, fl = f
        try:
            if ds != last_ds:
                day_ms = _date_ms(ds)
                last_ds = ds
            if len(ts) == 12 and ts[8] == "." and ts[9:].isdigit():
                sec, ms = ts[:8], int(ts[9:])
            else:
                sec, ms = ts, 0
            if sec != last_sec:
                sec_ms = seconds.get(sec)
                if sec_ms is None:
                    sec_ms = seconds[sec] = _clock_ms(sec)
                last_sec = sec
            t = day_ms + sec_ms + ms
            b = float(bs) if bs else 0.0
            a = float(as_) if as_ else 0.0
            v = float(vs) if vs else 1.0
            if ls:
                float(ls)
        except (ValueError, OverflowError):
            raise rows.explain(
                line_no,
                [("DATE", ds, _date_ms), ("TIME", ts, _clock_ms), ("BID", bs, _optional_number),
                 ("ASK", as_, _optional_number), ("LAST", ls, _optional_number), ("VOLUME", vs, _optional_number)],
            ) from None
        if fl and not fl.isdigit():
            raise rows.error(line_no, f"FLAGS {fl!r} is not a whole number")
        if t < prev_t:
            raise rows.out_of_order(line_no, prev_line, (0, 1))
        prev_t, prev_line = t, line_no
        seen_rows += 1
        if bs:
            if not 0.0 < b < _INF:
                raise rows.error(line_no, f"BID {bs!r} is not a positive finite price")
            bid = b
        if as_:
            if not 0.0 < a < _INF:
                raise rows.error(line_no, f"ASK {as_!r} is not a positive finite price")
            ask = a
        if not 0.0 <= v < _INF:
            raise rows.error(line_no, f"VOLUME {vs!r} is negative or not finite")
        if not (bs or as_) or bid == 0.0 or ask == 0.0:
            continue  # a LAST/VOLUME-only tick, or a side still unknown: not a quote
        if bid > ask:
            raise rows.error(
                line_no, f"BID {bid!r} is above ASK {ask!r} (after carrying the unchanged side forward)"
            )
        add_time(t)
        add_bid(bid)
        add_ask(ask)
        add_volume(v if v > 0.0 else 1.0)
    if seen_rows == 0:
        raise rows.no_data()
    if not times:
        raise MarketDataError(path, 0, "no row gives both BID and ASK: the file holds no quotes")
    return Ticks(
        times_ms=np.array(times, dtype=np.int64) - offset_ms,
        bid=np.array(bids, dtype=np.float64),
        ask=np.array(asks, dtype=np.float64),
        volume=np.array(volumes, dtype=np.float64),
    )


def _read_mt5_bars(path: str, lines: list[str], offset_ms: int, point: float | None) -> Bars:
    rows = _Rows(path, lines, "\t", MT5_BAR_HEADER)
    clock = _Clock()
    day, time_of_day = clock.day, clock.time_of_day
    out = _BarColumns()
    prev_t = -(2**62)
    prev_line = 0
    digits = 0
    for line_no, f in rows:
        ds, ts, os_, hs, ls, cs, tvs, vs, ss = f
        try:
            t = day(ds) + time_of_day(ts)
            o, h, lo, c = float(os_), float(hs), float(ls), float(cs)
            tv, rv, sp = float(tvs), float(vs), float(ss)
        except (ValueError, OverflowError):
            raise rows.explain(
                line_no,
                [("DATE", ds, _date_ms), ("TIME", ts, _clock_ms), ("OPEN", os_, float), ("HIGH", hs, float),
                 ("LOW", ls, float), ("CLOSE", cs, float), ("TICKVOL", tvs, float), ("VOL", vs, float),
                 ("SPREAD", ss, float)],
            ) from None
        if t <= prev_t:
            raise rows.bar_out_of_order(line_no, prev_line, (0, 1), t == prev_t)
        prev_t, prev_line = t, line_no
        _check_bar(rows, line_no, (("OPEN", os_, o), ("HIGH", hs, h), ("LOW", ls, lo), ("CLOSE", cs, c)),
                   ("TICKVOL", tvs, tv), ("SPREAD", ss, sp))
        if not 0.0 <= rv < _INF:
            raise rows.error(line_no, f"VOL {vs!r} is negative or not finite")
        if point is None:
            digits = max(digits, _decimals(os_), _decimals(hs), _decimals(ls), _decimals(cs))
        out.append(t, o, h, lo, c, tv, sp)
    return out.finish(rows, offset_ms, point if point is not None else _point_from_decimals(digits))


def _check_bar(rows: _Rows, line_no: int, prices, volume, spread) -> None:
    for column, text, value in prices:
        if not 0.0 < value < _INF:
            raise rows.error(line_no, f"{column} {text!r} is not a positive finite price")
    (on, ot, o), (hn, ht, h), (ln, lt, lo), (cn, ct, c) = prices
    if h < lo:
        raise rows.error(line_no, f"{hn} {ht!r} is below {ln} {lt!r}")
    if h < o or h < c:
        name, text = (on, ot) if o > c else (cn, ct)
        raise rows.error(line_no, f"{hn} {ht!r} is below {name} {text!r}")
    if lo > o or lo > c:
        name, text = (on, ot) if o < c else (cn, ct)
        raise rows.error(line_no, f"{ln} {lt!r} is above {name} {text!r}")
    for column, text, value in (volume, spread):
        if not 0.0 <= value < _INF:
            raise rows.error(line_no, f"{column} {text!r} is negative or not finite")


class _BarColumns:
    def __init__(self) -> None:
        self.times: list[int] = []
        self.open: list[float] = []
        self.high: list[float] = []
        self.low: list[float] = []
        self.close: list[float] = []
        self.volume: list[float] = []
        self.spread: list[float] = []

    def append(self, t: int, o: float, h: float, lo: float, c: float, v: float, s: float) -> None:
        self.times.append(t)
        self.open.append(o)
        self.high.append(h)
        self.low.append(lo)
        self.close.append(c)
        self.volume.append(v)
        self.spread.append(s)

    def finish(self, rows: _Rows, offset_ms: int, point: float) -> Bars:
        if not self.times:
            raise rows.no_data()
        times = np.array(self.times, dtype=np.int64) - offset_ms
        timeframe_s = infer_timeframe(times, rows.path)
        _check_bar_boundaries(rows, times, timeframe_s)
        f64 = np.float64
        return Bars(
            times_ms=times,
            open=np.array(self.open, dtype=f64),
            high=np.array(self.high, dtype=f64),
            low=np.array(self.low, dtype=f64),
            close=np.array(self.close, dtype=f64),
            volume=np.array(self.volume, dtype=f64),
            spread_points=np.array(self.spread, dtype=f64),
            timeframe_s=timeframe_s,
            point=point,
        )


def _check_bar_boundaries(rows: _Rows, times: np.ndarray, timeframe_s: int) -> None:
    # A bar that does not open on its timeframe's UTC boundary cannot be rebuilt from ticks into the same
    # bar: the usual cause is a wrong UTC offset (a half-hour one on H1) or bars of mixed timeframes.
    off = np.flatnonzero(times % (timeframe_s * 1000))
    if off.size:
        # Bar files skip no rows and allow blank lines only at the end, so data row i is on line i + 2.
        line = int(off[0]) + 2
        time_columns = (0, 1) if rows.separator == "\t" else (rows.columns.index("time"),)
        raise rows.error(
            line,
            f"bar time {rows.time_text(line, time_columns)!r} does not start a {TIMEFRAME_LABELS[timeframe_s]}"
            f" bar in UTC (bars are {timeframe_s} s apart; check the UTC offset and that the file holds one"
            " timeframe)",
        )


# ---------------------------------------------------------------------------------------------------------
# Plain CSV


def _read_csv(path: str, lines: list[str], header: str, offset_ms: int, point: float | None) -> Ticks | Bars:
    names = tuple(c.strip().lower() for c in header.split(","))
    seen: set[str] = set()
    repeated = [n for n in names if n in seen or seen.add(n)]
    if repeated:
        raise MarketDataError(path, 1, f"column {repeated[0]!r} appears more than once in the header")
    given = set(names)
    if given & {"bid", "ask"}:
        required, optional, kind = CSV_TICK_COLUMNS, CSV_TICK_OPTIONAL, "tick"
    elif given & {"open", "high", "low", "close"}:
        required, optional, kind = CSV_BAR_COLUMNS, CSV_BAR_OPTIONAL, "bar"
    else:
        raise MarketDataError(
            path, 1, f"unrecognised header {_shorten(header)!r}; accepted headers: {ACCEPTED_HEADERS}"
        )
    accepted = ",".join(required) + "".join(f"[,{o}]" for o in optional)
    missing = [c for c in required if c not in given]
    if missing:
        raise MarketDataError(
            path, 1, f"a CSV {kind} file needs the column(s) {', '.join(missing)}; it must have exactly {accepted}"
        )
    extra = [n for n in names if n not in required and n not in optional]
    if extra:
        raise MarketDataError(
            path, 1, f"unexpected column(s) {', '.join(map(repr, extra))}; a CSV {kind} file has exactly {accepted}"
        )
    if kind == "tick":
        return _read_csv_ticks(path, lines, names, offset_ms)
    return replace(_read_csv_bars(path, lines, names, offset_ms, point), has_spread="spread" in names)


def _read_csv_ticks(path: str, lines: list[str], names: tuple[str, ...], offset_ms: int) -> Ticks:
    rows = _Rows(path, lines, ",", names)
    csv_time = _Clock().csv_time
    it, ib, ia = names.index("time"), names.index("bid"), names.index("ask")
    iv = names.index("volume") if "volume" in names else -1
    times: list[int] = []
    bids: list[float] = []
    asks: list[float] = []
    volumes: list[float] = []
    prev_t = -(2**62)
    prev_line = 0
    for line_no, f in rows:
        ts, bs, as_ = f[it].strip(), f[ib], f[ia]
        vs = f[iv] if iv >= 0 else ""
        try:
            t = csv_time(ts)
            b = float(bs)
            a = float(as_)
            v = float(vs) if vs.strip() else 1.0
        except (ValueError, OverflowError):
            raise rows.explain(
                line_no,
                [("time", ts, _csv_time_ms), ("bid", bs, float), ("ask", as_, float), ("volume", vs, _optional_number)],
            ) from None
        if t < prev_t:
            raise rows.out_of_order(line_no, prev_line, (it,))
        prev_t, prev_line = t, line_no
        if not 0.0 < b < _INF:
            raise rows.error(line_no, f"bid {bs!r} is not a positive finite price")
        if not 0.0 < a < _INF:
            raise rows.error(line_no, f"ask {as_!r} is not a positive finite price")
        if b > a:
            raise rows.error(line_no, f"bid {bs!r} is above ask {as_!r}")
        if not 0.0 <= v < _INF:
            raise rows.error(line_no, f"volume {vs!r} is negative or not finite")
        times.append(t)
        bids.append(b)
        asks.append(a)
        volumes.append(v if v > 0.0 else 1.0)
    if not times:
        raise rows.no_data()
    return Ticks(
        times_ms=np.array(times, dtype=np.int64) - offset_ms,
        bid=np.array(bids, dtype=np.float64),
        ask=np.array(asks, dtype=np.float64),
        volume=np.array(volumes, dtype=np.float64),
    )


def _read_csv_bars(
    path: str, lines: list[str], names: tuple[str, ...], offset_ms: int, point: float | None
) -> Bars:
    rows = _Rows(path, lines, ",", names)
    csv_time = _Clock().csv_time
    it, io, ih, il, ic, iv = (names.index(c) for c in CSV_BAR_COLUMNS)
    isp = names.index("spread") if "spread" in names else -1
    out = _BarColumns()
    prev_t = -(2**62)
    prev_line = 0
    digits = 0
    for line_no, f in rows:
        ts = f[it].strip()
        os_, hs, ls, cs, vs = f[io].strip(), f[ih].strip(), f[il].strip(), f[ic].strip(), f[iv]
        ss = f[isp] if isp >= 0 else "0"
        try:
            t = csv_time(ts)
            o, h, lo, c = float(os_), float(hs), float(ls), float(cs)
            v, sp = float(vs), float(ss)
        except (ValueError, OverflowError):
            raise rows.explain(
                line_no,
                [("time", ts, _csv_time_ms), ("open", os_, float), ("high", hs, float), ("low", ls, float),
                 ("close", cs, float), ("volume", vs, float), ("spread", ss, float)],
            ) from None
        if t <= prev_t:
            raise rows.bar_out_of_order(line_no, prev_line, (it,), t == prev_t)
        prev_t, prev_line = t, line_no
        _check_bar(rows, line_no, (("open", os_, o), ("high", hs, h), ("low", ls, lo), ("close", cs, c)),
                   ("volume", vs, v), ("spread", ss, sp))
        if point is None:
            digits = max(digits, _decimals(os_), _decimals(hs), _decimals(ls), _decimals(cs))
        out.append(t, o, h, lo, c, v, sp)
    return out.finish(rows, offset_ms, point if point is not None else _point_from_decimals(digits))


# ---------------------------------------------------------------------------------------------------------
# Timeframes and bar expansion


def infer_timeframe(times_ms: np.ndarray, path: PathLike) -> int:
    """The bars' timeframe in seconds: the most common positive gap between consecutive bar times.

    Weekends and quiet hours leave longer gaps, but the bar period is by far the most frequent one. Only the
    engine's timeframes are accepted: 60, 300, 900 and 3600 s. ``path`` names the file in the error.
    """
    t = np.asarray(times_ms, dtype=np.int64)
    gaps = np.diff(t)
    gaps = gaps[gaps > 0]
    supported = ", ".join(f"{TIMEFRAME_LABELS[s]} ({s} s)" for s in SUPPORTED_TIMEFRAMES_S)
    if gaps.size == 0:
        raise MarketDataError(
            path, 0, f"cannot infer the timeframe from {t.size} bar time(s): at least two different bar times"
            f" are needed; supported timeframes: {supported}"
        )
    values, counts = np.unique(gaps, return_counts=True)
    gap_ms = int(values[int(np.argmax(counts))])  # on a tie the shortest gap, np.unique sorts ascending
    if gap_ms % 1000 == 0 and gap_ms // 1000 in SUPPORTED_TIMEFRAMES_S:
        return gap_ms // 1000
    raise MarketDataError(
        path, 0, f"the most common gap between bars is {gap_ms / 1000:g} s, which is not a supported"
        f" timeframe; supported timeframes: {supported}"
    )


def expand_bars_to_ticks(bars: Bars) -> Ticks:
    """Four ticks per bar, inside the bar's own period P = timeframe_s * 1000 ms.

    Each bar becomes: the open at the bar's start, the extreme nearer to the open at start + P/4, the other
    extreme at start + P/2 and the close at start + 3P/4. When the high and the low are equally far from the
    open, the path that ends shorter is taken: low first when close >= open, high first when close < open.
    Bid is the price, ask is bid + spread_points * point, and each tick carries a quarter of the bar's volume.

    Bars rebuilt on the input's own timeframe from these ticks (first bid, highest bid, lowest bid, last bid
    and summed volume per period) equal the input bars exactly. The volume sum is exact whenever the volume is
    a whole number below 2**51, as tick volumes are; a fractional real volume may differ in its last bit.
    """
    period = int(bars.timeframe_s) * 1000
    times = (bars.times_ms.astype(np.int64)[:, None] + np.array([0, period // 4, period // 2, 3 * period // 4],
                                                                dtype=np.int64)).ravel()
    o, h, lo, c = (np.asarray(a, dtype=np.float64) for a in (bars.open, bars.high, bars.low, bars.close))
    up_dist, down_dist = np.abs(h - o), np.abs(lo - o)
    high_first = (up_dist < down_dist) | ((up_dist == down_dist) & (c < o))
    first = np.where(high_first, h, lo)
    second = np.where(high_first, lo, h)
    bid = np.stack([o, first, second, c], axis=1).ravel()
    spread = np.asarray(bars.spread_points, dtype=np.float64) * float(bars.point)
    ask = bid + np.repeat(spread, 4)
    volume = np.repeat(np.asarray(bars.volume, dtype=np.float64) / 4.0, 4)
    return Ticks(times_ms=times, bid=bid, ask=ask, volume=volume)
