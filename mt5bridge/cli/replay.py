"""`mt5bridge replay`: what would this configuration have done, and would it have failed the challenge?"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

PROG = "mt5bridge replay"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "replay",
        help="replay recorded prices through the decision engine with a simulated broker; FTMO report",
        description="Replay tick or bar history (one file per symbol, or a folder of them, replayed together on "
        "one account) through the same compiled decision engine the bridge runs, with a simulated broker in "
        "place of the EA, and write what FTMO would report. See docs/replay.md.",
    )
    source = add_market_arguments(p)
    add_account_arguments(p)
    from mt5bridge.cli.replay_recorded import add_arguments as add_recorded_arguments

    add_recorded_arguments(p, source)
    p.add_argument("--report", metavar="FILE.json", help="the JSON report to write (required but with --recorded)")
    p.add_argument("--html", metavar="FILE.html", help="also write the report as one self-contained HTML page")
    p.add_argument("--plot", metavar="FILE.png",
                   help='also write the equity chart as a PNG (needs matplotlib: pip install "mt5bridge[plot]")')
    p.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    p.set_defaults(func=run)


def add_market_arguments(p: argparse.ArgumentParser) -> argparse._MutuallyExclusiveGroup:
    """The market data arguments, shared with `mt5bridge sweep`; returns the group of the data's sources."""
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", action="append", metavar="FILE|FOLDER",
                        help="MT5 tick or bar export or CSV, one symbol per file named after it (EURUSD_ticks.csv);"
                        " a folder replays every file in it together; repeatable")
    source.add_argument("--synthetic", metavar="SYMBOLS",
                        help="instead of files, deterministic synthetic markets, e.g. EURUSD,XAUUSD")
    p.add_argument("--days", type=float, default=30.0, metavar="DAYS", help="days of synthetic market (default 30)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic market (default 0)")
    p.add_argument("--symbol", metavar="NAME", help="the symbol of a single --data file whose name does not say it")
    add_clock_arguments(p, "the files'")
    p.add_argument("--spread-points", type=float, default=None, metavar="POINTS", dest="spread_points",
                   help="the spread, in points, of bar files that carry none (no spread column); a spec file's"
                   " spread_points does the same per symbol. Without either such a file is refused")
    p.add_argument("--allow-expanded-bars", action="store_true", dest="allow_expanded_bars",
                   help="run on bar files although the engine reads shorter timeframes or tick-level features they"
                   " cannot rebuild (modelled from four ticks per bar); the report says so at the top")
    return source


def add_clock_arguments(p: argparse.ArgumentParser, whose: str) -> None:
    """How a file's times become UTC; shared by every command that reads price files."""
    p.add_argument("--utc-offset", type=float, default=None, metavar="HOURS", dest="utc_offset",
                   help=f"{whose} clock is UTC plus HOURS all year (hours, e.g. 2). MT5 exports are in server time and"
                   " need this or --server-time; a CSV without either is read as UTC")
    p.add_argument("--server-time", metavar="RULE", dest="server_time", choices=["ny-close"],
                   help=f"{whose} clock follows a named server rule: ny-close = UTC+2, UTC+3 while New York is on summer"
                   " time (FTMO's servers), the right offset for each date")


def add_account_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="TOML configuration (default: the embedded defaults)")
    p.add_argument("--spec", metavar="FILE", help="symbol specifications (TOML, [symbols.NAME]); default: presets")
    p.add_argument("--model", metavar="FILE", help="direction model file (default: the shipped model)")
    p.add_argument("--balance", type=float, default=None, metavar="MONEY",
                   help="initial balance, in the account currency (default: [account] initial_balance, else 100000)")
    p.add_argument("--slippage-points", type=float, default=0.0, dest="slippage_points", metavar="POINTS",
                   help="points every market fill moves against the trader (default 0)")
    p.add_argument("--warmup-days", type=float, default=14.0, dest="warmup_days", metavar="DAYS",
                   help="days at the start that only warm the features, before the account starts (default 14)")


def markets_from_args(args: argparse.Namespace):
    from mt5bridge.workbench.replay import load_markets, load_specs, synthetic_markets

    if args.synthetic:
        symbols = [s.strip() for s in args.synthetic.split(",") if s.strip()]
        return synthetic_markets(symbols, days=args.days, seed=args.seed)
    specs = load_specs(args.spec) if getattr(args, "spec", None) else None
    markets = load_markets(args.data, symbol=args.symbol, utc_offset_hours=args.utc_offset,
                           server_time=args.server_time, spread_points=args.spread_points, specs=specs,
                           allow_expanded_bars=args.allow_expanded_bars)
    _refuse_expanded_bars(markets, args)
    return markets


def _refuse_expanded_bars(markets, args: argparse.Namespace) -> None:
    """Refused here, once, before any replay starts (a sweep's workers would each refuse it otherwise)."""
    from mt5bridge.workbench.quality import expanded_bars_problem
    from mt5bridge.workbench.replay import ReplayError

    if args.allow_expanded_bars:
        return
    for market in markets:
        problem = market.quality and expanded_bars_problem(market.quality, getattr(args, "model", None))
        if problem:
            raise ReplayError(problem)


