"""No look-ahead, known warm-up: two checks of the features a model trades on (``mt5bridge check-bias``).

**No look-ahead.** The features at a bar, computed from the history cut at that bar (every tick up to the one that
closes it, nothing after), must equal the features the full run had at that bar. A feature that used anything
later (a centred average, a swing confirmed by bars still to come, a scale fitted on the whole file) differs at
some cut. Cut points are sampled (``cuts`` of them, spread evenly, the last bars included) rather than every bar:
each cut is a fresh engine run over the history up to it.

**Warm-up.** The WARMUP message hands the engine a number of closed bars per timeframe. With too few, a feature
built on exponential smoothing (EMA, Wilder's RSI, ATR and ADX) still carries its seed, and differs from the value
a long history gives. For each timeframe and each warm-up length L, the engine is warmed with only the L bars
before a cut and its features of that timeframe are compared with those from all the history before it; the
difference, in units of the feature's ``scale`` (its typical spread, docs/features.md), is measured at every cut.
The warm-up a feature needs is the shortest L from which it stays within the tolerance at every cut.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mt5bridge.core.catalog import FEATURES, TIMEFRAMES
from mt5bridge.market.readers import Bars, Ticks, expand_bars_to_ticks

TIMEFRAME_LABELS = ("M1", "M5", "M15", "H1")
DEFAULT_WARMUPS = (50, 100, 150, 200, 250, 300, 400, 500, 600, 800, 1000, 1500, 2000, 3000)
# What the EA sends at each (re)start by default (InpWarmupM1 ... InpWarmupH1, docs/ea.md) and the least it
# accepts; the protocol's own minimum is 200 closed bars (docs/protocol.md).
EA_WARMUP_DEFAULT = {"M1": 3000, "M5": 2000, "M15": 1000, "H1": 600}
EA_WARMUP_MIN = 300
PROTOCOL_WARMUP_MIN = 200


class BiasError(ValueError):
    """Input the checks cannot run on; the message says what to change."""


# ---- no look-ahead ----------------------------------------------------------------------------------------------


@dataclass
class Leak:
    """A feature whose value at some cut differs from the full run's: it looked ahead."""

    feature: str
    cuts_differing: int
    first_bar_time_ms: int
    full: float | None
    cut: float | None


def compare_at_cuts(full: np.ndarray, at_cut: Callable[[int], np.ndarray], rows: Sequence[int],
                    names: Sequence[str], times_ms: np.ndarray) -> list[Leak]:
    """Each feature (column of ``full``, one row per bar) whose value computed by ``at_cut(row)`` (from the
    history cut at that bar) differs from ``full[row]`` at any of ``rows``. Equal means bit for bit: NaN equals
    NaN (a feature not warm yet is not warm in both)."""
    leaks: dict[int, Leak] = {}
    for row in rows:
        got = np.asarray(at_cut(row), dtype=np.float64)
        want = full[row]
        same = (got == want) | (np.isnan(got) & np.isnan(want))
        for i in np.flatnonzero(~same):
            leak = leaks.get(int(i))
            if leak is None:
                leaks[int(i)] = Leak(names[i], 1, int(times_ms[row]), _finite(want[i]), _finite(got[i]))
            else:
                leak.cuts_differing += 1
    return [leaks[i] for i in sorted(leaks)]


def cut_rows(n_rows: int, cuts: int) -> list[int]:
    """``cuts`` bars spread evenly over ``n_rows``, the last one included."""
    if n_rows <= 0 or cuts <= 0:
        return []
    return sorted({int(round(x)) for x in np.linspace(0, n_rows - 1, min(cuts, n_rows))})


def engine_lookahead(ticks: Ticks, cuts: int, record_tf: int = 0) -> tuple[list[Leak], int, int]:
    """The compiled engine's features checked for look-ahead on ``ticks``: (leaks, bars, cuts made)."""
    from mt5bridge.core.engine import FeatureEngine

    t, bid, ask, vol = (np.ascontiguousarray(a, dtype=dt) for a, dt in
                        ((ticks.times_ms, np.int64), (ticks.bid, np.float64), (ticks.ask, np.float64),
                         (ticks.volume, np.float64)))
    engine = FeatureEngine()
    full = engine.process_ticks(t, bid, ask, vol, record_tf)
    rows = cut_rows(len(full["time"]), cuts)
    # The tick that closed each recorded bar: the first tick of a later period of the recorded timeframe.
    period = (TIMEFRAMES[record_tf][1]) * 1000
    closing = np.searchsorted(t, full["time"] + period, side="left")

    def at_cut(row: int) -> np.ndarray:
        fresh = FeatureEngine()
        j = int(closing[row]) + 1
        fresh.process_ticks(t[:j], bid[:j], ask[:j], vol[:j], record_tf)
        return fresh.features

    names = [f.name for f in FEATURES]
    return compare_at_cuts(full["features"], at_cut, rows, names, full["time"]), len(full["time"]), len(rows)


