"""Hostile frames against a real `mt5bridge serve` over real sockets: frames generated from the protocol's
published JSON Schema, then broken (huge integers, deep nesting, wrong types, NaN and Infinity literals,
invalid UTF-8, repeated keys, extra fields, multi-part messages, empty and oversized frames), while a
well-behaved chart trades beside them.

What must hold, frame after frame: the process lives; every frame gets the answer the protocol documents
(HELLO: WELCOME or ERROR; TICK: COMMAND or ERROR; anything else: nothing or ERROR; a frame the protocol refuses:
exactly the ERROR it words); an ERROR's reply_to is the frame's seq whenever the frame has a readable one; no
INTERNAL_ERROR; the well-behaved chart gets its COMMAND for every TICK. And over the run: memory does not grow
with the number of frames, and the log does not grow with the number of refused frames.

A few thousand frames by default; set MT5BRIDGE_FUZZ_FRAMES (say 200000) for a long run.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import os
import random
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pydantic_core import from_json

from conftest import aggregate_bars, package_process
from mt5bridge.bridge import protocol as wire
from mt5bridge.bridge import protocol_gen
from mt5bridge.config import Config
from mt5bridge.bridge.journal import Journal
from mt5bridge.bridge.node import Node
from mt5bridge.bridge.ratelog import RateLog
from mt5bridge.market.synthetic import generate_ticks
from test_bridge import TOKENS, control_request, free_port

FRAMES = int(os.environ.get("MT5BRIDGE_FUZZ_FRAMES", "8000"))
MAX_FRAME_BYTES = 65_536          # the bridge's limit in these runs: an oversized frame is cheap to build
SERVER_OFFSET_MS = 3 * 3_600_000
GOOD_LOGIN = 1510234567           # the well-behaved chart's account; the fuzz speaks for other accounts only
# Two accounts, so their commands interleave in the one journal (each also has a test of its own below).
FUZZ_LOGINS = (7_000_001, 7_000_002)
FUZZ_SYMBOLS = ("EURUSD", "XAUUSD", "GER40.cash")
SYNC_TYPE = "FUZZ_SYNC"           # a type no one accepts: its ERROR marks the end of the answers to a frame
RSS_CEILING_MB = 400              # the bridge serves these charts in under 100 MB
GOOD_TICK_EVERY = 5               # fuzz frames between two ticks of the well-behaved chart


# --- frames from the published schema ------------------------------------------------------------------------

SCHEMA = protocol_gen.schema()
DEFS = SCHEMA["$defs"]


def from_schema(prop: dict[str, Any], max_items: int = 6) -> st.SearchStrategy:
    """Instances of the part of JSON Schema the protocol's schema uses (every message is flat, so no recursion
    beyond a TICK's positions). Lists are kept short: the size limits have tests of their own."""
    if "$ref" in prop:
        return from_schema(DEFS[prop["$ref"].rsplit("/", 1)[-1]], max_items)
    if "const" in prop:
        return st.just(prop["const"])
    if "enum" in prop:
        return st.sampled_from(prop["enum"])
    if "anyOf" in prop or "oneOf" in prop:
        return st.one_of([from_schema(alt, max_items) for alt in prop.get("anyOf", prop.get("oneOf"))])
    kind = prop.get("type")
    if kind == "integer":
        lo = prop.get("minimum", prop.get("exclusiveMinimum", -(2**63) - 1) + 1)
        hi = prop.get("maximum", prop.get("exclusiveMaximum", 2**63) - 1)
        return st.one_of(st.integers(min_value=lo, max_value=hi), st.sampled_from([lo, hi]))
    if kind == "number":
        lo = prop.get("minimum", prop.get("exclusiveMinimum"))
        hi = prop.get("maximum", prop.get("exclusiveMaximum"))
        return st.one_of(
            st.floats(min_value=lo, max_value=hi, exclude_min="exclusiveMinimum" in prop,
                      exclude_max="exclusiveMaximum" in prop, allow_nan=False, allow_infinity=False),
            st.sampled_from([v for v in (lo, hi, 1.08512, 100000.0) if _in_number_range(v, prop)] or [1.0]))
    if kind == "string":
        if "pattern" in prop:
            return st.from_regex(prop["pattern"], fullmatch=True)
        return st.text(min_size=prop.get("minLength", 0), max_size=min(prop.get("maxLength", 40), 40))
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        return st.lists(from_schema(prop["items"], max_items), max_size=min(prop.get("maxItems", max_items), max_items))
    if kind == "object":
        required = set(prop.get("required", ()))
        properties = {name: from_schema(sub, max_items) for name, sub in prop.get("properties", {}).items()}
        return st.fixed_dictionaries({k: v for k, v in properties.items() if k in required},
                                     optional={k: v for k, v in properties.items() if k not in required})
    raise AssertionError(f"a schema construct the fuzzer does not know: {prop}")


