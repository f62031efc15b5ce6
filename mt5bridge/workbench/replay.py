"""Replay: recorded prices through the decision engine the bridge runs, with a simulated broker in place of the EA.

What happens on each tick is what happens live, in the same order as the EA simulator plays it: the broker
closes any position whose stop or target the quote reaches, the engine gets the tick with the account's
balance and equity and every position, and a command it emits is carried out at once by the broker
(``mt5bridge.simulator.SimulatedBroker``: fills at bid/ask plus slippage, commission per lot, stops and freeze
levels, partial closes, gaps filled at the gap price) and reported back with ``on_result``; the book is then
synced into the engine exactly as the node syncs a TICK's positions.

Ticks on which nothing happens stay in C (``ReplayLoop``): the engine's tick, the account's equity and FTMO's
own accounting (the Prague day, both floors, the worst losses, any breach), measured beside the engine's guard
rather than by it, so a replay can catch the engine out. Nothing reads the wall clock: the same input and
configuration give the same result.

Before the account starts, ``warmup_days`` of each symbol's history only warm its features (the H1 EMA200
needs about 200 trading hours), as the EA's WARMUP bars do live.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from mt5bridge.bridge import protocol as wire
from mt5bridge.config import Config
from mt5bridge.core import settlement
from mt5bridge.core.decision import ACTION_NAMES, add_symbol, build_engine, sync_book
from mt5bridge.core.engine import FeatureEngine, ReplayLoop
from mt5bridge.core.reasons import CODES
from mt5bridge.market.merge import MergedTicks
from mt5bridge.market.news import blackout_calendar
from mt5bridge.market.readers import (
    TIMEFRAME_LABELS,
    Bars,
    MarketDataError,
    Ticks,
    expand_bars_to_ticks,
)
from mt5bridge.simulator import (
    COMMENT_PREFIX,
    DealRecord,
    SimulatedBroker,
    SymbolSpec,
    price_digits,
    symbol_spec,
)
from mt5bridge.workbench.quality import (
    HistoryError,
    HistoryQuality,
    crosses_us_clock_change,
    expanded_bars_problem,
    history_entry,
    read_history,
    server_clock,
)

MS_PER_DAY = 86_400_000
FILLED_RETCODES = frozenset({10008, 10009, 10010})
RUN_END, RUN_STOP, RUN_COMMAND, RUN_REFUSED, RUN_ROLLOVER = range(5)
DATA_SUFFIXES = (".csv", ".txt", ".tsv")
DEFAULT_MAGIC = 20261121
# One tick of a bar's expanded path continues the previous one (the price moved through every level between
# them); the bar's open does not (it may gap from the previous bar's close).
_SYMBOL_IN_NAME = re.compile(r"^([A-Za-z][A-Za-z0-9.#!+-]*?)(?:[_\s-]|\.(?:csv|txt|tsv)$)", re.IGNORECASE)


class ReplayError(ValueError):
    """Input the replay cannot use, with what is wrong and where."""


# --- markets ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Market:
    """One symbol's prices ready to replay: ticks in UTC, and which of them continue a bar's path."""

    symbol: str
    ticks: Ticks
    continuous: np.ndarray  # bool per tick
    digits: int
    source: str
    quality: HistoryQuality | None = None  # how its prices were made, for the report's history quality


def market_from(symbol: str, data: Ticks | Bars, source: str, quality: HistoryQuality | None = None) -> Market:
    """A market from ticks, or from bars expanded to four ticks each (``marketdata.expand_bars_to_ticks``)."""
    if quality is None:
        quality = HistoryQuality(source=source, kind="bars" if isinstance(data, Bars) else "ticks",
                                 bar_timeframe_s=int(data.timeframe_s) if isinstance(data, Bars) else 0,
                                 source_format=data.source_format)
    if isinstance(data, Bars):
        ticks = expand_bars_to_ticks(data)
        continuous = np.tile(np.array([False, True, True, True]), len(data))
    else:
        ticks = data
        continuous = np.broadcast_to(False, len(ticks))  # one shared False, not a byte per tick
    if len(ticks) == 0:
        raise ReplayError(f"{source}: no prices")
    return Market(symbol.upper(), ticks, continuous, price_digits(ticks.bid), source, quality)


def slice_market(market: Market, start_ms: int, end_ms: int) -> Market | None:
    """The market's ticks in [start_ms, end_ms), or None when there are none; the first does not continue a path."""
    t = market.ticks.times_ms
    a, b = int(np.searchsorted(t, start_ms, "left")), int(np.searchsorted(t, end_ms, "left"))
    if b <= a:
        return None
    ticks = Ticks(times_ms=t[a:b], bid=market.ticks.bid[a:b], ask=market.ticks.ask[a:b],
                  volume=market.ticks.volume[a:b])
    continuous = market.continuous[a:b].copy()
    continuous[0] = False
    return replace(market, ticks=ticks, continuous=continuous)


