"""The simulated MT5 terminal: a scripted bridge (a ROUTER on loopback that validates every frame with the
protocol's own parser) drives it, and the account must follow the commands exactly as MT5 would."""

from __future__ import annotations

import argparse
import threading
from collections import Counter, defaultdict
from datetime import datetime, timezone

import numpy as np
import pytest
import zmq

from mt5bridge.bridge import protocol as wire
from mt5bridge.cli import simulate as simulate_cmd
from mt5bridge.market.readers import Bars, Ticks
from mt5bridge.simulator import (
    RETCODE_DONE,
    RETCODE_INVALID_STOPS,
    RETCODE_INVALID_VOLUME,
    RETCODE_NO_CHANGES,
    RETCODE_NO_MONEY,
    BridgeRefused,
    BridgeUnreachable,
    SimulatedBroker,
    SimulatedTerminal,
    SymbolSpec,
    build_warmup_bars,
    symbol_spec,
    synthetic_seed,
    synthetic_spec,
)
from mt5bridge.market.synthetic import generate_ticks

OFFSET_MS = 7_200_000
WITHHOLD = "withhold"  # a script's answer: send this tick's reply only after the next tick arrives


def utc_ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp() * 1000)


def ticks_from(bids, *, start="2024-01-08T08:00:00", step_ms=1000, spread=0.0001) -> Ticks:
    """Quotes one second apart with a fixed spread: price paths a test can reason about."""
    bid = np.round(np.asarray(bids, dtype=np.float64), 5)
    t = utc_ms(start) + np.arange(bid.size, dtype=np.int64) * step_ms
    return Ticks(times_ms=t, bid=bid, ask=np.round(bid + spread, 5), volume=np.ones(bid.size))


class FakeBridge:
    """A ROUTER that parses every frame with ``protocol.parse_request``, answers HELLO with WELCOME and each TICK
    with what ``script(bridge, chart, tick, n)`` returns: None (HOLD), a dict of COMMAND fields, an
    ErrorReply code, or WITHHOLD."""

    def __init__(self, script=None, *, deadline_ms=2000, heartbeat_ms=60_000, hello_error=None):
        self.script = script or (lambda bridge, chart, tick, n: None)
        self.deadline_ms = deadline_ms
        self.heartbeat_ms = heartbeat_ms
        self.hello_error = hello_error
        self.received: list[tuple[str, object]] = []  # (chart identity, parsed message)
        self.invalid: list[str] = []
        self.symbol_of: dict[str, str] = {}
        self.ticks_seen: Counter = Counter()
        self.withheld: dict[str, bytes] = {}
        self.next_command_id = 1
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.bind("tcp://127.0.0.1:*")
        self.endpoint = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)
        self.socket.close()
        self.context.term()

    def messages(self, kind: str, chart: str | None = None) -> list:
        return [m for who, m in self.received if m.type == kind and (chart is None or who == chart)]

    def wait_for(self, kind: str, count: int = 1, timeout_s: float = 2.0) -> list:
        """Messages of ``kind`` once at least ``count`` have arrived (they are sent without a reply to wait on)."""
        pause = threading.Event()  # never set: a sleep that does not spin
        for _ in range(int(timeout_s / 0.005)):
            if len(self.messages(kind)) >= count:
                break
            pause.wait(0.005)
        return self.messages(kind)

    # the ROUTER loop -----------------------------------------------------------------------------------------

    def _serve(self):
        while not self._stop.is_set():
            if not self.socket.poll(10):
                continue
            identity, frame = self.socket.recv_multipart()
            chart = identity.decode()
            try:
                msg = wire.parse_request(frame, wire.MAX_FRAME_BYTES)
            except wire.ProtocolError as exc:
                self.invalid.append(f"{chart}: {exc}: {frame[:300]!r}")
                continue
            self.received.append((chart, msg))
            try:
                if msg.type == "HELLO":
                    self._hello(identity, chart, msg)
                elif msg.type == "TICK":
                    self._tick(identity, chart, msg)
            except Exception as exc:  # a broken script must fail the test, not hang it
                self.invalid.append(f"{chart}: the script failed: {exc!r}")

    def _send(self, identity: bytes, reply: wire.WireModel) -> None:
        self.socket.send_multipart([identity, wire.encode(reply)])

    def _hello(self, identity, chart, msg):
        self.symbol_of[chart] = msg.symbol
        if self.hello_error:
            self._send(identity, wire.ErrorReply(reply_to=msg.seq, code=self.hello_error, message="refused by test"))
            return
        self._send(identity, wire.Welcome(
            reply_to=msg.seq, protocol_version=wire.PROTOCOL_VERSION, journal_id="0123456789abcdef0123456789abcdef", deadline_ms=self.deadline_ms, heartbeat_ms=self.heartbeat_ms,
            stale_after_ms=self.heartbeat_ms * 5, failsafe_silence_ms=10_000, equity_floor=0.0,
            max_requests_per_minute=1000,
        ))  # fmt: skip

    def _tick(self, identity, chart, msg):
        n = self.ticks_seen[chart]
        self.ticks_seen[chart] += 1
        answer = self.script(self, chart, msg, n)
        if answer == WITHHOLD:
            self.withheld[chart] = self._reply_frame(chart, msg.seq, {"action": "OPEN", "side": "BUY", "volume": 1.0})
            return
        late = self.withheld.pop(chart, None)
        if late is not None:
            self.socket.send_multipart([identity, late])
        self.socket.send_multipart([identity, self._reply_frame(chart, msg.seq, answer)])

    def _reply_frame(self, chart, seq, answer) -> bytes:
        if isinstance(answer, str):
            return wire.encode(wire.ErrorReply(reply_to=seq, code=answer, message="refused by test"))
        if answer is None:
            fields = dict(command_id=0, action="HOLD", side="", volume=0.0, sl=0.0, tp=0.0, ticket=0)
        else:
            fields = {"side": "", "volume": 0.0, "sl": 0.0, "tp": 0.0, "ticket": 0, **answer}
            fields["command_id"] = self.next_command_id
            self.next_command_id += 1
        return wire.encode(wire.Command(reply_to=seq, symbol=self.symbol_of[chart], reason_code="TEST",
                                        reason="scripted by the test", **fields))  # fmt: skip


