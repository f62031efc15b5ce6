# ruff: noqa: N999  (the module is named as the package it stands in for)
"""A stand-in for MetaQuotes' ``MetaTrader5`` package, for running ``history`` and ``reconcile`` off Windows.

It mirrors the real package's function names, signatures, constants and returned field names: numpy
structured arrays from ``copy_ticks_range`` and ``copy_rates_range``, named tuples from ``symbol_info``,
``account_info``, ``positions_get`` and ``history_deals_get``, ``None`` plus ``last_error()`` on failure. Like
the real terminal it holds every time as the trade server's clock and reads a timezone-aware ``datetime``
(or seconds since 1970) as that clock.

Tests fill it through ``_terminal`` (names with a leading underscore are not part of the real package).
"""

from __future__ import annotations

from collections import namedtuple
from datetime import datetime

import numpy as np

__version__ = "5.0.5120"
__author__ = "MetaQuotes Ltd."

# --- constants (values as in the real package) ---------------------------------------------------------------
TIMEFRAME_M1 = 1
TIMEFRAME_M5 = 5
TIMEFRAME_M15 = 15
TIMEFRAME_M30 = 30
TIMEFRAME_H1 = 16385
TIMEFRAME_H4 = 16388
TIMEFRAME_D1 = 16408

COPY_TICKS_ALL = -1
COPY_TICKS_INFO = 1
COPY_TICKS_TRADE = 2

TICK_FLAG_BID = 2
TICK_FLAG_ASK = 4
TICK_FLAG_LAST = 8
TICK_FLAG_VOLUME = 16
TICK_FLAG_BUY = 32
TICK_FLAG_SELL = 64

POSITION_TYPE_BUY = 0
POSITION_TYPE_SELL = 1

DEAL_TYPE_BUY = 0
DEAL_TYPE_SELL = 1
DEAL_TYPE_BALANCE = 2
DEAL_TYPE_CREDIT = 3
DEAL_TYPE_CHARGE = 4
DEAL_TYPE_CORRECTION = 5
DEAL_TYPE_BONUS = 6
DEAL_TYPE_COMMISSION = 7

DEAL_ENTRY_IN = 0
DEAL_ENTRY_OUT = 1
DEAL_ENTRY_INOUT = 2
DEAL_ENTRY_OUT_BY = 3

DEAL_REASON_CLIENT = 0
DEAL_REASON_MOBILE = 1
DEAL_REASON_WEB = 2
DEAL_REASON_EXPERT = 3
DEAL_REASON_SL = 4
DEAL_REASON_TP = 5
DEAL_REASON_SO = 6
DEAL_REASON_ROLLOVER = 7
DEAL_REASON_VMARGIN = 8
DEAL_REASON_SPLIT = 9

POSITION_REASON_CLIENT = 0
POSITION_REASON_MOBILE = 1
POSITION_REASON_WEB = 2
POSITION_REASON_EXPERT = 3

RES_S_OK = 1
RES_E_FAIL = -1
RES_E_INVALID_PARAMS = -2
RES_E_NOT_FOUND = -4
RES_E_INTERNAL_FAIL_INIT = -10003
RES_E_INTERNAL_FAIL_CONNECT = -10004

# --- record layouts ------------------------------------------------------------------------------------------
TICK_DTYPE = np.dtype([
    ("time", "<i8"), ("bid", "<f8"), ("ask", "<f8"), ("last", "<f8"), ("volume", "<u8"), ("time_msc", "<i8"),
    ("flags", "<u4"), ("volume_real", "<f8"),
])
RATE_DTYPE = np.dtype([
    ("time", "<i8"), ("open", "<f8"), ("high", "<f8"), ("low", "<f8"), ("close", "<f8"), ("tick_volume", "<u8"),
    ("spread", "<i4"), ("real_volume", "<u8"),
])

