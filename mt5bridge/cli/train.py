"""`mt5bridge train`: fit the direction model's weights on the trader's own price history.

Reads the same files as ``mt5bridge features`` (MT5 tick or bar exports, CSV, or a synthetic market), replays
them through the compiled engine, fits the four sub-models (see ``mt5bridge/workbench/train.py`` and docs/train.md) and
writes a model file that ``serve`` and ``replay`` load. The report (out-of-sample accuracy, log-loss against
the base rate's, the signals, a calibration table) goes to standard output, as text or with ``--json`` as JSON.

A model that does not beat the base rate out of sample (its validation log-loss is no lower than that of always
predicting the training part's share of up-moves) is no better than guessing: it is not written unless
``--force`` says so, and the file then says it did not beat the base rate.

Exit status: 0 when the fit ran (and the file was written, with ``--out``); 1 when the model did not beat the
base rate and was not written, or the compiled engine is not available; 2 for a bad argument, an unusable file
or too little history.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from mt5bridge.common import strictjson
from mt5bridge.common.atomicfile import write_text
from mt5bridge.market.readers import (
    TIMEFRAME_LABELS,
    Bars,
    MarketDataError,
    timeframe_seconds,
)
from mt5bridge.workbench.quality import HistoryError, read_history, server_clock
from mt5bridge.workbench.train import (
    DEFAULT_BINS,
    DEFAULT_HORIZON,
    DEFAULT_L2,
    DEFAULT_TIMEFRAME_S,
    DEFAULT_VALIDATION_FRACTION,
    TrainError,
)

PROG = "mt5bridge train"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="fit the direction model's weights on your own price history and write a model file",
        description="Replay price history through the compiled engine, fit the four sub-models by L2-regularised"
        " logistic regression on the sign of the move a few bars ahead, check them on the most recent part they"
        " never saw, and write a model file for serve and replay.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--data", metavar="FILE", action="append",
        help="MT5 tick or bar export, or a CSV of ticks or bars (as for mt5bridge features); repeat for more"
        " markets, each replayed on its own",
    )
    source.add_argument(
        "--synthetic", metavar="SYMBOL",
        help="instead of files, a deterministic synthetic market for SYMBOL (EURUSD, GBPUSD, USDJPY, XAUUSD, US30)",
    )
    p.add_argument("--days", type=float, default=30.0, metavar="DAYS", help="days of synthetic market (default 30)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic market (default 0)")
    from mt5bridge.cli.replay import add_clock_arguments

    add_clock_arguments(p, "the files'")
    p.add_argument("--point", type=float, default=None, metavar="PRICE",
                   help="price of one spread point for bar files, in price units, e.g. 0.00001 (default: from the"
                   " decimals of the prices)")
    p.add_argument(
        "--timeframe", default=TIMEFRAME_LABELS[DEFAULT_TIMEFRAME_S], metavar="M1|M5|M15|H1",
        help="the bar closes that are the samples (default M15)",
    )
    p.add_argument("--horizon", type=int, default=DEFAULT_HORIZON, metavar="BARS",
                   help=f"the label is the sign of the move over this many bars (default {DEFAULT_HORIZON})")
    p.add_argument("--l2", type=float, default=DEFAULT_L2, metavar="PENALTY",
                   help=f"L2 penalty on the weights, added to the mean log-loss (default {DEFAULT_L2:g})")
    p.add_argument(
        "--validation-fraction", type=float, default=DEFAULT_VALIDATION_FRACTION, dest="validation_fraction",
        metavar="F",
        help="the most recent fraction of samples kept for validation, 0.05 to 0.8 (default"
        f" {DEFAULT_VALIDATION_FRACTION:g}, i.e. {100 * DEFAULT_VALIDATION_FRACTION:g}%%)",
    )
    p.add_argument("--bins", type=int, default=DEFAULT_BINS, metavar="COUNT",
                   help="bins of the calibration table (default 10)")
    p.add_argument("--base-model", metavar="FILE", dest="base_model",
                   help="model whose sub-model features, thresholds and market score are kept (default: shipped)")
    p.add_argument("--name", help="the model's name in the file (default: trained-<data>)")
    p.add_argument("--out", metavar="MODEL.json", help="the model file to write (replaced if it exists)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--force", action="store_true",
                   help="write the model even when it does not beat the base rate out of sample")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mt5bridge.core.model import ModelError, Trained, load_model, model_to_json
    from mt5bridge.workbench.train import (
        market_rows,
        submodel_features,
        train_direction_model,
    )

    try:
        timeframe_s = _timeframe(args.timeframe)
        _check_numbers(args)
        base = load_model(args.base_model)
        read = list(dict.fromkeys(n for names in submodel_features(base).values() for n in names))
        loaded = _load(args)
        markets = [market_rows(data, timeframe_s, source, read_features=read) for source, data in loaded]
        name = args.name or "trained-" + "-".join(_short(m.source) for m in markets)
        result = train_direction_model(
            markets, horizon=args.horizon, l2=args.l2, validation_fraction=args.validation_fraction,
            bins=args.bins, base=base, name=name,
        )
    except (TrainError, MarketDataError, ModelError, HistoryError) as exc:
        return _fail(str(exc))
    except ImportError as exc:  # the compiled engine is not built
        return _fail(str(exc), status=1)

    ensemble = result.report["validation"]["ensemble"]
    beats = ensemble["log_loss"] < ensemble["base_rate_log_loss"]
    model = result.model.model_copy(update={"trained": Trained(
        symbols=sorted({_symbol(args, source) for source, _ in loaded} - {""}),
        data=[TIMEFRAME_LABELS[d.timeframe_s] if isinstance(d, Bars) else "ticks" for _, d in loaded],
        timeframe=TIMEFRAME_LABELS[timeframe_s], beats_base_rate=beats)})
    verdict = (f"out of sample the model {'beats' if beats else 'does NOT beat'} the base rate: log-loss"
               f" {ensemble['log_loss']:.4f} against {ensemble['base_rate_log_loss']:.4f} for always predicting"
               f" the training part's up-rate")
    written = args.out if args.out and (beats or args.force) else None
    if written:
        try:
            write_text(written, model_to_json(model))
        except OSError as exc:
            return _fail(f"--out {args.out}: cannot write the file: {exc.strerror or exc}")
    report = dict(result.report, model=dict(result.report["model"], path=written), verdict=verdict,
                  beats_base_rate=beats)
    if args.json:
        print(strictjson.dumps(report, indent=2))   # strict: a parser that refuses NaN reads it
    else:
        from mt5bridge.workbench.train import format_report

        print(format_report(report, written))
        print(f"Verdict: {verdict}" + ("" if beats else "; trading on it is trading on noise."))
    if args.out and not written:
        print(f"{PROG}: the model does not beat the base rate out of sample, so {args.out} was not written: train"
              " on more history or another timeframe, or give --force to write it anyway", file=sys.stderr)
        return 1
    return 0


def _symbol(args: argparse.Namespace, source: str) -> str:
    """The symbol a history is of: the synthetic one, else the file's name (EURUSD_ticks.csv), else unknown."""
    if args.synthetic is not None:
        return args.synthetic.upper()
    from mt5bridge.workbench.replay import ReplayError, symbol_from_name

    try:
        return symbol_from_name(source)
    except ReplayError:
        return ""