def scripted(plan: dict):
    """A script from {tick number: answer or function of the TICK}."""

    def script(bridge, chart, tick, n):
        answer = plan.get(n)
        return answer(tick) if callable(answer) else answer

    return script


def terminal(bridge: FakeBridge, symbols=("EURUSD",), **kwargs) -> SimulatedTerminal:
    kwargs.setdefault("warmup_days", 0.0)
    kwargs.setdefault("hello_timeout_ms", 2000)
    return SimulatedTerminal(bridge.endpoint, list(symbols), **kwargs)


def first_ticket(tick) -> int:
    return tick.positions[0].ticket


# --- commands, results and deals ----------------------------------------------------------------------------


def test_account_follows_open_modify_partial_close_and_close_all():
    bids = 1.10000 + np.arange(20) * 0.00001
    plan = {
        2: {"action": "OPEN", "side": "BUY", "volume": 0.10, "sl": 1.09800, "tp": 1.10500},
        4: lambda t: {"action": "MODIFY", "ticket": first_ticket(t), "sl": 1.09900, "tp": 1.10500},
        5: {"action": "OPEN", "side": "BUY", "volume": 0.015},  # not a step multiple
        6: lambda t: {"action": "CLOSE", "ticket": first_ticket(t), "volume": 0.04},
        7: lambda t: {"action": "MODIFY", "ticket": first_ticket(t), "sl": 1.10100, "tp": 1.10500},  # above bid
        8: {"action": "OPEN", "side": "SELL", "volume": 0.05},
        10: {"action": "CLOSE_ALL"},
    }
    with FakeBridge(scripted(plan)) as bridge:
        sim = terminal(bridge, data={"EURUSD": ticks_from(bids)})
        broker = sim.broker
        sim.start()
        outcomes = [sim.step() for _ in range(3)]
        opened = outcomes[2].execution
        assert opened.retcode == RETCODE_DONE and opened.price == 1.10012  # the ask of the third tick
        (pos,) = broker.positions.values()
        assert (pos.side, pos.volume, pos.sl, pos.tp, pos.magic, pos.comment) == (
            "BUY", 0.10, 1.098, 1.105, sim.magic, f"mt5b:{outcomes[2].command.command_id}")
        assert broker.balance == pytest.approx(100_000 - 0.25)  # 2.5 per lot per side on FX

        for _ in range(2):
            out = sim.step()
        assert out.execution.retcode == RETCODE_DONE and pos.sl == 1.099
        assert sim.step().execution.retcode == RETCODE_INVALID_VOLUME
        out = sim.step()
        assert out.execution.retcode == RETCODE_DONE and out.execution.volume == 0.04
        assert pos.volume == pytest.approx(0.06)
        partial_profit = round((1.10006 - 1.10012) * 0.04 * 100_000, 2)  # sold at the bid of tick 7
        assert out.execution.deals[0].profit == pytest.approx(partial_profit)
        assert sim.step().execution.retcode == RETCODE_INVALID_STOPS and pos.sl == 1.099
        out = sim.step()
        assert out.execution.retcode == RETCODE_DONE and len(broker.positions) == 2  # hedged: BUY and SELL
        sim.step()
        out = sim.step()
        assert out.command.action == "CLOSE_ALL" and out.execution.volume == pytest.approx(0.11)
        assert broker.positions == {}
        # Every deal's money went through the balance, and nothing is floating.
        assert broker.balance == pytest.approx(100_000 + sum(d.profit + d.commission for d in broker.history))
        assert broker.equity == broker.balance
        sim.close()
        bridge.wait_for("BYE")

    assert bridge.invalid == []
    commands = [m for _, m in bridge.received if m.type == "TICK"]
    assert len(commands) == 11
    results = bridge.messages("RESULT")
    assert [(r.command_id, r.retcode) for r in results] == [
        (1, 10009), (2, 10009), (3, 10014), (4, 10009), (5, 10016), (6, 10009), (7, 10009)]
    deals = bridge.messages("DEAL")
    assert [(d.entry, d.side, d.reason, d.volume) for d in deals] == [
        ("IN", "BUY", "EXPERT", 0.10), ("OUT", "SELL", "EXPERT", 0.04), ("IN", "SELL", "EXPERT", 0.05),
        ("OUT", "SELL", "EXPERT", 0.06), ("OUT", "BUY", "EXPERT", 0.05)]
    assert deals[0].comment == "mt5b:1" and deals[-1].comment == "mt5b:7"
    # A RESULT comes right after the TICK it answers, and its deals right after it.
    kinds = [m.type for _, m in bridge.received]
    first_result = kinds.index("RESULT")
    assert kinds[first_result - 1] == "TICK" and kinds[first_result + 1] == "DEAL"
    # The TICK after the open carries the position and the account's state.
    tick = bridge.messages("TICK")[3]
    assert len(tick.positions) == 1 and tick.positions[0].commission == -0.25
    assert tick.equity == pytest.approx(tick.balance + tick.positions[0].profit)
    assert tick.margin == pytest.approx(0.10 * 100_000 * 1.10012 / 100, abs=0.01)
    seqs = [m.seq for _, m in bridge.received]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_stop_loss_hit_reports_a_deal_before_the_tick_and_gaps_fill_at_the_quote():
    # Up, a buy with its stop 5 points under the bid, then down through the stop; a second buy, then a gap.
    bids = [1.10000, 1.10010, 1.10008, 1.10004, 1.10002, 1.10020, 1.10020, 1.09900]
    plan = {
        1: {"action": "OPEN", "side": "BUY", "volume": 0.10, "sl": 1.10005},
        5: {"action": "OPEN", "side": "BUY", "volume": 0.20, "sl": 1.10010},
    }
    with FakeBridge(scripted(plan)) as bridge:
        sim = terminal(bridge, data={"EURUSD": ticks_from(bids)})
        report = sim.run()
        assert report.deals_by_reason == {"EXPERT": 2, "SL": 2}
        stops = [d for d in sim.broker.history if d.reason == "SL"]
        assert stops[0].price == 1.10005  # passed by less than the spread: filled at the stop
        assert stops[1].price == 1.09900  # gapped far past it: filled at the quote
        assert stops[0].comment == "[sl 1.10005]" and stops[0].entry == "OUT" and stops[0].side == "SELL"
        assert stops[0].profit == pytest.approx((1.10005 - 1.10020) * 0.1 * 100_000)
        assert sim.broker.positions == {}
    assert bridge.invalid == []
    kinds = [(m.type, getattr(m, "reason", "")) for _, m in bridge.received]
    hit = kinds.index(("DEAL", "SL"))
    assert kinds[hit + 1][0] == "TICK"
    tick_after = bridge.messages("TICK")[4]
    assert tick_after.positions == []  # the stopped position is gone from the TICK that follows its DEAL


