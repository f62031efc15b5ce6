"""Benchmark of the compiled feature engine (``mt5bridge.core._engine``): latency, throughput and memory.

Run from the repository root, with the engine built in place::

    python bench/engine.py                # a readable table, then one JSON line
    python bench/engine.py --json         # only the JSON line
    python bench/engine.py --ticks 2000000 --seed 7

Input: a deterministic synthetic EURUSD-like tick series made with numpy (PCG64 seeded with ``--seed``):
a log-normal random walk around 1.0850 (about 0.5 % daily volatility, step size scaled by the time between
ticks), ticks about 1 s apart (exponential arrivals, mean 0.85 s, plus a random 5-90 s gap on 0.4 % of
them), weekends closed (trading runs Sunday 22:00 to Friday 22:00 UTC), a spread of about 0.6-1.5 pips in
whole points with rare 3x widenings, and a tick volume of 1-4. The first 10 trading days (about 830k ticks)
only warm the engine, so that all 147 features are live (``FeatureEngine.is_warm``) before anything is
timed; the ``--ticks`` after them are the measured series.

What is measured, all in one process, one thing at a time:

1. **Per-tick latency** (``ns_per_tick_p50``/``_p99``): ``on_tick`` called from Python on a warm engine,
   each call timed alone with ``time.perf_counter_ns()`` just before and just after it. An empty timing pair
   follows every call in the same loop; the median of those (``timer_overhead_ns``) is subtracted from
   every sample. Only calls that closed no bar (mask 0) count. 300k ticks of the measured series per repetition, 3 repetitions (a fresh warm engine
   each), all samples pooled. The garbage collector is off while timing.
2. **Bar-close latency** (``ns_per_bar_close_p50``/``_p99``): the same method on a warm engine fed one tick
   per minute (random second inside the minute), so that every call closes an M1 bar, every 5th also an M5
   bar, every 15th an M15 bar and every 60th an H1 bar; each call updates the closed timeframes'
   indicators, all 147 features and the market score and direction. 30k calls per repetition, 3
   repetitions (a fresh warm engine each), pooled. The p50/p99 are over all calls;
   ``ns_per_bar_close_m1_only_p50`` is over the calls whose mask is 1 (only M1 closed).
3. **Throughput** (``ticks_per_s``): ``process_ticks`` over the measured series on a warm engine (the loop
   runs in C; one feature row recorded per M1 close), median of 3 runs. ``ticks_per_s_python_loop``: the
   same ticks given to ``on_tick`` one by one in a plain Python ``for`` loop (ticks converted to Python
   floats beforehand, in chunks, outside the timing).
4. **talipp comparison** (``talipp_ratio``): talipp (pure-Python incremental indicators) updating the
   standard indicators the engine keeps per timeframe - EMA(20), EMA(50), EMA(200), RSI(14), ATR(14),
   ATR(50), MACD(12,26,9), BB(20,2), Stoch(14,3,3) (talipp's Stoch(14,3), whose %D is the slow %K, plus
   an SMA(3) of it fed as a listener for the slow %D), ADX(14), CCI(20), Williams %R(14), ROC(10) - on the
   M1 bars of the ticks of section 1 (built with numpy from the bids, as the engine builds them, so the
   values agree with the engine's M1 indicators; warmed on the preceding 400 bars, untimed). One bar's 13
   ``add(...)`` calls are timed together as one sample, with the same timer and overhead correction;
   ``talipp_ns_per_bar`` is the median over 7 repetitions (fresh indicators each) of the per-bar p50. ``talipp_ratio`` =
   ``talipp_ns_per_bar`` / ``ns_per_bar_close_m1_only_p50``. For the same bars, the engine's cost is the
   p50 of the section-1 calls that closed them (median over its repetitions): ``engine_same_bars_ns_p50``
   (every call that closed one of those M1 bars) and ``engine_same_bars_m1_only_ns_p50`` (mask 1 only);
   ``talipp_ratio_same_bars`` uses the latter.
5. **Memory** (``memory_bytes_per_symbol``): the engine keeps only fixed-size C state (bars, indicator
   windows, features, model), so the figure is the growth of the resident set (``/proc/self/statm``) when
   1000 engines are created, divided by 1000, measured first, before the tick arrays exist (freed memory
   would otherwise be reused and hide the growth). ``engine_sizeof_bytes`` is ``sys.getsizeof`` of one
   engine (its C struct, which holds all that state inline); ``tracemalloc_bytes_per_symbol`` is what
   ``tracemalloc`` sees allocated per engine over 100 engines. ``rss_growth_after_2m_ticks_bytes``: resident-set
   growth of a warm engine over ``--ticks`` more ticks (the measured series again, shifted in time), fed
   through ``process_ticks`` in 100k-tick chunks recording H1 rows only, results dropped.

The goals (``goals``) are p50 per tick <= 1000 ns, p50 per bar close <= 5000 ns and a talipp ratio >= 50;
``goals_met`` holds one boolean per goal. The last line printed is always the JSON object.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time

import numpy as np

# The installed package is measured (pip install .), never a source tree beside this script.
from mt5bridge.core.engine import FeatureEngine
from mt5bridge.core.model import load_model

GOALS = {"ns_per_tick_p50": 1000, "ns_per_bar_close_p50": 5000, "talipp_ratio": 50,
         "decision_over_features_ns_p50": 2000}

MS_PER_S = 1000
MS_PER_MIN = 60_000
MS_PER_DAY = 86_400_000
TRADING_WEEK_MS = 5 * MS_PER_DAY  # Sunday 22:00 -> Friday 22:00 UTC
WEEKEND_MS = 2 * MS_PER_DAY
START_MS = 1_793_570_400_000  # 2026-11-01 22:00 UTC, a Sunday: the market opens
WARM_TRADING_DAYS = 10  # 240 H1 bars: more than EMA(200) and every other warm-up needs

TICK_SAMPLES = 300_000  # section 1: calls timed per repetition
TICK_REPS = 3
BAR_SAMPLES = 30_000  # section 2: one tick per minute, per repetition
BAR_REPS = 3
TALIPP_REPS = 7
TALIPP_WARM_BARS = 400
THROUGHPUT_REPS = 3
RSS_CHUNK = 100_000
ENGINES_FOR_MEMORY = 1000


# ---- the synthetic market ---------------------------------------------------------------------------------


class Series:
    """Tick arrays (times int64 ms, bid, ask, volume float64)."""

    def __init__(self, t: np.ndarray, bid: np.ndarray, ask: np.ndarray, vol: np.ndarray):
        self.t, self.bid, self.ask, self.vol = t, bid, ask, vol

    def __len__(self) -> int:
        return int(self.t.size)

    def slice(self, lo: int, hi: int) -> Series:
        return Series(self.t[lo:hi], self.bid[lo:hi], self.ask[lo:hi], self.vol[lo:hi])

    def shifted(self, dt_ms: int) -> Series:
        return Series(self.t + dt_ms, self.bid, self.ask, self.vol)


def make_ticks(n_after_warm: int, seed: int) -> tuple[Series, int]:
    """The warm-up days plus ``n_after_warm`` ticks; returns the series and the index of the first measured tick."""
    rng = np.random.default_rng(seed)
    mean_dt_s = 0.85 + 0.004 * 47.5
    n_warm_est = int(WARM_TRADING_DAYS * 86_400 / mean_dt_s * 1.05) + 10_000
    n = n_warm_est + n_after_warm
    dt_s = rng.exponential(0.85, n)
    gaps = rng.random(n) < 0.004
    dt_s[gaps] += rng.uniform(5.0, 90.0, int(gaps.sum()))
    dt_ms = np.maximum(1, np.rint(dt_s * MS_PER_S)).astype(np.int64)
    dt_ms[0] = 0
    trading_ms = np.cumsum(dt_ms)
    t = START_MS + trading_ms + (trading_ms // TRADING_WEEK_MS) * WEEKEND_MS

    # Mid: random walk in log price, ~0.5 % a day, each step scaled by the time since the last tick.
    sigma_per_s = 0.005 / np.sqrt(86_400.0)
    steps = sigma_per_s * np.sqrt(np.maximum(dt_ms, 50) / MS_PER_S) * rng.standard_t(5, n) * np.sqrt(3 / 5)
    mid = 1.0850 * np.exp(np.cumsum(steps))

    # Spread in points (1 point = 0.00001): 6 + gamma noise, rare 3x widenings.
    spread_pts = 6.0 + rng.gamma(2.0, 1.5, n)
    spread_pts[rng.random(n) < 0.002] *= 3.0
    spread_pts = np.rint(spread_pts)
    bid_pts = np.rint(mid * 1e5 - spread_pts / 2)
    bid = np.round(bid_pts / 1e5, 5)
    ask = np.round((bid_pts + spread_pts) / 1e5, 5)
    vol = rng.integers(1, 5, n).astype(np.float64)

    warm_end = int(np.searchsorted(trading_ms, WARM_TRADING_DAYS * MS_PER_DAY))
    series = Series(t, bid, ask, vol)
    return series.slice(0, warm_end + n_after_warm), warm_end


def minute_ticks(n: int, after_ms: int, seed: int) -> Series:
    """One tick per minute from the minute after ``after_ms``, at a random second inside each minute."""
    rng = np.random.default_rng(seed + 1)
    first_minute = after_ms // MS_PER_MIN + 1
    t = (first_minute + np.arange(n, dtype=np.int64)) * MS_PER_MIN + rng.integers(0, MS_PER_MIN, n)
    mid = 1.0850 * np.exp(np.cumsum(0.005 / np.sqrt(1440.0) * rng.standard_normal(n)))
    spread_pts = np.rint(6.0 + rng.gamma(2.0, 1.5, n))
    bid_pts = np.rint(mid * 1e5 - spread_pts / 2)
    return Series(
        t,
        np.round(bid_pts / 1e5, 5),
        np.round((bid_pts + spread_pts) / 1e5, 5),
        rng.integers(1, 5, n).astype(np.float64),
    )


def m1_bars(s: Series) -> dict[str, np.ndarray]:
    """OHLCV of each minute that has ticks, from the bids (as the engine builds its bars)."""
    minute = s.t // MS_PER_MIN
    starts = np.flatnonzero(np.r_[True, minute[1:] != minute[:-1]])
    ends = np.r_[starts[1:], minute.size] - 1
    return {
        "minute": minute[starts],
        "open": s.bid[starts],
        "high": np.maximum.reduceat(s.bid, starts),
        "low": np.minimum.reduceat(s.bid, starts),
        "close": s.bid[ends],
        "volume": np.add.reduceat(s.vol, starts),
    }


# ---- measuring --------------------------------------------------------------------------------------------


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def pct(a: np.ndarray, q: float) -> float:
    return float(np.percentile(a, q)) if a.size else float("nan")


def warm_engine(model, warm: Series) -> FeatureEngine:
    e = FeatureEngine(model)
    e.process_ticks(warm.t, warm.bid, warm.ask, warm.vol, 3, False)
    if not e.is_warm:
        cold = int((e.warm == 0).sum())
        raise RuntimeError(f"the engine is not warm after the warm-up ticks ({cold} features cold)")
    return e


def time_calls(call, args: list[tuple], after=None) -> tuple[np.ndarray, list, float]:
    """Each ``call(*args[i])`` timed alone: ns per call (timer overhead subtracted), the results, the overhead.

    An empty timing pair follows every call in the same loop; the median of those is the overhead.
    ``after(result)``, if given, runs outside the timing.
    """
    n = len(args)
    dur = [0] * n
    empty = [0] * n
    results = [None] * n
    pc = time.perf_counter_ns
    gc.collect()
    gc.disable()
    try:
        for i in range(n):
            a = args[i]
            t0 = pc()
            r = call(*a)
            t1 = pc()
            t2 = pc()
            dur[i] = t1 - t0
            empty[i] = t2 - t1
            results[i] = r
            if after is not None:
                after(r)
    finally:
        gc.enable()
    overhead = float(np.median(empty))
    return np.asarray(dur, dtype=np.float64) - overhead, results, overhead


def time_on_tick(e: FeatureEngine, s: Series) -> tuple[np.ndarray, np.ndarray, float]:
    """Each on_tick call timed alone: ns per call, the mask of bars each closed, the timer overhead."""
    args = list(zip(s.t.tolist(), s.bid.tolist(), s.ask.tolist(), s.vol.tolist()))
    dur, masks, overhead = time_calls(e.on_tick, args)
    return dur, np.asarray(masks, dtype=np.int64), overhead


# ---- the sections -----------------------------------------------------------------------------------------


def bench_ticks(model, warm: Series, measured: Series) -> dict:
    seg = measured.slice(0, TICK_SAMPLES)
    pooled = []
    same_all, same_m1, overheads = [], [], []
    for _ in range(TICK_REPS):
        e = warm_engine(model, warm)
        dur, masks, overhead = time_on_tick(e, seg)
        overheads.append(overhead)
        pooled.append(dur[masks == 0])
        same_all.append(np.median(dur[(masks & 1) != 0]))
        same_m1.append(np.median(dur[masks == 1]))
        bars_closed = int(((masks & 1) != 0).sum())
        del e
    no_close = np.concatenate(pooled)
    return {
        "ns_per_tick_p50": pct(no_close, 50),
        "ns_per_tick_p99": pct(no_close, 99),
        "ns_per_tick_mean": float(no_close.mean()),
        "ns_per_tick_samples": int(no_close.size),
        "timer_overhead_ns": float(np.median(overheads)),
        "engine_same_bars_ns_p50": float(np.median(same_all)),
        "engine_same_bars_m1_only_ns_p50": float(np.median(same_m1)),
        "same_bars_count": bars_closed,
    }


def bench_bar_close(model, warm: Series, seed: int) -> dict:
    durs, all_masks = [], []
    for _ in range(BAR_REPS):
        e = warm_engine(model, warm)
        s = minute_ticks(BAR_SAMPLES, e.last_time_ms, seed)
        d, m, _ = time_on_tick(e, s)
        durs.append(d)
        all_masks.append(m)
        del e
    dur, masks = np.concatenate(durs), np.concatenate(all_masks)
    if not np.all(masks & 1):
        raise RuntimeError("a one-tick-per-minute call did not close an M1 bar")
    by_mask = {}
    for label, sel in (("m1_only", masks == 1), ("m5", (masks & 2) != 0), ("m15", (masks & 4) != 0),
                       ("h1", (masks & 8) != 0)):
        by_mask[label] = (pct(dur[sel], 50), int(sel.sum()))
    m1 = dur[masks == 1]
    return {
        "ns_per_bar_close_p50": pct(dur, 50),
        "ns_per_bar_close_p99": pct(dur, 99),
        "ns_per_bar_close_samples": int(dur.size),
        "ns_per_bar_close_m1_only_p50": pct(m1, 50),
        "ns_per_bar_close_m1_only_p99": pct(m1, 99),
        "ns_per_bar_close_m1_only_samples": int(m1.size),
        "ns_per_bar_close_with_m5_p50": by_mask["m5"][0],
        "ns_per_bar_close_with_m15_p50": by_mask["m15"][0],
        "ns_per_bar_close_with_h1_p50": by_mask["h1"][0],
    }


def bench_throughput(model, warm: Series, measured: Series) -> tuple[dict, FeatureEngine]:
    rates = []
    e = None
    for _ in range(THROUGHPUT_REPS):
        e = warm_engine(model, warm)
        gc.collect()
        gc.disable()
        try:
            t0 = time.perf_counter_ns()
            res = e.process_ticks(measured.t, measured.bid, measured.ask, measured.vol, 0, False)
            t1 = time.perf_counter_ns()
        finally:
            gc.enable()
        rows = int(res["time"].size)
        del res
        rates.append(len(measured) / ((t1 - t0) / 1e9))

    # The same ticks through on_tick in a Python loop; Python floats made beforehand, chunk by chunk.
    ep = warm_engine(model, warm)
    on_tick = ep.on_tick
    total_ns = 0
    chunk = 200_000
    for lo in range(0, len(measured), chunk):
        c = measured.slice(lo, lo + chunk)
        ts, bids, asks, vols = c.t.tolist(), c.bid.tolist(), c.ask.tolist(), c.vol.tolist()
        gc.collect()
        gc.disable()
        try:
            t0 = time.perf_counter_ns()
            for t, b, a, v in zip(ts, bids, asks, vols):
                on_tick(t, b, a, v)
            t1 = time.perf_counter_ns()
        finally:
            gc.enable()
        total_ns += t1 - t0
        del ts, bids, asks, vols
    del ep, on_tick
    return {
        "ticks_per_s": float(np.median(rates)),
        "ticks_per_s_runs": [round(r) for r in rates],
        "ticks_per_s_python_loop": len(measured) / (total_ns / 1e9),
        "throughput_ticks": len(measured),
        "throughput_m1_rows": rows,
    }, e


def bench_talipp(all_ticks: Series, warm_end: int) -> dict:
    from talipp.indicators import (
        ADX,
        ATR,
        BB,
        CCI,
        EMA,
        MACD,
        ROC,
        RSI,
        SMA,
        Stoch,
        Williams,
    )
    from talipp.ohlcv import OHLCV

    # M1 bars from the end of the warm-up through section 1's ticks.
    lo = max(0, warm_end - (TALIPP_WARM_BARS + 20) * 80)
    bars = m1_bars(all_ticks.slice(lo, warm_end + TICK_SAMPLES))
    first_measured_minute = int(all_ticks.t[warm_end] // MS_PER_MIN)
    # Bars closed by section 1's calls: the warm-up's last bar through the one before the last (still open).
    k0 = int(np.searchsorted(bars["minute"], first_measured_minute)) - 1
    n_bars = bars["minute"].size
    closes = bars["close"].tolist()
    ohlcv = [OHLCV(o, h, l, c, v) for o, h, l, c, v in zip(bars["open"].tolist(), bars["high"].tolist(),
                                                          bars["low"].tolist(), closes, bars["volume"].tolist())]
    warm_lo = max(0, k0 - TALIPP_WARM_BARS)
    timed = range(k0, n_bars - 1)
    p50s, means = [], []
    pc = time.perf_counter_ns
    for _ in range(TALIPP_REPS):
        ema20, ema50, ema200 = EMA(20), EMA(50), EMA(200)
        rsi14, macd, bb, roc10 = RSI(14), MACD(12, 26, 9), BB(20, 2.0), ROC(10)
        atr14, atr50, stoch, adx14, cci20, willr14 = ATR(14), ATR(50), Stoch(14, 3), ADX(14, 14), CCI(20), Williams(14)
        stoch_slow_d = SMA(3, input_indicator=stoch, input_modifier=lambda v: v.d)
        for k in range(warm_lo, k0):
            c, b = closes[k], ohlcv[k]
            ema20.add(c), ema50.add(c), ema200.add(c), rsi14.add(c), macd.add(c), bb.add(c), roc10.add(c)
            atr14.add(b), atr50.add(b), stoch.add(b), adx14.add(b), cci20.add(b), willr14.add(b)
        if stoch_slow_d[-1] is None or adx14[-1] is None or ema200[-1] is None:
            raise RuntimeError("talipp indicators not warm")
        dur = [0] * len(timed)
        empty = [0] * len(timed)
        gc.collect()
        gc.disable()
        try:
            for j, k in enumerate(timed):
                c, b = closes[k], ohlcv[k]
                t0 = pc()
                ema20.add(c)
                ema50.add(c)
                ema200.add(c)
                rsi14.add(c)
                macd.add(c)
                bb.add(c)
                roc10.add(c)
                atr14.add(b)
                atr50.add(b)
                stoch.add(b)  # also feeds the slow %D SMA
                adx14.add(b)
                cci20.add(b)
                willr14.add(b)
                t1 = pc()
                t2 = pc()
                dur[j] = t1 - t0
                empty[j] = t2 - t1
        finally:
            gc.enable()
        d = np.asarray(dur, dtype=np.float64) - float(np.median(empty))
        p50s.append(float(np.median(d)))
        means.append(float(d.mean()))
    return {
        "talipp_ns_per_bar": float(np.median(p50s)),
        "talipp_ns_per_bar_mean": float(np.median(means)),
        "talipp_bars": len(timed),
        "talipp_reps": TALIPP_REPS,
    }


def bench_engine_memory(model) -> dict:
    """Run first, on a young heap, so that the engines take fresh pages rather than freed ones."""
    import tracemalloc

    gc.collect()
    before = rss_bytes()
    engines = [FeatureEngine(model) for _ in range(ENGINES_FOR_MEMORY)]
    gc.collect()
    after = rss_bytes()
    size_of = sys.getsizeof(engines[0])
    del engines
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    engines = [FeatureEngine(model) for _ in range(100)]
    gc.collect()
    traced = (tracemalloc.get_traced_memory()[0] - base) / 100
    tracemalloc.stop()
    del engines
    gc.collect()
    return {
        "memory_bytes_per_symbol": (after - before) / ENGINES_FOR_MEMORY,
        "engine_sizeof_bytes": size_of,
        "tracemalloc_bytes_per_symbol": traced,
    }


def bench_rss_growth(e: FeatureEngine, measured: Series) -> dict:
    """A warm engine given the measured series again (shifted in time): its resident set must not grow."""
    more = measured.shifted(int(e.last_time_ms - measured.t[0]) + 3_600_000)
    gc.collect()
    rss0 = rss_bytes()
    for lo in range(0, len(more), RSS_CHUNK):
        hi = lo + RSS_CHUNK
        res = e.process_ticks(more.t[lo:hi], more.bid[lo:hi], more.ask[lo:hi], more.vol[lo:hi], 3, False)
        del res
    gc.collect()
    rss1 = rss_bytes()
    return {"rss_growth_after_2m_ticks_bytes": rss1 - rss0, "rss_growth_ticks": len(more)}


# ---- report -----------------------------------------------------------------------------------------------


def table(r: dict) -> str:
    def ns(x):
        return f"{x:,.0f} ns"

    rows = [
        ("Per tick, no bar closed (on_tick from Python)", None),
        ("  p50", ns(r["ns_per_tick_p50"])),
        ("  p99", ns(r["ns_per_tick_p99"])),
        ("  mean", ns(r["ns_per_tick_mean"])),
        ("  samples", f"{r['ns_per_tick_samples']:,}"),
        ("  timer overhead subtracted", ns(r["timer_overhead_ns"])),
        ("Per bar close (on_tick closing an M1 bar, 147 features)", None),
        ("  p50, all closes", ns(r["ns_per_bar_close_p50"])),
        ("  p99, all closes", ns(r["ns_per_bar_close_p99"])),
        ("  p50, M1 only (mask 1)", ns(r["ns_per_bar_close_m1_only_p50"])),
        ("  p99, M1 only (mask 1)", ns(r["ns_per_bar_close_m1_only_p99"])),
        ("  p50, closing M5 too", ns(r["ns_per_bar_close_with_m5_p50"])),
        ("  p50, closing M15 too", ns(r["ns_per_bar_close_with_m15_p50"])),
        ("  p50, closing H1 too", ns(r["ns_per_bar_close_with_h1_p50"])),
        ("  samples (M1 only)", f"{r['ns_per_bar_close_samples']:,} ({r['ns_per_bar_close_m1_only_samples']:,})"),
        ("Decision on top of the features (DecisionEngine.on_tick, one account, one symbol)", None),
        ("  p50", ns(r["decision_ns_per_tick_p50"])),
        ("  p99", ns(r["decision_ns_per_tick_p99"])),
        ("  p50 over the features' own", ns(r["decision_over_features_ns_p50"])),
        ("Throughput, one symbol", None),
        ("  process_ticks (C loop)", f"{r['ticks_per_s']:,.0f} ticks/s"),
        ("  on_tick in a Python loop", f"{r['ticks_per_s_python_loop']:,.0f} ticks/s"),
        ("  ticks", f"{r['throughput_ticks']:,}"),
        ("talipp, same indicators, per M1 bar", None),
        ("  talipp p50 per bar", ns(r["talipp_ns_per_bar"])),
        ("  talipp mean per bar", ns(r["talipp_ns_per_bar_mean"])),
        ("  engine p50, same bars (all / M1 only)",
         f"{r['engine_same_bars_ns_p50']:,.0f} / {r['engine_same_bars_m1_only_ns_p50']:,.0f} ns"),
        ("  bars", f"{r['talipp_bars']:,}"),
        ("  talipp_ratio (vs M1-only bar close p50)", f"{r['talipp_ratio']:,.1f}x"),
        ("  talipp_ratio_same_bars", f"{r['talipp_ratio_same_bars']:,.1f}x"),
        ("Memory", None),
        ("  per symbol (RSS growth / 1000 engines)", f"{r['memory_bytes_per_symbol']:,.0f} B"),
        ("  sys.getsizeof(engine)", f"{r['engine_sizeof_bytes']:,} B"),
        ("  tracemalloc per engine", f"{r['tracemalloc_bytes_per_symbol']:,.0f} B"),
        (f"  RSS growth over {r['rss_growth_ticks']:,} more ticks", f"{r['rss_growth_after_2m_ticks_bytes']:,} B"),
        ("Goals", None),
    ]
    for k, goal in r["goals"].items():
        sign = ">=" if k == "talipp_ratio" else "<="
        rows.append((f"  {k} {sign} {goal}", "met" if r["goals_met"][k] else "NOT met"))
    width = max(len(a) for a, _ in rows) + 2
    lines = [f"mt5bridge engine benchmark (seed {r['seed']}, {r['elapsed_s']:.1f} s, Python {r['python']})"]
    for a, b in rows:
        lines.append(a if b is None else f"{a:<{width}}{b:>22}")
    return "\n".join(lines)


def bench_decision(model, warm: Series, measured: Series) -> dict:
    """A decision on top of the features: the account engine's on_tick (features, FTMO guard, the book's
    worst case, exits and the entry filters and sizing) against the feature engine's alone, same ticks."""
    from mt5bridge.config import Config
    from mt5bridge.core.decision import add_symbol, build_engine

    seg = measured.slice(0, TICK_SAMPLES)
    spec = dict(point=1e-5, tick_size=1e-5, tick_value=1.0, contract_size=100_000, volume_min=0.01,
                volume_step=0.01, volume_max=100.0, digits=5)
    cfg = Config()
    pooled, commands = [], 0
    for _ in range(TICK_REPS):
        engine = build_engine(cfg, magic=1)
        sym = add_symbol(engine, cfg, "EURUSD", spec, warm_engine(model, warm))
        args = [(sym, t, b, a, v, 100_000.0, 100_000.0, 0.0)
                for t, b, a, v in zip(seg.t.tolist(), seg.bid.tolist(), seg.ask.tolist(), seg.vol.tolist())]

        def refuse(action, engine=engine):
            # nothing fills here: refuse each command so the next ticks decide afresh, outside the timing
            if action:
                engine.on_result(engine.next_command_id - 1, False)

        dur, actions, _ = time_calls(engine.on_tick, args, refuse)
        commands += sum(1 for a in actions if a)
        pooled.append(dur)
    dec = np.concatenate(pooled)
    return {
        "decision_ns_per_tick_p50": pct(dec, 50),
        "decision_ns_per_tick_p99": pct(dec, 99),
        "decision_commands": commands,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", action="store_true", help="print only the JSON line")
    p.add_argument("--ticks", type=int, default=2_000_000, help="measured ticks for throughput and RSS (default 2M)")
    p.add_argument("--seed", type=int, default=7, help="seed of the synthetic series (default 7)")
    args = p.parse_args(argv)
    import importlib.util

    if importlib.util.find_spec("talipp") is None:
        # The baseline is measured in the same run; without it there is no ratio to print.
        print("bench/engine.py measures talipp as its baseline: pip install talipp (or \"mt5bridge[test]\")",
              file=sys.stderr)
        return 2
    if args.ticks < TICK_SAMPLES:
        p.error(f"--ticks must be at least {TICK_SAMPLES}")

    start = time.perf_counter()
    model = load_model(None)
    mem = bench_engine_memory(model)
    all_ticks, warm_end = make_ticks(args.ticks, args.seed)
    warm = all_ticks.slice(0, warm_end)
    measured = all_ticks.slice(warm_end, len(all_ticks))

    r: dict = {}
    r.update(bench_ticks(model, warm, measured))
    r.update(bench_bar_close(model, warm, args.seed))
    r.update(bench_decision(model, warm, measured))
    # Both p50s are over the same ticks; most close no bar, so the difference is the decision's own cost.
    r["decision_over_features_ns_p50"] = r["decision_ns_per_tick_p50"] - r["ns_per_tick_p50"]
    thr, e_thr = bench_throughput(model, warm, measured)
    r.update(thr)
    r.update(bench_talipp(all_ticks, warm_end))
    r["talipp_ratio"] = r["talipp_ns_per_bar"] / r["ns_per_bar_close_m1_only_p50"]
    r["talipp_ratio_same_bars"] = r["talipp_ns_per_bar"] / r["engine_same_bars_m1_only_ns_p50"]
    r.update(mem)
    r.update(bench_rss_growth(e_thr, measured))

    r["goals"] = dict(GOALS)
    r["goals_met"] = {
        "ns_per_tick_p50": r["ns_per_tick_p50"] <= GOALS["ns_per_tick_p50"],
        "ns_per_bar_close_p50": r["ns_per_bar_close_p50"] <= GOALS["ns_per_bar_close_p50"],
        "talipp_ratio": r["talipp_ratio"] >= GOALS["talipp_ratio"],
        "decision_over_features_ns_p50": r["decision_over_features_ns_p50"] <= GOALS["decision_over_features_ns_p50"],
    }
    r["warmup_ticks"] = len(warm)
    r["seed"] = args.seed
    r["ticks"] = args.ticks
    r["python"] = platform.python_version()
    r["cpus"] = os.cpu_count()
    r["elapsed_s"] = time.perf_counter() - start

    for k, v in list(r.items()):
        if isinstance(v, float) and k not in ("elapsed_s",) and abs(v) >= 10:
            r[k] = round(v, 1)
        elif isinstance(v, float):
            r[k] = round(v, 3)
    if not args.json:
        print(table(r))
    print(json.dumps(r, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
