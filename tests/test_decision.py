"""The decision engine against FTMO's rules and the trader's own limits, with the compiled engine."""

from __future__ import annotations

import pytest

from desk import Desk, always, config, config_for_signals, utc_ms

HOUR = 3_600_000


# ---- FTMO's arithmetic ---------------------------------------------------------------------------------------

def test_ftmo_worked_example_may_lose_14k_more_after_closing_4k_up():
    desk = Desk(config(account={"initial_balance": 200_000}), balance=200_000)
    desk.add("EURUSD")
    desk.tick("EURUSD", utc_ms("2024-01-08 08:00"), 1.1)  # Monday
    desk.balance = 204_000
    desk.tick("EURUSD", utc_ms("2024-01-08 15:00"), 1.1)
    acct = desk.engine.account
    assert acct["daily_floor"] == 190_000
    assert acct["equity"] - acct["equity_floor"] == 14_000


def test_ftmo_worked_example_floating_13k_loss_breaches_after_prague_midnight():
    # Our own reserve levels moved out of the way so that only FTMO's rule speaks.
    desk = Desk(config(account={"initial_balance": 200_000}, ftmo={"reduce_at_share": 0.99, "halt_at_share": 1.0}),
                balance=200_000)
    desk.add("EURUSD")
    desk.tick("EURUSD", utc_ms("2024-01-08 08:00"), 1.1)
    desk.balance = 204_000
    desk.extra_floating = -13_000
    desk.tick("EURUSD", utc_ms("2024-01-08 22:59"), 1.1)  # Monday 23:59 in Prague
    monday = desk.engine.account
    assert monday["equity"] == 191_000 and monday["equity_floor"] == 190_000 and monday["state"] != "HALTED"
    desk.tick("EURUSD", utc_ms("2024-01-08 23:00:01"), 1.1)  # Tuesday 00:00:01 in Prague
    tuesday = desk.engine.account
    assert tuesday["day_start_balance"] == 204_000
    assert tuesday["equity_floor"] == 194_000 and tuesday["equity"] < tuesday["equity_floor"]
    assert tuesday["state"] == "HALTED" and tuesday["state_reason"] == "DAILY_LIMIT_HALT"


def test_one_step_overall_floor_trails_the_end_of_day_balance():
    desk = Desk(config(account={"product": "1-step", "initial_balance": 100_000},
                       ftmo={"daily_loss_pct": 3.0, "max_loss_mode": "eod_trailing"},
                       guards={"internal_daily_dd_pct": 2.5}))
    desk.add("EURUSD")
    desk.tick("EURUSD", utc_ms("2024-01-08 08:00"), 1.1)
    assert desk.engine.account["overall_floor"] == 90_000
    desk.balance = 106_000
    desk.tick("EURUSD", utc_ms("2024-01-08 22:00"), 1.1)  # 23:00 in Prague: the day ends at 106k
    desk.tick("EURUSD", utc_ms("2024-01-08 23:30"), 1.1)
    assert desk.engine.account["overall_floor"] == 96_000
    assert desk.engine.account["daily_floor"] == 106_000 - 3_000
    desk.balance = 101_000
    desk.tick("EURUSD", utc_ms("2024-01-09 22:00"), 1.1)
    desk.tick("EURUSD", utc_ms("2024-01-09 23:30"), 1.1)
    assert desk.engine.account["overall_floor"] == 96_000  # it only rises


# ---- the Prague day across the daylight-saving switches --------------------------------------------------------

@pytest.mark.parametrize(
    "before, after, label",
    [
        ("2024-01-15 22:59:59", "2024-01-15 23:00:00", "winter: Prague midnight is 23:00 UTC"),
        ("2024-07-15 21:59:59", "2024-07-15 22:00:00", "summer: Prague midnight is 22:00 UTC"),
        ("2026-03-28 22:59:59", "2026-03-28 23:00:00", "the night before the spring switch"),
        ("2026-03-29 21:59:59", "2026-03-29 22:00:00", "the night after the spring switch"),
        ("2026-10-24 21:59:59", "2026-10-24 22:00:00", "the night before the autumn switch"),
        ("2026-10-25 22:59:59", "2026-10-25 23:00:00", "the night after the autumn switch"),
    ],
)
def test_the_ftmo_day_rolls_at_prague_midnight(before, after, label):
    desk = Desk(config())
    desk.add("EURUSD")
    desk.tick("EURUSD", utc_ms(before) - 5 * HOUR, 1.1)
    desk.balance = 100_500   # closed profit during the day
    desk.tick("EURUSD", utc_ms(before), 1.1)
    assert desk.engine.account["day_start_balance"] == 100_000, label
    desk.balance = 100_700   # a close just after midnight belongs to the new day
    desk.tick("EURUSD", utc_ms(after), 1.1)
    assert desk.engine.account["day_start_balance"] == 100_500, label


