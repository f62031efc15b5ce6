"""A simulated MetaTrader 5 terminal: the EA's side of the wire protocol, over a simulated hedging account.

Used by the integration tests against a real ``mt5bridge serve`` process and by ``mt5bridge demo``, so the
bridge can be exercised end to end on a machine without MetaTrader. What is simulated and what is not:
``docs/simulator.md``.

Three pieces, one idea each:

- :class:`SimulatedBroker` is the trade server of one account: quotes, positions, fills, stops and targets,
  balance, equity and margin, and the deals all of it produces. It knows nothing about sockets.
- :class:`SimulatedChart` is one chart's EA: its own DEALER socket and ``seq`` counter, the HELLO/WELCOME
  handshake, WARMUP chunks, TICKs in lock-step with a deadline, RESULT, DEAL, HEARTBEAT and BYE.
- :class:`SimulatedTerminal` runs the charts of one account over a market (synthetic or from a file), one
  tick at a time in time order across symbols, and counts what happened in a :class:`SimulationReport`.

Every message is built through the models of :mod:`mt5bridge.protocol`, so a frame the simulator sends is
one the protocol accepts.

A bridge that goes away and comes back (a restart, a crash) is met as the EA meets it: a chart told
NOT_INTRODUCED, or that has heard nothing for WELCOME's ``failsafe_silence_ms``, drops its socket and introduces
itself again on a new one (the ZeroMQ guide's "Lazy Pirate"), with a back-off between attempts, then sends its
warm-up bars again up to the present; sends only reach a live connection (ZMQ_IMMEDIATE, as the EA sets it), and
RESULTs and DEALs that could not be sent wait for the next WELCOME. The EA's FAILSAFE messages about the silence
are not simulated.
"""

from __future__ import annotations

import math
import threading
import time
import zlib
from collections import Counter, deque
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from typing import Iterable, Literal, Union

import numpy as np
import zmq

from mt5bridge import __version__
from mt5bridge import protocol as wire
from mt5bridge.marketdata import Bars, Ticks, expand_bars_to_ticks

# --- MT5 trade return codes (MqlTradeResult.retcode) ---------------------------------------------------------

RETCODE_REJECT = 10006
RETCODE_PLACED = 10008
RETCODE_DONE = 10009
RETCODE_DONE_PARTIAL = 10010
RETCODE_TIMEOUT = 10012
RETCODE_INVALID = 10013
RETCODE_INVALID_VOLUME = 10014
RETCODE_INVALID_STOPS = 10016
RETCODE_MARKET_CLOSED = 10018
RETCODE_NO_MONEY = 10019
RETCODE_TOO_MANY_REQUESTS = 10024
RETCODE_NO_CHANGES = 10025
RETCODE_FROZEN = 10029
RETCODE_CONNECTION = 10031
RETCODE_POSITION_CLOSED = 10036

RETCODE_NAMES: dict[int, str] = {
    RETCODE_REJECT: "REJECT",
    RETCODE_DONE: "DONE",
    RETCODE_INVALID: "INVALID",
    RETCODE_INVALID_VOLUME: "INVALID_VOLUME",
    RETCODE_INVALID_STOPS: "INVALID_STOPS",
    RETCODE_MARKET_CLOSED: "MARKET_CLOSED",
    RETCODE_NO_MONEY: "NO_MONEY",
    RETCODE_TOO_MANY_REQUESTS: "TOO_MANY_REQUESTS",
    RETCODE_NO_CHANGES: "NO_CHANGES",
    RETCODE_FROZEN: "FROZEN",
    RETCODE_POSITION_CLOSED: "POSITION_CLOSED",
}

MS_PER_MINUTE = 60_000
MS_PER_DAY = 86_400_000
TIMEFRAMES_S: dict[str, int] = {"M1": 60, "M5": 300, "M15": 900, "H1": 3600}

DEFAULT_START = "2024-01-08T00:00:00Z"  # a Monday: the replay opens on a live market
DEFAULT_MAGIC = 20261121
DEFAULT_LOGIN = 1234567
COMMENT_PREFIX = wire.COMMENT_PREFIX

Side = Literal["BUY", "SELL"]


class SimulatorError(Exception):
    """The simulation cannot go on: the bridge is unreachable, refused a chart, or the market is unusable."""


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


# --- Symbol specifications ----------------------------------------------------------------------------------

