"""The bridge over real ZeroMQ sockets on 127.0.0.1 with a real journal file: lock-step replies, re-sends,
bad input that never stops the server, write-ahead commands, the operator's control, and restarts."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import zmq

from conftest import package_process
from desk import always
from mt5bridge.bridge import protocol as wire
from mt5bridge.bridge.access import control_token_path
from mt5bridge.config import Config, load_config
from mt5bridge.bridge.journal import JournalError
from mt5bridge.bridge.server import Bridge, BridgeError
from mt5bridge.bridge.server import control_request as ask_bridge
from mt5bridge.market.synthetic import generate_ticks

SERVER_OFFSET_MS = 3 * 3_600_000


# The control token of each bridge a test started, by its control endpoint: a bridge refuses a request without it.
TOKENS: dict[str, str] = {}


def control_request(endpoint: str, request: dict, timeout_ms: int = 1500) -> dict | None:
    """A control request to the bridge a test started on ``endpoint``, with that bridge's token."""
    return ask_bridge(endpoint, request, timeout_ms, token=TOKENS.get(endpoint))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bridge_config(tmp_path: Path, **sections) -> Config:
    base = {"bridge": {"journal": str(tmp_path / "journal.sqlite"),
                       "endpoint": f"tcp://127.0.0.1:{free_port()}",
                       "control_endpoint": f"tcp://127.0.0.1:{free_port()}",
                       "deadline_ms": 1000, "heartbeat_ms": 200, "stale_after_ms": 600}}
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return Config.model_validate(base)


def signal_config(tmp_path: Path, **extra) -> Config:
    return bridge_config(tmp_path, entry={"min_score": 0, "require_warm": False, "require_h1_ema200_alignment": False,
                                          "sessions": [], "cooldown_minutes": 0,
                                          "allowed_consensus": ["UNANIMOUS", "STRONG", "WEAK", "SPLIT"]},
                         dca={"enabled": False}, scale_in={"enabled": False}, **extra)


class Running:
    """A bridge serving in a thread, stopped and closed at the end of the test."""

    def __init__(self, cfg: Config, model: str | None = None):
        self.cfg = cfg
        self.bridge = Bridge(cfg, model=model)
        TOKENS[cfg.bridge.control_endpoint] = self.bridge.token
        self.thread = threading.Thread(target=self.bridge.serve, daemon=True)
        self.thread.start()
        self.stopped = False

    def stop(self):
        if not self.stopped:
            self.bridge.request_stop()
            self.thread.join(5)
            self.bridge.close()
            self.stopped = True


@pytest.fixture
def running(tmp_path):
    started = []

    def start(cfg=None, model=None):
        r = Running(cfg or bridge_config(tmp_path), model)
        started.append(r)
        return r

    yield start
    for r in started:
        r.stop()


class Chart:
    """The EA's side of one chart, as plain as the EA: a DEALER, a seq, JSON frames."""

    def __init__(self, endpoint: str, identity: bytes = b"1510234567-EURUSD-1", symbol: str = "EURUSD"):
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.IDENTITY, identity)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVTIMEO, 3000)
        self.sock.connect(endpoint)
        self.seq = 0
        self.symbol = symbol

    def send(self, msg) -> None:
        self.sock.send(msg if isinstance(msg, bytes) else json.dumps(msg).encode())

    def ask(self, msg) -> dict:
        self.send(msg)
        return json.loads(self.sock.recv())

    def raw_ask(self, msg) -> bytes:
        self.send(msg)
        return self.sock.recv()

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def hello(self, **changes) -> dict:
        msg = dict(wire.Hello.example, seq=self.next_seq(), symbol=self.symbol, server_utc_offset_s=10800, magic=20261121)
        msg.update(changes)
        return self.ask(msg)

    def tick(self, time_utc_ms: int, bid: float, ask: float | None = None, positions=(), **changes) -> dict:
        msg = dict(wire.Tick.example, seq=self.next_seq(), time_msc=time_utc_ms + SERVER_OFFSET_MS, bid=bid,
                   ask=ask if ask is not None else round(bid + 0.0001, 5), positions=list(positions))
        msg.update(changes)
        return self.ask(msg)

    def warmup(self, ticks) -> None:
        """History bars of M15 and H1 (server time), as the EA sends them after HELLO."""
        from conftest import aggregate_bars

        for tf, seconds in (("M15", 900), ("H1", 3600)):
            t, o, h, low, c, v = aggregate_bars(ticks.times_ms, ticks.bid, ticks.volume, seconds)
            self.send({"type": "WARMUP", "seq": self.next_seq(), "timeframe": tf, "chunk": 0, "chunks": 1,
                       "time_msc": (t + SERVER_OFFSET_MS).tolist(), "open": o.tolist(), "high": h.tolist(),
                       "low": low.tolist(), "close": c.tolist(), "volume": v.tolist()})

    def close(self):
        self.sock.close(linger=0)