def test_manual_positions_are_reported_with_reason_client_and_shown_in_ticks():
    with FakeBridge() as bridge:
        sim = terminal(bridge, data={"EURUSD": ticks_from(1.1 + np.arange(6) * 0.00001)})
        sim.start()
        sim.step()
        opened = sim.manual_open("EURUSD", "SELL", 0.30, sl=1.10500)
        assert opened.retcode == RETCODE_DONE and opened.price == 1.10000
        sim.step()
        closed = sim.manual_close(opened.ticket)
        assert closed.retcode == RETCODE_DONE and closed.price == 1.10011  # a sell closes at the ask
        sim.step()
        sim.close()
        bridge.wait_for("BYE")
    deals = bridge.messages("DEAL")
    assert [(d.entry, d.reason, d.magic, d.position_id) for d in deals] == [
        ("IN", "CLIENT", 0, opened.ticket), ("OUT", "CLIENT", 0, opened.ticket)]
    ticks = bridge.messages("TICK")
    assert [len(t.positions) for t in ticks] == [0, 1, 0]
    assert ticks[1].positions[0].magic == 0 and ticks[1].positions[0].side == "SELL"


# --- lock-step: deadline, late replies, errors --------------------------------------------------------------


def test_a_reply_past_the_deadline_is_a_hold_and_its_late_arrival_is_dropped():
    with FakeBridge(scripted({3: WITHHOLD}), deadline_ms=500) as bridge:
        sim = terminal(bridge, data={"EURUSD": ticks_from(1.1 + np.arange(6) * 0.00001)})
        sim.start()
        outcomes = [sim.step() for _ in range(6)]
        sim.close()
    assert outcomes[3].timed_out and outcomes[3].command is None
    assert not outcomes[4].timed_out and outcomes[4].command.action == "HOLD"
    report = sim.report()
    assert (report.holds_by_timeout, report.late_replies, report.replies) == (1, 1, 5)
    # The late reply was an OPEN: it must never trade.
    assert sim.broker.positions == {} and sim.broker.history == [] and bridge.messages("RESULT") == []