def _in_number_range(value: float, prop: dict[str, Any]) -> bool:
    return (("minimum" not in prop or value >= prop["minimum"])
            and ("exclusiveMinimum" not in prop or value > prop["exclusiveMinimum"])
            and ("maximum" not in prop or value <= prop["maximum"])
            and ("exclusiveMaximum" not in prop or value < prop["exclusiveMaximum"]))


# Every EA message, TICK (most of the traffic, and the fast reader's) and HELLO (which admits) more often.
_BY_MODEL = {m.__name__: from_schema(DEFS[m.__name__]) for m in wire.EA_MESSAGES}
EA_SCHEMA_MESSAGES = st.sampled_from(["Tick"] * 6 + ["Hello"] * 2 + list(_BY_MODEL)).flatmap(_BY_MODEL.__getitem__)

HOSTILE_VALUES = [2**53, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30, -(10**30), 1e308, -1e308, 5e-324,
                  math.nan, math.inf, -math.inf, True, False, None, "", "1", "\u202e\x1b[31m\n", [], {}, [None],
                  {"type": "TICK"}, "x" * 500, -1, 0, 1.5]
MUTATIONS = ["as generated", "coherent", "coherent", "coherent", "hostile value", "hostile value", "extra field",
             "field missing", "repeated key", "repeated seq", "huge number token", "deep nesting", "NaN literal",
             "invalid UTF-8", "lone surrogate", "cut short", "trailing bytes", "BOM", "not an object", "empty",
             "random bytes", "oversized", "multi-part", "multi-part empty"]
MESSAGES_PER_EXAMPLE = 8    # frames made from each message hypothesis draws: drawing one costs milliseconds
EXAMPLES_PER_RUN = 250


def hostile_value(rng: random.Random) -> Any:
    if rng.random() < 0.15:
        depth = rng.choice([2, 50, 199, 201, 400])
        return json.loads("[" * depth + "]" * depth)
    return rng.choice(HOSTILE_VALUES)