# ---- lock-step --------------------------------------------------------------------------------------------

def test_hello_is_welcomed_with_the_configured_timings_and_a_tick_gets_its_command(running, tmp_path):
    r = running()
    chart = Chart(r.cfg.bridge.endpoint)
    welcome = chart.hello()
    assert welcome["type"] == "WELCOME" and welcome["reply_to"] == 1
    assert (welcome["deadline_ms"], welcome["heartbeat_ms"]) == (1000, 200)
    assert welcome["equity_floor"] == pytest.approx(101_250.5 - 5_000)
    reply = chart.tick(1_783_400_000_000, 1.08510)
    assert reply["type"] == "COMMAND" and reply["reply_to"] == 2 and reply["action"] == "HOLD"
    assert reply["reason_code"] == "NOT_WARM"
    wire.parse_reply(json.dumps(reply).encode(), 1 << 20)   # what the bridge sends is valid protocol


def test_a_resent_tick_gets_the_very_same_reply(running):
    r = running()
    chart = Chart(r.cfg.bridge.endpoint)
    chart.hello()
    msg = dict(wire.Tick.example, seq=7, time_msc=1_783_400_000_000, positions=[])
    first = chart.raw_ask(msg)
    again = chart.raw_ask(msg)
    assert first == again


BAD_FRAMES = [
    (b"{bad json", "MALFORMED_JSON"),
    (b"[1, 2]", "NOT_AN_OBJECT"),
    (json.dumps({"type": "PING", "seq": 3}).encode(), "UNKNOWN_TYPE"),
    (json.dumps({k: v for k, v in dict(wire.Tick.example, seq=3).items() if k != "bid"}).encode(), "MISSING_FIELD"),
    (json.dumps(dict(wire.Tick.example, seq=3, colour="red")).encode(), "EXTRA_FIELD"),
    (json.dumps(dict(wire.Tick.example, seq=3, bid=float("nan"))).encode(), "INVALID_VALUE"),   # a NaN literal
    (json.dumps(dict(wire.Tick.example, seq=3, bid=1.2, ask=1.1)).encode(), "INVALID_VALUE"),
    (json.dumps(dict(wire.Tick.example, seq=3, bid=-1.0)).encode(), "INVALID_VALUE"),
    (json.dumps(dict(wire.Tick.example, seq=3, positions=[dict(wire.Position.example, volume=1e9)])).encode(),
     "INVALID_VALUE"),
    (b"{" + b" " * (2 << 20) + b"}", "FRAME_TOO_LARGE"),
]


@pytest.mark.parametrize("frame, code", BAD_FRAMES, ids=[c for _, c in BAD_FRAMES])
def test_bad_input_gets_an_error_naming_it_and_the_next_tick_is_served(running, frame, code):
    r = running()
    chart = Chart(r.cfg.bridge.endpoint)
    chart.hello()
    chart.tick(1_783_400_000_000, 1.08510)
    error = chart.ask(frame)
    assert error["type"] == "ERROR" and error["code"] == code and error["message"]
    good = chart.tick(1_783_400_001_000, 1.08512)
    assert good["type"] == "COMMAND" and good["reply_to"] == chart.seq
    assert r.bridge.node.errors[code] == 1


