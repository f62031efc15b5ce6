"""Sizing and the caps, one binding at a time; two charts racing for the same headroom; DCA refused when
the whole position would not fit; positions the engine did not open counted in every limit."""

from __future__ import annotations

import numpy as np
import pytest

from desk import Desk, always, config_for_signals
from mt5bridge.market.synthetic import generate_ticks

MIN = 60_000


def warmed(tmp_path, cfg=None, symbol="EURUSD", balance=100_000.0, fill=True, **spec):
    desk = Desk(cfg or config_for_signals(), balance=balance, model=always("BUY", tmp_path), fill=fill)
    desk.add(symbol, **spec)
    t, price = desk.warm(symbol, days=2)
    return desk, t + MIN, price


def worst_case_of(desk) -> float:
    """The worst case recomputed here: every position and order in flight stopped out, slippage added."""
    slip = desk.cfg.ftmo.slippage_allowance_pct / 100
    total = 0.0
    for p in desk.positions.values():
        bid, ask = desk.quotes[p.symbol]
        price = bid if p.side > 0 else ask
        total += max(0.0, (price - p.sl) * p.side) * (1 + slip) * p.volume * desk.value_per_price(p.symbol)
    for c in desk.engine.in_flight:
        if c["action"] in ("OPEN", "ADD"):
            side = 1 if c["side"] > 0 else -1
            total += (max(0.0, (c["price"] - c["sl"]) * side) * (1 + slip) * c["volume"]
                      * desk.value_per_price(c["symbol"]))
    return total


def test_an_entry_is_sized_from_risk_and_stop_in_micro_lots(tmp_path):
    desk, t, price = warmed(tmp_path)
    d = desk.tick("EURUSD", t, price, execute=False)
    assert d["action"] == "OPEN" and d["side"] == "BUY" and d["reason_code"] == "ENTRY_SIGNAL"
    assert d["volume"] >= 0.01 and abs(d["volume"] * 100 - round(d["volume"] * 100)) < 1e-9
    assert d["sl"] < d["price"] < d["tp"]
    # 2.5 R: the target is 3.75 ATR away against a 1.5 ATR stop
    assert (d["tp"] - d["price"]) / (d["price"] - d["sl"]) == pytest.approx(2.5, abs=0.02)
    # never more than the base risk of 0.5 % of equity at the stop
    assert d["risk_money"] <= 0.005 * desk.equity * 1.1 + 1e-6


@pytest.mark.parametrize(
    "sections, spec, cap",
    [
        ({}, {"volume_max": 0.02}, "SYMBOL_MAX_VOLUME"),
        ({"sizing": {"class_max_lots": {"fx": 0.03}}}, {}, "CLASS_MAX_LOTS"),
        ({"sizing": {"class_max_notional_pct": {"fx": 2.0}}}, {}, "CLASS_NOTIONAL"),
        ({"sizing": {"concentration_share": 0.01}}, {}, "CONCENTRATION"),
        ({"sizing": {"max_exposure_pct": 0.5}}, {"margin_per_lot": 1000.0}, "EXPOSURE"),
    ],
)
def test_each_cap_binds_and_says_so(tmp_path, sections, spec, cap):
    desk, t, price = warmed(tmp_path, config_for_signals(**sections), **spec)
    d = desk.tick("EURUSD", t, price, execute=False)
    assert d["action"] == "OPEN" and d["cap"] == cap, d


def test_the_ftmo_headroom_cap_binds_and_the_worst_case_stays_inside(tmp_path):
    cfg = config_for_signals(ftmo={"reduce_at_share": 0.98, "halt_at_share": 0.99},
                             guards={"internal_daily_dd_pct": 4.9, "circuit_breaker_pct": 20})
    desk, t, price = warmed(tmp_path, cfg)
    desk.extra_floating = -4_495        # equity 95,505: 5 above the floor plus the 500 buffer
    d = desk.tick("EURUSD", t, price, execute=False)
    assert d["action"] == "OPEN" and d["cap"] == "HEADROOM"
    acct = desk.engine.account
    assert acct["equity"] - worst_case_of(desk) >= acct["equity_floor"] + acct["safety_buffer"] - 1e-6


