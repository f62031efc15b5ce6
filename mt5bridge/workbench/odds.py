"""The odds of passing: a Monte Carlo over the replayed days, under the product's own rules.

One replay is one path through the market; the trader's question is what the same behaviour gives on the
paths it did not take. Each simulated path is a sequence of days drawn from the replay:

- ``odds_of_passing``: a circular block bootstrap of whole days (blocks of ``block`` consecutive days, so a
  bad week stays a bad week): each day's closed profit, its lowest equity and whether a position was opened;
- ``odds_by_trade_order``: the trades in a random order (drawn with replacement), as many each day as on a
  day drawn from the replay, each trade's worst floating loss counted where it falls in its day (days of k
  trades are drawn from 4,096 random days of k trades made once per run).

A path ends on the first day that breaks a loss limit (failed) or meets every objective (passed): the profit
target on closed balance, the minimum trading days and, on the 1-Step, the best-day rule. A day that both
breaks a limit and reaches the target counts as failed (the order inside the day is not known). Without a
profit target (a funded account) a path passes when it breaks nothing over the horizon.

Money is in % of the initial balance, as FTMO's limits are: the daily limit is broken when a day's lowest
equity is more than ``daily_loss_pct`` below its start balance; the overall limit when equity goes below
−``max_loss_pct`` (``eod_trailing``: below the highest end-of-day balance so far, never under the start, minus
it). Everything is vectorised over paths with numpy; ``seed`` makes a run repeatable.

Confidence intervals: 95% intervals of each figure had the replayed days been another draw of the same
market, from ``ci_groups`` groups of paths, each group drawn from its own resample of the replayed days (or
trades); Monte Carlo noise is included, so they are, if anything, wide.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mt5bridge.workbench.tester import prague_day

DEFAULT_PATHS = 10_000
DEFAULT_BLOCK = 5
DEFAULT_HORIZON_DAYS = 252     # replayed days: about a year of weekdays
DEFAULT_CI_GROUPS = 100
_CHUNK = 2_000                 # paths simulated at once: bounds memory (a few MB per array)
_SEGMENT = 40                  # days drawn at a time before decided paths are dropped
_POOL = 4096                   # random days of each number of trades the trade-order Monte Carlo draws from
_EPS = 1e-9


@dataclass(frozen=True)
class Rules:
    """FTMO's rules in % of the initial balance."""

    daily_loss_pct: float
    max_loss_pct: float
    eod_trailing: bool
    profit_target_pct: float
    min_trading_days: int
    best_day_max_share: float | None   # the 1-Step's best-day rule, None on the 2-Step

    @classmethod
    def of(cls, cfg) -> Rules:
        f = cfg.ftmo
        return cls(float(f.daily_loss_pct), float(f.max_loss_pct), f.max_loss_mode == "eod_trailing",
                   float(f.profit_target_pct), int(f.min_trading_days),
                   float(f.best_day_max_share) if cfg.account.product == "1-step" else None)


# --- the rules on a batch of paths ------------------------------------------------------------------------------

@dataclass
class Carry:
    """Where undecided paths stand after some days: balance, best end-of-day balance (never under the start),
    trading days, best day, days played."""

    balance: np.ndarray
    peak: np.ndarray
    traded: np.ndarray
    best: np.ndarray
    days: int = 0

    @classmethod
    def start(cls, paths: int) -> Carry:
        return cls(np.zeros(paths), np.zeros(paths), np.zeros(paths, dtype=np.int64), np.full(paths, -np.inf))

    def take(self, keep: np.ndarray) -> Carry:
        return Carry(self.balance[keep], self.peak[keep], self.traded[keep], self.best[keep], self.days)