@pytest.mark.parametrize(
    "day, rollover_server_hour",
    [("2026-03-10", 2), ("2026-06-10", 1), ("2026-10-28", 2), ("2026-11-10", 1)],
    ids=["US DST before EU (two-hour week)", "both summer", "EU back, US not yet (two-hour week)", "both winter"],
)
def test_the_day_rolls_at_01_or_02_server_time(day, rollover_server_hour):
    # The broker's server runs at UTC+2, or UTC+3 while New York is on summer time.
    from zoneinfo import ZoneInfo
    from datetime import datetime

    noon = datetime.fromisoformat(f"{day} 12:00").replace(tzinfo=ZoneInfo("America/New_York"))
    server_offset_h = 3 if noon.dst() else 2
    rollover_utc = utc_ms(f"{day} 00:00") + (rollover_server_hour - server_offset_h) * HOUR
    desk = Desk(config())
    desk.add("EURUSD")
    desk.tick("EURUSD", rollover_utc - 6 * HOUR, 1.1)
    desk.balance = 100_250
    desk.tick("EURUSD", rollover_utc - 1, 1.1)
    assert desk.engine.account["day_start_balance"] == 100_000
    desk.tick("EURUSD", rollover_utc, 1.1)
    assert desk.engine.account["day_start_balance"] == 100_250


# ---- trading states ------------------------------------------------------------------------------------------

def _state_after(desk, floating, when="2024-01-08 10:00"):
    desk.extra_floating = floating
    d = desk.tick("EURUSD", utc_ms(when), 1.1)
    return desk.engine.account, d


def test_seventy_percent_of_the_daily_allowance_stops_new_risk():
    desk = Desk(config())
    desk.add("EURUSD")
    acct, d = _state_after(desk, -3_600)
    assert (acct["state"], acct["state_reason"]) == ("REDUCING", "DAILY_LIMIT_REDUCE")
    assert d["action"] == "HOLD" and d["reason_code"] == "DAILY_LIMIT_REDUCE"


def test_internal_three_percent_daily_stop_comes_before_the_ftmo_levels():
    desk = Desk(config())
    desk.add("EURUSD")
    acct, _ = _state_after(desk, -3_100)
    assert (acct["state"], acct["state_reason"]) == ("REDUCING", "INTERNAL_DAILY_DD")
    acct, _ = _state_after(desk, 0, "2024-01-08 11:00")  # recovering the same day does not lift it
    assert acct["state_reason"] == "INTERNAL_DAILY_DD"
    acct, _ = _state_after(desk, 0, "2024-01-09 10:00")  # the next Prague day does
    assert acct["state"] == "ACTIVE"


def test_ninety_percent_halts_flattens_and_stays_halted_until_the_next_day():
    desk = Desk(config())
    desk.add("EURUSD")
    t = utc_ms("2024-01-08 09:00")
    desk.tick("EURUSD", t, 1.1)
    desk.open_manual("EURUSD", 1, 1.0, 1.1, sl=1.09, t=t, magic=0)
    acct, d = _state_after(desk, -4_600)
    assert (acct["state"], acct["state_reason"]) == ("HALTED", "DAILY_LIMIT_HALT")
    assert d["action"] == "CLOSE_ALL" and d["reason_code"] == "FLATTEN"
    assert not desk.positions
    acct, d = _state_after(desk, 0, "2024-01-08 12:00")
    assert acct["state"] == "HALTED" and d["action"] == "HOLD"
    acct, _ = _state_after(desk, 0, "2024-01-09 12:00")
    assert acct["state"] == "ACTIVE"


