"""`mt5bridge export-trades`: write the journal's closed trades as CSV, one row per trade.

Each row has the trade (account, ticket, symbol, side, volume, open and close times, profit, R multiple, MFE and
MAE in R, whether the engine managed it, the stage it reached, scale-ins) and then the 147 catalog features as
the engine saw them when the position opened (``entry_<feature>``) and when it closed (``exit_<feature>``):
with the outcome, the examples a direction model is checked and retrained on. A feature not known (still warming
up, or a position opened before the bridge saw it) is left empty.

The journal may be read while the bridge runs. The CSV appears only when complete.

Exit status: 0 when the file was written (even with no trade in it); 2 when the journal is missing or unreadable,
the account is not in it, or the CSV cannot be written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROG = "mt5bridge export-trades"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export-trades",
        help="write the journal's closed trades, with their features at entry and exit, as CSV",
        description="Write every closed trade of the journal as one CSV row: the trade, then the 147 features"
        " at entry (entry_<feature>) and at exit (exit_<feature>).",
    )
    p.add_argument("--journal", required=True, metavar="FILE", help="the bridge's journal file (SQLite)")
    p.add_argument("--out", required=True, metavar="FILE.csv", help="the CSV to write (replaced if it exists)")
    p.add_argument("--account", metavar="LOGIN", help="only this account's trades (default: every account)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mt5bridge.bridge.journal import Journal, JournalError

    journal_path = Path(args.journal)
    if not journal_path.is_file():
        what = "is a folder, not a journal file" if journal_path.is_dir() else "does not exist"
        return _fail(f"--journal {args.journal} {what}: give the journal file the bridge writes")
    account = args.account.strip() if args.account is not None else None
    try:
        with Journal(journal_path, create=False) as journal:
            if account is not None and account not in journal.accounts():
                known = ", ".join(journal.accounts()) or "none"
                return _fail(f"--account {account} is not in {args.journal} (accounts in it: {known})")
            rows = journal.export_trades(args.out, account=account)
    except JournalError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"--out {args.out}: cannot write the file: {exc.strerror or exc}")
    scope = f"account {account}" if account is not None else "all accounts"
    print(f"{PROG}: wrote {rows} closed trade{'s' if rows != 1 else ''} ({scope}) from {args.journal} to {args.out}",
          file=sys.stderr)
    return 0


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2