def test_wrong_protocol_version_tick_before_hello_and_time_backwards(running):
    r = running()
    stranger = Chart(r.cfg.bridge.endpoint, identity=b"nobody")
    refused = stranger.tick(1_783_400_000_000, 1.0851)
    assert refused["code"] == "NOT_INTRODUCED"
    old = Chart(r.cfg.bridge.endpoint, identity=b"old-ea")
    assert old.hello(protocol_version=0)["code"] == "PROTOCOL_VERSION"
    chart = Chart(r.cfg.bridge.endpoint)
    chart.hello()
    chart.tick(1_783_400_005_000, 1.0851)
    back = chart.tick(1_783_400_000_000, 1.0851)
    assert back["code"] == "TIME_BACKWARDS"
    assert chart.tick(1_783_400_006_000, 1.0852)["type"] == "COMMAND"


# ---- commands: journaled before sent, acknowledged once ------------------------------------------------------

def _open_a_position(r, chart, tmp_path):
    ticks = generate_ticks("EURUSD", days=1, seed=3, start="2026-07-06T00:00:00Z")
    chart.hello()
    chart.warmup(ticks)
    t = int(ticks.times_ms[-1]) + 60_000
    return t, chart.tick(t, float(ticks.bid[-1]))


def test_a_command_is_in_the_journal_before_the_ea_has_it_and_its_result_closes_it(running, tmp_path):
    r = running(signal_config(tmp_path), model=always("BUY", tmp_path))
    chart = Chart(r.cfg.bridge.endpoint)
    t, cmd = _open_a_position(r, chart, tmp_path)
    assert cmd["action"] == "OPEN" and cmd["command_id"] > 0
    with sqlite3.connect(r.cfg.bridge.journal) as db:   # a second reader sees it already
        rows = db.execute("select payload from commands where command_id = ?", (cmd["command_id"],)).fetchall()
    assert rows and json.loads(rows[0][0]) == cmd
    # Until its RESULT, the next tick holds: never a second order for the same thing.
    assert chart.tick(t + 1000, 1.1)["reason_code"] == "COMMAND_IN_FLIGHT"
    result = {"type": "RESULT", "seq": chart.next_seq(), "command_id": cmd["command_id"], "outcome": "DONE", "retcode": 10009,
              "ticket": 555, "price": 1.1, "volume": cmd["volume"], "text": "done",
              "time_msc": t + 1500 + SERVER_OFFSET_MS}
    chart.send(result)
    chart.send(dict(result, seq=chart.next_seq()))            # a duplicate RESULT changes nothing
    pos = dict(wire.Position.example, ticket=555, symbol="EURUSD", side="BUY", volume=cmd["volume"],
               open_price=1.1, sl=cmd["sl"], tp=cmd["tp"], magic=20261121, comment=f"mt5b:{cmd['command_id']}")
    reply = chart.tick(t + 2000, 1.1, positions=[pos])
    assert (reply["action"], reply["reason_code"]) == ("HOLD", "POSITION_OPEN")   # holding it, not opening again
    status = control_request(r.cfg.bridge.control_endpoint, {"cmd": "status"})
    [acct] = status["accounts"].values()
    assert acct["in_flight"] == [] and [p["ticket"] for p in acct["positions"]] == [555]
    assert acct["positions"][0]["managed"]


# ---- the book: every position on the account, tick by tick --------------------------------------------------

def _book(r) -> list[dict]:
    status = control_request(r.cfg.bridge.control_endpoint, {"cmd": "status"})
    [acct] = status["accounts"].values()
    return acct["positions"]


def test_the_engine_book_follows_every_change_in_the_terminal_book(running, tmp_path):
    r = running()
    chart = Chart(r.cfg.bridge.endpoint)
    chart.hello()
    t = 1_783_400_000_000
    pos = dict(wire.Position.example, ticket=77, symbol="EURUSD", magic=0, sl=1.08, profit=10.0)
    for k in range(3):   # the same book tick after tick: nothing to change, nothing lost
        chart.tick(t + 1000 * k, 1.0851, positions=[pos])
        [p] = _book(r)
        assert (p["ticket"], p["sl"], p["profit"]) == (77, 1.08, pytest.approx(10.0 - 6.9 - 5.0))
    chart.tick(t + 3000, 1.0852, positions=[dict(pos, profit=25.0)])          # the price moved
    assert _book(r)[0]["profit"] == pytest.approx(25.0 - 6.9 - 5.0)
    chart.tick(t + 4000, 1.0852, positions=[dict(pos, profit=25.0, sl=1.081)])  # the trader moved the stop
    assert _book(r)[0]["sl"] == 1.081
    chart.tick(t + 5000, 1.0852, positions=[])                                 # and closed it
    assert _book(r) == []
    with sqlite3.connect(r.cfg.bridge.journal) as db:
        assert db.execute("SELECT last_sl FROM positions_seen WHERE ticket = 77").fetchone() == (1.081,)
        assert db.execute("SELECT profit FROM closed_trades WHERE ticket = 77").fetchone() == (
            pytest.approx(25.0 - 6.9 - 5.0),)


