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
    p.add_argument("--plot", metavar="FILE.png", help='also write the equity chart as a PNG (needs "mt5bridge[plot]")')
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
    p.add_argument("--days", type=float, default=30.0, help="days of synthetic market (default 30)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic market (default 0)")
    p.add_argument("--symbol", metavar="NAME", help="the symbol of a single --data file whose name does not say it")
    p.add_argument("--utc-offset", type=float, default=0.0, metavar="HOURS", dest="utc_offset",
                   help="the files' clock is UTC plus HOURS (MT5 server time, often 2 or 3); default 0")
    return source


def add_account_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="TOML configuration (default: the embedded defaults)")
    p.add_argument("--spec", metavar="FILE", help="symbol specifications (TOML, [symbols.NAME]); default: presets")
    p.add_argument("--model", metavar="FILE", help="direction model file (default: the shipped model)")
    p.add_argument("--balance", type=float, default=None,
                   help="initial balance (default: [account] initial_balance, else 100000)")
    p.add_argument("--slippage-points", type=float, default=0.0, dest="slippage_points",
                   help="points every market fill moves against the trader (default 0)")
    p.add_argument("--warmup-days", type=float, default=14.0, dest="warmup_days",
                   help="days at the start that only warm the features, before the account starts (default 14)")


def markets_from_args(args: argparse.Namespace):
    from mt5bridge.workbench.replay import load_markets, synthetic_markets

    if args.synthetic:
        symbols = [s.strip() for s in args.synthetic.split(",") if s.strip()]
        return synthetic_markets(symbols, days=args.days, seed=args.seed)
    return load_markets(args.data, symbol=args.symbol, utc_offset_hours=args.utc_offset)


def check_number_args(args: argparse.Namespace) -> None:
    from mt5bridge.workbench.replay import ReplayError

    for name in ("days", "balance", "slippage_points", "warmup_days", "utc_offset"):
        value = getattr(args, name, None)
        if value is not None and not math.isfinite(value):
            raise ReplayError(f"--{name.replace('_', '-')} {value!r} is not a number")
    if args.days <= 0:
        raise ReplayError(f"--days must be > 0, got {args.days:g}")
    if args.balance is not None and args.balance <= 0:
        raise ReplayError(f"--balance must be > 0, got {args.balance:g}")


def run(args: argparse.Namespace) -> int:
    if args.recorded:
        from mt5bridge.cli.replay_recorded import run as run_recorded

        return run_recorded(args)
    if not args.report:
        print(f"{PROG}: error: --report FILE.json is required", file=sys.stderr)
        return 2
    from mt5bridge.common.atomicfile import write_text
    from mt5bridge.config import load_config
    from mt5bridge.market.readers import MarketDataError
    from mt5bridge.core.model import ModelError
    from mt5bridge.market.news import NewsCalendarError
    from mt5bridge.workbench.replay import Replay, ReplayError, load_specs
    from mt5bridge.workbench.report import build_report, dumps, plot_png, render_html

    try:
        check_number_args(args)
        cfg = load_config(args.config)
        markets = markets_from_args(args)
        specs = load_specs(args.spec) if args.spec else None
        replay = Replay(cfg, markets, specs=specs, model=args.model, warmup_days=args.warmup_days,
                        balance=args.balance, slippage_points=args.slippage_points)
    except (ReplayError, MarketDataError, ModelError, NewsCalendarError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{PROG}: error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    from mt5bridge.config import config_warnings
    from mt5bridge.market.news import calendar_warnings

    for warning in config_warnings(cfg) + calendar_warnings(cfg, replay.end_ms):
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    show = not args.quiet and sys.stderr.isatty()
    started = time.perf_counter()
    if show:
        result = _run_with_progress(replay)
    else:
        result = replay.run()
    elapsed = time.perf_counter() - started
    inputs = {"sources": [m.source for m in markets], "config": os.fspath(args.config) if args.config else "defaults",
              "spec": args.spec, "warmup_days": args.warmup_days, "slippage_points": args.slippage_points}
    report = build_report(result, inputs=inputs)
    try:
        write_text(args.report, dumps(report))
        if args.html:
            write_text(args.html, render_html(report, result))
        if args.plot:
            plot_png(result, args.plot)
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


