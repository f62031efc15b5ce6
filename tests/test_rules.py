"""The engine's rules, one test each, named as the rule: the entry filters, the size multipliers, the exit
score's bands, the adds and their limits, every cap on an add, orders in flight in every limit, the weekend
gap, the circuit breaker and the 1-Step's objectives. Each drives the compiled engine through the desk."""

from __future__ import annotations

import math

import pytest

from desk import MAGIC, Desk, always, config_for_signals, utc_ms
from test_lifecycle import QUIET_EXITS, _clock_model, _opened
from test_sizing import warmed

MIN = 60_000
HOUR = 3_600_000


def first_entry(tmp_path, model="BUY", days=2, **sections):
    """The first decision, not carried out, of a warmed EURUSD desk with ``sections`` over the open filters."""
    desk = Desk(config_for_signals(**sections), model=always(model, tmp_path))
    desk.add("EURUSD")
    t, price = desk.warm("EURUSD", days=days)
    return desk.tick("EURUSD", t + MIN, price, execute=False), desk


def feature(desk, name, sym=0):
    from mt5bridge.core.catalog import FEATURE_NAMES

    return float(desk.engine.feature_engine(sym).features[FEATURE_NAMES.index(name)])


# ---- entry filters ------------------------------------------------------------------------------------------

def test_an_entry_needs_a_market_score_of_at_least_entry_min_score(tmp_path):
    d, _ = first_entry(tmp_path)
    assert d["action"] == "OPEN"
    refused, _ = first_entry(tmp_path, entry={"min_score": d["score"] + 0.01})
    assert (refused["action"], refused["reason_code"]) == ("HOLD", "SCORE_LOW")
    passed, _ = first_entry(tmp_path, entry={"min_score": d["score"] - 0.01})
    assert passed["action"] == "OPEN"


def test_an_entry_needs_a_confidence_of_at_least_entry_min_confidence(tmp_path):
    d, _ = first_entry(tmp_path, entry={"high_vol_atr_ratio": 10.0})
    assert d["action"] == "OPEN" and d["confidence"] == pytest.approx(0.9526, abs=1e-4)
    above = math.ceil(d["confidence"] * 1000) / 1000
    refused, _ = first_entry(tmp_path, entry={"min_confidence": above, "min_confidence_high_vol": above,
                                              "high_vol_atr_ratio": 10.0})
    assert (refused["action"], refused["reason_code"]) == ("HOLD", "CONFIDENCE_LOW")


def test_in_high_volatility_an_entry_needs_entry_min_confidence_high_vol(tmp_path):
    # 1.75 days in, this market's M15 ATR(14) runs at about 1.19 times its ATR(50).
    d, desk = first_entry(tmp_path, days=1.75)
    ratio = feature(desk, "m15_atr_ratio_14_50")
    assert ratio > 1.01, "the test needs an M15 ATR ratio above 1 on this market"
    strict = {"min_confidence": 0.5, "min_confidence_high_vol": 0.96}
    high, _ = first_entry(tmp_path, days=1.75, entry=dict(strict, high_vol_atr_ratio=ratio - 0.01))
    assert (high["action"], high["reason_code"]) == ("HOLD", "CONFIDENCE_LOW")
    calm, _ = first_entry(tmp_path, days=1.75, entry=dict(strict, high_vol_atr_ratio=ratio + 0.01))
    assert calm["action"] == "OPEN"


def test_an_entry_needs_a_consensus_listed_in_entry_allowed_consensus(tmp_path):
    refused, desk = first_entry(tmp_path, entry={"allowed_consensus": ["STRONG", "WEAK", "SPLIT"]})
    assert (refused["action"], refused["reason_code"]) == ("HOLD", "CONSENSUS_WEAK")
    assert desk.engine.feature_engine(0).consensus == 0   # UNANIMOUS: every sub-model reads BUY
    passed, _ = first_entry(tmp_path, entry={"allowed_consensus": ["UNANIMOUS"]})
    assert passed["action"] == "OPEN"


@pytest.mark.parametrize("limit, action", [(9, "HOLD"), (10, "OPEN")])
def test_an_entry_refuses_a_spread_wider_than_entry_max_spread_points(tmp_path, limit, action):
    # The desk quotes a 10-point spread.
    d, _ = first_entry(tmp_path, entry={"max_spread_points": limit})
    assert d["action"] == action and (action == "OPEN" or d["reason_code"] == "SPREAD_WIDE")


