"""The book is the broker's truth, over random event sequences.

A real node and a real journal file are driven frame by frame, as the EA would drive them, against a simulated
trade server (mt5bridge.simulator.SimulatedBroker) that fills the engine's commands, fills stops and targets when
the price reaches or jumps over them, and takes the trader's own orders (magic 0). Between the node and the
broker sits an EA that loses things: a RESULT that never comes, one that comes late or says UNKNOWN, a DEAL
ahead of its RESULT, a reply that never reached the terminal, a bridge restarted (cleanly, or killed). After
every step the promises the trader relies on are checked against the broker:

- the engine's book (and the journal's open positions) is the broker's positions after a tick;
- no command stays in flight past its settlement: its definite RESULT or its deals, else its timeout;
- the closed trades sum to the balance change of the positions the broker closed, each one to its deals;
- no OPEN or ADD is sent whose worst case (every position and order in flight stopped out with the slippage
  allowance, over the weekend close the gap allowance) crosses the binding floor less the safety buffer.

CI runs a few dozen sequences; ``MT5BRIDGE_PROPERTY_EXAMPLES=2000`` runs a long search. Sequences are derived
from the test's name (derandomized), so a failure in CI is the same failure on a laptop; hypothesis prints the
shrunk sequence of steps that breaks the promise.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule, \
    run_state_machine_as_test

from desk import always
from mt5bridge.bridge import protocol as wire
from mt5bridge.config import Config
from mt5bridge.bridge.journal import Journal
from mt5bridge.bridge.node import Node
from mt5bridge.simulator import (RETCODE_CONNECTION, DealRecord, Execution, SimulatedBroker, build_warmup_bars,
                                 result_outcome, synthetic_spec)
from mt5bridge.market.synthetic import generate_ticks

EXAMPLES = int(os.environ.get("MT5BRIDGE_PROPERTY_EXAMPLES", "30"))
STEPS = int(os.environ.get("MT5BRIDGE_PROPERTY_STEPS", "40"))

LOGIN = 1510234567
ACCOUNT = str(LOGIN)
IDENTITY = b"1510234567-EURUSD-1"
MAGIC = 20261121
OFFSET_MS = 3 * 3_600_000          # the server runs at UTC+3
INITIAL = 100_000.0
TIMEOUT_MS = 10_000                 # bridge.command_timeout_ms
SPEC = synthetic_spec("EURUSD")     # 5 digits, a point worth 1 USD a lot, 2.50 commission a lot and side
POINT = SPEC.point
SPREAD = 10 * POINT
CENT = 0.01
# Two places in the week: a Wednesday, and a Friday within the gap horizon of the weekend close, where every
# position carries the gap allowance and the floor is the one the market reopens on.
STARTS = {"wednesday": "2026-07-08T10:00:00+00:00", "friday": "2026-07-10T10:00:00+00:00"}

# What becomes of a COMMAND on its way through the EA and the trade server, and of its RESULT on the way back.
DELIVERIES = (
    "result_then_deals",   # the ordinary way
    "deals_then_result",   # OnTradeTransaction ran before the EA's own result handling
    "deals_only",          # the RESULT was lost
    "unknown_then_deals",  # the server timed out: RESULT UNKNOWN, yet it was filled
    "result_late",         # the RESULT comes after the next TICK (a slow send, a reconnect)
    "unknown_not_filled",  # RESULT UNKNOWN, and the server never filled it
    "reply_lost",          # the COMMAND never reached the terminal: nothing happens at all
)


def config(journal: Path) -> Config:
    """Entry filters open (an always-BUY or always-SELL model then trades), adds enabled with thresholds a few
    points away so DCA and scale-in adds happen within a sequence, the default FTMO limits, buffer and
    allowances. The desk's own daily stop and the REDUCING share are moved close to FTMO's daily limit, so that
    the FTMO headroom itself is what stops the sizing near the floor."""
    return Config.model_validate({
        "bridge": {"journal": str(journal), "command_timeout_ms": TIMEOUT_MS},
        "account": {"initial_balance": INITIAL},
        "entry": {"min_score": 0, "require_warm": False, "require_h1_ema200_alignment": False, "sessions": [],
                  "cooldown_minutes": 0, "allowed_consensus": ["UNANIMOUS", "STRONG", "WEAK", "SPLIT"]},
        "dca": {"enabled": True, "loss_pct": 0.02, "recovery_probability": 0.0},
        "scale_in": {"enabled": True, "profit_pct": 0.02, "min_score": 0},
        "exits": {"time_exit_hours": 0.0},
        "guards": {"internal_daily_dd_pct": 4.9},
        "ftmo": {"reduce_at_share": 0.88},
    })


@lru_cache(maxsize=None)
def model_file(direction: str) -> str:
    folder = Path(tempfile.mkdtemp(prefix="book-property-model-"))
    return always(direction, folder)


@lru_cache(maxsize=None)
def market(start: str) -> tuple[int, float, tuple]:
    """The first live tick's time (UTC ms) and price, and the M15 and H1 bars of the day before it."""
    t0 = int(datetime.fromisoformat(start).timestamp() * 1000)
    ticks = generate_ticks("EURUSD", days=1, seed=3,
                           start=datetime.fromtimestamp((t0 - 86_400_000) / 1000, tz=timezone.utc))
    t_live = int(ticks.times_ms[-1]) + 60_000
    bars = tuple(build_warmup_bars(ticks, tf, before_server_ms=t_live + OFFSET_MS, server_offset_ms=OFFSET_MS,
                                   digits=SPEC.digits) for tf in ("M15", "H1"))
    return t_live, round(float(ticks.bid[-1]), SPEC.digits), bars


