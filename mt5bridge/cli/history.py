"""`mt5bridge history` and `mt5bridge reconcile`: the terminal's own records, read on the trader's machine.

``history`` exports a symbol's ticks or bars from the running terminal into the CSV that ``features``,
``train`` and ``replay`` read, and its trading specification into a spec file (``mt5bridge/market/symbolspec.py``).
``reconcile`` compares the terminal's open positions and today's deals with the bridge's journal and lists
every difference.

Both need the terminal: on Windows, with the MetaTrader5 package (``pip install "mt5bridge[mt5]"``).
Elsewhere they say so and exit 2. See docs/history.md, which also explains the server time offset.

Exit status: ``history`` 0 when the file was written, 2 for a bad argument, no terminal, or no data;
``reconcile`` 0 when terminal and journal agree, 1 when they differ, 2 when it cannot compare.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from mt5bridge.common import strictjson
from mt5bridge.market.readers import TIMEFRAME_LABELS, timeframe_seconds
from mt5bridge.mt5.history import (
    crosses_us_clock_change,
    prague_midnight_utc_ms,
    typical_spread,
    write_csv,
)
from mt5bridge.mt5.reconcile import format_reconcile, reconcile

OFFSET_NOTE = (
    "--server-utc-offset not given: the terminal's times are taken as UTC. MT5 reports its trade server's"
    " clock (FTMO: UTC+2, UTC+3 in US summer time); give --server-utc-offset HOURS so times are converted"
)
_MAX_OFFSET_H = 14.0


class UsageError(Exception):
    """A bad command-line value."""


def register(subparsers: argparse._SubParsersAction) -> None:
    h = subparsers.add_parser(
        "history",
        help="export ticks or bars and the symbol's specification from the running MT5 terminal (Windows)",
        description="Export a symbol's ticks or bars from the running MetaTrader 5 terminal as a CSV that"
        " features, train and replay read, and its trading specification into a spec file.",
    )
    h.add_argument("--symbol", required=True, help="the symbol as the terminal names it, e.g. EURUSD")
    h.add_argument("--from", required=True, dest="date_from", metavar="DATE",
                   help="first day (or time) to export, UTC: YYYY-MM-DD or 'YYYY-MM-DD HH:MM'")
    h.add_argument("--to", required=True, dest="date_to", metavar="DATE",
                   help="end of the export, exclusive, UTC: --to 2026-02-01 stops at its midnight")
    kind = h.add_mutually_exclusive_group(required=True)
    kind.add_argument("--ticks", action="store_true", help="every quote (bid and ask)")
    kind.add_argument("--bars", metavar="M1|M5|M15|H1", help="bars of this timeframe")
    h.add_argument("--out", required=True, metavar="FILE.csv", help="the CSV to write (replaced if it exists)")
    h.add_argument("--spec-out", dest="spec_out", metavar="FILE.toml",
                   help="also write the symbol's specification into this spec file (other symbols are kept)")
    h.add_argument("--commission-per-lot", dest="commission_per_lot", type=float, default=0.0, metavar="MONEY",
                   help="commission in the account currency per lot on every deal, in and out, for the spec file"
                   " (the terminal does not report it; default 0)")
    _terminal_options(h)
    h.set_defaults(func=run_history)

    r = subparsers.add_parser(
        "reconcile",
        help="compare the terminal's open positions and today's deals with the journal (Windows)",
        description="List every difference between the running terminal's open positions and deals since"
        " Prague midnight and what the bridge's journal holds. Exit 0 when they agree, 1 when they differ.",
    )
    where = r.add_mutually_exclusive_group()
    where.add_argument("--config", metavar="FILE", help="the bridge's configuration (its journal is compared)")
    where.add_argument("--journal", metavar="FILE", help="the journal file itself")
    r.add_argument("--json", action="store_true", help="print the differences as JSON")
    _terminal_options(r)
    r.set_defaults(func=run_reconcile)


def _terminal_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server-utc-offset", dest="server_utc_offset", type=float, default=None, metavar="HOURS",
                   help="the trade server's clock is UTC plus HOURS (FTMO: 2, or 3 in US summer time); default 0")
    p.add_argument("--terminal", metavar="PATH", help="terminal64.exe to attach to, when several are installed")


# ---------------------------------------------------------------------------------------------------------
# history


def run_history(args: argparse.Namespace, *, platform: str | None = None) -> int:
    from mt5bridge.market.symbolspec import SpecFileError, check_spec
    from mt5bridge.mt5.terminal import Terminal, TerminalError, TerminalUnavailable

    prog = "mt5bridge history"
    try:
        start_ms = _utc_ms(args.date_from, "--from")
        end_ms = _utc_ms(args.date_to, "--to")
        if end_ms <= start_ms:
            raise UsageError(f"--to {args.date_to} is not after --from {args.date_from}")
        offset_s = _offset_s(args.server_utc_offset)
        timeframe_s = None if args.ticks else _timeframe(args.bars)
        if timeframe_s is not None and offset_s % timeframe_s:
            raise UsageError(f"--server-utc-offset {args.server_utc_offset:g} h would put {args.bars} bars off"
                             " their period boundaries in UTC; export ticks or M1 bars instead")
        if not (math.isfinite(args.commission_per_lot) and args.commission_per_lot >= 0):
            raise UsageError(f"--commission-per-lot {args.commission_per_lot:g} must be 0 or more")
    except UsageError as exc:
        return _fail(prog, str(exc))

    symbol = args.symbol.strip()
    try:
        with Terminal.connect(server_utc_offset_s=offset_s, path=args.terminal, platform=platform) as term:
            spec = term.symbol_spec(symbol)
            if timeframe_s is None:
                data, stats = term.ticks(symbol, start_ms, end_ms)
            else:
                data, stats = term.bars(symbol, timeframe_s, start_ms, end_ms, spec["point"]), {}
    except (TerminalUnavailable, TerminalError) as exc:
        return _fail(prog, str(exc))

    what = "ticks" if timeframe_s is None else f"{TIMEFRAME_LABELS[timeframe_s]} bars"
    span = f"{_text(start_ms)} to {_text(end_ms)} UTC"
    if len(data) == 0:
        return _fail(prog, f"the terminal has no {what} of {symbol} from {span}: open a chart of {symbol} and"
                     " scroll back (or raise Tools > Options > Charts > Max bars) so it downloads the history")
    spec_out = None
    if args.spec_out:
        spread = typical_spread(data, spec)
        spec_out = {**{k: v for k, v in spec.items() if k != "spread"}, "spread_points": spread,
                    "commission_per_lot": float(args.commission_per_lot)}
        try:
            check_spec(spec_out, f"{symbol} as the terminal reports it")
        except SpecFileError as exc:
            return _fail(prog, f"{exc}; open a chart of {symbol} so the terminal loads its specification, then"
                         " run again")
    try:
        write_csv(args.out, data, spec["digits"])
    except OSError as exc:
        return _fail(prog, f"--out {args.out}: cannot write the file: {exc.strerror or exc}")
    if spec_out is not None:
        from mt5bridge.market.symbolspec import write_spec

        try:
            write_spec(args.spec_out, symbol, spec_out)
        except SpecFileError as exc:
            return _fail(prog, f"--spec-out: {exc}")
        except OSError as exc:
            return _fail(prog, f"--spec-out {args.spec_out}: cannot write the file: {exc.strerror or exc}")

    left_out = ""
    if stats.get("not_quotes") or stats.get("crossed"):
        left_out = (f" ({stats['not_quotes']} trade-only ticks and {stats['crossed']} crossed quotes left out"
                    f" of {stats['received']})")
    print(f"{prog}: wrote {len(data)} {what} of {symbol}, {span}, to {args.out}{left_out}", file=sys.stderr)
    if spec_out is not None:
        print(f"{prog}: wrote the {symbol} specification to {args.spec_out}", file=sys.stderr)
    if args.server_utc_offset is None:
        print(f"{prog}: note: {OFFSET_NOTE}", file=sys.stderr)
    elif crosses_us_clock_change(start_ms, end_ms):
        # One offset for the whole range: brokers on New York's clock (FTMO: UTC+2, UTC+3 in US summer time)
        # change theirs inside it, so part of the export is an hour off in UTC.
        print(f"{prog}: warning: {span} crosses a US summer-time change, when servers on New York's clock (FTMO's"
              " among them) move their UTC offset by an hour; one --server-utc-offset cannot be right for all of"
              " it: export each side of the change separately with its own offset", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------------------------------------
# reconcile


def run_reconcile(args: argparse.Namespace, *, platform: str | None = None, clock=time.time) -> int:
    from mt5bridge.bridge.journal import Journal, JournalError
    from mt5bridge.mt5.terminal import (
        Terminal,
        TerminalError,
        TerminalUnavailable,
        import_mt5,
    )

    prog = "mt5bridge reconcile"
    try:
        offset_s = _offset_s(args.server_utc_offset)
    except UsageError as exc:
        return _fail(prog, str(exc))
    try:
        import_mt5(platform)  # before anything else: on the wrong machine, that is the one thing to say
    except TerminalUnavailable as exc:
        return _fail(prog, str(exc))
    journal_path = _journal_path(args)
    if not journal_path.is_file():
        return _fail(prog, f"no journal at {journal_path}: give --journal FILE or the --config the bridge runs with")

    now_ms = int(clock() * 1000)
    day_start_ms = prague_midnight_utc_ms(now_ms)
    day_start_server_ms = day_start_ms + offset_s * 1000
    try:
        with Terminal.connect(server_utc_offset_s=offset_s, path=args.terminal, platform=platform) as term:
            account = term.account()
            terminal_positions = term.positions()
            terminal_deals = term.deals_server(day_start_server_ms, now_ms + offset_s * 1000 + 60_000)
    except (TerminalUnavailable, TerminalError) as exc:
        return _fail(prog, str(exc))
    login = account["login"]
    try:
        with Journal(journal_path, create=False) as journal:
            known = journal.accounts()
            if login not in known:
                return _fail(prog, f"the terminal is logged in to account {login} ({account['server']}), which the"
                             f" journal {journal_path} has never seen (accounts in it: {', '.join(known) or 'none'})")
            journal_positions = journal.open_positions(login)
            journal_deals = [d for d in journal.deals(login) if d["time_msc"] >= day_start_server_ms]
    except JournalError as exc:
        return _fail(prog, str(exc))

    differences = reconcile(terminal_positions, journal_positions, terminal_deals, journal_deals)
    summary = {
        "account": login, "server": account["server"], "journal": str(journal_path),
        "prague_day_start_utc": _text(day_start_ms), "server_utc_offset_hours": offset_s / 3600,
        "positions": {"terminal": len(terminal_positions), "journal": len(journal_positions)},
        "deals_today": {"terminal": len(terminal_deals), "journal": len(journal_deals)},
        "differences": differences,
    }
    if args.json:
        print(strictjson.dumps(summary, indent=2))   # strict: a parser that refuses NaN reads it
    else:
        print(format_reconcile(summary))
    if args.server_utc_offset is None:
        print(f"{prog}: note: {OFFSET_NOTE}; today's deals start at Prague midnight in server time",
              file=sys.stderr)
    return 1 if differences else 0


def _journal_path(args: argparse.Namespace) -> Path:
    if args.journal:
        return Path(args.journal)
    from mt5bridge.config import journal_path, load_config

    return journal_path(load_config(args.config), args.config)  # a bad config reaches the CLI's ConfigError


# ---------------------------------------------------------------------------------------------------------
# Time


def _utc_ms(text: str, option: str) -> int:
    s = text.strip().replace("T", " ").rstrip("Z")
    for fmt in ("%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y.%m.%d", "%Y.%m.%d %H:%M"):
        try:
            return int(datetime.strptime(s, fmt).replace(tzinfo=timezone.utc).timestamp() * 1000)
        except ValueError:
            continue
    raise UsageError(f"{option} {text!r} is not a date: give YYYY-MM-DD or 'YYYY-MM-DD HH:MM' (UTC)")


def _offset_s(hours: float | None) -> int:
    if hours is None:
        return 0
    if not (math.isfinite(hours) and abs(hours) <= _MAX_OFFSET_H):
        raise UsageError(f"--server-utc-offset {hours:g} is not between -{_MAX_OFFSET_H:g} and {_MAX_OFFSET_H:g}"
                         " hours")
    seconds = hours * 3600
    if seconds % 900:
        raise UsageError(f"--server-utc-offset {hours:g} is not a whole number of quarter hours")
    return int(seconds)


def _timeframe(text: str) -> int:
    try:
        return timeframe_seconds(text)
    except ValueError as exc:
        raise UsageError(f"--bars {text!r}: {exc}") from None


def _text(utc_ms: int) -> str:
    return datetime.fromtimestamp(utc_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


def _fail(prog: str, message: str) -> int:
    print(f"{prog}: error: {message}", file=sys.stderr)
    return 2
