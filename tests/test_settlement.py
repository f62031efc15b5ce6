"""The book is the broker's truth: commands are settled, and closed trades recorded, from the broker's deals
(matched by the `mt5b:<id>` comment and the position id), not from the next TICK's picture of the account.
Each test is a way the picture and the broker part: a position stopped out between two ticks, partial closes
at other prices, a stop filled through its price, a fill whose RESULT never comes."""

from __future__ import annotations

import sqlite3

from desk import always
from mt5bridge.bridge import protocol as wire
from test_bridge import SERVER_OFFSET_MS, Chart, control_request, running, signal_config  # noqa: F401
from test_faults import _result, _warm


def _deal(chart: Chart, t: int, *, deal: int, position: int, entry: str, reason: str, volume: float, price: float,
          profit: float = 0.0, swap: float = 0.0, commission: float = 0.0, comment: str = "", side: str = "BUY"):
    chart.send(dict(wire.Deal.example, seq=chart.next_seq(), deal=deal, order=deal, position_id=position,
                    symbol="EURUSD", side=side, entry=entry, reason=reason, volume=volume, price=price,
                    profit=profit, swap=swap, commission=commission, magic=20261121,
                    time_msc=t + SERVER_OFFSET_MS, comment=comment))


def _account(r) -> dict:
    [acct] = control_request(r.cfg.bridge.control_endpoint, {"cmd": "status"})["accounts"].values()
    return acct


def _trades(r) -> list[dict]:
    with sqlite3.connect(r.cfg.bridge.journal) as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute("select * from closed_trades order by ticket")]


def _entered(running, tmp_path):
    """A bridge whose engine opens at the first live tick: (bridge, chart, tick time, price, the OPEN)."""
    r = running(signal_config(tmp_path, bridge={"command_timeout_ms": 60_000}), model=always("BUY", tmp_path))
    chart = Chart(r.cfg.bridge.endpoint)
    t, price = _warm(chart)
    cmd = chart.tick(t, price)
    assert cmd["action"] == "OPEN"
    return r, chart, t, price, cmd


def test_a_position_stopped_out_between_two_ticks_is_settled_from_its_deals(running, tmp_path):
    r, chart, t, price, cmd = _entered(running, tmp_path)
    comment = f"mt5b:{cmd['command_id']}"
    chart.send(_result(chart, cmd, 5001, t + 100))
    # Filled, then stopped out, all before the next tick: the book never shows the position.
    _deal(chart, t + 100, deal=1, position=5001, entry="IN", reason="EXPERT", volume=cmd["volume"], price=price,
          commission=-3.5, comment=comment)
    _deal(chart, t + 900, deal=2, position=5001, entry="OUT", reason="SL", volume=cmd["volume"], price=cmd["sl"],
          profit=-98.0, commission=-3.5)
    chart.tick(t + 1000, price)
    acct = _account(r)
    # The command does not stay in flight: its stop no longer counts against the headroom of a flat account.
    assert cmd["command_id"] not in [c["command_id"] for c in acct["in_flight"]]
    [trade] = _trades(r)
    assert trade["ticket"] == 5001 and trade["settled"] == 1 and trade["close_reason"] == "STOP_LOSS"
    assert trade["profit"] == -105.0 and trade["commission"] == -7.0 and trade["close_price"] == cmd["sl"]
    assert trade["mae_r"] <= -0.99   # the exit fill is in the excursion


def test_partial_closes_are_one_trade_with_the_realized_money_and_the_volume_traded(running, tmp_path):
    r = running(signal_config(tmp_path), model=always("BUY", tmp_path))
    chart = Chart(r.cfg.bridge.endpoint)
    t, price = _warm(chart)
    manual = dict(wire.Position.example, ticket=7001, volume=2.5, open_price=1.08, sl=1.07, tp=1.10, magic=0,
                  comment="", profit=0.0, swap=0.0, commission=0.0)
    chart.tick(t, price, positions=[manual])
    _deal(chart, t + 10, deal=11, position=7001, entry="IN", reason="CLIENT", volume=2.5, price=1.08,
          commission=-12.5)
    chart.tick(t + 1000, price, positions=[dict(manual, volume=1.25, profit=238.13)])
    _deal(chart, t + 1100, deal=12, position=7001, entry="OUT", reason="CLIENT", volume=1.25, price=1.0820,
          profit=250.0, commission=-6.25)
    _deal(chart, t + 1900, deal=13, position=7001, entry="OUT", reason="TP", volume=1.25, price=1.0826,
          profit=340.01, commission=-6.25)
    chart.tick(t + 2000, price, positions=[])
    [trade] = _trades(r)
    # +565.01 over two partial closes, the full 2.5 lots: not the 1.25 lots and +238.13 the book last saw.
    assert trade["volume"] == 2.5 and round(trade["profit"], 2) == 565.01
    assert trade["close_reason"] == "TAKE_PROFIT" and trade["floating_profit"] == 238.13
    assert round(trade["gross_profit"], 2) == 590.01 and trade["commission"] == -25.0


