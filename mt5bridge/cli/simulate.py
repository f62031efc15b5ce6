"""`mt5bridge simulate`: a simulated MT5 terminal trading against a running bridge.

One chart per symbol, each speaking the EA's side of the wire protocol to ``--endpoint``: HELLO, the warm-up
bars, then every tick in lock-step, carrying out the bridge's commands on a simulated hedging account and
reporting RESULTs and DEALs. Prints what happened at the end. See docs/simulator.md.

Exit status: 0 when the replay ran, 2 for a bad argument, an unusable data file, or a bridge that did not
answer or refused a chart.
"""

from __future__ import annotations

import argparse
import math
import sys

PROG = "mt5bridge simulate"
DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "simulate",
        help="run a simulated MT5 terminal (one EA per symbol) against a running bridge",
        description="Connect one simulated EA chart per symbol to a running `mt5bridge serve`, replay a market"
        " tick by tick in lock-step, carry out the bridge's commands on a simulated account and print a report.",
    )
    p.add_argument("--endpoint", default=DEFAULT_ENDPOINT, metavar="URL",
                   help=f"the bridge's endpoint (default {DEFAULT_ENDPOINT})")
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--data", metavar="FILE",
        help="MT5 tick or bar export, or a CSV of ticks or bars, for the one symbol given by --symbols",
    )
    source.add_argument(
        "--synthetic", action="store_true",
        help="a deterministic synthetic market per symbol (the default when --data is not given)",
    )
    p.add_argument(
        "--symbols", default=None, metavar="SYM,SYM",
        help="symbols, one chart each (default EURUSD); synthetic: EURUSD, GBPUSD, USDJPY, XAUUSD, US30",
    )
    p.add_argument(
        "--days", type=float, default=None, metavar="DAYS",
        help="days to replay after the warm-up (default 2 for --synthetic, the whole file for --data)",
    )
    p.add_argument(
        "--warmup-days", type=float, default=10.0, dest="warmup_days", metavar="DAYS",
        help="days of history before the replay sent as warm-up bars (default 10)",
    )
    p.add_argument("--speed", type=float, default=None, metavar="TIMES",
                   help="times real time, e.g. 60 (default: as fast as the bridge answers)")
    p.add_argument("--login", type=int, default=1234567, metavar="NUMBER", help="account number (default 1234567)")
    p.add_argument("--balance", type=float, default=100_000.0, metavar="USD",
                   help="initial balance in USD (default 100000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic market (default 0)")
    from mt5bridge.cli.replay import add_clock_arguments

    add_clock_arguments(p, "--data's")
    p.add_argument("--spread-points", type=float, default=None, dest="spread_points", metavar="POINTS",
                   help="the spread, in points, of a bar file that carries none (without it such a file is refused)")
    p.add_argument("--allow-expanded-bars", action="store_true", dest="allow_expanded_bars",
                   help="replay a bar file although the bridge's rules read the M15 ATR and tick-level features it"
                   " cannot rebuild (modelled from four ticks per bar)")
    p.add_argument(
        "--server-offset", type=float, default=2.0, dest="server_offset", metavar="HOURS",
        help="the simulated trade server's clock is UTC plus HOURS (default 2, as FTMO's in winter)",
    )
    p.add_argument("--slippage", type=float, default=0.0, metavar="POINTS",
                   help="slippage of market fills, in points (default 0)")
    p.add_argument("--max-ticks", type=int, default=None, dest="max_ticks", metavar="COUNT",
                   help="stop after this many ticks")
    p.add_argument(
        "--connect-timeout", type=float, default=5.0, dest="connect_timeout", metavar="SECONDS",
        help="how long each chart waits for the bridge's WELCOME, in seconds (default 5)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mt5bridge.simulator import SimulatedTerminal, SimulatorError

    try:
        symbols = _symbols(args.symbols)
        _check_numbers(args)
        data = _load(args, symbols)
        terminal = SimulatedTerminal(
            args.endpoint, symbols, login=args.login, balance=args.balance,
            days=args.days if (args.days is not None or data is not None) else 2.0,
            seed=args.seed, data=data, warmup_days=args.warmup_days, speed=args.speed,
            server_utc_offset_s=round(args.server_offset * 3600), slippage_points=args.slippage,
            hello_timeout_ms=max(1, round(args.connect_timeout * 1000)),
        )  # fmt: skip
    except (SimulatorError, ValueError) as exc:   # HistoryError and MarketDataError are ValueErrors
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"{args.data}: cannot read the file: {exc.strerror or exc}")

    print(f"{PROG}: {', '.join(symbols)} on account {args.login}, {terminal.ticks_total} ticks to replay,"
          f" connecting to {args.endpoint}", file=sys.stderr)  # fmt: skip
    try:
        report = terminal.run(max_ticks=args.max_ticks)
    except SimulatorError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        terminal.close(reason="interrupted")
        print(terminal.report().format())
        return 130
    print(report.format())
    return 0