def test_a_position_without_its_chart_counts_its_stop_once_the_chart_connects(running):
    r = running()
    eurusd = Chart(r.cfg.bridge.endpoint)
    eurusd.hello()
    t = 1_783_400_000_000
    cable = dict(wire.Position.example, ticket=88, symbol="GBPUSD", magic=0, open_price=1.26, sl=1.25, tp=0.0)
    eurusd.tick(t, 1.0851, positions=[cable])
    assert _book(r)[0]["sl"] == 0.0   # its worth per point unknown: counted as unbounded risk
    gbpusd = Chart(r.cfg.bridge.endpoint, identity=b"1510234567-GBPUSD-1", symbol="GBPUSD")
    assert gbpusd.hello()["type"] == "WELCOME"
    eurusd.tick(t + 1000, 1.0851, positions=[cable])   # the very same book as before the HELLO
    assert _book(r)[0]["sl"] == 1.25


# ---- the operator ----------------------------------------------------------------------------------------------

def test_halt_with_flatten_closes_everything_and_stays_halted(running, tmp_path):
    r = running()
    chart = Chart(r.cfg.bridge.endpoint)
    chart.hello()
    manual = dict(wire.Position.example, ticket=9, symbol="EURUSD", magic=0, sl=1.08)
    chart.tick(1_783_400_000_000, 1.0851, positions=[manual])
    answer = control_request(r.cfg.bridge.control_endpoint, {"cmd": "halt", "flatten": True, "by": "test"})
    assert answer["ok"] and answer["halt"]["halted"]
    reply = chart.tick(1_783_400_001_000, 1.0851, positions=[manual])
    assert reply["action"] == "CLOSE_ALL" and reply["command_id"] > 0
    status = control_request(r.cfg.bridge.control_endpoint, {"cmd": "status"})
    [acct] = status["accounts"].values()
    assert acct["account"]["state"] == "HALTED" and acct["account"]["state_reason"] == "OPERATOR_HALT"


def test_a_silent_chart_is_marked_stale(running):
    r = running()
    chart = Chart(r.cfg.bridge.endpoint)
    chart.hello()
    chart.tick(1_783_400_000_000, 1.0851)
    status = control_request(r.cfg.bridge.control_endpoint, {"cmd": "status"})
    [acct] = status["accounts"].values()
    assert not acct["charts"][0]["stale"] and 0 < acct["charts"][0]["answer_ms"] < 1000
    time.sleep(1.4)   # stale_after_ms is 600; housekeeping runs every 0.5 s
    status = control_request(r.cfg.bridge.control_endpoint, {"cmd": "status"})
    [acct] = status["accounts"].values()
    assert acct["charts"][0]["stale"] and acct["charts"][0]["last_tick_age_s"] > 0.6
    chart.tick(1_783_400_001_000, 1.0851)   # heard again: no longer stale, at once
    status = control_request(r.cfg.bridge.control_endpoint, {"cmd": "status"})
    [acct] = status["accounts"].values()
    assert not acct["charts"][0]["stale"]


def test_a_remote_endpoint_needs_curve_keys_or_an_explicit_opt_out(tmp_path):
    cfg = bridge_config(tmp_path, bridge={"endpoint": f"tcp://0.0.0.0:{free_port()}"})
    with pytest.raises(BridgeError, match="not loopback: give bridge.curve_secret_key_file"):
        Bridge(cfg)


# ---- the process: signals and restarts -----------------------------------------------------------------------

def _write_config(tmp_path: Path, cfg_sections: str) -> Path:
    path = tmp_path / "bridge.toml"
    path.write_text(cfg_sections, encoding="utf-8")
    return path