# Rough USD value of one unit of each currency, to value a tick of a symbol quoted in it. Only the account
# currency USD is simulated, and the tick value is fixed at HELLO (as the EA reports it once), so a rough
# rate is as good as a live one for what the simulator is for.
_USD_PER_UNIT = {
    "USD": 1.0, "EUR": 1.085, "GBP": 1.265, "JPY": 1 / 148.5, "CHF": 1.13, "CAD": 0.74, "AUD": 0.66,
    "NZD": 0.61, "SEK": 0.095, "NOK": 0.094, "SGD": 0.74, "HKD": 0.128, "CZK": 0.044, "PLN": 0.25,
}  # fmt: skip
_METAL_CONTRACTS = {"XAU": 100.0, "XAG": 5000.0, "XPT": 100.0, "XPD": 100.0}
# Illustrative commission in the account currency per lot and side on FX (a round turn costs twice this);
# unverified for any particular account: pass your own SymbolSpec to match yours.
FX_COMMISSION_PER_LOT = 2.5


@dataclass(frozen=True)
class SymbolSpec:
    """A symbol's trading specification, as the EA reports it in HELLO (SYMBOL_* properties)."""

    name: str
    digits: int
    point: float
    tick_size: float
    tick_value: float  # account currency per tick_size per lot
    contract_size: float
    volume_min: float = 0.01
    volume_step: float = 0.01
    volume_max: float = 100.0
    stops_level: int = 0  # points
    freeze_level: int = 0  # points
    filling_modes: int = wire.FILLING_FOK | wire.FILLING_IOC
    trade_mode: str = "FULL"
    commission_per_lot: float = 0.0  # charged on every deal, in and out
    swap_long: float = 0.0   # account currency per lot per night held long (negative: charged)
    swap_short: float = 0.0  # the same, held short

    @property
    def money_per_price(self) -> float:
        """Account currency per 1.0 of price per lot: what a price move is worth."""
        return self.tick_value / self.tick_size


def result_outcome(retcode: int) -> str:
    """RESULT.outcome for a trade server's retcode, as the EA reports it: a timeout or a lost connection leaves
    the outcome unknown (the order may still be filled), never refused."""
    if retcode == RETCODE_DONE:
        return "DONE"
    if retcode == RETCODE_DONE_PARTIAL:
        return "PARTIAL"
    if retcode == RETCODE_PLACED:
        return "PLACED"
    if retcode in (RETCODE_TIMEOUT, RETCODE_CONNECTION):
        return "UNKNOWN"
    return "REFUSED"


def symbol_spec(symbol: str, price: float, digits: int) -> SymbolSpec:
    """A plausible specification for ``symbol`` at ``price``, from its kind: FX, metal or index.

    FX: 100,000 units a lot, a tick worth tick_size × 100,000 in the quote currency converted to USD (1.0 for
    a 5-digit USD-quoted pair, about 0.67 for USDJPY at 148.5). Metals: 100 ounces (silver 5,000). Anything
    else is taken for a USD-quoted index or CFD with a contract of 1, so a tick is worth the tick size.
    """
    name = symbol.upper()
    point = round(10.0**-digits, digits)
    base, quote = name[:3], name[3:6]
    if base in _METAL_CONTRACTS:
        contract, commission = _METAL_CONTRACTS[base], 0.0
        usd_per_quote = _USD_PER_UNIT.get(quote, 1.0)
    elif len(name) == 6 and base in _USD_PER_UNIT and quote in _USD_PER_UNIT:
        contract, commission = 100_000.0, FX_COMMISSION_PER_LOT
        # A pair whose base is USD values its quote currency at its own price, the exact rate.
        usd_per_quote = 1.0 / price if base == "USD" else _USD_PER_UNIT[quote]
    else:
        contract, commission, usd_per_quote = 1.0, 0.0, 1.0
    tick_value = point * contract * usd_per_quote
    return SymbolSpec(
        name=symbol, digits=digits, point=point, tick_size=point, tick_value=float(f"{tick_value:.10g}"),
        contract_size=contract, commission_per_lot=commission,
    )


def synthetic_spec(symbol: str) -> SymbolSpec:
    """The specification of a synthetic symbol: price, point and digits from ``synthetic.PROFILES``."""
    from mt5bridge.synthetic import PROFILES

    profile = PROFILES.get(symbol.upper())
    if profile is None:
        raise SimulatorError(f"no synthetic market for {symbol!r}; known: {', '.join(PROFILES)}")
    return replace(symbol_spec(symbol, profile.price, profile.digits), point=profile.point, tick_size=profile.point)