def test_a_fill_whose_result_never_comes_is_settled_by_its_deal(running, tmp_path):
    r, chart, t, price, cmd = _entered(running, tmp_path)
    # The EA lost its connection: the RESULT says the outcome is unknown, and the deal says it was filled.
    chart.send(dict(_result(chart, cmd, 0, t + 50), outcome="UNKNOWN", retcode=10031, volume=0.0, price=0.0))
    _deal(chart, t + 80, deal=21, position=6001, entry="IN", reason="EXPERT", volume=cmd["volume"], price=price,
          comment=f"mt5b:{cmd['command_id']}")
    position = dict(wire.Position.example, ticket=6001, volume=cmd["volume"], open_price=price, sl=cmd["sl"],
                    tp=cmd["tp"], magic=20261121, comment=f"mt5b:{cmd['command_id']}")
    reply = chart.tick(t + 1000, price, positions=[position])
    assert reply["command_id"] != cmd["command_id"]   # never the same command again
    with sqlite3.connect(r.cfg.bridge.journal) as db:
        row = db.execute("select result_outcome, expired_outcome from commands where command_id = ?",
                         (cmd["command_id"],)).fetchone()
    assert row == ("UNKNOWN", "filled_seen")
    acct = _account(r)
    assert cmd["command_id"] not in [c["command_id"] for c in acct["in_flight"]]
    assert [p["ticket"] for p in acct["positions"]] == [6001]


def test_live_and_replay_settle_the_same_fills_into_the_same_closed_trades(tmp_path):
    from dataclasses import asdict

    from desk import config_for_signals
    from mt5bridge.bridge.journal import Journal
    from mt5bridge.workbench.replay import Replay, synthetic_markets

    result = Replay(config_for_signals(), synthetic_markets(["EURUSD", "XAUUSD"], days=20, seed=11),
                    model=always("BUY", tmp_path)).run()
    closed = [t for t in result.trades if t["settled"]]
    assert len(closed) >= 3 and len(closed) == len(result.trades)
    reasons = {c["command_id"]: c["reason_code"] for c in result.commands}
    account = "1510234567"
    # The same fills through the live journal: its commands, the broker's deals, the engine's trades.
    with Journal(tmp_path / "journal.sqlite") as journal:
        for c in result.commands:
            journal.record_command(
                command_id=c["command_id"], account=account, chart="EURUSD", symbol=c["symbol"], seq=1,
                time_ms=c["time_ms"], action=c["action"], side=c["side"], volume=c["volume"], price=c["price"],
                sl=c["sl"], tp=c["tp"], ticket=c["ticket"], reason_code=reasons[c["command_id"]], reason="r",
                payload=b"{}")
        for deal in result.deals:
            journal.record_deal(account, asdict(deal))
        for trade in result.trades:
            journal.record_closed_trade(account, dict(trade, features_at_entry=None, features_at_exit=None))
            assert journal.settle_trade(account, trade["ticket"])["trade"]
        live = {t["ticket"]: t for t in journal.closed_trades(account)}
    for replayed in result.trades:
        journaled = live[replayed["ticket"]]
        for key in ("profit", "gross_profit", "swap", "commission", "volume", "close_price", "close_reason",
                    "r_multiple", "mfe_r", "mae_r"):
            assert journaled[key] == replayed[key], (replayed["ticket"], key)
    assert {t["close_reason"] for t in result.trades} <= {"STOP_LOSS", "TAKE_PROFIT", "TRAILING_STOP", "BREAKEVEN",
                                                          "TIME_EXIT", "EXIT_SCORE", "PARTIAL_TP", "FLATTEN"}
