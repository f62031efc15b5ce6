"""The simulated trade server of one hedging account: quotes, positions, fills, stops and targets, balance,
equity and margin, and the deals all of it produces, with MT5's return codes. It knows nothing about sockets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from mt5bridge.bridge import protocol as wire

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
    from mt5bridge.market.synthetic import PROFILES

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