def test_the_overall_limit_halt_survives_the_day_roll_until_the_operator_resumes():
    desk = Desk(config(guards={"internal_daily_dd_pct": 4.9, "internal_weekly_dd_pct": 20,
                               "circuit_breaker_pct": 20}))
    desk.add("EURUSD")
    desk.tick("EURUSD", utc_ms("2024-01-08 09:00"), 1.1)
    desk.balance = 91_000   # closed losses over the day
    acct, _ = _state_after(desk, 0, "2024-01-08 23:30")   # Tuesday in Prague: the daily floor starts at 91k
    assert (acct["state"], acct["state_reason"]) == ("HALTED", "OVERALL_LIMIT_HALT")
    acct, _ = _state_after(desk, 0, "2024-01-10 10:00")
    assert acct["state"] == "HALTED"
    desk.balance = 99_000
    desk.engine.resume()
    acct, _ = _state_after(desk, 0, "2024-01-10 11:00")
    assert acct["state"] == "ACTIVE"


def test_circuit_breaker_pauses_entries_four_hours_after_five_percent_off_the_day_peak():
    desk = Desk(config())
    desk.add("EURUSD")
    desk.tick("EURUSD", utc_ms("2024-01-08 08:00"), 1.1)
    desk.balance = 110_000
    desk.tick("EURUSD", utc_ms("2024-01-08 09:00"), 1.1)
    acct, _ = _state_after(desk, -5_600, "2024-01-08 10:00")
    assert (acct["state"], acct["state_reason"]) == ("REDUCING", "CIRCUIT_BREAKER")
    acct, _ = _state_after(desk, -5_600, "2024-01-08 13:59")
    assert acct["state_reason"] == "CIRCUIT_BREAKER"
    acct, _ = _state_after(desk, -5_600, "2024-01-08 14:01")
    assert acct["state"] == "ACTIVE"


def test_operator_halt_flattens_and_persists_until_resume():
    desk = Desk(config())
    desk.add("EURUSD")
    t = utc_ms("2024-01-08 09:00")
    desk.tick("EURUSD", t, 1.1)
    desk.open_manual("EURUSD", -1, 0.5, 1.1, sl=1.11, t=t)
    desk.engine.halt()
    d = desk.tick("EURUSD", t + 1000, 1.1)
    assert d["action"] == "CLOSE_ALL" and desk.engine.account["state_reason"] == "OPERATOR_HALT"
    d = desk.tick("EURUSD", t + 2000, 1.1)
    assert d["action"] == "HOLD" and d["reason_code"] == "STATE_HALTED"
    desk.engine.resume()
    desk.tick("EURUSD", t + 3000, 1.1)
    assert desk.engine.account["state"] == "ACTIVE"


def test_profit_target_with_enough_trading_days_stops_new_risk():
    desk = Desk(config())
    desk.add("EURUSD")
    for day in range(8, 12):  # a position opened on four Prague days
        t = utc_ms(f"2024-01-{day:02d} 10:00")
        desk.tick("EURUSD", t, 1.1)
        tk = desk.open_manual("EURUSD", 1, 0.01, 1.1, sl=1.09, t=t)
        desk.tick("EURUSD", t + 1000, 1.1)
        desk.close(tk)
    desk.balance = 110_100
    acct, _ = _state_after(desk, 0, "2024-01-12 10:00")
    assert acct["trading_days"] == 4 and acct["target_reached"]
    assert (acct["state"], acct["state_reason"]) == ("REDUCING", "TARGET_REACHED")


def test_losing_streak_and_recovery_mode_each_halve_the_risk():
    desk = Desk(config())
    desk.add("EURUSD")
    t = utc_ms("2024-01-08 09:00")
    desk.tick("EURUSD", t, 1.1)
    for k in range(3):
        tk = desk.open_manual("EURUSD", 1, 0.1, 1.1, sl=1.09, t=t)
        desk.tick("EURUSD", t + 1000 * (2 * k + 1), 1.1)
        desk.tick("EURUSD", t + 1000 * (2 * k + 2), 1.0995)
        desk.close(tk)
    acct, _ = _state_after(desk, 0, "2024-01-08 09:10")
    assert acct["losing_streak"] == 3 and acct["risk_multiplier"] == pytest.approx(0.5)
    acct, _ = _state_after(desk, -2_100, "2024-01-08 09:20")
    assert acct["recovery_mode"] and acct["risk_multiplier"] == pytest.approx(0.25)


# ---- funded-account options ----------------------------------------------------------------------------------

