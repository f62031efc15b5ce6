"""The FTMO floors are known, never guessed: the initial balance comes from the configuration, the EA's input or
the account's first deposit (in that order of trust), else nothing new is opened; a bridge started mid-day
measures the daily limit from the balance at Prague midnight as the EA reports it; trading days are counted
once per Prague day, across restarts too."""

from __future__ import annotations

import os
import signal

from desk import always
from test_bridge import Chart, _bridge_process, _process_config, control_request, running, signal_config  # noqa: F401
from test_faults import _warm


def _account(r) -> dict:
    [acct] = control_request(r.cfg.bridge.control_endpoint, {"cmd": "status"})["accounts"].values()
    return acct["account"]


def test_started_on_a_100k_account_at_97k_the_overall_floor_is_90k_from_the_first_deposit(running, tmp_path):
    r = running(signal_config(tmp_path))
    chart = Chart(r.cfg.bridge.endpoint)
    chart.hello(initial_balance=None, first_deposit=100_000.0, balance=97_000.0, equity=97_000.0,
                day_start_balance=97_500.0)
    chart.tick(1_783_400_000_000, 1.0851, balance=97_000.0, equity=97_000.0)
    a = _account(r)
    assert a["initial_balance"] == 100_000.0 and a["overall_floor"] == 90_000.0
    assert "first deposit" in a["initial_balance_source"]
    # The day started at 97,500 (the EA took today's deals off the balance): 97,500 - 5,000.
    assert a["day_start_balance"] == 97_500.0 and a["daily_floor"] == 92_500.0
    assert "Prague midnight" in a["day_start_balance_source"]


def test_the_configured_initial_balance_wins_over_what_the_ea_reports(running, tmp_path):
    r = running(signal_config(tmp_path, account={"initial_balance": 200_000.0}))
    chart = Chart(r.cfg.bridge.endpoint)
    chart.hello(initial_balance=100_000.0, first_deposit=50_000.0)
    chart.tick(1_783_400_000_000, 1.0851)
    a = _account(r)
    assert a["initial_balance"] == 200_000.0 and "configuration" in a["initial_balance_source"]


def test_with_no_initial_balance_known_nothing_new_is_opened(running, tmp_path, caplog):
    r = running(signal_config(tmp_path), model=always("BUY", tmp_path))
    chart = Chart(r.cfg.bridge.endpoint)
    t, price = _warm(chart, initial_balance=None, first_deposit=None)
    reply = chart.tick(t, price)
    assert (reply["action"], reply["reason_code"]) == ("HOLD", "INITIAL_BALANCE_UNKNOWN"), reply
    assert _account(r)["initial_balance_source"] == "unknown"
    assert "INITIAL BALANCE UNKNOWN" in caplog.text
    # The same account with the EA's input: it trades.
    again = Chart(r.cfg.bridge.endpoint, identity=b"other-account")
    t2, price2 = _warm(again, login=1510000009, initial_balance=100_000.0)
    assert again.tick(t2, price2)["action"] == "OPEN"


def test_trading_days_are_counted_once_per_prague_day_across_a_restart(tmp_path):
    config, ea, control = _process_config(tmp_path)
    day = 86_400_000
    monday = 1_783_296_000_000 + 10 * 3_600_000   # 2026-07-06 10:00 UTC, a Monday
    positions = [dict(ticket=100 + i, symbol="EURUSD", side="BUY", volume=0.1, open_price=1.08, sl=1.07, tp=1.09,
                      profit=0.0, swap=0.0, commission=0.0, magic=0, open_time_msc=monday + i * day + 3 * 3_600_000,
                      comment="") for i in range(2)]
    with _bridge_process(config, control) as proc:
        chart = Chart(ea)
        chart.hello()
        chart.tick(monday, 1.0851, positions=positions[:1])
        chart.tick(monday + day, 1.0851, positions=positions)
        [before] = control_request(control, {"cmd": "status"})["accounts"].values()
        assert before["account"]["trading_days"] == 2
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    with _bridge_process(config, control):
        chart = Chart(ea, identity=b"after-restart")
        chart.hello()
        chart.tick(monday + day + 60_000, 1.0851, positions=positions)
        [after] = control_request(control, {"cmd": "status"})["accounts"].values()
        assert after["account"]["trading_days"] == 2


def test_the_server_offset_follows_a_clock_change_on_a_connection_that_stays_up(running, tmp_path):
    r = running(signal_config(tmp_path))
    chart = Chart(r.cfg.bridge.endpoint)
    chart.hello(server_utc_offset_s=3 * 3600)
    server_ms = 1_792_368_000_000 + 3 * 3_600_000   # 2026-10-18 22:00 UTC shown as server time
    chart.tick(0, 1.0851, time_msc=server_ms)
    # The broker's daylight-saving switch: UTC+3 becomes UTC+2, told by CLOCK before the next tick.
    chart.send({"type": "CLOCK", "seq": chart.next_seq(), "server_utc_offset_s": 2 * 3600,
                "time_msc": server_ms - 3_600_000 + 1000})
    # One second later in UTC is an hour earlier in the new server time: served, not TIME_BACKWARDS.
    reply = chart.tick(0, 1.0851, time_msc=server_ms - 3_600_000 + 1000)
    assert reply["type"] == "COMMAND", reply
    # Without the CLOCK it would have been refused: a second chart that never heard of the change shows it.
    other = Chart(r.cfg.bridge.endpoint, identity=b"no-clock")
    other.hello(server_utc_offset_s=3 * 3600, chart_id=2)
    assert other.tick(0, 1.0851, time_msc=server_ms - 3_600_000 + 2000)["code"] == "TIME_BACKWARDS"
