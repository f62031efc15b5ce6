"""Round trip through the whole bridge against a raw ZeroMQ echo, measured in the same run.

    python bench/roundtrip.py [--json] [--ticks N] [--charts 28] [--seconds S]

1. **Echo**: a separate process binds a ROUTER and sends every frame straight back; a DEALER sends the
   same TICK frames the bridge gets, one at a time, and times each round trip (`echo_p50_us`, `echo_p99_us`).
2. **Bridge**: `mt5bridge serve` in a separate process with its journal on; another DEALER says HELLO and
   then sends TICKs lock-step, timing TICK -> COMMAND (`bridge_p50_us`, `bridge_p99_us`).
   Both servers run at once and the two are timed in alternating blocks of `--block` round trips (200), so
   that both see the same machine: on a small shared VM the round trip of the very same echo moves between
   runs (other processes, wake-up latencies) by more than the difference being measured.
   `bridge_answer_us` is the bridge's own time per tick as its `status` reports it (`answer_ms`).
3. **Sustained**: `--charts` DEALERs (28 by default, one per symbol) each keep exactly one TICK in flight, as
   EAs do; `ticks_per_s` is the replies received per second over `--seconds`.

4. **Cockpit on**: a third bridge, the same but with every alert on, sent to a dead webhook (a port nobody
   listens on, retried every 0.1 s for the whole run) and the live page on and read every 0.5 s, as a browser
   does, is timed in the same alternation (`cockpit_p50_us`, `cockpit_p99_us`); `cockpit_p50_ratio` and
   `cockpit_p99_ratio` are its figures over the plain bridge's (1.0: it costs the tick path nothing);
   `cockpit_ticks_per_s` is its sustained rate, run after the plain bridge's (`cockpit_ticks_per_s_ratio`).
   Needs mt5bridge[alerts] and mt5bridge[page]; `--no-cockpit` leaves it out.

`--other-checkout DIR` also serves a bridge from another checkout of the project (built in place), timed in
the same alternation, so two versions of the code are compared against the same echo in one run
(`other_p50_us`, `other_p99_us`, `other_p50_over_echo_us`).

Both servers run in their own processes so the client's interpreter does not share a GIL with them. The
last line printed is one JSON object with the figures, the goals (bridge p50 <= echo p50 + 25 us, p99 <=
echo p99 + 100 us, >= 20,000 ticks/s over 28 charts) and whether each was met.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from multiprocessing import Process
from pathlib import Path

import numpy as np
import zmq

# The installed package is measured (pip install .), never a source tree beside this script.
from mt5bridge.bridge import protocol as wire
from mt5bridge.bridge.server import control_request

SERVER_OFFSET_MS = 3 * 3_600_000
START_MS = 1_783_400_000_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def echo_server(endpoint: str) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.bind(endpoint)
    # The same plain receives and sends the bridge uses, so the difference is the bridge's own work.
    while True:
        identity = sock.recv()
        frame = sock.recv()
        if frame == b"STOP":
            break
        sock.send(identity, zmq.SNDMORE)
        sock.send(frame)
    sock.close(0)
    ctx.term()


def _template() -> bytes:
    msg = dict(wire.Tick.example, seq=-1111, time_msc=-2222, bid=-3333.0, ask=-4444.0, positions=[])
    text = json.dumps(msg, separators=(",", ":"))
    for marker, slot in (("-1111", "%d"), ("-2222", "%d"), ("-3333.0", "%.5f"), ("-4444.0", "%.5f")):
        text = text.replace(marker, slot)
    return text.encode()


TICK_TEMPLATE = _template()


def tick_frame(seq: int, t_ms: int, bid: float) -> bytes:
    # Formatted from a template: the client must cost far less than the server it measures.
    return TICK_TEMPLATE % (seq, t_ms + SERVER_OFFSET_MS, bid, bid + 0.0001)


def frames(n: int, seed: int, first_seq: int = 1) -> list[bytes]:
    rng = np.random.default_rng(seed)
    bid = 1.085 + np.cumsum(rng.normal(0, 2e-5, n))
    return [tick_frame(first_seq + i, START_MS + 250 * i, float(bid[i])) for i in range(n)]


def time_round_trips(sock: zmq.Socket, payloads: list[bytes]) -> np.ndarray:
    out = np.empty(len(payloads))
    pc = time.perf_counter_ns
    for i, frame in enumerate(payloads):
        t0 = pc()
        sock.send(frame)
        sock.recv()
        out[i] = (pc() - t0) / 1000.0
    return out


def dealer(ctx: zmq.Context, endpoint: str, identity: bytes) -> zmq.Socket:
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.IDENTITY, identity)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVTIMEO, 5000)
    s.connect(endpoint)
    return s


def hello(sock: zmq.Socket, symbol: str) -> None:
    sock.send(json.dumps(dict(wire.Hello.example, seq=0, symbol=symbol, server_utc_offset_s=10800)).encode())
    reply = json.loads(sock.recv())
    if reply.get("type") != "WELCOME":
        raise RuntimeError(f"the bridge refused HELLO for {symbol}: {reply}")


def start_bridge(tmp: Path, checkout: Path | None = None, extra: str = "") -> tuple[subprocess.Popen, str, str]:
    """A bridge process serving the installed package, or the package of ``checkout`` (built in place); ``extra``
    is added to its configuration."""
    ea, control = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    config = tmp / "bench.toml"
    config.write_text(f'[bridge]\nendpoint = "{ea}"\ncontrol_endpoint = "{control}"\njournal = "journal.sqlite"\n'
                      f'stale_after_ms = 60000\n{extra}', encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(checkout)) if checkout else None
    proc = subprocess.Popen([sys.executable, "-m", "mt5bridge", "serve", "--config", str(config),
                             "--log-level", "ERROR"], cwd=str(checkout or tmp), env=env, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if control_request(control, {"cmd": "status"}, timeout_ms=300) is not None:
            return proc, ea, control
    proc.kill()
    raise RuntimeError(f"the bridge did not start: {proc.stderr.read()}")


def cockpit_config(page_port: int) -> str:
    """Every alert on, to a webhook nobody answers, retried every 0.1 s for longer than the run; the page on."""
    dead = free_port()
    return (f'[alerts]\nurls = ["json://127.0.0.1:{dead}/"]\nretries = 100\nretry_after_s = 0.1\n'
            f'max_retry_after_s = 0.1\n[page]\nenabled = true\nport = {page_port}\nrefresh_ms = 500\n')


def read_page(url: str, stop) -> None:
    """A browser on the page: its status every 0.5 s."""
    import urllib.request

    while not stop.wait(0.5):
        try:
            urllib.request.urlopen(url, timeout=2).read()
        except OSError:
            pass


def sustained(ctx: zmq.Context, endpoint: str, charts: int, seconds: float) -> tuple[float, int]:
    socks = []
    for k in range(charts):
        s = dealer(ctx, endpoint, f"bench-{k:02d}".encode())
        hello(s, f"SYM{k:02d}")
        socks.append(s)
    poller = zmq.Poller()
    seqs = [0] * charts
    bids = [1.085] * charts
    for k, s in enumerate(socks):
        poller.register(s, zmq.POLLIN)
        seqs[k] = 1
        s.send(tick_frame(1, START_MS, bids[k]))
    replies = 0
    t_end = time.perf_counter() + seconds
    t0 = time.perf_counter()
    index = {s: k for k, s in enumerate(socks)}
    while time.perf_counter() < t_end:
        for s, _ in poller.poll(1000):
            s.recv()
            replies += 1
            k = index[s]
            seqs[k] += 1
            bids[k] += 0.00001 if seqs[k] % 2 else -0.00001
            s.send(tick_frame(seqs[k], START_MS + 250 * seqs[k], bids[k]))
    elapsed = time.perf_counter() - t0
    for s in socks:
        s.close(0)
    return replies / elapsed, replies


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", action="store_true", help="print only the JSON line")
    p.add_argument("--ticks", type=int, default=20_000, help="timed round trips for each latency figure")
    p.add_argument("--charts", type=int, default=28, help="charts for the sustained rate (default 28)")
    p.add_argument("--seconds", type=float, default=5.0, help="length of the sustained run")
    p.add_argument("--block", type=int, default=200, help="round trips per alternating block (default 200)")
    p.add_argument("--other-checkout", type=Path, help="also time a bridge served from this checkout (built in place)")
    p.add_argument("--no-cockpit", action="store_true",
                   help="leave out the bridge with alerts (to a dead webhook) and the live page on")
    args = p.parse_args(argv)
    if args.other_checkout and not (args.other_checkout / "mt5bridge" / "__init__.py").is_file():
        p.error(f"--other-checkout {args.other_checkout}: no mt5bridge package there")
    ctx = zmq.Context()
    payloads = frames(args.ticks + 1000, seed=1)

    echo_ep = f"tcp://127.0.0.1:{free_port()}"
    echo = Process(target=echo_server, args=(echo_ep,), daemon=True)
    echo.start()
    other_proc = other = cockpit_proc = cockpit = None
    import threading

    page_stop = threading.Event()
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as other_tmp, \
            tempfile.TemporaryDirectory() as cockpit_tmp:
        proc, ea, control = start_bridge(Path(tmp))
        try:
            if args.other_checkout:
                other_proc, other_ea, _ = start_bridge(Path(other_tmp), args.other_checkout.resolve())
                other = dealer(ctx, other_ea, b"latency-chart")
                hello(other, "EURUSD")
            if not args.no_cockpit:
                page_port = free_port()
                cockpit_proc, cockpit_ea, cockpit_control = start_bridge(Path(cockpit_tmp),
                                                                         extra=cockpit_config(page_port))
                cockpit = dealer(ctx, cockpit_ea, b"latency-chart")
                hello(cockpit, "EURUSD")
                # Alerts to keep the dead channel busy retrying: a halt, its state change and the resume.
                cockpit_token = (Path(cockpit_tmp) / "control.token").read_text().strip()
                for cmd in ("halt", "resume"):
                    control_request(cockpit_control, {"cmd": cmd, "by": "bench"}, token=cockpit_token)
                threading.Thread(target=read_page, args=(f"http://127.0.0.1:{page_port}/status.json", page_stop),
                                 daemon=True).start()
            e = dealer(ctx, echo_ep, b"echo-client")
            b = dealer(ctx, ea, b"latency-chart")
            hello(b, "EURUSD")
            servers = [s for s in (e, b, other, cockpit) if s is not None]
            parts: list[list[np.ndarray]] = [[] for _ in servers]
            for s in servers:
                time_round_trips(s, payloads[:1000])   # connect and warm up
            for start in range(1000, len(payloads), args.block):
                block = payloads[start:start + args.block]
                for s, timed in zip(servers, parts):
                    timed.append(time_round_trips(s, block))
            echo_us, bridge_us = np.concatenate(parts[0]), np.concatenate(parts[1])
            other_us = np.concatenate(parts[2]) if other is not None else None
            cockpit_us = np.concatenate(parts[-1]) if cockpit is not None else None
            cockpit_alerts = None
            if cockpit is not None:
                cockpit_alerts = control_request(cockpit_control, {"cmd": "status"}, token=cockpit_token)["alerts"]
                cockpit.close(0)
            token = (Path(tmp) / "control.token").read_text().strip()   # made by the bridge beside its journal
            answer = control_request(control, {"cmd": "status"}, token=token)
            [chart] = [c for a in answer["accounts"].values() for c in a["charts"] if c["chart"] == "latency-chart"]
            answer_us = chart["answer_ms"] * 1000.0
            e.send(b"STOP")
            e.close(0)
            b.close(0)
            if other is not None:
                other.close(0)
            echo.join(5)
            rate, replies = sustained(ctx, ea, args.charts, args.seconds)
            if cockpit is not None:
                # One after the other, not interleaved: compare the two rates knowing the machine may have changed.
                cockpit_rate, _ = sustained(ctx, cockpit_ea, args.charts, args.seconds)
            page_stop.set()
        finally:
            page_stop.set()
            for running in (proc, other_proc, cockpit_proc):
                if running is not None:
                    running.terminate()
                    running.wait(15)

    r = {
        "echo_p50_us": float(np.percentile(echo_us, 50)), "echo_p99_us": float(np.percentile(echo_us, 99)),
        "bridge_p50_us": float(np.percentile(bridge_us, 50)), "bridge_p99_us": float(np.percentile(bridge_us, 99)),
        "bridge_answer_us": answer_us, "ticks_per_s": rate, "symbols": args.charts, "sustained_replies": replies,
        "timed_round_trips": args.ticks,
        "goals": {"bridge_p50_over_echo_us": 25, "bridge_p99_over_echo_us": 100, "ticks_per_s": 20_000},
    }
    if other_us is not None:
        r["other_checkout"] = str(args.other_checkout)
        r["other_p50_us"] = float(np.percentile(other_us, 50))
        r["other_p99_us"] = float(np.percentile(other_us, 99))
        r["other_p50_over_echo_us"] = r["other_p50_us"] - r["echo_p50_us"]
    if cockpit_us is not None:
        r["cockpit_p50_us"] = float(np.percentile(cockpit_us, 50))
        r["cockpit_p99_us"] = float(np.percentile(cockpit_us, 99))
        r["cockpit_p50_ratio"] = round(r["cockpit_p50_us"] / r["bridge_p50_us"], 3)
        r["cockpit_p99_ratio"] = round(r["cockpit_p99_us"] / r["bridge_p99_us"], 3)
        r["cockpit_ticks_per_s"] = cockpit_rate
        r["cockpit_ticks_per_s_ratio"] = round(cockpit_rate / rate, 3)
        # The dead webhook was tried all along: failures counted, nothing sent.
        r["cockpit_alert_failures"] = cockpit_alerts["failed"]
        r["cockpit_alerts_sent"] = cockpit_alerts["sent"]
    r["bridge_p50_over_echo_us"] = r["bridge_p50_us"] - r["echo_p50_us"]
    r["bridge_p99_over_echo_us"] = r["bridge_p99_us"] - r["echo_p99_us"]
    r["goals_met"] = {
        "bridge_p50_over_echo_us": r["bridge_p50_over_echo_us"] <= 25,
        "bridge_p99_over_echo_us": r["bridge_p99_over_echo_us"] <= 100,
        "ticks_per_s": r["ticks_per_s"] >= 20_000,
    }
    r = {k: (round(v, 3 if k.endswith("_ratio") else 1) if isinstance(v, float) else v) for k, v in r.items()}
    if not args.json:
        for key in ("echo_p50_us", "echo_p99_us", "bridge_p50_us", "bridge_p99_us", "bridge_p50_over_echo_us",
                    "bridge_p99_over_echo_us", "bridge_answer_us", "ticks_per_s", "symbols", "other_p50_us",
                    "other_p99_us", "other_p50_over_echo_us", "cockpit_p50_us", "cockpit_p99_us", "cockpit_p50_ratio",
                    "cockpit_p99_ratio", "cockpit_ticks_per_s", "cockpit_ticks_per_s_ratio", "cockpit_alert_failures",
                    "cockpit_alerts_sent"):
            if key in r:
                print(f"{key:<26} {r[key]:>12,}")
        for key, met in r["goals_met"].items():
            print(f"goal {key:<21} {'met' if met else 'NOT met'}")
    print(json.dumps(r, separators=(",", ":")))
    ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
