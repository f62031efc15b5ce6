"""The simulated terminal: the charts of one account run over a market (synthetic or from a file), one tick at a
time in time order across symbols, with what happened counted in a SimulationReport.
"""

from __future__ import annotations

import re
import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterable

import numpy as np
import zmq

from mt5bridge.bridge import protocol as wire
from mt5bridge.market.readers import Bars, Ticks, expand_bars_to_ticks
from mt5bridge.simulator.broker import (
    DEFAULT_LOGIN,
    DEFAULT_MAGIC,
    DEFAULT_START,
    MS_PER_DAY,
    RETCODE_INVALID,
    RETCODE_NAMES,
    RETCODE_REJECT,
    RETCODE_TOO_MANY_REQUESTS,
    TIMEFRAMES_S,
    DealRecord,
    Execution,
    Side,
    SimulatedBroker,
    SimulatorError,
    SymbolSpec,
    price_digits,
    symbol_spec,
    synthetic_spec,
)
from mt5bridge.simulator.chart import (
    _KEEP_ERROR_SAMPLES,
    RECONNECT_MAX_MS,
    BridgeRefused,
    BridgeUnreachable,
    SimulatedChart,
    build_warmup_bars,
)

# A bridge that refuses this many ticks in a row as older than what it has seen for the account (TIME_BACKWARDS)
# will refuse every later one too: the run stops and says why, rather than replaying on with every tick refused.
MAX_BACKWARDS_REFUSALS = 5

# --- The terminal -------------------------------------------------------------------------------------------


@dataclass
class TickOutcome:
    """What one step did: the tick, the bridge's answer and what the account made of it."""

    symbol: str
    seq: int
    time_msc: int  # server time
    bid: float
    ask: float
    command: wire.Command | None  # the COMMAND answering the tick in time (a HOLD included)
    error: wire.ErrorReply | None  # the ERROR answering the tick, which means HOLD
    timed_out: bool
    execution: Execution | None  # for a non-HOLD command carried out (or refused by the EA itself)
    stop_deals: tuple[DealRecord, ...] = ()  # stops and targets this quote reached, before the TICK
    offline: bool = False  # no TICK was sent: the chart is not welcomed by a bridge (seq is -1)


@dataclass
class SimulationReport:
    """The run in numbers; ``format()`` is what ``mt5bridge simulate`` prints."""

    endpoint: str
    login: int
    symbols: list[str]
    ticks_sent: int
    replies: int
    holds_by_timeout: int
    holds_by_error: int
    late_replies: int
    duplicate_commands: int
    unexpected_replies: int
    invalid_replies: int
    heartbeats: int
    warmup_chunks: int
    reconnects: int
    errors_by_code: dict[str, int]
    commands_by_action: dict[str, int]
    results_by_retcode: dict[int, int]
    deals: int
    deals_by_reason: dict[str, int]
    initial_balance: float
    balance: float
    equity: float
    positions: list[wire.Position]
    first_tick_msc: int | None
    last_tick_msc: int | None
    wall_seconds: float
    error_samples: list[str] = field(default_factory=list)

    def format(self) -> str:
        def counts(mapping: dict, names: dict | None = None) -> str:
            if not mapping:
                return "none"
            return ", ".join(f"{names.get(k, k) if names else k} {v}" for k, v in sorted(mapping.items()))

        span = ""
        if self.first_tick_msc is not None and self.last_tick_msc is not None:
            span = f", {_server_text(self.first_tick_msc)} to {_server_text(self.last_tick_msc)} server time"
        retcodes = {code: f"{code} {RETCODE_NAMES.get(code, '')}".strip() for code in self.results_by_retcode}
        lines = [
            f"simulated account {self.login} ({', '.join(self.symbols)}) against {self.endpoint}:"
            f" {self.ticks_sent} ticks{span}, {self.wall_seconds:.1f} s",
            f"  replies in time {self.replies}; holds: {self.holds_by_timeout} by timeout,"
            f" {self.holds_by_error} by error; late replies dropped {self.late_replies}",
            f"  commands: {counts(self.commands_by_action)}",
            f"  results: {counts(self.results_by_retcode, retcodes)}",
            f"  deals: {self.deals} ({counts(self.deals_by_reason)})",
            f"  errors: {counts(self.errors_by_code)}",
            f"  heartbeats {self.heartbeats}, warm-up chunks {self.warmup_chunks}"
            + (f", charts introduced again {self.reconnects}" if self.reconnects else "")
            + (f", duplicate commands ignored {self.duplicate_commands}" if self.duplicate_commands else "")
            + (f", unexpected replies {self.unexpected_replies}" if self.unexpected_replies else "")
            + (f", unreadable replies {self.invalid_replies}" if self.invalid_replies else ""),
            f"  balance {self.balance:,.2f} (from {self.initial_balance:,.2f}), equity {self.equity:,.2f},"
            f" {len(self.positions)} open position{'s' if len(self.positions) != 1 else ''}",
        ]
        for p in self.positions:
            lines.append(
                f"    #{p.ticket} {p.symbol} {p.side} {p.volume:g} @ {p.open_price:g} sl {p.sl:g} tp {p.tp:g}"
                f" profit {p.profit:,.2f} magic {p.magic}"
            )
        lines.extend(f"  ! {text}" for text in self.error_samples)
        return "\n".join(lines)