def over_weekend_close(cfg: Config, utc_ms: int) -> bool:
    """Within the gap horizon before Friday's close, or in the weekend: worked out here from the config, not
    read from the engine."""
    day = utc_ms // 86_400_000
    weekday = (day + 3) % 7                  # 1970-01-01 was a Thursday; Monday = 0
    hh, mm = (int(x) for x in str(cfg.funded.friday_close_utc).split(":")[:2])
    close_ms = (day + 4 - weekday) * 86_400_000 + (hh * 60 + mm) * 60_000
    horizon_ms = cfg.ftmo.gap_horizon_hours * 3_600_000
    return close_ms - horizon_ms <= utc_ms < close_ms + 49 * 3_600_000


@dataclass
class Sent:
    """A command the node answered a TICK with, and everything the node has heard about it since."""

    cmd: wire.Command
    answered_at: float               # the node's clock when it sent it
    price: float                     # the decision's price (what its worst case is measured from)
    result: str | None = None        # RESULT.outcome the node received, if any
    in_deal: bool = False            # its opening deal reached the node
    out_deal: bool = False           # a closing deal with its comment reached the node
    position: int = 0                # the position it opened (OPEN/ADD that the server filled)
    booked: bool = False             # a TICK has shown that position: the book took it over from the command
    timer_from: float = 0.0          # the node's clock its timeout runs from (a restart starts it again)
    done: str | None = None          # why the node must have settled it, from the first TICK it had to
    filled: bool = False             # the server really executed it (what the node may never learn)

    @property
    def definite(self) -> bool:
        return self.result in ("DONE", "PARTIAL", "REFUSED")

    @property
    def opens(self) -> bool:
        return self.cmd.action in ("OPEN", "ADD")


@dataclass
class Heard:
    """A position's deals the node has been sent, and whether a TICK has come since the last one."""

    deals: list[DealRecord] = field(default_factory=list)
    ticked_since: bool = False