def check_number_args(args: argparse.Namespace) -> None:
    from mt5bridge.workbench.replay import ReplayError

    for name in ("days", "balance", "slippage_points", "warmup_days", "utc_offset", "spread_points"):
        value = getattr(args, name, None)
        if value is not None and not math.isfinite(value):
            raise ReplayError(f"--{name.replace('_', '-')} {value!r} is not a number")
    if args.days <= 0:
        raise ReplayError(f"--days must be > 0 days, got {args.days:g}")
    if args.balance is not None and args.balance <= 0:
        raise ReplayError(f"--balance must be > 0 (money, in the account currency), got {args.balance:g}")
    if args.spread_points is not None and args.spread_points < 0:
        raise ReplayError(f"--spread-points must be >= 0 points, got {args.spread_points:g}")
    if args.utc_offset is not None and abs(args.utc_offset) > 24:
        raise ReplayError(f"--utc-offset must be between -24 and 24 hours, got {args.utc_offset:g}")


def check_plot_available(args: argparse.Namespace) -> None:
    """--plot needs matplotlib: said before anything runs, not after the whole replay."""
    from mt5bridge.workbench.replay import ReplayError

    if getattr(args, "plot", None):
        import importlib.util

        if importlib.util.find_spec("matplotlib") is None:
            raise ReplayError(f'--plot {args.plot}: the PNG chart needs matplotlib, which is not installed: '
                              'pip install "mt5bridge[plot]" (or leave --plot out; --html draws the chart too)')


def run(args: argparse.Namespace) -> int:
    if args.recorded:
        from mt5bridge.cli.replay_recorded import run as run_recorded

        return run_recorded(args)
    if not args.report:
        print(f"{PROG}: error: --report FILE.json is required", file=sys.stderr)
        return 2
    from mt5bridge.common.atomicfile import write_text
    from mt5bridge.config import load_config
    from mt5bridge.core.model import ModelError
    from mt5bridge.market.news import NewsCalendarError
    from mt5bridge.market.readers import MarketDataError
    from mt5bridge.workbench.replay import Replay, ReplayError, load_specs
    from mt5bridge.workbench.report import build_report, dumps, plot_png, render_html

    try:
        check_number_args(args)
        check_plot_available(args)
        cfg = load_config(args.config)
        markets = markets_from_args(args)
        specs = load_specs(args.spec) if args.spec else None
        replay = Replay(cfg, markets, specs=specs, model=args.model, warmup_days=args.warmup_days,
                        balance=args.balance, slippage_points=args.slippage_points,
                        allow_expanded_bars=args.allow_expanded_bars)
    except (ReplayError, MarketDataError, ModelError, NewsCalendarError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{PROG}: error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted before the replay started; nothing written", file=sys.stderr)
        return 130
    from mt5bridge.config import config_warnings
    from mt5bridge.market.news import calendar_warnings

    for warning in config_warnings(cfg) + calendar_warnings(cfg, replay.end_ms) + replay.warnings:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    show = not args.quiet and sys.stderr.isatty()
    started = time.perf_counter()
    try:
        result = _run_with_progress(replay) if show else replay.run()
    except KeyboardInterrupt:
        done = replay.ticks_done
        print(f"{PROG}: interrupted after {done:,} of {replay.total_ticks:,} ticks; no report written (a part of"
              " the period is no answer to whether it would have passed)", file=sys.stderr)
        return 130
    elapsed = time.perf_counter() - started
    inputs = {"sources": [m.source for m in markets], "config": os.fspath(args.config) if args.config else "defaults",
              "spec": args.spec, "warmup_days": args.warmup_days, "slippage_points": args.slippage_points,
              "history": result.history}
    report = build_report(result, inputs=inputs)
    try:
        write_text(args.report, dumps(report))
        if args.html:
            write_text(args.html, render_html(report, result))
        if args.plot:
            plot_png(result, args.plot, report)   # the report puts the verdict in the title
    except OSError as exc:
        print(f"{PROG}: error: cannot write {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        f = report["ftmo"]
        verdict = "PASSED" if f["passed"] else "FAILED"
        print(f"FTMO {report['input']['product']} {report['input']['phase']}: {verdict}  net {report['net_profit']:+,.2f}"
              f"  worst day -{f['max_daily_loss_pct']:.2f}%  worst overall -{f['max_overall_loss_pct']:.2f}%"
              f"  trades {report['trades']}  breaches {len(f['breaches'])}")
        print(f"history quality: {result.history['quality']}"
              + "".join(f"; {s['source']}: spread {s['spread']}, times {s['time']}" for s in result.history["symbols"]))
        print(f"{result.ticks:,} ticks in {elapsed:.2f} s ({result.ticks / max(elapsed, 1e-9):,.0f} ticks/s); "
              f"report: {args.report}")
    return 0


def _run_with_progress(replay):
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    total = replay.total_ticks
    started = time.perf_counter()
    with Progress(TextColumn("replay"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,} ticks"),
                  TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), transient=True) as bar:
        task = bar.add_task("replay", total=total, rate="")

        def progress(done: int) -> None:
            rate = done / max(time.perf_counter() - started, 1e-9)
            bar.update(task, completed=done, rate=f"{rate:,.0f} ticks/s")

        return replay.run(progress)


