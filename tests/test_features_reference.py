"""The engine's features recomputed from the catalog's definitions, independently of the engine.

A seeded synthetic EURUSD tick series (40 days, weekends and random gaps without ticks, trending and ranging
stretches, flat and zero-volume stretches that drive the zero-denominator cases) is turned into bars here with
numpy. Every per-timeframe feature, every raw indicator and every multi-timeframe feature is then recomputed
from the definitions in ``mt5bridge/core/catalog.py`` with TA-Lib's batch functions and numpy, and compared with
what the compiled engine writes, row by row, on every timeframe.

Where the catalog leaves a degenerate case to "TA-Lib's functions", TA-Lib's value is the reference: RSI, STOCH,
WILLR, CCI and the DIs are 0 when their sums or ranges are zero, and a constant window has zero Bollinger
width (so %b takes its bracketed 0.5).
"""

from __future__ import annotations

import numpy as np
import pytest

from mt5bridge.core.catalog import (
    FEATURE_INDEX,
    INDICATOR_NAMES,
    INDICATORS_PER_TIMEFRAME,
    TIMEFRAME_BLOCK,
    TIMEFRAMES,
)
from mt5bridge.core.engine import FeatureEngine

talib = pytest.importorskip("talib")

TF_NAMES = tuple(name for name, _ in TIMEFRAMES)
TF_PERIOD_S = dict(TIMEFRAMES)
BLOCK = {b.key: b for b in TIMEFRAME_BLOCK}
MTF_NAMES = (
    "mtf_trend_align",
    "mtf_ema200_align",
    "mtf_rsi_align",
    "mtf_macd_align",
    "mtf_di_align",
    "mtf_adx_mean",
    "mtf_vol_term",
)

TOL = 1e-9  # absolute, or relative to the reference value when that is larger than 1

# ---------------------------------------------------------------------------------------------------------
# The tick series

START_MS = 1_704_067_200_000  # Monday 2024-01-01 00:00 UTC
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
DAYS = 40
# Stretches with one tick every 10 s at one constant price and volume 1: (start, minutes). The first one opens
# the series, so that M1 ATR(14), ranges and RSI/DI sums start at exactly zero.
FLAT_STRETCHES = ((START_MS, 25), (START_MS + 9 * DAY_MS + 3 * HOUR_MS, 45))
ZERO_VOLUME_START_MS = START_MS + 17 * DAY_MS + 14 * HOUR_MS  # Thursday 14:00 UTC: 40 minutes of volume 0
ZERO_VOLUME_MINUTES = 40