def price_digits(prices: np.ndarray) -> int:
    """The fewest decimals that write every one of ``prices`` exactly (as MT5 writes the symbol's digits)."""
    sample = np.asarray(prices[:20_000], dtype=np.float64)
    for digits in range(0, 9):
        scaled = sample * 10.0**digits
        if np.all(np.abs(scaled - np.round(scaled)) < 1e-6 * np.maximum(1.0, np.abs(scaled)) + 1e-9):
            return digits
    return 8


# --- The broker ---------------------------------------------------------------------------------------------


@dataclass
class OpenPosition:
    """A position on the simulated account. ``profit`` is kept marked at the symbol's last quote."""

    ticket: int
    symbol: str
    side: Side
    volume: float
    open_price: float
    sl: float
    tp: float
    magic: int
    open_time_msc: int
    comment: str
    commission: float = 0.0
    swap: float = 0.0
    profit: float = 0.0

    def to_wire(self) -> wire.Position:
        return wire.Position(
            ticket=self.ticket, symbol=self.symbol, side=self.side, volume=self.volume,
            open_price=self.open_price, sl=self.sl, tp=self.tp, profit=self.profit, swap=self.swap,
            commission=self.commission, magic=self.magic, open_time_msc=self.open_time_msc, comment=self.comment,
        )  # fmt: skip


@dataclass(frozen=True)
class DealRecord:
    """One deal on the account (MT5's HistoryDeal*), as the DEAL message reports it."""

    deal: int
    order: int
    position_id: int
    symbol: str
    side: Side
    entry: Literal["IN", "OUT"]
    reason: str
    volume: float
    price: float
    profit: float
    swap: float
    commission: float
    magic: int
    time_msc: int
    comment: str


@dataclass(frozen=True)
class Execution:
    """What the trade server answered to one request (MqlTradeResult), with the deals it made."""

    retcode: int
    text: str
    time_msc: int
    ticket: int = 0
    price: float = 0.0
    volume: float = 0.0
    deals: tuple[DealRecord, ...] = ()

    @property
    def done(self) -> bool:
        return self.retcode == RETCODE_DONE


def _opposite(side: Side) -> Side:
    return "SELL" if side == "BUY" else "BUY"


def _money(value: float) -> float:
    # MT5 keeps account money in cents; rounding each amount keeps balance arithmetic free of drift.
    return round(value + 0.0, 2)