AccountInfo = namedtuple("AccountInfo", [
    "login", "trade_mode", "leverage", "limit_orders", "margin_so_mode", "trade_allowed", "trade_expert",
    "margin_mode", "currency_digits", "fifo_close", "balance", "credit", "profit", "equity", "margin",
    "margin_free", "margin_level", "margin_so_call", "margin_so_so", "margin_initial", "margin_maintenance",
    "assets", "liabilities", "commission_blocked", "name", "server", "currency", "company",
])
SymbolInfo = namedtuple("SymbolInfo", [
    "custom", "chart_mode", "select", "visible", "time", "digits", "spread", "spread_float", "trade_calc_mode",
    "trade_mode", "trade_stops_level", "trade_freeze_level", "trade_exemode", "filling_mode", "bid", "ask",
    "point", "trade_tick_value", "trade_tick_value_profit", "trade_tick_value_loss", "trade_tick_size",
    "trade_contract_size", "volume_min", "volume_max", "volume_step", "volume_limit", "currency_base",
    "currency_profit", "currency_margin", "description", "name", "path",
])
TradePosition = namedtuple("TradePosition", [
    "ticket", "time", "time_msc", "time_update", "time_update_msc", "type", "magic", "identifier", "reason",
    "volume", "price_open", "sl", "tp", "price_current", "swap", "profit", "symbol", "comment", "external_id",
])
TradeDeal = namedtuple("TradeDeal", [
    "ticket", "order", "time", "time_msc", "type", "entry", "magic", "position_id", "reason", "volume", "price",
    "commission", "swap", "profit", "fee", "symbol", "comment", "external_id",
])


def symbol(name: str, *, digits: int = 5, point: float = 1e-5, spread: int = 8, tick_value: float = 1.0,
           contract_size: float = 100000.0, stops_level: int = 0, freeze_level: int = 0) -> SymbolInfo:
    """A SymbolInfo as a broker's FX symbol has it (a helper for tests, not in the real package)."""
    return SymbolInfo(
        custom=False, chart_mode=0, select=True, visible=True, time=0, digits=digits, spread=spread,
        spread_float=True, trade_calc_mode=0, trade_mode=4, trade_stops_level=stops_level,
        trade_freeze_level=freeze_level, trade_exemode=2, filling_mode=3, bid=0.0, ask=0.0, point=point,
        trade_tick_value=tick_value, trade_tick_value_profit=tick_value, trade_tick_value_loss=tick_value,
        trade_tick_size=point, trade_contract_size=contract_size, volume_min=0.01, volume_max=100.0,
        volume_step=0.01, volume_limit=0.0, currency_base=name[:3], currency_profit=name[3:6],
        currency_margin=name[:3], description=name, name=name, path=f"Forex\\{name}",
    )


