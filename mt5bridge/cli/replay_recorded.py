"""`mt5bridge replay --recorded DAY`: a day the bridge traded, run again through the engine and compared with
what it sent live. Exit 0 when identical, 1 when decisions differ (each listed with its cause), 2 on bad input."""

from __future__ import annotations

import argparse
import sys

PROG = "mt5bridge replay --recorded"


def add_arguments(p: argparse.ArgumentParser, source: argparse._MutuallyExclusiveGroup) -> None:
    source.add_argument("--recorded", metavar="DAY",
                        help="instead of history, the bridge's own recording of DAY (UTC, YYYY-MM-DD), compared "
                        "decision by decision with its journal; see docs/recording.md")
    p.add_argument("--journal", metavar="FILE",
                   help="with --recorded: the live journal (default: bridge.journal of --config)")
    p.add_argument("--recordings", metavar="FOLDER",
                   help="with --recorded: the recordings folder (default: recording.folder of --config, else "
                   "'recordings' beside the journal)")
    p.add_argument("--account", action="append", metavar="LOGIN",
                   help="with --recorded: compare only this account (repeatable; every account is replayed)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mt5bridge.bridge.journal import JournalError
    from mt5bridge.bridge.recorder import recording_folder
    from mt5bridge.common.atomicfile import write_text
    from mt5bridge.config import journal_path, load_config
    from mt5bridge.core.model import ModelError
    from mt5bridge.market.news import NewsCalendarError, blackout_calendar
    from mt5bridge.workbench.recorded import RecordingError, compare_day

    cfg = load_config(args.config)
    folder = Path(args.recordings) if args.recordings else recording_folder(cfg, args.config)
    journal = Path(args.journal) if args.journal else journal_path(cfg, args.config)
    try:
        result = compare_day(folder, args.recorded, cfg, journal, model=args.model, news=blackout_calendar(cfg),
                             accounts=args.account)
    except (RecordingError, JournalError, ModelError, NewsCalendarError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    if args.report:
        import json

        try:
            write_text(args.report, json.dumps(result.to_json(), indent=1, allow_nan=False) + "\n")
        except OSError as exc:
            print(f"{PROG}: error: cannot write {exc.filename}: {exc.strerror}", file=sys.stderr)
            return 2
    if not args.quiet or not result.identical:
        _say(result)
    return 0 if result.identical else 1


def _say(result) -> None:
    verdict = "IDENTICAL" if result.identical else f"{len(result.differences)} DIFFERENCE(S)"
    print(f"recorded {result.day}: accounts {', '.join(result.accounts) or 'none'}; {result.frames:,} frames "
          f"replayed; {result.commands_live} commands live, {result.commands_replayed} replayed: {verdict}")
    for note in result.notes:
        print(f"  note: {note}")
    for diff in result.differences:
        where = (f"{diff['account']} {diff.get('chart') or diff.get('symbol') or ''} seq {diff['seq']}"
                 if diff.get("seq") is not None else f"{diff['account'] or 'all accounts'} {diff.get('symbol') or ''}")
        print(f"  {where.strip()}: {diff['what']}")
        for name, pair in diff.get("fields", {}).items():
            print(f"      {name}: live {pair['live']!r}, replay {pair['replay']!r}")
        print(f"      cause: {diff['cause']}")