def _serve(config: Path, *args: str) -> subprocess.Popen:
    cmd, env, cwd = package_process(["serve", "--config", str(config), *args], config.parent)
    return subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@contextlib.contextmanager
def _bridge_process(config: Path, control: str, *args: str):
    """A `mt5bridge serve` process (``args`` added to its command line), once it answers on ``control``; killed
    at the end if it still runs."""
    proc = _serve(config, *args)
    try:
        _wait_for(control)
        TOKENS[control] = control_token_path(load_config(config), config).read_text().strip()
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _wait_for(endpoint: str, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = control_request(endpoint, {"cmd": "status"}, timeout_ms=300)
        if answer is not None:
            return answer
    raise AssertionError(f"no bridge answered on {endpoint}")


def _process_config(tmp_path: Path) -> tuple[Path, str, str]:
    ea, control = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    text = (f'[bridge]\nendpoint = "{ea}"\ncontrol_endpoint = "{control}"\njournal = "j.sqlite"\n'
            f'heartbeat_ms = 200\nstale_after_ms = 2000\n')
    return _write_config(tmp_path, text), ea, control


def test_sigterm_stops_cleanly_with_exit_code_0(tmp_path):
    config, ea, control = _process_config(tmp_path)
    with _bridge_process(config, control) as proc:
        chart = Chart(ea)
        chart.hello()
        chart.tick(1_783_400_000_000, 1.0851)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0, proc.stderr.read()
        assert "stopped cleanly" in proc.stderr.read()


def test_after_kill_9_the_restarted_bridge_has_the_same_limits_and_state(tmp_path):
    config, ea, control = _process_config(tmp_path)
    with _bridge_process(config, control) as proc:
        chart = Chart(ea)
        chart.hello()
        chart.tick(1_783_400_000_000, 1.0851)
        chart.tick(1_783_400_001_000, 1.0851, balance=100_600.0, equity=100_550.0)
        control_request(control, {"cmd": "halt", "flatten": False, "by": "test"})
        before = control_request(control, {"cmd": "status"})
        time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    with _bridge_process(config, control) as proc:
        chart = Chart(ea, identity=b"1510234567-EURUSD-2")
        chart.hello()
        after = control_request(control, {"cmd": "status"})
        [a0] = before["accounts"].values()
        [a1] = after["accounts"].values()
        for key in ("initial_balance", "day_start_balance", "daily_floor", "overall_floor", "trading_days"):
            assert a1["account"][key] == a0["account"][key], key
        assert after["halt"]["halted"] and a1["account"]["state_reason"] == "OPERATOR_HALT"
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)


def test_a_command_without_result_is_reconciled_not_resent(running, tmp_path):
    cfg = signal_config(tmp_path, bridge={"command_timeout_ms": 300})
    r = running(cfg, model=always("BUY", tmp_path))
    chart = Chart(r.cfg.bridge.endpoint)
    t, cmd = _open_a_position(r, chart, tmp_path)
    assert cmd["action"] == "OPEN"
    time.sleep(0.5)                                  # no RESULT ever comes, and no position appears
    reply = chart.tick(t + 1000, 1.1)
    assert reply["command_id"] != cmd["command_id"]  # never the same command again
    with sqlite3.connect(r.cfg.bridge.journal) as db:
        outcome = db.execute("select expired_outcome from commands where command_id = ?",
                             (cmd["command_id"],)).fetchone()[0]
    assert outcome == "not_seen"
    status = control_request(r.cfg.bridge.control_endpoint, {"cmd": "status"})
    [acct] = status["accounts"].values()
    assert all(c["command_id"] != cmd["command_id"] for c in acct["in_flight"])


