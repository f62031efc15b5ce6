"""Benchmark of `mt5bridge replay`: ticks per second of a one-symbol replay with the broker and FTMO accounting on.

Run from the repository root, with the engine built in place::

    python bench/replay.py            # a readable table, then one JSON line
    python bench/replay.py --json     # only the JSON line
    python bench/replay.py --days 90 --seed 3

Input: the deterministic synthetic EURUSD of ``mt5bridge.market.synthetic`` (``--days`` of it, ``--seed``), with the
default configuration, so the engine trades as it would out of the box (entries, exits, stops hit by the
broker, FTMO accounting on every tick). The first 14 days warm the features (untimed, as in `replay`).

What is measured, in one process, one after the other on the same ticks:

1. ``ticks_per_s``: ``Replay.run()`` over every tick after the warm-up, median of ``--repeat`` runs, each on a
   fresh Replay (construction, data merging and warm-up are outside the timing; the report is not built).
2. ``features_only_ticks_per_s`` (baseline): ``FeatureEngine.process_ticks`` over the same ticks on an engine
   warmed the same way: bars, the 147 features and the score, with no decisions, no broker, no accounting.
   ``ratio_to_features_only`` = ``ticks_per_s`` / that: what deciding, the broker and FTMO's accounting cost.
3. ``python_loop_ticks_per_s`` (baseline): the same decision engine fed tick by tick from a plain Python loop
   (``DecisionEngine.on_tick`` with the balance and equity), over the first 300,000 ticks, no broker — the
   least a replay written in Python per tick would cost. ``ratio_to_python_loop`` = ``ticks_per_s`` / that.
4. ``odds_days_s`` and ``odds_trade_order_s``: the odds of passing (``mt5bridge.workbench.odds``) for the last
   replay's days and trades, ``--paths`` paths (default 10,000) over ``--horizon`` days (default 252, a year of
   weekdays), confidence intervals included (which doubles the paths simulated); median of ``--repeat`` runs.
   ``odds_days_no_ci_s``: the days' paths alone, without the intervals. Baseline: the same block bootstrap and
   rules in a plain Python loop, path by path and day by day, timed on 500 paths and scaled to ``--paths``
   (``odds_python_loop_s``); ``odds_ratio_to_python_loop`` = that / ``odds_days_no_ci_s`` (the same work).

The last line printed is always one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import time

# The installed package is measured (pip install .), never a source tree beside this script.
from mt5bridge.config import Config
from mt5bridge.core.engine import FeatureEngine
from mt5bridge.workbench.odds import Rules, odds_of_passing, odds_of_replay
from mt5bridge.workbench.replay import Replay, synthetic_markets


def python_loop_odds(pnl: list[float], low: list[float], traded: list[bool], rules: Rules, *, paths: int,
                     horizon: int, block: int, seed: int = 0) -> float:
    """P(pass) by the same block bootstrap and rules, one path and one day at a time in plain Python: the least a
    Monte Carlo that is not vectorised costs (the baseline of ``odds_days_s``)."""
    rng = random.Random(seed)
    n, passed = len(pnl), 0
    for _ in range(paths):
        balance = peak = 0.0
        days_traded = 0
        best = float("-inf")
        day = 0
        while day < horizon:
            start = rng.randrange(n)
            for k in range(block):
                if day >= horizon:
                    break
                i = (start + k) % n
                floor = (peak if rules.eod_trailing else 0.0) - rules.max_loss_pct
                if low[i] < -rules.daily_loss_pct or balance + low[i] < floor:
                    day = horizon + 1
                    break
                balance += pnl[i]
                peak = max(peak, balance)
                days_traded += traded[i]
                best = max(best, pnl[i])
                if (balance >= rules.profit_target_pct and days_traded >= rules.min_trading_days
                        and (rules.best_day_max_share is None or best <= rules.best_day_max_share * balance)):
                    passed += 1
                    day = horizon + 1
                    break
                day += 1
    return passed / paths


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=float, default=60.0, help="days of synthetic EURUSD (default 60)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--paths", type=int, default=10_000, help="Monte Carlo paths of the odds (default 10000)")
    ap.add_argument("--horizon", type=int, default=252, help="days of each Monte Carlo path (default 252)")
    ap.add_argument("--json", action="store_true", help="print only the JSON line")
    args = ap.parse_args()

    markets = synthetic_markets(["EURUSD"], days=args.days, seed=args.seed)
    cfg = Config()
    rates, last = [], None
    for _ in range(args.repeat):
        replay = Replay(cfg, markets)
        gc.collect()
        gc.disable()
        t0 = time.perf_counter()
        last = replay.run()
        elapsed = time.perf_counter() - t0
        gc.enable()
        rates.append(last.ticks / elapsed)
    ticks_per_s = statistics.median(rates)

    # Baseline 1: features only, on the same ticks after the same warm-up.
    replay = Replay(cfg, markets)
    sym, t, bid, ask, vol, _cont = replay._arrays
    feature_rates = []
    for _ in range(args.repeat):
        fe = FeatureEngine()
        warm = replay.markets[0].ticks
        cut = int((warm.times_ms < t[0]).sum())
        fe.process_ticks(warm.times_ms[:cut], warm.bid[:cut], warm.ask[:cut], warm.volume[:cut], 3)
        t0 = time.perf_counter()
        fe.process_ticks(t, bid, ask, vol, 3)
        feature_rates.append(len(t) / (time.perf_counter() - t0))
    features_only = statistics.median(feature_rates)

    # Baseline 2: the decision engine fed from a Python loop (no broker), first 300k ticks.
    n = min(300_000, len(t))
    engine = replay.engine
    times, bids, asks, vols = t[:n].tolist(), bid[:n].tolist(), ask[:n].tolist(), vol[:n].tolist()
    on_tick = engine.on_tick
    balance = equity = 100_000.0
    gc.disable()
    t0 = time.perf_counter()
    for i in range(n):
        on_tick(0, times[i], bids[i], asks[i], vols[i], balance, equity, 0.0)
    python_loop = n / (time.perf_counter() - t0)
    gc.enable()

    # The odds of passing on the last replay's days and trades.
    initial = last.initial_balance
    pnl = [(e - s) * 100 / initial for _d, s, e, _lo in last.days]
    low = [(lo - s) * 100 / initial for _d, s, _e, lo in last.days]
    traded_days = set(last.trading_days)
    traded = [d in traded_days for d, *_ in last.days]
    odds_runs, trade_runs, bare_runs = [], [], []
    for seed in range(args.repeat):
        t0 = time.perf_counter()
        odds_of_passing(pnl, cfg, daily_low_pct=low, traded=traded, paths=args.paths, horizon_days=args.horizon,
                        seed=seed, ci_groups=0)
        bare_runs.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        odds = odds_of_passing(pnl, cfg, daily_low_pct=low, traded=traded, paths=args.paths,
                               horizon_days=args.horizon, seed=seed)
        odds_runs.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        both = odds_of_replay(last, paths=args.paths, horizon_days=args.horizon, seed=seed)
        trade_runs.append(time.perf_counter() - t0 - odds_runs[-1])
    odds_s, trade_order_s = statistics.median(odds_runs), max(0.0, statistics.median(trade_runs))
    bare_s = statistics.median(bare_runs)
    base_paths = 500
    t0 = time.perf_counter()
    python_loop_odds(pnl, low, traded, Rules.of(cfg), paths=base_paths, horizon=args.horizon, block=odds["block"])
    python_odds_s = (time.perf_counter() - t0) * args.paths / base_paths

    out = {
        "ticks_per_s": round(ticks_per_s),
        "ticks": last.ticks,
        "symbols": 1,
        "days": args.days,
        "trades": len(last.trades),
        "commands": len(last.commands),
        "runs_ticks_per_s": [round(r) for r in rates],
        "features_only_ticks_per_s": round(features_only),
        "ratio_to_features_only": round(ticks_per_s / features_only, 3),
        "python_loop_ticks_per_s": round(python_loop),
        "ratio_to_python_loop": round(ticks_per_s / python_loop, 2),
        "odds_paths": args.paths,
        "odds_horizon_days": args.horizon,
        "odds_source_days": len(pnl),
        "odds_days_s": round(odds_s, 4),
        "odds_days_no_ci_s": round(bare_s, 4),
        "odds_trade_order_s": round(trade_order_s, 4),
        "odds_python_loop_s": round(python_odds_s, 3),
        "odds_ratio_to_python_loop": round(python_odds_s / bare_s, 1),
        "odds_p_pass": odds["p_pass"],
        "odds_trade_order_p_pass": both["trade_order"]["p_pass"],
    }
    if not args.json:
        print(f"replay, one symbol, broker and FTMO accounting on: {ticks_per_s:,.0f} ticks/s "
              f"({last.ticks:,} ticks, {len(last.trades)} trades, {len(last.commands)} commands)")
        print(f"features only (baseline):                  {features_only:,.0f} ticks/s "
              f"-> replay is {ticks_per_s / features_only:.2f}x of it")
        print(f"decision engine from a Python loop:        {python_loop:,.0f} ticks/s "
              f"-> replay is {ticks_per_s / python_loop:.1f}x faster")
        print(f"odds of passing, {args.paths:,} paths x {args.horizon} days (intervals included): "
              f"{odds_s:.3f} s by days, {trade_order_s:.3f} s by trade order; "
              f"the days' paths alone {bare_s:.3f} s, the same in a plain Python loop {python_odds_s:.2f} s "
              f"({python_odds_s / bare_s:.0f}x slower)")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
