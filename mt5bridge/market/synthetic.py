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

    # Ticks per hour from the session's activity; arrival times uniform inside the hour (Poisson process).
    hour_of_day = (hour_starts % MS_PER_DAY) // MS_PER_HOUR
    activity = _session_activity(hour_of_day) * _market_open(hour_starts)
    counts = rng.poisson(prof.ticks_per_s / 1.5 * 3600 * activity)
    n = int(counts.sum())
    hour_index = np.repeat(np.arange(hours), counts)
    t = hour_starts[hour_index] + rng.integers(0, MS_PER_HOUR, n)
    order = np.argsort(t, kind="stable")
    t = t[order]
    hour_index = hour_index[order]
    keep = _market_open(t)
    t = t[keep]
    hour_index = hour_index[keep]
    n = t.size

    # Regime path, one state per hour.
    regime = np.empty(hours, dtype=np.int64)
    regime[0] = rng.integers(0, len(REGIMES))
    u = rng.random(hours)
    cum = np.cumsum(_REGIME_SWITCH, axis=1)
    for h in range(1, hours):
        regime[h] = int(np.searchsorted(cum[regime[h - 1]], u[h]))
    reg = regime[hour_index]

    # Log-price increments: per tick, the hour's drift and volatility shared among the hour's ticks.
    per_hour_ticks = np.maximum(counts[hour_index], 1)
    act = np.maximum(activity[hour_index], 0.25)
    sigma = prof.hourly_vol * _REGIME_VOL[reg] * np.sqrt(act) / np.sqrt(per_hour_ticks)
    drift = prof.hourly_vol * _REGIME_DRIFT[reg] / per_hour_ticks
    steps = drift + sigma * rng.standard_normal(n)

    # Weekend gap: the first tick after a closed market jumps by about one hourly move.
    dt = np.diff(t, prepend=t[0] if n else 0)
    gap = dt > MS_PER_DAY
    steps[gap] += prof.hourly_vol * rng.normal(0.0, 1.5, int(gap.sum()))

    # News: jumps at round minutes during the busy sessions.
    weeks = days / 7.0
    n_news = rng.poisson(news_per_week * weeks)
    news_ms = np.sort(t0 + (rng.random(n_news) * days * MS_PER_DAY).astype(np.int64) // 60_000 * 60_000)
    news_ms = news_ms[_market_open(news_ms)]
    news_after = np.searchsorted(t, news_ms)
    valid = news_after < n
    jump_sizes = prof.hourly_vol * rng.choice([-1.0, 1.0], news_ms.size) * rng.uniform(2.0, 5.0, news_ms.size)
    np.add.at(steps, news_after[valid], jump_sizes[valid])

    log_mid = np.log(prof.price) + np.cumsum(steps)
    # Mean reversion in ranging hours: pull each ranging tick 30% of the way back to its hour's open level.
    if n:
        first_of_hour = np.r_[True, hour_index[1:] != hour_index[:-1]]
        anchor = np.maximum.accumulate(np.where(first_of_hour, np.arange(n), 0))
        ranging = reg == 2
        log_mid[ranging] -= 0.3 * (log_mid[ranging] - log_mid[anchor[ranging]])
    mid = np.exp(log_mid)

    # Spread in points: base, times the rollover, regime, Sunday-open and news widenings.
    hour_of_tick = (t % MS_PER_DAY) // MS_PER_HOUR
    spread = prof.spread_points * rng.uniform(0.8, 1.3, n)
    spread[hour_of_tick == 21] *= 3.0
    spread[reg == 3] *= 1.8
    spread[gap] *= 4.0
    for ms in news_ms:
        lo, hi = np.searchsorted(t, [ms - 60_000, ms + 120_000])
        spread[lo:hi] *= 4.0
    spread = np.round(spread) * prof.point
    bid = np.round((mid - spread / 2) / prof.point) * prof.point
    ask = np.round((bid + spread) / prof.point) * prof.point
    bid = np.round(bid, prof.digits)
    ask = np.round(ask, prof.digits)
    ticks = Ticks(times_ms=t.astype(np.int64), bid=bid, ask=ask, volume=np.ones(n))
    return SyntheticMarket(ticks, hour_starts, regime, news_ms)
