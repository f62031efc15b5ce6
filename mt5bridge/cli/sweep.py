"""`mt5bridge sweep`: many replays over ranges of thresholds, ranked, FTMO breakers disqualified."""

from __future__ import annotations

import argparse
import csv
import sys
import time

from mt5bridge.cli.replay import (
    add_account_arguments,
    add_market_arguments,
    check_number_args,
    markets_from_args,
)

PROG = "mt5bridge sweep"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sweep",
        help="grid or random search over thresholds, each a full replay, ranked; FTMO breakers disqualified",
        description="Run a full replay for every combination of the settings a sweep file varies, in parallel "
        "processes, rank them by an objective with any run that breached an FTMO rule disqualified, and write "
        "the results as CSV and the best configuration as TOML. See docs/sweep.md.",
    )
    p.add_argument("--sweep", required=True, metavar="FILE.toml", help="the sweep file: [sweep] and [parameters]")
    add_market_arguments(p)
    add_account_arguments(p)
    p.add_argument("--objective", help="rank by this instead of the sweep file's objective")
    p.add_argument("--walk-forward", action="store_true", dest="walk_forward",
                   help="tune on the first part of the data and report the best on the rest")
    p.add_argument("--workers", type=int, default=None, metavar="COUNT",
                   help="processes, a count (default: every core)")
    p.add_argument("--out", default="sweep_results.csv", metavar="FILE.csv",
                   help="every run's settings and results (default sweep_results.csv)")
    p.add_argument("--best", default="sweep_best.toml", metavar="FILE.toml",
                   help="the best qualifying configuration, ready to use (default sweep_best.toml)")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from mt5bridge.common.atomicfile import write_text
    from mt5bridge.config import config_warnings, effective_toml, load_config
    from mt5bridge.market.readers import MarketDataError
    from mt5bridge.core.model import ModelError, load_model
    from mt5bridge.market.news import NewsCalendarError, calendar_warnings
    from mt5bridge.workbench.replay import ReplayError, load_specs
    from mt5bridge.workbench.sweep import (
        OBJECTIVES,
        SweepError,
        best_config,
        load_plan,
        run_sweep,
    )

    try:
        check_number_args(args)
        if args.workers is not None and args.workers < 1:
            raise SweepError(f"--workers must be >= 1, got {args.workers}")
        base = load_config(args.config)
        plan = load_plan(args.sweep, base)
        if args.objective:
            if args.objective not in OBJECTIVES:
                raise SweepError(f"--objective {args.objective!r}: use one of {', '.join(OBJECTIVES)}")
            plan = replace(plan, objective=args.objective)
        if args.walk_forward:
            plan = replace(plan, walk_forward=True)
        markets = markets_from_args(args)
        specs = load_specs(args.spec) if args.spec else None
        # What every run would refuse, refused once here rather than in each worker.
        if args.model:
            load_model(args.model)
        until = max(int(m.ticks.times_ms[-1]) for m in markets)
        for warning in config_warnings(base) + calendar_warnings(base, until):
            print(f"{PROG}: warning: {warning}", file=sys.stderr)
    except (SweepError, ReplayError, MarketDataError, ModelError, NewsCalendarError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    replay_args = {"specs": specs, "model": args.model, "warmup_days": args.warmup_days, "balance": args.balance,
                   "slippage_points": args.slippage_points}
    started = time.perf_counter()
    show = not args.quiet and sys.stderr.isatty()
    try:
        if show:
            rows = _with_progress(plan, base, markets, args.workers, replay_args)
        else:
            rows = run_sweep(plan, base, markets, workers=args.workers, replay_args=replay_args)
    except (SweepError, ReplayError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    _write_csv(args.out, rows, plan)
    best = best_config(rows, base)
    if best is not None:
        write_text(args.best, f"# best of {len(plan.combinations)} runs by {plan.objective}: "
                              f"{_params(best[1]['params'])}\n" + effective_toml(best[0]))
    if not args.quiet:
        _table(rows, plan)
        print(f"{len(rows)} replays in {time.perf_counter() - started:.1f} s; results: {args.out}"
              + (f"; best configuration: {args.best}" if best else ""))
    if best is None:
        print(f"{PROG}: every run breached an FTMO rule: no configuration to recommend", file=sys.stderr)
        return 1
    return 0


def _with_progress(plan, base, markets, workers, replay_args):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from mt5bridge.workbench.sweep import run_sweep

    with Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  transient=True) as bar:
        task = bar.add_task("sweep", total=len(plan.combinations))

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return run_sweep(plan, base, markets, workers=workers, replay_args=replay_args, progress=progress)


def _params(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def _write_csv(path: str, rows: list[dict], plan) -> None:
    from mt5bridge.common.atomicfile import replaced_when_complete
    from mt5bridge.workbench.sweep import METRICS

    names = list(plan.combinations[0]) if plan.combinations else []
    with replaced_when_complete(path, newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["period", "rank", "run", "disqualified", *names, *METRICS])
        for row in rows:
            w.writerow([row["period"], row["rank"], row["run"], int(row["disqualified"]),
                        *(row["params"][n] for n in names),
                        *("" if row[m] is None else (int(row[m]) if isinstance(row[m], bool) else row[m])
                          for m in METRICS)])


def _table(rows: list[dict], plan) -> None:
    from rich.console import Console
    from rich.table import Table

    for period in ("all", "train", "test"):
        part = [r for r in rows if r["period"] == period]
        if not part:
            continue
        title = {"all": "sweep", "train": "walk-forward: training period", "test": "walk-forward: later period"}
        t = Table(title=f"{title[period]}, by {plan.objective}")
        extra = [] if plan.objective == "net_profit" else [plan.objective]
        for col in ("rank", "run", "settings", *extra, "net profit", "trades", "worst day %", "FTMO"):
            t.add_column(col)
        for r in part[:10]:
            t.add_row(str(r["rank"]), str(r["run"]), _params(r["params"]), *(str(r[c]) for c in extra),
                      f"{r['net_profit']:+,.2f}", str(r["trades"]), str(r["max_daily_loss_pct"]),
                      "breached" if r["disqualified"] else ("passed" if r["passed"] else "kept"))
        Console().print(t)