def test_an_error_answering_a_tick_is_a_hold_and_counted():
    plan = {1: "INVALID_VALUE", 2: {"action": "OPEN", "side": "BUY", "volume": 0.01}}
    with FakeBridge(scripted(plan)) as bridge:
        sim = terminal(bridge, data={"EURUSD": ticks_from(1.1 + np.arange(4) * 0.00001)})
        report = sim.run()
    assert report.holds_by_error == 1 and report.errors_by_code == {"INVALID_VALUE": 1}
    assert report.commands_by_action == {"HOLD": 2, "OPEN": 1}
    assert report.results_by_retcode == {RETCODE_DONE: 1}
    assert "INVALID_VALUE" in report.format() and "ticks" in report.format()


def test_a_command_received_twice_trades_once():
    # A bridge that answers a re-send with the same COMMAND: the EA executes a command_id at most once.
    def script(bridge, chart, tick, n):
        if n in (1, 2):
            bridge.next_command_id = 42
            return {"action": "OPEN", "side": "BUY", "volume": 0.01}
        return None

    with FakeBridge(script) as bridge:
        sim = terminal(bridge, data={"EURUSD": ticks_from(1.1 + np.arange(4) * 0.00001)})
        report = sim.run()
    assert len(sim.broker.positions) == 1 and report.duplicate_commands == 1
    assert [r.command_id for r in bridge.messages("RESULT")] == [42]


# --- session: HELLO, WARMUP, several charts, heartbeats, BYE ------------------------------------------------