def _load(args: argparse.Namespace):
    if args.synthetic is not None:
        from mt5bridge.market.synthetic import generate_ticks

        try:
            data = generate_ticks(args.synthetic, days=args.days, seed=args.seed)
        except ValueError as exc:
            raise TrainError(f"--synthetic: {exc}") from exc
        return [(f"synthetic {args.synthetic.upper()} ({args.days:g} days, seed {args.seed})", data)]
    loaded = []
    clock = server_clock(args.utc_offset, args.server_time)
    for path in args.data:
        try:
            # The spread only moves the tick-level spread features, which a bar file cannot rebuild anyway.
            data, _ = read_history(path, clock=clock, point=args.point, spread_points=0.0,
                                   spread_from="(no spread: training on features)")
            loaded.append((path, data))
        except OSError as exc:
            raise TrainError(f"--data {path}: cannot read the file: {exc.strerror or exc}") from exc
    return loaded


def _timeframe(text: str) -> int:
    try:
        return timeframe_seconds(text)
    except ValueError as exc:
        raise TrainError(f"--timeframe {text!r}: {exc}") from None


def _check_numbers(args: argparse.Namespace) -> None:
    if args.utc_offset is not None and (not math.isfinite(args.utc_offset) or abs(args.utc_offset) > 24):
        raise TrainError(f"--utc-offset {args.utc_offset:g} is not between -24 and 24 hours")
    if args.point is not None and not (0.0 < args.point < math.inf):
        raise TrainError(f"--point {args.point:g} is not a positive price")
    if args.synthetic is not None and not (0 < args.days <= 3650):
        raise TrainError(f"--days {args.days:g} must be above 0 and at most 3650")
    if args.horizon < 1:
        raise TrainError(f"--horizon {args.horizon} must be at least 1 bar")
    if not (math.isfinite(args.l2) and args.l2 > 0):
        raise TrainError(f"--l2 {args.l2:g} must be above 0 (0.05 is a sensible start; larger shrinks the weights"
                         " more)")
    if not (0.05 <= args.validation_fraction <= 0.8):
        raise TrainError(f"--validation-fraction {args.validation_fraction:g} must be between 0.05 and 0.8")
    if not (2 <= args.bins <= 50):
        raise TrainError(f"--bins {args.bins} must be from 2 to 50")


def _short(source: str) -> str:
    if source.startswith("synthetic "):
        return source.split()[1]
    return Path(source).stem


def _fail(message: str, status: int = 2) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status