# ---- warm-up ------------------------------------------------------------------------------------------------------


@dataclass
class WarmupRow:
    feature: str
    timeframe: str
    needed: int | None        # bars of its timeframe; None: not reached within the longest warm-up measured
    worst: dict[int, float | None] = field(default_factory=dict)   # L -> largest |difference| / scale over cuts


def resample(ticks: Ticks, timeframe_s: int) -> Bars:
    """Bars of ``timeframe_s`` from ticks, as the engine builds them: bid prices, summed tick volume."""
    t = np.asarray(ticks.times_ms, dtype=np.int64)
    period = timeframe_s * 1000
    starts = t - t % period
    first = np.flatnonzero(np.r_[True, starts[1:] != starts[:-1]])
    bid = np.asarray(ticks.bid, dtype=np.float64)
    return Bars(times_ms=starts[first], open=bid[first], high=np.maximum.reduceat(bid, first),
                low=np.minimum.reduceat(bid, first), close=bid[np.r_[first[1:] - 1, len(bid) - 1]],
                volume=np.add.reduceat(np.asarray(ticks.volume, dtype=np.float64), first),
                spread_points=np.zeros(len(first)), timeframe_s=timeframe_s, point=1.0)


def _bars_of(data: Ticks | Bars, timeframe_s: int) -> Bars | None:
    """The bars of ``timeframe_s`` the data can build (None for a timeframe shorter than a bar file's own)."""
    if isinstance(data, Bars):
        if timeframe_s < data.timeframe_s:
            return None
        if timeframe_s == data.timeframe_s:
            return data
        return resample(expand_bars_to_ticks(data), timeframe_s)
    return resample(data, timeframe_s)


def _tf_features(tf: int) -> list[int]:
    label = TIMEFRAMES[tf][0]
    return [i for i, f in enumerate(FEATURES) if f.timeframe == label]


def _warm_features(tf: int, bars: Bars, lo: int, hi: int, columns: list[int]) -> np.ndarray:
    """The features of timeframe ``tf`` after warming a fresh engine with bars[lo:hi] (the last one left open,
    as on a chart: the bars before it are the closed history)."""
    from mt5bridge.core.engine import FeatureEngine

    engine = FeatureEngine()
    sl = slice(lo, hi)
    engine.warmup_bars(tf, np.ascontiguousarray(bars.times_ms[sl], dtype=np.int64),
                       *(np.ascontiguousarray(a[sl], dtype=np.float64)
                         for a in (bars.open, bars.high, bars.low, bars.close, bars.volume)))
    return engine.features[columns]


def measure_warmup(data: Ticks | Bars, cuts: int, warmups: Sequence[int], tolerance: float) -> dict[str, Any]:
    """Per timeframe the data can build: each feature's difference against the warm-up length, and the warm-up
    it needs (see the module's docstring)."""
    out: dict[str, Any] = {}
    scales = np.array([f.scale for f in FEATURES])
    for tf, (label, seconds) in enumerate(TIMEFRAMES):
        bars = _bars_of(data, seconds)
        name = TIMEFRAME_LABELS[tf]
        if bars is None:
            out[name] = {"skipped": f"a {data.timeframe_s // 60}-minute bar file cannot rebuild {name} bars"}
            continue
        columns = _tf_features(tf)
        # A cut needs the longest warm-up before it (and one bar after it, left open).
        longest = [w for w in warmups if w + 1 < len(bars)]
        if not longest:
            out[name] = {"skipped": f"only {len(bars)} {name} bars: too few for the shortest warm-up measured"}
            continue
        first_cut = max(longest) + 1
        last = len(bars) - 2
        rows = sorted({int(round(x)) for x in np.linspace(min(first_cut, last), last, max(1, cuts))})
        worst = np.zeros((len(longest), len(columns)))
        for row in rows:
            reference = _warm_features(tf, bars, 0, row + 2, columns)
            for k, w in enumerate(longest):
                got = _warm_features(tf, bars, row + 1 - w, row + 2, columns)
                diff = np.abs(got - reference) / scales[columns]
                # Defined in one and not the other: as far apart as can be.
                diff[np.isnan(got) != np.isnan(reference)] = np.inf
                diff[np.isnan(got) & np.isnan(reference)] = 0.0
                worst[k] = np.maximum(worst[k], diff)
        rows_out = []
        for c, col in enumerate(columns):
            ok = worst[:, c] <= tolerance
            needed = None
            for k in range(len(longest)):
                if ok[k:].all():
                    needed = longest[k]
                    break
            rows_out.append(WarmupRow(FEATURES[col].name, name, needed,
                                      {w: _finite(worst[k, c]) for k, w in enumerate(longest)}))
        reached = [r.needed for r in rows_out]
        need = None if any(n is None for n in reached) else max(reached)
        slowest = max(rows_out, key=lambda r: (r.needed is None, r.needed or 0))
        out[name] = {"bars_available": len(bars), "cuts": len(rows), "warmups": longest, "needed": need,
                     "slowest_feature": slowest.feature, "features": rows_out}
    return out


