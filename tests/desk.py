"""A trading desk for the decision-engine tests: the compiled engine, a config, symbols, and a broker that
fills what the engine sends so the tests can play whole scenarios tick by tick."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from mt5bridge.config import Config
from mt5bridge.core.decision import add_symbol, build_engine
from mt5bridge.market.news import blackout_calendar
from mt5bridge.core.engine import FeatureEngine
from mt5bridge.core.model import load_model, model_to_json
from mt5bridge.market.synthetic import generate_ticks

MAGIC = 20261121

SPECS = {
    "EURUSD": dict(point=1e-5, tick_size=1e-5, tick_value=1.0, contract_size=100_000, volume_min=0.01,
                   volume_step=0.01, volume_max=100.0, digits=5, stops_level=0, freeze_level=0),
    "GBPUSD": dict(point=1e-5, tick_size=1e-5, tick_value=1.0, contract_size=100_000, volume_min=0.01,
                   volume_step=0.01, volume_max=100.0, digits=5, stops_level=0, freeze_level=0),
    "XAUUSD": dict(point=0.01, tick_size=0.01, tick_value=1.0, contract_size=100, volume_min=0.01,
                   volume_step=0.01, volume_max=50.0, digits=2, stops_level=0, freeze_level=0),
}


def utc_ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp() * 1000)


def config(**sections) -> Config:
    """The default config with some sections' keys replaced, e.g. config(entry={"min_score": 0})."""
    return Config.model_validate(sections)