class SimulatedBroker:
    """The trade server of one hedging account in the account currency USD, shared by all its charts.

    Fills are market fills at the current quote (buy at the ask, sell at the bid) moved ``slippage_points``
    against the trader; stops and targets are checked on every quote of their symbol. Margin is the notional
    at the open price over ``leverage`` (1:100 by default). Commission is the spec's per lot on every deal.
    Swaps (the spec's swap_long/swap_short per lot per night) accrue at ``rollover`` and are settled by the
    closing deal; they are 0 unless a spec sets them.

    Order and position tickets count from ``first_ticket``: accounts on one trade server never share a ticket,
    so brokers simulating several accounts of one server start far apart.
    """

    def __init__(
        self,
        login: int = DEFAULT_LOGIN,
        balance: float = 100_000.0,
        *,
        currency: str = "USD",
        leverage: float = 100.0,
        slippage_points: float = 0.0,
        first_ticket: int = 100_000_001,
    ) -> None:
        if not balance > 0:
            raise SimulatorError(f"balance must be > 0, got {balance!r}")
        self.login = login
        self.currency = currency
        self.initial_balance = float(balance)
        self.balance = float(balance)
        self.leverage = float(leverage)
        self.slippage_points = float(slippage_points)
        self.specs: dict[str, SymbolSpec] = {}
        self.quotes: dict[str, tuple[float, float]] = {}
        self.positions: dict[int, OpenPosition] = {}  # in opening order, as MT5 lists them
        self.history: list[DealRecord] = []
        self.time_msc = 0  # server time of the latest quote
        self._next_order = first_ticket
        self._next_deal = 500_000_001

    # account state ----------------------------------------------------------------------------------------

    def add_symbol(self, spec: SymbolSpec) -> None:
        self.specs[spec.name] = spec

    @property
    def floating(self) -> float:
        return _money(sum(p.profit + p.swap for p in self.positions.values()))

    @property
    def equity(self) -> float:
        # Commissions were taken from the balance when charged, so they are in it already.
        return _money(self.balance + self.floating)

    @property
    def margin(self) -> float:
        return _money(sum(self._margin_for(p.symbol, p.volume, p.open_price) for p in self.positions.values()))

    @property
    def free_margin(self) -> float:
        return _money(self.equity - self.margin)

    def wire_positions(self) -> list[wire.Position]:
        """Every open position of the account, all symbols and magics, as TICK.positions carries them."""
        return [p.to_wire() for p in self.positions.values()]

    def margin_per_lot(self, symbol: str, ask: float) -> float:
        """What one lot of ``symbol`` bought at ``ask`` ties up, as OrderCalcMargin tells the EA."""
        return self._margin_for(symbol, 1.0, ask)

    def _margin_for(self, symbol: str, volume: float, price: float) -> float:
        return volume * price * self.specs[symbol].money_per_price / self.leverage

    # quotes, stops and targets ------------------------------------------------------------------------------

    def quote(
        self, symbol: str, time_msc: int, bid: float, ask: float, *, continuous: bool = False
    ) -> list[DealRecord]:
        """A new quote: mark the symbol's positions and close those whose stop or target it reached.

        ``continuous``: the price moved through every level between the previous quote and this one (a bar's
        path expanded to ticks), so a level it passed was traded at, however far this quote lies beyond it.
        """
        self.quotes[symbol] = (bid, ask)
        self.time_msc = max(self.time_msc, time_msc)
        deals: list[DealRecord] = []
        for pos in [p for p in self.positions.values() if p.symbol == symbol]:
            self._mark(pos)
            hit = self._stop_or_target(pos, bid, ask, continuous)
            if hit is not None:
                reason, price = hit
                level = pos.sl if reason == "SL" else pos.tp
                digits = self.specs[symbol].digits
                deals.append(self._close(pos, pos.volume, price, reason, f"[{reason.lower()} {level:.{digits}f}]"))
        return deals

    def set_quotes(self, quotes: dict[str, tuple[float, float]], time_msc: int) -> None:
        """Quotes whose stops and targets were already checked (replay checks them tick by tick itself): the
        positions are marked at them, and nothing is closed."""
        self.quotes.update(quotes)
        self.time_msc = max(self.time_msc, time_msc)
        for pos in self.positions.values():
            self._mark(pos)

    @staticmethod
    def _stop_or_target(
        pos: OpenPosition, bid: float, ask: float, continuous: bool = False
    ) -> tuple[str, float] | None:
        """("SL" or "TP", fill price) when this quote reaches the position's stop or target.

        A quote past the level by no more than the spread (or any distance on a continuous path) is taken as
        having traded through it, and fills at the level; a quote further past means the market gapped over
        it, and fills at the quote.
        """
        spread = math.inf if continuous else ask - bid
        if pos.side == "BUY":
            if pos.sl > 0 and bid <= pos.sl:
                return "SL", pos.sl if pos.sl - bid <= spread else bid
            if pos.tp > 0 and bid >= pos.tp:
                return "TP", pos.tp if bid - pos.tp <= spread else bid
        else:
            if pos.sl > 0 and ask >= pos.sl:
                return "SL", pos.sl if ask - pos.sl <= spread else ask
            if pos.tp > 0 and ask <= pos.tp:
                return "TP", pos.tp if pos.tp - ask <= spread else ask
        return None

    def _mark(self, pos: OpenPosition) -> None:
        bid, ask = self.quotes[pos.symbol]
        price = bid if pos.side == "BUY" else ask
        pos.profit = self._profit(pos, pos.volume, price)

    def _profit(self, pos: OpenPosition, volume: float, price: float) -> float:
        direction = 1.0 if pos.side == "BUY" else -1.0
        return _money((price - pos.open_price) * direction * volume * self.specs[pos.symbol].money_per_price)

    # commands ----------------------------------------------------------------------------------------------

    def execute(self, command: wire.Command, *, magic: int) -> Execution:
        """Carry out one COMMAND of the bridge for an EA whose magic number is ``magic``."""
        comment = f"{COMMENT_PREFIX}{command.command_id}"
        if command.action in ("OPEN", "ADD"):
            # A hedging account cannot add to a position: a scale-in is a new position in the same direction.
            return self.open(command.symbol, command.side, command.volume, sl=command.sl, tp=command.tp,
                             magic=magic, comment=comment, reason="EXPERT")  # fmt: skip
        if command.action == "CLOSE":
            return self.close(command.ticket, command.volume, reason="EXPERT", comment=comment)
        if command.action == "MODIFY":
            return self.modify(command.ticket, command.sl, command.tp)
        if command.action == "CLOSE_ALL":
            return self.close_all(reason="EXPERT", comment=comment)
        return Execution(RETCODE_INVALID, f"nothing to execute for {command.action}", self.time_msc)

    def open(
        self, symbol: str, side: Side, volume: float, *, sl: float = 0.0, tp: float = 0.0, magic: int = 0,
        comment: str = "", reason: str = "EXPERT",
    ) -> Execution:  # fmt: skip
        """A market order opening a new position."""
        volume, sl, tp = float(volume), float(sl), float(tp)
        refusal = self._refuse_open(symbol, side, volume, sl, tp)
        if refusal is not None:
            return refusal
        spec = self.specs[symbol]
        price = self._fill_price(symbol, side)
        if self._margin_for(symbol, volume, price) > self.free_margin:
            return self._refused(RETCODE_NO_MONEY, f"{volume:g} lots {symbol} need more than the free margin"
                                 f" {self.free_margin:.2f}")  # fmt: skip
        ticket = self._order_ticket()
        commission = _money(-spec.commission_per_lot * volume)
        pos = OpenPosition(ticket, symbol, side, volume, price, round(sl, spec.digits), round(tp, spec.digits),
                           magic, self.time_msc, comment[: wire.MAX_COMMENT_CHARS], commission=commission)  # fmt: skip
        self.positions[ticket] = pos
        self.balance = _money(self.balance + commission)
        self._mark(pos)
        deal = self._deal(pos, side, "IN", reason, volume, price, 0.0, commission, ticket, pos.comment)
        return Execution(RETCODE_DONE, "Request executed", self.time_msc, ticket, price, volume, (deal,))

    def close(self, ticket: int, volume: float = 0.0, *, reason: str = "EXPERT", comment: str = "") -> Execution:
        """A market order closing a position: all of it for volume 0 or at least its volume, else a part.

        A part is rounded down to the volume step, so the trader never closes more than asked; a part that
        rounds to nothing, or would leave less than the minimum volume open, is refused.
        """
        pos = self.positions.get(ticket)
        if pos is None:
            return self._refused(RETCODE_POSITION_CLOSED, f"position #{ticket} does not exist")
        if pos.symbol not in self.quotes:
            return self._refused(RETCODE_MARKET_CLOSED, f"no quote for {pos.symbol} yet")
        spec = self.specs[pos.symbol]
        part = pos.volume if volume <= 0 or volume >= pos.volume - 1e-9 else _round_down(volume, spec.volume_step)
        if part <= 0 or (part < pos.volume and pos.volume - part < spec.volume_min - 1e-9):
            return self._refused(RETCODE_INVALID_VOLUME, f"cannot close {volume:g} of {pos.volume:g} lots: step"
                                 f" {spec.volume_step:g}, minimum {spec.volume_min:g}")  # fmt: skip
        price = self._fill_price(pos.symbol, _opposite(pos.side))
        deal = self._close(pos, part, price, reason, comment)
        return Execution(RETCODE_DONE, "Request executed", self.time_msc, ticket, price, part, (deal,))

    def close_all(self, *, reason: str = "EXPERT", comment: str = "") -> Execution:
        """Close every position of the account, in opening order; the volume reported is the lots closed."""
        deals = []
        for ticket in list(self.positions):
            done = self.close(ticket, reason=reason, comment=comment)
            deals.extend(done.deals)
        closed = round(sum(d.volume for d in deals), 8)
        text = f"closed {len(deals)} position{'s' if len(deals) != 1 else ''}"
        return Execution(RETCODE_DONE, text, self.time_msc, 0, 0.0, closed, tuple(deals))

    def modify(self, ticket: int, sl: float, tp: float) -> Execution:
        """Set a position's stop loss and take profit (0 removes one)."""
        pos = self.positions.get(ticket)
        if pos is None:
            return self._refused(RETCODE_POSITION_CLOSED, f"position #{ticket} does not exist")
        spec = self.specs[pos.symbol]
        sl, tp = round(sl, spec.digits), round(tp, spec.digits)
        if sl == pos.sl and tp == pos.tp:
            return self._refused(RETCODE_NO_CHANGES, "no changes: the stop loss and take profit are already set")
        bid, ask = self.quotes[pos.symbol]
        if self._frozen(pos, spec, bid, ask):
            return self._refused(RETCODE_FROZEN, f"#{ticket}: price within the freeze level of a stop")
        problem = _stops_problem(spec, pos.side, sl, tp, bid, ask)
        if problem:
            return self._refused(RETCODE_INVALID_STOPS, f"#{ticket}: {problem}")
        pos.sl, pos.tp = sl, tp
        return Execution(RETCODE_DONE, "Request executed", self.time_msc, ticket)

    # the trader's own hand ----------------------------------------------------------------------------------

    def manual_open(
        self, symbol: str, side: Side, volume: float, *, sl: float = 0.0, tp: float = 0.0, magic: int = 0,
        comment: str = "",
    ) -> Execution:  # fmt: skip
        """A position the trader opens by hand in the terminal (deal reason CLIENT, magic 0 by default)."""
        return self.open(symbol, side, volume, sl=sl, tp=tp, magic=magic, comment=comment, reason="CLIENT")

    def manual_close(self, ticket: int, volume: float = 0.0) -> Execution:
        """The trader closes a position (all of it, or ``volume`` lots) by hand: deal reason CLIENT."""
        return self.close(ticket, volume, reason="CLIENT")

    # internals ---------------------------------------------------------------------------------------------

    def _refuse_open(self, symbol: str, side: Side, volume: float, sl: float, tp: float) -> Execution | None:
        spec = self.specs.get(symbol)
        if spec is None:
            return self._refused(RETCODE_INVALID, f"unknown symbol {symbol!r}")
        if symbol not in self.quotes:
            return self._refused(RETCODE_MARKET_CLOSED, f"no quote for {symbol} yet")
        if not _volume_ok(volume, spec):
            return self._refused(RETCODE_INVALID_VOLUME, f"{volume:g} lots: minimum {spec.volume_min:g}, step"
                                 f" {spec.volume_step:g}, maximum {spec.volume_max:g}")  # fmt: skip
        bid, ask = self.quotes[symbol]
        problem = _stops_problem(spec, side, round(sl, spec.digits), round(tp, spec.digits), bid, ask)
        if problem:
            return self._refused(RETCODE_INVALID_STOPS, problem)
        return None

    def _fill_price(self, symbol: str, side: Side) -> float:
        spec = self.specs[symbol]
        bid, ask = self.quotes[symbol]
        slip = self.slippage_points * spec.point
        return round(ask + slip if side == "BUY" else bid - slip, spec.digits)

    def _frozen(self, pos: OpenPosition, spec: SymbolSpec, bid: float, ask: float) -> bool:
        if spec.freeze_level <= 0:
            return False
        price = bid if pos.side == "BUY" else ask
        freeze = spec.freeze_level * spec.point
        return any(level > 0 and abs(price - level) < freeze for level in (pos.sl, pos.tp))

    def rollover(self, nights: int) -> None:
        """The daily rollover: each position is charged (or paid) its symbol's swap per lot for ``nights``
        (3 on the rollover that covers the weekend). It accrues on the position until a deal closes it."""
        for pos in self.positions.values():
            spec = self.specs[pos.symbol]
            rate = spec.swap_long if pos.side == "BUY" else spec.swap_short
            pos.swap = _money(pos.swap + rate * pos.volume * nights)

    def _close(self, pos: OpenPosition, volume: float, price: float, reason: str, comment: str) -> DealRecord:
        spec = self.specs[pos.symbol]
        profit = self._profit(pos, volume, price)
        commission = _money(-spec.commission_per_lot * volume)
        # The swap accrued on the part closed is settled by the closing deal, as MT5 does (DEAL_SWAP).
        swap = pos.swap if volume >= pos.volume - 1e-9 else _money(pos.swap * volume / pos.volume)
        self.balance = _money(self.balance + profit + commission + swap)
        remaining = round(pos.volume - volume, 8)
        deal = self._deal(pos, _opposite(pos.side), "OUT", reason, volume, price, profit, commission,
                          self._order_ticket(), comment, swap)  # fmt: skip
        if remaining <= 1e-9:
            del self.positions[pos.ticket]
        else:
            pos.volume = remaining
            pos.commission = _money(pos.commission + commission)
            pos.swap = _money(pos.swap - swap)
            self._mark(pos)
        return deal

    def _deal(
        self, pos: OpenPosition, side: Side, entry: Literal["IN", "OUT"], reason: str, volume: float, price: float,
        profit: float, commission: float, order: int, comment: str, swap: float = 0.0,
    ) -> DealRecord:  # fmt: skip
        deal = DealRecord(
            deal=self._next_deal, order=order, position_id=pos.ticket, symbol=pos.symbol, side=side, entry=entry,
            reason=reason, volume=volume, price=price, profit=profit, swap=swap, commission=commission,
            magic=pos.magic, time_msc=self.time_msc, comment=comment[: wire.MAX_COMMENT_CHARS],
        )  # fmt: skip
        self._next_deal += 1
        self.history.append(deal)
        return deal

    def _order_ticket(self) -> int:
        # One counter for orders and positions: in MT5 a position's ticket is its opening order's ticket.
        ticket = self._next_order
        self._next_order += 1
        return ticket

    def _refused(self, retcode: int, text: str) -> Execution:
        return Execution(retcode, text, self.time_msc)


