"""The compiled feature engine as a trader relies on it: bars closed by tick time, no fake bars over a
weekend, bad ticks refused without damage, history warm-up equal to live ticks, bounded outputs."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

from conftest import aggregate_bars
from mt5bridge.core.catalog import FEATURE_COUNT, FEATURE_NAMES, GROUPS, TIMEFRAME_BLOCK, TIMEFRAMES
from mt5bridge.core.engine import CONSENSUS_NAMES, TIMEFRAME_SECONDS, FeatureEngine

M1, M5, M15, H1 = range(4)


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp() * 1000)


def test_timeframes_agree_with_the_catalog():
    assert TIMEFRAME_SECONDS == tuple(s for _, s in TIMEFRAMES)


def test_a_tick_in_a_new_minute_closes_the_m1_bar_and_only_that():
    e = FeatureEngine()
    assert e.on_tick(ms("2024-03-05 10:00:05"), 1.1000, 1.1001) == 0
    assert e.on_tick(ms("2024-03-05 10:00:59.999"), 1.1004, 1.1005) == 0
    mask = e.on_tick(ms("2024-03-05 10:01:00"), 1.0998, 1.0999)
    assert mask == 1 << M1
    assert e.closed_bars(M1) == 1 and e.closed_bars(M5) == 0
    start, o, h, low, c, v = e.open_bar(M1)
    assert start == ms("2024-03-05 10:01:00") and o == h == low == c == 1.0998 and v == 1.0
    # The M5 bar spans both minutes and has seen every tick.
    start, o, h, low, c, v = e.open_bar(M5)
    assert start == ms("2024-03-05 10:00:00") and (o, h, low, c, v) == (1.1000, 1.1004, 1.0998, 1.0998, 3.0)


def test_the_hour_boundary_closes_all_four_timeframes():
    e = FeatureEngine()
    e.on_tick(ms("2024-03-05 10:59:59"), 1.1, 1.1001)
    assert e.on_tick(ms("2024-03-05 11:00:00"), 1.1, 1.1001) == 0b1111


def test_a_weekend_gap_leaves_no_empty_bars():
    e = FeatureEngine()
    e.on_tick(ms("2024-03-08 20:58:30"), 1.0900, 1.0901)  # Friday
    e.on_tick(ms("2024-03-08 20:59:10"), 1.0902, 1.0903)
    mask = e.on_tick(ms("2024-03-10 21:05:00"), 1.0950, 1.0952)  # Sunday reopen, gapped
    assert mask == 0b1111
    assert [e.closed_bars(tf) for tf in range(4)] == [2, 1, 1, 1]


def test_time_going_backwards_is_refused_and_changes_nothing():
    e = FeatureEngine()
    e.on_tick(ms("2024-03-05 10:00:05"), 1.1000, 1.1001)
    e.on_tick(ms("2024-03-05 10:00:10"), 1.1002, 1.1003)
    before = e.open_bar(M1)
    with pytest.raises(ValueError, match="earlier than the last one"):
        e.on_tick(ms("2024-03-05 10:00:07"), 1.2, 1.2001)
    assert e.open_bar(M1) == before
    assert e.on_tick(ms("2024-03-05 10:01:00"), 1.1001, 1.1002) == 1  # the next good tick is served


@pytest.mark.parametrize(
    "bid, ask, volume",
    [(float("nan"), 1.1, 1.0), (1.1, float("inf"), 1.0), (1.2, 1.1, 1.0), (-1.0, 1.1, 1.0), (0.0, 1.1, 1.0),
     (1.1, 1.1001, -1.0), (1.1, 1.1001, float("nan"))],
)
def test_impossible_prices_are_refused_and_change_nothing(bid, ask, volume):
    e = FeatureEngine()
    e.on_tick(ms("2024-03-05 10:00:05"), 1.1000, 1.1001)
    before = e.open_bar(M1)
    with pytest.raises(ValueError, match="tick refused"):
        e.on_tick(ms("2024-03-05 10:00:06"), bid, ask, volume)
    assert e.open_bar(M1) == before


def test_process_ticks_names_the_bad_tick():
    e = FeatureEngine()
    t = np.array([ms("2024-03-05 10:00:00"), ms("2024-03-05 10:00:01"), ms("2024-03-05 10:00:02")], np.int64)
    bid = np.array([1.1, 1.2, 1.1])
    ask = np.array([1.1001, 1.1, 1.1001])
    with pytest.raises(ValueError, match="tick 1: tick refused"):
        e.process_ticks(t, bid, ask, np.ones(3))


def run_ticks(ticks, record_tf=M1, with_indicators=False, engine=None):
    e = engine or FeatureEngine()
    res = e.process_ticks(ticks.times_ms, ticks.bid, ticks.ask, ticks.volume, record_tf, with_indicators)
    return e, res


def test_features_are_nan_until_warm_then_never_nan(eurusd_ticks):
    e, res = run_ticks(eurusd_ticks, H1)
    f = res["features"]
    assert f.shape[1] == FEATURE_COUNT
    for k, b in enumerate(TIMEFRAME_BLOCK):
        col = f[:, 3 * len(TIMEFRAME_BLOCK) + k]  # the H1 block
        assert np.isnan(col[: b.bars - 1]).all(), f"h1_{b.key} defined before its warm-up of {b.bars} bars"
        assert np.isfinite(col[b.bars - 1:]).all(), f"h1_{b.key} not finite after its warm-up of {b.bars} bars"
    assert e.is_warm
    assert np.isfinite(e.features).all() and e.warm.all()


def test_outputs_stay_in_their_ranges(eurusd_ticks):
    e, res = run_ticks(eurusd_ticks, M5)
    score, conf = res["score"], res["confidence"]
    assert ((score >= 0) & (score <= 100)).all()
    assert ((conf >= 0.5) & (conf <= 1)).all()
    assert set(np.unique(res["direction"])) <= {-1, 0, 1}
    assert set(np.unique(res["consensus"])) <= set(range(len(CONSENSUS_NAMES)))
    warm_rows = np.isfinite(res["features"]).all(axis=1)
    # Over twelve days of changing regimes the ensemble must say BUY, SELL and HOLD at some point.
    assert set(np.unique(res["direction"][warm_rows])) == {-1, 0, 1}
    bounded = {"rsi_14": (0, 100), "stoch_k_14_3_3": (0, 100), "adx_14": (0, 100), "willr_14": (-100, 0),
               "donchian_pos_20": (0, 1), "signed_volume_10": (-1, 1)}
    for tf, _ in TIMEFRAMES:
        for key, (lo, hi) in bounded.items():
            col = res["features"][:, FEATURE_NAMES.index(f"{tf}_{key}")]
            col = col[np.isfinite(col)]
            assert col.size and (col >= lo - 1e-9).all() and (col <= hi + 1e-9).all(), f"{tf}_{key}"
    assert len(e.group_scores) == len(GROUPS)


def _trend(slope_per_min: float, minutes: int = 60 * 24 * 12):
    t0 = ms("2024-01-08 00:00:00")
    t = t0 + np.arange(minutes * 4, dtype=np.int64) * 15_000
    wiggle = 0.0002 * np.sin(np.arange(t.size) / 37.0)
    bid = 1.1 + slope_per_min * np.arange(t.size) / 4 + wiggle
    return t, bid, bid + 0.0001, np.ones(t.size)


@pytest.mark.parametrize("slope, expected", [(2e-6, 1), (-2e-6, -1)])
def test_a_steady_trend_reads_as_that_direction(slope, expected):
    e = FeatureEngine()
    e.process_ticks(*_trend(slope))
    assert e.direction == expected
    trend_p = e.submodel_probabilities[0]
    assert (trend_p > 0.5) if expected == 1 else (trend_p < 0.5)
    assert e.confidence > 0.6


def test_history_warm_up_gives_the_same_features_as_the_ticks_behind_it(eurusd_ticks):
    live, _ = run_ticks(eurusd_ticks)
    warmed = FeatureEngine()
    for tf, (_, seconds) in enumerate(TIMEFRAMES):
        bars = aggregate_bars(eurusd_ticks.times_ms, eurusd_ticks.bid, eurusd_ticks.volume, seconds)
        warmed.warmup_bars(tf, *bars)
    block = 4 * len(TIMEFRAME_BLOCK)
    np.testing.assert_array_equal(warmed.features[:block], live.features[:block])
    np.testing.assert_array_equal(warmed.indicators, live.indicators)
    for tf in range(4):
        assert warmed.open_bar(tf) == pytest.approx(live.open_bar(tf), rel=1e-12)
    # Live ticks then extend the warmed engine exactly as they extend the live one.
    t = int(eurusd_ticks.times_ms[-1]) + 60_000
    assert warmed.on_tick(t, 1.2, 1.2001) == live.on_tick(t, 1.2, 1.2001)
    np.testing.assert_array_equal(warmed.features[:block], live.features[:block])


def test_warm_up_refuses_history_out_of_order_and_names_the_bar():
    e = FeatureEngine()
    t = np.array([ms("2024-03-05 10:00:00"), ms("2024-03-05 09:00:00")], np.int64)
    one = np.ones(2)
    with pytest.raises(ValueError, match="H1 bar 1 .* older than the bar already open"):
        e.warmup_bars(H1, t, one, one, one, one, one)
    with pytest.raises(ValueError, match="M1 bar 0 .* not a valid bar"):
        e.warmup_bars(M1, t[:1], np.array([1.0]), np.array([0.9]), np.array([0.8]), np.array([1.0]), one[:1])
    with pytest.raises(ValueError, match="timeframe 7"):
        e.warmup_bars(7, t, one, one, one, one, one)


def test_close_bars_closes_the_open_bars_and_returns_the_row():
    e = FeatureEngine()
    e.on_tick(ms("2024-03-05 10:00:05"), 1.1, 1.1001)
    out = e.close_bars(M5)
    assert out["time"].tolist() == [ms("2024-03-05 10:00:00")]
    assert [e.closed_bars(tf) for tf in range(4)] == [1, 1, 1, 1]
    assert e.close_bars(M5)["time"].size == 0


def test_reset_gives_back_a_new_engine(eurusd_ticks):
    e, first = run_ticks(eurusd_ticks)
    e.reset()
    assert not e.is_warm and np.isnan(e.features).all() and e.closed_bars(M1) == 0
    _, again = run_ticks(eurusd_ticks, engine=e)
    np.testing.assert_array_equal(first["features"], again["features"])
    np.testing.assert_array_equal(first["score"], again["score"])