def synthetic_history(symbol: str, days: int, seed: int, chunk_days: int = 20) -> tuple[Ticks, Bars]:
    """A long synthetic history without holding its every tick: generated ``chunk_days`` at a time, each chunk
    going on from the last one's price, kept as M1 bars. Returns the first chunk's ticks (for the look-ahead
    check) and the M1 bars of the whole history (for the warm-up)."""
    import dataclasses
    import datetime as _dt

    from mt5bridge.market.synthetic import PROFILES, generate_ticks

    profile = PROFILES.get(symbol.upper())
    if profile is None:
        raise BiasError(f"--synthetic {symbol}: no synthetic profile; known: {', '.join(PROFILES)}")
    if days < 1:
        raise BiasError(f"--days must be at least 1, got {days}")
    start = _dt.datetime(2024, 1, 8, tzinfo=_dt.timezone.utc)
    first: Ticks | None = None
    parts: list[Bars] = []
    done = 0
    while done < days:
        n = min(chunk_days, days - done)
        ticks = generate_ticks(symbol, days=n, start=start + _dt.timedelta(days=done), seed=seed + done,
                               profile=profile)
        if first is None:
            first = ticks
        parts.append(resample(ticks, 60))
        profile = dataclasses.replace(profile, price=float((ticks.bid[-1] + ticks.ask[-1]) / 2))
        done += n
    bars = Bars(times_ms=np.concatenate([b.times_ms for b in parts]),
                open=np.concatenate([b.open for b in parts]), high=np.concatenate([b.high for b in parts]),
                low=np.concatenate([b.low for b in parts]), close=np.concatenate([b.close for b in parts]),
                volume=np.concatenate([b.volume for b in parts]), spread_points=np.zeros(sum(len(b) for b in parts)),
                timeframe_s=60, point=1.0)
    assert first is not None
    return first, bars


def first_days(ticks: Ticks, days: float) -> Ticks:
    """The ticks of the first ``days`` days (the look-ahead check runs on these: a cut replays from the start)."""
    t = np.asarray(ticks.times_ms)
    if not len(t):
        return ticks
    end = int(np.searchsorted(t, t[0] + int(days * 86_400_000), side="left"))
    return Ticks(t[:end], ticks.bid[:end], ticks.ask[:end], ticks.volume[:end])


def warmup_verdict(name: str, entry: dict[str, Any]) -> str:
    """Whether what the EA sends by default for ``name`` covers the warm-up measured."""
    if "skipped" in entry:
        return f"{name}: not measured ({entry['skipped']})"
    sent = EA_WARMUP_DEFAULT[name]
    need = entry["needed"]
    if need is None:
        return (f"{name}: not within {max(entry['warmups'])} bars ({entry['slowest_feature']}); the EA sends {sent}: "
                "measure with more history")
    enough = "enough" if sent >= need else "NOT enough"
    return f"{name}: {need} bars needed ({entry['slowest_feature']}); the EA sends {sent} by default: {enough}"


def _finite(x: float) -> float | None:
    """A float for strict JSON: NaN and infinity (not defined, or defined on one side only) are None."""
    x = float(x)
    return x if math.isfinite(x) else None