def test_curve_keys_let_a_remote_endpoint_serve_only_clients_that_know_the_key(tmp_path):
    import zmq.auth

    from mt5bridge.cli.entry import main

    assert main(["keygen", "--out", str(tmp_path / "keys")]) == 0
    assert main(["keygen", "--client", "desk", "--out", str(tmp_path / "keys")]) == 0
    client_public, client_secret = zmq.auth.load_certificate(str(tmp_path / "keys" / "desk.key_secret"))
    public, _ = zmq.auth.load_certificate(str(tmp_path / "keys" / "bridge.key"))
    port = free_port()
    cfg = bridge_config(tmp_path, bridge={"endpoint": f"tcp://0.0.0.0:{port}",
                                          "curve_secret_key_file": str(tmp_path / "keys" / "bridge.key_secret")})
    r = Running(cfg)
    try:
        chart = Chart(f"tcp://127.0.0.1:{port}")
        chart.sock.close(0)
        chart.sock = zmq.Context.instance().socket(zmq.DEALER)
        chart.sock.setsockopt(zmq.LINGER, 0)
        chart.sock.setsockopt(zmq.RCVTIMEO, 3000)
        chart.sock.curve_serverkey = public
        chart.sock.curve_publickey = client_public
        chart.sock.curve_secretkey = client_secret
        chart.sock.connect(f"tcp://127.0.0.1:{port}")
        assert chart.hello()["type"] == "WELCOME"
        plain = Chart(f"tcp://127.0.0.1:{port}", identity=b"no-keys")
        plain.sock.setsockopt(zmq.RCVTIMEO, 500)
        plain.send(dict(wire.Hello.example, seq=1))
        with pytest.raises(zmq.Again):
            plain.sock.recv()
    finally:
        r.stop()