def test_hello_carries_the_symbol_spec_and_warmup_covers_every_timeframe_in_server_time():
    start = "2024-01-12T00:00:00Z"  # Friday: four trading days of warm-up, more M1 bars than one chunk holds
    with FakeBridge() as bridge:
        sim = terminal(bridge, days=0.01, warmup_days=4.0, start=start)
        report = sim.run(max_ticks=2)
    assert bridge.invalid == []
    (hello,) = bridge.messages("HELLO")
    assert (hello.symbol, hello.digits, hello.point, hello.tick_value, hello.contract_size) == (
        "EURUSD", 5, 1e-5, 1.0, 100_000.0)
    assert hello.server_utc_offset_s == 7200 and hello.margin_mode == "HEDGING" and hello.seq == 0
    kinds = [m.type for _, m in bridge.received]
    assert kinds.index("TICK") > max(i for i, k in enumerate(kinds) if k == "WARMUP")

    start_server = utc_ms("2024-01-12T00:00:00") + OFFSET_MS
    history = generate_ticks("EURUSD", days=4.01, seed=synthetic_seed("EURUSD", 0), start="2024-01-08T00:00:00Z")
    history = Ticks(*(a[history.times_ms < start_server - OFFSET_MS] for a in
                      (history.times_ms, history.bid, history.ask, history.volume)))  # fmt: skip
    for tf, period_ms in (("M1", 60_000), ("M5", 300_000), ("M15", 900_000), ("H1", 3_600_000)):
        chunks = [m for m in bridge.messages("WARMUP") if m.timeframe == tf]
        assert [c.chunk for c in chunks] == list(range(chunks[0].chunks)) and len(chunks) == chunks[0].chunks
        assert all(len(c.time_msc) <= wire.MAX_WARMUP_BARS for c in chunks)
        times = np.concatenate([c.time_msc for c in chunks])
        assert np.all(np.diff(times) > 0) and np.all(times % period_ms == 0)
        assert times[-1] + period_ms <= start_server  # closed bars only
        # Independently: bars of the UTC ticks, moved to server time.
        key = (history.times_ms + OFFSET_MS) // period_ms
        starts = np.r_[0, np.flatnonzero(np.diff(key)) + 1]
        np.testing.assert_array_equal(times, key[starts] * period_ms)
        np.testing.assert_allclose(np.concatenate([c.high for c in chunks]),
                                   np.maximum.reduceat(history.bid, starts), atol=1e-9)  # fmt: skip
        np.testing.assert_array_equal(np.concatenate([c.volume for c in chunks]), np.diff(np.r_[starts, key.size]))
    m1 = [m for m in bridge.messages("WARMUP") if m.timeframe == "M1"]
    assert len(m1) == 2 and len(m1[0].time_msc) == 5000  # Mon-Thu: 5,760 one-minute bars
    assert report.warmup_chunks == len(bridge.messages("WARMUP"))
    first_tick = bridge.messages("TICK")[0]
    assert first_tick.time_msc >= start_server


def test_a_bar_file_warms_up_only_the_timeframes_its_bars_can_build():
    n = 400
    close = 1.1 + np.cumsum(np.where(np.arange(n) % 3 == 0, -2e-5, 3e-5))
    bars = Bars(times_ms=utc_ms("2024-01-08T00:00:00") + np.arange(n, dtype=np.int64) * 300_000,
                open=np.round(close - 1e-5, 5), high=np.round(close + 4e-5, 5), low=np.round(close - 5e-5, 5),
                close=np.round(close, 5), volume=np.full(n, 40.0), spread_points=np.full(n, 8.0), timeframe_s=300,
                point=1e-5)  # fmt: skip
    with FakeBridge() as bridge:
        sim = terminal(bridge, data={"EURUSD": bars}, warmup_days=1.0, days=None)
        report = sim.run()
    assert bridge.invalid == []
    assert {m.timeframe for m in bridge.messages("WARMUP")} == {"M5", "M15", "H1"}
    m5 = [m for m in bridge.messages("WARMUP") if m.timeframe == "M5"]
    assert sum(len(m.time_msc) for m in m5) == 288  # the first day's bars, as the file has them
    np.testing.assert_allclose(np.concatenate([m.high for m in m5]), bars.high[:288])
    assert report.ticks_sent == (n - 288) * 4  # the rest, four ticks a bar
    hello = bridge.messages("HELLO")[0]
    assert (hello.digits, hello.point, hello.tick_value) == (5, 1e-5, 1.0)


