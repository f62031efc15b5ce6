"""One chart's EA, simulated: its own DEALER socket and ``seq`` counter, the HELLO/WELCOME handshake, WARMUP
chunks, TICKs in lock-step with a deadline, RESULT, DEAL, HEARTBEAT and BYE, and reconnecting as the EA does.
"""

from __future__ import annotations

import math
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Iterable, Union

import numpy as np
import zmq

from mt5bridge import __version__
from mt5bridge.bridge import protocol as wire
from mt5bridge.market.readers import Ticks
from mt5bridge.simulator.broker import (
    DEFAULT_MAGIC,
    MS_PER_MINUTE,
    TIMEFRAMES_S,
    DealRecord,
    Execution,
    SimulatedBroker,
    SimulatorError,
    SymbolSpec,
    result_outcome,
)


class BridgeUnreachable(SimulatorError):
    """No WELCOME arrived before the HELLO deadline."""

    def __init__(self, endpoint: str, symbol: str, timeout_ms: int) -> None:
        super().__init__(
            f"no answer from the bridge at {endpoint} to the HELLO of the {symbol} chart within {timeout_ms} ms:"
            " is `mt5bridge serve` running and bound to that endpoint?"
        )
        self.endpoint = endpoint


class BridgeRefused(SimulatorError):
    """The bridge answered a HELLO with an ERROR: the chart is not admitted."""


# --- Warm-up bars -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WarmupBars:
    """Closed bars of one timeframe, times in server time ms, prices bid."""

    timeframe: str
    time_msc: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return len(self.time_msc)

    def chunks(self, size: int = wire.MAX_WARMUP_BARS) -> Iterable[tuple[int, int, slice]]:
        """(chunk, chunks, slice) for each chunk of at most ``size`` bars, oldest first."""
        count = max(1, math.ceil(len(self) / size))
        for i in range(count):
            yield i, count, slice(i * size, (i + 1) * size)


def build_warmup_bars(
    ticks: Ticks, timeframe: str, *, before_server_ms: int, server_offset_ms: int, digits: int
) -> WarmupBars:
    """Bars of ``timeframe`` from ticks (UTC), as the terminal draws them: on server time, from the bid, the
    tick count as volume. Only bars closed at ``before_server_ms`` are kept, as the EA sends only closed bars.
    """
    period = TIMEFRAMES_S[timeframe] * 1000
    t = np.asarray(ticks.times_ms, dtype=np.int64) + server_offset_ms
    price = np.asarray(ticks.bid, dtype=np.float64)
    volume = np.asarray(ticks.volume, dtype=np.float64)
    if t.size == 0:
        empty = np.empty(0)
        return WarmupBars(timeframe, np.empty(0, np.int64), empty, empty, empty, empty, empty)
    key = t // period
    starts = np.r_[0, np.flatnonzero(np.diff(key)) + 1]
    ends = np.r_[starts[1:], key.size]
    opens_at = key[starts] * period
    closed = opens_at + period <= before_server_ms
    pick = (lambda a: a[closed])  # noqa: E731
    return WarmupBars(
        timeframe=timeframe,
        time_msc=pick(opens_at),
        open=np.round(pick(price[starts]), digits),
        high=np.round(pick(np.maximum.reduceat(price, starts)), digits),
        low=np.round(pick(np.minimum.reduceat(price, starts)), digits),
        close=np.round(pick(price[ends - 1]), digits),
        volume=pick(np.add.reduceat(volume, starts)),
    )


# --- One chart's EA -----------------------------------------------------------------------------------------


@dataclass
class ChartStats:
    """What one chart sent and received."""

    ticks: int = 0
    replies: int = 0  # COMMANDs answering a TICK in time
    holds_by_timeout: int = 0
    holds_by_error: int = 0
    late_replies: int = 0
    duplicate_commands: int = 0
    unexpected_replies: int = 0
    invalid_replies: int = 0
    heartbeats: int = 0
    warmup_chunks: int = 0
    reconnects: int = 0  # WELCOMEs after the first: the chart introduced itself again
    results: int = 0
    deals: int = 0
    errors_by_code: Counter = field(default_factory=Counter)
    commands_by_action: Counter = field(default_factory=Counter)
    results_by_retcode: Counter = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)


Reply = Union[wire.Welcome, wire.Command, wire.ErrorReply]

