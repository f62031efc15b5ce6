"""`mt5bridge sweep`: many replays over ranges of thresholds, stored, ranked, FTMO breakers disqualified."""

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
        help="grid, random or Optuna search over thresholds, each a full replay, ranked; FTMO breakers disqualified",
        description="Run a full replay for every combination of the settings a sweep file varies (or for the "
        "combinations an Optuna search picks), on local processes or a Dask cluster, rank them by an objective "
        "with any run that breached an FTMO rule or broke a constraint disqualified, and write the results as CSV "
        "and the best configuration as TOML. Every result is kept in a result store: a run already stored is "
        "not replayed, so an interrupted sweep resumes where it stopped. See docs/sweep.md.",
    )
    p.add_argument("--sweep", required=True, metavar="FILE.toml",
                   help="the sweep file: [sweep], [parameters], [constraints]")
    add_market_arguments(p)
    add_account_arguments(p)
    p.add_argument("--objective", help="rank by this figure instead of the sweep file's objective")
    p.add_argument("--walk-forward", action="store_true", dest="walk_forward",
                   help="tune on the first part of the data and report the best on the rest")
    p.add_argument("--search-seed", type=int, default=None, dest="search_seed", metavar="N",
                   help="seed of a random or Optuna search, instead of the sweep file's seed (--seed is the "
                   "synthetic market's)")
    p.add_argument("--workers", type=int, default=None, metavar="COUNT",
                   help="local processes, a count (default: every core)")
    p.add_argument("--cluster", metavar="ADDRESS",
                   help="run on a Dask cluster: the scheduler's address (tcp://HOST:8786), or local:N to start N "
                   "workers here; needs mt5bridge[cluster]")
    p.add_argument("--store", metavar="FILE.sqlite",
                   help="the result store (default: sweep-results.sqlite in the user's cache folder, see docs)")
    p.add_argument("--no-store", action="store_true", dest="no_store",
                   help="neither read nor keep stored results: replay every run")
    p.add_argument("--out", default="sweep_results.csv", metavar="FILE.csv",
                   help="every run's settings and results (default sweep_results.csv)")
    p.add_argument("--best", default="sweep_best.toml", metavar="FILE.toml",
                   help="the best qualifying configuration, ready to use (default sweep_best.toml)")
    p.add_argument("--quiet", action="store_true", help="no counts, no progress and no table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from mt5bridge.common.atomicfile import write_text
    from mt5bridge.config import config_warnings, effective_toml, load_config
    from mt5bridge.core.model import ModelError, load_model
    from mt5bridge.market.news import NewsCalendarError, calendar_warnings
    from mt5bridge.market.readers import MarketDataError
    from mt5bridge.workbench.executors import ExecutorError, executor_for
    from mt5bridge.workbench.figures import FigureError, figure
    from mt5bridge.workbench.replay import (
        ReplayError,
        load_specs,
        news_coverage_warnings,
    )
    from mt5bridge.workbench.store import ResultStore, StoreError, default_path
    from mt5bridge.workbench.sweep import SweepError, best_config, load_plan, run_sweep

    store = None
    try:
        check_number_args(args)
        if args.workers is not None and args.workers < 1:
            raise SweepError(f"--workers must be >= 1 process, got {args.workers}")
        if args.cluster and args.workers is not None:
            raise SweepError("--workers counts local processes; with --cluster the cluster's workers run the "
                             "replays (local:N for N local workers)")
        if args.store and args.no_store:
            raise SweepError("--store and --no-store: give one")
        base = load_config(args.config)
        plan = load_plan(args.sweep, base, seed=args.search_seed)
        if args.objective:
            try:
                figure(args.objective, "--objective")
            except FigureError as exc:
                raise SweepError(str(exc)) from exc
            plan = replace(plan, objective=args.objective)
        if args.walk_forward:
            plan = replace(plan, walk_forward=True)
        # The executor is built (and an extra found missing) before any data is read; it starts only for new runs.
        executor = executor_for(args.cluster, args.workers)
        markets = markets_from_args(args)
        specs = load_specs(args.spec) if args.spec else None
        # What every run would refuse, refused once here rather than in each worker.
        if args.model:
            load_model(args.model)
        since = min(int(m.ticks.times_ms[0]) for m in markets)
        until = max(int(m.ticks.times_ms[-1]) for m in markets)
        for warning in (config_warnings(base) + news_coverage_warnings(base, since, until)
                        + calendar_warnings(base, until)):
            print(f"{PROG}: warning: {warning}", file=sys.stderr)
        if not args.no_store:
            store = ResultStore(args.store or default_path())
    except (SweepError, ReplayError, MarketDataError, ModelError, NewsCalendarError, ExecutorError,
            StoreError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    replay_args = {"specs": specs, "model": args.model, "warmup_days": args.warmup_days, "balance": args.balance,
                   "slippage_points": args.slippage_points}
    started = time.perf_counter()
    telling = _Teller(plan, executor.describe(), store, quiet=args.quiet)
    try:
        rows = run_sweep(plan, base, markets, executor=executor, store=store, replay_args=replay_args,
                         progress=telling)
    except (SweepError, ReplayError) as exc:
        telling.stop()
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        telling.stop()
        kept = f"the {telling.new_done} runs that finished are stored in {store.path}: run the same command " \
               "again to resume" if store else "nothing was stored (--no-store)"
        print(f"{PROG}: interrupted; {kept}", file=sys.stderr)
        return 130
    finally:
        executor.close()
        if store is not None:
            store.close()
    telling.stop()
    _write_csv(args.out, rows, plan)
    best = best_config(rows, base)
    if best is not None:
        write_text(args.best, f"# best of {plan.runs} runs by {plan.objective}: "
                              f"{_params(best[1]['params'])}\n" + effective_toml(best[0]))
    if not args.quiet:
        _table(rows, plan)
        print(f"{len(rows)} runs ({telling.new_done} replayed, {telling.stored} from the store) in "
              f"{time.perf_counter() - started:.1f} s; results: {args.out}"
              + (f"; best configuration: {args.best}" if best else ""))
    if best is None:
        print(f"{PROG}: no run qualified (each breached an FTMO rule, broke a constraint or made no trade): no "
              "configuration to recommend", file=sys.stderr)
        return 1
    return 0


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class _Teller:
    """What the sweep says on stderr while it runs: the runs new and stored before each period starts, the
    time left once the first runs have finished, then progress with the time left (a bar on a terminal, a
    line every few seconds otherwise)."""

    PERIODS = {"all": "", "train": " (walk-forward, tuning period)", "test": " (walk-forward, later period)"}

    def __init__(self, plan, where: str, store, *, quiet: bool) -> None:
        self.plan, self.where, self.store, self.quiet = plan, where, store, quiet
        self.tty = sys.stderr.isatty()
        self.new_done = self.stored = 0
        self._bar = None
        self._period = None
        self._estimated = False
        self._last_line = 0.0
        self._seen: dict[str, int] = {}

    def __call__(self, p) -> None:
        if self.quiet:
            self._count(p)
            return
        optuna = self.plan.method == "optuna" and p.period in ("all", "train")
        starting = p.done == p.stored and p.measured == 0
        if starting and not (optuna and self._period == p.period):
            self._count(p)
            self._period = p.period
            self.stop()
            if optuna:
                self._trials_started = time.monotonic()
                print(f"sweep{self.PERIODS[p.period]}: {self.plan.trials} Optuna trials, {self.plan.batch} at a "
                      f"time, on {self.where}; stored runs are read back", file=sys.stderr)
            else:
                print(f"sweep{self.PERIODS[p.period]}: {p.total} runs: {p.total - p.stored} new, {p.stored} stored"
                      + (f"; replaying on {self.where}" if p.total > p.stored else ""), file=sys.stderr)
            self._estimated = False
            self._last_line = time.monotonic()
            if not optuna:
                return
        else:
            self._count(p)
        if optuna:
            # A search's runs are not known in advance: its progress is trials done of trials asked for.
            done = self.stored + self.new_done
            if p.done == p.total and done:
                left = (time.monotonic() - self._trials_started) / done * (self.plan.trials - done)
                self._line(done, self.plan.trials, left, "trials")
            return
        if not self._estimated and p.measured >= min(2, p.total - p.stored) and p.eta_s is not None:
            self._estimated = True
            print(f"sweep: about {_duration(p.eta_s)} left (from the first {p.measured} runs)", file=sys.stderr)
        if self.tty:
            self._show_bar(p)
        elif p.eta_s is not None:
            self._line(p.done, p.total, p.eta_s, "")

    def _line(self, done: int, total: int, left: float, what: str) -> None:
        if time.monotonic() - self._last_line >= 5.0 or done == total:
            self._last_line = time.monotonic()
            print(f"sweep: {done}/{total}{' ' + what if what else ''} done, about {_duration(left)} left",
                  file=sys.stderr)

    def _count(self, p) -> None:
        key = p.period
        before = self._seen.get(key + "#", 0)
        if p.measured == 0:
            self.stored += p.stored
            self._seen[key + "#"] = 0
        else:
            self.new_done += p.measured - before
            self._seen[key + "#"] = p.measured

    def _show_bar(self, p) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        if self._bar is None:
            self._bar = Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[left]}"), transient=True)
            self._bar.start()
            self._task = self._bar.add_task("sweep", total=p.total, left="")
        self._bar.update(self._task, completed=p.done, total=p.total,
                         left=f"about {_duration(p.eta_s)} left" if p.eta_s is not None else "")

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _params(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def _write_csv(path: str, rows: list[dict], plan) -> None:
    from mt5bridge.common.atomicfile import replaced_when_complete
    from mt5bridge.workbench.figures import METRICS

    names = plan.names
    with replaced_when_complete(path, newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["period", "rank", "run", "disqualified", *names, *METRICS, "from", "to", "note"])
        for row in rows:
            w.writerow([row["period"], row["rank"], row["run"], int(row["disqualified"]),
                        *(row["params"][n] for n in names),
                        *("" if row[m] is None else (int(row[m]) if isinstance(row[m], bool) else row[m])
                          for m in METRICS), row["from"], row["to"], row["note"]])


def _table(rows: list[dict], plan) -> None:
    from rich.console import Console
    from rich.table import Table

    for period in ("all", "train", "test"):
        part = [r for r in rows if r["period"] == period]
        if not part:
            continue
        title = {"all": "sweep", "train": "walk-forward: tuning period", "test": "walk-forward: later period"}
        window = f"{part[0]['from']} → {part[0]['to']} UTC"
        t = Table(title=f"{title[period]}, {window}, by {plan.objective}")
        extra = [] if plan.objective == "net_profit" else [plan.objective]
        for col in ("rank", "run", "settings", *extra, "net profit", "trades", "worst day %", "FTMO", "note"):
            t.add_column(col)
        for r in part[:10]:
            t.add_row(str(r["rank"]), str(r["run"]), _params(r["params"]), *(str(r[c]) for c in extra),
                      f"{r['net_profit']:+,.2f}", str(r["trades"]), str(r["max_daily_loss_pct"]),
                      "breached" if r["breaches"] else ("passed" if r["passed"] else "no breach"), r["note"])
        Console().print(t)
        idle = sum(r["trades"] == 0 for r in part)
        if idle:
            print(f"{idle} of {len(part)} runs made no trade: they are no result, ranked last and never recommended")