def _funded(tmp_path, **funded):
    news = tmp_path / "news.csv"
    news.write_text("time,currency,title\n2024-01-10 13:30,USD,Non-Farm Employment Change\n"
                    "2024-01-10 09:00,JPY,Tokyo CPI\n", encoding="utf-8")
    return config_for_signals(account={"phase": "funded"}, ftmo={"profit_target_pct": 0.0, "min_trading_days": 0},
                              funded=dict({"news_blackout": True, "news_file": str(news)}, **funded))


@pytest.mark.parametrize("when, blocked", [("2024-01-10 13:27:59", False), ("2024-01-10 13:28:00", True),
                                           ("2024-01-10 13:32:00", True), ("2024-01-10 13:32:01", False)])
def test_news_blackout_two_minutes_either_side_for_the_symbols_currencies(tmp_path, when, blocked):
    desk = Desk(_funded(tmp_path), model=always("BUY", tmp_path))
    desk.add("EURUSD")
    t, price = desk.warm("EURUSD", days=0.3, start="2024-01-10T05:00:00Z")
    d = desk.tick("EURUSD", utc_ms(when), price, execute=False)
    assert (d["reason_code"] == "NEWS_BLACKOUT") is blocked, d
    if blocked:
        assert d["action"] == "HOLD"


def test_news_for_another_currency_does_not_block(tmp_path):
    desk = Desk(_funded(tmp_path), model=always("BUY", tmp_path))
    desk.add("EURUSD")
    t, price = desk.warm("EURUSD", days=0.1, start="2024-01-10T05:00:00Z")
    d = desk.tick("EURUSD", utc_ms("2024-01-10 09:00"), price, execute=False)   # JPY news
    assert d["reason_code"] != "NEWS_BLACKOUT"


def test_a_missing_news_calendar_stops_the_start(tmp_path):
    from mt5bridge.market.news import NewsCalendarError

    cfg = config_for_signals(account={"phase": "funded"}, ftmo={"profit_target_pct": 0.0, "min_trading_days": 0},
                             funded={"news_blackout": True, "news_file": str(tmp_path / "absent.csv")})
    with pytest.raises(NewsCalendarError, match="absent.csv: cannot read the news calendar"):
        Desk(cfg)


def test_flat_before_the_weekend_closes_everything_and_opens_nothing(tmp_path):
    desk = Desk(_funded(tmp_path, flat_before_weekend=True, news_blackout=False), model=always("BUY", tmp_path))
    desk.add("EURUSD")
    t, price = desk.warm("EURUSD", days=0.4, start="2024-01-12T10:00:00Z")   # a Friday
    desk.open_manual("EURUSD", 1, 0.2, price, sl=price - 0.002, t=t)
    d = desk.tick("EURUSD", utc_ms("2024-01-12 20:29"), price)
    assert d["action"] != "CLOSE_ALL"
    d = desk.tick("EURUSD", utc_ms("2024-01-12 20:30"), price)
    assert d["action"] == "CLOSE_ALL" and d["reason_code"] == "WEEKEND_FLAT" and not desk.positions
    d = desk.tick("EURUSD", utc_ms("2024-01-12 20:31"), price)
    assert d["action"] == "HOLD" and d["reason_code"] == "WEEKEND"


def test_reason_codes_in_the_engine_are_fresh(repo_root):
    from mt5bridge.core.reasons import render_pxi

    assert (repo_root / "ext" / "reasons.pxi").read_text(encoding="utf-8") == render_pxi(), (
        "stale: run `python -m mt5bridge.core.reasons --write`")


def test_internal_weekly_stop_lasts_until_the_prague_week_rolls():
    desk = Desk(config(guards={"internal_daily_dd_pct": 2.0, "internal_weekly_dd_pct": 4.0}))
    desk.add("EURUSD")
    desk.tick("EURUSD", utc_ms("2024-01-08 09:00"), 1.1)          # Monday
    desk.balance = 97_500                                         # -2.5 % on Monday
    desk.tick("EURUSD", utc_ms("2024-01-08 20:00"), 1.1)
    desk.balance = 95_900                                         # -1.6 % more on Tuesday: -4.1 % this week
    acct, _ = _state_after(desk, 0, "2024-01-09 20:00")
    assert (acct["state"], acct["state_reason"]) == ("REDUCING", "INTERNAL_WEEKLY_DD")
    acct, _ = _state_after(desk, 0, "2024-01-11 10:00")           # Thursday: still this week
    assert acct["state_reason"] == "INTERNAL_WEEKLY_DD"
    acct, _ = _state_after(desk, 0, "2024-01-15 10:00")           # next Monday
    assert acct["state"] == "ACTIVE"


