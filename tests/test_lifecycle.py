"""A position's life under the engine (open, breakeven, partial take-profit, trailing, closed with its R),
and the property that matters most: whatever the prices and the account, no command is ever emitted whose
worst case crosses an FTMO limit minus the safety buffer."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desk import Desk, always, config_for_signals, utc_ms
from test_sizing import worst_case_of

QUIET_EXITS = {"weight_quality_drop": 0, "weight_direction_reversal": 0, "weight_trend_reversal": 0,
               "weight_volume_divergence": 0, "weight_key_level": 0}


def test_open_breakeven_partial_trailing_closed(tmp_path):
    desk = Desk(config_for_signals(exits=QUIET_EXITS), model=always("BUY", tmp_path))
    desk.add("EURUSD")
    t, price = desk.warm("EURUSD", days=1)
    t += 60_000
    opened = desk.tick("EURUSD", t, price)
    assert opened["action"] == "OPEN"
    entry, r = opened["price"], opened["price"] - opened["sl"]
    desk.tick("EURUSD", t + 1_000, entry)
    [p] = desk.engine.positions
    assert p["managed"] and p["stage"] == "OPEN" and p["r_dist"] == pytest.approx(r)

    be = desk.tick("EURUSD", t + 2_000, entry + 1.05 * r)
    assert be["action"] == "MODIFY" and be["reason_code"] == "BREAKEVEN" and entry < be["sl"] < entry + 0.0001

    partial = desk.tick("EURUSD", t + 3_000, entry + 2.05 * r)
    assert partial["action"] == "CLOSE" and partial["reason_code"] == "PARTIAL_TP"
    assert partial["volume"] == pytest.approx(round(opened["volume"] * 0.5 - 0.004999, 2))
    # The book shows the smaller position (PARTIAL_TP) and on the same tick the stop starts to trail.
    first_trail = desk.tick("EURUSD", t + 4_000, entry + 2.05 * r)
    assert first_trail["action"] == "MODIFY" and first_trail["reason_code"] == "TRAILING"
    assert first_trail["sl"] > be["sl"]
    assert desk.engine.positions[0]["stage"] == "TRAILING"

    desk.tick("EURUSD", t + 4_500, entry + 2.05 * r)  # the book shows the trailed stop
    trail = desk.tick("EURUSD", t + 5_000, entry + 2.4 * r)   # still short of the 2.5 R target
    assert trail["action"] == "MODIFY" and trail["reason_code"] == "TRAILING" and trail["sl"] > first_trail["sl"]

    # The broker stops the rest out at the trailed stop.
    [ticket] = desk.positions
    desk.quotes["EURUSD"] = (trail["sl"], trail["sl"] + 0.0001)
    desk.close(ticket)
    desk.tick("EURUSD", t + 6_000, trail["sl"])
    [trade] = desk.engine.closed_trades
    assert trade["managed"] and trade["stage"] == "TRAILING"
    assert trade["mfe_r"] >= 2.3 and trade["r_multiple"] > 0


def test_a_refused_open_frees_its_risk_at_once(tmp_path):
    desk = Desk(config_for_signals(), model=always("BUY", tmp_path), fill=False)
    desk.add("EURUSD")
    t, price = desk.warm("EURUSD", days=0.3)
    d = desk.tick("EURUSD", t + 60_000, price)
    assert d["action"] == "OPEN" and desk.engine.in_flight == []


def test_an_open_without_a_result_counts_until_the_book_shows_it(tmp_path):
    desk = Desk(config_for_signals(), model=always("BUY", tmp_path))
    desk.add("EURUSD")
    t, price = desk.warm("EURUSD", days=0.3)
    d = desk.tick("EURUSD", t + 60_000, price, execute=False)
    assert [c["command_id"] for c in desk.engine.in_flight] == [d["command_id"]]
    again = desk.tick("EURUSD", t + 61_000, price, execute=False)
    assert again["action"] == "HOLD" and again["reason_code"] == "COMMAND_IN_FLIGHT"
    assert desk.engine.account["worst_case_loss"] == pytest.approx(d["risk_money"])
    # The fill shows in the book before its RESULT arrives: adopted, not counted twice.
    desk.open_manual("EURUSD", 1, d["volume"], d["price"], d["sl"], d["tp"], t + 61_500, magic=20261121)
    desk.tick("EURUSD", t + 62_000, price, execute=False)
    assert desk.engine.in_flight == [] and desk.engine.positions[0]["managed"]
    assert desk.engine.on_result(d["command_id"], True, 1) is False   # a late RESULT changes nothing


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    balance=st.floats(50_000, 200_000),
    loss_share=st.floats(0.0, 0.99),
    moves=st.lists(st.floats(-0.0015, 0.0015), min_size=5, max_size=40),
    fills=st.lists(st.booleans(), min_size=5, max_size=40),
    manual=st.lists(st.tuples(st.sampled_from([1, -1]), st.floats(0.01, 3.0), st.floats(0.0005, 0.01)),
                    max_size=3),
    dca=st.booleans(),
)
def test_no_command_ever_lets_the_worst_case_cross_a_limit(tmp_path, balance, loss_share, moves, fills, manual,
                                                           dca):
    cfg = config_for_signals(account={"initial_balance": round(balance, 2)},
                             ftmo={"reduce_at_share": 0.98, "halt_at_share": 0.99},
                             guards={"internal_daily_dd_pct": 4.9, "circuit_breaker_pct": 20},
                             dca={"enabled": dca, "loss_pct": 0.01, "recovery_probability": 0.6},
                             scale_in={"enabled": dca, "profit_pct": 0.01, "min_score": 0})
    desk = Desk(cfg, balance=round(balance, 2), model=always("BUY", tmp_path))
    desk.add("EURUSD")
    t, price = desk.warm("EURUSD", days=0.25)
    t += 60_000
    for side, volume, dist in manual:
        desk.open_manual("EURUSD", side, round(volume, 2), price, sl=price - side * dist, t=t, magic=0)
    # Losses elsewhere on the account eat part of the daily allowance.
    desk.extra_floating = -loss_share * 0.05 * balance
    for k, move in enumerate(moves):
        price = round(price + move, 5)
        desk.fill = fills[k % len(fills)]
        d = desk.tick("EURUSD", t + 1_000 * k, price, execute=False)
        if d["action"] in ("OPEN", "ADD"):
            acct = desk.engine.account
            worst = worst_case_of(desk)
            assert worst == pytest.approx(acct["worst_case_loss"], rel=1e-9, abs=1e-6)
            assert acct["equity"] - worst >= acct["equity_floor"] + acct["safety_buffer"] - 1e-6, d
        if d["action"] != "HOLD":
            desk.execute(d, t + 1_000 * k)


def _opened(tmp_path, exits=None, **sections):
    desk = Desk(config_for_signals(exits=dict(QUIET_EXITS, **(exits or {})), **sections),
                model=always("BUY", tmp_path))
    desk.add("EURUSD")
    t, price = desk.warm("EURUSD", days=1)
    t += 60_000
    d = desk.tick("EURUSD", t, price)
    assert d["action"] == "OPEN"
    desk.tick("EURUSD", t + 1_000, price)
    return desk, t, d


def test_a_trade_without_progress_is_closed_after_the_time_limit(tmp_path):
    desk, t, d = _opened(tmp_path, exits={"time_exit_hours": 24.0})
    ticket = desk.engine.positions[0]["ticket"]
    held = desk.tick("EURUSD", t + 23 * 3_600_000, d["price"] + 0.0001)
    assert held["action"] == "HOLD"
    out = desk.tick("EURUSD", t + 24 * 3_600_000 + 1_000, d["price"] + 0.0001)
    assert (out["action"], out["reason_code"], out["ticket"]) == ("CLOSE", "TIME_EXIT", ticket)


def _clock_model(tmp_path) -> str:
    """A model that reads BUY in the morning (UTC) and SELL in the evening: a direction that reverses on cue."""
    import json

    from mt5bridge.core.model import load_model, model_to_json

    model = json.loads(model_to_json(load_model()))
    for sub in model["submodels"].values():
        sub["weights"] = {"hour_sin": 3.0}
        sub["bias"] = 0.0
    path = tmp_path / "clock.json"
    path.write_text(json.dumps(model), encoding="utf-8")
    return str(path)


def test_the_exit_score_closes_when_the_direction_reverses(tmp_path):
    exits = dict(QUIET_EXITS, weight_direction_reversal=25)
    desk = Desk(config_for_signals(exits=exits), model=_clock_model(tmp_path))
    desk.add("EURUSD")
    t, price = desk.warm("EURUSD", days=0.25, start="2024-01-09T00:00:00Z")   # warm until 06:00 UTC
    opened = desk.tick("EURUSD", utc_ms("2024-01-09 06:01"), price)
    assert opened["action"] == "OPEN" and opened["side"] == "BUY"
    desk.tick("EURUSD", utc_ms("2024-01-09 06:01:01"), price)
    # 25 alone is below every threshold (65/70/80): the reversal is seen but not enough.
    assert desk.tick("EURUSD", utc_ms("2024-01-09 18:00"), price)["action"] == "HOLD"
    desk = Desk(config_for_signals(exits=dict(QUIET_EXITS, weight_direction_reversal=80)),
                model=_clock_model(tmp_path))
    desk.add("EURUSD")
    t, price = desk.warm("EURUSD", days=0.25, start="2024-01-09T00:00:00Z")
    desk.tick("EURUSD", utc_ms("2024-01-09 06:01"), price)
    desk.tick("EURUSD", utc_ms("2024-01-09 06:01:01"), price)
    held = desk.tick("EURUSD", utc_ms("2024-01-09 09:00"), price)     # still morning: still BUY
    assert held["action"] == "HOLD"
    out = desk.tick("EURUSD", utc_ms("2024-01-09 18:00"), price)      # evening: SELL with high confidence
    assert out["action"] == "CLOSE" and out["reason_code"] == "EXIT_SCORE"


def test_closed_trades_carry_the_features_at_entry_and_at_exit(tmp_path):
    desk, t, d = _opened(tmp_path)
    [ticket] = desk.positions
    desk.close(ticket)
    desk.tick("EURUSD", t + 2_000, d["price"])
    [trade] = desk.engine.closed_trades
    assert trade["features_at_entry"].shape == (147,) and trade["features_at_exit"].shape == (147,)
    assert trade["managed"] and trade["stage"] == "OPEN"


def test_stops_keep_the_brokers_stop_level(tmp_path):
    desk = Desk(config_for_signals(exits={"sl_atr": 0.01, "tp_atr": 0.01}), model=always("BUY", tmp_path))
    desk.add("EURUSD", stops_level=40, freeze_level=10)
    t, price = desk.warm("EURUSD", days=0.3)
    d = desk.tick("EURUSD", t + 60_000, price, execute=False)
    assert d["action"] == "OPEN"
    # 0.01 ATR would sit inside the 40-point stops level: both are pushed out to 40 + 5 points of buffer.
    assert round((d["price"] - d["sl"]) / 1e-5) >= 45 and round((d["tp"] - d["price"]) / 1e-5) >= 45


def test_scale_in_adds_to_a_winner_in_a_strong_market(tmp_path):
    desk, t, d = _opened(tmp_path, scale_in={"enabled": True, "profit_pct": 0.01, "min_score": 0},
                         exits={"breakeven_r": 20.0, "partial_r": 50.0})
    up = desk.tick("EURUSD", t + 2_000, d["price"] + 0.9 * (d["tp"] - d["price"]) / 2.5)
    assert up["action"] == "ADD" and up["reason_code"] == "SCALE_IN" and up["sl"] == d["sl"]


def test_a_restarted_engine_has_the_same_limits_state_and_commands_in_flight(tmp_path):
    cfg = config_for_signals(exits=QUIET_EXITS)
    desk = Desk(cfg, model=always("BUY", tmp_path))
    desk.add("EURUSD")
    t, price = desk.warm("EURUSD", days=1)
    d = desk.tick("EURUSD", t + 60_000, price)                   # an open, filled
    desk.tick("EURUSD", t + 61_000, price)                                  # the book shows it
    be = desk.tick("EURUSD", t + 61_500, d["price"] + 1.05 * (d["price"] - d["sl"]), execute=False)
    assert be["action"] == "MODIFY"                                          # sent, no result yet
    desk.balance = 100_400
    desk.tick("EURUSD", t + 62_000, price, execute=False)
    before = desk.engine.export_state()
    assert before["in_flight"] and before["lifecycle"]

    restarted = Desk(cfg, model=always("BUY", tmp_path))
    restarted.engine.restore_state(before)
    restarted.add("EURUSD")
    restarted.positions = desk.positions
    restarted.quotes = dict(desk.quotes)
    restarted.balance = desk.balance
    restarted.sync(t + 63_000)
    after = restarted.engine.export_state()
    assert after["account"] == before["account"]
    assert after["in_flight"] == before["in_flight"] and after["next_command_id"] == before["next_command_id"]
    assert after["lifecycle"] == before["lifecycle"]
    # Until its first tick the restarted engine has no price and measures the stop from the open price;
    # after it, the same numbers.
    desk.tick("EURUSD", t + 64_000, price, execute=False)
    restarted.tick("EURUSD", t + 64_000, price, execute=False)
    acct_a, acct_b = desk.engine.account, restarted.engine.account
    for key in ("day_start_balance", "equity_floor", "state", "trading_days", "worst_case_loss"):
        assert acct_a[key] == acct_b[key], key