def test_charts_of_one_account_tick_in_time_order_and_see_every_position():
    plan = {0: {"action": "OPEN", "side": "BUY", "volume": 0.02, "sl": 1.08}}

    def script(bridge, chart, tick, n):
        return plan.get(n) if bridge.symbol_of[chart] == "EURUSD" else None

    with FakeBridge(script) as bridge:
        sim = terminal(bridge, ("EURUSD", "XAUUSD"), days=0.05, seed=3)
        report = sim.run(max_ticks=60)
        assert len(bridge.wait_for("BYE", 2)) == 2
    assert bridge.invalid == [] and report.ticks_sent == 60
    identities = {who for who, m in bridge.received if m.type == "HELLO"}
    assert len(identities) == 2 and all(who.startswith("1234567-") for who in identities)
    by_chart = defaultdict(list)
    for who, m in bridge.received:
        if m.type == "TICK":
            by_chart[bridge.symbol_of[who]].append(m)
    assert set(by_chart) == {"EURUSD", "XAUUSD"}
    merged = [m.time_msc for _, m in bridge.received if m.type == "TICK"]
    assert merged == sorted(merged)
    gold = [t for t in by_chart["XAUUSD"] if t.time_msc > by_chart["EURUSD"][0].time_msc]
    assert gold and all(t.positions and t.positions[0].symbol == "EURUSD" for t in gold)
    hellos = {m.symbol: m for m in bridge.messages("HELLO")}
    assert (hellos["XAUUSD"].contract_size, hellos["XAUUSD"].tick_value, hellos["XAUUSD"].digits) == (100.0, 1.0, 2)


def test_paced_replay_sends_heartbeats_while_waiting():
    with FakeBridge(heartbeat_ms=20) as bridge:
        sim = terminal(bridge, data={"EURUSD": ticks_from([1.1, 1.1001, 1.1002], step_ms=500)}, speed=5.0)
        report = sim.run()
    assert report.wall_seconds >= 0.18  # two gaps of 0.5 s at five times real time
    assert report.heartbeats >= 2 and bridge.invalid == []
    beats = bridge.messages("HEARTBEAT")
    assert beats and all(b.time_msc >= utc_ms("2024-01-08T08:00:00") + OFFSET_MS for b in beats)


def test_an_error_answering_hello_raises_with_its_message():
    with FakeBridge(hello_error="PROTOCOL_VERSION") as bridge:
        sim = terminal(bridge, data={"EURUSD": ticks_from([1.1, 1.1001])})
        with pytest.raises(BridgeRefused, match="PROTOCOL_VERSION: refused by test"):
            sim.start()


def free_endpoint() -> str:
    context = zmq.Context()
    sock = context.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind("tcp://127.0.0.1:*")
    endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
    sock.close()
    context.term()
    return endpoint


def test_an_unreachable_bridge_is_reported_with_its_endpoint():
    endpoint = free_endpoint()
    sim = SimulatedTerminal(endpoint, ["EURUSD"], data={"EURUSD": ticks_from([1.1, 1.1001])}, warmup_days=0,
                            hello_timeout_ms=150)  # fmt: skip
    with pytest.raises(BridgeUnreachable, match="mt5bridge serve") as caught:
        sim.run()
    assert endpoint in str(caught.value)


# --- the command line ---------------------------------------------------------------------------------------


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mt5bridge")
    simulate_cmd.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_simulate_command_runs_and_prints_the_report(capsys, tmp_path):
    csv = tmp_path / "eurusd.csv"
    rows = ["time,bid,ask"] + [f"2024-01-08 08:00:{s:02d},{1.1 + s * 1e-5:.5f},{1.1001 + s * 1e-5:.5f}"
                               for s in range(10)]  # fmt: skip
    csv.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with FakeBridge(scripted({2: {"action": "OPEN", "side": "BUY", "volume": 0.01}})) as bridge:
        args = parse(["simulate", "--endpoint", bridge.endpoint, "--data", str(csv), "--warmup-days", "0"])
        assert args.func is simulate_cmd.run
        assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "10 ticks" in out and "OPEN 1" in out and "10009 DONE 1" in out and "1 open position" in out


def test_simulate_command_says_which_endpoint_is_unreachable(capsys):
    endpoint = free_endpoint()
    args = parse(["simulate", "--endpoint", endpoint, "--synthetic", "--days", "0.01", "--warmup-days", "0",
                  "--connect-timeout", "0.15"])  # fmt: skip
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert endpoint in err and "`mt5bridge serve`" in err