def test_seventy_percent_of_the_maximum_loss_stops_new_risk():
    desk = Desk(config())
    desk.add("EURUSD")
    desk.tick("EURUSD", utc_ms("2024-01-08 09:00"), 1.1)
    desk.balance = 92_900                                         # closed losses over earlier days
    desk.tick("EURUSD", utc_ms("2024-01-08 20:00"), 1.1)
    acct, _ = _state_after(desk, 0, "2024-01-09 10:00")           # a new day: the daily floor resets
    assert (acct["state"], acct["state_reason"]) == ("REDUCING", "OVERALL_LIMIT_REDUCE")


def test_best_day_share_for_the_one_step_consistency_rule():
    desk = Desk(config())
    desk.add("EURUSD")
    desk.tick("EURUSD", utc_ms("2024-01-08 09:00"), 1.1)
    desk.balance = 103_000
    desk.tick("EURUSD", utc_ms("2024-01-08 20:00"), 1.1)
    desk.balance = 104_000
    desk.tick("EURUSD", utc_ms("2024-01-09 20:00"), 1.1)
    acct = desk.engine.account
    assert acct["best_day_profit"] == 3_000 and acct["best_day_share"] == pytest.approx(0.75)


def desk_with_a_hand_opened_position() -> tuple[Desk, int]:
    """A default account on EURUSD, Monday 09:00, long 0.5 lots opened by hand (stop 100 pips away)."""
    desk = Desk(config())
    desk.add("EURUSD")
    t = utc_ms("2024-01-08 09:00")
    desk.tick("EURUSD", t, 1.1)
    desk.open_manual("EURUSD", 1, 0.5, 1.1, sl=1.09, t=t)
    return desk, t


def test_operator_halt_without_flatten_only_stops_new_risk():
    desk, t = desk_with_a_hand_opened_position()
    desk.engine.halt(flatten=False)
    d = desk.tick("EURUSD", t + 1000, 1.1)
    assert d["action"] == "HOLD" and desk.positions
    assert desk.engine.account["state"] == "REDUCING" and desk.engine.account["state_reason"] == "OPERATOR_HALT"


def test_the_bridges_one_call_gives_the_decision_and_a_status_key_that_moves_with_state_and_day():
    desk = Desk(config())
    sym = desk.add("EURUSD")
    engine = desk.engine
    keys = []

    def outcome(when, **state):
        action, reason, status = engine.on_tick_outcome(sym, utc_ms(when), 1.1, 1.1001, 1.0, desk.balance,
                                                        desk.balance, 0.0)
        assert (action, reason) == engine.decision_code[:2] and status == engine.status_key
        keys.append((status, engine.state_code, engine.day_key))
        return action

    outcome("2024-01-08 08:00")
    outcome("2024-01-08 08:01")                        # nothing changed: the same key
    engine.halt(flatten=False)
    outcome("2024-01-08 08:02")                        # the state changed
    outcome("2024-01-08 23:30")                        # Tuesday in Prague: the day changed
    engine.resume()
    outcome("2024-01-08 23:31")
    for (key, state, day), (next_key, next_state, next_day) in zip(keys, keys[1:]):
        assert (key == next_key) == (state == next_state and day == next_day)
    assert len({k for k, _, _ in keys}) == 4
    with pytest.raises(ValueError, match="unknown symbol index"):
        engine.on_tick_outcome(sym + 1, utc_ms("2024-01-08 23:32"), 1.1, 1.1001, 1.0, 1e5, 1e5, 0.0)


def test_profits_alone_update_the_book_only_for_positions_it_holds():
    desk, t = desk_with_a_hand_opened_position()
    desk.tick("EURUSD", t + 1000, 1.1)
    [held] = desk.engine.positions
    assert desk.engine.update_profits([held["ticket"]], [123.5]) is True
    assert desk.engine.positions[0]["profit"] == 123.5
    # A ticket the book does not hold: nothing changes, and the caller syncs the whole book instead.
    assert desk.engine.update_profits([held["ticket"], 999_999], [1.0, 2.0]) is False
    assert desk.engine.positions[0]["profit"] == 123.5
    with pytest.raises(ValueError, match="1 tickets but 2 profits"):
        desk.engine.update_profits([held["ticket"]], [1.0, 2.0])