def test_a_symbols_own_max_spread_points_replaces_the_entry_default(tmp_path):
    d, _ = first_entry(tmp_path, entry={"max_spread_points": 100},
                       symbols={"EURUSD": {"class": "fx", "max_spread_points": 9}})
    assert (d["action"], d["reason_code"]) == ("HOLD", "SPREAD_WIDE")


def test_an_entry_refuses_a_spread_above_entry_max_spread_typical_ratio_times_its_usual(tmp_path):
    desk, t, price = warmed(tmp_path, config_for_signals(entry={"max_spread_points": 10_000}), fill=False)
    usual = desk.tick("EURUSD", t, price, price + 0.00010)
    assert usual["action"] == "OPEN"          # refused by the broker: the next tick decides afresh
    wide = desk.tick("EURUSD", t + 1000, price, price + 0.00100)
    assert feature(desk, "spread_ratio_1000") > 2.5
    assert (wide["action"], wide["reason_code"]) == ("HOLD", "SPREAD_ABNORMAL")


def test_an_entry_refuses_an_m15_atr_above_entry_max_atr_pct_of_price(tmp_path):
    from mt5bridge.core.catalog import INDICATOR_NAMES

    d, desk = first_entry(tmp_path)
    assert d["action"] == "OPEN"
    bid = d["price"] - 0.0001
    atr_pct = 100 * desk.engine.feature_engine(0).indicators[INDICATOR_NAMES.index("m15_atr_14")] / bid
    refused, _ = first_entry(tmp_path, entry={"max_atr_pct": atr_pct * 0.99})
    assert (refused["action"], refused["reason_code"]) == ("HOLD", "VOLATILITY_GATE")
    passed, _ = first_entry(tmp_path, entry={"max_atr_pct": atr_pct * 1.01})
    assert passed["action"] == "OPEN"


def test_an_entry_goes_only_the_way_of_the_h1_ema_200(tmp_path):
    # A model that buys in the morning and sells in the evening, on a market long enough for the H1 EMA 200.
    desk = Desk(config_for_signals(entry={"require_h1_ema200_alignment": True}), model=_clock_model(tmp_path),
                fill=False)
    desk.add("EURUSD")
    t, price = desk.warm("EURUSD", days=12, start="2024-01-08T00:00:00Z")
    from mt5bridge.core.catalog import FEATURE_NAMES

    above = feature(desk, "h1_ema_200_dist")
    assert desk.engine.feature_engine(0).warm[FEATURE_NAMES.index("h1_ema_200_dist")] and above != 0
    buy = desk.tick("EURUSD", utc_ms("2024-01-20 06:00"), price)
    sell = desk.tick("EURUSD", utc_ms("2024-01-20 18:00"), price)
    assert (buy["side"] if buy["action"] == "OPEN" else "") == ("BUY" if above > 0 else "")
    assert (sell["side"] if sell["action"] == "OPEN" else "") == ("SELL" if above < 0 else "")
    against = sell if above > 0 else buy
    assert (against["action"], against["reason_code"]) == ("HOLD", "TREND_MISALIGNED")


def test_an_entry_opens_only_inside_the_allowed_sessions(tmp_path):
    desk, t, price = warmed(tmp_path, config_for_signals(entry={"sessions": ["london"]}), fill=False)
    asia = desk.tick("EURUSD", utc_ms("2024-01-10 03:00"), price)
    assert (asia["action"], asia["reason_code"]) == ("HOLD", "SESSION_CLOSED")
    london = desk.tick("EURUSD", utc_ms("2024-01-10 10:00"), price)
    assert london["action"] == "OPEN"


def test_after_a_close_a_symbol_waits_entry_cooldown_minutes_before_it_opens_again(tmp_path):
    desk, t, price = warmed(tmp_path, config_for_signals(entry={"cooldown_minutes": 15}, exits=QUIET_EXITS))
    assert desk.tick("EURUSD", t, price)["action"] == "OPEN"
    desk.tick("EURUSD", t + 500, price)                     # the book shows it
    [ticket] = desk.positions
    desk.close(ticket)                                      # closed by hand between two ticks
    desk.tick("EURUSD", t + 1000, price)                    # the book sees it gone: the cooldown starts
    waiting = desk.tick("EURUSD", t + 1000 + 15 * MIN - 1000, price)
    assert (waiting["action"], waiting["reason_code"]) == ("HOLD", "COOLDOWN")
    assert desk.tick("EURUSD", t + 1000 + 15 * MIN, price)["action"] == "OPEN"


