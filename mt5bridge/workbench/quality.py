"""What a price history can honestly carry, and the "history quality" a report states, as MT5's tester does.

Three things decide whether a result computed from a file can be trusted, and none of them is assumed:

- **Time.** MT5 exports are in the broker's server time. Such a file is read only with a stated clock: a fixed
  ``--utc-offset`` or a named rule (``--server-time ny-close``: UTC+2, UTC+3 while New York is on summer time,
  FTMO's servers and every "New York close" broker), which gives the right offset for each date.
- **Spread.** Ticks carry their own. A bar file carries it in a spread column; without one (or with one that is
  0 on every bar) the spread must come from the spec file or an option, else the file is refused.
- **Timeframes.** Bars are expanded to four ticks each; they rebuild their own timeframe and the longer ones,
  never the shorter ones nor the tick level. A run whose model or decision rules read what the bars cannot
  rebuild is refused by name unless it is explicitly allowed, and then its report says what was modelled.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import numpy as np

from mt5bridge.core.catalog import FEATURE_INDEX, FEATURES, TIMEFRAMES
from mt5bridge.market.readers import (
    MT5_BAR_EXPORT,
    MT5_TICK_EXPORT,
    TIMEFRAME_LABELS,
    Bars,
    Ticks,
    read_market_file,
)

MS_PER_HOUR = 3_600_000
SERVER_TIME_RULES = {
    "ny-close": "UTC+2, UTC+3 while New York is on summer time (FTMO's servers, \"New York close\" brokers)",
}
_TIMEFRAME_SECONDS = dict(TIMEFRAMES)  # "m1" -> 60, ...

# What the decision rules read whatever the model (ext/decision.pxi, manage.pxi, sizing.pxi, book.pxi), by the
# timeframe it is built on: (timeframe, what reads it).
RULE_NEEDS: tuple[tuple[str, str], ...] = (
    ("m15", "the M15 ATR (stop and target distance, sizing, trailing stop) and the M15 volatility and exit tests"),
    ("h1", "the H1 trend filter, sizing and exit tests"),
    ("tick", "the abnormal-spread filter (spread_ratio_1000, over the last 1,000 ticks)"),
)

STOP_FILL_RULE = ("a stop or target reached between two ticks of one expanded bar fills at its level (the price "
                  "moved through it); one a quote jumps past by more than the spread (a bar's open, a gap) fills "
                  "at the quote")


class HistoryError(ValueError):
    """A history that cannot be used as given, with the file and what to give instead."""


# --- time -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerClock:
    """How a file's times become UTC: ``offset_hours`` fixed, or a named ``rule`` (SERVER_TIME_RULES)."""

    offset_hours: float | None = None
    rule: str | None = None

    def describe(self) -> str:
        if self.rule:
            return f"server time, {self.rule}: {SERVER_TIME_RULES[self.rule]}"
        if not self.offset_hours:
            return "UTC"
        return f"server time, UTC{self.offset_hours:+g} h all year"


def server_clock(utc_offset_hours: float | None, server_time: str | None) -> ServerClock | None:
    """The clock the options name, or None when neither was given."""
    if server_time is not None:
        if utc_offset_hours is not None:
            raise HistoryError("give --server-time or --utc-offset, not both")
        rule = server_time.strip().lower()
        if rule not in SERVER_TIME_RULES:
            raise HistoryError(f"--server-time {server_time!r}: use one of {', '.join(SERVER_TIME_RULES)} "
                               "(or --utc-offset HOURS for a server whose offset never changes)")
        return ServerClock(rule=rule)
    if utc_offset_hours is None:
        return None
    if not np.isfinite(utc_offset_hours) or abs(utc_offset_hours) > 24:
        raise HistoryError(f"--utc-offset {utc_offset_hours:g} hours is not between -24 and 24")
    return ServerClock(offset_hours=float(utc_offset_hours))