def config_for_signals(**sections) -> Config:
    """A config whose entry filters let any clear signal through, for tests about sizing and guards."""
    base = {
        "entry": {"min_score": 0, "require_warm": False, "require_h1_ema200_alignment": False, "sessions": [],
                  "allowed_consensus": ["UNANIMOUS", "STRONG", "WEAK", "SPLIT"], "cooldown_minutes": 0},
        "dca": {"enabled": False},
        "scale_in": {"enabled": False},
        "exits": {"time_exit_hours": 0.0},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return Config.model_validate(base)


def always(direction: str, tmp_path) -> str:
    """A model file that always reads BUY (or SELL) with every sub-model agreeing at p = 0.95."""
    model = json.loads(model_to_json(load_model()))
    bias = 3.0 if direction == "BUY" else -3.0
    for sub in model["submodels"].values():
        sub["weights"] = {}
        sub["bias"] = bias
    path = tmp_path / f"always_{direction.lower()}.json"
    path.write_text(json.dumps(model), encoding="utf-8")
    return str(path)


@dataclass
class Position:
    ticket: int
    symbol: str
    side: int
    volume: float
    open_price: float
    sl: float
    tp: float
    open_time_ms: int
    magic: int
    swap: float = 0.0


@dataclass
class Desk:
    """One account: the engine, its symbols, and a broker that fills every command at the decision price."""

    cfg: Config
    balance: float = 100_000.0
    model: str | None = None
    fill: bool = True
    engine: object = None
    index: dict = field(default_factory=dict)
    quotes: dict = field(default_factory=dict)
    positions: dict = field(default_factory=dict)
    next_ticket: int = 1000
    decisions: list = field(default_factory=list)
    extra_floating: float = 0.0
    margin_per_lot: dict = field(default_factory=dict)

    def __post_init__(self):
        self.engine = build_engine(self.cfg, MAGIC, news=blackout_calendar(self.cfg))

    def add(self, symbol: str, **spec_changes) -> int:
        spec = dict(SPECS[symbol], **spec_changes)
        if spec.get("margin_per_lot"):
            self.margin_per_lot[symbol] = spec["margin_per_lot"]
        self.index[symbol] = add_symbol(self.engine, self.cfg, symbol, spec, FeatureEngine(self.model))
        return self.index[symbol]

    # the broker's side -------------------------------------------------------------------------------------

    def value_per_price(self, symbol):
        spec = SPECS[symbol]
        return spec["tick_value"] / spec["tick_size"]

    def floating(self) -> float:
        total = self.extra_floating
        for p in self.positions.values():
            bid, ask = self.quotes[p.symbol]
            price = bid if p.side > 0 else ask
            total += (price - p.open_price) * p.side * p.volume * self.value_per_price(p.symbol)
        return total

    @property
    def equity(self) -> float:
        return self.balance + self.floating()

    def open_manual(self, symbol, side, volume, price, sl=0.0, tp=0.0, t=0, magic=0) -> int:
        self.next_ticket += 1
        self.positions[self.next_ticket] = Position(self.next_ticket, symbol, side, volume, price, sl, tp, t, magic)
        return self.next_ticket

    def close(self, ticket, volume=None):
        p = self.positions[ticket]
        bid, ask = self.quotes[p.symbol]
        price = bid if p.side > 0 else ask
        volume = p.volume if volume is None else volume
        self.balance += (price - p.open_price) * p.side * volume * self.value_per_price(p.symbol)
        p.volume = round(p.volume - volume, 8)
        if p.volume <= 1e-9:
            del self.positions[ticket]

    def sync(self, t):
        ps = list(self.positions.values())
        bid_ask = {p.ticket: self.quotes[p.symbol] for p in ps}
        profit = [((bid_ask[p.ticket][0] if p.side > 0 else bid_ask[p.ticket][1]) - p.open_price) * p.side
                  * p.volume * self.value_per_price(p.symbol) for p in ps]
        self.engine.sync_positions(
            t, np.array([p.ticket for p in ps], np.int64), np.array([self.index[p.symbol] for p in ps], np.int32),
            np.array([p.side for p in ps], np.int32), np.array([p.volume for p in ps], float),
            np.array([p.open_price for p in ps], float), np.array([p.sl for p in ps], float),
            np.array([p.tp for p in ps], float), np.array(profit, float),
            np.array([p.open_time_ms for p in ps], np.int64), np.array([p.magic for p in ps], np.int64))

    def execute(self, d, t):
        """Carry a command out as a broker would, and report the RESULT."""
        action = d["action"]
        if not self.fill:
            self.engine.on_result(d["command_id"], False)
            return
        ticket = 0
        if action in ("OPEN", "ADD"):
            side = 1 if d["side"] == "BUY" else -1
            ticket = self.open_manual(d["symbol"], side, d["volume"], d["price"], d["sl"], d["tp"], t, MAGIC)
        elif action == "CLOSE":
            self.close(d["ticket"], d["volume"])
        elif action == "MODIFY":
            self.positions[d["ticket"]].sl = d["sl"]
            self.positions[d["ticket"]].tp = d["tp"]
        elif action == "CLOSE_ALL":
            for tk in list(self.positions):
                self.close(tk)
        self.engine.on_result(d["command_id"], True, ticket)

    # the terminal's side -------------------------------------------------------------------------------------

    def stops_and_targets(self, symbol):
        """The broker closes what the new price has taken through its stop loss or take profit."""
        bid, ask = self.quotes[symbol]
        for ticket, p in list(self.positions.items()):
            if p.symbol != symbol:
                continue
            price = bid if p.side > 0 else ask
            if (p.sl > 0 and (price - p.sl) * p.side <= 0) or (p.tp > 0 and (price - p.tp) * p.side >= 0):
                self.close(ticket)

    def margin(self) -> float:
        """Margin in use, as the terminal reports it: for symbols given a margin per lot, that times the volume."""
        return sum(self.margin_per_lot.get(p.symbol, 0.0) * p.volume for p in self.positions.values())

    def tick(self, symbol, t, bid, ask=None, execute=True, sync=True):
        ask = bid + 10 * SPECS[symbol]["point"] if ask is None else ask
        self.quotes[symbol] = (bid, ask)
        self.stops_and_targets(symbol)
        if sync:
            self.sync(t)
        action = self.engine.on_tick(self.index[symbol], t, bid, ask, 1.0, self.balance, self.equity, self.margin())
        d = self.engine.decision
        self.decisions.append(d)
        if action and execute:
            self.execute(d, t)
        return d

    def warm(self, symbol, days=3.0, seed=1, start="2024-01-08T00:00:00Z", execute=False):
        """Feed a few days of synthetic market, commands refused, so ATRs and signals are live."""
        ticks = generate_ticks(symbol if symbol in ("EURUSD", "GBPUSD", "XAUUSD") else "EURUSD", days=days,
                               seed=seed, start=start)
        fill = self.fill
        self.fill = False
        for i in range(0, len(ticks.times_ms), 7):
            self.tick(symbol, int(ticks.times_ms[i]), float(ticks.bid[i]), float(ticks.ask[i]), execute=True)
        self.fill = fill
        return int(ticks.times_ms[-1]), float(ticks.bid[-1])