def _server_text(msc: int) -> str:
    return datetime.fromtimestamp(msc / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _utc_ms(moment: str | datetime) -> int:
    dt = datetime.fromisoformat(moment.replace("Z", "+00:00")) if isinstance(moment, str) else moment
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


def _slice_ticks(ticks: Ticks, lo_ms: int, hi_ms: int | None) -> Ticks:
    t = ticks.times_ms
    a = int(np.searchsorted(t, lo_ms, side="left"))
    b = len(t) if hi_ms is None else int(np.searchsorted(t, hi_ms, side="left"))
    return Ticks(times_ms=t[a:b], bid=ticks.bid[a:b], ask=ticks.ask[a:b], volume=ticks.volume[a:b])


def synthetic_seed(symbol: str, seed: int) -> int:
    """Each symbol's own seed, so symbols move independently and a symbol's market does not depend on which
    other symbols run beside it."""
    return (seed * 1_000_003 + zlib.crc32(symbol.upper().encode("ascii"))) % (1 << 32)


class SimulatedTerminal:
    """The MT5 terminal of one account with one chart per symbol, each running the EA.

    Ticks of all symbols are replayed merged in time order, one chart at a time: the chart whose symbol
    ticked sends its TICK and waits for the reply before the next tick of any symbol is replayed.

    Market: ``data`` (ticks or bars per symbol, UTC) or, without it, synthetic ticks per symbol. The first
    ``warmup_days`` before the replay start are sent as WARMUP bars; then ``days`` of ticks are replayed
    (``days=None`` replays all of ``data``). Synthetic replay starts at ``start`` (a Monday by default); a
    file's replay starts ``warmup_days`` after its first tick unless ``start`` is given.

    ``speed=None`` replays as fast as the lock-step allows; a number replays that many times faster than
    real time. ``deadline_ms`` overrides the WELCOME's deadline, e.g. for a slow test machine.
    HEARTBEATs go out on wall time: a chart that has sent nothing for ``heartbeat_ms`` of wall time sends one.
    ``first_ticket``: where the broker's tickets start (see :class:`SimulatedBroker`).

    Step by step: ``start()``, then ``step()`` until it returns None, then ``close()``; or ``run()``.
    """

    def __init__(
        self,
        endpoint: str,
        symbols: list[str],
        *,
        login: int = DEFAULT_LOGIN,
        balance: float = 100_000.0,
        days: float | None = 2.0,
        seed: int = 0,
        data: dict[str, Ticks | Bars] | None = None,
        warmup_days: float = 10.0,
        speed: float | None = None,
        server_utc_offset_s: int = 7200,
        deadline_ms: int | None = None,
        start: str | datetime | None = None,
        magic: int = DEFAULT_MAGIC,
        slippage_points: float = 0.0,
        first_ticket: int = 100_000_001,
        specs: dict[str, SymbolSpec] | None = None,
        hello_timeout_ms: int = 5000,
        context: zmq.Context | None = None,
    ) -> None:
        if not symbols:
            raise SimulatorError("at least one symbol is needed")
        if len(set(symbols)) != len(symbols):
            raise SimulatorError(f"a symbol is listed twice: {', '.join(symbols)}")
        if speed is not None and not speed > 0:
            raise SimulatorError(f"speed must be > 0 (times real time), got {speed!r}")
        if days is not None and not days > 0:
            raise SimulatorError(f"days must be > 0, got {days!r}")
        if not warmup_days >= 0:
            raise SimulatorError(f"warmup_days must be >= 0, got {warmup_days!r}")
        if abs(server_utc_offset_s) > wire.MAX_UTC_OFFSET_S:
            raise SimulatorError(
                f"server_utc_offset_s must be within ±{wire.MAX_UTC_OFFSET_S}, got {server_utc_offset_s}"
            )
        self.endpoint = endpoint
        self.symbols = list(symbols)
        self.login = login
        self.speed = speed
        self.server_offset_ms = int(server_utc_offset_s) * 1000
        self.server_utc_offset_s = int(server_utc_offset_s)
        self.deadline_override_ms = deadline_ms
        self.magic = magic
        self.hello_timeout_ms = hello_timeout_ms
        self.broker = SimulatedBroker(login, balance, slippage_points=slippage_points, first_ticket=first_ticket)
        self.charts: dict[str, SimulatedChart] = {}
        self._own_context = context is None
        self._context = context
        self._stop = threading.Event()
        self._executed: set[tuple[str, int]] = set()
        self._backwards_in_a_row = 0
        self._started = False
        self._closed = False

        self._prepare_market(data, days, warmup_days, seed, start, specs or {})

    # market ------------------------------------------------------------------------------------------------

    def _prepare_market(
        self, data: dict | None, days: float | None, warmup_days: float, seed: int,
        start: str | datetime | None, specs: dict[str, SymbolSpec],
    ) -> None:  # fmt: skip
        """Split each symbol's ticks into warm-up history and replay, and merge the replays in time order."""
        full: dict[str, Ticks] = {}
        bar_timeframe_s: dict[str, int] = {}
        # Per tick, whether it continues an expanded bar's path (the price moved through every level since the
        # tick before): a stop reached there fills at its level, as replay fills it (SimulatedBroker.quote).
        continuous: dict[str, np.ndarray] = {}
        warmup_ms = int(round(warmup_days * MS_PER_DAY))
        if data is None:
            from mt5bridge.market.synthetic import generate_ticks

            start_ms = _utc_ms(start or DEFAULT_START)
            span = (2.0 if days is None else days) + warmup_days
            for symbol in self.symbols:
                spec = specs.get(symbol) or synthetic_spec(symbol)
                self.broker.add_symbol(spec)
                full[symbol] = generate_ticks(
                    symbol, days=span, seed=synthetic_seed(symbol, seed),
                    start=datetime.fromtimestamp((start_ms - warmup_ms) / 1000, tz=timezone.utc),
                )  # fmt: skip
        else:
            missing = [s for s in self.symbols if s not in data]
            if missing:
                raise SimulatorError(f"no market data for {', '.join(missing)}")
            for symbol in self.symbols:
                market = data[symbol]
                if isinstance(market, Bars):
                    bar_timeframe_s[symbol] = int(market.timeframe_s)
                    continuous[symbol] = np.tile(np.array([False, True, True, True]), len(market))
                    market = expand_bars_to_ticks(market)
                if len(market) == 0:
                    raise SimulatorError(f"the market data for {symbol} holds no ticks")
                full[symbol] = market
                spec = specs.get(symbol) or symbol_spec(
                    symbol, float(market.bid[0]), price_digits(np.r_[market.bid[:10_000], market.ask[:10_000]])
                )
                self.broker.add_symbol(spec)
            first = min(int(t.times_ms[0]) for t in full.values())
            start_ms = _utc_ms(start) if start is not None else first + warmup_ms
        end_ms = None if days is None else start_ms + int(round(days * MS_PER_DAY))

        self.replay_start_utc_ms = start_ms
        self._warmup: dict[str, Ticks] = {s: _slice_ticks(t, start_ms - warmup_ms, start_ms) for s, t in full.items()}
        self._warmup_timeframes = {
            s: [tf for tf, sec in TIMEFRAMES_S.items() if sec >= bar_timeframe_s.get(s, 0)] for s in self.symbols
        }
        replays = [_slice_ticks(full[s], start_ms, end_ms) for s in self.symbols]
        self._continuous = []
        for s in self.symbols:
            t = full[s].times_ms
            a = int(np.searchsorted(t, start_ms, side="left"))
            b = len(t) if end_ms is None else int(np.searchsorted(t, end_ms, side="left"))
            path = continuous[s][a:b].copy() if s in continuous else np.zeros(b - a, dtype=bool)
            if path.size:
                path[0] = False   # the first replayed tick continues nothing the account saw
            self._continuous.append(path)
        if sum(len(r) for r in replays) == 0:
            raise SimulatorError(f"no ticks to replay from {_server_text(start_ms)} UTC")
        times = np.concatenate([r.times_ms.astype(np.int64) for r in replays])
        which = np.concatenate([np.full(len(r), i, dtype=np.int32) for i, r in enumerate(replays)])
        row = np.concatenate([np.arange(len(r), dtype=np.int64) for r in replays])
        order = np.argsort(times, kind="stable")  # equal times keep the symbols' order: deterministic
        self._times = times[order]
        self._which = which[order]
        self._row = row[order]
        self._replays = replays
        self._cursor = 0
        self.last_tick_msc: int | None = None
        self.first_tick_msc: int | None = None

    @property
    def ticks_total(self) -> int:
        """Ticks the replay holds, all symbols."""
        return int(self._times.size)

    @property
    def ticks_left(self) -> int:
        return int(self._times.size) - self._cursor

    # session -----------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Open every chart: HELLO, WELCOME, then its warm-up bars. Raises BridgeUnreachable or BridgeRefused."""
        if self._started:
            return
        self._started = True
        if self._context is None:
            self._context = zmq.Context()
        self._wall_start = time.monotonic()
        self._first_replay_ms = int(self._times[0])
        hello_msc = self.replay_start_utc_ms + self.server_offset_ms
        try:
            for i, symbol in enumerate(self.symbols):
                chart = SimulatedChart(
                    self._context, self.endpoint, self.broker.specs[symbol], login=self.login,
                    chart_id=133_476_532_849_500_000 + i, magic=self.magic,
                )  # fmt: skip
                self.charts[symbol] = chart
                history = self._warmup[symbol]
                chart.hello(self.broker, time_msc=max(0, hello_msc), server_utc_offset_s=self.server_utc_offset_s,
                            timeout_ms=self.hello_timeout_ms,
                            ask=float(history.ask[-1]) if len(history) else 0.0)  # fmt: skip
            for symbol, chart in self.charts.items():
                for tf in self._warmup_timeframes[symbol]:
                    chart.warmup(build_warmup_bars(
                        self._warmup[symbol], tf, before_server_ms=hello_msc,
                        server_offset_ms=self.server_offset_ms, digits=chart.spec.digits,
                    ))  # fmt: skip
        except BaseException:
            # Charts already welcomed say BYE, so the bridge does not wait for them to go stale.
            self._shutdown(say_bye=True, reason="terminal start failed")
            raise
        self._wall_start = time.monotonic()

    def deadline_ms(self, chart: SimulatedChart) -> int:
        if self.deadline_override_ms is not None:
            return int(self.deadline_override_ms)
        return chart.welcome.deadline_ms if chart.welcome else 1000

    def step(self) -> TickOutcome | None:
        """Replay the next tick: stops and targets, the TICK and its reply, the command carried out and
        reported. None when the replay is over or the terminal was stopped."""
        if not self._started:
            self.start()
        if self._cursor >= self._times.size or self._stop.is_set() or self._closed:
            return None
        i = self._cursor
        self._cursor += 1
        index, row = int(self._which[i]), int(self._row[i])
        symbol = self.symbols[index]
        ticks = self._replays[index]
        utc_ms = int(ticks.times_ms[row])
        self._pace(utc_ms)
        chart = self.charts[symbol]
        digits = chart.spec.digits
        bid, ask = round(float(ticks.bid[row]), digits), round(float(ticks.ask[row]), digits)
        server_ms = utc_ms + self.server_offset_ms
        if self.first_tick_msc is None:
            self.first_tick_msc = server_ms
        self.last_tick_msc = server_ms
        self._heartbeats()

        stop_deals = self.broker.quote(symbol, server_ms, bid, ask, continuous=bool(self._continuous[index][row]))
        self._report_deals(stop_deals, chart)
        if chart.offline and not self._introduce_again(chart):
            # As the EA: no TICK while no bridge has welcomed the chart; the account lives on meanwhile.
            return TickOutcome(
                symbol=symbol, seq=-1, time_msc=server_ms, bid=bid, ask=ask, command=None, error=None,
                timed_out=True, execution=None, stop_deals=tuple(stop_deals), offline=True,
            )  # fmt: skip
        seq, reply = chart.tick(self.broker, time_msc=server_ms, bid=bid, ask=ask,
                                volume=float(ticks.volume[row]), deadline_ms=self.deadline_ms(chart))  # fmt: skip
        self._check_not_behind(chart, reply, server_ms)
        command = reply if isinstance(reply, wire.Command) else None
        execution = self._carry_out(chart, command) if command is not None else None
        return TickOutcome(
            symbol=symbol, seq=seq, time_msc=server_ms, bid=bid, ask=ask, command=command,
            error=reply if isinstance(reply, wire.ErrorReply) else None, timed_out=reply is None,
            execution=execution, stop_deals=tuple(stop_deals),
        )  # fmt: skip

    def _check_not_behind(self, chart: SimulatedChart, reply, server_ms: int) -> None:
        """Stop after a few ticks in a row refused as older than the bridge's: it has already seen later ticks
        of this account (an earlier run against the same bridge and journal), and would refuse every one."""
        if not (isinstance(reply, wire.ErrorReply) and reply.code == "TIME_BACKWARDS"):
            self._backwards_in_a_row = 0
            return
        self._backwards_in_a_row += 1
        if self._backwards_in_a_row < MAX_BACKWARDS_REFUSALS:
            return
        seen = re.search(r"previous tick of \S+, (\d+)", reply.message)
        later = f" up to {_server_text(int(seen.group(1)))} server time" if seen else ""
        raise SimulatorError(
            f"the bridge at {self.endpoint} has already seen ticks of account {self.login} {chart.symbol}{later},"
            f" later than this replay's {_server_text(server_ms)}: it refused the last {MAX_BACKWARDS_REFUSALS}"
            " ticks as going back in time and would refuse every one. Replay history after that time, use"
            " another --login, or start the bridge with a new journal (a fresh [bridge] journal file)")

    def _introduce_again(self, chart: SimulatedChart) -> bool:
        """Once the chart's back-off has passed: a new socket, HELLO, and the warm-up bars up to now, then what
        waited. False, and a longer back-off, when no WELCOME came."""
        wait = chart.next_attempt - time.monotonic()
        if wait > 0 and self._stop.wait(wait):
            return False
        chart.reopen()
        now_msc = max(0, self._server_now())
        bid_ask = self.broker.quotes.get(chart.symbol)
        try:
            chart.hello(self.broker, time_msc=now_msc, server_utc_offset_s=self.server_utc_offset_s,
                        timeout_ms=self.hello_timeout_ms, ask=bid_ask[1] if bid_ask else 0.0)  # fmt: skip
        except BridgeUnreachable:
            chart.failed_attempt()
            return False
        except BridgeRefused:
            chart.go_offline(RECONNECT_MAX_MS)
            return False
        history = self._history(chart.symbol, now_msc - self.server_offset_ms)
        for tf in self._warmup_timeframes[chart.symbol]:
            chart.warmup(build_warmup_bars(history, tf, before_server_ms=now_msc,
                                           server_offset_ms=self.server_offset_ms, digits=chart.spec.digits))
        chart.flush()
        return True

    def _history(self, symbol: str, until_utc_ms: int) -> Ticks:
        """The symbol's ticks before ``until_utc_ms``: its warm-up history and what has been replayed since."""
        warm, replay = self._warmup[symbol], self._replays[self.symbols.index(symbol)]
        played = _slice_ticks(replay, int(replay.times_ms[0]) if len(replay) else 0, until_utc_ms)
        return Ticks(times_ms=np.r_[warm.times_ms, played.times_ms], bid=np.r_[warm.bid, played.bid],
                     ask=np.r_[warm.ask, played.ask], volume=np.r_[warm.volume, played.volume])

    def _carry_out(self, chart: SimulatedChart, command: wire.Command) -> Execution | None:
        """Execute a non-HOLD command once, then report its RESULT and the deals it made."""
        if command.action == "HOLD":
            return None
        # Keyed by the journal's identity as the EA keys it: a new journal's ids are new commands.
        key = (chart.welcome.journal_id if chart.welcome else "", command.command_id)
        if key in self._executed:
            # Received twice (a re-sent reply): the EA executes a command_id at most once.
            chart.stats.duplicate_commands += 1
            return None
        self._executed.add(key)
        execution = self._ea_refusal(chart, command) or self.broker.execute(command, magic=chart.magic)
        chart.result(command.command_id, execution)
        self._report_deals(execution.deals, chart)
        return execution

    def _ea_refusal(self, chart: SimulatedChart, command: wire.Command) -> Execution | None:
        """The checks the EA makes itself before a request reaches the trade server."""
        now = self.broker.time_msc
        if command.action in ("OPEN", "ADD"):
            if command.symbol != chart.symbol:
                return Execution(RETCODE_INVALID, f"{command.action} for {command.symbol} sent to the"
                                 f" {chart.symbol} chart", now)  # fmt: skip
            floor = chart.welcome.equity_floor if chart.welcome else 0.0
            if floor > 0 and self.broker.equity <= floor:
                return Execution(RETCODE_REJECT, f"equity {self.broker.equity:.2f} at or below the equity floor"
                                 f" {floor:.2f}: the EA opens nothing new", now)  # fmt: skip
        if not chart.allow_trade_request(now):
            return Execution(RETCODE_TOO_MANY_REQUESTS, "the EA's cap on trade requests per minute is reached", now)
        return None

    def _report_deals(self, deals: Iterable[DealRecord], acting: SimulatedChart) -> None:
        # Every chart's EA sees every deal of the account (OnTradeTransaction); only the chart of the deal's
        # symbol reports it, so the bridge hears of each deal once. A symbol without a chart: the acting one.
        for deal in deals:
            self.charts.get(deal.symbol, acting).deal(deal)

    # the trader's own hand ---------------------------------------------------------------------------------

    def manual_open(
        self, symbol: str, side: Side, volume: float, *, sl: float = 0.0, tp: float = 0.0, magic: int = 0,
        comment: str = "",
    ) -> Execution:  # fmt: skip
        """The trader opens a position by hand; its DEAL (reason CLIENT) is reported at once."""
        execution = self.broker.manual_open(symbol, side, volume, sl=sl, tp=tp, magic=magic, comment=comment)
        self._report_deals(execution.deals, self._any_chart(symbol))
        return execution

    def manual_close(self, ticket: int, volume: float = 0.0) -> Execution:
        """The trader closes a position by hand; its DEAL (reason CLIENT) is reported at once."""
        pos = self.broker.positions.get(ticket)
        execution = self.broker.manual_close(ticket, volume)
        self._report_deals(execution.deals, self._any_chart(pos.symbol if pos else ""))
        return execution

    def _any_chart(self, symbol: str) -> SimulatedChart:
        if not self.charts:
            raise SimulatorError("the terminal is not started: no chart to report the deal")
        return self.charts.get(symbol) or next(iter(self.charts.values()))

    # timing ------------------------------------------------------------------------------------------------

    def _pace(self, utc_ms: int) -> None:
        """At a set speed, wait for the tick's moment, heartbeating meanwhile."""
        if self.speed is None:
            return
        due = self._wall_start + (utc_ms - self._first_replay_ms) / 1000.0 / self.speed
        while not self._stop.is_set():
            wait = due - time.monotonic()
            if wait <= 0:
                return
            self._stop.wait(min(wait, self._heartbeat_s() / 2))
            self._heartbeats()

    def _heartbeat_s(self) -> float:
        beats = [c.welcome.heartbeat_ms for c in self.charts.values() if c.welcome]
        return (min(beats) if beats else 1000) / 1000.0

    def _server_now(self) -> int:
        """The terminal's server clock: the last quote's time, or where the paced replay has got to."""
        last = self.last_tick_msc
        if last is None:
            last = self.replay_start_utc_ms + self.server_offset_ms
        if self.speed is None or not self._started:
            return last
        elapsed_ms = (time.monotonic() - self._wall_start) * 1000.0 * self.speed
        return max(last, self._first_replay_ms + self.server_offset_ms + int(elapsed_ms))

    def _heartbeats(self) -> None:
        now = time.monotonic()
        for chart in self.charts.values():
            if chart.offline or chart.welcome is None:
                continue   # nothing for a bridge that has not welcomed the chart
            if (now - chart.last_sent) * 1000.0 >= chart.welcome.heartbeat_ms:
                chart.drain()
                chart.heartbeat(max(0, self._server_now()))

    # ending ------------------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask a running ``run()`` to finish after the current tick; safe from another thread."""
        self._stop.set()

    def run(self, max_ticks: int | None = None) -> SimulationReport:
        """Start (if needed), replay up to ``max_ticks`` ticks (all by default), close, and report."""
        started = time.monotonic()
        try:
            self.start()
            done = 0
            while max_ticks is None or done < max_ticks:
                if self.step() is None:
                    break
                done += 1
        finally:
            self.close()
        return self.report(wall_seconds=time.monotonic() - started)

    def close(self, reason: str = "simulation finished") -> None:
        """BYE from every chart, then the sockets are closed."""
        if self._closed:
            return
        self._shutdown(say_bye=True, reason=reason)

    def _shutdown(self, *, say_bye: bool, reason: str = "") -> None:
        self._closed = True
        for chart in self.charts.values():
            welcomed = chart.welcome is not None and not chart.offline
            if say_bye and welcomed:
                chart.drain()
                chart.bye(reason)
            # Give a BYE to a live bridge a moment to leave; never wait on a bridge that was not there.
            chart.close(linger_ms=500 if welcomed and say_bye else 0)
        if self._own_context and self._context is not None:
            self._context.term()
            self._context = None

    def report(self, wall_seconds: float = 0.0) -> SimulationReport:
        """What the charts counted so far and the account as it stands."""
        stats = [c.stats for c in self.charts.values()]

        def total(name: str) -> int:
            return sum(getattr(s, name) for s in stats)

        def merged(name: str) -> dict:
            out: Counter = Counter()
            for s in stats:
                out.update(getattr(s, name))
            return dict(out)

        history = self.broker.history
        return SimulationReport(
            endpoint=self.endpoint, login=self.login, symbols=list(self.symbols), ticks_sent=total("ticks"),
            replies=total("replies"), holds_by_timeout=total("holds_by_timeout"),
            holds_by_error=total("holds_by_error"), late_replies=total("late_replies"),
            duplicate_commands=total("duplicate_commands"), unexpected_replies=total("unexpected_replies"),
            invalid_replies=total("invalid_replies"), heartbeats=total("heartbeats"),
            warmup_chunks=total("warmup_chunks"), reconnects=total("reconnects"),
            errors_by_code=merged("errors_by_code"),
            commands_by_action=merged("commands_by_action"), results_by_retcode=merged("results_by_retcode"),
            deals=len(history), deals_by_reason=dict(Counter(d.reason for d in history)),
            initial_balance=self.broker.initial_balance, balance=self.broker.balance, equity=self.broker.equity,
            positions=self.broker.wire_positions(), first_tick_msc=self.first_tick_msc,
            last_tick_msc=self.last_tick_msc, wall_seconds=wall_seconds,
            error_samples=[t for s in stats for t in s.error_samples][:_KEEP_ERROR_SAMPLES],
        )  # fmt: skip