# ---- size multipliers -----------------------------------------------------------------------------------------

def two_charts(tmp_path, **sections):
    desk = Desk(config_for_signals(**sections), model=always("BUY", tmp_path))
    desk.add("EURUSD")
    desk.add("GBPUSD")
    t, eur = desk.warm("EURUSD", days=2, seed=1)
    _, gbp = desk.warm("GBPUSD", days=2, seed=2)
    return desk, t + MIN, eur, gbp


PLAIN_FULL = {"trend_regime_factor": 1.0, "range_regime_factor": 1.0}


@pytest.mark.parametrize("first", ["in flight", "in the book", "none"])
def test_diversification_shrinks_an_entry_by_half_the_correlation_with_the_book_and_orders_in_flight(
        tmp_path, first):
    # EURUSD/GBPUSD = 0.8: a GBPUSD buy beside a EURUSD buy is sized 1 - 0.5 x 0.8 = 0.6.
    desk, t, eur, gbp = two_charts(tmp_path, sizing=PLAIN_FULL)
    alone = Desk(config_for_signals(sizing=PLAIN_FULL), model=always("BUY", tmp_path))
    alone.add("EURUSD")
    alone.add("GBPUSD")
    alone.warm("EURUSD", days=2, seed=1)
    alone.warm("GBPUSD", days=2, seed=2)
    full = alone.tick("GBPUSD", t + 1, gbp, execute=False)
    if first != "none":
        opened = desk.tick("EURUSD", t, eur, execute=(first == "in the book"))
        assert opened["action"] == "OPEN"
        if first == "in the book":
            desk.tick("EURUSD", t + 500, eur)
            assert desk.engine.in_flight == [] and len(desk.engine.positions) == 1
    second = desk.tick("GBPUSD", t + 1000, gbp, execute=False)
    assert full["action"] == second["action"] == "OPEN" and full["cap"] == second["cap"] == ""
    factor = 1.0 if first == "none" else 0.6
    assert second["volume"] == pytest.approx(math.floor(full["volume"] * factor * 100 + 1e-6) / 100, abs=0.011)


def close_trades_at(desk, t, r_multiples):
    """Closed trades of the given R, opened by hand on EURUSD with a 100-pip stop."""
    for k, r in enumerate(r_multiples):
        ticket = desk.open_manual("EURUSD", 1, 0.1, 1.1, sl=1.09, t=t, magic=0)
        desk.tick("EURUSD", t + 2 * k * 1000 + 1, 1.1 + 0.01 * r)   # synced with its profit at r R
        desk.close(ticket)
        desk.tick("EURUSD", t + 2 * k * 1000 + 2, 1.1)


@pytest.mark.parametrize("rs, multiplier", [([0.5] * 4, 1.0), ([0.5] * 5, 1.15), ([2.0] * 5, 1.3),
                                            ([-0.9] * 5, 0.8)],
                         ids=["neutral until five trades", "1 + 0.3 x mean R", "capped at perf_max",
                              "floored at perf_min"])
def test_performance_multiplier_is_one_plus_0_3_times_the_mean_r_of_the_recent_trades(rs, multiplier):
    from desk import config

    desk = Desk(config(guards={"losing_streak": 100, "internal_daily_dd_pct": 4.9, "circuit_breaker_pct": 20,
                               "recovery_dd_pct": 50}, ftmo={"reduce_at_share": 0.98, "halt_at_share": 0.99},
                       sizing={"perf_min": 0.8, "perf_max": 1.3}))
    desk.add("EURUSD")
    t = utc_ms("2024-01-08 09:00")
    desk.tick("EURUSD", t, 1.1)
    close_trades_at(desk, t, rs)
    assert desk.engine.account["risk_multiplier"] == pytest.approx(multiplier, abs=1e-9)


def test_regime_multiplier_is_trend_regime_factor_at_h1_adx_25_or_more_else_range_regime_factor(tmp_path):
    d, desk = first_entry(tmp_path, sizing=PLAIN_FULL)
    adx = feature(desk, "h1_adx_14")
    cut, _ = first_entry(tmp_path, sizing={"trend_regime_factor": 0.5, "range_regime_factor": 0.25})
    factor = 0.5 if adx >= 25 else 0.25
    assert d["action"] == cut["action"] == "OPEN" and d["cap"] == cut["cap"] == ""
    assert cut["volume"] == pytest.approx(d["volume"] * factor, abs=0.011)