def symbol_from_name(path: str | os.PathLike) -> str:
    """The symbol a file is named after: ``EURUSD.csv``, ``EURUSD_ticks.csv``, ``XAUUSD_M1_2024.csv``."""
    name = Path(path).name
    match = _SYMBOL_IN_NAME.match(name)
    if not match:
        raise ReplayError(f"{path}: cannot tell the symbol from the file name; name it after the symbol "
                          "(EURUSD_ticks.csv) or give --symbol")
    return match.group(1).upper()


def data_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """The files to replay: each path given, and every data file directly inside a folder given."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in DATA_SUFFIXES)
            if not found:
                raise ReplayError(f"{path}: a folder with no {', '.join(DATA_SUFFIXES)} files in it")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise ReplayError(f"{path}: no such file or folder")
    return files


def load_markets(paths: Iterable[str | os.PathLike], *, symbol: str | None = None,
                 utc_offset_hours: float | None = None, server_time: str | None = None,
                 spread_points: float | None = None, specs: dict[str, dict] | None = None,
                 allow_expanded_bars: bool = False) -> list[Market]:
    """Read every file (one symbol each). ``symbol`` names the symbol of a single file.

    An MT5 export needs its clock (``utc_offset_hours`` or the ``server_time`` rule, see
    ``mt5bridge.workbench.quality``); a bar file without a spread of its own needs ``spread_points`` or a
    ``spread_points`` in its symbol's spec table. ``allow_expanded_bars`` lets a replay trade on bars that cannot
    rebuild what the engine reads, labelled so in its report.
    """
    files = data_files(paths)
    if symbol and len(files) != 1:
        raise ReplayError(f"--symbol names the symbol of one file, but {len(files)} files were given")
    try:
        clock = server_clock(utc_offset_hours, server_time)
    except HistoryError as exc:
        raise ReplayError(str(exc)) from None
    markets: dict[str, Market] = {}
    for path in files:
        name = symbol.upper() if symbol else symbol_from_name(path)
        if name in markets:
            raise ReplayError(f"{path}: a second file for {name} (the first: {markets[name].source}); give one "
                              "file per symbol")
        spread, spread_from = spread_points, "--spread-points"
        if spread is None and specs and "spread_points" in specs.get(name, {}):
            spread, spread_from = float(specs[name]["spread_points"]), f"the spec file's [symbols.{name}] table"
        try:
            data, quality = read_history(path, clock=clock, spread_points=spread, spread_from=spread_from,
                                         allow_expanded=allow_expanded_bars)
        except HistoryError as exc:
            raise ReplayError(str(exc)) from None
        markets[name] = market_from(name, data, str(path), quality)
    return list(markets.values())


def synthetic_markets(symbols: Iterable[str], *, days: float, seed: int = 0,
                      start: str = "2024-01-01T00:00:00Z") -> list[Market]:
    """Deterministic synthetic markets (``mt5bridge.market.synthetic``), one seed per symbol derived from ``seed``."""
    from mt5bridge.market.synthetic import PROFILES, generate_ticks

    out = []
    for i, name in enumerate(symbols):
        try:
            ticks = generate_ticks(name, days=days, start=start, seed=seed + 7919 * i)
        except ValueError as exc:
            raise ReplayError(f"--synthetic: {exc}") from exc
        market = market_from(name, ticks, f"synthetic {name}",
                             HistoryQuality(source=f"synthetic {name} (seed {seed + 7919 * i})", kind="synthetic",
                                            spread="the synthetic market's own"))
        out.append(replace(market, digits=PROFILES[name.upper()].digits))
    return out


# --- symbol specifications ----------------------------------------------------------------------------------

def load_specs(path: str | os.PathLike) -> dict[str, dict]:
    """Symbol specifications from a spec file (``mt5bridge.market.symbolspec``, layout in docs/history.md); a table may
    give only some keys, the rest come from the symbol's preset."""
    from mt5bridge.market.symbolspec import SpecFileError, read_spec_file

    try:
        return {name.upper(): table for name, table in read_spec_file(path, partial=True).items()}
    except SpecFileError as exc:
        raise ReplayError(str(exc)) from exc


