"""The node: EA messages in, replies out, for every chart of every account the bridge serves.

It owns no socket and no clock of its own — the server hands it frames and the wall time — so the live
bridge and its tests run the very same code. Per account it keeps one decision engine; per chart, the
symbol's feature engine and the lock-step bookkeeping (sequence numbers, the reply to the last request).

What it promises the trader:
- one reply per HELLO or TICK; a re-sent request (same chart, same seq) gets the very same bytes back;
- a command is in the journal before its bytes leave (write-ahead), and counts against every limit until
  the book shows it or it is reconciled — never re-sent blindly;
- a bad frame gets an ERROR naming the problem, is logged and counted, and the next good one is served;
- trading time is the tick's own (server time converted to UTC with the offset the EA reported).
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import numpy as np

from mt5bridge.bridge import protocol as wire
from mt5bridge.bridge import readout
from mt5bridge.bridge.access import login_refusal
from mt5bridge.bridge.alerts import NO_ALERTS
from mt5bridge.bridge.fastwire import hold_reply, read_tick, tick_values
from mt5bridge.bridge.journal import JournalError, RecordRefused
from mt5bridge.bridge.ratelog import RateLog, printable
from mt5bridge.config import Config, config_from_dict
from mt5bridge.core.catalog import FEATURE_INDEX
from mt5bridge.core.decision import (
    ACTION_NAMES,
    STATE_NAMES,
    add_symbol,
    build_engine,
    sync_book,
)
from mt5bridge.core.engine import TIMEFRAME_SECONDS, FeatureEngine
from mt5bridge.core.reasons import CODES, WORDS

log = logging.getLogger("mt5bridge.bridge.node")

TIMEFRAME_INDEX = {"M1": 0, "M5": 1, "M15": 2, "H1": 3}
FILLED_OUTCOMES = frozenset({"DONE", "PARTIAL"})
# A command whose outcome is not known yet (a timeout, a lost connection, an order the server holds unfilled)
# stays in flight, counted against every limit, until the positions and deals settle it.
UNSETTLED_OUTCOMES = frozenset({"UNKNOWN", "PLACED"})
SAVE_STATE_EVERY_S = 5.0
# Item types of the columns DecisionEngine.sync_positions takes: ticket, symbol index, side, volume, open price,
# SL, TP, profit (with swap and commission), open time (UTC ms), magic.
# Shadow spec for a symbol seen only in a position: its stop is unknown, so its risk is treated as unbounded
# until a chart for it connects and says what it is worth.
NO_TIME_MS = -(1 << 62)   # a feature engine's last tick time before it has seen any
# The fields of a position that only a trade or the trader changes: all but the floating profit, swap and
# commission, which move on nearly every tick while a position is open.
FLOATING_FIELDS = ("profit", "swap", "commission")
BOOK_FIXED = itemgetter(*[name for name in wire.Position.model_fields if name not in FLOATING_FIELDS])
DAY_MS = 86_400_000
HEADROOM_WARNINGS = (0.5, 0.7, 0.9)   # shares of a loss limit used at which the trader is alerted
R_JOURNAL_UNAVAILABLE = CODES.index("JOURNAL_UNAVAILABLE")
R_INITIAL_BALANCE_UNKNOWN = CODES.index("INITIAL_BALANCE_UNKNOWN")
# While the journal cannot write, the ids of the closes sent without it are taken this far above the journal's
# highest: a bridge killed before it could write them restarts from the journal's highest id and never hands
# one of them out again.
UNJOURNALED_ID_GAP = 1_000_000
# Records kept for the journal while it cannot write (in order); beyond this many, the oldest are kept and the
# rest counted as lost, loudly. Positions, decisions and results come a few a minute at most in this state.
MAX_BACKLOG = 100_000
JOURNAL_ALARM_EVERY_S = 60.0
# A TICK's seq may run ahead of the last one by this much at most: an EA counts one per message, so a larger
# jump is a broken or hostile frame, which would otherwise make every later tick of the chart a SEQUENCE error.
MAX_SEQ_JUMP = 1_000_000
_SPREAD_BPS = FEATURE_INDEX["spread_bps"]
_SHADOW_SPEC = dict(point=1.0, tick_size=1.0, tick_value=1.0, contract_size=1.0, volume_min=0.01,
                    volume_step=0.01, volume_max=1e6, digits=0)


@dataclass
class Chart:
    identity: bytes
    label: str
    account: str
    symbol: str
    sym: int
    offset_ms: int
    acct: Account | None = field(default=None, repr=False)
    last_seq: int = -1
    last_reply: bytes | None = None
    last_tick_ms: int = -(1 << 62)
    last_seen: float = 0.0
    # Whether the trader has been told the chart went silent; staleness itself is judged from last_seen, so
    # the tick path writes nothing for it.
    said_stale: bool = False
    closed: bool = False
    ticks: int = 0
    # The bridge's own time to answer this chart's ticks (exponentially weighted). The EA's round trip
    # includes the network and the terminal as well; only the EA can measure that.
    answer_ms: float = 0.0
    round_trip_ms: float = 0.0   # as the EA measures it (TICK.round_trip_us), exponentially weighted
    last_action: int = 0
    last_reason: int = 0
    hold_tails: dict[int, bytes] = field(default_factory=dict)   # reason -> the HOLD reply after reply_to
    # The run of HOLDs this chart is in: same reason, same UTC day. Counted here, handed to the journal's
    # refusal counts when the run ends and at every housekeeping, so an ordinary tick calls nothing for it.
    held_reason: int = -1     # -1: no run
    held_count: int = 0
    held_first_ms: int = 0
    held_last_ms: int = 0
    held_until_ms: int = 0    # the end of the UTC day the run started in
    # Set when the chart came back to a bridge whose engine already runs its symbol: warm-up bars before the
    # bars open at this tick time (UTC ms) are history the engine has, and are skipped.
    live_from_ms: int | None = None
    chart_id: int = 0            # HELLO.chart_id: the terminal's chart, whatever identity it connects with


@dataclass
class Account:
    login: str
    engine: Any
    currency: str
    charts: dict[str, Chart] = field(default_factory=dict)
    shadow: set[str] = field(default_factory=set)
    state: tuple[int, int] = (0, 0)
    day_key: int = 0
    status: int = -1          # the engine's status_key when state and day were last looked at
    saved_at: float = 0.0
    sent: dict[int, float] = field(default_factory=dict)   # command id -> wall time it was sent
    # The positions the engine's book was last given (TICK.positions as dicts); None = sync on the next tick.
    synced: list[dict[str, Any]] | None = None
    synced_fixed: list[tuple] | None = None   # the fields of those positions that are not floating (BOOK_FIXED)
    book_reconciled: bool = False   # the journal's open positions checked against the terminal's once
    unsaved_ms: int | None = None   # tick time of an engine state the journal could not take yet
    initial_source: str = "unknown"  # where the initial balance came from; "unknown": no new risk
    day_start_source: str = "the state the journal kept"
    specs: dict[str, dict] = field(default_factory=dict)   # symbol -> its HELLO's spec, for money per point in status
    headroom_said: dict[str, tuple[int, float]] = field(default_factory=dict)  # limit -> (Prague day, threshold said)
    day_open_balance: float = 0.0   # the balance the current Prague day started with, for the daily summary
    breaker_said: int | None = None   # the circuit breaker's end the trader was told of


class Node:
    # The zmq.Frame of the message in hand, set by the server before each handle(): the properties of the
    # connection it came on (the ZAP User-Id, the peer's address) are read from it. None without a server.
    frame = None
    # The CURVE client keys the server lets in, by Z85 public key (access.ClientKey); None without CURVE.
    client_keys = None
    # Where the trader's alerts go (mt5bridge.bridge.alerts.Alerts); its emit() only queues, off the tick path.
    alerts = NO_ALERTS

    def __init__(self, cfg: Config, journal, *, model: str | None = None, clock=time.monotonic,
                 wall=time.time, news=None) -> None:
        self.cfg = cfg
        # The news calendar of a funded blackout, as plain values (mt5bridge.market.news.blackout_calendar):
        # read by whoever starts the bridge, handed to every account's engine.
        self.news = news
        self.journal = journal
        self.model = model
        self.clock = clock
        self.wall = wall   # only to judge a tick dated implausibly far ahead; trading runs on tick time
        # One sequence of command ids for every account of this journal: each account's engine draws from it.
        self.next_command_id = journal.next_command_id()
        # Why the journal cannot write (None while it can): no new risk then, and what it must not lose waits
        # in the backlog, in order, until it writes again.
        self.journal_down: str | None = None
        self.journal_lost = False   # its file was replaced under it: nothing is written until a restart
        self._journal_said = 0.0
        self._backlog: list[tuple[Any, tuple, dict]] = []
        self._backlog_lost = 0
        self._ahead_ms = cfg.bridge.max_time_ahead_ms
        # Lines about refused frames, and about messages that change nothing, reach the log at a bounded rate.
        self.refusals = RateLog(cfg.bridge.log_refusals_every_s)
        self.notices = RateLog(cfg.bridge.log_refusals_every_s)
        self.accounts: dict[str, Account] = {}
        self.charts: dict[bytes, Chart] = {}
        self.errors: Counter[str] = Counter()
        self.requests: Counter[str] = Counter()   # by message type; TICKs, most of them, in ticks_received
        self.ticks_received = 0
        self.halt = journal.halt_state()
        self._max_frame_bytes = cfg.bridge.max_frame_bytes

    # ---- the one entry point -------------------------------------------------------------------------------

    def handle(self, identity: bytes, frame: bytes) -> bytes | None:
        """The reply to one frame from one chart (None when the message needs none)."""
        now = self.clock()
        # Most frames are ordinary TICKs: read without pydantic. Anything else, a bad TICK included, is read by
        # the protocol's models, which also word every refusal.
        tick = read_tick(frame, self._max_frame_bytes)
        if tick is not None:
            return self._serve_tick(identity, tick, now)
        try:
            msg = wire.parse_request(frame, self._max_frame_bytes)
        except wire.ProtocolError as exc:
            return self._refuse(identity, exc)
        if msg.type == "TICK":
            return self._serve_tick(identity, tick_values(msg), now)
        self.requests[msg.type] += 1
        chart = self.charts.get(identity)
        if chart is not None:
            chart.last_seen = now
        try:
            if msg.type == "HELLO":
                # Not kept as the chart's last reply: only a TICK is answered again as a re-send, so a TICK that
                # happens to carry the HELLO's seq is not answered with the WELCOME.
                return self._hello(identity, msg, now)
            if chart is None:
                raise wire.ProtocolError("NOT_INTRODUCED", f"{msg.type} before HELLO from this chart", msg.seq)
            if msg.type == "WARMUP":
                self._warmup(chart, msg)
            elif msg.type == "RESULT":
                self._result(chart, msg)
            elif msg.type == "DEAL":
                self._deal(chart, msg)
            elif msg.type == "FAILSAFE":
                self._failsafe(chart, msg)
            elif msg.type == "CLOCK":
                self._clock(chart, msg)
            elif msg.type == "BYE":
                self._notice(identity, "BYE", logging.INFO, "chart %s closed: %s", chart.label,
                             msg.reason or "no reason given")
                # Gone from the identities served, so a TICK after BYE is NOT_INTRODUCED; shown as closed in
                # status until it is forgotten.
                self._retire(chart, keep_in_status=True)
            return None
        except wire.ProtocolError as exc:
            return self._refuse(identity, exc)
        except ValueError as exc:
            # The engine refused something the protocol let through (a warm-up bar out of order, ...).
            return self._refuse(identity, wire.ProtocolError("INVALID_VALUE", str(exc), msg.seq))

    def frame_property(self, name: str) -> str | None:
        """A property of the connection the frame in hand came on ("User-Id", "Peer-Address"), or None when
        there is no frame or the connection has no such property."""
        from zmq import ZMQError

        frame = self.frame
        if frame is None:
            return None
        try:
            value = frame.get(name)
        except (ZMQError, AttributeError, TypeError, UnicodeDecodeError):
            return None
        return value if isinstance(value, str) else None

    def _refuse(self, identity: bytes, exc: wire.ProtocolError) -> bytes:
        # Every refusal is counted and answered; the log hears of them at a bounded rate (RateLog).
        self.errors[exc.code] += 1
        refusals = self.refusals
        since, untold = refusals.note(identity, exc.code, self.clock())
        if since is not None:
            log.warning("refused a frame from %s: %s: %s%s", printable(identity.decode("utf-8", "replace")),
                        exc.code, printable(exc.message),
                        f" ({since} more refused for {exc.code} since this chart's last line)" if since else "")
        if untold:
            log.warning("refused %d more frames since the last lines of their charts and reasons, or from charts "
                        "past the %d followed one by one", untold, refusals.max_pairs)
        return wire.encode(exc.to_reply())

    # ---- HELLO ---------------------------------------------------------------------------------------------

    def _account(self, hello: wire.Hello) -> Account:
        login = str(hello.login)
        acct = self.accounts.get(login)
        if acct is not None:
            return acct
        if len(self.accounts) >= self.cfg.bridge.max_accounts:
            raise wire.ProtocolError(
                "CAPACITY", f"HELLO.login {login}: the bridge serves {len(self.accounts)} accounts, its limit "
                "(bridge.max_accounts)", hello.seq)
        cfg = self.cfg
        saved = self.journal.load_engine_state(login)
        initial, source = self._initial_balance(hello, saved)
        if initial and cfg.account.initial_balance != initial:
            data = cfg.model_dump(mode="json", by_alias=True)
            data["account"]["initial_balance"] = initial
            cfg = config_from_dict(data, f"the configuration with the initial balance from {source}")
        engine = build_engine(cfg, cfg.bridge.magic, self.next_command_id, self.news)
        halt = self.halt
        if saved:
            # The journal's operator record is the truth, both ways: the state may have been saved before the
            # operator's latest halt or resume reached it (a kill -9 between the two writes).
            saved["account"]["operator_halt"] = (2 if halt["flatten"] else 1) if halt["halted"] else 0
            engine.restore_state(saved)
            if not halt["halted"] and saved.get("operator_record", 0) != halt["record"]:
                engine.resume()   # a resume this state never saw lifts what the operator lifted
            log.info("account %s: state restored from the journal (day start balance %.2f, %d commands in flight)",
                     login, saved["account"]["day_start_balance"], len(saved["in_flight"]))
            self._reserve_ids(engine.next_command_id)
        if halt["halted"]:
            engine.halt(flatten=halt["flatten"])
        acct = Account(login, engine, hello.currency, initial_source=source)
        if not saved:
            day_start = hello.day_start_balance if hello.day_start_balance and hello.day_start_balance > 0 else 0.0
            self._check_ahead_hello(hello)
            engine.start_account(hello.time_msc - hello.server_utc_offset_s * 1000, hello.balance, hello.equity,
                                 day_start)
            acct.day_start_source = ("the EA: the balance less the deals since Prague midnight" if day_start
                                     else "the balance when the bridge first saw the account")
        if not initial:
            log.critical("account %s: INITIAL BALANCE UNKNOWN: neither account.initial_balance in the config, nor "
                         "the EA's InpInitialBalance, nor the account's first deposit in its history: no new risk "
                         "(HOLD %s) until one is given; open positions are still managed", login,
                         CODES[R_INITIAL_BALANCE_UNKNOWN])
        else:
            log.info("account %s: initial balance %.2f from %s", login, initial, source)
        acct.state = engine.state_code
        for pending in self.journal.pending_commands(login):
            acct.sent[pending["command_id"]] = self.clock()
        self._time_restored_fills(acct)
        self.accounts[login] = acct
        return acct

    def _time_restored_fills(self, acct: Account) -> None:
        """Fills whose book had not shown the position before a restart are timed again from now: released at
        their timeout if the book never shows it (closed while the bridge was down, say)."""
        for waiting in acct.engine.in_flight:
            if waiting["filled"] and waiting["command_id"] not in acct.sent:
                acct.sent[waiting["command_id"]] = self.clock()

    def _initial_balance(self, hello: wire.Hello, saved: dict | None) -> tuple[float, str]:
        """The initial balance the FTMO floors are measured from, and where it came from, in the order of trust:
        the configuration, the state the journal kept (set from one of these before), the EA's input, the
        account's first deposit as the EA found it in the history. Never the balance first seen: started on a
        100k account at 97k, that would put the overall floor at 87,300 instead of 90,000. (0, "unknown") when
        nothing gives it."""
        if self.cfg.account.initial_balance > 0:
            return self.cfg.account.initial_balance, "the configuration (account.initial_balance)"
        if saved and saved["account"].get("initial", 0) > 0 and saved.get("initial_source", "unknown") != "unknown":
            return saved["account"]["initial"], saved["initial_source"]
        if hello.initial_balance:
            return hello.initial_balance, "the EA's input (InpInitialBalance)"
        if hello.first_deposit:
            return hello.first_deposit, "the account's first deposit, from the EA's history"
        return 0.0, "unknown"

    def _check_ahead_hello(self, hello: wire.Hello) -> None:
        utc_ms = hello.time_msc - hello.server_utc_offset_s * 1000
        if utc_ms > self.wall() * 1000 + self._ahead_ms:
            raise wire.ProtocolError(
                "TIME_AHEAD", f"HELLO.time_msc {hello.time_msc} is ahead of the bridge's clock by more than "
                f"{self._ahead_ms / 60000:g} min (bridge.max_time_ahead_ms): the account is not started on it",
                hello.seq)

    def _reserve_ids(self, next_id: int) -> None:
        """No engine issues an id below ``next_id`` from now on."""
        if next_id > self.next_command_id:
            self.next_command_id = next_id
            for other in self.accounts.values():
                other.engine.reserve_command_ids(next_id)

    def _spec(self, hello: wire.Hello) -> dict[str, Any]:
        return dict(point=hello.point, tick_size=hello.tick_size, tick_value=hello.tick_value,
                    contract_size=hello.contract_size, volume_min=hello.volume_min, volume_step=hello.volume_step,
                    volume_max=hello.volume_max, digits=hello.digits, stops_level=hello.stops_level,
                    freeze_level=hello.freeze_level, margin_per_lot=hello.margin_per_lot)

    def _hello(self, identity: bytes, hello: wire.Hello, now: float) -> bytes:
        # Before anything is made for the login: a refused one costs no memory and touches no account.
        refusal = login_refusal(self.cfg.bridge.accounts, self.client_keys, self.frame_property("User-Id"),
                                hello.login)
        if refusal is not None:
            raise wire.ProtocolError("FORBIDDEN", refusal, hello.seq)
        if identity not in self.charts and len(self.charts) >= self.cfg.bridge.max_charts:
            self._retire_stale(now)
            if len(self.charts) >= self.cfg.bridge.max_charts:
                raise wire.ProtocolError(
                    "CAPACITY", f"HELLO: the bridge serves {len(self.charts)} charts, its limit (bridge.max_charts)",
                    hello.seq)
        acct = self._account(hello)
        engine = acct.engine
        live_from_ms = None
        if hello.symbol in engine.symbols:
            sym = engine.symbols.index(hello.symbol)
            last = engine.feature_engine(sym).last_time_ms
            if hello.symbol not in acct.shadow and last > NO_TIME_MS:
                # An EA reconnecting to a running bridge sends its history again: the bars before the ones
                # the engine holds open are history it already has.
                live_from_ms = last
            if hello.symbol in acct.shadow:
                engine.set_spec(sym, self._spec(hello), hello.trade_mode != "DISABLED")
                acct.shadow.discard(hello.symbol)
                acct.synced = None   # its positions' stops now count: give the book them on the next tick
        else:
            sym = add_symbol(engine, self.cfg, hello.symbol, self._spec(hello), FeatureEngine(self.model))
            # The engine puts back the restored commands of a symbol when the symbol is added.
            self._time_restored_fills(acct)
        label = identity.decode("utf-8", "replace")
        previous = self.charts.get(identity)
        if previous is not None:
            if (previous.account, previous.symbol, previous.chart_id) != (acct.login, hello.symbol, hello.chart_id):
                # Not the same EA coming back: another connection took this identity over (zmq hands it to the
                # newest), and the chart it served is gone with it.
                log.warning("chart identity %s taken over: it was account %s %s (chart %d), it is now account %s %s "
                            "(chart %d%s)", label, previous.account, previous.symbol, previous.chart_id, acct.login,
                            hello.symbol, hello.chart_id, _peer_words(self.frame_property("Peer-Address")))
            self._retire(previous)
        # The same terminal chart under a new identity (the EA reconnected as someone new): the old one is
        # retired rather than left as a stale ghost.
        for old in [c for c in acct.charts.values() if c.chart_id == hello.chart_id and c.symbol == hello.symbol]:
            log.info("chart %s: reconnected as %s", old.label, label)
            self._retire(old)
        acct.specs[hello.symbol] = self._spec(hello)
        chart = Chart(identity, label, acct.login, hello.symbol, sym, hello.server_utc_offset_s * 1000, acct,
                      last_seq=hello.seq, last_seen=now, live_from_ms=live_from_ms, chart_id=hello.chart_id)
        # Time never runs backwards for a symbol, across reconnects and second charts alike.
        if live_from_ms is not None:
            chart.last_tick_ms = live_from_ms
        self.charts[identity] = chart
        acct.charts[label] = chart
        log.info("chart %s: account %s (%s, %s), %s, server UTC%+.1f h", label, acct.login, hello.server,
                 hello.margin_mode, hello.symbol, hello.server_utc_offset_s / 3600)
        b = self.cfg.bridge
        floor = 0.0
        if b.ea_equity_guard:
            a = engine.account
            if engine.export_state()["account"]["started"]:
                floor = a["equity_floor"]
            else:
                # Before the first tick: today's floor as FTMO will compute it from this balance.
                initial = a["initial_balance"] or hello.initial_balance or hello.balance
                floor = max(hello.balance - self.cfg.ftmo.daily_loss_pct / 100.0 * initial,
                            initial * (1.0 - self.cfg.ftmo.max_loss_pct / 100.0))
        return wire.encode(wire.Welcome(
            reply_to=hello.seq, protocol_version=wire.PROTOCOL_VERSION, deadline_ms=b.deadline_ms,
            heartbeat_ms=b.heartbeat_ms, stale_after_ms=b.stale_after_ms, failsafe_silence_ms=b.failsafe_silence_ms,
            equity_floor=max(0.0, floor), max_requests_per_minute=b.max_requests_per_minute,
            journal_id=self.journal.journal_id))

    # ---- WARMUP --------------------------------------------------------------------------------------------

    def _warmup(self, chart: Chart, msg: wire.Warmup) -> None:
        engine = self.accounts[chart.account].engine
        features = engine.feature_engine(chart.sym)
        times = np.asarray(msg.time_msc, dtype=np.int64) - chart.offset_ms
        keep = slice(None)
        if chart.live_from_ms is not None:
            period = TIMEFRAME_SECONDS[TIMEFRAME_INDEX[msg.timeframe]] * 1000
            keep = times >= chart.live_from_ms - chart.live_from_ms % period
            if not keep.any():
                return
        features.warmup_bars(TIMEFRAME_INDEX[msg.timeframe], times[keep], np.asarray(msg.open)[keep],
                             np.asarray(msg.high)[keep], np.asarray(msg.low)[keep], np.asarray(msg.close)[keep],
                             np.asarray(msg.volume, dtype=np.float64)[keep])

    # ---- TICK ----------------------------------------------------------------------------------------------

    def _serve_tick(self, identity: bytes, tick: tuple, now: float) -> bytes:
        # ``tick`` is the validated TICK as the tuple of its values in fastwire.TICK_FIELDS order, each position
        # a dict as Position.model_dump() gives it.
        # The most frequent path of the bridge: it is written to do little, and to call little (one function
        # from frame to reply besides the reader and the engine).
        self.ticks_received += 1
        chart = self.charts.get(identity)
        # In fastwire.TICK_FIELDS order (an import-time check keeps that order the model's).
        _, seq, time_msc, bid, ask, volume, balance, equity, margin, _, positions, round_trip_us = tick
        try:
            if chart is None:
                raise wire.ProtocolError("NOT_INTRODUCED", "TICK before HELLO from this chart", seq)
            chart.last_seen = now
            if seq <= chart.last_seq or seq > chart.last_seq + MAX_SEQ_JUMP:
                if seq == chart.last_seq and chart.last_reply is not None:
                    return chart.last_reply   # a re-send: the same answer, never a second command
                raise self._sequence_error(chart, seq)
            utc_ms = time_msc - chart.offset_ms
            if utc_ms < chart.last_tick_ms:
                raise self._backwards(chart, time_msc, chart.last_tick_ms, seq)
            if utc_ms > chart.last_tick_ms + self._ahead_ms:   # rare: a first tick, a weekend, or a broken clock
                self._check_ahead(chart, time_msc, utc_ms, seq)
            acct = chart.acct
            engine = acct.engine
            chart.last_reply = None   # until this tick's reply exists, a re-send of it has none to repeat
            if positions != acct.synced:   # None until the first sync, which also reconciles the journal's book
                self._sync(acct, chart, positions, utc_ms)
            if acct.sent:   # commands awaiting a RESULT
                self._reconcile(acct, positions, utc_ms)
            action, reason, status = engine.on_tick_outcome(chart.sym, utc_ms, bid, ask, volume, balance, equity,
                                                            margin)
            chart.last_seq = seq
            chart.last_tick_ms = utc_ms
            chart.ticks += 1
            if round_trip_us:
                rt = round_trip_us / 1000.0
                chart.round_trip_ms = rt if chart.round_trip_ms == 0.0 else chart.round_trip_ms + 0.05 * (
                    rt - chart.round_trip_ms)
            chart.last_action, chart.last_reason = action, reason
            if action == 0:
                if reason != chart.held_reason or utc_ms >= chart.held_until_ms:
                    self._start_holds(chart, reason, utc_ms)
                chart.held_count += 1
                chart.held_last_ms = utc_ms
                tail = chart.hold_tails.get(reason) or self._hold_tail(chart, reason)
                reply = hold_reply(seq, tail)
            else:
                reply = self._command(acct, chart, seq, utc_ms)
            # _after_decision's own tests, in one comparison, so that the usual tick calls nothing more.
            if status != acct.status or now - acct.saved_at >= SAVE_STATE_EVERY_S:
                self._after_decision(acct, utc_ms, now)
        except wire.ProtocolError as exc:
            return self._refuse(identity, exc)
        except ValueError as exc:
            # The engine refused something the protocol let through: a tick older than the symbol's last one
            # (another chart of the symbol, or before a reconnect), ...
            last = chart.acct.engine.feature_engine(chart.sym).last_time_ms
            if utc_ms < last:
                return self._refuse(identity, self._backwards(chart, time_msc, last, seq))
            return self._refuse(identity, wire.ProtocolError("INVALID_VALUE", str(exc), seq))
        chart.last_reply = reply
        chart.answer_ms += 0.05 * ((self.clock() - now) * 1000.0 - chart.answer_ms)
        return reply

    def _sequence_error(self, chart: Chart, seq: int) -> wire.ProtocolError:
        if seq > chart.last_seq:
            return wire.ProtocolError("SEQUENCE", f"TICK.seq {seq} jumps more than {MAX_SEQ_JUMP} past the last, "
                                      f"{chart.last_seq}: refused, the chart goes on from {chart.last_seq}", seq)
        return wire.ProtocolError("SEQUENCE", f"TICK.seq {seq} is not after {chart.last_seq}", seq)

    @staticmethod
    def _backwards(chart: Chart, time_msc: int, last_utc_ms: int, seq: int) -> wire.ProtocolError:
        return wire.ProtocolError(
            "TIME_BACKWARDS", f"TICK.time_msc {time_msc} is before the previous tick of {chart.symbol}, "
            f"{last_utc_ms + chart.offset_ms} (server time, ms)", seq)

    def _check_ahead(self, chart: Chart, time_msc: int, utc_ms: int, seq: int) -> None:
        """Refuse a tick dated more than bridge.max_time_ahead_ms ahead of both the chart's previous tick and
        this machine's clock: trading on it would open the next FTMO day for the account and leave the symbol's
        bars where no later, true tick could follow."""
        wall_ms = int(self.wall() * 1000)
        if utc_ms > max(chart.last_tick_ms, wall_ms) + self._ahead_ms:
            raise wire.ProtocolError(
                "TIME_AHEAD", f"TICK.time_msc {time_msc} is {(utc_ms - max(chart.last_tick_ms, wall_ms)) / 60000:.1f} "
                f"min ahead of the chart's previous tick and of the bridge's clock (at most "
                f"{self._ahead_ms / 60000:g} min, bridge.max_time_ahead_ms): refused, no clock moved", seq)

    def _start_holds(self, chart: Chart, reason: int, utc_ms: int) -> None:
        """A new run of HOLDs (another reason, or a new UTC day): the one before goes to the journal."""
        self._hand_over_holds(chart)
        chart.held_reason = reason
        chart.held_first_ms = utc_ms
        chart.held_until_ms = utc_ms - utc_ms % DAY_MS + DAY_MS

    def _hand_over_holds(self, chart: Chart) -> None:
        """The chart's HOLDs counted so far into the journal's refusal counts; the next HOLD starts a run."""
        if chart.held_count:
            # Counted in the journal's memory before it writes, and kept there when the write fails.
            self._quietly(self.journal.record_refusal, chart.account, chart.symbol, chart.held_first_ms,
                          CODES[chart.held_reason], chart.held_count, chart.held_last_ms)
        chart.held_count = 0
        chart.held_reason = -1

    def _hold_tail(self, chart: Chart, reason: int) -> bytes:
        # Most replies are HOLDs, and the bytes after reply_to depend only on the chart's symbol and the
        # reason: built once per chart and reason, only the sequence number is formatted per tick.
        code = CODES[reason]
        tail = (b',"command_id":0,"action":"HOLD","symbol":%s,"side":"","volume":0.0,"sl":0.0,"tp":0.0,'
                b'"ticket":0,"reason_code":"%s","reason":%s}' % (_json_str(chart.symbol), code.encode(),
                                                                  _json_str(WORDS[code])))
        chart.hold_tails[reason] = tail
        return tail

    def _command(self, acct: Account, chart: Chart, seq: int, utc_ms: int) -> bytes:
        d = acct.engine.decision
        if acct.initial_source == "unknown" and d["action"] in ("OPEN", "ADD"):
            # Floors measured from a guessed initial balance are no floors: nothing new until it is known.
            acct.engine.expire(d["command_id"])
            return self._refused_hold(chart, seq, utc_ms, R_INITIAL_BALANCE_UNKNOWN)
        unjournaled = self.journal_down is not None
        if unjournaled and not _safe_unjournaled(acct, d):
            # Nothing that adds risk, or that would do harm done twice, leaves without its journal record.
            acct.engine.expire(d["command_id"])
            return self._refused_hold(chart, seq, utc_ms, R_JOURNAL_UNAVAILABLE)
        cmd = wire.Command(
            reply_to=seq, command_id=d["command_id"], action=d["action"], symbol=d["symbol"], side=d["side"],
            volume=round(d["volume"], 8), sl=d["sl"], tp=d["tp"], ticket=d["ticket"], reason_code=d["reason_code"],
            reason=_reason_words(d))
        payload = wire.encode(cmd)
        # Write-ahead: in the journal before the bytes leave, so a crash right after cannot lose it. If the
        # journal cannot take it, the command is not sent at all, and its risk is released. A close-all goes
        # out without it while the journal is down (its id far above the journal's: see UNJOURNALED_ID_GAP),
        # and is written when the journal is back.
        if unjournaled:
            self._record(None, self._journal_command, acct, chart, seq, utc_ms, cmd, d, payload)
            log.error("%s %s: %s id %d sent without its journal record (the journal cannot write)", acct.login,
                      chart.symbol, d["action"], cmd.command_id)
        else:
            try:
                self._journal_command(acct, chart, seq, utc_ms, cmd, d, payload)
            except JournalError as exc:
                acct.engine.expire(cmd.command_id)
                self._journal_failed(exc)
                return self._refused_hold(chart, seq, utc_ms, R_JOURNAL_UNAVAILABLE)
            except Exception:
                acct.engine.expire(cmd.command_id)
                raise
        self._reserve_ids(cmd.command_id + 1)
        self._record(None, self.journal.record_decision, acct.login, chart.symbol, utc_ms, d)
        acct.sent[cmd.command_id] = self.clock()
        if d["cap"]:
            log.info("%s %s: %s %.2f lots capped by %s", acct.login, chart.symbol, d["action"], d["volume"], d["cap"])
        log.info("%s %s: %s %s %.2f (%s) id %d", acct.login, chart.symbol, d["action"], d["side"], d["volume"],
                 d["reason_code"], cmd.command_id)
        self._save(acct, utc_ms)
        return payload

    def _refused_hold(self, chart: Chart, seq: int, utc_ms: int, reason: int) -> bytes:
        """A HOLD the node gives instead of the engine's command, counted in the chart's runs like any HOLD."""
        chart.last_action, chart.last_reason = 0, reason
        if reason != chart.held_reason or utc_ms >= chart.held_until_ms:
            self._start_holds(chart, reason, utc_ms)
        chart.held_count += 1
        chart.held_last_ms = utc_ms
        return hold_reply(seq, chart.hold_tails.get(reason) or self._hold_tail(chart, reason))

    def _journal_command(self, acct: Account, chart: Chart, seq: int, utc_ms: int, cmd: wire.Command, d: dict,
                         payload: bytes) -> None:
        self.journal.record_command(
            command_id=cmd.command_id, account=acct.login, chart=chart.label, symbol=cmd.symbol, seq=seq,
            time_ms=utc_ms, action=cmd.action, side=cmd.side, volume=cmd.volume, price=d["price"], sl=cmd.sl,
            tp=cmd.tp, ticket=cmd.ticket, reason_code=cmd.reason_code, reason=cmd.reason, payload=payload)

    def _after_decision(self, acct: Account, utc_ms: int, now: float) -> None:
        engine = acct.engine
        acct.status = engine.status_key
        state = engine.state_code
        if state != acct.state:
            acct.state = state
            self._record(None, self.journal.record_transition, acct.login, utc_ms, STATE_NAMES[state[0]],
                         CODES[state[1]])
            log.warning("account %s: trading state %s (%s)", acct.login, STATE_NAMES[state[0]], WORDS[CODES[state[1]]])
            a = engine.account
            self.alerts.emit("trading_state", f"{acct.login}: {STATE_NAMES[state[0]]}",
                             f"trading state {readout.state_words(STATE_NAMES[state[0]], CODES[state[1]])}; equity "
                             f"{a['equity']:,.2f}, daily floor {a['daily_floor']:,.2f}, overall floor "
                             f"{a['overall_floor']:,.2f}")
            self._save(acct, utc_ms)
        if engine.day_key != acct.day_key:
            if acct.day_key:
                self._daily_summary(acct)
            acct.day_key = engine.day_key
            a = engine.export_state()["account"]
            acct.day_open_balance = a["day_start_balance"]
            self._record(None, self.journal.record_baseline, acct.login, _prague_day(engine.day_key),
                         day_start_balance=a["day_start_balance"], initial_balance=a["initial"],
                         peak_equity=a["day_peak_equity"], highest_eod_balance=a["highest_eod_balance"])
            self._save(acct, utc_ms)
        if now - acct.saved_at >= SAVE_STATE_EVERY_S:
            self._save(acct, utc_ms)

    def _save(self, acct: Account, utc_ms: int) -> None:
        acct.saved_at = self.clock()
        if self.journal_down is None:
            try:
                self.journal.save_engine_state(acct.login, utc_ms, self._state_to_save(acct))
                acct.unsaved_ms = None
                return
            except JournalError as exc:
                self._journal_failed(exc)
        acct.unsaved_ms = utc_ms   # only the latest state matters: saved when the journal writes again

    def _tick_ms(self, acct: Account) -> int:
        """The account's latest tick time (UTC ms), for a save outside the tick path; the wall clock before any."""
        latest = max((c.last_tick_ms for c in acct.charts.values()), default=NO_TIME_MS)
        if latest > NO_TIME_MS:
            return latest
        return int(acct.engine.export_state()["account"]["now_ms"]) or int(self.wall() * 1000)

    def _state_to_save(self, acct: Account) -> dict:
        state = acct.engine.export_state()
        # Which operator decision this state has seen: on restore, a newer one in the journal wins.
        state["operator_record"] = self.halt["record"]
        state["initial_source"] = acct.initial_source
        return state

    def _sync(self, acct: Account, chart: Chart, positions: list[dict[str, Any]], utc_ms: int) -> None:
        """Every position on the account into the engine's book; unknown symbols become shadows.

        The caller skips it when ``positions`` equals, field by field, what the book was last given
        (``acct.synced``): the sync would then set every value to what it already is, open and close nothing,
        and the journal would write nothing (it writes only what changed). When only the floating fields moved
        (the usual tick with positions open), only the profits are given to the book: a full sync would set
        the rest to what it already is, open and close nothing, and the journal would write nothing."""
        engine = acct.engine
        fixed = list(map(BOOK_FIXED, positions))
        if acct.synced is not None and fixed == acct.synced_fixed and engine.update_profits(
                [p["ticket"] for p in positions], [p["profit"] + p["swap"] + p["commission"] for p in positions]):
            acct.synced = positions
            return
        if not acct.book_reconciled:
            # Positions closed while the bridge was down are gone from the terminal's book: close them here too.
            gone = self._record([], self.journal.reconcile_positions, acct.login, [p["ticket"] for p in positions],
                                time_ms=utc_ms)
            if gone:
                log.warning("account %s: positions %s closed while the bridge was down", acct.login, gone)
                for ticket in gone:   # their deals, journaled before the restart, settle them now
                    settled = self._settle(acct, ticket)
                    if settled is not None and not settled["trade"]:
                        self._unseen_close(acct, ticket, settled["realized"])
            acct.book_reconciled = True
        own_magic = self.cfg.bridge.magic
        symbols = engine.symbols   # the engine's own list: it grows as shadows are added
        rows = []
        for p in positions:
            symbol = p["symbol"]
            if symbol not in symbols:
                add_symbol(engine, self.cfg, symbol, _SHADOW_SPEC, FeatureEngine(self.model))
                acct.shadow.add(symbol)
                log.warning("account %s: a position on %s, which has no chart: no new risk until one connects",
                            acct.login, symbol)
            opened = p["open_time_msc"]
            rows.append((p["ticket"], symbols.index(symbol), 1 if p["side"] == "BUY" else -1, p["volume"],
                         p["open_price"], 0.0 if symbol in acct.shadow else p["sl"], p["tp"],
                         p["profit"] + p["swap"] + p["commission"],
                         opened - chart.offset_ms if opened > 0 else utc_ms, p["magic"]))
            managed = p["magic"] == own_magic
            if self._record(False, self.journal.record_position_seen, acct.login, p, managed=managed,
                            time_ms=utc_ms) and not managed:
                log.warning("account %s: a manual position %d on %s (%s %.2f): counted in every limit",
                            acct.login, p["ticket"], symbol, p["side"], p["volume"])
        sync_book(engine, utc_ms, rows)
        acct.synced = positions
        acct.synced_fixed = fixed
        for trade in engine.closed_trades:
            self._record(None, self.journal.record_closed_trade, acct.login, trade)
            self._say_closed(acct, trade, self._settle(acct, trade["ticket"]))
        engine.closed_trades.clear()

    def _reconcile(self, acct: Account, positions: list[dict[str, Any]], utc_ms: int) -> None:
        """Commands with no RESULT past the timeout: settled against the positions, never re-sent."""
        timeout_s = self.cfg.bridge.command_timeout_ms / 1000.0
        now = self.clock()
        due = [command_id for command_id, sent_at in acct.sent.items() if now - sent_at >= timeout_s]
        if not due:
            return
        in_flight = {c["command_id"]: c for c in acct.engine.in_flight}
        for command_id in due:
            del acct.sent[command_id]
            waiting = in_flight.get(command_id)
            if waiting is not None and waiting["filled"]:
                # Filled, but its position never showed in the book (closed before any tick listed it, by
                # hand while the bridge was down, say): its risk must not stay counted for good, nor its entry
                # stand in for the next position of the symbol and side.
                acct.engine.expire(command_id)
                log.warning("account %s: command %d was filled but its position never showed in the book: "
                            "released", acct.login, command_id)
                continue
            comment = f"{wire.COMMENT_PREFIX}{command_id}"
            # Its position in the book, or a deal of it (a position already closed again, a netting fill).
            seen = any(p["comment"] == comment for p in positions) or self._read(
                False, self.journal.has_deal_commented, acct.login, comment)
            if command_id in in_flight:
                acct.engine.expire(command_id)
            self._record(None, self.journal.expire_command, command_id, utc_ms, "filled_seen" if seen else "not_seen")
            log.warning("account %s: command %d had no RESULT in %.0f s: %s", acct.login, command_id, timeout_s,
                        "its position is in the book" if seen else "no trace of it in the book; its risk is released")

    # ---- RESULT --------------------------------------------------------------------------------------------

    def _result(self, chart: Chart, msg: wire.TradeResult) -> None:
        acct = self.accounts[chart.account]
        self._check_owner(acct, msg.command_id, "RESULT.command_id", msg.seq)
        filled = msg.outcome in FILLED_OUTCOMES
        outcome = self._record("recorded", self.journal.record_result,
            command_id=msg.command_id, retcode=msg.retcode, ticket=msg.ticket, price=msg.price, volume=msg.volume,
            text=msg.text, time_ms=msg.time_msc - chart.offset_ms, filled=filled, outcome=msg.outcome, sl=msg.sl,
            tp=msg.tp)  # fmt: skip
        if outcome != "recorded":
            # The EA re-sends a RESULT it has not seen acknowledged after a reconnect: a duplicate is normal.
            self._notice(chart.identity, "RESULT ignored", logging.INFO, "chart %s: RESULT for command %d ignored (%s)",
                         chart.label, msg.command_id, outcome)
            return
        if msg.outcome in UNSETTLED_OUTCOMES:
            # Never sent again: it stays in flight, its risk counted, until its position or its absence settles
            # it when the command times out.
            log.warning("chart %s: command %d outcome %s (retcode %s): settled from the positions and deals",
                        chart.label, msg.command_id, msg.outcome, readout.retcode_words(msg.retcode))
            return
        acct.engine.on_result(msg.command_id, filled, msg.ticket)
        if not filled or not any(c["command_id"] == msg.command_id for c in acct.engine.in_flight):
            acct.sent.pop(msg.command_id, None)
        # else a fill the book has yet to show: it stays timed, and is released if the book never shows it.
        if not filled:
            log.warning("chart %s: command %d refused by the server: retcode %s (%s)", chart.label, msg.command_id,
                        readout.retcode_words(msg.retcode), msg.text)
            self.alerts.emit("order_refused", f"{acct.login} {chart.symbol}: order refused",
                             f"command {msg.command_id} refused by the server: {readout.retcode_words(msg.retcode)}"
                             f"{f' ({msg.text})' if msg.text else ''}")
        else:
            self._say_done(acct, chart, msg)
        self._save(acct, msg.time_msc - chart.offset_ms)

    def _say_done(self, acct: Account, chart: Chart, msg: wire.TradeResult) -> None:
        """The alert of a command carried out, in the words of what it did."""
        command = self._read(None, self.journal.command, msg.command_id) or {}
        action, done = command.get("action", ""), readout.retcode_words(msg.retcode)
        if action == "MODIFY":
            self.alerts.emit("fill", f"{acct.login} {chart.symbol}: stops moved",
                             f"command {msg.command_id}: position {msg.ticket} SL {msg.sl or command.get('sl') or 'none'}"
                             f", TP {msg.tp or command.get('tp') or 'none'} ({done})")
        elif action in ("CLOSE", "CLOSE_ALL"):
            self.alerts.emit("fill", f"{acct.login} {chart.symbol}: close done",
                             f"command {msg.command_id} ({action}): {msg.volume:.2f} lots at {msg.price}, position "
                             f"{msg.ticket} ({done})")
        else:
            self.alerts.emit("fill", f"{acct.login} {chart.symbol}: filled",
                             f"command {msg.command_id} {command.get('side', '')} filled: {msg.volume:.2f} lots at "
                             f"{msg.price}, ticket {msg.ticket} ({done})".replace("  ", " "))

    def _check_owner(self, acct: Account, command_id: int, field: str, seq: int) -> None:
        """A chart settles only its own account's commands: anything else is refused, in words that name nothing
        of the other account."""
        if command_id in acct.sent or any(c["command_id"] == command_id for c in acct.engine.in_flight):
            return
        owner = self.journal.command_account(command_id)
        if owner is None:
            raise wire.ProtocolError("INVALID_VALUE", f"{field} {command_id}: no such command in this bridge's "
                                     "journal", seq)
        if owner != acct.login:
            raise wire.ProtocolError("FORBIDDEN", f"{field} {command_id}: not a command of this chart's account",
                                     seq)

    # ---- DEAL ----------------------------------------------------------------------------------------------

    def _deal(self, chart: Chart, msg: wire.Deal) -> None:
        """Journal a deal of the chart's own account; a deal of another account's command or position is refused."""
        acct = self.accounts[chart.account]
        owned = _command_of(msg.comment)
        if owned:
            owner = self.journal.command_account(owned)
            if owner is not None and owner != acct.login:
                raise wire.ProtocolError("FORBIDDEN", f"DEAL.comment {msg.comment}: not a command of this "
                                         "chart's account", msg.seq)
        # A position id is not judged: tickets are unique per trade server only, so two accounts may well share
        # one. A deal is journaled, and settles, under the chart's own account only, so it touches no other.
        if not self._record(False, self.journal.record_deal, acct.login, msg.model_dump()):
            return   # a deal already journaled (the EA re-sends): settled when it first came
        command_id = _command_of(msg.comment)
        changed = bool(command_id) and self._filled_by_deal(acct, command_id, msg.position_id)
        if msg.entry in ("OUT", "OUT_BY", "INOUT") and msg.position_id:
            changed = self._closed_by_deal(acct, msg.position_id) or changed
        if changed:
            # What the deal settled is saved with the engine's state at once: a bridge killed now must not
            # come back with the command in flight, its stop counted against a flat account.
            self._save(acct, self._tick_ms(acct))

    def _filled_by_deal(self, acct: Account, command_id: int, position_id: int) -> bool:
        """A deal carrying a command's comment (an entry's fill, or a close's): the command was carried out,
        whatever its RESULT says or whether it comes (a timeout, a lost connection). An entry's risk stays
        counted until the book shows the position, or the deals close it."""
        if command_id not in acct.sent and not any(c["command_id"] == command_id for c in acct.engine.in_flight):
            return False
        acct.engine.on_result(command_id, True, position_id)
        acct.sent.pop(command_id, None)
        self._record(None, self.journal.expire_command, command_id, self._tick_ms(acct), "filled_seen")
        return True

    def _closed_by_deal(self, acct: Account, position_id: int) -> bool:
        """A closing deal: the closed trade takes the realized money from the deals. A position no book of this
        bridge saw close is settled here (see ``_unseen_close``)."""
        settled = self._settle(acct, position_id)
        if settled is None or settled["trade"]:
            return settled is not None
        if any(p["ticket"] == position_id for p in acct.engine.positions):
            return False   # the book still holds it: the next tick's sync closes it and records the trade
        self._unseen_close(acct, position_id, settled["realized"])
        return True

    def _unseen_close(self, acct: Account, position_id: int, realized: float) -> None:
        """A position closed where no book of this bridge saw it close: opened and closed between two ticks (the
        trader's own too), or closed while the bridge was down or restarting. The command that opened it, if one
        did, would stay in flight for good, its stop counted against the headroom of a flat account: it is
        released; and the closed trade is made from the position's deals."""
        opened_by = self._opened_by(acct, position_id)
        for c in acct.engine.in_flight:
            if c.get("fill_ticket") == position_id or opened_by == c["command_id"]:
                acct.engine.expire(c["command_id"])
                acct.sent.pop(c["command_id"], None)
        if opened_by and self.journal.command_account(opened_by) != acct.login:
            opened_by = 0
        self._unseen_trade(acct, position_id, opened_by, realized)
        log.info("account %s: position %d closed where no book saw it close: settled from its deals (%.2f)",
                 acct.login, position_id, realized)

    def _unseen_trade(self, acct: Account, position_id: int, command_id: int, realized: float) -> None:
        """The closed trade of a position the book never saw close, made from its deals, its command (0: none,
        the trader's own or older than the journal) and, where the deals do not say how it opened, the position
        as the journal last saw it."""
        deals = self._read([], self.journal.position_deals, acct.login, position_id)
        if not deals:
            return
        first = next((d for d in deals if d["entry"] in ("IN", "INOUT")), None)
        seen = self._read(None, self.journal.position_seen, acct.login, position_id) if first is None else None
        offset_ms = next(iter(acct.charts.values())).offset_ms if acct.charts else 0
        if first is not None:
            side, open_price, open_ms, magic = first["side"], first["price"], first["time_msc"], first["magic"]
        elif seen is not None:
            side, open_price, open_ms, magic = seen["side"], seen["open_price"], seen["open_time_msc"], seen["magic"]
        else:   # opened before anything of it was journaled: its first close says the rest
            out = deals[0]
            side = "SELL" if out["side"] == "BUY" else "BUY"
            open_price, open_ms, magic = out["price"], out["time_msc"], out["magic"]
        volume = sum(d["volume"] for d in deals if d["entry"] in ("IN", "INOUT"))
        if not volume:
            volume = seen["volume"] if seen else sum(d["volume"] for d in deals if d["entry"] in ("OUT", "OUT_BY"))
        command = self.journal.command(command_id) if command_id else None
        risk = self.journal.decision_risk(command_id) if command_id else 0.0
        trade = {
            "ticket": position_id, "symbol": deals[0]["symbol"], "side": side,
            "volume": volume,
            "open_price": open_price, "open_time_ms": open_ms - offset_ms,
            "close_time_ms": deals[-1]["time_msc"] - offset_ms, "profit": realized,
            "r_multiple": realized / risk if risk > 0 else 0.0, "mfe_r": 0.0, "mae_r": 0.0,
            "managed": magic == self.cfg.bridge.magic, "stage": "OPEN", "adds": 0, "features_at_entry": None,
            "features_at_exit": None, "risk_money": risk,
            "r_dist": abs(open_price - command["sl"]) if command and command["sl"] else 0.0,
        }
        if self._record(False, self.journal.record_closed_trade, acct.login, trade):
            settled = self._record(None, self.journal.settle_trade, acct.login, position_id)
            acct.engine.count_closed_trade(realized, risk)
            self._say_closed(acct, trade, settled)

    def _say_closed(self, acct: Account, trade: dict, settled: dict | None) -> None:
        """The close alert: the realized money once the deals settle it, else the book's last profit."""
        money = settled["realized"] if settled else trade["profit"]
        reason = (settled or {}).get("close_reason")
        why = reason.replace("_", " ").lower() if reason else "the book shows it closed (its deals not in yet)"
        self.alerts.emit("close", f"{acct.login} {trade['symbol']}: position closed",
                         f"position {trade['ticket']} {trade['side']} {trade['volume']:.2f} lots closed: "
                         f"{why}; result {money:+,.2f}")

    @staticmethod
    def _read(default: Any, read, *args: Any) -> Any:
        """A journal read on a settlement path; ``default`` when the journal cannot be read: nothing is settled
        from it now, and the command's timeout settles it later."""
        try:
            return read(*args)
        except JournalError:
            return default

    def _opened_by(self, acct: Account, position_id: int) -> int:
        for d in self._read([], self.journal.position_deals, acct.login, position_id):
            if d["entry"] in ("IN", "INOUT"):
                return _command_of(d["comment"])
        return 0

    def _settle(self, acct: Account, ticket: int) -> dict | None:
        """The trade of ``ticket`` settled from its deals, once they close it; the engine's losing streak and
        performance window then count the realized money."""
        settled = self._record(None, self.journal.settle_trade, acct.login, ticket)
        if settled is not None and settled["trade"]:
            acct.engine.settle_closed_trade(ticket, settled["realized"])
        return settled

    # ---- CLOCK ---------------------------------------------------------------------------------------------

    def _clock(self, chart: Chart, msg: wire.Clock) -> None:
        """The server's UTC offset changed (a daylight-saving switch): later times convert with the new one."""
        new_ms = msg.server_utc_offset_s * 1000
        if new_ms != chart.offset_ms:
            log.warning("chart %s: server UTC offset %+.1f h -> %+.1f h", chart.label, chart.offset_ms / 3_600_000,
                        new_ms / 3_600_000)
            chart.offset_ms = new_ms

    # ---- FAILSAFE ------------------------------------------------------------------------------------------

    def _failsafe(self, chart: Chart, msg: wire.Failsafe) -> None:
        self._record(None, self.journal.record_failsafe, chart.account, chart.label, chart.symbol,
                     msg.time_msc - chart.offset_ms, msg.kind, msg.detail)
        # The EA acted without the bridge: the trader must hear of it even when all is well again.
        level = logging.INFO if msg.kind == "BRIDGE_BACK" else logging.ERROR
        self.alerts.emit("failsafe", f"{chart.account} {chart.symbol}: EA failsafe {msg.kind}",
                         f"the EA on {chart.symbol} acted on its own: {msg.kind}: {msg.detail or 'no detail given'}")
        self._notice(chart.identity, f"FAILSAFE {msg.kind}", level, "chart %s (%s): EA failsafe %s: %s", chart.label,
                     chart.symbol, msg.kind, msg.detail or "no detail given")

    def _notice(self, identity: bytes, kind: str, level: int, text: str, *args: Any) -> None:
        """A line about something a chart said, at most one per chart and kind per bridge.log_refusals_every_s
        (every such message is still journaled or counted): a chart repeating it cannot fill the disk."""
        since, untold = self.notices.note(identity, kind, self.clock())
        if since is not None:
            log.log(level, text + (f" ({since} more like it since the last line)" if since else ""), *args)
        if untold:
            log.warning("%d more messages of charts past the last lines of their kind not logged", untold)

    # ---- housekeeping and the operator -----------------------------------------------------------------------

    def housekeeping(self) -> None:
        """Between frames: the journal watched (and written again once it can), silent charts marked stale and
        forgotten in time, accounts with no chart left forgotten, the refusal counts written."""
        now = self.clock()
        self._watch_journal()
        stale_s = self.cfg.bridge.stale_after_ms / 1000.0
        forget_s = self.cfg.bridge.forget_after_ms / 1000.0
        for chart in list(self.charts.values()):
            self._hand_over_holds(chart)
            silent = now - chart.last_seen
            if silent > forget_s:
                log.info("chart %s (%s): silent for %.0f s, forgotten", chart.label, chart.symbol, silent)
                self._retire(chart)
                continue
            stale = silent > stale_s
            if stale and not chart.said_stale:
                log.warning("chart %s (%s): silent for %.1f s, marked stale", chart.label, chart.symbol, silent)
                self.alerts.emit("ea_silent", f"{chart.account} {chart.symbol}: EA silent",
                                 f"the EA on {chart.symbol} (chart {chart.label}) has been silent for {silent:.0f} s")
            elif chart.said_stale and not stale:
                log.info("chart %s (%s): heard again", chart.label, chart.symbol)
                self.alerts.emit("ea_back", f"{chart.account} {chart.symbol}: EA back",
                                 f"the EA on {chart.symbol} (chart {chart.label}) is heard again")
            chart.said_stale = stale
        for acct in list(self.accounts.values()):
            self._watch_headroom(acct)
            for label, chart in list(acct.charts.items()):
                if chart.closed and now - chart.last_seen > forget_s:
                    del acct.charts[label]
            if not acct.charts:
                self._forget_account(acct)
        self._quietly(self.journal.flush)

    def _retire(self, chart: Chart, keep_in_status: bool = False) -> None:
        """The chart is served no more (BYE, a new HELLO, silence): its HOLD counts go to the journal and its
        identity is free. With ``keep_in_status`` it stays listed as closed until forgotten."""
        self._hand_over_holds(chart)
        chart.closed = True
        if self.charts.get(chart.identity) is chart:
            del self.charts[chart.identity]
        acct = chart.acct
        if acct is not None and not keep_in_status and acct.charts.get(chart.label) is chart:
            del acct.charts[chart.label]

    def _retire_stale(self, now: float) -> None:
        stale_s = self.cfg.bridge.stale_after_ms / 1000.0
        for chart in [c for c in self.charts.values() if now - c.last_seen > stale_s]:
            log.info("chart %s (%s): stale, retired to admit a new chart", chart.label, chart.symbol)
            self._retire(chart)

    def _forget_account(self, acct: Account) -> None:
        """No chart of the account is left: its state goes to the journal and the memory is freed; the next
        HELLO for it restores it. Kept while the journal cannot take its state."""
        self._save(acct, self._tick_ms(acct) if acct.unsaved_ms is None else acct.unsaved_ms)
        if acct.unsaved_ms is not None:
            return
        log.info("account %s: no chart left, forgotten (its state is in the journal)", acct.login)
        del self.accounts[acct.login]
        self.journal.forget_account(acct.login)

    # ---- the journal: write-ahead, and what happens when it cannot write --------------------------------------

    def _record(self, default: Any, write, *args, **kwargs) -> Any:
        """A journal record that must not be lost but must not stop trading either: written now, or, while the
        journal cannot write, kept in order and written when it can. ``default`` stands for the answer then."""
        if self.journal_down is None:
            try:
                return write(*args, **kwargs)
            except JournalError as exc:
                if _is_refusal(exc):
                    raise   # the journal refused the record itself (a duplicate id): not a fault of the disk
                self._journal_failed(exc)
        if len(self._backlog) < MAX_BACKLOG:
            self._backlog.append((write, args, kwargs))
        else:
            self._backlog_lost += 1
        return default

    def _quietly(self, write, *args) -> None:
        """A write whose data the journal keeps in memory when it fails (the refusal counts)."""
        if self.journal_down is not None:
            return
        try:
            write(*args)
        except JournalError as exc:
            self._journal_failed(exc)

    def _journal_failed(self, exc: Exception) -> None:
        if self.journal_down is None:
            self.journal_down = str(exc)
            self._journal_said = self.clock()
            # Ids of anything sent from now on without the journal stay clear of the ids a restart hands out.
            self._reserve_ids(self.next_command_id + UNJOURNALED_ID_GAP)
            log.critical("JOURNAL UNAVAILABLE: %s. The bridge goes on answering every tick but opens no new risk "
                         "(HOLD %s); closes still go out. It takes risk again by itself once the journal writes.",
                         exc, CODES[R_JOURNAL_UNAVAILABLE])
            self.alerts.emit("journal_unavailable", "journal unavailable: no new risk",
                             f"the journal cannot write ({exc}); the bridge answers every tick, opens no new risk, "
                             "closes still go out")

    def _watch_journal(self) -> None:
        """Notice a journal file deleted or replaced under the bridge, and a journal that writes again."""
        if self.journal_lost:
            self._alarm()
            return
        problem = self.journal.file_problem()
        if problem == "deleted":
            try:
                self.journal.restore_file()
                log.critical("the journal file %s was deleted under the running bridge: written back from memory, "
                             "nothing lost", self.journal.path)
            except JournalError as exc:
                self._journal_failed(JournalError(f"the journal file {self.journal.path} was deleted and cannot "
                                                  f"be written back yet: {exc}"))
                return
        elif problem is not None:
            self.journal_lost = True
            self._journal_failed(JournalError(
                f"the journal file {self.journal.path} was {problem} under the running bridge; nothing more is "
                "written to either: restart the bridge (it then opens the file at that path)"))
            return
        if self.journal_down is not None:
            self._journal_back()

    def _journal_back(self) -> None:
        try:
            self.journal.probe()
            while self._backlog:
                write, args, kwargs = self._backlog[0]
                try:
                    write(*args, **kwargs)
                except JournalError as exc:
                    if not _is_refusal(exc):
                        raise
                    log.error("journal: a record kept while it could not write was refused: %s", exc)
                self._backlog.pop(0)
            self.journal.flush()
            was, self.journal_down = self.journal_down, None
            for acct in self.accounts.values():
                if acct.unsaved_ms is not None:
                    self._save(acct, acct.unsaved_ms)
        except JournalError:
            self._alarm()
            return
        if self.journal_down is None:
            lost = f"; {self._backlog_lost} records could not be kept and are lost" if self._backlog_lost else ""
            self._backlog_lost = 0
            log.critical("journal writes again (it failed with: %s): everything kept was written%s; new risk "
                         "allowed again", was, lost)
            self.alerts.emit("journal_back", "journal writes again", f"everything kept was written{lost}; new risk "
                             "allowed again")

    def _alarm(self) -> None:
        now = self.clock()
        if now - self._journal_said >= JOURNAL_ALARM_EVERY_S:
            self._journal_said = now
            log.critical("JOURNAL STILL UNAVAILABLE: %s. No new risk; %d records wait to be written.",
                         self.journal_down, len(self._backlog))

    def set_halt(self, halted: bool, flatten: bool, by: str) -> None:
        """The operator's halt or resume: journaled first (raises JournalError when it cannot be, and nothing
        changes), then applied and every account's state saved with it."""
        self.journal.set_halt(halted, flatten=flatten, by=by, time_ms=int(self.wall() * 1000))
        self.halt = self.journal.halt_state()
        for acct in self.accounts.values():
            if halted:
                acct.engine.halt(flatten=flatten)
            else:
                acct.engine.resume()
            self._save(acct, self._tick_ms(acct))
        log.warning("operator: %s by %s", ("halt and flatten" if flatten else "halt") if halted else "resume", by)
        if halted:
            self.alerts.emit("halt", "operator halt", readout.halt_words(self.halt))
        else:
            self.alerts.emit("resume", "operator resume", f"trading resumed by {by}")

    def _watch_headroom(self, acct: Account) -> None:
        """Alert when a loss limit is 50 %, 70 % and 90 % used: once per threshold, limit and Prague day."""
        a = acct.engine.account
        day = acct.engine.day_key
        for limit, share, room in (("daily loss limit", a["daily_used_share"], a["equity"] - a["daily_floor"]),
                                   ("maximum loss", a["overall_used_share"], a["equity"] - a["overall_floor"])):
            said_day, said = acct.headroom_said.get(limit, (day, 0.0))
            if said_day != day:
                said = 0.0
            crossed = max((t for t in HEADROOM_WARNINGS if share >= t), default=0.0)
            if crossed > said:
                self.alerts.emit("headroom", f"{acct.login}: {limit} {crossed * 100:.0f} % used",
                                 f"{limit} {share * 100:.0f} % used: {room:,.2f} may still be lost before the floor; "
                                 f"equity {a['equity']:,.2f}")
                said = crossed
            acct.headroom_said[limit] = (day, said)
        breaker = a["circuit_breaker_until_ms"]
        if breaker != acct.breaker_said:
            acct.breaker_said = breaker
            if breaker:
                g = self.cfg.guards
                self.alerts.emit("trading_state", f"{acct.login}: circuit breaker",
                                 f"circuit breaker tripped: equity {a['equity']:,.2f}, {g.circuit_breaker_pct:g} % or "
                                 f"more below the day's peak; entries paused until {readout.clock_words(breaker)}"
                                 f"{', every position closed' if g.circuit_breaker_action == 'flatten' else ''}")

    def _daily_summary(self, acct: Account) -> None:
        """At the Prague reset: the day that ended, in the numbers FTMO shows."""
        a = acct.engine.account
        f = readout.ftmo_picture(a, self.cfg.ftmo, self._tick_ms(acct))
        day_profit = a["day_start_balance"] - acct.day_open_balance if acct.day_open_balance else 0.0
        target = f"{f['profit']:+,.2f} of the target {f['profit_target']:,.2f}" if f["profit_target"] else \
            f"{f['profit']:+,.2f}"
        self.alerts.emit("daily_summary", f"{acct.login}: day closed",
                         f"Prague day {_prague_day(acct.day_key)} closed: {day_profit:+,.2f}; balance "
                         f"{a['balance']:,.2f}, equity {a['equity']:,.2f}; profit {target}; trading days "
                         f"{a['trading_days']} of {self.cfg.ftmo.min_trading_days}; new daily floor "
                         f"{a['daily_floor']:,.2f}")

    def status(self) -> dict[str, Any]:
        now = self.clock()
        stale_s = self.cfg.bridge.stale_after_ms / 1000.0
        requests = dict(self.requests)
        if self.ticks_received:
            requests["TICK"] = self.ticks_received
        out = {"halt": self.halt, "errors": dict(self.errors), "requests": requests, "accounts": {},
               "journal": {"path": str(self.journal.path), "journal_id": self.journal.journal_id,
                           "writing": self.journal_down is None, "problem": self.journal_down,
                           "waiting_records": len(self._backlog)},
               "alerts": self.alerts.status()}
        for login, acct in self.accounts.items():
            a = acct.engine.account
            a["headroom_pct"] = 100.0 * a["headroom"] / a["initial_balance"] if a["initial_balance"] else 0.0
            a["initial_balance_source"] = acct.initial_source
            a["day_start_balance_source"] = acct.day_start_source
            a["state_words"] = readout.state_words(a["state"], a["state_reason"])
            ftmo = readout.ftmo_picture(a, self.cfg.ftmo, self._tick_ms(acct))
            positions = acct.engine.positions
            for p in positions:
                spec = acct.specs.get(p["symbol"])
                per_price = spec["tick_value"] / spec["tick_size"] if spec and spec["tick_size"] > 0 else None
                p.update(readout.position_risk(p, per_price, ftmo["permitted_loss_today"]))
            out["accounts"][login] = {
                "account": a,
                "ftmo": ftmo,
                "positions": positions,
                "in_flight": acct.engine.in_flight,
                "charts": [self._chart_status(acct, c, now, stale_s) for c in acct.charts.values()],
                "refusals_today": self._refusals_today(acct),
            }
            out["accounts"][login]["refusal_words"] = {
                code: WORDS.get(code, code) for code in out["accounts"][login]["refusals_today"]}
        return out

    def _chart_status(self, acct: Account, c: Chart, now: float, stale_s: float) -> dict[str, Any]:
        code = CODES[c.last_reason]
        values = self._refusal_values(acct, c) if c.last_action == 0 and c.last_tick_ms > NO_TIME_MS else {}
        return {
            "chart": c.label, "symbol": c.symbol, "ticks": c.ticks, "closed": c.closed,
            "stale": not c.closed and now - c.last_seen > stale_s,
            "last_tick_age_s": now - c.last_seen if c.last_seen else None,
            # The market's own time of the chart's last tick (UTC ms), beside how long ago the bridge heard it.
            "market_time_ms": c.last_tick_ms if c.last_tick_ms > NO_TIME_MS else None,
            "server_utc_offset_s": c.offset_ms // 1000,
            "answer_ms": c.answer_ms, "round_trip_ms": c.round_trip_ms,
            "last_decision": ACTION_NAMES[c.last_action], "last_reason": code,
            "values": values, "why": readout.refusal_words(code, values),
        }

    def _refusal_values(self, acct: Account, c: Chart) -> dict[str, Any]:
        """The numbers an entry filter compared, as they stand after the chart's last tick, with the thresholds
        they were held to: what turns SCORE_LOW into "score 48 < 55"."""
        from mt5bridge.config import symbol_settings

        fe = acct.engine.feature_engine(c.sym)
        entry = self.cfg.entry
        confidence = fe.confidence
        # Below the usual threshold, that one refused it; above it, only the stricter high-volatility one can have.
        min_confidence = entry.min_confidence if confidence < entry.min_confidence else entry.min_confidence_high_vol
        values: dict[str, Any] = {"score": fe.score, "min_score": entry.min_score, "confidence": confidence,
                                  "min_confidence": min_confidence}
        spec = acct.specs.get(c.symbol)
        bar = fe.open_bar(0)
        if spec and spec["point"] > 0 and bar is not None:
            bps = float(fe.features[_SPREAD_BPS])
            if 0.0 <= bps < 20_000.0:
                bid = bar[4]   # bars are built from the bid; the feature is the spread over the mid
                values["spread_points"] = bps * bid / 1e4 / (1.0 - bps / 2e4) / spec["point"]
                values["max_spread_points"] = (symbol_settings(self.cfg, c.symbol).max_spread_points
                                               or entry.max_spread_points)
        values["headroom"] = acct.engine.decision["headroom"]
        return values

    def _refusals_today(self, acct: Account) -> dict[str, int]:
        """The account's HOLDs of today (the UTC day of its latest tick) by reason, as the journal counts them."""
        day = _prague_day(self._tick_ms(acct) // DAY_MS)   # the date of a day number, as the journal keys it
        counts: Counter[str] = Counter()
        for row in self._read([], self.journal.refusals, acct.login, day):
            counts[row["reason_code"]] += row["count"]
        return dict(counts)

    def close(self) -> None:
        """Save every account's state and flush the journal: the last act of a clean shutdown. A journal that
        cannot write is said so loudly, with what could not be written; the shutdown goes on."""
        if self.journal_down is not None and not self.journal_lost:
            self._journal_back()
        for acct in self.accounts.values():
            self._save(acct, self._tick_ms(acct))
        for chart in self.charts.values():
            self._hand_over_holds(chart)
        self._quietly(self.journal.flush)
        if self.journal_down is not None:
            log.critical("shutting down with the journal unavailable (%s): %d records and the latest state of %d "
                         "accounts could not be written", self.journal_down, len(self._backlog),
                         sum(a.unsaved_ms is not None for a in self.accounts.values()))


def _peer_words(peer: str | None) -> str:
    return f", from {peer}" if peer else ""


def _command_of(comment: str) -> int:
    """The command id in an order's comment ``mt5b:<id>``; 0 for any other comment."""
    if not comment.startswith(wire.COMMENT_PREFIX):
        return 0
    try:
        return max(0, int(comment[len(wire.COMMENT_PREFIX):]))
    except ValueError:
        return 0


def _safe_unjournaled(acct: Account, d: dict) -> bool:
    """Whether a command may be sent while the journal cannot record it: only what takes risk off and does no
    harm done twice, a close-all or the close of a whole position (a second attempt finds nothing to close). A
    partial close twice would close too much; an entry, an add or a stop moved is new risk or could be."""
    if d["action"] == "CLOSE_ALL":
        return True
    if d["action"] != "CLOSE":
        return False
    held = next((p["volume"] for p in acct.synced or () if p["ticket"] == d["ticket"]), None)
    return held is not None and d["volume"] >= held - 1e-9


def _is_refusal(exc: JournalError) -> bool:
    """The journal refused the record itself (a command id it already holds, a constraint), as opposed to
    failing to write it."""
    import sqlite3

    return isinstance(exc, RecordRefused) or isinstance(exc.__cause__, sqlite3.IntegrityError)


def _json_str(text: str) -> bytes:
    return json.dumps(text).encode("utf-8")


def _reason_words(d: dict) -> str:
    words = d["reason"]
    if d["action"] in ("OPEN", "ADD"):
        words += f"; score {d['score']:.0f}, confidence {d['confidence']:.2f}, risk {d['risk_money']:.2f}"
    if d["cap"]:
        words += f"; capped by {d['cap']}"
    return words


def _prague_day(day_key: int) -> str:
    from datetime import date, timedelta

    return (date(1970, 1, 1) + timedelta(days=day_key)).isoformat()