# ---- the exit score's bands -------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "move_pct, weight, closes",
    [(+0.6, 65, True), (+0.6, 64, False), (0.0, 80, True), (0.0, 79, False), (-0.6, 70, True), (-0.6, 69, False)],
    ids=["winner at 65", "winner below 65", "flat at 80", "flat below 80", "loser at 70", "loser below 70"])
def test_the_exit_score_closes_a_winner_at_65_a_flat_trade_at_80_and_a_loser_at_70(tmp_path, move_pct, weight,
                                                                                   closes):
    # The direction turning against the position is the only sign, weighing `weight`; "winner" and "loser"
    # are moves of more than exits.exit_band_pct (0.5 %) from the entry.
    desk = Desk(config_for_signals(exits=dict(QUIET_EXITS, weight_direction_reversal=weight, sl_atr=50.0,
                                              tp_atr=100.0, breakeven_r=20.0, partial_r=50.0)),
                model=_clock_model(tmp_path))
    desk.add("EURUSD")
    t, price = desk.warm("EURUSD", days=0.25, start="2024-01-09T00:00:00Z")
    opened = desk.tick("EURUSD", utc_ms("2024-01-09 06:01"), price)
    assert opened["action"] == "OPEN" and opened["side"] == "BUY"
    desk.tick("EURUSD", utc_ms("2024-01-09 06:01:01"), price)
    entry = desk.engine.positions[0]["open_price"]
    evening = desk.tick("EURUSD", utc_ms("2024-01-09 18:00"), round(entry * (1 + move_pct / 100), 5))
    assert (evening["action"] == "CLOSE" and evening["reason_code"] == "EXIT_SCORE") is closes, evening


# ---- adds ---------------------------------------------------------------------------------------------------

ADDING = {"scale_in": {"enabled": True, "profit_pct": 0.01, "min_score": 0, "max_adds": 10},
          "dca": {"enabled": False}, "exits": {"breakeven_r": 20.0, "partial_r": 50.0}}


def with_adds(sizing=None, **sections):
    merged = {k: dict(v) for k, v in ADDING.items()}
    for name, values in sections.items():
        merged.setdefault(name, {}).update(values)
    merged["sizing"] = dict({"max_positions": 20}, **(sizing or {}))
    return merged


def climb(desk, t, d, steps=12):
    """Price rising tick after tick in a strong market: every tick asks for a scale-in."""
    r = d["price"] - d["sl"]
    out = []
    for k in range(steps):
        out.append(desk.tick("EURUSD", t + 10_000 * (k + 1), d["price"] + (0.9 + 0.05 * k) * r))
    return out


def test_a_position_takes_at_most_max_adds_per_position_and_an_add_is_never_added_to(tmp_path):
    desk, t, d = _opened(tmp_path, **with_adds(sizing={"max_adds_per_position": 2}))
    parent = desk.engine.positions[0]["ticket"]
    decisions = climb(desk, t, d)
    adds = [x for x in decisions if x["action"] == "ADD"]
    assert len(adds) == 2 and {a["ticket"] for a in adds} == {parent}
    assert decisions[-1]["action"] == "HOLD" and decisions[-1]["reason_code"] == "ADDS_USED"
    book = desk.engine.positions
    assert len(book) == 3 and {p["group"] for p in book} == {parent}
    assert [p["adds"] for p in book if p["ticket"] == parent] == [2]


@pytest.mark.parametrize("kind", ["dca", "scale_in"])
def test_each_kind_of_add_is_limited_by_its_own_max_adds(tmp_path, kind):
    sections = with_adds(sizing={"max_adds_per_position": 10})
    sections[kind] = dict(sections.get(kind, {}), enabled=True, max_adds=1)
    if kind == "dca":
        sections["dca"].update(loss_pct=0.01, recovery_probability=0.6)
        sections["scale_in"] = {"enabled": False}
    desk, t, d = _opened(tmp_path, **sections)
    r = d["price"] - d["sl"]
    decisions = []
    for k in range(6):
        move = (0.9 + 0.05 * k) * r if kind == "scale_in" else -(0.4 + 0.02 * k) * r
        decisions.append(desk.tick("EURUSD", t + 10_000 * (k + 1), d["price"] + move))
    assert [x["reason_code"] for x in decisions if x["action"] == "ADD"] == [kind.upper().replace("_", "")
                                                                             if kind == "dca" else "SCALE_IN"]
    assert decisions[-1]["reason_code"] == "ADDS_USED"


