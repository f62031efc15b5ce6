"""A deterministic synthetic market, for the demo, the tests and benchmarks.

What it makes, so a trader can read a chart of it and know what is real and what is not:

- **Ticks** in UTC, bid and ask, with a tick volume of 1 each. Ticks arrive as a Poisson process whose
  rate follows the sessions: quiet in Asia, busy in London and New York, busiest in their overlap.
- **Regimes** that switch at random on the hour: trending up, trending down, ranging (mean-reverting to a
  slowly moving anchor) and volatile. Each regime has its own drift and volatility, scaled by the session.
- **Weekends**: no ticks from Friday 21:00 UTC to Sunday 21:00 UTC, and the first Sunday price gaps away
  from Friday's close, as FX does.
- **Spread**: a base spread in points, wider at the daily rollover (21:00-22:00 UTC), in the volatile
  regime, on Sunday's open and around news.
- **News**: a few releases a week at a round minute, each a jump of several typical hourly moves with a
  spread that widens for two minutes.

The same arguments always give the same ticks (numpy's PCG64 seeded with ``seed``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from mt5bridge.market.readers import Ticks

MS_PER_S = 1000
MS_PER_HOUR = 3_600_000
MS_PER_DAY = 86_400_000

REGIMES = ("trend_up", "trend_down", "range", "volatile")
# Drift per hour in units of the hourly volatility, and the volatility multiplier of each regime.
_REGIME_DRIFT = np.array([0.2, -0.2, 0.0, 0.0])
_REGIME_VOL = np.array([1.0, 1.0, 0.7, 2.2])
# Probability of moving to each regime at the top of an hour, from each regime (rows sum to 1).
_REGIME_SWITCH = np.array(
    [
        [0.90, 0.02, 0.06, 0.02],
        [0.02, 0.90, 0.06, 0.02],
        [0.05, 0.05, 0.86, 0.04],
        [0.08, 0.08, 0.14, 0.70],
    ]
)


@dataclass(frozen=True)
class SymbolProfile:
    """What makes one synthetic symbol look like its real namesake."""

    name: str
    price: float          # starting mid price
    point: float          # price step of one point
    digits: int
    spread_points: float  # typical spread
    hourly_vol: float     # typical hourly move, as a fraction of price
    ticks_per_s: float    # typical tick rate in the London/New York overlap


PROFILES: dict[str, SymbolProfile] = {
    "EURUSD": SymbolProfile("EURUSD", 1.0850, 0.00001, 5, 8.0, 0.0011, 2.0),
    "GBPUSD": SymbolProfile("GBPUSD", 1.2650, 0.00001, 5, 11.0, 0.0013, 1.8),
    "USDJPY": SymbolProfile("USDJPY", 148.50, 0.001, 3, 10.0, 0.0012, 1.8),
    "XAUUSD": SymbolProfile("XAUUSD", 2030.0, 0.01, 2, 25.0, 0.0025, 3.0),
    "US30": SymbolProfile("US30", 37500.0, 0.01, 2, 200.0, 0.0020, 3.0),
}


def _session_activity(hour_utc: np.ndarray) -> np.ndarray:
    """Relative activity by UTC hour: Asia 0.35, London or New York 1.0, their overlap 1.5, late US 0.5."""
    act = np.full(hour_utc.shape, 0.35)
    london = (hour_utc >= 7) & (hour_utc < 16)
    new_york = (hour_utc >= 12) & (hour_utc < 21)
    act[london | new_york] = 1.0
    act[london & new_york] = 1.5
    act[(hour_utc >= 21) | (hour_utc < 1)] = 0.25
    return act


def _market_open(t_ms: np.ndarray) -> np.ndarray:
    """False from Friday 21:00 UTC to Sunday 21:00 UTC."""
    day = t_ms // MS_PER_DAY
    weekday = (day + 3) % 7  # Monday = 0
    hour = (t_ms % MS_PER_DAY) // MS_PER_HOUR
    closed = ((weekday == 4) & (hour >= 21)) | (weekday == 5) | ((weekday == 6) & (hour < 21))
    return ~closed


_BLOCK = 1 << 18


def _blocks(n: int, size: int = _BLOCK):
    """(start, end) of consecutive blocks covering range(n)."""
    return [(lo, min(n, lo + size)) for lo in range(0, n, size)]


def _hour_index(t: np.ndarray, t0: int):
    """A function giving the hour (index into the hours from t0) of the ticks t[lo:hi]."""
    return lambda lo, hi: (t[lo:hi] - t0) // MS_PER_HOUR


@dataclass(frozen=True)
class SyntheticMarket:
    """The ticks and what made them: each hour's start (UTC ms) and regime (index into REGIMES), and the news
    times (UTC ms)."""

    ticks: Ticks
    hour_starts: np.ndarray
    regimes: np.ndarray
    news_ms: np.ndarray


def generate_ticks(
    symbol: str = "EURUSD",
    days: float = 5.0,
    start: str | datetime = "2024-01-08T00:00:00Z",
    seed: int = 0,
    profile: SymbolProfile | None = None,
    news_per_week: float = 3.0,
) -> Ticks:
    """Synthetic ticks for ``symbol`` (a key of PROFILES, or any name with ``profile`` given)."""
    return generate_market(symbol, days, start, seed, profile, news_per_week).ticks


def generate_market(
    symbol: str = "EURUSD",
    days: float = 5.0,
    start: str | datetime = "2024-01-08T00:00:00Z",
    seed: int = 0,
    profile: SymbolProfile | None = None,
    news_per_week: float = 3.0,
) -> SyntheticMarket:
    """Synthetic ticks for ``symbol`` with the regimes and news behind them."""
    prof = profile or PROFILES.get(symbol.upper())
    if prof is None:
        raise ValueError(f"no synthetic profile for {symbol!r}; known: {', '.join(PROFILES)}")
    if not days > 0:
        raise ValueError(f"days must be > 0, got {days}")
    rng = np.random.default_rng(seed)
    start_dt = datetime.fromisoformat(start.replace("Z", "+00:00")) if isinstance(start, str) else start
    if start_dt.tzinfo is None:
        start_dt = start_dt.replace(tzinfo=timezone.utc)
    t0 = int(start_dt.timestamp() * 1000)
    hours = int(np.ceil(days * 24))
    hour_starts = t0 + np.arange(hours, dtype=np.int64) * MS_PER_HOUR

    # The random draws come whole, in a fixed order (the same seed gives the same market); everything computed
    # from them per tick is done a block of ticks at a time, into the arrays the ticks keep, so a long market
    # costs its three arrays and little more (no dozen full-length temporaries).

    # Ticks per hour from the session's activity; arrival times uniform inside the hour (Poisson process).
    hour_of_day = (hour_starts % MS_PER_DAY) // MS_PER_HOUR
    activity = _session_activity(hour_of_day) * _market_open(hour_starts)
    counts = rng.poisson(prof.ticks_per_s / 1.5 * 3600 * activity)
    t = rng.integers(0, MS_PER_HOUR, int(counts.sum()))
    first = np.r_[0, np.cumsum(counts)]
    for lo_h, hi_h in _blocks(hours, 24 * 7):
        t[first[lo_h]:first[hi_h]] += np.repeat(hour_starts[lo_h:hi_h], counts[lo_h:hi_h])
    t.sort()  # the same times as a stable sort by time of (time, hour); the hour is the time's own
    # Ticks fall in open hours only, but an hour cut by a start that is not on the hour can reach past one.
    if not all(_market_open(t[lo:hi]).all() for lo, hi in _blocks(t.size)):
        t = t[_market_open(t)]
    n = t.size
    hour_index = _hour_index(t, t0)

    # Regime path, one state per hour.
    regime = np.empty(hours, dtype=np.int64)
    regime[0] = rng.integers(0, len(REGIMES))
    u = rng.random(hours)
    cum = np.cumsum(_REGIME_SWITCH, axis=1)
    for h in range(1, hours):
        regime[h] = int(np.searchsorted(cum[regime[h - 1]], u[h]))

    # Log-price increments: per tick, the hour's drift and volatility shared among the hour's ticks.
    steps = rng.standard_normal(n)
    for lo, hi in _blocks(n):
        h = hour_index(lo, hi)
        reg = regime[h]
        per_hour_ticks = np.maximum(counts[h], 1)
        act = np.maximum(activity[h], 0.25)
        sigma = prof.hourly_vol * _REGIME_VOL[reg] * np.sqrt(act) / np.sqrt(per_hour_ticks)
        drift = prof.hourly_vol * _REGIME_DRIFT[reg] / per_hour_ticks
        steps[lo:hi] = drift + sigma * steps[lo:hi]

    # Weekend gap: the first tick after a closed market jumps by about one hourly move.
    gap = np.concatenate([np.flatnonzero(np.diff(t[lo:min(n, hi + 1)]) > MS_PER_DAY) + lo + 1
                          for lo, hi in _blocks(n)] or [np.empty(0, np.int64)])
    steps[gap] += prof.hourly_vol * rng.normal(0.0, 1.5, gap.size)

    # News: jumps at round minutes during the busy sessions.
    weeks = days / 7.0
    n_news = rng.poisson(news_per_week * weeks)
    news_ms = np.sort(t0 + (rng.random(n_news) * days * MS_PER_DAY).astype(np.int64) // 60_000 * 60_000)
    news_ms = news_ms[_market_open(news_ms)]
    news_after = np.searchsorted(t, news_ms)
    valid = news_after < n
    jump_sizes = prof.hourly_vol * rng.choice([-1.0, 1.0], news_ms.size) * rng.uniform(2.0, 5.0, news_ms.size)
    np.add.at(steps, news_after[valid], jump_sizes[valid])

    # The log mid price, in place of the steps: a running sum carried from block to block (adding the carry to
    # a block's first step gives the very sums one cumsum over the whole would).
    log_mid = steps
    log_start = np.log(prof.price)
    carry = 0.0
    for lo, hi in _blocks(n):
        block = log_mid[lo:hi]
        block[0] += carry
        np.cumsum(block, out=block)
        carry = float(block[-1])
        block += log_start
        # Mean reversion in ranging hours: pull each ranging tick 30% of the way back to its hour's open level,
        # the hour's first tick (which this leaves as it is, so one in an earlier block reads the same).
        h = hour_index(lo, hi)
        ranging = regime[h] == 2
        if ranging.any():
            anchor = np.searchsorted(t, hour_starts[h[ranging]])
            block[ranging] -= 0.3 * (block[ranging] - log_mid[anchor])
    mid = np.exp(log_mid, out=log_mid)

    # Spread in points: base, times the rollover, regime, Sunday-open and news widenings; bid and ask from
    # the mid, into the arrays of the mid and the spread.
    spread = rng.uniform(0.8, 1.3, n)
    spread *= prof.spread_points
    windows = [np.searchsorted(t, [ms - 60_000, ms + 120_000]) for ms in news_ms]
    for lo, hi in _blocks(n):
        block = spread[lo:hi]
        block[(t[lo:hi] % MS_PER_DAY) // MS_PER_HOUR == 21] *= 3.0
        block[regime[hour_index(lo, hi)] == 3] *= 1.8
        block[gap[np.searchsorted(gap, lo):np.searchsorted(gap, hi)] - lo] *= 4.0
    for w_lo, w_hi in windows:
        spread[w_lo:w_hi] *= 4.0
    point = prof.point
    for lo, hi in _blocks(n):
        sp = np.round(spread[lo:hi]) * point
        bid = np.round((mid[lo:hi] - sp / 2) / point) * point
        ask = np.round((bid + sp) / point) * point
        mid[lo:hi] = np.round(bid, prof.digits)
        spread[lo:hi] = np.round(ask, prof.digits)
    bid, ask = mid, spread
    # Every tick's volume is 1: one shared value, not eight bytes per tick.
    ticks = Ticks(times_ms=t, bid=bid, ask=ask, volume=np.broadcast_to(1.0, n))
    return SyntheticMarket(ticks, hour_starts, regime, news_ms)
