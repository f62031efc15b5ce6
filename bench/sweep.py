"""Benchmark of `mt5bridge sweep`: replays per second on one process, two local processes and a two-worker Dask
LocalCluster over the same grid, and what a second, fully stored run of the same sweep costs.

Run with mt5bridge installed (with the ``cluster`` extra)::

    python bench/sweep.py            # a readable table, then one JSON line
    python bench/sweep.py --json     # only the JSON line
    python bench/sweep.py --quick    # a small grid on a short market, seconds (what the tests run)

Input: the deterministic synthetic EURUSD of ``mt5bridge.market.synthetic`` (``--days``, ``--seed``), one day of
warm-up, the default configuration, a grid of ``entry.min_score`` x ``exits.sl_atr`` (``--runs`` combinations).

What is measured, one after the other, each on an empty result store so that every run is replayed:

1. ``one_process_replays_per_s`` (baseline): the whole sweep in this process, wall time.
2. ``two_processes_replays_per_s``: two local processes (spawned, as on Windows), wall time including their
   start. ``scaling_efficiency`` = that / (2 x the baseline): 1.0 is perfect scaling (goal >= 0.9).
3. ``cluster_replays_per_s``: a two-worker LocalCluster already started (its start, ``cluster_start_s``, is
   apart, as a cluster is started once for many sweeps), wall time including scattering the markets.
   ``cluster_overhead_pct_per_run`` = how much longer a run takes on the cluster than on two local processes
   (goal <= 5 %).
4. ``stored_rerun_s``: the same sweep again on the store of step 2, every run read back (goal: seconds).

``replay_s_mean_*`` is the mean time one replay took where it ran (from the store): when it grows with two
workers, the two cores were shared with something else, not lost to the executor. ``*_busy_share`` is the share
of the two workers' wall time spent inside replays (1.0: the executor cost nothing). ``load_avg_1min`` is the
machine's load when the benchmark started: on a shared machine, efficiency figures are noisy; compare them
with that in mind. The last line printed is always one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

# The installed package is measured (pip install .), never a source tree beside this script.
from mt5bridge.config import Config
from mt5bridge.workbench.replay import synthetic_markets
from mt5bridge.workbench.store import ResultStore
from mt5bridge.workbench.sweep import plan_from_dict, run_sweep


def _replay_seconds(path: Path) -> list[float]:
    with sqlite3.connect(path) as db:
        return [s for (s,) in db.execute("SELECT seconds FROM results")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=float, default=30.0, help="days of synthetic EURUSD (default 30)")
    ap.add_argument("--runs", type=int, default=24, help="combinations in the grid (default 24)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="4 runs on 4 days: checks the benchmark runs")
    ap.add_argument("--json", action="store_true", help="print only the JSON line")
    args = ap.parse_args()
    if args.quick:
        args.days, args.runs = 4.0, 4

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    scores = list(range(0, 80, 10))
    per = max(1, -(-args.runs // len(scores)))
    stops = [round(1.0 + 0.25 * k, 2) for k in range(per)]
    base = Config()
    plan = plan_from_dict({"parameters": {"exits.sl_atr": stops, "entry.min_score": scores}}, base)
    plan = replace(plan, combinations=plan.combinations[: args.runs])
    markets = synthetic_markets(["EURUSD"], days=args.days, seed=args.seed)
    replay_args = {"warmup_days": 1.0}
    runs = len(plan.combinations)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)

        def timed(name: str, **how) -> tuple[float, list]:
            store = ResultStore(folder / f"{name}.sqlite")
            t0 = time.perf_counter()
            rows = run_sweep(plan, base, markets, store=store, replay_args=replay_args, **how)
            elapsed = time.perf_counter() - t0
            store.close()
            return elapsed, rows

        one_s, one_rows = timed("one", workers=1)
        two_s, two_rows = timed("two", workers=2)

        import distributed

        t0 = time.perf_counter()
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=None, silence_logs=50)
        cluster_start_s = time.perf_counter() - t0
        try:
            cluster_s, cluster_rows = timed("cluster", cluster=cluster.scheduler_address)
        finally:
            cluster.close()

        store = ResultStore(folder / "two.sqlite")
        t0 = time.perf_counter()
        again = run_sweep(plan, base, markets, store=store, replay_args=replay_args, workers=2)
        stored_rerun_s = time.perf_counter() - t0
        store.close()
        same = one_rows == two_rows == cluster_rows == again
        replay_one = _replay_seconds(folder / "one.sqlite")
        replay_two = _replay_seconds(folder / "two.sqlite")
        replay_cluster = _replay_seconds(folder / "cluster.sqlite")

    figures = {
        "runs": runs,
        "days": args.days,
        "cpu_count": os.cpu_count(),
        "load_avg_1min": round(load, 2) if load is not None else None,
        "one_process_replays_per_s": round(runs / one_s, 3),
        "two_processes_replays_per_s": round(runs / two_s, 3),
        "cluster_replays_per_s": round(runs / cluster_s, 3),
        "scaling_efficiency": round(one_s / (2 * two_s), 3),
        "cluster_overhead_pct_per_run": round((cluster_s / two_s - 1) * 100, 1),
        "cluster_start_s": round(cluster_start_s, 2),
        "stored_rerun_s": round(stored_rerun_s, 3),
        "replay_s_mean_one_process": round(statistics.mean(replay_one), 3),
        "replay_s_mean_two_processes": round(statistics.mean(replay_two), 3),
        "replay_s_mean_cluster": round(statistics.mean(replay_cluster), 3),
        # Share of two workers' wall time spent inside replays: what the executor itself costs, apart from
        # how fast the shared cores ran the replays.
        "two_processes_busy_share": round(sum(replay_two) / (2 * two_s), 3),
        "cluster_busy_share": round(sum(replay_cluster) / (2 * cluster_s), 3),
        "same_results_everywhere": same,
    }
    if not args.json:
        print(f"sweep of {runs} replays over {args.days:g} days of synthetic EURUSD "
              f"({os.cpu_count()} cores, load {figures['load_avg_1min']})")
        print(f"  one process       {figures['one_process_replays_per_s']:8.3f} replays/s  (baseline)")
        print(f"  two processes     {figures['two_processes_replays_per_s']:8.3f} replays/s  "
              f"efficiency {figures['scaling_efficiency']:.0%} (goal >= 90%)")
        print(f"  2-worker cluster  {figures['cluster_replays_per_s']:8.3f} replays/s  "
              f"overhead {figures['cluster_overhead_pct_per_run']:+.1f}% per run vs two processes (goal <= 5%)")
        print(f"  a second run, all stored: {stored_rerun_s:.2f} s")
        print(f"  one replay where it ran: {figures['replay_s_mean_one_process']:.3f} s alone, "
              f"{figures['replay_s_mean_two_processes']:.3f} s beside another, "
              f"{figures['replay_s_mean_cluster']:.3f} s on the cluster")
        print(f"  workers busy replaying: {figures['two_processes_busy_share']:.0%} of the time on two processes, "
              f"{figures['cluster_busy_share']:.0%} on the cluster")
    print(json.dumps(figures))
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