def spec_for(market: Market, overrides: dict[str, dict] | None) -> SymbolSpec:
    """The market's spec: the preset for its kind (FX, metal, index) at its first price, then the spec file's
    values for it."""
    digits = int(overrides.get(market.symbol, {}).get("digits", market.digits)) if overrides else market.digits
    spec = symbol_spec(market.symbol, float(market.ticks.bid[0]), digits)
    if overrides and market.symbol in overrides:
        # The spread is the data's own; everything else the file gives replaces the preset's value.
        values = {k: v for k, v in overrides[market.symbol].items() if k != "spread_points"}
        spec = replace(spec, **values)
    if spec.volume_min > spec.volume_max:
        raise ReplayError(f"{market.symbol}: volume_min {spec.volume_min} > volume_max {spec.volume_max}")
    return spec


# --- the replay -----------------------------------------------------------------------------------------------


@dataclass
class ReplayResult:
    """What a replay saw; ``mt5bridge.workbench.report`` turns it into the trader's report."""

    config: Config
    symbols: list[str]
    initial_balance: float
    final_balance: float
    final_equity: float
    start_ms: int
    end_ms: int
    ticks: int
    days: list[tuple[int, float, float, float]]          # prague day, start balance, end balance, lowest equity
    breaches: list[tuple[int, str, float, float]]       # time, rule, equity, floor
    samples: list[tuple[int, float, float, float, float]]  # time, equity, balance, daily floor, overall floor
    max_daily_loss: float
    max_overall_loss: float
    max_drawdown_frac: float
    trades: list[dict]                                   # the engine's closed trades
    commands: list[dict]                                 # every command with its result
    refusals: dict[str, int]                             # ticks held, by reason code
    deals: list[DealRecord]
    trading_days: list[int] = field(default_factory=list)
    history: dict = field(default_factory=dict)         # the history quality (quality.history_entry)
    specs: dict[str, SymbolSpec] = field(default_factory=dict)   # each symbol's spec, as replayed
    leverage: float = 0.0                                         # the account's, for the margin level


