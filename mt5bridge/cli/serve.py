"""`mt5bridge serve`: run the bridge beside the terminal until Ctrl-C (or SIGTERM); exit 0 after a clean stop."""

from __future__ import annotations

import argparse
import logging
import sys

PROG = "mt5bridge serve"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve", help="run the bridge: the EAs connect to it",
                              description="Run the bridge until Ctrl-C. The EAs on your charts connect to it.")
    p.add_argument("--config", metavar="FILE", help="TOML configuration (default: the embedded 2-Step challenge)")
    p.add_argument("--model", metavar="FILE", help="direction model file (default: the shipped one)")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument("--page", action="store_true",
                   help="also serve the read-only live page (page.host:page.port, default http://127.0.0.1:8765/; "
                   "needs mt5bridge[page])")
    p.set_defaults(func=run)


def setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level), stream=sys.stderr,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")


def run(args: argparse.Namespace) -> int:
    setup_logging(args.log_level)
    import time

    from mt5bridge.bridge.journal import JournalError
    from mt5bridge.bridge.server import Bridge, BridgeError
    from mt5bridge.config import config_warnings, load_config
    from mt5bridge.core.model import ModelError
    from mt5bridge.market.news import (
        NewsCalendarError,
        blackout_calendar,
        calendar_warnings,
    )

    cfg = load_config(args.config)
    try:
        # A week ahead: the calendar must cover the days this bridge will trade.
        for warning in config_warnings(cfg) + calendar_warnings(cfg, int((time.time() + 7 * 86_400) * 1000)):
            logging.getLogger("mt5bridge.serve").warning("%s", warning)
        bridge = Bridge(cfg, args.config, model=args.model, news=blackout_calendar(cfg), page=True if args.page else None)
    except (BridgeError, JournalError, ModelError, NewsCalendarError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    bridge.install_signal_handlers()
    try:
        bridge.serve()
    finally:
        bridge.close()
    logging.getLogger("mt5bridge.bridge.server").info("stopped cleanly after %d frames", bridge.frames)
    return 0