def judge(pnl: np.ndarray, low: np.ndarray, traded: np.ndarray, rules: Rules, carry: Carry | None = None,
          last: bool = True) -> dict[str, Any]:
    """Outcome of each path (rows) of days (columns): ``passed``, ``daily_breach``, ``max_breach`` (booleans),
    ``days`` (the day number, from 1, on which the path passed; 0 otherwise), and ``carry``, where the paths
    stand after these days.

    ``pnl``: each day's closed profit, ``low``: each day's lowest equity minus its start balance (<= 0),
    ``traded``: a position was opened that day. ``carry``: where the paths stood before these days (a path
    played in parts); ``last``: these are the horizon's last days (a funded account's survivors pass then).
    """
    paths, horizon = pnl.shape
    carry = carry or Carry.start(paths)
    end = carry.balance[:, None] + np.cumsum(pnl, axis=1)
    start = end - pnl
    daily = low < -rules.daily_loss_pct - _EPS
    peak = np.maximum.accumulate(np.maximum(end, carry.peak[:, None]), axis=1)
    if rules.eod_trailing:
        floor = np.empty_like(end)
        floor[:, 0] = carry.peak - rules.max_loss_pct
        floor[:, 1:] = peak[:, :-1] - rules.max_loss_pct
    else:
        floor = -rules.max_loss_pct
    overall = start + low < floor - _EPS
    broken = daily | overall
    never = horizon + 1
    first_break = np.where(broken.any(axis=1), broken.argmax(axis=1), never)
    days_traded = carry.traded[:, None] + np.cumsum(traded, axis=1)
    best = np.maximum(np.maximum.accumulate(pnl, axis=1), carry.best[:, None])
    if rules.profit_target_pct > 0:
        hit = (end >= rules.profit_target_pct - _EPS) & (days_traded >= rules.min_trading_days)
        if rules.best_day_max_share is not None:
            hit &= best <= rules.best_day_max_share * end + _EPS
        first_hit = np.where(hit.any(axis=1), hit.argmax(axis=1), never)
        passed = first_hit < first_break
    else:
        first_hit = np.full(paths, never)
        passed = (first_break == never) & last
    failed = (first_break < never) & ~passed
    rows = np.arange(paths)
    at = np.minimum(first_break, horizon - 1)
    return {
        "passed": passed,
        "daily_breach": failed & daily[rows, at],
        "max_breach": failed & overall[rows, at],
        "days": np.where(passed & (first_hit < never), carry.days + first_hit + 1, 0),
        "carry": Carry(end[:, -1], peak[:, -1], days_traded[:, -1], best[:, -1], carry.days + horizon),
    }


# --- resampling ---------------------------------------------------------------------------------------------

