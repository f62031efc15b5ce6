"""`mt5bridge check-config FILE`: validate a configuration file and show what would be traded with.

Prints the effective configuration (every key, defaults filled in) as TOML on stdout and ``OK: FILE`` on
stderr, so ``mt5bridge check-config my.toml > effective.toml`` keeps a record of exactly what ran. Settings
that are valid but looser than FTMO's published rules are reported as warnings on stderr without failing
the check. With the news blackout on, the news calendar is read too: the engine refuses to start without
it, so the check fails the same way.

Exit status: 0 when the file is valid; 2 when it cannot be read, is not TOML, holds any invalid setting, or
names a news calendar that cannot be read, with every problem on stderr, one line each.
"""

from __future__ import annotations

import argparse
import sys

from mt5bridge.config import ConfigError, config_warnings, effective_toml, load_config

PROG = "mt5bridge check-config"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "check-config",
        help="validate a configuration file and print its effective values",
        description="Validate a TOML configuration file: print every effective value (defaults filled in) "
        "on stdout, or every problem found on stderr and exit with status 2.",
    )
    p.add_argument("file", metavar="FILE", help="the TOML configuration file, e.g. config/default.toml")
    p.set_defaults(func=run)


def baselines_in_words(cfg) -> str:
    """Where the FTMO floors will be measured from, before any account is seen."""
    if cfg.account.initial_balance > 0:
        initial = f"initial balance {cfg.account.initial_balance:,.2f} from this file (account.initial_balance)"
    else:
        initial = ("initial balance from the EA at HELLO: its InpInitialBalance, else the account's first deposit "
                   "in its history; with neither, the account opens nothing new")
    return (f"{initial}; the day's start balance from the journal, else from the EA (the balance less the deals "
            "since Prague midnight)")


def run(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.file)
    except ConfigError as exc:
        for line in exc.lines:
            print(line, file=sys.stderr)
        count = len(exc.issues)
        print(f"{PROG}: {args.file}: {count} problem{'s' if count != 1 else ''}, nothing loaded", file=sys.stderr)
        return 2
    if cfg.funded.news_blackout:
        from mt5bridge.market.news import NewsCalendarError, load_news

        try:
            calendar = load_news(cfg.funded.news_file)
        except NewsCalendarError as exc:
            print(f"{PROG}: {args.file}: funded.news_file: {exc}", file=sys.stderr)
            return 2
        print(f"{PROG}: news calendar: {len(calendar.titles)} releases from {cfg.funded.news_file}",
              file=sys.stderr)
    sys.stdout.write(effective_toml(cfg))
    sys.stdout.flush()
    for warning in config_warnings(cfg):
        print(f"warning: {args.file}: {warning}", file=sys.stderr)
    print(f"{PROG}: {baselines_in_words(cfg)}", file=sys.stderr)
    print(f"OK: {args.file}", file=sys.stderr)
    return 0