def ny_close_to_utc(server_ms: np.ndarray) -> np.ndarray:
    """Server times of a "New York close" server (UTC+2, UTC+3 while New York is on summer time) as UTC.

    The offset is decided per hour of server time by the engine's own US summer-time rule; the clocks change at
    whole hours on a Sunday, when markets are closed. The one server hour that happens twice (November) is read
    as its first occurrence.
    """
    from mt5bridge.core._engine import new_york_offset_minutes

    t = np.asarray(server_ms, dtype=np.int64)
    if t.size == 0:
        return t.copy()
    hours = t // MS_PER_HOUR
    starts = np.r_[0, np.flatnonzero(np.diff(hours)) + 1]   # times are in file order; one look-up per run
    offsets = np.array([3 * MS_PER_HOUR if new_york_offset_minutes(int(h * MS_PER_HOUR - 3 * MS_PER_HOUR)) == -240
                        else 2 * MS_PER_HOUR for h in hours[starts].tolist()], dtype=np.int64)
    return t - np.repeat(offsets, np.diff(np.r_[starts, t.size]))


def crosses_us_clock_change(start_ms: int, end_ms: int) -> bool:
    """Whether New York's clock changes between two UTC times (looked at once a day: changes are months apart)."""
    from mt5bridge.core._engine import new_york_offset_minutes

    first = new_york_offset_minutes(start_ms)
    return any(new_york_offset_minutes(t) != first for t in (*range(start_ms, end_ms, 86_400_000), end_ms))


# --- what a history carries ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryQuality:
    """What one symbol's history is made of, for the report's "history quality"."""

    source: str
    kind: str                    # "ticks", "bars" or "synthetic"
    source_format: str = ""      # MT5 tick export, MT5 bar export, CSV
    bar_timeframe_s: int = 0     # the bars' timeframe; 0 for ticks
    spread: str = "the file's bid and ask"
    server_time: str = "UTC"
    allow_expanded: bool = False  # the trader asked to run on expanded bars (--allow-expanded-bars)

    @property
    def real_timeframes(self) -> list[str]:
        return [TIMEFRAME_LABELS[s] for _, s in TIMEFRAMES if s >= self.bar_timeframe_s]

    @property
    def modelled(self) -> list[str]:
        """What the engine builds from made-up ticks: empty for ticks."""
        if self.kind != "bars":
            return []
        return ["tick level"] + [TIMEFRAME_LABELS[s] for _, s in TIMEFRAMES if s < self.bar_timeframe_s]

    @property
    def summary(self) -> str:
        if self.kind == "synthetic":
            return "synthetic ticks"
        if self.kind == "ticks":
            return "real ticks"
        tf = TIMEFRAME_LABELS[self.bar_timeframe_s]
        return f"{tf} bars expanded to 4 ticks each: {', '.join(self.modelled)} modelled"

    def as_dict(self) -> dict:
        return {
            "source": self.source, "data": self.summary, "format": self.source_format or None,
            "timeframe": TIMEFRAME_LABELS.get(self.bar_timeframe_s), "real_timeframes": self.real_timeframes,
            "modelled": self.modelled, "spread": self.spread, "time": self.server_time,
        }