class World:
    """The broker, the EA between it and the node, and the node with its journal on a file."""

    # Whether a CLOSE's own deal settles it, as the deals settle an OPEN (see the test of a lost RESULT of a CLOSE
    # below); until then the property holds a CLOSE without its RESULT to its timeout.
    close_deal_settles = False

    def __init__(self, start: str, direction: str, drawdown: float = 0.0) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="book-property-"))
        self.path = self.folder / "journal.sqlite"
        self.cfg = config(self.path)
        self.model = model_file(direction)
        t_live, price, self.bars = market(start)
        self.t = t_live                      # UTC ms of the latest quote
        self.clock = 0.0                     # the node's monotonic clock, seconds
        # The account may have lost ``drawdown`` already today: it starts that close to the daily floor.
        self.broker = SimulatedBroker(login=LOGIN, balance=INITIAL - drawdown)
        self.broker.add_symbol(SPEC)
        self.broker.quote(SPEC.name, self.t + OFFSET_MS, price, round(price + SPREAD, SPEC.digits))
        self.seq = 0
        self.sent: dict[int, Sent] = {}
        self.heard: dict[int, Heard] = {}    # position id -> what the node heard of it
        self.late: list[tuple[type, dict]] = []   # messages the EA sends after the next TICK
        self.last_tick: bytes | None = None
        self.last_reply: bytes | None = None
        self.failures: dict[str, list[str]] = {}
        self.journal: Journal | None = None
        self.node: Node | None = None
        self._open_node()

    # ---- the bridge's side ----------------------------------------------------------------------------------

    def _open_node(self) -> None:
        self.journal = Journal(self.path)
        self.node = Node(self.cfg, self.journal, model=self.model, clock=lambda: self.clock,
                         wall=lambda: self.t / 1000.0)
        bid, ask = self.broker.quotes[SPEC.name]
        welcome = self.send(
            wire.Hello, protocol_version=wire.PROTOCOL_VERSION, ea_version="test", login=LOGIN, server="FTMO-Demo",
            company="FTMO Global Markets Ltd", currency="USD", margin_mode="HEDGING", initial_balance=INITIAL,
            first_deposit=INITIAL, day_start_balance=INITIAL, balance=self.broker.balance, equity=self.broker.equity,
            symbol=SPEC.name, digits=SPEC.digits, point=SPEC.point, tick_size=SPEC.tick_size,
            tick_value=SPEC.tick_value, contract_size=SPEC.contract_size, volume_min=SPEC.volume_min,
            volume_step=SPEC.volume_step, volume_max=SPEC.volume_max, stops_level=0, freeze_level=0,
            filling_modes=SPEC.filling_modes, trade_mode="FULL", server_utc_offset_s=OFFSET_MS // 1000,
            margin_per_lot=self.broker.margin_per_lot(SPEC.name, ask), magic=MAGIC, chart_id=133476532849512345,
            time_msc=self.t + OFFSET_MS)
        assert json.loads(welcome)["type"] == "WELCOME", welcome
        for bars in self.bars:
            for chunk, chunks, part in bars.chunks():
                reply = self.send(wire.Warmup, timeframe=bars.timeframe, chunk=chunk, chunks=chunks,
                                  time_msc=[int(x) for x in bars.time_msc[part]], open=bars.open[part].tolist(),
                                  high=bars.high[part].tolist(), low=bars.low[part].tolist(),
                                  close=bars.close[part].tolist(), volume=bars.volume[part].tolist())
                assert reply is None or json.loads(reply)["type"] == "ERROR"   # history the engine has: refused

    def restart(self, crash: bool) -> None:
        """The bridge stops (cleanly: node.close(); or killed: nothing saved beyond what is already written)
        and starts again on the same journal file; the EA says HELLO again and sends what it still owes."""
        if not crash:
            self.node.close()
        self.journal.close()
        self.clock += 1.0
        for s in self.sent.values():
            if s.done is None:   # the journal hands it to the new node as pending: its timeout starts again
                s.timer_from = self.clock
        self.last_tick = None   # a new HELLO: the chart's sequence starts again
        self._open_node()
        self._send_late()

    def close(self) -> None:
        try:
            self.journal.close()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def send(self, model: type, **fields) -> bytes | None:
        self.seq += 1
        return self.node.handle(IDENTITY, wire.encode(model(seq=self.seq, **fields)))

    def _send_checked(self, model: type, **fields) -> None:
        reply = self.send(model, **fields)
        assert reply is None, f"the node refused a {model.__name__} the EA had to send: {reply!r}"

    # ---- the EA's side --------------------------------------------------------------------------------------

    def deliver_deals(self, deals) -> None:
        for deal in deals:
            self._send_checked(wire.Deal, **{k: v for k, v in asdict(deal).items()})
            heard = self.heard.setdefault(deal.position_id, Heard())
            heard.deals.append(deal)
            heard.ticked_since = False
            command_id = _command_of(deal.comment)
            if command_id in self.sent:
                s = self.sent[command_id]
                if deal.entry == "IN":
                    s.in_deal = True
                else:
                    s.out_deal = True

    def deliver_result(self, command_id: int, execution: Execution, unknown: bool = False) -> None:
        if unknown:
            fields = dict(command_id=command_id, outcome="UNKNOWN", retcode=RETCODE_CONNECTION, ticket=0, price=0.0,
                          volume=0.0, text="no reply from the trade server", time_msc=self.t + OFFSET_MS)
        else:
            fields = dict(command_id=command_id, outcome=result_outcome(execution.retcode), retcode=execution.retcode,
                          ticket=execution.ticket, price=execution.price, volume=execution.volume, text=execution.text,
                          time_msc=execution.time_msc)
        self._send_checked(wire.TradeResult, **fields)
        self.sent[command_id].result = fields["outcome"]

    def _send_late(self) -> None:
        late, self.late = self.late, []
        for kind, args in late:
            if kind == "result":
                self.deliver_result(*args)
            else:
                self.deliver_deals(args)

    def carry_out(self, s: Sent, delivery: str) -> None:
        cmd = s.cmd
        if delivery == "reply_lost":
            return
        if delivery == "unknown_not_filled":
            self.deliver_result(cmd.command_id, None, unknown=True)
            return
        execution = self.broker.execute(cmd, magic=MAGIC)
        s.filled = execution.done
        if s.opens and execution.done:
            s.position = execution.ticket
        if delivery == "result_then_deals":
            self.deliver_result(cmd.command_id, execution)
            self.deliver_deals(execution.deals)
        elif delivery == "deals_then_result":
            self.deliver_deals(execution.deals)
            self.deliver_result(cmd.command_id, execution)
        elif delivery == "deals_only":
            self.deliver_deals(execution.deals)
        elif delivery == "unknown_then_deals":
            self.deliver_result(cmd.command_id, execution, unknown=True)
            self.deliver_deals(execution.deals)
        elif delivery == "result_late":
            self.deliver_deals(execution.deals)
            self.late.append(("result", (cmd.command_id, execution)))

    # ---- the market and the trader ----------------------------------------------------------------------------

    def quote(self, move_points: int, dt_ms: int) -> list[DealRecord]:
        """A new price, ``move_points`` away: stops and targets it reaches or jumps over are filled (at the level,
        or at the price beyond it when it gapped)."""
        bid, _ = self.broker.quotes[SPEC.name]
        bid = round(max(0.5, bid + move_points * POINT), SPEC.digits)
        self.t += dt_ms
        self.clock += dt_ms / 1000.0
        return self.broker.quote(SPEC.name, self.t + OFFSET_MS, bid, round(bid + SPREAD, SPEC.digits))

    def tick(self, move_points: int, dt_ms: int, delivery: str, deals_late: bool) -> None:
        deals = self.quote(move_points, dt_ms)
        if deals_late:
            self.late.append(("deals", deals))
        else:
            self.deliver_deals(deals)
        self.tick_here(delivery)

    def tick_here(self, delivery: str = "result_then_deals") -> None:
        """A TICK at the current quote with the account as the broker has it, and the command it brings
        carried out as ``delivery`` says."""
        b = self.broker
        bid, ask = b.quotes[SPEC.name]
        positions = b.wire_positions()
        snapshot = Snapshot(self.t, self.clock, bid, ask, b.balance, b.equity, [p.model_copy() for p in positions])
        frame = wire.encode(wire.Tick(seq=self.seq + 1, time_msc=self.t + OFFSET_MS, bid=bid, ask=ask, volume=1.0,
                                      balance=b.balance, equity=b.equity, margin=b.margin, free_margin=b.free_margin,
                                      positions=positions, round_trip_us=0))
        self.seq += 1
        reply = self.node.handle(IDENTITY, frame)
        self.last_tick, self.last_reply = frame, reply
        answer = json.loads(reply)
        assert answer["type"] == "COMMAND", answer
        for heard in self.heard.values():
            heard.ticked_since = True
        booked = {p.ticket for p in positions}
        for s in self.sent.values():
            s.booked = s.booked or (s.position != 0 and s.position in booked)
            if s.done is None:
                s.done = self.settled(s, snapshot)
        new = None
        if answer["action"] != "HOLD":
            cmd = wire.Command.model_validate(answer)
            decision = next(d for d in self.journal.decisions(ACCOUNT) if d["command_id"] == cmd.command_id)
            new = Sent(cmd, self.clock, decision["price"], timer_from=self.clock)
            self.sent[cmd.command_id] = new
        self.after_tick(snapshot, new)
        self._send_late()
        if new is not None:
            self.carry_out(new, delivery)

    def trader_opens(self, side: str, volume: float, sl_points: int, tp_points: int) -> None:
        bid, ask = self.broker.quotes[SPEC.name]
        sign = 1 if side == "BUY" else -1
        price = ask if side == "BUY" else bid
        sl = round(price - sign * sl_points * POINT, SPEC.digits)
        tp = round(price + sign * tp_points * POINT, SPEC.digits) if tp_points else 0.0
        done = self.broker.manual_open(SPEC.name, side, volume, sl=sl, tp=tp)
        self.deliver_deals(done.deals)

    def trader_closes(self, pick: int, fraction: float) -> None:
        tickets = list(self.broker.positions)
        pos = self.broker.positions[tickets[pick % len(tickets)]]
        volume = 0.0 if fraction >= 1 else round(pos.volume * fraction, 2)
        done = self.broker.manual_close(pos.ticket, volume)
        self.deliver_deals(done.deals)

    # ---- the promises -----------------------------------------------------------------------------------------

    def fail(self, promise: str, message: str) -> None:
        self.failures.setdefault(promise, []).append(message)

    def after_tick(self, snap: Snapshot, new: Sent | None) -> None:
        status = self.node.status()["accounts"][ACCOUNT]
        self.check_book(snap, status)
        self.check_in_flight(snap, status, new)
        if new is not None and new.opens:
            self.check_worst_case(snap, new)

    def check_book(self, snap: Snapshot, status: dict) -> None:
        broker = sorted((p.ticket, p.side, p.volume, p.open_price, p.sl, p.tp, p.magic == MAGIC)
                        for p in snap.positions)
        book = sorted((p["ticket"], p["side"], p["volume"], p["open_price"], p["sl"], p["tp"], p["managed"])
                      for p in status["positions"])
        if book != broker:
            self.fail("book", f"at {snap.t}: the engine's book {book} is not the broker's positions {broker}")
        journal = sorted(p["ticket"] for p in self.journal.open_positions(ACCOUNT))
        if journal != sorted(p.ticket for p in snap.positions):
            self.fail("book", f"at {snap.t}: the journal's open positions {journal} are not the broker's "
                      f"{sorted(p.ticket for p in snap.positions)}")

    def settled(self, s: Sent, snap: Snapshot) -> str | None:
        """Why the node must have settled ``s`` by the tick of ``snap`` (None while it may still wait)."""
        if s.result == "REFUSED":
            return "its RESULT refused it"
        if s.definite and not s.opens:
            return f"its RESULT says {s.result}"
        if s.opens and (s.definite and s.result != "REFUSED" or s.in_deal):
            if s.booked:
                return f"its position {s.position} has been in the book"
            if s.position and _closed(self.heard.get(s.position)):
                return f"its position {s.position} was opened and closed, and every deal of it reached the node"
            return None
        if self.close_deal_settles and s.cmd.action in ("CLOSE", "CLOSE_ALL") and s.out_deal:
            return "its closing deal reached the node"
        if not s.definite and snap.clock - s.timer_from >= TIMEOUT_MS / 1000.0:
            return "no RESULT within bridge.command_timeout_ms"
        return None

    def check_in_flight(self, snap: Snapshot, status: dict, new: Sent | None) -> None:
        in_flight = {c["command_id"] for c in status["in_flight"]}
        pending = {c["command_id"] for c in self.journal.pending_commands(ACCOUNT)}
        for command_id, s in self.sent.items():
            why = s.done
            if s is new or why is None:
                continue
            where = [name for name, ids in (("the engine's in-flight list", in_flight),
                                            ("the journal's pending commands", pending)) if command_id in ids]
            if where:
                self.fail("in_flight", f"at {snap.t}: command {command_id} ({s.cmd.action}, RESULT {s.result}, "
                          f"opening deal {'heard' if s.in_deal else 'not heard'}, filled {s.filled}) is still in "
                          f"{' and '.join(where)} although {why}")

    def check_worst_case(self, snap: Snapshot, new: Sent) -> None:
        """The OPEN or ADD just sent, recomputed from the broker's account and what the node has heard: equity
        less every position and every order that may still fill stopped out (with the slippage allowance, and
        over the weekend close the gap allowance when larger) must stay above the binding floor plus the buffer."""
        ftmo = self.cfg.ftmo
        gap = ftmo.gap_allowance_pct.fx / 100.0 if over_weekend_close(self.cfg, snap.t) else 0.0
        slip = ftmo.slippage_allowance_pct / 100.0

        def loss(side: str, volume: float, price: float, sl: float) -> float:
            dist = max(0.0, (price - sl) * (1 if side == "BUY" else -1)) * (1 + slip)
            return max(dist, gap * price) * SPEC.money_per_price * volume

        worst = sum(loss(p.side, p.volume, snap.bid if p.side == "BUY" else snap.ask, p.sl) for p in snap.positions)
        for s in self.sent.values():
            # An order that may still fill counts as filled; once settled, its position (if any) is in the book.
            if s.opens and s.done is None:
                worst += loss(s.cmd.side, s.cmd.volume, s.price, s.cmd.sl)
        floor = max(INITIAL - ftmo.daily_loss_pct / 100 * INITIAL, INITIAL * (1 - ftmo.max_loss_pct / 100))
        if gap:
            floor = max(floor, snap.balance - ftmo.daily_loss_pct / 100 * INITIAL)
        buffer = ftmo.safety_buffer_pct / 100 * INITIAL
        room = snap.equity - worst - floor - buffer
        if room < -CENT:
            self.fail("worst_case", f"at {snap.t}: {new.cmd.action} {new.cmd.volume} lots (command "
                      f"{new.cmd.command_id}) leaves a worst case of {worst:.2f} on equity {snap.equity:.2f}: "
                      f"{-room:.2f} past the floor {floor:.2f} less the buffer {buffer:.2f}")
        recorded = next(d for d in self.journal.decisions(ACCOUNT) if d["command_id"] == new.cmd.command_id)
        if recorded["headroom"] < -CENT:
            self.fail("worst_case", f"at {snap.t}: the journal records {new.cmd.action} {new.cmd.command_id} with "
                      f"headroom {recorded['headroom']:.2f}")

    def check_money(self) -> None:
        """Each position the broker closed, once every deal of it has reached the node and a TICK came after,
        is one settled closed trade with the realized money of its deals (settled as soon as the deals close
        it, if the node already has its trade); so the settled trades sum to the balance change of the
        positions the broker closed. No trade is settled for a position still open."""
        trades = {t["ticket"]: t for t in self.journal.closed_trades(ACCOUNT)}
        expected = 0.0
        for position, heard in self.heard.items():
            if not _closed(heard) or position in self.broker.positions:
                continue
            money = round(sum(d.profit + d.swap + d.commission for d in heard.deals), 2)
            trade = trades.get(position)
            if trade is not None and trade["settled"]:
                expected += money
                if abs(trade["profit"] - money) > CENT:
                    self.fail("money", f"position {position}: closed trade profit {trade['profit']:.2f}, its "
                              f"deals realized {money:.2f} ({_describe(heard.deals)})")
            elif heard.ticked_since:
                expected += money
                self.fail("money", f"position {position} was closed ({_describe(heard.deals)}) and a TICK came "
                          f"after, yet {'its closed trade is not settled' if trade else 'no closed trade records it'}")
        settled = sum(t["profit"] for t in trades.values() if t["settled"])
        if abs(settled - expected) > CENT:
            self.fail("money", f"settled closed trades sum to {settled:.2f}, the positions the broker closed "
                      f"changed the balance by {expected:.2f}; settled: "
                      f"{sorted(k for k, t in trades.items() if t['settled'])}")
        # The broker's own bookkeeping, so the sums above mean what they say.
        all_deals = round(sum(d.profit + d.swap + d.commission for d in self.broker.history), 2)
        assert abs(self.broker.balance - self.broker.initial_balance - all_deals) <= CENT, "the broker lost money"