def test_an_add_whose_fill_reaches_the_book_before_its_result_joins_its_group(tmp_path):
    desk, t, d = _opened(tmp_path, **with_adds(sizing={"max_adds_per_position": 5}))
    parent = desk.engine.positions[0]["ticket"]
    add = desk.tick("EURUSD", t + 10_000, d["price"] + 0.9 * (d["price"] - d["sl"]), execute=False)
    assert add["action"] == "ADD" and add["ticket"] == parent
    # The terminal's book shows the add's own ticket (hedging) before the RESULT arrives.
    desk.open_manual("EURUSD", 1, add["volume"], add["price"], add["sl"], add["tp"], t + 10_500, magic=MAGIC)
    desk.tick("EURUSD", t + 11_000, add["price"], execute=False)
    assert add["command_id"] not in [c["command_id"] for c in desk.engine.in_flight]
    child = [p for p in desk.engine.positions if p["ticket"] != parent]
    assert [p["group"] for p in child] == [parent] and child[0]["adds"] == 0


def test_an_own_position_no_command_explains_is_counted_as_an_add_of_the_position_beside_it(tmp_path):
    desk, t, d = _opened(tmp_path, **with_adds(sizing={"max_adds_per_position": 1}))
    parent = desk.engine.positions[0]["ticket"]
    add = desk.tick("EURUSD", t + 10_000, d["price"] + 0.9 * (d["price"] - d["sl"]), execute=False)
    desk.engine.expire(add["command_id"])                    # no RESULT in time: settled against the book later
    desk.open_manual("EURUSD", 1, add["volume"], add["price"], add["sl"], add["tp"], t + 10_500, magic=MAGIC)
    later = desk.tick("EURUSD", t + 20_000, add["price"] + 0.0002)
    assert {p["group"] for p in desk.engine.positions} == {parent}
    assert later["action"] == "HOLD" and later["reason_code"] == "ADDS_USED"


def test_a_positions_group_and_its_adds_survive_a_restart(tmp_path):
    cfg_sections = with_adds(sizing={"max_adds_per_position": 2})
    desk, t, d = _opened(tmp_path, **cfg_sections)
    parent = desk.engine.positions[0]["ticket"]
    first = climb(desk, t, d, steps=1)[0]
    assert first["action"] == "ADD"
    desk.sync(t + 15_000)                                              # the book shows the add
    saved = desk.engine.export_state()

    restarted = Desk(desk.cfg, model=always("BUY", tmp_path))
    restarted.engine.restore_state(saved)
    restarted.add("EURUSD")
    restarted.warm("EURUSD", days=1)
    restarted.positions, restarted.quotes, restarted.balance = desk.positions, dict(desk.quotes), desk.balance
    restarted.next_ticket = desk.next_ticket
    restarted.sync(t + 16_000)
    book = {p["ticket"]: p for p in restarted.engine.positions}
    assert {p["group"] for p in book.values()} == {parent} and book[parent]["adds"] == 1
    decisions = climb(restarted, t + 20_000, d, steps=6)
    assert [x["action"] for x in decisions].count("ADD") == 1      # one more, then the limit
    assert decisions[-1]["reason_code"] == "ADDS_USED"


@pytest.mark.parametrize(
    "sections, spec, cap",
    [
        ({"sizing": {"max_positions": 1}}, {}, "MAX_POSITIONS"),
        ({"sizing": {"class_max_lots": {"fx": 0.05}}}, {}, "CLASS_MAX_LOTS"),
        ({"sizing": {"class_max_notional_pct": {"fx": 5.0}}}, {}, "CLASS_NOTIONAL"),
        ({"sizing": {"concentration_share": 0.01}}, {}, "CONCENTRATION"),
        ({"sizing": {"max_exposure_pct": 0.5}}, {"margin_per_lot": 1000.0}, "EXPOSURE"),
    ],
)
def test_each_cap_binds_on_an_add_as_on_an_entry(tmp_path, sections, spec, cap):
    # The entry takes all the cap allows; the add then finds nothing left under the same cap.
    merged = with_adds()
    for name, values in sections.items():
        for key, value in values.items():
            merged.setdefault(name, {})[key] = value
    desk = Desk(config_for_signals(exits=dict(QUIET_EXITS, breakeven_r=20.0, partial_r=50.0),
                                   **{k: v for k, v in merged.items() if k != "exits"}),
                model=always("BUY", tmp_path))
    desk.add("EURUSD", **spec)
    t, price = desk.warm("EURUSD", days=1)
    t += MIN
    d = desk.tick("EURUSD", t, price)
    assert d["action"] == "OPEN" and (cap == "MAX_POSITIONS" or d["cap"] == cap), d
    desk.tick("EURUSD", t + 1_000, price)
    add = climb(desk, t, d, steps=1)[0]
    assert (add["action"], add["reason_code"]) == ("HOLD", cap), add
    assert len(desk.positions) == 1