def mutate(msg: dict[str, Any], rng: random.Random) -> tuple[str, list[bytes]]:
    """(what was done, the parts of one ZeroMQ message): ``msg`` sent as it is, made coherent with the chart's
    sequence and clock (by the sender), or broken one way."""
    msg = copy.deepcopy(msg)
    how = rng.choice(MUTATIONS)
    key = rng.choice(sorted(msg))
    if how == "hostile value":
        msg[key] = hostile_value(rng)
    elif how == "extra field":
        msg[rng.choice(["bid_size", "x" * 300, "a\nb", "type2", "\u0000", "\x1b[2J"])] = hostile_value(rng)
    elif how == "field missing":
        del msg[key]
    elif how == "NaN literal":
        msg[key] = rng.choice([math.nan, math.inf, -math.inf])
    text = json.dumps(msg, allow_nan=True)
    if how == "repeated key":
        text = "{" + json.dumps(key) + ":" + json.dumps(hostile_value(rng), allow_nan=True) + "," + text[1:]
        if rng.random() < 0.5:
            text = text[:-1] + "," + json.dumps(key) + ":" + json.dumps(hostile_value(rng), allow_nan=True) + "}"
    elif how == "repeated seq":
        text = text[:-1] + ',"seq":' + str(rng.choice([0, 7, 2**53 - 1, 2**53, 2**63, -1])) + "}"
    elif how == "huge number token":
        token = rng.choice(["9" * 30, "9" * 4300, "9" * 5000, "-" + "9" * 19, "1e400", "-1e400", "1e-400",
                            "0." + "0" * 500 + "1", "1" + "0" * 308 + ".5", "18446744073709551616"])
        msg[key] = "@@N@@"
        text = json.dumps(msg, allow_nan=True).replace('"@@N@@"', token)
    elif how == "deep nesting":
        depth = rng.choice([150, 201, 500, 990, 5000, 100_000])
        msg[key] = "@@D@@"
        text = json.dumps(msg, allow_nan=True).replace('"@@D@@"', "[" * depth + "]" * depth)
        if rng.random() < 0.3:
            text = "{" * 0 + "[" * depth + "]" * depth
    data = text.encode("utf-8", "surrogatepass")
    if how == "invalid UTF-8":
        cut = rng.randrange(len(data) + 1)
        data = data[:cut] + rng.choice([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\x80"]) + data[cut:]
    elif how == "lone surrogate":
        data = data[:-1] + b',"z":"\\ud800"}'
    elif how == "cut short":
        data = data[: rng.randrange(len(data))]
    elif how == "trailing bytes":
        data += rng.choice([b" x", b"{}", b"\x00", b"\n" + data])
    elif how == "BOM":
        data = b"\xef\xbb\xbf" + data
    elif how == "not an object":
        data = json.dumps(rng.choice([[1, 2], 42, "TICK", None, True, [msg], 1.5])).encode()
    elif how == "empty":
        data = b""
    elif how == "random bytes":
        data = rng.randbytes(rng.randrange(200))
    elif how == "oversized":
        data = data[:-1] + b',"pad":"' + b"x" * MAX_FRAME_BYTES + b'"}'
    if how == "multi-part":
        return how, [data, data]
    if how == "multi-part empty":
        return how, [data, b""]
    return how, [data]


@st.composite
def schema_messages(draw) -> dict[str, Any]:
    """An EA message generated from the published schema, speaking for the fuzz's own accounts and a few
    symbols: what every new account or symbol costs is the capacity limits' business (tested below)."""
    msg = draw(EA_SCHEMA_MESSAGES)
    if msg["type"] == "HELLO":
        msg["login"] = draw(st.sampled_from(FUZZ_LOGINS))
        msg["symbol"] = draw(st.sampled_from(FUZZ_SYMBOLS))
    if msg["type"] == "TICK":
        for position in msg["positions"]:
            position["symbol"] = draw(st.sampled_from(FUZZ_SYMBOLS))
    return msg


# --- what the protocol documents as the answer -----------------------------------------------------------------


def readable_seq(data: bytes) -> int:
    """The frame's seq when it can be read at all: valid JSON as the protocol reads it (strict UTF-8, nested at
    most 200 deep), one object, an integer seq in range. The test's own reading, so that the bridge's is
    compared with it."""
    try:
        from_json(data)
        raw = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):
        return -1
    seq = raw.get("seq") if isinstance(raw, dict) else None
    return seq if type(seq) is int and 0 <= seq <= 2**53 - 1 else -1


def check_answer(how: str, parts: list[bytes], replies: list[dict[str, Any]]) -> None:
    """The replies to one message are the ones the protocol documents for it."""
    context = f"{how}: {parts[0][:300]!r} -> {replies}"
    for reply in replies:
        assert reply.get("code") != "INTERNAL_ERROR", context
    if len(parts) > 1:   # not a message an EA sends: dropped
        assert replies == [], context
        return
    data = parts[0]
    if len(data) > MAX_FRAME_BYTES:
        assert [(r["type"], r["code"], r["reply_to"]) for r in replies] == [("ERROR", "FRAME_TOO_LARGE", -1)], context
        return
    assert len(replies) <= 1, context
    seq = readable_seq(data)
    try:
        msg = wire.parse_request(data, MAX_FRAME_BYTES)
    except wire.ProtocolError as exc:
        # Refused by the protocol: exactly that ERROR, whatever the message.
        assert len(replies) == 1, context
        [reply] = replies
        assert (reply["type"], reply["code"], reply["message"]) == ("ERROR", exc.code, exc.message), context
        assert reply["reply_to"] == seq, context
        return
    if msg.type in wire.ANSWERED_BY:
        assert len(replies) == 1, context
    for reply in replies:
        assert reply["type"] in (wire.ANSWERED_BY.get(msg.type), "ERROR"), context
        assert reply["reply_to"] == msg.seq == seq, context


# --- the bridge process and the charts ----------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


@contextlib.contextmanager
def bridge_process(tmp_path: Path, **bridge):
    """`mt5bridge serve` with its log in a file (a pipe nobody reads would stop it once full); killed at the
    end if it still runs. Yields (process, EA endpoint, control endpoint, log file)."""
    ea, control = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    settings_ = {"endpoint": ea, "control_endpoint": control, "journal": "journal.sqlite", "heartbeat_ms": 200,
                 "stale_after_ms": 60_000, "deadline_ms": 5000, "max_frame_bytes": MAX_FRAME_BYTES, **bridge}
    lines = ["[bridge]"] + [f"{key} = {json.dumps(value)}" for key, value in settings_.items()]
    config = tmp_path / "bridge.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    log_path = tmp_path / "bridge.log"
    cmd, env, cwd = package_process(["serve", "--config", str(config)], tmp_path)
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while control_request(control, {"cmd": "status"}, timeout_ms=300) is None:
            assert proc.poll() is None, log_path.read_text(errors="replace")
            assert time.monotonic() < deadline, "the bridge did not start"
        TOKENS[control] = (tmp_path / "control.token").read_text().strip()   # made beside the journal
        yield proc, ea, control, log_path
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def dealer(endpoint: str, identity: bytes) -> zmq.Socket:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.IDENTITY, identity)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 30_000)   # a loaded machine can stall a journal write for seconds
    sock.connect(endpoint)
    return sock


