"""The `mt5bridge` command: one subcommand per job, each in its own module.

A subcommand module exposes ``register(subparsers)``, which adds its parser and sets ``func`` to a
``run(args) -> int`` function.
"""

from __future__ import annotations

import argparse
import sys

from mt5bridge import __version__

SUBCOMMAND_MODULES = (
    "mt5bridge.cli.serve",
    "mt5bridge.cli.demo",
    "mt5bridge.cli.simulate",
    "mt5bridge.cli.operator",
    "mt5bridge.cli.features",
    "mt5bridge.cli.check_bias",
    "mt5bridge.cli.check_config",
    "mt5bridge.cli.export_trades",
    "mt5bridge.cli.replay",
    "mt5bridge.cli.sweep",
    "mt5bridge.cli.train",
    "mt5bridge.cli.history",
    "mt5bridge.cli.ea_package",
)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="mt5bridge",
        description="Trade an FTMO MetaTrader 5 account from a compiled Python decision engine.",
    )
    parser.add_argument("--version", action="version", version=f"mt5bridge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from mt5bridge.config import ConfigError

    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        # Every command that reads a configuration reports a bad one the same way: each problem on its
        # own line (file, key, value, allowed range), exit status 2, no traceback.
        print("\n".join(exc.lines), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