@dataclass
class Snapshot:
    """The broker's account as the TICK carried it."""

    t: int
    clock: float
    bid: float
    ask: float
    balance: float
    equity: float
    positions: list


def _closed(heard: Heard | None) -> bool:
    if heard is None:
        return False
    opened = sum(d.volume for d in heard.deals if d.entry == "IN")
    closed = sum(d.volume for d in heard.deals if d.entry == "OUT")
    return opened > 0 and closed >= opened - 1e-9


def _command_of(comment: str) -> int:
    try:
        return int(comment[len(wire.COMMENT_PREFIX):]) if comment.startswith(wire.COMMENT_PREFIX) else 0
    except ValueError:
        return 0


def _describe(deals) -> str:
    return ", ".join(f"{d.entry} {d.volume} @ {d.price} {d.reason} {d.profit + d.swap + d.commission:+.2f}"
                     for d in deals)


# ---- the sequences ---------------------------------------------------------------------------------------------

SMALL_MOVES = st.integers(-40, 40)
GAPS = st.sampled_from([-400, -250, -150, 150, 250, 400])   # far enough to jump over a stop or a target


class BookMachine(RuleBasedStateMachine):
    """Random sequences of what happens on an account; ``promises`` names the checks that must hold.
    ``crashes``: the bridge is also killed, not only stopped cleanly. ``unseen_manual``: positions may open
    and close where no book sees them (otherwise a TICK shows each of the trader's own as it opens, and the EA
    ticks right before the bridge stops and right after it is back)."""

    promises: frozenset[str] = frozenset()
    crashes = True
    unseen_manual = True

    def __init__(self) -> None:
        super().__init__()
        self.world: World | None = None

    @initialize(start=st.sampled_from(["wednesday", "friday"]), direction=st.sampled_from(["BUY", "SELL"]),
                drawdown=st.sampled_from([0.0, 2500.0, 4200.0]))
    def open_the_account(self, start: str, direction: str, drawdown: float) -> None:
        self.world = World(STARTS[start], direction, drawdown)

    @rule(move=st.one_of(SMALL_MOVES, SMALL_MOVES, GAPS), dt_ms=st.integers(200, 3000),
          delivery=st.sampled_from(DELIVERIES), deals_late=st.booleans())
    def tick(self, move: int, dt_ms: int, delivery: str, deals_late: bool) -> None:
        self.world.tick(move, dt_ms, delivery, deals_late)

    @rule(move=st.one_of(SMALL_MOVES, GAPS), dt_ms=st.integers(50, 2000))
    def price_moves_between_ticks(self, move: int, dt_ms: int) -> None:
        # No TICK: the EA was busy; whatever the price filled is reported by its deals.
        self.world.deliver_deals(self.world.quote(move, dt_ms))

    @rule(side=st.sampled_from(["BUY", "SELL"]), volume=st.sampled_from([0.01, 0.1, 0.5, 1.0, 2.5]),
          sl_points=st.integers(20, 600), tp_points=st.sampled_from([0, 50, 200, 600]),
          delivery=st.sampled_from(DELIVERIES))
    def trader_opens(self, side: str, volume: float, sl_points: int, tp_points: int, delivery: str) -> None:
        self.world.trader_opens(side, volume, sl_points, tp_points)
        if not self.unseen_manual:
            self.world.tick_here(delivery)

    @precondition(lambda self: self.world is not None and self.world.broker.positions)
    @rule(pick=st.integers(0, 7), fraction=st.sampled_from([0.3, 0.5, 1.0]))
    def trader_closes(self, pick: int, fraction: float) -> None:
        self.world.trader_closes(pick, fraction)

    @rule(dt_ms=st.integers(TIMEOUT_MS, TIMEOUT_MS + 5000))
    def clock_runs_past_the_timeout(self, dt_ms: int) -> None:
        self.world.tick(0, dt_ms, "result_then_deals", False)

    @rule(crash=st.booleans(), delivery=st.sampled_from(DELIVERIES))
    def bridge_restarts(self, crash: bool, delivery: str) -> None:
        if not self.unseen_manual:
            self.world.tick_here("reply_lost")
        self.world.restart(crash and self.crashes)
        if not self.unseen_manual:
            self.world.tick_here(delivery)

    @precondition(lambda self: self.world is not None and self.world.last_tick is not None)
    @rule()
    def ea_sends_the_tick_again(self) -> None:
        # A reply lost on the way: the same request gets the very same bytes, never a second command.
        w = self.world
        assert w.node.handle(IDENTITY, w.last_tick) == w.last_reply

    @invariant()
    def promises_hold(self) -> None:
        w = self.world
        if w is None:
            return
        if "money" in self.promises:
            w.check_money()
        broken = {k: v for k, v in w.failures.items() if k in self.promises}
        assert not broken, "\n".join(m for v in broken.values() for m in v[:3])

    def teardown(self) -> None:
        if self.world is not None:
            self.world.close()