class FuzzChart:
    """A DEALER that sends hostile messages and collects every reply to each: it follows each message with a
    message of a type no one accepts, whose ERROR (in order, on the same connection) ends the answers."""

    def __init__(self, endpoint: str, identity: bytes):
        self.sock = dealer(endpoint, identity)
        self.sync_seq = 2**52
        # The last request the bridge answered with WELCOME or COMMAND, as far as the replies show.
        self.last_seq = -1

    def exchange(self, parts: list[bytes]) -> list[dict[str, Any]]:
        self.sock.send_multipart(parts)
        self.sync_seq += 1
        self.sock.send(json.dumps({"type": SYNC_TYPE, "seq": self.sync_seq}).encode())
        replies = []
        while True:
            reply = json.loads(self.sock.recv())
            if reply.get("type") == "ERROR" and reply["reply_to"] == self.sync_seq and reply["code"] == "UNKNOWN_TYPE":
                return replies
            replies.append(reply)
            if reply["type"] in ("WELCOME", "COMMAND"):
                self.last_seq = reply["reply_to"]


class GoodChart:
    """An EA as it should be: HELLO, warm-up bars, then ticks in order, each answered by its COMMAND."""

    def __init__(self, endpoint: str):
        self.sock = dealer(endpoint, b"good-EURUSD")
        self.ticks = generate_ticks("EURUSD", days=2, seed=3, start="2026-07-06T00:00:00Z")
        self.seq = 0
        self.next_tick = int(np.searchsorted(self.ticks.times_ms, self.ticks.times_ms[0] + 86_400_000))
        self.answered = 0
        self.actions: dict[tuple[str, str], int] = {}

    def ask(self, msg: dict[str, Any]) -> dict[str, Any]:
        self.sock.send(json.dumps(msg).encode())
        return json.loads(self.sock.recv())

    def start(self) -> None:
        self.seq += 1
        hello = dict(wire.Hello.example, seq=self.seq, login=GOOD_LOGIN, symbol="EURUSD",
                     server_utc_offset_s=SERVER_OFFSET_MS // 1000)
        assert self.ask(hello)["type"] == "WELCOME"
        first_day = slice(0, self.next_tick)
        for tf, seconds in (("M15", 900), ("H1", 3600)):
            t, o, h, low, c, v = aggregate_bars(self.ticks.times_ms[first_day], self.ticks.bid[first_day],
                                                self.ticks.volume[first_day], seconds)
            self.seq += 1
            self.sock.send(json.dumps({"type": "WARMUP", "seq": self.seq, "timeframe": tf, "chunk": 0, "chunks": 1,
                                       "time_msc": (t + SERVER_OFFSET_MS).tolist(), "open": o.tolist(),
                                       "high": h.tolist(), "low": low.tolist(), "close": c.tolist(),
                                       "volume": v.tolist()}).encode())

    def tick(self) -> None:
        i = self.next_tick
        self.next_tick += 1
        self.seq += 1
        msg = dict(wire.Tick.example, seq=self.seq, time_msc=int(self.ticks.times_ms[i]) + SERVER_OFFSET_MS,
                   bid=float(self.ticks.bid[i]), ask=float(self.ticks.ask[i]), positions=[])
        reply = self.ask(msg)
        assert (reply["type"], reply["reply_to"]) == ("COMMAND", self.seq), reply
        self.answered += 1
        what = reply["action"], reply["reason_code"]
        self.actions[what] = self.actions.get(what, 0) + 1


class Run:
    """The fuzz against one bridge: two fuzz charts (one introduced by a valid HELLO now and then, one never
    introduced) and the well-behaved chart, which ticks after every few fuzz frames."""

    def __init__(self, proc: subprocess.Popen, ea: str, control: str):
        self.proc, self.control = proc, control
        self.introduced = FuzzChart(ea, b"fuzz-introduced")
        self.stranger = FuzzChart(ea, b"fuzz-stranger")
        self.good = GoodChart(ea)
        self.good.start()
        self.sent = 0
        self.hows: dict[str, int] = {}
        self.answers: dict[str, int] = {}
        self.clock_ms = 1_783_400_000_000 + SERVER_OFFSET_MS
        self.introduce()

    def introduce(self) -> None:
        hello = dict(wire.Hello.example, seq=0, login=FUZZ_LOGINS[0], symbol="EURUSD")
        [reply] = self.introduced.exchange([json.dumps(hello).encode()])
        assert reply["type"] == "WELCOME", reply

    def coherent(self, msg: dict[str, Any]) -> dict[str, Any]:
        """``msg`` with what the schema cannot say made right: the chart's next seq, a time after the last one,
        the cross-field rules (bid <= ask, volume_min <= volume_max, bars in order with high >= low)."""
        msg = copy.deepcopy(msg)
        msg["seq"] = self.introduced.last_seq + 1
        self.clock_ms = min(self.clock_ms + 1000, wire.MAX_TIME_MSC)
        kind = msg["type"]
        if "time_msc" in msg and kind != "WARMUP":
            msg["time_msc"] = self.clock_ms
        if kind == "TICK":
            msg["bid"], msg["ask"] = sorted((msg["bid"], msg["ask"]))
        elif kind == "HELLO":
            msg["volume_min"], msg["volume_max"] = sorted((msg["volume_min"], msg["volume_max"]))
        elif kind == "WARMUP":
            n = min(len(msg[name]) for name in ("time_msc", "open", "high", "low", "close", "volume"))
            msg["time_msc"] = [self.clock_ms - (n - i) * 60_000 for i in range(n)]
            for name in ("open", "high", "low", "close", "volume"):
                msg[name] = msg[name][:n]
            bars = list(zip(msg["open"], msg["high"], msg["low"], msg["close"]))
            msg["high"] = [max(bar) for bar in bars]
            msg["low"] = [min(bar) for bar in bars]
            msg["chunk"] = min(msg["chunk"], msg["chunks"] - 1)
        return msg

    def send(self, how: str, parts: list[bytes], msg: dict[str, Any], to_stranger: bool) -> None:
        if self.introduced.last_seq > wire.MAX_SAFE_INTEGER // 2:
            self.introduce()   # a generated seq near the top: start the chart's sequence again
        if how == "coherent":
            parts = [json.dumps(self.coherent(msg)).encode()]
        chart = self.stranger if to_stranger else self.introduced
        replies = chart.exchange(parts)
        assert self.proc.poll() is None, f"the bridge died on {how}: {parts[0][:300]!r}"
        check_answer(how, parts, replies)
        for reply in replies:
            if reply["type"] == "COMMAND":   # a TICK was taken: its time is the chart's last
                self.clock_ms = max(self.clock_ms, json.loads(parts[0])["time_msc"])
        answer = ",".join(r["type"] if r["type"] != "ERROR" else r["code"] for r in replies) or "nothing"
        answer = f"{msg['type']} {how}: {answer}"
        self.answers[answer] = self.answers.get(answer, 0) + 1
        self.sent += 1
        self.hows[how] = self.hows.get(how, 0) + 1
        if self.sent % GOOD_TICK_EVERY == 0:
            self.good.tick()

    def fuzz(self, frames: int) -> None:
        """Send about ``frames`` frames, in runs of hypothesis of a few hundred messages each: one long run
        would keep every example it tried in memory (a long fuzz run took half a gigabyte)."""
        @settings(max_examples=EXAMPLES_PER_RUN, database=None, deadline=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(schema_messages(), st.randoms(use_true_random=False), st.booleans())
        def batch(msg, rng, to_stranger):
            # Every draw first, the same whatever the bridge's state: hypothesis must see one example draw
            # the same data each time it is run.
            plans = [(*mutate(msg, rng), to_stranger and rng.random() < 0.5) for _ in range(MESSAGES_PER_EXAMPLE)]
            for how, parts, stranger in plans:
                if self.sent < goal and not failure:
                    try:
                        self.send(how, parts, msg, stranger)
                    except BaseException as exc:   # noqa: BLE001 - re-raised below, outside hypothesis
                        failure.append(exc)
                        raise

        # The first failure is raised as it is: inside hypothesis, a failing example is run again to confirm it,
        # and this bridge's state has moved on, so hypothesis would only report its data as inconsistent.
        failure: list[BaseException] = []
        goal = self.sent + frames
        while self.sent < goal * 0.98 and not failure:
            try:
                batch()
            except BaseException:
                if failure:
                    raise failure[0] from None
                raise

    def status(self) -> dict[str, Any]:
        answer = control_request(self.control, {"cmd": "status"}, timeout_ms=5000)
        assert answer is not None, "the bridge does not answer its control socket"
        return answer


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the bridge's memory from /proc")
def test_hostile_frames_never_stop_the_bridge_nor_grow_its_memory_or_log(tmp_path):
    with bridge_process(tmp_path) as (proc, ea, control, log_path):
        run = Run(proc, ea, control)
        base_rss = rss_mb(proc.pid)
        started = time.monotonic()
        run.fuzz(FRAMES // 2)
        after_n = run.sent, rss_mb(proc.pid), log_path.stat().st_size
        run.fuzz(FRAMES // 2)
        after_2n = run.sent, rss_mb(proc.pid), log_path.stat().st_size
        elapsed = time.monotonic() - started
        status = run.status()
        assert proc.poll() is None
    print(f"\n{run.sent} frames in {elapsed:.1f} s; RSS {after_n[1]:.0f} MB after {after_n[0]}, {after_2n[1]:.0f} MB "
          f"after {after_2n[0]}; log {after_2n[2]} bytes; errors {status['errors']}; mutations {run.hows}; "
          f"answers {run.answers}; good chart {run.good.actions}")
    assert status["errors"].get("INTERNAL_ERROR", 0) == 0
    assert run.sent >= FRAMES * 0.95 and after_n[0] >= run.sent * 0.45
    assert run.good.answered == run.sent // GOOD_TICK_EVERY
    # Memory: below a fixed ceiling, and the second half of the run adds far less than the first (which
    # includes the warming of caches and the journal); a leak of a few kB per frame fails this.
    assert after_2n[1] < RSS_CEILING_MB
    first, second = after_n[1] - base_rss, after_2n[1] - after_n[1]
    assert second <= 0.5 * max(first, 0) + 8, f"memory grows with frames: +{first:.1f} MB then +{second:.1f} MB"
    # Log: a few bytes per refused frame (each fuzz frame is followed by a refused sync frame). Unbounded, it
    # was a line of some 800 bytes for each.
    refused = sum(status["errors"].values())
    assert refused >= run.sent
    assert after_2n[2] / refused < 40, f"{after_2n[2]} bytes of log for {refused} refused frames"
    # Lines about refusals: one per chart and reason (two fuzz charts, 15 codes at most) per interval, and one
    # summary per interval, however many frames.
    intervals = elapsed / 10.0 + 2
    refusal_lines = [line for line in log_path.read_text(errors="replace").splitlines() if ": refused " in line]
    assert len(refusal_lines) <= (2 * len(wire.ERROR_CODES) + 1) * intervals, len(refusal_lines)



# --- faults the fuzz found in the node, each as the attack that shows it ---------------------------------------


def _halting_tick(seq: int, ticket: int) -> bytes:
    # Equity at half the initial balance breaches the overall floor: the engine halts and flattens.
    return json.dumps(dict(wire.Tick.example, seq=seq, equity=50_000.0,
                           positions=[dict(wire.Position.example, ticket=ticket)])).encode()


def test_two_accounts_flattening_at_once_get_distinct_commands(tmp_path):
    with bridge_process(tmp_path) as (proc, ea, control, log_path):
        a, b = FuzzChart(ea, b"7000001-EURUSD"), FuzzChart(ea, b"7000002-EURUSD")
        for chart, login in ((a, 7_000_001), (b, 7_000_002)):
            hello = dict(wire.Hello.example, seq=0, login=login, server_utc_offset_s=SERVER_OFFSET_MS // 1000)
            assert chart.exchange([json.dumps(hello).encode()])[0]["type"] == "WELCOME"
        [first] = a.exchange([_halting_tick(1, 11)])
        [second] = b.exchange([_halting_tick(1, 22)])
        assert proc.poll() is None
    assert (first["type"], first["action"]) == ("COMMAND", "CLOSE_ALL")
    for reply in (second,):
        assert "7000001" not in json.dumps(reply), "an ERROR names another account"
        assert reply.get("reply_to") == 1, "an ERROR does not answer the seq of the frame it refuses"
    assert (second["type"], second["action"]) == ("COMMAND", "CLOSE_ALL")
    assert second["command_id"] != first["command_id"]


def test_a_request_with_the_seq_of_another_kind_is_not_answered_as_a_resend(tmp_path):
    with bridge_process(tmp_path) as (proc, ea, control, log_path):
        chart = FuzzChart(ea, b"7000001-EURUSD")
        hello = dict(wire.Hello.example, seq=5, login=7_000_001, server_utc_offset_s=SERVER_OFFSET_MS // 1000)
        assert chart.exchange([json.dumps(hello).encode()])[0]["type"] == "WELCOME"
        [reply] = chart.exchange([json.dumps(dict(wire.Tick.example, seq=5, positions=[])).encode()])
    assert reply["type"] in ("COMMAND", "ERROR"), f"a TICK answered with {reply['type']}"


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the bridge's memory from /proc")
def test_ever_new_logins_and_symbols_do_not_grow_memory(tmp_path):
    with bridge_process(tmp_path) as (proc, ea, control, log_path):
        chart = FuzzChart(ea, b"newcomer")
        rss = []
        for n in range(240):
            login = 8_000_000 + n
            hello = dict(wire.Hello.example, seq=0, login=login, symbol=f"SYM{n}",
                         server_utc_offset_s=SERVER_OFFSET_MS // 1000)
            chart.exchange([json.dumps(hello).encode()])
            tick = dict(wire.Tick.example, seq=1, positions=[dict(wire.Position.example, ticket=n + 1,
                                                                  symbol=f"OTHER{n}")])
            chart.exchange([json.dumps(tick).encode()])
            if n in (79, 159, 239):
                rss.append(rss_mb(proc.pid))
        assert proc.poll() is None
    assert rss[2] - rss[1] <= 0.5 * (rss[1] - rss[0]) + 8, f"RSS {rss} MB after 80, 160 and 240 newcomers"


# --- the log of refusals ---------------------------------------------------------------------------------------


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def node_with_log(tmp_path, caplog):
    clock = Clock()
    journal = Journal(tmp_path / "journal.sqlite")
    cfg = Config.model_validate({"bridge": {"journal": str(tmp_path / "journal.sqlite"), "log_refusals_every_s": 10}})
    node = Node(cfg, journal, clock=clock)
    caplog.set_level(logging.WARNING, logger="mt5bridge.bridge.node")
    yield node, clock, caplog
    node.close()
    journal.close()


def _refusal_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused")]


def test_a_flood_of_bad_frames_is_logged_once_per_chart_and_reason_per_interval(node_with_log):
    node, clock, caplog = node_with_log
    bad_json, bad_tick = b'{"type":"TICK"', json.dumps(dict(wire.Tick.example, bid=-1.0)).encode()
    for _ in range(5000):
        for identity in (b"chart-a", b"chart-b"):
            node.handle(identity, bad_json)
            node.handle(identity, bad_tick)
        clock.now += 0.001             # 5000 rounds in 5 s: all within one interval
    lines = _refusal_lines(caplog)
    assert len(lines) == 4, lines      # each chart's first MALFORMED_JSON and first INVALID_VALUE
    assert sum(node.errors.values()) == 20_000 and node.errors["MALFORMED_JSON"] == 10_000
    clock.now += 10
    caplog.clear()
    node.handle(b"chart-a", bad_json)
    assert _refusal_lines(caplog) == [
        "refused a frame from chart-a: MALFORMED_JSON: not valid JSON: EOF while parsing an object at line 1 column 14 "
        "(4999 more refused for MALFORMED_JSON since this chart's last line)",
        "refused 14997 more frames since the last lines of their charts and reasons, or from charts past the 1024 "
        "followed one by one"]
    caplog.clear()
    node.handle(b"chart-a", bad_json)
    assert _refusal_lines(caplog) == []


def test_a_sender_changing_its_identity_with_every_frame_cannot_fill_the_log(node_with_log):
    node, clock, caplog = node_with_log
    for n in range(20_000):
        node.handle(b"x%d" % n, b"[]")
        clock.now += 0.0001            # 2 s
    lines = _refusal_lines(caplog)
    assert len(lines) == RateLog(10).max_pairs    # one line for each remembered pair, no more
    clock.now += 10
    caplog.clear()
    node.handle(b"late", b"[]")
    late, summary = _refusal_lines(caplog)
    assert late.startswith("refused a frame from late: NOT_AN_OBJECT")
    assert summary.startswith("refused 18976 more frames since the last lines")
    assert len(node.refusals.pairs) == 1                # the rest forgotten: memory bounded too
    assert node.errors["NOT_AN_OBJECT"] == 20_001


def test_a_refusal_line_cannot_forge_another_line_or_reach_the_terminal(node_with_log):
    node, clock, caplog = node_with_log
    forged = "\n2026-07-06 12:00:00 CRITICAL mt5bridge.bridge.node: account 1 HALTED\x1b[2J\u2028"
    node.handle(("chart" + forged).encode(), json.dumps(dict(wire.Tick.example, **{"x" + forged: 1})).encode())
    [line] = _refusal_lines(caplog)
    assert line.isprintable(), line
    assert "\\n2026-07-06" in line and "\\x1b[2J" in line


def test_a_flood_of_messages_that_change_nothing_does_not_grow_the_log(tmp_path):
    with bridge_process(tmp_path) as (proc, ea, control, log_path):
        chart = FuzzChart(ea, b"7000001-EURUSD")
        hello = dict(wire.Hello.example, seq=0, login=7_000_001, server_utc_offset_s=SERVER_OFFSET_MS // 1000)
        assert chart.exchange([json.dumps(hello).encode()])[0]["type"] == "WELCOME"
        before = log_path.stat().st_size
        for seq in range(1, 1501):
            chart.exchange([b"{}", b"{}"])
            chart.exchange([json.dumps(dict(wire.TradeResult.example, seq=seq, command_id=10**9 + seq)).encode()])
            chart.exchange([json.dumps(dict(wire.Failsafe.example, seq=seq)).encode()])
        assert proc.poll() is None
        grown = log_path.stat().st_size - before
    assert grown < 64 * 1024, f"{grown} bytes of log for 4500 messages"