class Replay:
    """One account replayed over one or more markets. ``run()`` once; it returns a ReplayResult."""

    def __init__(
        self, cfg: Config, markets: list[Market], *, specs: dict[str, dict] | None = None, model: str | None = None,
        warmup_days: float = 14.0, balance: float | None = None, slippage_points: float = 0.0,
        magic: int = DEFAULT_MAGIC, sample_minutes: float = 0.0, allow_expanded_bars: bool = False,
    ) -> None:  # fmt: skip
        if not markets:
            raise ReplayError("nothing to replay: no market data")
        qualities = [m.quality or HistoryQuality(source=m.source, kind="ticks") for m in markets]
        for q in qualities:
            if not (allow_expanded_bars or q.allow_expanded):
                problem = expanded_bars_problem(q, model)
                if problem:
                    raise ReplayError(problem)
        if not warmup_days >= 0:
            raise ReplayError(f"warm-up days must be >= 0, got {warmup_days!r}")
        if not slippage_points >= 0:
            raise ReplayError(f"slippage must be >= 0 points, got {slippage_points!r}")
        initial = balance if balance is not None else (cfg.account.initial_balance or 100_000.0)
        if not initial > 0:
            raise ReplayError(f"initial balance must be > 0, got {initial!r}")
        if cfg.account.initial_balance and balance is not None and balance != cfg.account.initial_balance:
            data = cfg.model_dump(mode="json", by_alias=True)
            data["account"]["initial_balance"] = balance
            from mt5bridge.config import config_from_dict

            cfg = config_from_dict(data, "the configuration with the replay's balance")
        self.cfg = cfg
        self.magic = magic
        self.markets = markets
        self.broker = SimulatedBroker(balance=initial, slippage_points=slippage_points)
        self.engine = build_engine(cfg, magic, news=blackout_calendar(cfg))
        self.specs: dict[str, SymbolSpec] = {}
        for m in markets:
            spec = spec_for(m, specs)
            self.specs[m.symbol] = spec
            self.broker.add_symbol(spec)
            add_symbol(self.engine, cfg, m.symbol, {
                "point": spec.point, "tick_size": spec.tick_size, "tick_value": spec.tick_value,
                "contract_size": spec.contract_size, "volume_min": spec.volume_min, "volume_step": spec.volume_step,
                "volume_max": spec.volume_max, "digits": spec.digits, "stops_level": spec.stops_level,
                "freeze_level": spec.freeze_level,
                "margin_per_lot": self.broker.margin_per_lot(m.symbol, float(m.ticks.ask[0])),
            }, FeatureEngine(model))  # fmt: skip
        self.symbols = [m.symbol for m in markets]
        self._sym_index = {name: i for i, name in enumerate(self.engine.symbols)}
        self._feed, warm = self._merge(markets, warmup_days)
        if len(self._feed) == 0:
            raise ReplayError(f"nothing left to trade after {warmup_days:g} days of warm-up: the data spans "
                              f"{self._span_days(markets):.1f} days; give more data or a shorter --warmup-days")
        for m, (t, b, a, v) in zip(markets, warm):
            if len(t):
                self.engine.feature_engine(self._sym_index[m.symbol]).process_ticks(t, b, a, v, 3)
        span_ms = self._feed.last_ms - self._feed.first_ms
        sample_ms = int(sample_minutes * 60_000) if sample_minutes > 0 else max(60_000, span_ms // 4000)
        self.loop = ReplayLoop(self.engine, initial, cfg.ftmo.daily_loss_pct, cfg.ftmo.max_loss_pct,
                               cfg.ftmo.max_loss_mode == "eod_trailing", sample_ms)
        self.loop.charge_swaps_at_rollover(any(s.swap_long or s.swap_short for s in self.specs.values()))
        self.commands: list[dict] = []
        self.trades: list[dict] = []
        self.trading_days: set[int] = set()
        self._opened: dict[int, DealRecord] = {}   # open position id -> the deal that opened it
        self._realized: Counter[int] = Counter()   # open position id -> profit, commission, swap of its deals
        self._deals: dict[int, list[dict]] = {}      # open position id -> its deals, to settle its trade from
        self._reason_codes: dict[int, str] = {}      # command id -> its reason code, for a trade's close reason
        self._done = False
        self.warnings = self._history_warnings(markets, qualities, model)
        self.history = history_entry(qualities, model, self.warnings)

    def _history_warnings(self, markets: list[Market], qualities: list[HistoryQuality], model) -> list[str]:
        """What the trader must know about the history before trusting the result."""
        out = []
        start, end = self._feed.first_ms, self._feed.last_ms
        for m, q in zip(markets, qualities):
            if q.modelled:
                out.append(f"{m.symbol}: {q.summary}: features and decisions that read them rest on made-up ticks"
                           " (--allow-expanded-bars)")
            if "all year" in q.server_time and crosses_us_clock_change(start, end):
                out.append(f"{m.symbol}: {q.server_time} over a period that crosses a US clock change: a server"
                           " at UTC+2, UTC+3 in US summer time (FTMO's) is an hour off for part of it; give"
                           " --server-time ny-close")
        out += news_coverage_warnings(self.cfg, start, end)
        out += model_fit_warnings(model, self.symbols, qualities)
        return out

    @staticmethod
    def _span_days(markets: list[Market]) -> float:
        first = min(int(m.ticks.times_ms[0]) for m in markets)
        last = max(int(m.ticks.times_ms[-1]) for m in markets)
        return (last - first) / MS_PER_DAY

    def _merge(self, markets: list[Market], warmup_days: float):
        """All markets' ticks in one time order (ties in the order the markets were given), after warm-up.

        Merged a window at a time as the replay walks them (``MergedTicks``): memory holds each market's own
        arrays and one window, never a second copy of the whole history."""
        start = min(int(m.ticks.times_ms[0]) for m in markets) + int(warmup_days * MS_PER_DAY)
        parts, warm = [], []
        for m in markets:
            t = np.asarray(m.ticks.times_ms, dtype=np.int64)
            cut = int(np.searchsorted(t, start, side="left"))
            warm.append((t[:cut], np.asarray(m.ticks.bid[:cut], np.float64), np.asarray(m.ticks.ask[:cut], np.float64),
                         np.asarray(m.ticks.volume[:cut], np.float64)))
            parts.append((self._sym_index[m.symbol], t[cut:], m.ticks.bid[cut:], m.ticks.ask[cut:],
                          m.ticks.volume[cut:], m.continuous[cut:]))
        return MergedTicks(parts), warm

    @property
    def _arrays(self):
        """The whole merge at once, for a look at it (the run walks it a window at a time)."""
        return self._feed.arrays()

    @property
    def total_ticks(self) -> int:
        return len(self._feed)

    @property
    def ticks_done(self) -> int:
        """Ticks the account has seen so far (what an interrupted run got through)."""
        return int(self.loop.ticks)

    @property
    def end_ms(self) -> int:
        """Time of the last tick to replay (UTC ms)."""
        return self._feed.last_ms

    def run(self, progress: Callable[[int], None] | None = None, chunk: int = 1 << 18) -> ReplayResult:
        """Replay every tick; ``progress(ticks_done)`` is called every ``chunk`` ticks and at the end."""
        if self._done:
            raise ReplayError("a replay runs once; make a new Replay to run again")
        self._done = True
        done = 0
        for sym, t, bid, ask, vol, cont in self._feed.windows():
            done = self._run_window(sym, t, bid, ask, vol, cont, done, progress, chunk)
        self.loop.finish()
        if progress:
            progress(done)
        return self._result()

    def _run_window(self, sym, t, bid, ask, vol, cont, done: int, progress, chunk: int) -> int:
        """Replay one window of the merged ticks; ``done`` ticks came before it. Returns the ticks done after it."""
        n = len(t)
        i, skip = 0, False
        while i < n:
            # Always in chunks (a few tens of ms each), so Ctrl-C stops a long replay at once.
            end = min(n, i + chunk)
            idx, kind = self.loop.run(sym, t, bid, ask, vol, i, end, skip)
            if kind == RUN_ROLLOVER:
                # Swaps charged before the tick is looked at; the tick itself is handled on the next call,
                # its stops still skipped if they already were.
                self.broker.rollover(self.loop.rollover_nights)
                self._book_changed(int(t[idx]), [])
                skip, i = skip and idx == i, idx
                continue
            skip = False
            if kind == RUN_END:
                i = end
                if progress:
                    progress(done + i)
                continue
            symbol = self.engine.symbols[sym[idx]]
            if kind == RUN_STOP:
                self._quote_all(int(t[idx]))
                deals = self.broker.quote(symbol, int(t[idx]), float(bid[idx]), float(ask[idx]),
                                          continuous=bool(cont[idx]))
                self._book_changed(int(t[idx]), deals)
                i, skip = idx, True
            elif kind == RUN_COMMAND:
                self._command(int(t[idx]))
                i = idx + 1
            else:
                raise ReplayError(f"tick {done + idx} of {symbol} at {int(t[idx])} ms refused by the engine "
                                  f"(bid {bid[idx]!r}, ask {ask[idx]!r})")
        return done + n

    # ---- the broker side --------------------------------------------------------------------------------

    def _quote_all(self, time_ms: int) -> None:
        """The broker's quotes brought up to the loop's (stops were checked there, tick by tick)."""
        symbols = self.engine.symbols
        self.broker.set_quotes({symbols[i]: quote for i, quote in self.loop.quotes().items()}, time_ms)

    def _command(self, time_ms: int) -> None:
        d = self.engine.decision
        self._quote_all(time_ms)
        command = wire.Command(
            reply_to=0, command_id=d["command_id"], action=d["action"], symbol=d["symbol"], side=d["side"],
            volume=round(d["volume"], 8), sl=d["sl"], tp=d["tp"], ticket=d["ticket"], reason_code=d["reason_code"],
            reason=d["reason"])  # fmt: skip
        done = self.broker.execute(command, magic=self.magic)
        filled = done.retcode in FILLED_RETCODES
        self.engine.on_result(command.command_id, filled, done.ticket)
        self._reason_codes[command.command_id] = command.reason_code
        self.commands.append({
            "time_ms": time_ms, "command_id": command.command_id, "action": command.action,
            "symbol": command.symbol, "side": command.side, "volume": command.volume, "price": d["price"],
            "sl": command.sl, "tp": command.tp, "ticket": command.ticket, "reason_code": command.reason_code,
            "cap": d["cap"], "score": d["score"], "confidence": d["confidence"], "risk_money": d["risk_money"],
            "retcode": done.retcode, "result": done.text, "fill_price": done.price, "filled_volume": done.volume,
            "position": done.ticket,
        })  # fmt: skip
        if filled and command.action in ("OPEN", "ADD"):
            self.trading_days.add(self.loop.day_key)
        self._book_changed(time_ms, list(done.deals))

    def _book_changed(self, time_ms: int, deals: list[DealRecord]) -> None:
        """Sync the broker's book into the engine (as the node syncs a TICK) and into the loop's mirror.

        A position these deals closed is first shown to the engine once more, carrying its realized profit
        (every deal's profit, commission and swap), so the trade the engine records has the right outcome.
        """
        for deal in deals:
            if deal.entry == "IN":
                self._opened[deal.position_id] = deal
            self._realized[deal.position_id] += deal.profit + deal.commission + deal.swap
            self._deals.setdefault(deal.position_id, []).append(asdict(deal))
        rows = [(p.ticket, self._sym_index[p.symbol], 1 if p.side == "BUY" else -1, p.volume, p.open_price, p.sl,
                 p.tp, p.profit + p.swap + p.commission, p.open_time_msc, p.magic)
                for p in self.broker.positions.values()]
        closed = {d.position_id for d in deals if d.entry == "OUT"} - set(self.broker.positions)
        if closed:
            last = []
            for pid in sorted(closed):
                opened = self._opened.pop(pid)
                last.append((pid, self._sym_index[opened.symbol], 1 if opened.side == "BUY" else -1, opened.volume,
                             opened.price, 0.0, 0.0, self._realized.pop(pid), opened.time_msc, opened.magic))
            sync_book(self.engine, time_ms, rows + last)
        sync_book(self.engine, time_ms, rows)
        for trade in self.engine.closed_trades:
            record = {k: v for k, v in trade.items() if not k.startswith("features")}
            # Settled from its deals by the rule the live journal uses: the same fills, the same record.
            settled = settlement.settle(record, self._deals.pop(trade["ticket"], []), self._reason_code_of)
            record.update(settled or {"settled": False})
            self.trades.append(record)
        self.engine.closed_trades.clear()
        positions = list(self.broker.positions.values())
        self.loop.set_book(
            self.broker.balance, self.broker.margin,
            np.array([self._sym_index[p.symbol] for p in positions], dtype=np.int32),
            np.array([1 if p.side == "BUY" else -1 for p in positions], dtype=np.int32),
            np.array([p.volume for p in positions], dtype=np.float64),
            np.array([p.open_price for p in positions], dtype=np.float64),
            np.array([p.sl for p in positions], dtype=np.float64),
            np.array([p.tp for p in positions], dtype=np.float64),
            np.array([p.swap for p in positions], dtype=np.float64),
            np.array([self.specs[p.symbol].money_per_price for p in positions], dtype=np.float64),
        )  # fmt: skip
        self.loop.sample_now()

    def _reason_code_of(self, command_id: int) -> str:
        return self._reason_codes.get(command_id, "")

    def _result(self) -> ReplayResult:
        refusals = {CODES[k]: int(v) for k, v in sorted(self.loop.refusals().items())}
        return ReplayResult(
            config=self.cfg, symbols=self.symbols, initial_balance=self.loop.initial_balance,
            final_balance=self.broker.balance, final_equity=self.loop.equity, start_ms=self._feed.first_ms,
            end_ms=self._feed.last_ms,
            ticks=int(self.loop.ticks), days=list(self.loop.days), breaches=list(self.loop.breaches),
            samples=list(self.loop.samples), max_daily_loss=self.loop.max_daily_loss,
            max_overall_loss=self.loop.max_overall_loss, max_drawdown_frac=self.loop.max_drawdown_frac,
            trades=self.trades, commands=self.commands, refusals=refusals, deals=list(self.broker.history),
            trading_days=sorted(self.trading_days), history=self.history, specs=dict(self.specs),
            leverage=self.broker.leverage,
        )  # fmt: skip


def news_coverage_warnings(cfg: Config, start_ms: int, end_ms: int) -> list[str]:
    """A news blackout whose calendar does not cover the replayed period trades through the news it misses."""
    if not cfg.funded.news_blackout:
        return []
    from datetime import datetime, timezone

    from mt5bridge.market.news import load_news

    calendar = load_news(cfg.funded.news_file)
    first, last = int(calendar.times_ms[0]), int(calendar.times_ms[-1])

    def day(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d")

    if first > end_ms or last < start_ms:
        return [f"the news calendar {cfg.funded.news_file} ({day(first)} to {day(last)}) does not cover the replayed"
                f" period ({day(start_ms)} to {day(end_ms)}): no news blackout was applied at all; give a calendar"
                " of that period's releases"]
    if first > start_ms + 7 * MS_PER_DAY:
        return [f"the news calendar {cfg.funded.news_file} starts on {day(first)}, after the replay does"
                f" ({day(start_ms)}): no news blackout before it"]
    return []   # a calendar ending early is said by market.news.calendar_warnings


def model_fit_warnings(model, symbols: list[str], qualities: list[HistoryQuality]) -> list[str]:
    """A model trained on another symbol or timeframe than the one replayed."""
    from mt5bridge.core.model import load_model

    trained = load_model(model).trained
    if trained is None:
        return []
    out = []
    others = [s for s in symbols if trained.symbols and s not in trained.symbols]
    if others:
        out.append(f"the model was trained on {', '.join(trained.symbols)}, not on {', '.join(others)}: its"
                   " out-of-sample scores say nothing about them")
    replayed = sorted({TIMEFRAME_LABELS[q.bar_timeframe_s] if q.kind == "bars" else "ticks" for q in qualities},
                      key=_DATA_ORDER.index)
    if trained.data and replayed != sorted(set(trained.data), key=_DATA_ORDER.index):
        out.append(f"the model was trained on {' and '.join(_data_words(trained.data))}, this replay runs on"
                   f" {' and '.join(_data_words(replayed))}: the features it learnt from were not built alike")
    return out


_DATA_ORDER = ["ticks", "M1", "M5", "M15", "H1"]


def _data_words(data) -> list[str]:
    return ["ticks" if d == "ticks" else f"{d} bars" for d in sorted(set(data), key=_DATA_ORDER.index)]


__all__ = ["ACTION_NAMES", "COMMENT_PREFIX", "Market", "MarketDataError", "Replay", "ReplayError", "ReplayResult",
           "data_files", "load_markets", "load_specs", "market_from", "model_fit_warnings", "news_coverage_warnings",
           "slice_market", "spec_for", "symbol_from_name", "synthetic_markets"]