def read_history(path: str | os.PathLike, *, clock: ServerClock | None, point: float | None = None,
                 spread_points: float | None = None, spread_from: str = "--spread-points",
                 allow_expanded: bool = False) -> tuple[Ticks | Bars, HistoryQuality]:
    """Read a price file with a stated clock and a known spread, or say by name what is missing.

    ``spread_points`` (from ``spread_from``: the option or the spec file that gave it) is the spread of a bar
    file that has none of its own; it never replaces a spread the file carries.
    """
    offset = clock.offset_hours if clock is not None and clock.offset_hours else 0.0
    data = read_market_file(path, utc_offset_hours=offset, point=point)
    if data.source_format in (MT5_TICK_EXPORT, MT5_BAR_EXPORT) and clock is None:
        raise HistoryError(
            f"{path} is an {data.source_format}, whose times are the broker's server time: say which clock it"
            " is in, with --server-time ny-close for FTMO and every server at UTC+2, UTC+3 in US summer time"
            " (the right offset for each date), or --utc-offset HOURS for a server whose offset never changes"
            " (0 if the export is in UTC)")
    if clock is not None and clock.rule == "ny-close":
        data = _to_utc(data, path)
    quality = HistoryQuality(source=os.fspath(path), kind="bars" if isinstance(data, Bars) else "ticks",
                             source_format=data.source_format,
                             server_time=clock.describe() if clock is not None else "UTC",
                             allow_expanded=allow_expanded)
    if isinstance(data, Bars):
        data, spread = _bar_spread(data, path, spread_points, spread_from)
        quality = replace(quality, bar_timeframe_s=int(data.timeframe_s), spread=spread)
    elif len(data) and np.array_equal(data.ask, data.bid):
        data, spread = _tick_spread(data, path, spread_points, spread_from, point)
        quality = replace(quality, spread=spread)
    return data, quality


def _tick_spread(ticks: Ticks, path, spread_points: float | None, spread_from: str,
                 point: float | None) -> tuple[Ticks, str]:
    # Ticks whose ask is the bid on every row (a price series saved as both columns) carry no spread either.
    if spread_points is None:
        raise HistoryError(
            f"{path}: the ask equals the bid on every tick, so the file carries no spread: replayed as it is, every"
            " fill would be at zero spread. Give --spread-points POINTS (the symbol's typical spread, in points),"
            " or spread_points in the symbol's table of the --spec file")
    if not (np.isfinite(spread_points) and spread_points >= 0):
        raise HistoryError(f"{spread_from} {spread_points!r}: the spread must be a number of points >= 0")
    from mt5bridge.simulator import price_digits

    point = point or 10.0 ** -price_digits(ticks.bid)
    ask = ticks.bid + float(spread_points) * point
    return replace(ticks, ask=ask), f"{spread_points:g} points on every tick, from {spread_from}"


def _to_utc(data: Ticks | Bars, path) -> Ticks | Bars:
    times = ny_close_to_utc(data.times_ms)
    step = np.diff(times)
    bad = np.flatnonzero(step <= 0 if isinstance(data, Bars) else step < 0)
    if bad.size:
        raise HistoryError(f"{path}: server time {int(data.times_ms[bad[0] + 1])} ms comes before the one before it"
                           " once read as UTC by --server-time ny-close: the file's clock does not follow New York's"
                           " summer time; give --utc-offset HOURS")
    return replace(data, times_ms=times)


def _bar_spread(bars: Bars, path, spread_points: float | None, spread_from: str) -> tuple[Bars, str]:
    spreads = np.asarray(bars.spread_points, dtype=np.float64)
    if bars.has_spread and spreads.size and spreads.any():
        return bars, f"the file's spread column (median {float(np.median(spreads)):g} points)"
    if spread_points is None:
        why = "its SPREAD column is 0 on every bar" if bars.has_spread else "it has no spread column"
        raise HistoryError(
            f"{path} holds bars without a spread ({why}): replayed as it is, every fill would be at zero spread."
            " Give --spread-points POINTS (the symbol's typical spread, in points), or spread_points in the"
            " symbol's table of the --spec file (mt5bridge history --spec-out writes it)")
    if not (np.isfinite(spread_points) and spread_points >= 0):
        raise HistoryError(f"{spread_from} {spread_points!r}: the spread must be a number of points >= 0")
    filled = replace(bars, spread_points=np.full(len(bars), float(spread_points)), has_spread=True)
    return filled, f"{spread_points:g} points on every bar, from {spread_from}"


# --- what a run needs ------------------------------------------------------------------------------------------


