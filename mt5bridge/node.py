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

from mt5bridge import protocol as wire
from mt5bridge.config import Config, config_from_dict
from mt5bridge.decision import ACTION_NAMES, STATE_NAMES, add_symbol, build_engine, sync_book
from mt5bridge.engine import TIMEFRAME_SECONDS, FeatureEngine
from mt5bridge.fastwire import hold_reply, read_tick, tick_values
from mt5bridge.reasons import CODES, WORDS

log = logging.getLogger("mt5bridge.node")

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


class Node:
    def __init__(self, cfg: Config, journal, *, model: str | None = None, clock=time.monotonic) -> None:
        self.cfg = cfg
        self.journal = journal
        self.model = model
        self.clock = clock
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
                return self._remember(self._hello(identity, msg, now), identity)
            if chart is None:
                raise wire.ProtocolError("NOT_INTRODUCED", f"{msg.type} before HELLO from this chart", msg.seq)
            if msg.type == "WARMUP":
                self._warmup(chart, msg)
            elif msg.type == "RESULT":
                self._result(chart, msg)
            elif msg.type == "DEAL":
                self.journal.record_deal(chart.account, msg.model_dump())
            elif msg.type == "FAILSAFE":
                self._failsafe(chart, msg)
            elif msg.type == "CLOCK":
                self._clock(chart, msg)
            elif msg.type == "BYE":
                chart.closed = True
                log.info("chart %s closed: %s", chart.label, msg.reason or "no reason given")
            return None
        except wire.ProtocolError as exc:
            return self._refuse(identity, exc)
        except ValueError as exc:
            # The engine refused something the protocol let through (a warm-up bar out of order, ...).
            return self._refuse(identity, wire.ProtocolError("INVALID_VALUE", str(exc), msg.seq))

    def _refuse(self, identity: bytes, exc: wire.ProtocolError) -> bytes:
        # Every refusal is counted and answered; the log hears of them at a bounded rate (RefusalLog).
        self.errors[exc.code] += 1
        refusals = self.__dict__.get("refusals")
        if refusals is None:   # made with the first refusal: most bridges never refuse a frame
            refusals = self.refusals = RefusalLog(self.cfg.bridge.log_refusals_every_s)
        since, untold = refusals.note(identity, exc.code, self.clock())
        if since is not None:
            log.warning("refused a frame from %s: %s: %s%s", RefusalLog.printable(identity.decode("utf-8", "replace")),
                        exc.code, RefusalLog.printable(exc.message),
                        f" ({since} more refused for {exc.code} since this chart's last line)" if since else "")
        if untold:
            log.warning("refused %d more frames since the last lines of their charts and reasons, or from charts "
                        "past the %d followed one by one", untold, refusals.max_pairs)
        return wire.encode(exc.to_reply())

    def _remember(self, reply: bytes, identity: bytes) -> bytes:
        self.charts[identity].last_reply = reply
        return reply

    # ---- HELLO ---------------------------------------------------------------------------------------------

    def _account(self, hello: wire.Hello) -> Account:
        login = str(hello.login)
        acct = self.accounts.get(login)
        if acct is not None:
            return acct
        cfg = self.cfg
        if cfg.account.initial_balance == 0 and hello.initial_balance:
            data = cfg.model_dump(mode="json", by_alias=True)
            data["account"]["initial_balance"] = hello.initial_balance
            cfg = config_from_dict(data, "the configuration with the EA's initial balance")
        engine = build_engine(cfg, cfg.bridge.magic, self.journal.next_command_id())
        saved = self.journal.load_engine_state(login)
        if saved:
            engine.restore_state(saved)
            log.info("account %s: state restored from the journal (day start balance %.2f, %d commands in flight)",
                     login, saved["account"]["day_start_balance"], len(saved["in_flight"]))
        if self.halt["halted"]:
            engine.halt(flatten=self.halt["flatten"])
        acct = Account(login, engine, hello.currency)
        acct.state = engine.state_code
        for pending in self.journal.pending_commands(login):
            acct.sent[pending["command_id"]] = self.clock()
        self.accounts[login] = acct
        return acct

    def _spec(self, hello: wire.Hello) -> dict[str, Any]:
        return dict(point=hello.point, tick_size=hello.tick_size, tick_value=hello.tick_value,
                    contract_size=hello.contract_size, volume_min=hello.volume_min, volume_step=hello.volume_step,
                    volume_max=hello.volume_max, digits=hello.digits, stops_level=hello.stops_level,
                    freeze_level=hello.freeze_level, margin_per_lot=hello.margin_per_lot)

    def _hello(self, identity: bytes, hello: wire.Hello, now: float) -> bytes:
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
        label = identity.decode("utf-8", "replace")
        previous = self.charts.get(identity)
        if previous is not None:
            self._hand_over_holds(previous)
        chart = Chart(identity, label, acct.login, hello.symbol, sym, hello.server_utc_offset_s * 1000, acct,
                      last_seq=hello.seq, last_seen=now, live_from_ms=live_from_ms)
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
            if seq <= chart.last_seq:
                if seq == chart.last_seq and chart.last_reply is not None:
                    return chart.last_reply   # a re-send: the same answer, never a second command
                raise wire.ProtocolError("SEQUENCE", f"TICK.seq {seq} is not after {chart.last_seq}", seq)
            utc_ms = time_msc - chart.offset_ms
            if utc_ms < chart.last_tick_ms:
                raise wire.ProtocolError(
                    "TIME_BACKWARDS", f"TICK.time_msc {time_msc} is before the previous tick's", seq)
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
            # The engine refused something the protocol let through (a tick it cannot place in time, ...).
            return self._refuse(identity, wire.ProtocolError("INVALID_VALUE", str(exc), seq))
        chart.last_reply = reply
        chart.answer_ms += 0.05 * ((self.clock() - now) * 1000.0 - chart.answer_ms)
        return reply

    def _start_holds(self, chart: Chart, reason: int, utc_ms: int) -> None:
        """A new run of HOLDs (another reason, or a new UTC day): the one before goes to the journal."""
        self._hand_over_holds(chart)
        chart.held_reason = reason
        chart.held_first_ms = utc_ms
        chart.held_until_ms = utc_ms - utc_ms % DAY_MS + DAY_MS

    def _hand_over_holds(self, chart: Chart) -> None:
        """The chart's HOLDs counted so far into the journal's refusal counts; the next HOLD starts a run."""
        if chart.held_count:
            self.journal.record_refusal(chart.account, chart.symbol, chart.held_first_ms, CODES[chart.held_reason],
                                        chart.held_count, chart.held_last_ms)
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
        cmd = wire.Command(
            reply_to=seq, command_id=d["command_id"], action=d["action"], symbol=d["symbol"], side=d["side"],
            volume=round(d["volume"], 8), sl=d["sl"], tp=d["tp"], ticket=d["ticket"], reason_code=d["reason_code"],
            reason=_reason_words(d))
        payload = wire.encode(cmd)
        # Write-ahead: in the journal before the bytes leave, so a crash right after cannot lose it. If the
        # journal cannot take it, the command is not sent at all, and its risk is released.
        try:
            self._journal_command(acct, chart, seq, utc_ms, cmd, d, payload)
        except Exception:
            acct.engine.expire(cmd.command_id)
            raise
        self.journal.record_decision(acct.login, chart.symbol, utc_ms, d)
        acct.sent[cmd.command_id] = self.clock()
        if d["cap"]:
            log.info("%s %s: %s %.2f lots capped by %s", acct.login, chart.symbol, d["action"], d["volume"], d["cap"])
        log.info("%s %s: %s %s %.2f (%s) id %d", acct.login, chart.symbol, d["action"], d["side"], d["volume"],
                 d["reason_code"], cmd.command_id)
        self._save(acct, utc_ms)
        return payload

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
            self.journal.record_transition(acct.login, utc_ms, STATE_NAMES[state[0]], CODES[state[1]])
            log.warning("account %s: trading state %s (%s)", acct.login, STATE_NAMES[state[0]], WORDS[CODES[state[1]]])
            self._save(acct, utc_ms)
        if engine.day_key != acct.day_key:
            acct.day_key = engine.day_key
            a = engine.export_state()["account"]
            self.journal.record_baseline(acct.login, _prague_day(engine.day_key),
                                         day_start_balance=a["day_start_balance"], initial_balance=a["initial"],
                                         peak_equity=a["day_peak_equity"], highest_eod_balance=a["highest_eod_balance"])
            self._save(acct, utc_ms)
        if now - acct.saved_at >= SAVE_STATE_EVERY_S:
            self._save(acct, utc_ms)

    def _save(self, acct: Account, utc_ms: int) -> None:
        self.journal.save_engine_state(acct.login, utc_ms, acct.engine.export_state())
        acct.saved_at = self.clock()

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
            gone = self.journal.reconcile_positions(acct.login, [p["ticket"] for p in positions], time_ms=utc_ms)
            if gone:
                log.warning("account %s: positions %s closed while the bridge was down", acct.login, gone)
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
            if self.journal.record_position_seen(acct.login, p, managed=managed, time_ms=utc_ms) and not managed:
                log.warning("account %s: a manual position %d on %s (%s %.2f): counted in every limit",
                            acct.login, p["ticket"], symbol, p["side"], p["volume"])
        sync_book(engine, utc_ms, rows)
        acct.synced = positions
        acct.synced_fixed = fixed
        for trade in engine.closed_trades:
            self.journal.record_closed_trade(acct.login, trade)
        engine.closed_trades.clear()

    def _reconcile(self, acct: Account, positions: list[dict[str, Any]], utc_ms: int) -> None:
        """Commands with no RESULT past the timeout: settled against the positions, never re-sent."""
        timeout_s = self.cfg.bridge.command_timeout_ms / 1000.0
        now = self.clock()
        in_flight = {c["command_id"]: c for c in acct.engine.in_flight}
        for command_id, sent_at in list(acct.sent.items()):
            if now - sent_at < timeout_s:
                continue
            del acct.sent[command_id]
            seen = any(p["comment"] == f"{wire.COMMENT_PREFIX}{command_id}" for p in positions)
            if command_id in in_flight:
                acct.engine.expire(command_id)
            self.journal.expire_command(command_id, utc_ms, "filled_seen" if seen else "not_seen")
            log.warning("account %s: command %d had no RESULT in %.0f s: %s", acct.login, command_id, timeout_s,
                        "its position is in the book" if seen else "no trace of it in the book; its risk is released")

    # ---- RESULT --------------------------------------------------------------------------------------------

    def _result(self, chart: Chart, msg: wire.TradeResult) -> None:
        acct = self.accounts[chart.account]
        filled = msg.outcome in FILLED_OUTCOMES
        outcome = self.journal.record_result(
            command_id=msg.command_id, retcode=msg.retcode, ticket=msg.ticket, price=msg.price, volume=msg.volume,
            text=msg.text, time_ms=msg.time_msc - chart.offset_ms, filled=filled, outcome=msg.outcome, sl=msg.sl,
            tp=msg.tp)
        if outcome != "recorded":
            log.warning("chart %s: RESULT for command %d ignored (%s)", chart.label, msg.command_id, outcome)
            return
        if msg.outcome in UNSETTLED_OUTCOMES:
            # Never sent again: it stays in flight, its risk counted, until its position or its absence settles
            # it when the command times out.
            log.warning("chart %s: command %d outcome %s (retcode %d): settled from the positions and deals",
                        chart.label, msg.command_id, msg.outcome, msg.retcode)
            return
        acct.sent.pop(msg.command_id, None)
        acct.engine.on_result(msg.command_id, filled, msg.ticket)
        if not filled:
            log.warning("chart %s: command %d refused by the server: retcode %d %s", chart.label, msg.command_id,
                        msg.retcode, msg.text)
        self._save(acct, msg.time_msc - chart.offset_ms)

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
        self.journal.record_failsafe(chart.account, chart.label, chart.symbol, msg.time_msc - chart.offset_ms,
                                     msg.kind, msg.detail)
        # The EA acted without the bridge: the trader must hear of it even when all is well again.
        level = logging.INFO if msg.kind == "BRIDGE_BACK" else logging.ERROR
        log.log(level, "chart %s (%s): EA failsafe %s: %s", chart.label, chart.symbol, msg.kind,
                msg.detail or "no detail given")

    # ---- housekeeping and the operator -----------------------------------------------------------------------

    def housekeeping(self) -> None:
        """Mark silent charts stale; write the refusal counts. Called by the server between frames."""
        now = self.clock()
        stale_s = self.cfg.bridge.stale_after_ms / 1000.0
        for chart in self.charts.values():
            self._hand_over_holds(chart)
            stale = not chart.closed and now - chart.last_seen > stale_s
            if stale and not chart.said_stale:
                log.warning("chart %s (%s): silent for %.1f s, marked stale", chart.label, chart.symbol,
                            now - chart.last_seen)
            elif chart.said_stale and not stale and not chart.closed:
                log.info("chart %s (%s): heard again", chart.label, chart.symbol)
            chart.said_stale = stale
        self.journal.flush()

    def set_halt(self, halted: bool, flatten: bool, by: str) -> None:
        self.journal.set_halt(halted, flatten=flatten, by=by, time_ms=int(time.time() * 1000))
        self.halt = self.journal.halt_state()
        for acct in self.accounts.values():
            if halted:
                acct.engine.halt(flatten=flatten)
            else:
                acct.engine.resume()
        log.warning("operator: %s by %s", ("halt and flatten" if flatten else "halt") if halted else "resume", by)

    def status(self) -> dict[str, Any]:
        now = self.clock()
        stale_s = self.cfg.bridge.stale_after_ms / 1000.0
        requests = dict(self.requests)
        if self.ticks_received:
            requests["TICK"] = self.ticks_received
        out = {"halt": self.halt, "errors": dict(self.errors), "requests": requests, "accounts": {}}
        for login, acct in self.accounts.items():
            a = acct.engine.account
            a["headroom_pct"] = 100.0 * a["headroom"] / a["initial_balance"] if a["initial_balance"] else 0.0
            out["accounts"][login] = {
                "account": a,
                "positions": acct.engine.positions,
                "in_flight": acct.engine.in_flight,
                "charts": [{
                    "chart": c.label, "symbol": c.symbol, "ticks": c.ticks, "closed": c.closed,
                    "stale": not c.closed and now - c.last_seen > stale_s,
                    "last_tick_age_s": now - c.last_seen if c.last_seen else None,
                    "answer_ms": c.answer_ms, "round_trip_ms": c.round_trip_ms,
                    "last_decision": ACTION_NAMES[c.last_action], "last_reason": CODES[c.last_reason],
                } for c in acct.charts.values()],
            }
        return out

    def close(self) -> None:
        """Save every account's state and flush the journal: the last act of a clean shutdown."""
        now_ms = int(time.time() * 1000)
        for acct in self.accounts.values():
            self._save(acct, now_ms)
        for chart in self.charts.values():
            self._hand_over_holds(chart)
        self.journal.flush()


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