def test_status_and_halt_work_from_the_journal_when_the_bridge_is_down(tmp_path, capsys):
    from mt5bridge.cli.entry import main

    config, ea, control = _process_config(tmp_path)
    with _bridge_process(config, control) as proc:
        chart = Chart(ea)
        chart.hello()
        chart.tick(1_783_400_000_000, 1.0851)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    capsys.readouterr()
    assert main(["halt", "--config", str(config)]) == 0
    assert "recorded in the journal" in capsys.readouterr().err
    assert main(["status", "--config", str(config), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["source"].startswith("journal") and shown["halt"]["halted"]
    [snapshot] = shown["accounts"].values()
    assert snapshot["snapshot"]["account"]["day_start_balance"] == 101_250.5


def test_a_journal_failure_sends_nothing_frees_the_risk_and_the_bridge_keeps_serving(running, tmp_path):
    r = running(signal_config(tmp_path), model=always("BUY", tmp_path))

    def full_disk(**_kwargs):
        raise JournalError("journal: cannot journal command: database or disk is full")

    r.bridge.journal.record_command = full_disk
    chart = Chart(r.cfg.bridge.endpoint)
    t, reply = _open_a_position(r, chart, tmp_path)
    # The entry is not sent: a HOLD that says why, and its risk released.
    assert reply["type"] == "COMMAND" and reply["action"] == "HOLD"
    assert reply["reason_code"] == "JOURNAL_UNAVAILABLE"
    status = control_request(r.cfg.bridge.control_endpoint, {"cmd": "status"})
    [acct] = status["accounts"].values()
    assert acct["in_flight"] == [] and "INTERNAL_ERROR" not in status["errors"]
    again = chart.tick(t + 1000, 1.1)   # still failing: still nothing sent, still serving
    assert again["action"] == "HOLD" and again["reason_code"] == "JOURNAL_UNAVAILABLE"


def test_the_eas_failsafe_acts_are_journaled_and_its_round_trip_is_shown(running, tmp_path):
    r = running()
    chart = Chart(r.cfg.bridge.endpoint)
    chart.hello()
    chart.tick(1_783_400_000_000, 1.0851, round_trip_us=0)
    chart.tick(1_783_400_001_000, 1.0852, round_trip_us=2500)
    chart.send({"type": "FAILSAFE", "seq": chart.next_seq(), "kind": "EQUITY_GUARD",
                "time_msc": 1_783_400_002_000 + SERVER_OFFSET_MS, "detail": "equity below floor: closed 2 positions"})
    # A kind the protocol does not know is refused by name, and the chart is served on.
    bad = chart.ask({"type": "FAILSAFE", "seq": chart.next_seq(), "kind": "PANIC", "time_msc": 1, "detail": ""})
    assert bad["type"] == "ERROR" and bad["code"] == "INVALID_VALUE" and "kind" in bad["message"]
    assert chart.tick(1_783_400_003_000, 1.0853, round_trip_us=0)["type"] == "COMMAND"   # 0: none measured
    status = control_request(r.cfg.bridge.control_endpoint, {"cmd": "status"})
    [acct] = status["accounts"].values()
    assert acct["charts"][0]["round_trip_ms"] == pytest.approx(2.5)
    r.bridge.node.journal.flush()
    db = sqlite3.connect(tmp_path / "journal.sqlite")
    rows = db.execute("SELECT kind, detail, time_ms, symbol FROM failsafes").fetchall()
    db.close()
    assert rows == [("EQUITY_GUARD", "equity below floor: closed 2 positions", 1_783_400_002_000, "EURUSD")]


def test_an_ea_reconnecting_to_a_running_bridge_resends_its_history_without_errors(running):
    r = running()
    history = generate_ticks("EURUSD", days=2, start="2026-07-06T00:00:00Z", seed=3)
    chart = Chart(r.cfg.bridge.endpoint)
    chart.hello()
    chart.warmup(history)
    last = int(history.times_ms[-1])
    assert chart.tick(last + 1_000, 1.0851)["type"] == "COMMAND"
    chart.tick(last + 61_000, 1.0852)
    chart.close()
    # The EA reconnects (same chart identity, seq from 0 again) and sends its history once more, now with the
    # bars of the last minutes too.
    again = Chart(r.cfg.bridge.endpoint)
    again.hello()
    later = generate_ticks("EURUSD", days=2, start="2026-07-06T00:00:00Z", seed=3)
    extended = type(later)(times_ms=np.append(later.times_ms, [last + 1_000, last + 61_000]),
                           bid=np.append(later.bid, [1.0851, 1.0852]), ask=np.append(later.ask, [1.0852, 1.0853]),
                           volume=np.append(later.volume, [1.0, 1.0]))
    again.warmup(extended)
    reply = again.tick(last + 121_000, 1.0853)
    assert reply["type"] == "COMMAND", reply   # no ERROR for the re-sent history came first
    status = control_request(r.cfg.bridge.control_endpoint, {"cmd": "status"})
    assert status["errors"] == {}


def test_a_message_of_several_frames_is_dropped_and_the_chart_is_served_on(running):
    r = running()
    chart = Chart(r.cfg.bridge.endpoint)
    chart.sock.send_multipart([json.dumps(dict(wire.Hello.example)).encode(), b"{}"])
    welcome = chart.hello()
    assert welcome["type"] == "WELCOME" and welcome["reply_to"] == 1   # the two-frame HELLO got no reply
    assert chart.tick(1_783_400_000_000, 1.0851)["type"] == "COMMAND"


def test_every_hold_the_ea_got_is_counted_in_the_journal_by_reason_and_utc_day(running, tmp_path):
    from collections import Counter
    from datetime import datetime, timezone

    r = running()
    control = r.cfg.bridge.control_endpoint
    chart = Chart(r.cfg.bridge.endpoint)
    chart.hello()
    midnight = 1_783_468_800_000              # 2026-07-08 00:00 UTC
    got: Counter = Counter()
    times: dict = {}
    t = midnight - 30_000

    def tick():
        nonlocal t
        t += 1_000
        reply = chart.tick(t, 1.0851)
        assert reply["action"] == "HOLD"
        key = (reply["reason_code"], datetime.fromtimestamp(t / 1000, timezone.utc).date().isoformat())
        got[key] += 1
        first, _ = times.get(key, (t, t))
        times[key] = (first, t)

    for i in range(60):                       # across midnight UTC: two days of NOT_WARM
        tick()
        if i == 10:
            time.sleep(0.7)                   # housekeeping writes the counts mid-run
        if i == 20:
            assert control_request(control, {"cmd": "halt", "by": "test"})["ok"]
        if i == 25:
            assert control_request(control, {"cmd": "resume", "by": "test"})["ok"]
        if i == 40:
            chart.hello()                     # the EA reconnects: its chart starts afresh
    r.stop()
    db = sqlite3.connect(tmp_path / "journal.sqlite")
    rows = db.execute("SELECT reason_code, utc_day, count, first_time_ms, last_time_ms FROM refusals").fetchall()
    db.close()
    assert {(code, day): n for code, day, n, _, _ in rows} == dict(got)
    assert {(code, day): (first, last) for code, day, _, first, last in rows} == times
    assert {code for code, _ in got} >= {"NOT_WARM", "OPERATOR_HALT"} and len({day for _, day in got}) == 2
