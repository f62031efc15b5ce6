"""`mt5bridge demo`: a bridge and a simulated terminal with several symbols on synthetic prices, watched live.

Nothing here touches a real account: the bridge runs on free loopback ports with its journal in a fresh
temporary folder, and the terminal is mt5bridge's simulator. It is the whole path of a live session — HELLO,
warm-up, ticks in lock-step, commands, results, deals, the FTMO guard — in one command.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import threading
import time
from pathlib import Path

PROG = "mt5bridge demo"
# History sent as warm-up: the H1 EMA 200 needs 200 trading hours, about 9 trading days, and a calendar
# fortnight around New Year holds fewer than that.
WARMUP_DAYS = 21.0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("demo", help="run a bridge and a simulated terminal on synthetic prices, live",
                              description="Run a bridge and a simulated MT5 terminal with several symbols on "
                              "synthetic prices, and watch the FTMO headroom, decisions and latency live.")
    p.add_argument("--symbols", default="EURUSD,GBPUSD,USDJPY,XAUUSD", help="comma-separated synthetic symbols")
    p.add_argument("--days", type=float, default=3.0, help="days of synthetic market to replay (default 3)")
    p.add_argument("--seconds", type=float, default=30.0, metavar="SECONDS",
                   help="stop after this many seconds (default 30; 0 = the whole replay)")
    p.add_argument("--config", metavar="FILE", help="configuration (default: the embedded 2-Step challenge)")
    p.add_argument("--seed", type=int, default=1, help="seed of the synthetic market")
    p.add_argument("--page", action="store_true",
                   help="also serve the live page on http://127.0.0.1:8765/ (page.port; needs mt5bridge[page])")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    from mt5bridge.bridge.server import Bridge, control_request
    from mt5bridge.cli.live_view import plain_line, watch
    from mt5bridge.config import config_from_dict, load_config
    from mt5bridge.simulator import SimulatedTerminal, SimulatorError

    symbols = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
    base = load_config(args.config)
    folder = Path(tempfile.mkdtemp(prefix="mt5bridge-demo-"))
    data = base.model_dump(mode="json", by_alias=True)
    ea, control = f"tcp://127.0.0.1:{_free_port()}", f"tcp://127.0.0.1:{_free_port()}"
    data["bridge"].update(endpoint=ea, control_endpoint=control, journal=str(folder / "journal.sqlite"))
    cfg = config_from_dict(data, "the demo configuration")
    from mt5bridge.bridge.server import BridgeError
    from mt5bridge.market.news import blackout_calendar

    try:
        bridge = Bridge(cfg, news=blackout_calendar(cfg), page=True if args.page else None)
    except BridgeError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    if bridge.page is not None:
        print(f"live page: http://127.0.0.1:{bridge.page.port}/", file=sys.stderr)
    serving = threading.Thread(target=bridge.serve, name="bridge", daemon=True)
    serving.start()
    try:
        # The replay opens on a Monday at 07:00 UTC, as London opens: the hours the default sessions trade.
        terminal = SimulatedTerminal(ea, symbols, days=args.days, seed=args.seed, warmup_days=WARMUP_DAYS,
                                     start="2024-01-08T07:00:00Z")
    except SimulatorError as exc:
        bridge.request_stop()
        serving.join(5)
        bridge.close()
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    report: dict = {}

    def replay() -> None:
        try:
            report["report"] = terminal.run()
        except Exception as exc:  # shown to the trader below, not swallowed
            report["error"] = exc

    trading = threading.Thread(target=replay, name="terminal", daemon=True)
    trading.start()
    deadline = time.monotonic() + args.seconds if args.seconds > 0 else None

    def done() -> bool:
        return not trading.is_alive() or (deadline is not None and time.monotonic() >= deadline)

    try:
        watch(lambda: control_request(control, {"cmd": "status"}, timeout_ms=1000, token=bridge.token), done)
    except KeyboardInterrupt:
        pass
    terminal.stop()
    trading.join(10)
    final = control_request(control, {"cmd": "status"}, timeout_ms=2000, token=bridge.token)
    bridge.request_stop()
    serving.join(5)
    bridge.close()
    if "error" in report:
        print(f"{PROG}: the simulated terminal stopped: {report['error']}", file=sys.stderr)
        return 1
    if "report" in report:
        print(report["report"].format())
    if final is not None:
        print(plain_line(final))
    print(f"journal of this demo: {folder / 'journal.sqlite'}")
    return 0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
