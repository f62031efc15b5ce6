"""`mt5bridge check-bias`: the features never look ahead, and the warm-up each timeframe needs, measured.

Exit status: 0 when no feature looked ahead, 1 when one did (each named), 2 for bad input.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

PROG = "mt5bridge check-bias"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "check-bias",
        help="check that no feature looks ahead, and measure the warm-up history each timeframe needs",
        description="Compute the features at sampled bars from the history cut at each bar and compare them with "
        "the full run (no look-ahead); then warm the engine with ever longer histories per timeframe and measure "
        "how far each feature is from its long-history value (the warm-up WARMUP must carry). See "
        "docs/features.md.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", metavar="FILE", help="MT5 tick or bar export, or a CSV of ticks or bars")
    source.add_argument("--synthetic", metavar="SYMBOL", help="a deterministic synthetic market instead (EURUSD, ...)")
    p.add_argument("--days", type=int, default=250, metavar="DAYS",
                   help="days of synthetic market (default 250: enough H1 bars to measure 3000 of warm-up)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic market (default 0)")
    from mt5bridge.cli.replay import add_clock_arguments

    add_clock_arguments(p, "the file's")
    p.add_argument("--cuts", type=int, default=12, metavar="COUNT",
                   help="bars at which the history is cut, spread over the data (default 12); more is slower")
    p.add_argument("--lookahead-days", type=float, default=10.0, dest="lookahead_days", metavar="DAYS",
                   help="days at the start on which look-ahead is checked (default 10): each cut replays from the "
                   "start")
    p.add_argument("--warmups", metavar="N,N,...",
                   help="warm-up lengths to measure, in bars of each timeframe (default 50,100,...,3000)")
    p.add_argument("--tolerance", type=float, default=0.01, metavar="FRACTION",
                   help="a feature is warm when it is within this fraction of its scale of the long-history value "
                   "(default 0.01)")
    p.add_argument("--report", metavar="FILE.json", help="also write every figure as JSON")
    p.set_defaults(func=run)


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def _warmups(text: str | None) -> list[int]:
    from mt5bridge.workbench.bias import DEFAULT_WARMUPS

    if text is None:
        return list(DEFAULT_WARMUPS)
    try:
        values = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise ValueError(f"--warmups {text!r}: give whole numbers of bars separated by commas, e.g. 200,500,1000") \
            from None
    if not values or values[0] < 1:
        raise ValueError(f"--warmups {text!r}: each must be at least 1 bar")
    return values


def run(args: argparse.Namespace) -> int:
    from mt5bridge.market.readers import Bars, MarketDataError, expand_bars_to_ticks
    from mt5bridge.workbench.bias import (
        BiasError,
        engine_lookahead,
        first_days,
        measure_warmup,
        synthetic_history,
        warmup_verdict,
    )
    from mt5bridge.workbench.quality import HistoryError, read_history, server_clock

    if args.cuts < 1:
        return _fail(f"--cuts must be at least 1, got {args.cuts}")
    if not (math.isfinite(args.tolerance) and args.tolerance > 0):
        return _fail(f"--tolerance must be a number > 0, got {args.tolerance!r}")
    if not (math.isfinite(args.lookahead_days) and args.lookahead_days > 0):
        return _fail(f"--lookahead-days must be > 0, got {args.lookahead_days!r}")
    try:
        warmups = _warmups(args.warmups)
        if args.synthetic:
            ticks, history = synthetic_history(args.synthetic, args.days, args.seed)
        else:
            # The spread moves only the spread features, which need live ticks anyway: a bar file without one is
            # read at 0.
            history, _ = read_history(args.input, clock=server_clock(args.utc_offset, args.server_time),
                                      spread_points=0.0, spread_from="(no spread: features only)")
            ticks = expand_bars_to_ticks(history) if isinstance(history, Bars) else history
    except (BiasError, HistoryError, MarketDataError, ValueError) as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"{args.input}: cannot read the file: {exc.strerror or exc}")
    started = time.perf_counter()
    record_tf = 0
    if isinstance(history, Bars) and not args.synthetic:
        from mt5bridge.core.engine import TIMEFRAME_SECONDS

        if history.timeframe_s not in TIMEFRAME_SECONDS:
            return _fail(f"{args.input}: bars of {history.timeframe_s} s; the engine builds M1, M5, M15 and H1")
        record_tf = TIMEFRAME_SECONDS.index(history.timeframe_s)
    leaks, bars, cuts = engine_lookahead(first_days(ticks, args.lookahead_days), args.cuts, record_tf)
    warm = measure_warmup(history, args.cuts, warmups, args.tolerance)
    elapsed = time.perf_counter() - started
    if leaks:
        print(f"LOOK-AHEAD: {len(leaks)} feature(s) differ when the history is cut at the bar ({cuts} cuts over "
              f"{bars} bars):")
        for leak in leaks:
            print(f"  {leak.feature}: differs at {leak.cuts_differing} cut(s); first at bar {leak.first_bar_time_ms} "
                  f"ms: full run {leak.full}, cut {leak.cut}")
    else:
        print(f"no look-ahead: all 147 features equal bit for bit at {cuts} cuts over {bars} bars")
    print(f"warm-up (within {args.tolerance:g} of each feature's scale of the long-history value):")
    for name, entry in warm.items():
        print(f"  {warmup_verdict(name, entry)}")
    print(f"({elapsed:.1f} s)", file=sys.stderr)
    if args.report:
        from mt5bridge.common.atomicfile import write_text

        report = {"lookahead": {"cuts": cuts, "bars": bars, "leaks": [vars(x) for x in leaks]},
                  "tolerance": args.tolerance,
                  "warmup": {name: _entry_json(entry) for name, entry in warm.items()}}
        try:
            write_text(args.report, json.dumps(report, indent=1, allow_nan=False) + "\n")
        except OSError as exc:
            return _fail(f"cannot write {exc.filename}: {exc.strerror}")
    return 1 if leaks else 0


def _entry_json(entry: dict) -> dict:
    if "features" not in entry:
        return entry
    out = dict(entry)
    out["features"] = [{"feature": r.feature, "needed": r.needed,
                        "worst_by_warmup": {str(k): v for k, v in r.worst.items()}} for r in entry["features"]]
    return out