def test_below_the_minimum_volume_there_is_no_trade(tmp_path):
    cfg = config_for_signals(ftmo={"reduce_at_share": 0.98, "halt_at_share": 0.99},
                             guards={"internal_daily_dd_pct": 4.9, "circuit_breaker_pct": 20})
    desk, t, price = warmed(tmp_path, cfg)
    desk.extra_floating = -4_499.5      # half a unit of money of room: not even 0.01 lot fits
    d = desk.tick("EURUSD", t, price, execute=False)
    assert d["action"] == "HOLD" and d["reason_code"] == "HEADROOM"


def test_two_charts_asking_at_once_cannot_together_pass_the_headroom(tmp_path):
    cfg = config_for_signals(ftmo={"reduce_at_share": 0.98, "halt_at_share": 0.99},
                             guards={"internal_daily_dd_pct": 4.9, "circuit_breaker_pct": 20})
    desk = Desk(cfg, model=always("BUY", tmp_path))
    desk.add("EURUSD")
    desk.add("GBPUSD")
    t, eur = desk.warm("EURUSD", days=2, seed=1)
    _, gbp = desk.warm("GBPUSD", days=2, seed=2)
    desk.extra_floating = -4_490        # 10 of room in all
    first = desk.tick("EURUSD", t + MIN, eur, execute=False)     # sent, no result yet
    second = desk.tick("GBPUSD", t + MIN + 1, gbp, execute=False)
    assert first["action"] == "OPEN" and first["cap"] == "HEADROOM"
    assert second["action"] == "HOLD" and second["reason_code"] == "HEADROOM"
    acct = desk.engine.account
    assert acct["equity"] - worst_case_of(desk) >= acct["equity_floor"] + acct["safety_buffer"] - 1e-6


def test_max_positions_counts_other_peoples_positions_too(tmp_path):
    desk, t, price = warmed(tmp_path, config_for_signals(sizing={"max_positions": 1}))
    desk.open_manual("EURUSD", -1, 0.1, price, sl=price + 0.002, t=t, magic=0)
    d = desk.tick("EURUSD", t, price, execute=False)
    assert d["action"] == "HOLD" and d["reason_code"] == "MAX_POSITIONS"


def test_a_manual_position_is_counted_in_the_worst_case(tmp_path):
    desk, t, price = warmed(tmp_path, config_for_signals(symbols={"EURUSD": {"enabled": False}}))
    desk.open_manual("EURUSD", 1, 2.0, price, sl=price - 0.0050, t=t, magic=0)   # 50 pips, 2 lots
    desk.tick("EURUSD", t, price, execute=False)
    acct = desk.engine.account
    expected = (price - (price - 0.0050)) * 1.1 * 2.0 * 100_000
    assert acct["worst_case_loss"] == pytest.approx(expected, rel=1e-6)
    assert [p["managed"] for p in desk.engine.positions] == [False]


def test_a_manual_position_without_a_stop_is_assumed_stopped_three_atr_away(tmp_path):
    desk = Desk(config_for_signals(symbols={"EURUSD": {"enabled": False}}), model=always("BUY", tmp_path))
    desk.add("EURUSD")
    t, price = desk.warm("EURUSD", days=2)
    desk.open_manual("EURUSD", 1, 1.0, price, sl=0.0, t=t, magic=0)
    desk.tick("EURUSD", t + MIN, price, execute=False)
    from mt5bridge.core.catalog import INDICATOR_NAMES

    atr = desk.engine.feature_engine(0).indicators[INDICATOR_NAMES.index("m15_atr_14")]
    # three M15 ATRs, plus the 10 % slippage allowance, on one lot at 100,000 per unit of price
    assert desk.engine.account["worst_case_loss"] == pytest.approx(3 * atr * 1.1 * 100_000, rel=1e-9)


def test_an_unprotected_position_on_a_symbol_without_a_price_blocks_new_risk(tmp_path):
    desk, t, price = warmed(tmp_path)
    desk.add("XAUUSD")                        # registered, never ticked: no ATR to assume a stop from
    desk.quotes["XAUUSD"] = (2000.0, 2000.3)
    desk.open_manual("XAUUSD", 1, 1.0, 2000.0, sl=0.0, t=t, magic=0)
    d = desk.tick("EURUSD", t, price, execute=False)
    assert d["action"] == "HOLD" and d["reason_code"] == "UNPROTECTED_POSITION"