def make_ticks(seed: int = 20240101):
    """Ticks every 5-20 s (some sharing a millisecond) over 40 days, none from Friday 21:00 to Sunday 21:00
    UTC nor in 40 random gaps of 2-180 minutes; prices follow trending and mean-reverting regimes of random
    length and volatility, rounded to 5 decimals; volumes are integers 0-10. In FLAT_STRETCHES the price stands
    still, so that M1 ranges, deviations and volume spreads are zero; for ZERO_VOLUME_MINUTES every tick has
    volume 0 (as many brokers' forex ticks do), so that M1 volume sums are zero."""
    rng = np.random.default_rng(seed)
    span = DAYS * DAY_MS
    n = span // 5000 + 16
    dt = rng.integers(5000, 20_001, size=n)
    dt[rng.random(n) < 0.01] = 0
    t = START_MS + np.cumsum(dt)
    t = t[t < START_MS + span]
    offset = t - START_MS
    weekday = (offset // DAY_MS) % 7
    ms_of_day = offset % DAY_MS
    keep = ~(
        ((weekday == 4) & (ms_of_day >= 21 * HOUR_MS))
        | (weekday == 5)
        | ((weekday == 6) & (ms_of_day < 21 * HOUR_MS))
    )
    for _ in range(40):
        g0 = START_MS + int(rng.integers(0, span))
        keep &= ~((t >= g0) & (t < g0 + int(rng.integers(2, 181)) * 60_000))
    t = t[keep]
    for f0, minutes in FLAT_STRETCHES:
        f1 = f0 + minutes * 60_000
        t = np.concatenate([t[(t < f0) | (t >= f1)], np.arange(f0, f1, 10_000, dtype=np.int64)])
    t = np.sort(t)
    flat = np.zeros(t.size, dtype=bool)
    for f0, minutes in FLAT_STRETCHES:
        flat |= (t >= f0) & (t < f0 + minutes * 60_000)
    n = t.size

    sigma = np.empty(n)
    drift = np.empty(n)
    revert = np.empty(n)
    i = 0
    while i < n:
        length = int(rng.integers(300, 6000))
        kind = int(rng.integers(0, 3))  # 0 ranging, 1 up-trend, 2 down-trend
        s = 3e-5 * rng.uniform(0.4, 2.0)
        sigma[i : i + length] = s
        drift[i : i + length] = 0.0 if kind == 0 else (1.0 if kind == 1 else -1.0) * s * rng.uniform(0.02, 0.12)
        revert[i : i + length] = rng.uniform(0.002, 0.02) if kind == 0 else 0.0
        i += length
    noise = rng.standard_normal(n) * sigma
    price = np.empty(n)
    x = level = 1.0850
    prev_revert = -1.0
    for k in range(n):
        if flat[k]:
            price[k] = x
            continue
        r = revert[k]
        if r > 0.0 and prev_revert <= 0.0:
            level = x  # a ranging regime oscillates around where it started
        prev_revert = r
        x = x + drift[k] + noise[k] - r * (x - level)
        price[k] = x
    bid = np.round(price, 5)
    ask = np.round(bid + rng.uniform(0.6, 2.0, n) * 1e-4, 5)
    volume = rng.integers(1, 11, n).astype(np.float64)
    volume[rng.random(n) < 0.03] = 0.0
    volume[flat] = 1.0
    volume[(t >= ZERO_VOLUME_START_MS) & (t < ZERO_VOLUME_START_MS + ZERO_VOLUME_MINUTES * 60_000)] = 0.0
    return t.astype(np.int64), bid, ask, volume


# ---------------------------------------------------------------------------------------------------------
# The reference: bars, TA-Lib indicators, features from the catalog's definitions


def make_bars(t, bid, volume, period_s):
    """OHLCV bars of the periods that have ticks (bid prices, summed tick volume), oldest first."""
    period = period_s * 1000
    key = t // period
    first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    last = np.r_[first[1:], key.size] - 1
    return {
        "time": key[first] * period,
        "o": bid[first],
        "h": np.maximum.reduceat(bid, first),
        "l": np.minimum.reduceat(bid, first),
        "c": bid[last],
        "v": np.add.reduceat(volume, first),
    }


def make_indicators(bars):
    h, l, c = bars["h"], bars["l"], bars["c"]
    macd, macd_signal, macd_hist = talib.MACD(c, fastperiod=12, slowperiod=26, signalperiod=9)
    upper, middle, lower = talib.BBANDS(c, timeperiod=20, nbdevup=2, nbdevdn=2, matype=0)
    slow_k, slow_d = talib.STOCH(h, l, c, fastk_period=14, slowk_period=3, slowk_matype=0,
                                 slowd_period=3, slowd_matype=0)
    ind = {
        "ema_20": talib.EMA(c, 20),
        "ema_50": talib.EMA(c, 50),
        "ema_200": talib.EMA(c, 200),
        "rsi_14": talib.RSI(c, 14),
        "atr_14": talib.ATR(h, l, c, 14),
        "atr_50": talib.ATR(h, l, c, 50),
        "macd_12_26_9": macd,
        "macd_signal_12_26_9": macd_signal,
        "macd_hist_12_26_9": macd_hist,
        "bb_upper_20_2": upper,
        "bb_middle_20_2": middle,
        "bb_lower_20_2": lower,
        "adx_14": talib.ADX(h, l, c, 14),
        "plus_di_14": talib.PLUS_DI(h, l, c, 14),
        "minus_di_14": talib.MINUS_DI(h, l, c, 14),
        "stoch_k_14_3_3": slow_k,
        "stoch_d_14_3_3": slow_d,
        "cci_20": talib.CCI(h, l, c, 20),
        "willr_14": talib.WILLR(h, l, c, 14),
        "roc_10": talib.ROC(c, 10),
    }
    assert tuple(ind) == INDICATORS_PER_TIMEFRAME
    return ind


def ratio(num, den, default):
    """num / den, ``default`` where den == 0, NaN where either is NaN."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(den != 0.0, num / den, default)
    out[np.isnan(num) | np.isnan(den)] = np.nan
    return out


def rolling(x, n, reduce):
    """reduce over the last n values including the current one; NaN for the first n - 1 rows."""
    out = np.full(x.size, np.nan)
    if x.size >= n:
        out[n - 1 :] = reduce(np.lib.stride_tricks.sliding_window_view(x, n), axis=-1)
    return out


def lag(x, k):
    out = np.full(x.size, np.nan)
    out[k:] = x[:-k]
    return out


def newest_swing(x, extreme, above: bool, window: int = 50, side: int = 2):
    """The newest swing point in the last ``window`` bars: a bar whose value is strictly above (below) the
    ``side`` bars before and the ``side`` after it; else ``extreme`` (HH or LL of the window).

    Reading: the swing bar itself must be one of the last ``window`` bars; the bars it is compared with
    (which must exist) may lie before the window. It needs ``side`` later bars, so it is at most the
    ``side + 1``-th newest bar."""
    n = x.size
    is_swing = np.zeros(n, dtype=bool)
    j = np.arange(side, n - side)
    cond = np.ones(j.size, dtype=bool)
    for d in range(1, side + 1):
        if above:
            cond &= (x[j] > x[j - d]) & (x[j] > x[j + d])
        else:
            cond &= (x[j] < x[j - d]) & (x[j] < x[j + d])
    is_swing[j] = cond
    newest = np.maximum.accumulate(np.where(is_swing, np.arange(n), -1))
    candidate = np.full(n, -1)
    candidate[side:] = newest[:-side]  # newest swing that has its `side` later bars by row i
    use = (candidate >= 0) & (candidate >= np.arange(n) - (window - 1))
    return np.where(use, x[np.maximum(candidate, 0)], extreme)


def make_block_features(bars, ind):
    """The 31 per-timeframe features from the catalog's definitions; NaN before each feature's warm-up."""
    h, l, c, v = bars["h"], bars["l"], bars["c"], bars["v"]
    atr = ind["atr_14"]
    ema20, ema50, ema200 = ind["ema_20"], ind["ema_50"], ind["ema_200"]
    upper, middle, lower = ind["bb_upper_20_2"], ind["bb_middle_20_2"], ind["bb_lower_20_2"]

    hh20, ll20 = rolling(h, 20, np.max), rolling(l, 20, np.min)
    hh50, ll50 = rolling(h, 50, np.max), rolling(l, 50, np.min)

    log_ret = np.full(c.size, np.nan)
    log_ret[1:] = np.log(c[1:] / c[:-1])
    realized = np.full(c.size, np.nan)
    if c.size > 20:
        realized[20:] = 100.0 * np.lib.stride_tricks.sliding_window_view(log_ret[1:], 20).std(axis=-1)

    v_mean = rolling(v, 20, np.mean)
    v_std = rolling(v, 20, np.std)  # population (ddof=0)

    signed = np.full(c.size, np.nan)
    signed[1:] = np.sign(c[1:] - c[:-1]) * v[1:]
    signed_sum = rolling(signed, 10, np.sum)
    v_sum10 = np.full(c.size, np.nan)
    v_sum10[1:] = rolling(v[1:], 10, np.sum)  # the same 10 bars, each with a bar before it

    feats = {
        "ema_20_dist": ratio(c - ema20, atr, 0.0),
        "ema_50_dist": ratio(c - ema50, atr, 0.0),
        "ema_200_dist": ratio(c - ema200, atr, 0.0),
        "ema_20_slope": ratio(ema20 - lag(ema20, 5), 5.0 * atr, 0.0),
        "ema_50_slope": ratio(ema50 - lag(ema50, 5), 5.0 * atr, 0.0),
        "ema_20_50_gap": ratio(ema20 - ema50, atr, 0.0),
        "adx_14": ind["adx_14"],
        "di_diff_14": ind["plus_di_14"] - ind["minus_di_14"],
        "rsi_14": ind["rsi_14"],
        "macd_atr": ratio(ind["macd_12_26_9"], atr, 0.0),
        "macd_hist_atr": ratio(ind["macd_hist_12_26_9"], atr, 0.0),
        "stoch_k_14_3_3": ind["stoch_k_14_3_3"],
        "stoch_d_14_3_3": ind["stoch_d_14_3_3"],
        "cci_20": ind["cci_20"],
        "willr_14": ind["willr_14"],
        "roc_10": 100.0 * (ratio(c, lag(c, 10), 1.0) - 1.0),  # [0] when c[10] == 0
        "ret_1_atr": ratio(c - lag(c, 1), atr, 0.0),
        "atr_14_pct": 100.0 * atr / c,
        "atr_ratio_14_50": ratio(atr, ind["atr_50"], 1.0),
        "bb_pctb_20_2": ratio(c - lower, upper - lower, 0.5),
        "bb_width_20_2": ratio(upper - lower, middle, 0.0),
        "range_atr": ratio(h - l, atr, 0.0),
        "realized_vol_20": realized,
        "volume_z_20": ratio(v - v_mean, v_std, 0.0),
        "volume_ratio_20": ratio(v, v_mean, 1.0),
        "signed_volume_10": ratio(signed_sum, v_sum10, 0.0),
        "donchian_pos_20": ratio(c - ll20, hh20 - ll20, 0.5),
        "dist_high_50_atr": ratio(hh50 - c, atr, 0.0),
        "dist_low_50_atr": ratio(c - ll50, atr, 0.0),
        "swing_high_atr": ratio(newest_swing(h, hh50, above=True) - c, atr, 0.0),
        "swing_low_atr": ratio(c - newest_swing(l, ll50, above=False), atr, 0.0),
    }
    assert tuple(feats) == tuple(BLOCK)
    for key, values in feats.items():
        values = values.copy()
        values[: BLOCK[key].bars - 1] = np.nan
        feats[key] = values
    return feats


def closed_index(bars_time, period_s, next_m1_start):
    """Index of the timeframe's last closed bar when the tick opening the M1 bar at ``next_m1_start`` arrives
    (-1: none yet). A bar closes when a tick falls in a later period of its timeframe."""
    period = period_s * 1000
    return np.searchsorted(bars_time, (next_m1_start // period) * period, side="left") - 1


def make_mtf_features(m1_time, bars, ind):
    """The 7 multi-timeframe features at each M1 close, from the reference indicators at the last closed bar
    of every timeframe. The last row is the one close_bars writes, when every bar has closed."""
    rows = m1_time.size
    at = {}
    for tf in TF_NAMES:
        idx = np.empty(rows, dtype=np.int64)
        idx[:-1] = closed_index(bars[tf]["time"], TF_PERIOD_S[tf], m1_time[1:])
        idx[-1] = bars[tf]["time"].size - 1

        def pick(x, idx=idx):
            return np.where(idx >= 0, x[np.maximum(idx, 0)], np.nan)

        at[tf] = {
            "c": pick(bars[tf]["c"]),
            **{k: pick(ind[tf][k]) for k in INDICATORS_PER_TIMEFRAME},
        }

    def mean4(f):
        return sum(f(at[tf]) for tf in TF_NAMES) / 4.0

    return {
        "mtf_trend_align": mean4(lambda a: np.sign(a["ema_20"] - a["ema_50"])),
        "mtf_ema200_align": mean4(lambda a: np.sign(a["c"] - a["ema_200"])),
        "mtf_rsi_align": mean4(lambda a: (a["rsi_14"] - 50.0) / 50.0),
        "mtf_macd_align": mean4(lambda a: np.sign(a["macd_hist_12_26_9"])),
        "mtf_di_align": mean4(lambda a: np.sign(a["plus_di_14"] - a["minus_di_14"])),
        "mtf_adx_mean": mean4(lambda a: a["adx_14"]),
        "mtf_vol_term": ratio(at["m5"]["atr_14"] / np.sqrt(5.0), at["h1"]["atr_14"] / np.sqrt(60.0), 1.0),
    }


# ---------------------------------------------------------------------------------------------------------
# Running the engine


def run_engine(ticks, record_tf: int):
    """A fresh engine fed every tick, recording at each close of ``record_tf``, then its last bar closed."""
    t, bid, ask, volume = ticks
    e = FeatureEngine()
    res = e.process_ticks(t, bid, ask, volume, record_tf, True)
    tail = e.close_bars(record_tf, True)
    return {k: np.concatenate([res[k], tail[k]]) for k in ("time", "features", "indicators")}


@pytest.fixture(scope="module")
def market():
    ticks = make_ticks()
    t, bid, _ask, volume = ticks
    bars = {tf: make_bars(t, bid, volume, TF_PERIOD_S[tf]) for tf in TF_NAMES}
    ind = {tf: make_indicators(bars[tf]) for tf in TF_NAMES}
    feats = {tf: make_block_features(bars[tf], ind[tf]) for tf in TF_NAMES}
    engine = {tf: run_engine(ticks, i) for i, tf in enumerate(TF_NAMES)}
    mtf = make_mtf_features(bars["m1"]["time"], bars, ind)
    return {"ticks": ticks, "bars": bars, "ind": ind, "feats": feats, "engine": engine, "mtf": mtf}


def assert_agree(got, want, label: str, times=None):
    """Same NaN positions; elsewhere |got - want| <= TOL * max(1, |want|). The message lists the worst rows."""
    __tracebackhide__ = True
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{label}: {got.shape} rows from the engine, {want.shape} in the reference"
    nan_diff = np.flatnonzero(np.isnan(got) != np.isnan(want))
    assert nan_diff.size == 0, (
        f"{label}: NaN differs on {nan_diff.size} rows, first rows {nan_diff[:5].tolist()}: "
        f"engine {got[nan_diff[:5]].tolist()}, reference {want[nan_diff[:5]].tolist()}"
    )
    both = ~np.isnan(want)
    err = np.zeros(want.size)
    err[both] = np.abs(got[both] - want[both]) / np.maximum(1.0, np.abs(want[both]))
    bad = np.flatnonzero(err > TOL)
    if bad.size:
        worst = bad[np.argsort(err[bad])[::-1][:5]]
        detail = ", ".join(
            f"row {r}" + (f" (bar {times[r]})" if times is not None else "")
            + f": engine {got[r]!r} reference {want[r]!r}"
            for r in worst
        )
        pytest.fail(f"{label}: {bad.size} of {int(both.sum())} rows disagree (max error {err.max():.3g}); "
                    f"first row {bad[0]}; worst: {detail}")


# ---------------------------------------------------------------------------------------------------------
# The checks


def test_the_series_covers_what_the_checks_need(market):
    t, bid, ask, volume = market["ticks"]
    assert np.all(np.diff(t) >= 0) and np.all(bid > 0) and np.all(ask >= bid)
    assert np.any(np.diff(t) == 0)  # ticks sharing a millisecond
    assert np.diff(t).max() > 2 * DAY_MS - HOUR_MS  # a weekend without ticks
    assert 2000 < market["bars"]["m15"]["time"].size < 5000
    assert market["bars"]["h1"]["time"].size > 400  # enough for every H1 warm-up, the mtf ones included
    m1 = market["feats"]["m1"]
    # The flat stretch reaches the bracketed zero-denominator values on M1.
    assert np.any(m1["donchian_pos_20"] == 0.5) and np.any(m1["bb_pctb_20_2"] == 0.5)
    assert np.any(m1["volume_z_20"] == 0.0) and np.any(m1["realized_vol_20"] == 0.0)
    assert np.any(m1["volume_ratio_20"] == 1.0) and np.any(m1["signed_volume_10"] == 0.0)
    assert np.any(market["ind"]["m1"]["atr_14"] == 0.0)  # the ATR-denominator brackets
    assert np.any(m1["ema_20_dist"][market["ind"]["m1"]["atr_14"] == 0.0] == 0.0)


@pytest.mark.parametrize("tf", TF_NAMES)
def test_one_row_per_bar_at_the_bar_open_time(market, tf):
    """Row i is reference bar i: bars exist only for periods with ticks, the last comes from close_bars."""
    got = market["engine"][tf]["time"]
    want = market["bars"][tf]["time"]
    assert got.size == want.size, f"{tf}: {got.size} engine rows for {want.size} bars"
    assert np.array_equal(got, want), f"{tf}: first differing row {np.flatnonzero(got != want)[0]}"


@pytest.mark.parametrize("key", list(BLOCK))
@pytest.mark.parametrize("tf", TF_NAMES)
def test_timeframe_feature(market, tf, key):
    name = f"{tf}_{key}"
    got = market["engine"][tf]["features"][:, FEATURE_INDEX[name]]
    want = market["feats"][tf][key]
    warm = BLOCK[key].bars - 1
    assert not np.isnan(want[warm:]).any(), f"{name}: the reference itself is NaN after the warm-up"
    nan_early = np.flatnonzero(~np.isnan(got[:warm]))
    assert nan_early.size == 0, f"{name}: defined before its warm-up of {warm + 1} bars, at rows {nan_early[:5]}"
    nan_late = np.flatnonzero(np.isnan(got[warm:])) + warm
    assert nan_late.size == 0, f"{name}: NaN after its warm-up of {warm + 1} bars, at rows {nan_late[:5]}"
    assert_agree(got, want, name, market["bars"][tf]["time"])


@pytest.mark.parametrize("key", INDICATORS_PER_TIMEFRAME)
@pytest.mark.parametrize("tf", TF_NAMES)
def test_raw_indicator(market, tf, key):
    name = f"{tf}_{key}"
    got = market["engine"][tf]["indicators"][:, INDICATOR_NAMES.index(name)]
    assert_agree(got, market["ind"][tf][key], name, market["bars"][tf]["time"])


@pytest.mark.parametrize("name", MTF_NAMES)
def test_multi_timeframe_feature(market, name):
    got = market["engine"]["m1"]["features"][:, FEATURE_INDEX[name]]
    assert_agree(got, market["mtf"][name], name, market["bars"]["m1"]["time"])