SETTINGS = settings(max_examples=EXAMPLES, stateful_step_count=STEPS, derandomize=True, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much], print_blob=True)


def _run(promise: str, shrink: bool = True, **world) -> None:
    machine = type(f"Book_{promise}", (BookMachine,), {"promises": frozenset({promise}), **world})
    # A known failure need not be shrunk again on every run: its shortest sequences are the tests below.
    chosen = SETTINGS if shrink else settings(SETTINGS, phases=[Phase.explicit, Phase.reuse, Phase.generate])
    run_state_machine_as_test(machine, settings=chosen)


# ---- the promises, each over its own sequences ------------------------------------------------------------------


def test_the_book_is_the_brokers_positions_after_every_tick():
    _run("book")


def test_no_command_stays_in_flight_past_its_settlement():
    # Restarts clean and killed: what a deal settled is saved with the engine's state.
    _run("in_flight")


def test_the_closed_trades_sum_to_the_balance_change():
    # Positions no book saw open or close, and positions closed while a restart was under way, included.
    _run("money")


def test_no_open_or_add_lets_the_worst_case_cross_a_floor_less_the_buffer():
    _run("worst_case")


# ---- the shortest sequences the search found where the book once parted from the broker ----------------------


def _world(start: str = "wednesday") -> World:
    return World(STARTS[start], "BUY")


