"""The synthetic market makes what its documentation says: the same ticks for the same seed, no weekend
trading and a gap after it, busier sessions, all four regimes with their own volatility, wider spreads at the
rollover and around news, and news jumps."""

from __future__ import annotations

import numpy as np
import pytest

from mt5bridge.market.synthetic import MS_PER_DAY, MS_PER_HOUR, PROFILES, REGIMES, generate_market, generate_ticks


@pytest.fixture(scope="module")
def market():
    return generate_market("EURUSD", days=56, seed=4)


def test_the_same_seed_gives_the_same_ticks_and_another_seed_others():
    a, b = generate_ticks("EURUSD", days=3, seed=1), generate_ticks("EURUSD", days=3, seed=1)
    c = generate_ticks("EURUSD", days=3, seed=2)
    assert np.array_equal(a.times_ms, b.times_ms) and np.array_equal(a.bid, b.bid) and np.array_equal(a.ask, b.ask)
    assert not np.array_equal(a.bid[:1000], c.bid[:1000])


def test_quotes_are_sane_and_in_time_order(market):
    t = market.ticks
    assert np.all(np.diff(t.times_ms) >= 0) and np.all(t.bid > 0) and np.all(t.ask > t.bid)
    point = PROFILES["EURUSD"].point
    assert np.allclose(np.round(t.bid / point) * point, t.bid)


def test_no_ticks_at_the_weekend_and_the_week_opens_with_a_gap(market):
    t = market.ticks.times_ms
    weekday = (t // MS_PER_DAY + 3) % 7   # Monday = 0
    hour = (t % MS_PER_DAY) // MS_PER_HOUR
    assert not np.any((weekday == 5) | ((weekday == 4) & (hour >= 21)) | ((weekday == 6) & (hour < 21)))
    mid = (market.ticks.bid + market.ticks.ask) / 2
    opens = np.flatnonzero(np.diff(t) > MS_PER_DAY) + 1
    assert len(opens) == 8
    typical = np.median(np.abs(np.diff(mid)))
    assert np.median(np.abs(mid[opens] - mid[opens - 1])) > 20 * typical


def test_london_and_new_york_are_busier_than_asia(market):
    hour = (market.ticks.times_ms % MS_PER_DAY) // MS_PER_HOUR
    overlap = np.sum((hour >= 12) & (hour < 16)) / 4
    asia = np.sum((hour >= 1) & (hour < 7)) / 6
    assert overlap > 3 * asia


def test_every_regime_occurs_and_the_volatile_one_moves_most(market):
    assert set(np.unique(market.regimes)) == set(range(len(REGIMES)))
    t, mid = market.ticks.times_ms, (market.ticks.bid + market.ticks.ask) / 2
    hour = np.searchsorted(market.hour_starts, t, side="right") - 1
    moves = np.abs(np.diff(np.log(mid)))
    same_hour = hour[1:] == hour[:-1]
    per_regime = {r: np.mean(moves[same_hour & (market.regimes[hour[1:]] == r)]) for r in range(len(REGIMES))}
    assert per_regime[REGIMES.index("volatile")] > 1.5 * per_regime[REGIMES.index("range")]


def test_spreads_widen_at_the_rollover_and_around_news(market):
    t = market.ticks.times_ms
    spread = market.ticks.ask - market.ticks.bid
    hour = (t % MS_PER_DAY) // MS_PER_HOUR
    calm = np.median(spread[(hour >= 8) & (hour < 20)])
    assert np.median(spread[hour == 21]) > 2 * calm
    assert len(market.news_ms) > 0
    near_news = np.zeros(len(t), bool)
    for ms in market.news_ms:
        near_news |= (t >= ms) & (t < ms + 60_000)
    assert np.median(spread[near_news]) > 2 * calm
