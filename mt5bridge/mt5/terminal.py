"""The running MetaTrader 5 terminal, read through MetaQuotes' ``MetaTrader5`` Python package.

That package talks to a terminal on the same Windows machine and exists only for Windows
(``pip install "mt5bridge[mt5]"`` installs it there and nowhere else). Everything here reads; nothing sends
an order: trading goes through the EA and the bridge.

**Times.** The terminal returns every time (ticks, bars, positions, deals) as its trade server's wall clock
written as if it were UTC, and reads the times it is given the same way. :class:`Terminal` takes the
server's offset from UTC (FTMO: UTC+2, UTC+3 in US summer time) and converts: the methods take and return
UTC unless their names say ``server``. With an offset of 0 the "UTC" times are the server's clock.

Where the package is missing, or the platform is not Windows, :func:`import_mt5` raises
:class:`TerminalUnavailable` with the words to show the trader. ``platform`` is a parameter so that the
commands can be run against a stand-in module elsewhere.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone

import numpy as np

from mt5bridge.market.readers import TIMEFRAME_LABELS, Bars, Ticks

NEEDS_TERMINAL = (
    "needs Windows with the MetaTrader 5 terminal installed, running and logged in, and MetaQuotes' Python"
    ' package for it: pip install "mt5bridge[mt5]"'
)

RES_S_OK = 1  # last_error() code for "no error"
_DAY_MS = 86_400_000
_BAR_CHUNK_MS = 30 * _DAY_MS  # below the terminal's default "Max bars in chart" (100 000) even on M1
_TIMEFRAME_CONSTANTS = {60: "TIMEFRAME_M1", 300: "TIMEFRAME_M5", 900: "TIMEFRAME_M15", 3600: "TIMEFRAME_H1"}
# The package's own values, used only should a build lack the named constant.
_DEFAULTS = {
    "COPY_TICKS_ALL": -1, "TICK_FLAG_BID": 2, "TICK_FLAG_ASK": 4,
    "TIMEFRAME_M1": 1, "TIMEFRAME_M5": 5, "TIMEFRAME_M15": 15, "TIMEFRAME_H1": 16385,
    "POSITION_TYPE_BUY": 0, "POSITION_TYPE_SELL": 1, "DEAL_TYPE_BUY": 0, "DEAL_TYPE_SELL": 1,
    "DEAL_ENTRY_IN": 0, "DEAL_ENTRY_OUT": 1, "DEAL_ENTRY_INOUT": 2, "DEAL_ENTRY_OUT_BY": 3,
}
DEAL_REASONS = ("CLIENT", "MOBILE", "WEB", "EXPERT", "SL", "TP", "SO", "ROLLOVER", "VMARGIN", "SPLIT")
DEAL_ENTRIES = ("IN", "OUT", "INOUT", "OUT_BY")


class TerminalUnavailable(RuntimeError):
    """No terminal can be reached from here: not Windows, or the MetaTrader5 package is not installed."""


class TerminalError(RuntimeError):
    """The terminal answered a request with an error; the message has the call and ``last_error()``."""


def import_mt5(platform: str | None = None):
    """The ``MetaTrader5`` module, or TerminalUnavailable saying what is missing."""
    platform = sys.platform if platform is None else platform
    if platform != "win32":
        raise TerminalUnavailable(f"this machine runs {platform}; this command {NEEDS_TERMINAL}")
    try:
        import MetaTrader5
    except ImportError as exc:
        raise TerminalUnavailable(f"the MetaTrader5 package is not installed ({exc}); this command {NEEDS_TERMINAL}"
                                  ) from None
    return MetaTrader5


def _server_datetime(server_ms: int) -> datetime:
    # The package converts a naive datetime with the machine's local zone; an aware UTC one is taken as is.
    return datetime.fromtimestamp(server_ms // 1000, tz=timezone.utc)


class Terminal:
    """An open connection to the terminal; close it (or use ``with``) to release the package's link."""

    def __init__(self, mt5, *, server_utc_offset_s: int = 0) -> None:
        self.mt5 = mt5
        self.offset_ms = int(server_utc_offset_s) * 1000

    @classmethod
    def connect(cls, *, server_utc_offset_s: int = 0, path: str | None = None, platform: str | None = None
                ) -> Terminal:
        """Attach to the running terminal (``path``: its terminal64.exe, when several are installed)."""
        mt5 = import_mt5(platform)
        ok = mt5.initialize(path) if path else mt5.initialize()
        if not ok:
            code, text = _error(mt5)
            where = f" at {path}" if path else ""
            raise TerminalError(
                f"MetaTrader5.initialize() failed: last_error() = ({code}, {text!r}); start the MetaTrader 5"
                f" terminal{where}, log in to the account, and allow algorithmic trading (Tools > Options >"
                " Expert Advisors)"
            )
        return cls(mt5, server_utc_offset_s=server_utc_offset_s)

    def close(self) -> None:
        self.mt5.shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _const(self, name: str) -> int:
        return int(getattr(self.mt5, name, _DEFAULTS.get(name, 0)))

    def _failed(self, call: str) -> TerminalError:
        code, text = _error(self.mt5)
        return TerminalError(f"{call} failed: last_error() = ({code}, {text!r})")

    # --- account and symbols ---------------------------------------------------------------------------

    def account(self) -> dict:
        """``login`` (as text, as the journal keys it), ``server``, ``currency``."""
        info = self.mt5.account_info()
        if info is None:
            raise self._failed("account_info()")
        return {"login": str(info.login), "server": str(info.server), "currency": str(info.currency)}

    def symbol_spec(self, symbol: str) -> dict:
        """The symbol's trading specification under the key names of the EA's HELLO (see protocol.py),
        plus ``spread`` (the current spread in points)."""
        if not self.mt5.symbol_select(symbol, True):
            code, text = _error(self.mt5)
            raise TerminalError(
                f"symbol {symbol!r} is not known to the terminal (symbol_select: last_error() = ({code}, {text!r}));"
                " check its exact name in Market Watch (brokers add suffixes, e.g. EURUSD.r)"
            )
        info = self.mt5.symbol_info(symbol)
        if info is None:
            raise self._failed(f"symbol_info({symbol!r})")
        return {
            "digits": int(info.digits), "point": float(info.point), "tick_size": float(info.trade_tick_size),
            "tick_value": float(info.trade_tick_value), "contract_size": float(info.trade_contract_size),
            "volume_min": float(info.volume_min), "volume_step": float(info.volume_step),
            "volume_max": float(info.volume_max), "stops_level": int(info.trade_stops_level),
            "freeze_level": int(info.trade_freeze_level), "spread": int(info.spread),
        }

    # --- history -----------------------------------------------------------------------------------------

    def ticks(self, symbol: str, from_ms: int, to_ms: int) -> tuple[Ticks, dict]:
        """Quotes from ``from_ms`` (inclusive) to ``to_ms`` (exclusive), UTC, and what was left out.

        Asked for day by day (every tick, ``COPY_TICKS_ALL``). Kept: ticks that change the bid or the ask with
        both sides known; left out and counted: trade-only ticks (last price or volume) and crossed quotes
        (bid above ask), which are no market a position can be opened in.
        """
        start, end = from_ms + self.offset_ms, to_ms + self.offset_ms
        parts = []
        for a in range(start, end, _DAY_MS):
            b = min(a + _DAY_MS, end)
            got = self.mt5.copy_ticks_range(symbol, _server_datetime(a), _server_datetime(b + 1000),
                                            self._const("COPY_TICKS_ALL"))
            if got is None:
                raise self._failed(f"copy_ticks_range({symbol!r}, {_text(a)}, {_text(b)}, COPY_TICKS_ALL)")
            got = np.asarray(got)
            if got.size:
                t = got["time_msc"].astype(np.int64)
                parts.append(got[(t >= a) & (t < b)])  # the call's ends are whole seconds and inclusive
        raw = np.concatenate(parts) if parts else None
        if raw is None or raw.size == 0:
            return Ticks(*(np.empty(0, dtype=dt) for dt in (np.int64, float, float, float))), {"received": 0}
        raw = raw[np.argsort(raw["time_msc"], kind="stable")]
        bid, ask = raw["bid"].astype(float), raw["ask"].astype(float)
        quote_bits = self._const("TICK_FLAG_BID") | self._const("TICK_FLAG_ASK")
        quote = (raw["flags"].astype(np.int64) & quote_bits) != 0
        known = (bid > 0) & (ask > 0)
        crossed = known & quote & (bid > ask)
        keep = known & quote & ~crossed
        volume = np.where(raw["volume_real"] > 0, raw["volume_real"].astype(float), raw["volume"].astype(float))
        ticks = Ticks(raw["time_msc"].astype(np.int64)[keep] - self.offset_ms, bid[keep], ask[keep], volume[keep])
        stats = {"received": int(raw.size), "kept": int(keep.sum()), "not_quotes": int((~(known & quote)).sum()),
                 "crossed": int(crossed.sum())}
        return ticks, stats

    def bars(self, symbol: str, timeframe_s: int, from_ms: int, to_ms: int, point: float) -> Bars:
        """Bars of ``timeframe_s`` opening from ``from_ms`` (inclusive) to ``to_ms`` (exclusive), UTC."""
        if timeframe_s not in _TIMEFRAME_CONSTANTS:
            raise ValueError(f"timeframe {timeframe_s} s: one of {', '.join(TIMEFRAME_LABELS.values())}")
        tf = self._const(_TIMEFRAME_CONSTANTS[timeframe_s])
        start, end = from_ms + self.offset_ms, to_ms + self.offset_ms
        parts = []
        for a in range(start, end, _BAR_CHUNK_MS):
            b = min(a + _BAR_CHUNK_MS, end)
            got = self.mt5.copy_rates_range(symbol, tf, _server_datetime(a), _server_datetime(b))
            if got is None:
                raise self._failed(f"copy_rates_range({symbol!r}, {TIMEFRAME_LABELS[timeframe_s]}, {_text(a)},"
                                   f" {_text(b)})")
            got = np.asarray(got)
            if got.size:
                t = got["time"].astype(np.int64) * 1000
                parts.append(got[(t >= a) & (t < b)])
        raw = np.concatenate(parts) if parts else np.empty(0, dtype=[("time", np.int64)])
        if raw.size == 0:
            empty = np.empty(0)
            return Bars(np.empty(0, dtype=np.int64), empty, empty, empty, empty, empty, empty, timeframe_s, point)
        raw = raw[np.argsort(raw["time"], kind="stable")]
        return Bars(
            raw["time"].astype(np.int64) * 1000 - self.offset_ms, raw["open"].astype(float),
            raw["high"].astype(float), raw["low"].astype(float), raw["close"].astype(float),
            raw["tick_volume"].astype(float), raw["spread"].astype(float), timeframe_s, point,
        )

    # --- the account's book ------------------------------------------------------------------------------

    def positions(self) -> list[dict]:
        """Open positions, every symbol and magic, in the journal's terms; times are the server's."""
        got = self.mt5.positions_get()
        if got is None:
            got = self._empty_or_fail("positions_get()")
        buy = self._const("POSITION_TYPE_BUY")
        return [
            {"ticket": int(p.ticket), "symbol": str(p.symbol), "side": "BUY" if p.type == buy else "SELL",
             "volume": float(p.volume), "open_price": float(p.price_open), "sl": float(p.sl), "tp": float(p.tp),
             "profit": float(p.profit), "swap": float(p.swap), "magic": int(p.magic),
             "open_time_msc": int(p.time_msc), "comment": str(p.comment)}
            for p in got
        ]

    def deals_server(self, from_server_ms: int, to_server_ms: int) -> list[dict]:
        """Buy and sell deals (not balance, credit or commission entries) from ``from_server_ms`` (inclusive)
        to ``to_server_ms`` (exclusive), server time, in the journal's terms."""
        got = self.mt5.history_deals_get(_server_datetime(from_server_ms), _server_datetime(to_server_ms + 1000))
        if got is None:
            got = self._empty_or_fail(f"history_deals_get({_text(from_server_ms)}, {_text(to_server_ms)})")
        buy, sell = self._const("DEAL_TYPE_BUY"), self._const("DEAL_TYPE_SELL")
        entries = {self._const(f"DEAL_ENTRY_{name}"): name for name in DEAL_ENTRIES}
        reasons = {int(getattr(self.mt5, f"DEAL_REASON_{name}", i)): name for i, name in enumerate(DEAL_REASONS)}
        deals = []
        for d in got:
            if d.type not in (buy, sell) or not from_server_ms <= d.time_msc < to_server_ms:
                continue
            deals.append({
                "deal": int(d.ticket), "order": int(d.order), "position_id": int(d.position_id),
                "symbol": str(d.symbol), "side": "BUY" if d.type == buy else "SELL",
                "entry": entries.get(int(d.entry), str(d.entry)), "reason": reasons.get(int(d.reason), str(d.reason)),
                "volume": float(d.volume), "price": float(d.price), "profit": float(d.profit),
                "swap": float(d.swap), "commission": float(d.commission), "magic": int(d.magic),
                "time_msc": int(d.time_msc), "comment": str(d.comment),
            })
        deals.sort(key=lambda d: (d["time_msc"], d["deal"]))
        return deals

    def _empty_or_fail(self, call: str) -> tuple:
        # Some builds answer "nothing" with None and last_error() = (1, 'Success') instead of an empty tuple.
        code, _ = _error(self.mt5)
        if code == RES_S_OK:
            return ()
        raise self._failed(call)


def _error(mt5) -> tuple[int, str]:
    err = mt5.last_error()
    try:
        code, text = err
        return int(code), str(text)
    except (TypeError, ValueError):
        return -1, str(err)


def _text(server_ms: int) -> str:
    return datetime.fromtimestamp(server_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