def test_the_ftmo_headroom_binds_on_an_add(tmp_path):
    desk, t, d = _opened(tmp_path, **with_adds(ftmo={"reduce_at_share": 0.98, "halt_at_share": 0.99},
                                               guards={"internal_daily_dd_pct": 4.9, "circuit_breaker_pct": 20}))
    desk.extra_floating = -4_495
    add = climb(desk, t, d, steps=1)[0]
    assert (add["action"], add["reason_code"]) == ("HOLD", "DCA_HEADROOM")
    assert desk.engine.in_flight == [] and len(desk.positions) == 1


def test_an_add_in_flight_counts_against_max_positions_for_a_new_entry(tmp_path):
    desk, t, d = _opened(tmp_path, **with_adds(sizing={"max_positions": 2}))
    add = climb(desk, t, d, steps=1)[0]
    assert add["action"] == "ADD"
    desk.positions.pop(max(desk.positions))          # the add's fill has not reached the book yet
    desk.engine.on_result(add["command_id"], True, 0)
    desk.add("GBPUSD")
    _, gbp = desk.warm("GBPUSD", days=1, seed=2)
    other = desk.tick("GBPUSD", t + 60_000, gbp, execute=False)
    assert (other["action"], other["reason_code"]) == ("HOLD", "MAX_POSITIONS")


def test_the_margin_of_orders_in_flight_counts_in_the_exposure_cap(tmp_path):
    desk = Desk(config_for_signals(sizing={"max_exposure_pct": 0.3}), model=always("BUY", tmp_path))
    desk.add("EURUSD", margin_per_lot=1000.0)
    desk.add("GBPUSD", margin_per_lot=1000.0)
    t, eur = desk.warm("EURUSD", days=2, seed=1)
    _, gbp = desk.warm("GBPUSD", days=2, seed=2)
    first = desk.tick("EURUSD", t + MIN, eur, execute=False)          # 0.3 % of equity: 0.3 lots of margin
    assert first["action"] == "OPEN" and first["cap"] == "EXPOSURE" and first["volume"] == pytest.approx(0.3)
    second = desk.tick("GBPUSD", t + MIN + 1, gbp, execute=False)
    assert (second["action"], second["reason_code"]) == ("HOLD", "EXPOSURE")


# ---- the weekend gap ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "when, over",
    [("2024-01-11 20:59", False), ("2024-01-11 21:00", True), ("2024-01-12 20:59", True),
     ("2024-01-13 12:00", True), ("2024-01-14 21:59", True), ("2024-01-14 22:00", False),
     ("2024-01-15 09:00", False)],
    ids=["Thursday, 24 h and a minute before the close", "Thursday, 24 h before", "Friday before the close",
         "Saturday", "Sunday before the reopening", "Sunday reopened", "Monday"])
def test_the_gap_allowance_counts_from_the_gap_horizon_before_fridays_close_until_the_reopening(when, over):
    from desk import config

    desk = Desk(config())
    desk.add("EURUSD")
    desk.tick("EURUSD", utc_ms(when), 1.1)
    assert desk.engine.account["over_weekend_close"] is over