class _Terminal:
    """What the fake terminal holds; every time is server time."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.init_error: tuple[int, str] | None = None
        self.initialized = False
        self.calls: list[tuple] = []
        self.error: tuple[int, str] = (RES_S_OK, "Success")
        self.account = AccountInfo(
            login=1510234567, trade_mode=0, leverage=100, limit_orders=200, margin_so_mode=0, trade_allowed=True,
            trade_expert=True, margin_mode=2, currency_digits=2, fifo_close=False, balance=100000.0, credit=0.0,
            profit=0.0, equity=100000.0, margin=0.0, margin_free=100000.0, margin_level=0.0, margin_so_call=100.0,
            margin_so_so=50.0, margin_initial=0.0, margin_maintenance=0.0, assets=0.0, liabilities=0.0,
            commission_blocked=0.0, name="Trader", server="FTMO-Demo", currency="USD",
            company="FTMO Global Markets Ltd",
        )
        self.symbols: dict[str, SymbolInfo] = {}
        self.ticks: dict[str, np.ndarray] = {}
        self.rates: dict[tuple[str, int], np.ndarray] = {}
        self.positions: list[TradePosition] = []
        self.deals: list[TradeDeal] = []


_terminal = _Terminal()


def _seconds(value) -> int:
    if isinstance(value, datetime):
        return int(value.timestamp())  # a naive datetime is taken in the machine's zone, as the real package does
    return int(value)


def _ready(call: tuple) -> bool:
    _terminal.calls.append(call)
    if not _terminal.initialized:
        _terminal.error = (RES_E_INTERNAL_FAIL_CONNECT, "No IPC connection")
        return False
    _terminal.error = (RES_S_OK, "Success")
    return True


# --- the package's functions ---------------------------------------------------------------------------------


def initialize(path=None, *, login=None, password=None, server=None, timeout=60000, portable=False) -> bool:
    _terminal.calls.append(("initialize", path))
    if _terminal.init_error is not None:
        _terminal.error = _terminal.init_error
        return False
    _terminal.initialized = True
    _terminal.error = (RES_S_OK, "Success")
    return True


def shutdown() -> None:
    _terminal.calls.append(("shutdown",))
    _terminal.initialized = False


def last_error() -> tuple[int, str]:
    return _terminal.error


def version():
    return (500, 5120, "20 Jun 2025") if _terminal.initialized else None


def account_info():
    if not _ready(("account_info",)):
        return None
    return _terminal.account


def symbol_select(symbol, enable=None) -> bool:
    if not _ready(("symbol_select", symbol, enable)):
        return False
    if symbol not in _terminal.symbols:
        _terminal.error = (RES_E_NOT_FOUND, "Terminal: Not found")
        return False
    return True


def symbol_info(symbol):
    if not _ready(("symbol_info", symbol)):
        return None
    if symbol not in _terminal.symbols:
        _terminal.error = (RES_E_NOT_FOUND, "Terminal: Not found")
        return None
    return _terminal.symbols[symbol]


def copy_ticks_range(symbol, date_from, date_to, flags):
    if not _ready(("copy_ticks_range", symbol, date_from, date_to, flags)):
        return None
    if symbol not in _terminal.symbols:
        _terminal.error = (RES_E_INVALID_PARAMS, "Invalid params")
        return None
    ticks = _terminal.ticks.get(symbol, np.empty(0, dtype=TICK_DTYPE))
    lo, hi = _seconds(date_from) * 1000, _seconds(date_to) * 1000
    t = ticks["time_msc"]
    out = ticks[(t >= lo) & (t <= hi)]
    if flags == COPY_TICKS_INFO:
        out = out[(out["flags"] & (TICK_FLAG_BID | TICK_FLAG_ASK)) != 0]
    elif flags == COPY_TICKS_TRADE:
        out = out[(out["flags"] & (TICK_FLAG_LAST | TICK_FLAG_VOLUME)) != 0]
    return out.copy()


def copy_rates_range(symbol, timeframe, date_from, date_to):
    if not _ready(("copy_rates_range", symbol, timeframe, date_from, date_to)):
        return None
    if symbol not in _terminal.symbols:
        _terminal.error = (RES_E_INVALID_PARAMS, "Invalid params")
        return None
    rates = _terminal.rates.get((symbol, timeframe), np.empty(0, dtype=RATE_DTYPE))
    lo, hi = _seconds(date_from), _seconds(date_to)
    return rates[(rates["time"] >= lo) & (rates["time"] <= hi)].copy()


def positions_total() -> int:
    return len(_terminal.positions) if _ready(("positions_total",)) else 0


def positions_get(symbol=None, group=None, ticket=None):
    if not _ready(("positions_get", symbol, group, ticket)):
        return None
    found = [p for p in _terminal.positions if (symbol is None or p.symbol == symbol)
             and (ticket is None or p.ticket == ticket)]
    return tuple(found)


def history_deals_get(date_from=None, date_to=None, group=None, ticket=None, position=None):
    if not _ready(("history_deals_get", date_from, date_to, group, ticket, position)):
        return None
    if ticket is not None:
        return tuple(d for d in _terminal.deals if d.ticket == ticket)
    if position is not None:
        return tuple(d for d in _terminal.deals if d.position_id == position)
    lo, hi = _seconds(date_from), _seconds(date_to)
    return tuple(d for d in _terminal.deals if lo <= d.time <= hi)
