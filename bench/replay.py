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

The last line printed is always one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time

# The installed package is measured (pip install .), never a source tree beside this script.

from mt5bridge.config import Config
from mt5bridge.core.engine import FeatureEngine
from mt5bridge.workbench.replay import Replay, synthetic_markets


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=float, default=60.0, help="days of synthetic EURUSD (default 60)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3)
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
    }
    if not args.json:
        print(f"replay, one symbol, broker and FTMO accounting on: {ticks_per_s:,.0f} ticks/s "
              f"({last.ticks:,} ticks, {len(last.trades)} trades, {len(last.commands)} commands)")
        print(f"features only (baseline):                  {features_only:,.0f} ticks/s "
              f"-> replay is {ticks_per_s / features_only:.2f}x of it")
        print(f"decision engine from a Python loop:        {python_loop:,.0f} ticks/s "
              f"-> replay is {ticks_per_s / python_loop:.1f}x faster")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