def _in_flight(w: World) -> list[int]:
    return [c["command_id"] for c in w.node.status()["accounts"][ACCOUNT]["in_flight"]]


@pytest.mark.parametrize("when", ["between two ticks", "after a restart, before the first tick"])
def test_a_trade_of_the_traders_own_the_book_never_held_is_a_closed_trade(when):
    w = _world()
    try:
        w.trader_opens("BUY", 0.5, 200, 0)
        if when != "between two ticks":
            w.tick(0, 1000, "reply_lost", False)      # the book holds it
            w.restart(crash=False)
        w.trader_closes(0, 1.0)                       # by hand, at a loss of its commission and spread: -7.50
        w.tick(0, 1000, "reply_lost", False)
        w.check_money()
        assert not w.failures, w.failures
        [trade] = w.journal.closed_trades(ACCOUNT)
        assert trade["settled"] and round(trade["profit"], 2) == -7.5 and not trade["managed"]
    finally:
        w.close()


@pytest.mark.parametrize("crash", [False, True], ids=["stopped", "killed"])
def test_a_position_closed_just_before_a_restart_is_a_closed_trade(crash):
    w = _world()
    try:
        w.tick(0, 1000, "result_then_deals", False)   # OPEN, filled
        w.tick(0, 1000, "reply_lost", False)          # the book holds it
        w.trader_closes(0, 1.0)                       # closed by hand: its deals reach the node
        w.restart(crash=crash)
        w.tick(0, 1000, "reply_lost", False)
        w.check_money()
        assert not w.failures, w.failures
    finally:
        w.close()