def _symbols(text: str | None) -> list[str]:
    symbols = [s.strip() for s in (text or "EURUSD").split(",") if s.strip()]
    if not symbols:
        raise ValueError("--symbols: no symbol given")
    return symbols


def _check_numbers(args: argparse.Namespace) -> None:
    checks = (
        ("--days", args.days, lambda v: v is None or (math.isfinite(v) and v > 0), "a number of days > 0"),
        ("--warmup-days", args.warmup_days, lambda v: math.isfinite(v) and v >= 0, "a number of days >= 0"),
        ("--speed", args.speed, lambda v: v is None or (math.isfinite(v) and v > 0), "a multiple of real time > 0"),
        ("--balance", args.balance, lambda v: math.isfinite(v) and v > 0, "an amount > 0"),
        ("--login", args.login, lambda v: v > 0, "an account number > 0"),
        ("--server-offset", args.server_offset, lambda v: math.isfinite(v) and abs(v) <= 14, "hours within ±14"),
        ("--utc-offset", args.utc_offset, lambda v: v is None or (math.isfinite(v) and abs(v) <= 24),
         "hours within ±24"),
        ("--spread-points", args.spread_points, lambda v: v is None or (math.isfinite(v) and v >= 0), "points >= 0"),
        ("--slippage", args.slippage, lambda v: math.isfinite(v) and v >= 0, "points >= 0"),
        ("--max-ticks", args.max_ticks, lambda v: v is None or v > 0, "a count > 0"),
        ("--connect-timeout", args.connect_timeout, lambda v: math.isfinite(v) and v > 0, "seconds > 0"),
    )
    for name, value, ok, expected in checks:
        if not ok(value):
            raise ValueError(f"{name} {value}: expected {expected}")


def _load(args: argparse.Namespace, symbols: list[str]):
    if args.data is None:
        return None
    if len(symbols) != 1:
        raise ValueError(f"--data holds one symbol's market; --symbols names {len(symbols)}: {', '.join(symbols)}")
    from mt5bridge.workbench.quality import (
        expanded_bars_problem,
        read_history,
        server_clock,
    )

    data, quality = read_history(args.data, clock=server_clock(args.utc_offset, args.server_time),
                                 spread_points=args.spread_points)
    if quality.kind == "bars":
        # The bridge's model is not known here; its decision rules alone read what bars cannot rebuild.
        problem = expanded_bars_problem(quality, labelled="with a warning that the bridge trades on made-up ticks")
        if problem and not args.allow_expanded_bars:
            raise ValueError(f"{problem} (the bridge's own model may read more)")
        if problem:
            print(f"{PROG}: warning: {quality.summary}: the bridge trades on made-up ticks (--allow-expanded-bars);"
                  " a stop reached inside a bar fills at its level, as replay fills it", file=sys.stderr)
    return {symbols[0]: data}


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2
