"""`mt5bridge features`: replay a price history file through the engine and write its features per bar.

One CSV row per bar close of the chosen timeframe, as the engine saw the market at that close: the bar's open
time (UTC), the 147 catalog features, the market score, the direction with its confidence and the consensus,
and with ``--indicators`` the raw indicators behind them. These are the rows a direction model is trained and
checked on, so they come from the same compiled engine that trades, fed the same way: tick by tick.

A bar file is replayed as four ticks per bar (see ``expand_bars_to_ticks``), which rebuilds the same bars on
the file's timeframe and on every longer one; shorter timeframes cannot be rebuilt from it, so ``--timeframe``
must then be the file's own. The features a bar file cannot rebuild (shorter timeframes, the tick level, the
multi-timeframe ones unless the bars are M1) are written empty, and so are the score and direction when the
model reads any of them, unless ``--allow-expanded-bars`` asks for them as modelled from four ticks per bar.
A tick file is cut into bars of ``--timeframe`` (M1 by default).

Exit status: 0 on success, 2 for a bad argument or an unusable input or output file, 1 when the compiled
engine is not available.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

from mt5bridge.common.atomicfile import replaced_when_complete
from mt5bridge.core.catalog import FEATURE_NAMES, INDICATOR_NAMES
from mt5bridge.market.readers import (
    TIMEFRAME_LABELS,
    Bars,
    MarketDataError,
    Ticks,
    expand_bars_to_ticks,
    timeframe_seconds,
)
from mt5bridge.workbench.quality import HistoryError

PROG = "mt5bridge features"

# Ticks handed to the engine per call: the engine keeps its state between calls, and rows are written as they
# come, so a long history never needs all its result rows in memory at once.
TICKS_PER_CALL = 1_000_000


class UsageError(Exception):
    """A bad command-line value, reported like a data error."""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "features",
        help="write the engine's features, score and direction for every bar of a price history file",
        description="Replay a price history file through the compiled engine and write one CSV row per bar"
        " close: the 147 features, the market score, the direction, its confidence and the consensus.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--input", metavar="FILE",
        help="MT5 tick or bar export (tab-separated, UTF-8 or UTF-16), or a CSV of bars or ticks",
    )
    source.add_argument(
        "--synthetic", metavar="SYMBOL",
        help="instead of a file, a deterministic synthetic market for SYMBOL (EURUSD, GBPUSD, USDJPY, XAUUSD,"
        " US30); see mt5bridge/market/synthetic.py",
    )
    p.add_argument("--days", type=float, default=14.0, metavar="DAYS", help="days of synthetic market (default 14)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic market (default 0)")
    p.add_argument("--out", required=True, metavar="FILE.csv", help="the CSV to write (replaced if it exists)")
    p.add_argument(
        "--indicators", action="store_true",
        help="also write the raw indicators (EMAs, ATRs, MACD, Bollinger bands, ...) not already a feature column",
    )
    p.add_argument(
        "--timeframe", metavar="M1|M5|M15|H1",
        help="timeframe whose bar closes give the rows; for ticks the default is M1, for bars it is the file's"
        " own and must match it if given",
    )
    from mt5bridge.cli.replay import add_clock_arguments

    add_clock_arguments(p, "the file's")
    p.add_argument(
        "--point", type=float, default=None, metavar="PRICE",
        help="price of one spread point for bar files, in price units, e.g. 0.00001 (default: from the decimals"
        " of the prices)",
    )
    p.add_argument(
        "--allow-expanded-bars", action="store_true", dest="allow_expanded_bars",
        help="for a bar file, also write the features it cannot rebuild (shorter timeframes, tick level) and the"
        " score and direction that read them, as computed from four made-up ticks per bar; default: left empty",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    try:
        wanted_s = _timeframe_arg(args.timeframe)
        _check_number_args(args)
        data = _load(args)
        record_s, ticks = _ticks_to_replay(data, wanted_s, args.input)
    except (MarketDataError, UsageError, HistoryError) as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"{args.input}: cannot read the file: {exc.strerror or exc}")

    try:
        from mt5bridge.core.engine import (
            CONSENSUS_NAMES,
            DIRECTION_NAMES,
            TIMEFRAME_SECONDS,
            FeatureEngine,
        )
    except ImportError as exc:
        return _fail(str(exc), status=1)

    blank = _cannot_rebuild(data) if not args.allow_expanded_bars else []
    writer = _FeatureCsv(args.indicators, DIRECTION_NAMES, CONSENSUS_NAMES, blank)
    try:
        # A reader of --out never sees a half-written file after an interrupted run.
        with replaced_when_complete(args.out) as fh:
            writer.start(fh)
            engine = FeatureEngine()
            record_tf = TIMEFRAME_SECONDS.index(record_s)
            for start in range(0, len(ticks), TICKS_PER_CALL):
                stop = start + TICKS_PER_CALL
                writer.write(
                    engine.process_ticks(
                        np.ascontiguousarray(ticks.times_ms[start:stop], dtype=np.int64),
                        np.ascontiguousarray(ticks.bid[start:stop], dtype=np.float64),
                        np.ascontiguousarray(ticks.ask[start:stop], dtype=np.float64),
                        np.ascontiguousarray(ticks.volume[start:stop], dtype=np.float64),
                        record_tf,
                        args.indicators,
                    )
                )
            if isinstance(data, Bars):
                # A bar file's last bar is complete; a tick file's last bar is still forming and is left out.
                writer.write(engine.close_bars(record_tf, args.indicators))
    except OSError as exc:
        return _fail(f"{args.out}: cannot write the file: {exc.strerror or exc}")

    bars = len(data) if isinstance(data, Bars) else writer.rows
    print(
        f"{PROG}: wrote {writer.rows} rows to {args.out} ({bars} {TIMEFRAME_LABELS[record_s]} bars,"
        f" {len(ticks)} ticks, {time.perf_counter() - started:.2f} s)",
        file=sys.stderr,
    )
    if blank:
        print(f"{PROG}: {TIMEFRAME_LABELS[data.timeframe_s]} bars cannot rebuild {len(blank)} column(s), left empty:"
              f" {', '.join(blank[:6])}{' ...' if len(blank) > 6 else ''} (--allow-expanded-bars writes them as"
              " modelled from four ticks per bar)", file=sys.stderr)
    elif isinstance(data, Bars):
        print(f"{PROG}: warning: --allow-expanded-bars: shorter timeframes and the tick level are modelled from four"
              " made-up ticks per bar", file=sys.stderr)
    return 0


def _cannot_rebuild(data: Ticks | Bars) -> list[str]:
    """The columns a bar file cannot rebuild: features, then the score and direction if the model reads them."""
    if not isinstance(data, Bars):
        return []
    from mt5bridge.workbench.quality import cannot_rebuild, model_features

    out = cannot_rebuild(data.timeframe_s, FEATURE_NAMES)
    if cannot_rebuild(data.timeframe_s, model_features(None)):
        out += ["score", "direction", "confidence", "consensus"]
    return out


def _load(args: argparse.Namespace) -> Ticks | Bars:
    if args.synthetic is None:
        from mt5bridge.workbench.quality import read_history, server_clock

        # The spread does not change any feature but the spread ones; a bar file without one gets 0 and those
        # are among the columns left empty.
        data, _ = read_history(args.input, clock=server_clock(args.utc_offset, args.server_time), point=args.point,
                               spread_points=0.0, spread_from="(no spread: features only)")
        return data
    from mt5bridge.market.synthetic import generate_ticks

    try:
        return generate_ticks(args.synthetic, days=args.days, seed=args.seed)
    except ValueError as exc:
        raise UsageError(f"--synthetic: {exc}") from exc


def _fail(message: str, status: int = 2) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status


def _timeframe_arg(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return timeframe_seconds(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _check_number_args(args: argparse.Namespace) -> None:
    if args.utc_offset is not None and (not math.isfinite(args.utc_offset) or abs(args.utc_offset) > 24):
        raise UsageError(f"--utc-offset {args.utc_offset:g} is not between -24 and 24 hours")
    if args.point is not None and not (0.0 < args.point < math.inf):
        raise UsageError(f"--point {args.point:g} is not a positive price")


def _ticks_to_replay(data: Ticks | Bars, wanted_s: int | None, path: str) -> tuple[int, Ticks]:
    """The timeframe to record, in seconds, and the ticks to feed the engine."""
    if isinstance(data, Ticks):
        return (wanted_s or 60), data
    if wanted_s is not None and wanted_s != data.timeframe_s:
        raise UsageError(
            f"--timeframe {TIMEFRAME_LABELS[wanted_s]} does not match {path}, whose bars are"
            f" {TIMEFRAME_LABELS[data.timeframe_s]} ({data.timeframe_s} s apart); leave --timeframe out"
            " or give the file's own"
        )
    return data.timeframe_s, expand_bars_to_ticks(data)


class _FeatureCsv:
    """The rows of the output CSV: one per bar close, features, score, direction and any indicators."""

    def __init__(self, with_indicators: bool, direction_names, consensus_names, blank: list[str] = ()) -> None:
        self.direction_names = direction_names
        self.consensus_names = consensus_names
        features = set(FEATURE_NAMES)
        self.extra = (
            [i for i, name in enumerate(INDICATOR_NAMES) if name not in features] if with_indicators else []
        )
        self.columns = (
            ["time", *FEATURE_NAMES, "score", "direction", "confidence", "consensus"]
            + [INDICATOR_NAMES[i] for i in self.extra]
        )
        # One format per row, applied in C; NaN prints as "nan" and is then blanked (no other field of a row
        # can contain "nan": times are digits, the direction and consensus names are upper case).
        self.row_format = (
            "%s," + ",".join(["%.12g"] * (len(FEATURE_NAMES) + 1)) + ",%s,%.12g,%s"
            + ",%.12g" * len(self.extra) + "\n"
        )
        self.rows = 0
        self.fh = None
        # Columns the input cannot rebuild are written empty (blank features as NaN, which prints empty).
        self.blank_features = [FEATURE_NAMES.index(n) for n in blank if n in FEATURE_NAMES]
        self.blank_signal = "score" in blank
        prefixes = tuple(f"{n.split('_')[0]}_" for n in blank if n.split("_")[0] in ("m1", "m5", "m15"))
        self.blank_extra = [j for j, i in enumerate(self.extra) if prefixes and INDICATOR_NAMES[i].startswith(prefixes)]

    def start(self, fh) -> None:
        self.fh = fh
        self.fh.write(",".join(self.columns) + "\n")

    def write(self, res: dict) -> None:
        n = len(res["time"])
        if n == 0:
            return
        if self.blank_features or self.blank_signal:
            res = dict(res, features=np.array(res["features"], dtype=np.float64, copy=True))
            res["features"][:, self.blank_features] = np.nan
            if self.blank_signal:
                res["score"] = np.full(n, np.nan)
                res["confidence"] = np.full(n, np.nan)
            if self.blank_extra:
                res["indicators"] = np.array(res["indicators"], dtype=np.float64, copy=True)
                res["indicators"][:, [self.extra[j] for j in self.blank_extra]] = np.nan
        times = np.datetime_as_string(np.asarray(res["time"], dtype=np.int64).astype("datetime64[ms]"), unit="s")
        front = np.column_stack([res["features"], res["score"]]).tolist()
        directions = [self.direction_names[int(d)] for d in res["direction"]]
        consensus = [self.consensus_names[int(c)] for c in res["consensus"]]
        if self.blank_signal:
            directions = consensus = [""] * n
        confidence = np.asarray(res["confidence"], dtype=np.float64).tolist()
        back = res["indicators"][:, self.extra].tolist() if self.extra else [[]] * n
        fmt = self.row_format
        self.fh.write(
            "".join(
                fmt % (times[i].replace("T", " "), *front[i], directions[i], confidence[i], consensus[i], *back[i])
                for i in range(n)
            ).replace("nan", "")
        )
        self.rows += n