def test_held_over_the_close_a_position_counts_the_larger_of_its_stop_and_the_gap_against_the_reopening_days_floor():
    from desk import config

    desk = Desk(config())
    desk.add("EURUSD")
    desk.tick("EURUSD", utc_ms("2024-01-10 09:00"), 1.1)                   # Wednesday
    desk.open_manual("EURUSD", 1, 1.0, 1.1, sl=1.0990, t=utc_ms("2024-01-10 09:00"))
    desk.tick("EURUSD", utc_ms("2024-01-10 09:01"), 1.1)
    assert desk.engine.account["worst_case_loss"] == pytest.approx(0.0010 * 1.1 * 100_000)
    desk.balance = 102_000                                                   # closed profit on Friday
    desk.tick("EURUSD", utc_ms("2024-01-12 15:00"), 1.1)
    acct = desk.engine.account
    assert acct["worst_case_loss"] == pytest.approx(0.02 * 1.1 * 100_000)   # the 2 % FX gap, not the stop
    # Sunday's floor starts from Friday's balance: 102,000 - 5,000, above today's 95,000.
    assert (acct["daily_floor"], acct["floor_after_close"]) == (95_000, 97_000)
    assert acct["headroom"] == pytest.approx(acct["equity"] - acct["worst_case_loss"] - 97_000 - 500)


def one_step(**sections):
    """The shipped 1-Step preset, with the entry filters opened for a chosen signal."""
    from pathlib import Path

    from mt5bridge.config.loading import tomllib   # the standard library's, or tomli on Python 3.10

    preset = tomllib.loads((Path(__file__).resolve().parents[1] / "config" / "one_step.toml").read_text())
    for name, values in sections.items():
        preset.setdefault(name, {}).update(values)
    return config_for_signals(**preset)


@pytest.mark.parametrize("fx_gap, breaches", [(0.0, True), (2.0, False)],
                         ids=["without a gap allowance", "with the preset's gap allowance"])
def test_one_step_a_sunday_gap_of_1_5_percent_on_a_fridays_eurusd_position_stays_inside_the_daily_limit(
        tmp_path, fx_gap, breaches):
    cfg = one_step(sizing={"mode": "plain", "base_risk_pct_min": 0.5},
                   ftmo={"gap_allowance_pct": {"fx": fx_gap}}, exits=QUIET_EXITS)
    desk = Desk(cfg, model=always("BUY", tmp_path))
    desk.add("EURUSD")
    t, price = desk.warm("EURUSD", days=0.5, start="2024-01-12T06:00:00Z")   # Friday
    d = desk.tick("EURUSD", utc_ms("2024-01-12 19:00"), price)
    assert d["action"] == "OPEN"
    if not breaches:
        assert d["cap"] == "GAP_HEADROOM"
    desk.tick("EURUSD", utc_ms("2024-01-12 19:01"), price)
    gapped = round(price * (1 - 0.015), 5)                                   # Sunday's open, 1.5 % lower
    desk.tick("EURUSD", utc_ms("2024-01-14 22:00"), gapped, execute=False)   # the stop fills at the open
    acct = desk.engine.account
    assert not desk.positions and acct["daily_floor"] == pytest.approx(100_000 - 3_000)
    assert (acct["equity"] < acct["daily_floor"]) is breaches, acct


def test_funded_standard_flattens_before_the_weekend_instead_of_counting_the_gap(repo_root):
    from mt5bridge.config import load_config

    desk = Desk(load_config(repo_root / "config" / "funded_standard.toml"))
    desk.add("EURUSD")
    desk.tick("EURUSD", utc_ms("2024-01-12 15:00"), 1.1)
    assert desk.engine.account["over_weekend_close"] is False
    assert desk.cfg.funded.flat_before_weekend


# ---- the circuit breaker ------------------------------------------------------------------------------------------

def breaker_desk(**guards):
    from desk import config

    desk = Desk(config(guards=dict({"internal_daily_dd_pct": 4.9, "internal_weekly_dd_pct": 20}, **guards),
                       ftmo={"daily_loss_pct": 10.0, "max_loss_pct": 20.0}))
    desk.add("EURUSD")
    desk.tick("EURUSD", utc_ms("2024-01-08 08:00"), 1.1)
    desk.balance = 110_000                                  # the day's peak: 110,000, 10 % above the day start
    t = utc_ms("2024-01-08 09:00")
    desk.tick("EURUSD", t, 1.1)
    ticket = desk.open_manual("EURUSD", 1, 1.0, 1.1, sl=1.09, t=t)
    desk.tick("EURUSD", t + 1000, 1.1)
    return desk, ticket