_KEEP_SENT_KINDS = 4096  # how far back a late reply can still be told apart from a refusal of a RESULT or DEAL
_KEEP_ERROR_SAMPLES = 20
# The EA's reconnect timings (Session.mqh): the first pause after a failed HELLO, doubled on every failure up to
# the longest (the EA's input InpReconnectMaxMs, 30 s by default; shorter here, where bridges restart in seconds).
FIRST_BACKOFF_MS = 500
RECONNECT_MAX_MS = 4000
_OUTBOX_LIMIT = 5000  # RESULTs and DEALs kept for a bridge that cannot hear them, as the EA keeps them


class SimulatedChart:
    """The EA on one chart: its DEALER socket, its ``seq`` and the lock-step with the bridge."""

    def __init__(
        self,
        context: zmq.Context,
        endpoint: str,
        spec: SymbolSpec,
        *,
        login: int,
        chart_id: int,
        magic: int = DEFAULT_MAGIC,
    ) -> None:
        self.endpoint = endpoint
        self.spec = spec
        self.symbol = spec.name
        self.login = login
        self.chart_id = chart_id
        self.magic = magic
        self.identity = f"{login}-{spec.name}-{chart_id}"
        self.stats = ChartStats()
        self.welcome: wire.Welcome | None = None
        self.seq = 0  # the next seq to send
        self.last_sent = time.monotonic()
        self._sent_kinds: dict[int, str] = {}
        self._trade_requests: deque[int] = deque()  # server times of the last minute's trade requests
        self.round_trip_us = 0  # the last TICK's own round trip, sent with the next TICK as the EA does
        # Not welcomed by the bridge now there (told NOT_INTRODUCED, or silent too long): the terminal
        # introduces the chart again before its next TICK, once ``next_attempt`` (monotonic time) has come.
        self.offline = False
        self.next_attempt = 0.0
        self._backoff_ms = FIRST_BACKOFF_MS
        self._awaiting_since: float | None = None  # first request sent since the bridge was last heard
        self._outbox: deque[tuple[type[wire.Request], dict]] = deque()  # RESULTs and DEALs not sent yet
        self._context = context
        self.socket = self._open()

    def _open(self) -> zmq.Socket:
        socket = self._context.socket(zmq.DEALER)
        socket.setsockopt(zmq.IDENTITY, self.identity.encode("utf-8"))
        # A bridge that has gone away must never hold the EA up on close, and nothing queued for it matters.
        socket.setsockopt(zmq.LINGER, 0)
        # As the EA: a message is queued only on a live connection, so nothing meant for a bridge that died
        # is handed to the next one before the chart has introduced itself to it.
        socket.setsockopt(zmq.IMMEDIATE, 1)
        socket.connect(self.endpoint)
        return socket

    def reopen(self) -> None:
        """A new socket under the same identity (the "Lazy Pirate"): whatever the old one held is dropped."""
        self.socket.close(linger=0)
        self.socket = self._open()

    # sending ----------------------------------------------------------------------------------------------

    def _send(self, model: type[wire.Request], timeout_ms: int = 0, **fields) -> int | None:
        """Send one message once a live connection takes it within ``timeout_ms``: its seq, or None."""
        if not self.socket.poll(timeout_ms, zmq.POLLOUT):
            return None
        seq = self.seq
        frame = wire.encode(model(seq=seq, **fields))
        try:
            self.socket.send(frame, zmq.NOBLOCK, copy=len(frame) < 65536)
        except zmq.Again:
            return None
        self.seq += 1
        self.last_sent = time.monotonic()
        self._sent_kinds[seq] = wire.message_type(model)
        if len(self._sent_kinds) > _KEEP_SENT_KINDS:
            del self._sent_kinds[next(iter(self._sent_kinds))]
        return seq

    def _post(self, model: type[wire.Request], **fields) -> None:
        """A message that must reach the bridge but waits for no answer: sent now (after what waited), or kept
        until the connection takes it, at the latest after the next WELCOME."""
        self.flush()
        if self.offline or self._outbox or self._send(model, **fields) is None:
            if len(self._outbox) < _OUTBOX_LIMIT:
                self._outbox.append((model, fields))

    def flush(self) -> None:
        """Send what waited for the bridge, oldest first, as far as the connection takes it."""
        while self._outbox and not self.offline:
            model, fields = self._outbox[0]
            if self._send(model, **fields) is None:
                return
            self._outbox.popleft()

    def _awaiting(self) -> None:
        if self._awaiting_since is None:
            self._awaiting_since = time.monotonic()

    def _went_silent(self) -> None:
        """Nothing heard for the silence the WELCOME set: the bridge is taken for gone, the chart goes offline."""
        silence_s = (self.welcome.failsafe_silence_ms if self.welcome else 30_000) / 1000.0
        if self._awaiting_since is not None and time.monotonic() - self._awaiting_since >= silence_s:
            self.go_offline(0)

    def go_offline(self, wait_ms: int) -> None:
        """Stop talking to the bridge; the next HELLO may go ``wait_ms`` from now."""
        self.offline = True
        self._awaiting_since = None
        self.next_attempt = time.monotonic() + wait_ms / 1000.0

    def failed_attempt(self) -> None:
        """A HELLO that got no WELCOME: the next waits a pause twice as long as the last, up to the longest."""
        self.go_offline(self._backoff_ms)
        self._backoff_ms = min(self._backoff_ms * 2, RECONNECT_MAX_MS)

    def hello(
        self, broker: SimulatedBroker, *, time_msc: int, server_utc_offset_s: int, timeout_ms: int,
        ask: float = 0.0,
    ) -> wire.Welcome:
        """Introduce the chart and wait for WELCOME; raise when refused or unanswered. ``ask`` is the last
        known price, for the margin of one lot (0: unknown, as the EA would send before any quote)."""
        spec = self.spec
        seq = self._send(
            wire.Hello, timeout_ms=timeout_ms, protocol_version=wire.PROTOCOL_VERSION,
            ea_version=f"{__version__}-sim", login=self.login,
            server="FTMO-Simulator", company="mt5bridge simulator", currency=broker.currency, margin_mode="HEDGING",
            initial_balance=broker.initial_balance, balance=broker.balance, equity=broker.equity,
            symbol=spec.name, digits=spec.digits, point=spec.point, tick_size=spec.tick_size,
            tick_value=spec.tick_value, contract_size=spec.contract_size, volume_min=spec.volume_min,
            volume_step=spec.volume_step, volume_max=spec.volume_max, stops_level=spec.stops_level,
            freeze_level=spec.freeze_level, filling_modes=spec.filling_modes, trade_mode=spec.trade_mode,
            server_utc_offset_s=server_utc_offset_s, margin_per_lot=broker.margin_per_lot(spec.name, ask) if ask > 0 else 0.0,
            magic=self.magic, chart_id=self.chart_id, time_msc=time_msc,
        )  # fmt: skip
        reply = None if seq is None else self._await(seq, timeout_ms / 1000.0)
        if reply is None:
            raise BridgeUnreachable(self.endpoint, self.symbol, timeout_ms)
        if isinstance(reply, wire.ErrorReply):
            raise BridgeRefused(f"the bridge at {self.endpoint} refused the {self.symbol} chart: {reply.code}:"
                                f" {reply.message}")  # fmt: skip
        if not isinstance(reply, wire.Welcome):
            raise BridgeRefused(f"the bridge at {self.endpoint} answered the {self.symbol} HELLO with"
                                f" {reply.type}, not WELCOME")  # fmt: skip
        if self.welcome is not None:
            self.stats.reconnects += 1
        self.welcome = reply
        self.offline = False
        self._awaiting_since = None
        self._backoff_ms = FIRST_BACKOFF_MS
        return reply

    def warmup(self, bars: WarmupBars) -> None:
        """Send one timeframe's closed bars in chunks, chunk 0 and the oldest bars first."""
        if len(bars) == 0:
            return
        for chunk, chunks, part in bars.chunks():
            self._send(
                wire.Warmup, timeout_ms=2000, timeframe=bars.timeframe, chunk=chunk, chunks=chunks,
                time_msc=[int(x) for x in bars.time_msc[part]], open=bars.open[part].tolist(),
                high=bars.high[part].tolist(), low=bars.low[part].tolist(), close=bars.close[part].tolist(),
                volume=bars.volume[part].tolist(),
            )  # fmt: skip
            self.stats.warmup_chunks += 1

    def tick(
        self, broker: SimulatedBroker, *, time_msc: int, bid: float, ask: float, volume: float, deadline_ms: int
    ) -> tuple[int, Reply | None]:
        """Send a TICK with the account's state and wait for its reply up to the deadline: (seq, reply).

        The reply is the COMMAND or ERROR answering this TICK, or None when none came in time.
        """
        self.flush()  # what waited goes first, as the EA's timer sends it between ticks
        sent = time.perf_counter()
        seq = self._send(
            wire.Tick, timeout_ms=deadline_ms, time_msc=time_msc, bid=bid, ask=ask, volume=volume,
            balance=broker.balance, equity=broker.equity, margin=broker.margin, free_margin=broker.free_margin,
            positions=broker.wire_positions(), round_trip_us=self.round_trip_us,
        )  # fmt: skip
        self.stats.ticks += 1
        reply = None
        if seq is not None:
            self._awaiting()
            reply = self._await(seq, max(0.0, deadline_ms / 1000.0 - (time.perf_counter() - sent)))
        else:
            seq = -1  # no live connection took it within the deadline: a HOLD, as for a missing reply
        # A reply that missed the deadline has no round trip worth reporting.
        self.round_trip_us = 0 if reply is None else max(1, int((time.perf_counter() - sent) * 1e6))
        if reply is None:
            self.stats.holds_by_timeout += 1
            self._went_silent()
        elif isinstance(reply, wire.ErrorReply):
            self.stats.holds_by_error += 1
        elif isinstance(reply, wire.Command):
            self.stats.replies += 1
            self.stats.commands_by_action[reply.action] += 1
        else:
            self.stats.unexpected_replies += 1
            reply = None
        return seq, reply

    def result(self, command_id: int, execution: Execution) -> None:
        self._post(
            wire.TradeResult, command_id=command_id, outcome=result_outcome(execution.retcode),
            retcode=execution.retcode, ticket=execution.ticket,
            price=execution.price, volume=execution.volume, text=execution.text, time_msc=execution.time_msc,
        )  # fmt: skip
        self.stats.results += 1
        self.stats.results_by_retcode[execution.retcode] += 1

    def deal(self, deal: DealRecord) -> None:
        self._post(wire.Deal, **asdict(deal))
        self.stats.deals += 1

    def heartbeat(self, time_msc: int) -> None:
        if self._send(wire.Heartbeat, time_msc=time_msc) is not None:
            self.stats.heartbeats += 1

    def bye(self, reason: str) -> None:
        self._send(wire.Bye, timeout_ms=100, reason=reason)

    def allow_trade_request(self, now_msc: int) -> bool:
        """The EA's own cap on trade requests per minute (WELCOME.max_requests_per_minute), on server time."""
        limit = self.welcome.max_requests_per_minute if self.welcome else 0
        window = self._trade_requests
        while window and window[0] <= now_msc - MS_PER_MINUTE:
            window.popleft()
        if limit and len(window) >= limit:
            return False
        window.append(now_msc)
        return True

    # receiving --------------------------------------------------------------------------------------------

    def _await(self, seq: int, timeout_s: float) -> Reply | None:
        """The reply whose reply_to is ``seq``, or None after ``timeout_s``; anything else is sorted out."""
        end = time.monotonic() + timeout_s
        while True:
            remaining_ms = math.ceil((end - time.monotonic()) * 1000)
            if remaining_ms <= 0:
                return None
            if not self.socket.poll(remaining_ms, zmq.POLLIN):
                continue
            reply = self._read()
            if reply is None:
                continue
            if reply.reply_to == seq:
                return reply
            self._stray(reply)

    def drain(self) -> None:
        """Read whatever has arrived without waiting: late replies, refusals of RESULTs, DEALs, HEARTBEATs."""
        while self.socket.poll(0, zmq.POLLIN):
            reply = self._read()
            if reply is not None:
                self._stray(reply)

    def _read(self) -> Reply | None:
        # The bridge sends one frame per message; should it ever prefix an empty delimiter, the last frame is it.
        frame = self.socket.recv_multipart()[-1]
        self._awaiting_since = None  # the bridge is there
        try:
            reply = wire.parse_reply(frame, wire.MAX_FRAME_BYTES)
        except wire.ProtocolError as exc:
            self.stats.invalid_replies += 1
            self._sample(f"invalid reply: {exc}")
            return None
        if isinstance(reply, wire.ErrorReply):
            self.stats.errors_by_code[reply.code] += 1
            self._sample(f"{reply.code} (reply_to {reply.reply_to}): {reply.message}")
            if reply.code == "NOT_INTRODUCED" and self.welcome is not None:
                # The bridge restarted and no longer knows this chart: introduce it again, at once.
                self.go_offline(0)
        return reply

    def _stray(self, reply: Reply) -> None:
        """A reply that is not the one being waited for: late (to an earlier TICK), a refusal, or unexpected."""
        answered = self._sent_kinds.get(reply.reply_to)
        if isinstance(reply, wire.Command) and reply.reply_to < self.seq:
            self.stats.late_replies += 1
        elif isinstance(reply, wire.ErrorReply):
            if answered == "TICK":
                self.stats.late_replies += 1
        else:
            self.stats.unexpected_replies += 1

    def _sample(self, text: str) -> None:
        if len(self.stats.error_samples) < _KEEP_ERROR_SAMPLES:
            self.stats.error_samples.append(f"{self.symbol}: {text}")

    def close(self, *, linger_ms: int = 0) -> None:
        self.socket.setsockopt(zmq.LINGER, linger_ms)
        self.socket.close()


