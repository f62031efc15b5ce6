"""The node's own cost per TICK, in process: `Node.handle` from frame to reply, against pydantic's parse alone.

    python bench/node.py [--json] [--ticks N] [--positions K] [--cold]

A real `Node` with its SQLite journal in a temporary folder and the default configuration; one chart says
HELLO (EURUSD), then TICK frames as the EA writes them (compact JSON, fields in protocol order) are handed
to `Node.handle` one at a time, each call timed alone with `time.perf_counter_ns()`. Three series, each on a
fresh node:

- `none`: no positions (the bulk of the traffic, and what `bench/roundtrip.py` sends);
- `changing`: K positions (3 by default; hand-opened, so counted in every limit) whose floating profit moves
  with the bid on every tick, so the book is synced on every tick;
- `unchanged`: the same K positions, identical on every tick (the book is not re-synced).

In the same run, the same frames are parsed by the protocol's pydantic models alone
(`protocol.parse_request`) and read by the fast TICK reader alone (`fastwire.read_tick`); the ratios put the
node's whole work next to that one parse. The median of an empty timing pair is subtracted from every sample;
the garbage collector stays on, as in the bridge.

`--cold` reads a 4 MB buffer between calls, so each call starts with the caches empty, as in the bridge
process, which sleeps in a receive between ticks while the EA's side and zmq's threads run on the same
cores. Those figures are nearer what the live bridge spends per tick (`answer_ms` in `mt5bridge status`),
though still below it; the default warm loop shows the least the code can cost. The last line printed is
one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# The installed package is measured (pip install .), never a source tree beside this script.
from mt5bridge.bridge import fastwire
from mt5bridge.bridge import protocol as wire
from mt5bridge.bridge.journal import Journal
from mt5bridge.bridge.node import Node
from mt5bridge.config import Config

SERVER_OFFSET_MS = 3 * 3_600_000
START_MS = 1_783_400_000_000
CHART = b"1510234567-EURUSD-1"


def frames(n: int, positions: int, changing: bool, seed: int = 1) -> list[bytes]:
    rng = np.random.default_rng(seed)
    bid = np.round(1.085 + np.cumsum(rng.normal(0, 2e-5, n)), 5)
    out = []
    for i in range(n):
        book = [dict(wire.Position.example, ticket=1000 + k, magic=0, comment="",
                     profit=round((float(bid[i]) - 1.08405) * 100_000 if changing else 107.0, 2))
                for k in range(positions)]
        msg = dict(wire.Tick.example, seq=i + 1, time_msc=START_MS + SERVER_OFFSET_MS + 250 * i,
                   bid=float(bid[i]), ask=round(float(bid[i]) + 0.0001, 5), positions=book)
        out.append(json.dumps(msg, separators=(",", ":")).encode())
    return out


def new_node(folder: Path) -> Node:
    cfg = Config.model_validate({"bridge": {"journal": str(folder / "journal.sqlite")}})
    node = Node(cfg, Journal(folder / "journal.sqlite"))
    hello = dict(wire.Hello.example, seq=0, symbol="EURUSD", server_utc_offset_s=SERVER_OFFSET_MS // 1000)
    reply = node.handle(CHART, json.dumps(hello).encode())
    assert json.loads(reply)["type"] == "WELCOME", reply
    return node


def timer_overhead() -> float:
    pc = time.perf_counter_ns
    pairs = np.empty(20_000)
    for i in range(pairs.size):
        t0 = pc()
        pairs[i] = pc() - t0
    return float(np.median(pairs))


class Evict:
    """Between calls, read a buffer larger than this machine's L2 so the next call starts cold."""

    def __init__(self, on: bool) -> None:
        self.buf = np.ones(1 << 19) if on else None   # 4 MB of float64

    def __call__(self) -> None:
        if self.buf is not None:
            self.buf.sum()


def time_calls(fn, args: list, evict: Evict, overhead: float) -> np.ndarray:
    pc = time.perf_counter_ns
    out = np.empty(len(args))
    for i, a in enumerate(args):
        evict()
        t0 = pc()
        fn(a)
        out[i] = pc() - t0
    return (out - overhead) / 1000.0


def run_series(name: str, data: list[bytes], warm: int, evict: Evict, overhead: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        node = new_node(Path(tmp))
        handle = node.handle
        for f in data[:warm]:
            handle(CHART, f)
        replies = [handle(CHART, f) for f in data[warm:warm + 1]]
        assert json.loads(replies[0])["type"] == "COMMAND", replies[0]
        node_us = time_calls(lambda f: handle(CHART, f), data[warm + 1:], evict, overhead)
        node.close()
        node.journal.close()
    timed = data[warm + 1:]
    assert all(fastwire.read_tick(f, wire.MAX_FRAME_BYTES) is not None for f in timed[:100]), "fast path not taken"
    parse_us = time_calls(lambda f: wire.parse_request(f, wire.MAX_FRAME_BYTES), timed, evict, overhead)
    fast_us = time_calls(lambda f: fastwire.read_tick(f, wire.MAX_FRAME_BYTES), timed, evict, overhead)
    p = lambda a, q: round(float(np.percentile(a, q)), 2)  # noqa: E731
    return {
        f"{name}_handle_p50_us": p(node_us, 50), f"{name}_handle_p99_us": p(node_us, 99),
        f"{name}_pydantic_parse_p50_us": p(parse_us, 50), f"{name}_fast_read_p50_us": p(fast_us, 50),
        f"{name}_handle_over_pydantic_parse": round(p(node_us, 50) / p(parse_us, 50), 2),
        f"{name}_pydantic_parse_over_fast_read": round(p(parse_us, 50) / p(fast_us, 50), 2),
        f"{name}_frame_bytes": len(timed[0]),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print only the JSON line")
    ap.add_argument("--ticks", type=int, default=None, help="timed ticks per series (20,000; 5,000 with --cold)")
    ap.add_argument("--positions", type=int, default=3, help="positions in the series that carry some")
    ap.add_argument("--cold", action="store_true", help="empty the caches before every call")
    args = ap.parse_args(argv)
    logging.getLogger("mt5bridge").setLevel(logging.ERROR)   # each hand-opened position is announced once
    n = args.ticks or (5_000 if args.cold else 20_000)
    warm = 1_000
    evict = Evict(args.cold)
    overhead = timer_overhead()
    r: dict = {"cold": args.cold, "timed_ticks": n, "positions": args.positions, "timer_overhead_ns": overhead}
    for name, k, changing in (("none", 0, False), ("changing", args.positions, True),
                              ("unchanged", args.positions, False)):
        r.update(run_series(name, frames(n + warm + 1, k, changing), warm, evict, overhead))
    if not args.json:
        print(f"{'series':<11} {'handle p50':>11} {'p99':>8} {'pydantic':>9} {'fast read':>10} "
              f"{'handle/pyd':>11} {'pyd/fast':>9}   (µs; {'cold' if args.cold else 'warm'} caches)")
        for name in ("none", "changing", "unchanged"):
            print(f"{name:<11} {r[f'{name}_handle_p50_us']:>11} {r[f'{name}_handle_p99_us']:>8} "
                  f"{r[f'{name}_pydantic_parse_p50_us']:>9} {r[f'{name}_fast_read_p50_us']:>10} "
                  f"{r[f'{name}_handle_over_pydantic_parse']:>11} {r[f'{name}_pydantic_parse_over_fast_read']:>9}")
    print(json.dumps(r, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