def block_indices(rng: np.random.Generator, n: int, rows: int, length: int, block: int) -> np.ndarray:
    """Circular block bootstrap: ``rows`` × ``length`` indices into 0..n−1, in runs of ``block`` consecutive
    ones (wrapping round the end) from random starts."""
    block = max(1, min(block, n))
    blocks = -(-length // block)
    starts = rng.integers(0, n, size=(rows, blocks))
    idx = (starts[:, :, None] + np.arange(block)) % n
    return idx.reshape(rows, blocks * block)[:, :length]


Sampler = Callable[[np.random.Generator, int, int, Any], tuple[np.ndarray, np.ndarray, np.ndarray]]


def _play(sampler: Sampler, rules: Rules, rng: np.random.Generator, paths: int, horizon: int, segment: int,
          source: Any) -> dict[str, np.ndarray]:
    """``paths`` paths of ``horizon`` days, drawn ``segment`` days at a time: a path that has passed or failed
    is not drawn further (most are decided long before the horizon)."""
    outcome = {k: np.zeros(paths, dtype=bool) for k in ("passed", "daily_breach", "max_breach")}
    outcome["days"] = np.zeros(paths, dtype=np.int64)
    alive = np.arange(paths)
    carry = Carry.start(paths)
    while len(alive) and carry.days < horizon:
        length = min(segment, horizon - carry.days)
        got = judge(*sampler(rng, len(alive), length, source), rules, carry,
                    last=carry.days + length >= horizon)
        for k in outcome:
            outcome[k][alive] = got[k]
        open_ = ~(got["passed"] | got["daily_breach"] | got["max_breach"])
        alive, carry = alive[open_], got["carry"].take(open_)
    return outcome


def _simulate(sampler: Sampler, rules: Rules, *, paths: int, block: int, horizon: int, seed: int,
              ci_groups: int, resample_source: Callable[[np.random.Generator], Any]) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    # Segments a whole number of blocks long, so a path drawn in parts is drawn as one.
    segment = block * max(1, -(-_SEGMENT // block))
    parts = [_play(sampler, rules, rng, min(_CHUNK, paths - done), horizon, segment, None)
             for done in range(0, paths, _CHUNK)]
    out = _figures({k: np.concatenate([p[k] for p in parts]) for k in parts[0]})
    groups = []
    if ci_groups >= 2:
        per_group = max(20, paths // ci_groups)
        for _ in range(ci_groups):
            groups.append(_figures(_play(sampler, rules, rng, per_group, horizon, segment, resample_source(rng))))
    for key in ("p_pass", "p_daily_breach", "p_max_breach", "median_days_to_target"):
        values = [g[key] for g in groups if g[key] is not None]
        out[key + "_ci"] = ([float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))]
                            if len(values) >= 2 else None)
    out.update({"paths": paths, "block": block, "seed": seed, "ci_groups": ci_groups})
    return out


def _figures(o: dict[str, np.ndarray]) -> dict[str, Any]:
    n = len(o["passed"])
    passed_days = o["days"][o["passed"] & (o["days"] > 0)]
    return {
        "p_pass": float(o["passed"].mean()) if n else None,
        "p_daily_breach": float(o["daily_breach"].mean()) if n else None,
        "p_max_breach": float(o["max_breach"].mean()) if n else None,
        "p_undecided": float((~o["passed"] & ~o["daily_breach"] & ~o["max_breach"]).mean()) if n else None,
        "median_days_to_target": float(np.median(passed_days)) if len(passed_days) else None,
    }


def _empty(method: str, paths: int, block: int, horizon: int, seed: int) -> dict[str, Any]:
    out = {k: None for k in ("p_pass", "p_daily_breach", "p_max_breach", "p_undecided", "median_days_to_target",
                             "p_pass_ci", "p_daily_breach_ci", "p_max_breach_ci", "median_days_to_target_ci")}
    out.update({"paths": paths, "block": block, "seed": seed, "ci_groups": 0, "method": method,
                "horizon_days": horizon, "source_days": 0})
    return out


def history_block(n: int, block: int) -> int:
    """The block for resampling the replayed history itself (the intervals): the paths' block, but shorter
    for a short history, whose resamples in long blocks would be little more than the history rotated (and
    the interval falsely narrow)."""
    return block if n >= 4 * block else max(1, n // 4)


def _check(paths: int, block: int, horizon_days: int) -> None:
    for name, value in (("paths", paths), ("block", block), ("horizon_days", horizon_days)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")


# --- the two Monte Carlos -------------------------------------------------------------------------------------

def odds_of_passing(
    daily_pnl_pct: Sequence[float], cfg, *, daily_low_pct: Sequence[float] | None = None,
    traded: Sequence[bool] | None = None, paths: int = DEFAULT_PATHS, block: int = DEFAULT_BLOCK,
    horizon_days: int = DEFAULT_HORIZON_DAYS, seed: int = 0, ci_groups: int = DEFAULT_CI_GROUPS,
) -> dict[str, Any]:  # fmt: skip
    """P(pass), P(daily-limit breach), P(max-loss breach) and the median days to the target, with 95%
    intervals, from a block bootstrap of the replayed days.

    ``daily_pnl_pct``: each replayed day's closed profit, % of the initial balance. ``daily_low_pct``: each
    day's lowest equity minus its start balance, same unit (default: the day's loss, if any). ``traded``: a
    position was opened that day (default: the day's profit is not zero). ``cfg``: the Config whose
    ``[ftmo]`` rules and ``account.product`` apply.
    """
    _check(paths, block, horizon_days)
    pnl = np.asarray(daily_pnl_pct, dtype=np.float64)
    n = len(pnl)
    if n == 0:
        return _empty("days", paths, block, horizon_days, seed)
    low = np.minimum(pnl, 0.0) if daily_low_pct is None else np.minimum(np.asarray(daily_low_pct, np.float64), 0.0)
    flag = pnl != 0 if traded is None else np.asarray(traded, dtype=bool)
    block = min(block, n)   # a block longer than the history is the whole history
    if len(low) != n or len(flag) != n:
        raise ValueError(f"daily_low_pct and traded must have one value per day ({n})")
    if not (np.isfinite(pnl).all() and np.isfinite(low).all()):
        raise ValueError("daily results must be finite numbers")

    def sampler(rng, rows, length, source):
        idx = block_indices(rng, n, rows, length, block)
        if source is not None:
            idx = source[idx]
        return pnl[idx], low[idx], flag[idx]

    out = _simulate(sampler, Rules.of(cfg), paths=paths, block=block, horizon=horizon_days, seed=seed,
                    ci_groups=ci_groups,
                    resample_source=lambda rng: block_indices(rng, n, 1, n, history_block(n, block))[0])
    out.update({"method": "days", "horizon_days": horizon_days, "source_days": n})
    return out


def odds_by_trade_order(
    trade_pnl_pct: Sequence[float], trades_per_day: Sequence[int], cfg, *,
    trade_low_pct: Sequence[float] | None = None, paths: int = DEFAULT_PATHS, block: int = DEFAULT_BLOCK,
    horizon_days: int = DEFAULT_HORIZON_DAYS, seed: int = 0, ci_groups: int = DEFAULT_CI_GROUPS,
) -> dict[str, Any]:  # fmt: skip
    """The same odds from the trades in random order: each simulated day takes the number of trades of a
    replayed day (block bootstrap of the days' counts) and that many trades drawn with replacement (from about
    4,096 such random days made once per run for each number of trades, each trade equally often at each place
    of a day, which keeps a year of paths fast).

    ``trade_pnl_pct``: each trade's money, % of the initial balance; ``trade_low_pct``: its worst floating
    result (<= 0; default: its loss, if any); ``trades_per_day``: trades opened on each replayed day. A day's
    lowest equity is the worst of its trades' lows, each on top of the day's closed result before it.
    """
    _check(paths, block, horizon_days)
    pnl = np.asarray(trade_pnl_pct, dtype=np.float64)
    counts = np.asarray(trades_per_day, dtype=np.int64)
    m, n = len(pnl), len(counts)
    if m == 0 or n == 0 or counts.sum() == 0:
        out = _empty("trade_order", paths, block, horizon_days, seed)
        out["source_days"] = n
        return out
    worst = np.minimum(pnl, 0.0) if trade_low_pct is None else np.minimum(np.asarray(trade_low_pct, np.float64), 0.0)
    if len(worst) != m or (counts < 0).any():
        raise ValueError("trade_low_pct needs one value per trade, and trades_per_day counts >= 0")
    worst = np.minimum(worst, pnl)
    block = min(block, n)

    kinds, kind_of_day = np.unique(counts, return_inverse=True)   # the distinct numbers of trades a day

    def pool(rng, trades: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """About _POOL random days of each number of trades, made from ``trades`` in random order: each day's
        closed result and lowest equity (each trade's low on top of the day's result before it). Each trade
        stands equally often at each place of a day (a shuffled whole number of rounds of them), so the pool
        carries the trades' own mix exactly."""
        size = len(trades) * -(-_POOL // len(trades))
        day_pnl = np.zeros((len(kinds), size))
        day_low = np.zeros((len(kinds), size))
        for row, k in enumerate(kinds):
            if k == 0:
                continue
            drawn = np.stack([rng.permutation(np.resize(trades, size)) for _ in range(k)], axis=1)
            closed = np.cumsum(pnl[drawn], axis=1)
            before = closed - pnl[drawn]
            day_pnl[row] = closed[:, -1]
            day_low[row] = np.minimum(np.minimum((before + worst[drawn]).min(axis=1), closed[:, -1]), 0.0)
        return day_pnl, day_low

    everything = (np.arange(n), *pool(np.random.default_rng([seed, 1]), np.arange(m)))

    def sampler(rng, rows, length, source):
        days, day_pnl, day_low = source if source is not None else everything
        kind = kind_of_day[days[block_indices(rng, n, rows, length, block)]]
        slot = rng.integers(0, day_pnl.shape[1], size=kind.shape)
        return day_pnl[kind, slot], day_low[kind, slot], kinds[kind] > 0

    def resample(rng):
        return (block_indices(rng, n, 1, n, history_block(n, block))[0], *pool(rng, rng.integers(0, m, size=m)))

    out = _simulate(sampler, Rules.of(cfg), paths=paths, block=block, horizon=horizon_days, seed=seed,
                    ci_groups=ci_groups,
                    resample_source=resample)
    out.update({"method": "trade_order", "horizon_days": horizon_days, "source_days": n, "source_trades": m})
    return out


TRADE_ORDER_SHARE = 4
"""The trade-order Monte Carlo of a report draws paths / TRADE_ORDER_SHARE paths: it is the second opinion, twice
the days' cost per path, and its intervals (reported with it) say what the fewer paths cost in precision."""


def odds_of_replay(result, *, paths: int = DEFAULT_PATHS, block: int = DEFAULT_BLOCK,
                   horizon_days: int = DEFAULT_HORIZON_DAYS, seed: int = 0) -> dict[str, Any]:
    """Both Monte Carlos for a ReplayResult: the days' bootstrap with ``paths`` paths, with the trade-order one
    (``paths // TRADE_ORDER_SHARE`` paths) under ``trade_order``."""
    initial = result.initial_balance
    pct = 100.0 / initial
    days = result.days
    traded_days = set(result.trading_days)
    out = odds_of_passing([(e - s) * pct for _d, s, e, _lo in days], result.config,
                          daily_low_pct=[(lo - s) * pct for _d, s, _e, lo in days],
                          traded=[d in traded_days for d, *_ in days], paths=paths, block=block,
                          horizon_days=horizon_days, seed=seed)
    index = {d: i for i, (d, *_rest) in enumerate(days)}
    per_day = np.zeros(len(days), dtype=np.int64)
    for t in result.trades:
        i = index.get(prague_day(t["open_time_ms"]))
        if i is not None:
            per_day[i] += 1
    lows = []
    for t in result.trades:
        risk = t.get("risk_money") or 0.0
        lows.append(min(t["mae_r"] * risk if risk > 0 else 0.0, t["profit"], 0.0) * pct)
    out["trade_order"] = odds_by_trade_order([t["profit"] * pct for t in result.trades], per_day, result.config,
                                             trade_low_pct=lows, paths=max(1, paths // TRADE_ORDER_SHARE),
                                             block=block,
                                             horizon_days=horizon_days, seed=seed)
    return out
