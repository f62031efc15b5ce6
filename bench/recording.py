"""What recording costs the tick path: `Node.handle` alone against the recorder's append plus `Node.handle`.

    python bench/recording.py [--json] [--ticks N] [--positions K]

A real `Node` with its SQLite journal in a temporary folder and the default configuration; one chart says HELLO
(EURUSD), then TICK frames as the EA writes them (K positions whose profit moves with the bid: the frames the
recording holds most of). Two series on fresh nodes, in the same run and alternating in blocks so that both see
the same machine: `bare` times `node.handle` alone; `recorded` times `recorder.frame` followed by `node.handle`,
with a real `Recorder` writing to the temporary folder (its thread compresses and writes, as in the bridge).
Also: the bytes on disk per tick after compression, and the writer thread's compression rate. The last line
printed is one JSON object.
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
from mt5bridge.bridge import protocol as wire
from mt5bridge.bridge.journal import Journal
from mt5bridge.bridge.node import Node
from mt5bridge.bridge.recorder import Recorder
from mt5bridge.config import Config

SERVER_OFFSET_MS = 3 * 3_600_000
START_MS = 1_783_400_000_000
CHART = b"1510234567-EURUSD-1"
BLOCK = 500


def frames(n: int, positions: int, seed: int = 1) -> list[bytes]:
    rng = np.random.default_rng(seed)
    bid = np.round(1.085 + np.cumsum(rng.normal(0, 2e-5, n)), 5)
    out = []
    for i in range(n):
        book = [dict(wire.Position.example, ticket=1000 + k, magic=0, comment="",
                     profit=round((float(bid[i]) - 1.08405) * 100_000, 2)) for k in range(positions)]
        msg = dict(wire.Tick.example, seq=i + 1, time_msc=START_MS + SERVER_OFFSET_MS + 250 * i,
                   bid=float(bid[i]), ask=round(float(bid[i]) + 0.0001, 5), positions=book)
        out.append(json.dumps(msg, separators=(",", ":")).encode())
    return out


def new_node(folder: Path) -> Node:
    cfg = Config.model_validate({"bridge": {"journal": str(folder / "journal.sqlite")}})
    node = Node(cfg, Journal(folder / "journal.sqlite"))
    hello = json.dumps(dict(wire.Hello.example, seq=0, symbol="EURUSD",
                            server_utc_offset_s=SERVER_OFFSET_MS // 1000)).encode()
    return node, hello


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print only the JSON line")
    ap.add_argument("--ticks", type=int, default=20_000, help="timed ticks per series (default 20,000)")
    ap.add_argument("--positions", type=int, default=3, help="positions each TICK carries (default 3)")
    args = ap.parse_args(argv)
    logging.getLogger("mt5bridge").setLevel(logging.ERROR)
    n, warm = args.ticks, 1_000
    data = frames(n + warm, args.positions)
    pc = time.perf_counter_ns
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "bare").mkdir()
        (tmp / "rec").mkdir()
        bare, hello = new_node(tmp / "bare")
        rec_node, _ = new_node(tmp / "rec")
        recorder = Recorder(tmp / "rec" / "recordings", max_bytes=1 << 40, flush_every_s=2.0, session={})
        bare.handle(CHART, hello)
        recorder.frame(CHART, hello, rec_node)
        rec_node.handle(CHART, hello)
        for f in data[:warm]:
            bare.handle(CHART, f)
            recorder.frame(CHART, f, rec_node)
            rec_node.handle(CHART, f)
        bare_ns, rec_ns = np.empty(n), np.empty(n)
        timed = data[warm:]
        flushed_at = time.monotonic()
        for start in range(0, n, BLOCK):
            block = timed[start:start + BLOCK]
            for i, f in enumerate(block, start):
                t0 = pc()
                bare.handle(CHART, f)
                bare_ns[i] = pc() - t0
            for i, f in enumerate(block, start):
                t0 = pc()
                recorder.frame(CHART, f, rec_node)
                rec_node.handle(CHART, f)
                rec_ns[i] = pc() - t0
            if time.monotonic() - flushed_at >= 2.0:   # what housekeeping does in the bridge
                recorder.flush()
                flushed_at = time.monotonic()
        raw = sum(len(f) for f in data) + len(hello)
        t0 = time.perf_counter()
        recorder.close()
        close_s = time.perf_counter() - t0
        on_disk = sum(p.stat().st_size for p in (tmp / "rec" / "recordings").glob("*/*.mt5rec"))
        for node in (bare, rec_node):
            node.close()
            node.journal.close()
    p = lambda a, q: round(float(np.percentile(a, q)) / 1000.0, 2)  # noqa: E731
    r = {"timed_ticks": n, "positions": args.positions, "frame_bytes": len(timed[0]),
         "bare_handle_p50_us": p(bare_ns, 50), "bare_handle_p99_us": p(bare_ns, 99),
         "recorded_handle_p50_us": p(rec_ns, 50), "recorded_handle_p99_us": p(rec_ns, 99),
         "recorded_over_bare_p50": round(float(np.median(rec_ns) / np.median(bare_ns)), 3),
         "added_p50_us": round(float(np.median(rec_ns) - np.median(bare_ns)) / 1000.0, 2),
         "bytes_on_disk_per_tick": round(on_disk / (n + warm), 1),
         "compression_ratio": round(raw / max(on_disk, 1), 1), "final_flush_s": round(close_s, 3)}
    if not args.json:
        print(f"TICK handled alone      p50 {r['bare_handle_p50_us']} µs   p99 {r['bare_handle_p99_us']} µs")
        print(f"recorded, then handled  p50 {r['recorded_handle_p50_us']} µs   p99 {r['recorded_handle_p99_us']} µs"
              f"   ({r['recorded_over_bare_p50']}x, +{r['added_p50_us']} µs)")
        print(f"on disk: {r['bytes_on_disk_per_tick']} bytes per tick ({r['frame_bytes']}-byte frames, "
              f"{r['compression_ratio']}x smaller)")
    print(json.dumps(r, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