def cannot_rebuild(bar_timeframe_s: int, names) -> list[str]:
    """The features among ``names`` that bars of ``bar_timeframe_s`` cannot rebuild: those on a shorter timeframe,
    the tick-level ones, and the multi-timeframe ones (they read M1 bars) unless the bars are M1."""
    out = []
    for name in names:
        tf = FEATURES[FEATURE_INDEX[name]].timeframe
        shorter = tf in _TIMEFRAME_SECONDS and _TIMEFRAME_SECONDS[tf] < bar_timeframe_s
        if shorter or tf == "tick" or (tf == "all" and bar_timeframe_s > 60):
            out.append(name)
    return out


def model_features(model) -> list[str]:
    """The features a direction model reads: its sub-models' weighted features and its market score's terms."""
    from mt5bridge.core.model import load_model

    model = load_model(model)
    names = [n for sub in model.submodels.values() if sub.weight > 0 for n, w in sub.weights.items() if w]
    names += [t.feature for t in model.score.terms if model.score.group_weights[FEATURES[FEATURE_INDEX[
        t.feature]].group] > 0]
    return list(dict.fromkeys(names))


def rules_cannot_rebuild(bar_timeframe_s: int) -> list[str]:
    """What the decision rules read that bars of ``bar_timeframe_s`` cannot rebuild, in words."""
    return [what for tf, what in RULE_NEEDS
            if tf == "tick" or _TIMEFRAME_SECONDS[tf] < bar_timeframe_s]


def expanded_bars_problem(quality: HistoryQuality, model=None,
                          labelled: str = "with the report saying at the top what was modelled") -> str | None:
    """Why a run on these bars would trade on made-up prices, or None when it would not. ``model`` is the model
    file (None: the shipped one); ``labelled`` says how a run allowed anyway is marked."""
    if quality.kind != "bars":
        return None
    tf = TIMEFRAME_LABELS[quality.bar_timeframe_s]
    rules = rules_cannot_rebuild(quality.bar_timeframe_s)
    features = cannot_rebuild(quality.bar_timeframe_s, model_features(model))
    if not rules and not features:
        return None
    needs = []
    if rules:
        needs.append("the decision rules read " + "; ".join(rules))
    if features:
        shown = ", ".join(features[:8]) + (f" and {len(features) - 8} more" if len(features) > 8 else "")
        needs.append(f"the model reads {len(features)} feature(s) {tf} bars cannot rebuild: {shown}")
    return (f"{quality.source} holds {tf} bars, expanded to four made-up ticks per bar: they rebuild"
            f" {', '.join(quality.real_timeframes)} but not {', '.join(quality.modelled)}, and "
            + "; ".join(needs) + ". Export ticks (mt5bridge history --ticks, or MT5's tick export), or give"
            f" --allow-expanded-bars to run on them anyway, {labelled}")


def history_entry(qualities: list[HistoryQuality], model=None, notes: list[str] | None = None) -> dict:
    """The report's "history quality": how the prices were made, per symbol, and what was modelled."""
    modelled_features: list[str] = []
    modelled_rules: list[str] = []
    for q in qualities:
        if q.kind == "bars":
            modelled_features += cannot_rebuild(q.bar_timeframe_s, model_features(model))
            modelled_rules += rules_cannot_rebuild(q.bar_timeframe_s)
    kinds = {q.summary for q in qualities}
    return {
        "quality": "; ".join(sorted(kinds)),
        "symbols": [q.as_dict() for q in qualities],
        "modelled_features": list(dict.fromkeys(modelled_features)),
        "modelled_rules": list(dict.fromkeys(modelled_rules)),
        "stop_fill": STOP_FILL_RULE if any(q.kind == "bars" for q in qualities) else
        "a stop or target fills at the first quote that reaches it (at its level within the spread, else at the "
        "quote: a gap)",
        "notes": list(notes or []),
    }


__all__ = ["RULE_NEEDS", "SERVER_TIME_RULES", "STOP_FILL_RULE", "HistoryError", "HistoryQuality", "ServerClock",
           "cannot_rebuild", "crosses_us_clock_change", "expanded_bars_problem", "history_entry", "model_features",
           "ny_close_to_utc", "read_history", "rules_cannot_rebuild", "server_clock"]