class RefusalLog:
    """Decides which refused frames are logged, so that a flood of bad frames cannot fill the disk: at most one
    line per chart and reason every ``every_s`` seconds, each saying how many were refused since that pair's
    last line. Pairs are remembered while their window lasts and at most ``max_pairs`` at once (a sender that
    changes its identity with every frame makes a new pair each time): the refusals of pairs forgotten before
    their next line, and of pairs past the cap, are summed into one line every ``every_s``."""

    def __init__(self, every_s: float, max_pairs: int = 1024) -> None:
        self.every_s = every_s
        self.max_pairs = max_pairs
        self.pairs: dict[tuple[bytes, str], list] = {}   # (identity, code) -> [time of its last line, refused since]
        self.untold = 0           # refusals no line has told yet, of pairs no longer (or never) remembered
        self.next_sweep = 0.0

    def note(self, identity: bytes, code: str, now: float) -> tuple[int | None, int]:
        """Count one refusal of ``code`` from ``identity`` at ``now``. Returns (since, untold): ``since`` is None
        when this refusal is not to be logged, else how many of this pair were refused since its last line;
        ``untold`` refusals of other pairs are to be logged in one line when it is not 0."""
        key = (identity, code)
        entry = self.pairs.get(key)
        since: int | None = None
        if entry is not None:
            if now - entry[0] >= self.every_s:
                since, entry[0], entry[1] = entry[1], now, 0
            else:
                entry[1] += 1
        untold = self.sweep(now) if now >= self.next_sweep else 0
        if entry is None:
            if len(self.pairs) < self.max_pairs:
                self.pairs[key] = [now, 0]
                since = 0
            else:
                self.untold += 1
        return since, untold

    def sweep(self, now: float) -> int:
        """Forget the pairs whose window has passed; the refusals no line has told yet."""
        for key in [k for k, (said_at, _) in self.pairs.items() if now - said_at >= self.every_s]:
            self.untold += self.pairs.pop(key)[1]
        untold, self.untold = self.untold, 0
        self.next_sweep = now + self.every_s
        return untold

    @staticmethod
    def printable(text: str, limit: int = 300) -> str:
        """``text`` from a frame as it may go into a log line: no line breaks or terminal control codes (each
        non-printable character is written as its escape), and cut at ``limit`` characters."""
        if not text.isprintable():
            text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
        return text if len(text) <= limit else text[: limit - 3] + "..."