def test_dca_is_refused_when_the_whole_position_would_not_fit(tmp_path):
    cfg = config_for_signals(dca={"enabled": True, "loss_pct": 0.01, "recovery_probability": 0.6},
                             ftmo={"reduce_at_share": 0.98, "halt_at_share": 0.99},
                             guards={"internal_daily_dd_pct": 4.9, "circuit_breaker_pct": 20},
                             exits={"breakeven_r": 20.0, "partial_r": 50.0,
                                    "weight_quality_drop": 0, "weight_direction_reversal": 0,
                                    "weight_trend_reversal": 0, "weight_volume_divergence": 0,
                                    "weight_key_level": 0})
    desk, t, price = warmed(tmp_path, cfg)
    d = desk.tick("EURUSD", t, price)
    assert d["action"] == "OPEN"
    desk.tick("EURUSD", t + 1000, price)        # the book now shows the position
    # Price falls: a loss over 0.01 % of equity, and other losses leave less room than the add's worst case.
    drop = price - 0.6 * (price - d["sl"])
    desk.extra_floating = -4_490
    d2 = desk.tick("EURUSD", t + 2000, drop)
    assert d2["action"] == "HOLD" and d2["reason_code"] == "DCA_HEADROOM"


def test_dca_adds_when_the_headroom_covers_it(tmp_path):
    cfg = config_for_signals(dca={"enabled": True, "loss_pct": 0.01, "recovery_probability": 0.6},
                             exits={"breakeven_r": 20.0, "partial_r": 50.0,
                                    "weight_quality_drop": 0, "weight_direction_reversal": 0,
                                    "weight_trend_reversal": 0, "weight_volume_divergence": 0,
                                    "weight_key_level": 0})
    desk, t, price = warmed(tmp_path, cfg)
    d = desk.tick("EURUSD", t, price)
    desk.tick("EURUSD", t + 1000, price)
    drop = price - 0.6 * (price - d["sl"])
    d2 = desk.tick("EURUSD", t + 2000, drop)
    assert d2["action"] == "ADD" and d2["reason_code"] == "DCA" and d2["sl"] == d["sl"]
    assert 0.25 * d["volume"] - 0.01 <= d2["volume"] <= 0.5 * d["volume"] + 1e-9
    acct = desk.engine.account
    assert acct["equity"] - worst_case_of(desk) >= acct["equity_floor"] + acct["safety_buffer"] - 1e-6


@pytest.mark.parametrize("side", [1, -1])
def test_the_sizers_cvar_is_the_tail_of_adverse_moves_over_the_holding_time(tmp_path, side):
    # More closes than the 500-bar window: the sizer must read the newest 500 of its 1024-slot ring.
    from conftest import aggregate_bars

    desk = Desk(config_for_signals(), model=always("BUY", tmp_path))
    desk.add("EURUSD")
    ticks = generate_ticks("EURUSD", days=12, seed=4)
    for i in range(0, len(ticks.times_ms), 5):
        desk.engine.on_tick(0, int(ticks.times_ms[i]), float(ticks.bid[i]), float(ticks.ask[i]), 1.0,
                            100_000.0, 100_000.0, 0.0)
        if desk.engine.decision_code[2]:
            desk.engine.on_result(desk.engine.decision_code[2], False)
    fed = slice(None, None, 5)
    *_, closes, _ = aggregate_bars(ticks.times_ms[fed], ticks.bid[fed], ticks.volume[fed], 900)
    closes = closes[:-1][-500:]                        # closed bars only, the newest 500
    assert len(closes) == 500
    holding = 16
    losses = np.maximum((closes[:-holding] - closes[holding:]) * side, 0.0)
    worst = np.sort(losses)[::-1][: max(1, int(0.05 * losses.size))]
    assert desk.engine.adverse_move_cvar(0, side) == pytest.approx(worst.mean(), rel=1e-12)