def test_a_command_settled_by_its_deals_stays_settled_when_the_bridge_is_killed():
    w = _world()
    try:
        w.tick(0, 1000, "result_then_deals", False)   # OPEN, filled
        [opened] = w.sent.values()
        w.deliver_deals(w.quote(-400, 100))           # stopped out through its stop before the next tick
        assert opened.cmd.command_id not in _in_flight(w)   # settled by its deals
        w.restart(crash=True)
        w.tick(0, TIMEOUT_MS + 1000, "reply_lost", False)
        assert opened.cmd.command_id not in _in_flight(w)
    finally:
        w.close()


def test_a_close_whose_result_is_lost_is_settled_by_its_deal():
    w = _world("friday")
    try:
        w.tick(0, 10_000, "result_then_deals", False)     # OPEN, filled
        w.quote(16, 50)
        w.quote(250, 50)                                  # 2 R in profit
        w.tick_here("deals_only")                         # CLOSE (PARTIAL_TP); its RESULT lost, its deal comes
        [close] = [s for s in w.sent.values() if s.cmd.action == "CLOSE"]
        assert close.out_deal
        w.tick(0, 200, "result_then_deals", False)
        assert close.cmd.command_id not in _in_flight(w)
        assert close.cmd.command_id not in {c["command_id"] for c in w.journal.pending_commands(ACCOUNT)}
    finally:
        w.close()