def test_circuit_breaker_flatten_closes_everything_then_opens_nothing_for_circuit_breaker_hours():
    desk, _ = breaker_desk()
    desk.extra_floating = -5_600                           # 104,400: -5.1 % off the peak, still +4.4 % on the day
    d = desk.tick("EURUSD", utc_ms("2024-01-08 10:00"), 1.1)
    assert (d["action"], d["reason_code"]) == ("CLOSE_ALL", "CIRCUIT_BREAKER_FLATTEN") and not desk.positions
    acct = desk.engine.account
    assert (acct["state"], acct["state_reason"]) == ("REDUCING", "CIRCUIT_BREAKER")
    assert desk.engine.account["circuit_breaker_until_ms"] == utc_ms("2024-01-08 14:00")
    d = desk.tick("EURUSD", utc_ms("2024-01-08 13:59"), 1.1)
    assert d["action"] == "HOLD" and desk.engine.account["state_reason"] == "CIRCUIT_BREAKER"
    desk.tick("EURUSD", utc_ms("2024-01-08 14:00"), 1.1)
    assert desk.engine.account["state"] == "ACTIVE"


def test_circuit_breaker_flatten_sends_close_all_again_until_the_book_is_flat():
    desk, _ = breaker_desk()
    desk.fill = False                                       # the first CLOSE_ALL is refused
    desk.extra_floating = -5_600
    first = desk.tick("EURUSD", utc_ms("2024-01-08 10:00"), 1.1)
    assert first["action"] == "CLOSE_ALL" and desk.positions
    desk.fill = True
    again = desk.tick("EURUSD", utc_ms("2024-01-08 10:01"), 1.1)
    assert (again["action"], again["reason_code"]) == ("CLOSE_ALL", "CIRCUIT_BREAKER_FLATTEN") and not desk.positions
    assert desk.tick("EURUSD", utc_ms("2024-01-08 10:02"), 1.1)["action"] == "HOLD"
    assert desk.engine.account["circuit_breaker_flattening"] is False


def test_circuit_breaker_stop_entries_keeps_the_positions_and_opens_nothing():
    desk, _ = breaker_desk(circuit_breaker_action="stop_entries")
    desk.extra_floating = -5_600
    d = desk.tick("EURUSD", utc_ms("2024-01-08 10:00"), 1.1)
    assert d["action"] == "HOLD" and desk.positions
    assert desk.engine.account["state_reason"] == "CIRCUIT_BREAKER"


def test_circuit_breaker_is_measured_from_the_days_equity_peak():
    desk, _ = breaker_desk()
    desk.extra_floating = -5_400                           # 104,600: -4.9 % off the peak
    d = desk.tick("EURUSD", utc_ms("2024-01-08 10:00"), 1.1)
    assert d["action"] != "CLOSE_ALL" and desk.engine.account["state"] == "ACTIVE"


# ---- the 1-Step's objectives ----------------------------------------------------------------------------------------

def test_one_step_preset_has_ftmos_published_objectives(repo_root):
    from mt5bridge.config import load_config

    cfg = load_config(repo_root / "config" / "one_step.toml")
    assert (cfg.ftmo.daily_loss_pct, cfg.ftmo.max_loss_pct, cfg.ftmo.max_loss_mode) == (3.0, 10.0, "eod_trailing")
    assert (cfg.ftmo.profit_target_pct, cfg.ftmo.min_trading_days, cfg.ftmo.best_day_max_share) == (10.0, 0, 0.5)


@pytest.mark.parametrize("product", ["1-step", "2-step"])
def test_on_the_one_step_the_target_is_reached_only_when_the_best_day_rule_holds(product):
    from desk import config

    one = product == "1-step"
    desk = Desk(config(account={"product": product},
                       ftmo=dict({"min_trading_days": 0},
                                 **({"daily_loss_pct": 3.0, "max_loss_mode": "eod_trailing"} if one else {})),
                       guards={"internal_daily_dd_pct": 2.5} if one else {}))
    desk.add("EURUSD")
    desk.tick("EURUSD", utc_ms("2024-01-08 09:00"), 1.1)
    desk.balance = 110_500                                 # the whole target on one Monday
    desk.tick("EURUSD", utc_ms("2024-01-08 15:00"), 1.1)
    acct = desk.engine.account
    assert acct["best_day_share"] == pytest.approx(1.0)
    assert acct["target_reached"] is (not one) and (acct["state"] == "ACTIVE") is one
    desk.balance = 121_000                                 # Tuesday: as much again, the best day is now half
    desk.tick("EURUSD", utc_ms("2024-01-09 15:00"), 1.1)
    acct = desk.engine.account
    assert acct["best_day_share"] == pytest.approx(0.5)
    assert acct["target_reached"] and (acct["state"], acct["state_reason"]) == ("REDUCING", "TARGET_REACHED")
