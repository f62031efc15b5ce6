"""The operator's commands: one module per `mt5bridge` subcommand, the argument parser (main) and the live view.

The top of the house: a command may use any room below it; nothing below imports a command.
"""

from mt5bridge.cli.entry import main  # noqa: F401  (the `mt5bridge` entry point, also as mt5bridge.cli:main)