def _round_down(volume: float, step: float) -> float:
    return round(math.floor(volume / step + 1e-9) * step, 8)


def _volume_ok(volume: float, spec: SymbolSpec) -> bool:
    steps = volume / spec.volume_step
    return (
        spec.volume_min - 1e-9 <= volume <= spec.volume_max + 1e-9
        and abs(steps - round(steps)) < 1e-6
    )


def _stops_problem(spec: SymbolSpec, side: Side, sl: float, tp: float, bid: float, ask: float) -> str:
    """Why MT5 would refuse these stops for a position of ``side`` at this quote; "" when it would not.

    Buys are checked against the bid and sells against the ask (the price each closes at), and a stop or
    target must lie on its own side of that price, at least the stops level away.
    """
    level = spec.stops_level * spec.point
    half_point = spec.point / 2  # prices are rounded to the point: compare to within half of one
    price = bid if side == "BUY" else ask
    toward_loss = -1.0 if side == "BUY" else 1.0  # where a stop lies relative to the price
    name = "bid" if side == "BUY" else "ask"
    for kind, stop, direction in (("stop loss", sl, toward_loss), ("take profit", tp, -toward_loss)):
        if stop <= 0:
            continue
        distance = (stop - price) * direction
        if distance <= half_point:
            return f"{kind} {stop:.{spec.digits}f} is on the wrong side of the {name} {price:.{spec.digits}f}"
        if distance < level - half_point:
            return (f"{kind} {stop:.{spec.digits}f} is {distance / spec.point:.0f} points from the {name}"
                    f" {price:.{spec.digits}f}, inside the stops level of {spec.stops_level}")  # fmt: skip
    return ""


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
        warmup_ms = int(round(warmup_days * MS_PER_DAY))
        if data is None:
            from mt5bridge.synthetic import generate_ticks

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

        stop_deals = self.broker.quote(symbol, server_ms, bid, ask)
        self._report_deals(stop_deals, chart)
        if chart.offline and not self._introduce_again(chart):
            # As the EA: no TICK while no bridge has welcomed the chart; the account lives on meanwhile.
            return TickOutcome(
                symbol=symbol, seq=-1, time_msc=server_ms, bid=bid, ask=ask, command=None, error=None,
                timed_out=True, execution=None, stop_deals=tuple(stop_deals), offline=True,
            )  # fmt: skip
        seq, reply = chart.tick(self.broker, time_msc=server_ms, bid=bid, ask=ask,
                                volume=float(ticks.volume[row]), deadline_ms=self.deadline_ms(chart))  # fmt: skip
        command = reply if isinstance(reply, wire.Command) else None
        execution = self._carry_out(chart, command) if command is not None else None
        return TickOutcome(
            symbol=symbol, seq=seq, time_msc=server_ms, bid=bid, ask=ask, command=command,
            error=reply if isinstance(reply, wire.ErrorReply) else None, timed_out=reply is None,
            execution=execution, stop_deals=tuple(stop_deals),
        )  # fmt: skip

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