def test_simulate_command_refuses_bad_arguments(capsys):
    assert simulate_cmd.run(parse(["simulate", "--speed", "0"])) == 2
    assert "--speed" in capsys.readouterr().err
    assert simulate_cmd.run(parse(["simulate", "--synthetic", "--symbols", "NOPE", "--days", "0.01"])) == 2
    assert "no synthetic market for 'NOPE'" in capsys.readouterr().err


# --- the broker on its own ----------------------------------------------------------------------------------


def eurusd_broker(stops_level=0, balance=100_000.0) -> SimulatedBroker:
    broker = SimulatedBroker(balance=balance)
    broker.add_symbol(SymbolSpec("EURUSD", 5, 1e-5, 1e-5, 1.0, 100_000.0, stops_level=stops_level,
                                 commission_per_lot=0.0))  # fmt: skip
    broker.quote("EURUSD", 1_000, 1.10000, 1.10010)
    return broker


def test_stops_are_refused_on_the_wrong_side_or_inside_the_stops_level():
    broker = eurusd_broker(stops_level=20)
    assert broker.open("EURUSD", "BUY", 0.1, sl=1.10005).retcode == RETCODE_INVALID_STOPS  # above the bid
    assert broker.open("EURUSD", "BUY", 0.1, sl=1.09990).retcode == RETCODE_INVALID_STOPS  # 10 points < 20
    assert broker.open("EURUSD", "SELL", 0.1, tp=1.10000).retcode == RETCODE_INVALID_STOPS  # 10 under the ask
    assert broker.open("EURUSD", "SELL", 0.1, sl=1.10030, tp=1.09990).retcode == RETCODE_DONE
    ticket = broker.open("EURUSD", "BUY", 0.1, sl=1.09980, tp=1.10100).ticket
    assert broker.modify(ticket, 1.09980, 1.10100).retcode == RETCODE_NO_CHANGES
    assert broker.modify(ticket, 1.09970, 1.10110).retcode == RETCODE_DONE
    assert broker.modify(ticket, 0.0, 0.0).retcode == RETCODE_DONE  # removing both is always allowed


def test_volumes_margin_and_take_profit():
    broker = eurusd_broker(balance=1_000.0)
    assert broker.open("EURUSD", "BUY", 0.005).retcode == RETCODE_INVALID_VOLUME
    assert broker.open("EURUSD", "BUY", 100.01).retcode == RETCODE_INVALID_VOLUME
    assert broker.open("EURUSD", "BUY", 1.0).retcode == RETCODE_NO_MONEY  # 1,100 margin on 1,000 equity
    done = broker.open("EURUSD", "BUY", 0.5, tp=1.10050)
    assert done.retcode == RETCODE_DONE and broker.margin == pytest.approx(550.05, abs=0.01)
    assert broker.close(done.ticket, 0.495).volume == 0.49  # rounded down to the step
    assert broker.close(done.ticket, 0.005).retcode == RETCODE_INVALID_VOLUME
    (deal,) = broker.quote("EURUSD", 2_000, 1.10052, 1.10060)
    assert (deal.reason, deal.price, deal.volume) == ("TP", 1.10050, 0.01)
    assert broker.positions == {}


def test_specs_follow_the_kind_of_symbol():
    assert synthetic_spec("USDJPY").tick_value == pytest.approx(0.001 * 100_000 / 148.5, rel=1e-6)
    assert (synthetic_spec("US30").contract_size, synthetic_spec("US30").tick_value) == (1.0, 0.01)
    assert synthetic_spec("XAUUSD").money_per_price == pytest.approx(100.0)
    assert symbol_spec("GBPUSD", 1.27, 5).tick_value == pytest.approx(1.0)
    ticks = ticks_from(1.1 + np.arange(100) * 1e-5)
    assert build_warmup_bars(ticks, "M1", before_server_ms=utc_ms("2024-01-08T08:02:00") + OFFSET_MS,
                             server_offset_ms=OFFSET_MS, digits=5).time_msc.tolist() == [
        utc_ms("2024-01-08T08:00:00") + OFFSET_MS, utc_ms("2024-01-08T08:01:00") + OFFSET_MS]  # fmt: skip
