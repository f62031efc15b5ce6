"""The operator's cockpit: `status` (bridge up and bridge down) and the live view speak in words with numbers,
and every JSON the status writes is strict. A real bridge over real sockets, a real journal, the real CLI."""

from __future__ import annotations

import json
import math
import signal
from datetime import datetime, timezone

import pytest

from desk import always
from mt5bridge.bridge import protocol as wire
from mt5bridge.bridge import readout
from mt5bridge.cli.entry import main
from test_bridge import (Chart, _bridge_process, _process_config, bridge_config, control_request,
                         running)  # noqa: F401  (running is a fixture)

T0 = 1_783_400_000_000   # 2026-07-07 04:53:20 UTC, 06:53:20 in Prague (summer time)


def _refuse_constant(name: str):
    raise ValueError(f"not strict JSON: {name}")


def strict_loads(text: str):
    """What a strict parser does: NaN, Infinity and -Infinity are errors."""
    return json.loads(text, parse_constant=_refuse_constant)


def open_entries(tmp_path, **entry):
    """A bridge config whose entry filters pass any clear signal, but for the ``entry`` keys given."""
    base = {"min_score": 0, "require_warm": False, "require_h1_ema200_alignment": False, "sessions": [],
            "cooldown_minutes": 0, "allowed_consensus": ["UNANIMOUS", "STRONG", "WEAK", "SPLIT"]}
    return bridge_config(tmp_path, entry=dict(base, **entry), dca={"enabled": False},
                         scale_in={"enabled": False, "min_score": 100.0})


def _status(r) -> dict:
    return control_request(r.cfg.bridge.control_endpoint, {"cmd": "status"})


def _account(status: dict) -> dict:
    [info] = status["accounts"].values()
    return info


def test_the_prague_reset_is_midnight_in_prague_in_summer_and_winter():
    summer = int(datetime(2026, 7, 7, 4, 53, 20, tzinfo=timezone.utc).timestamp() * 1000)
    assert readout.next_reset_ms(summer) == int(datetime(2026, 7, 7, 22, 0, tzinfo=timezone.utc).timestamp() * 1000)
    winter = int(datetime(2026, 1, 7, 23, 30, tzinfo=timezone.utc).timestamp() * 1000)   # 00:30 Prague, Jan 8
    assert readout.next_reset_ms(winter) == int(datetime(2026, 1, 8, 23, 0, tzinfo=timezone.utc).timestamp() * 1000)
    assert readout.retcode_words(10009) == "10009 done" and readout.retcode_words(10006) == "10006 rejected"
    assert readout.retcode_words(10031).startswith("10031 no connection")
    assert readout.retcode_words(99999) == "99999 unknown return code"


def test_status_says_floors_permitted_loss_reset_objectives_and_risk_to_stop_in_words_and_numbers(running, tmp_path):
    r = running()
    chart = Chart(r.cfg.bridge.endpoint)
    chart.hello()
    pos = dict(wire.Position.example, ticket=77, symbol="EURUSD", magic=0, sl=1.08, profit=10.0)
    chart.tick(T0, 1.0851, positions=[pos])
    info = _account(_status(r))
    a, f = info["account"], info["ftmo"]
    assert f["permitted_loss_today"] == pytest.approx(a["equity"] - a["daily_floor"])
    assert f["max_permitted_loss"] == pytest.approx(a["equity"] - a["overall_floor"])
    assert (f["daily_loss_limit"], f["max_loss_limit"], f["profit_target"]) == (5_000.0, 10_000.0, 10_000.0)
    assert f["now_ms"] == T0 and f["reset_in_s"] == pytest.approx((T0 // 1000 // 86400 * 86400 + 22 * 3600) - T0 / 1000)
    assert (f["trading_days"], f["min_trading_days"]) == (a["trading_days"], 4)
    [p] = info["positions"]
    # The stop takes the position from its floating P/L (10 - 6.9 - 5) down to (1.08 - 1.08405) per unit.
    expected = (10.0 - 6.9 - 5.0) - (1.08 - 1.08405) * 100_000 * 1.0
    assert p["risk_to_stop"] == pytest.approx(expected) and p["risk_share"] == pytest.approx(
        expected / f["permitted_loss_today"])
    [c] = info["charts"]
    assert c["market_time_ms"] == T0 and c["why"] == "the symbol's features are not warm yet"
    text = "\n".join(readout.status_lines(_status(r)))
    assert f"today's permitted loss  {f['permitted_loss_today']:,.2f} of 5,000.00" in text
    assert "resets at Prague midnight in 17 h 06 min" in text
    assert f"maximum permitted loss  {f['max_permitted_loss']:,.2f} of 10,000.00" in text
    assert "safety buffer of 500.00" in text
    assert "trading days 1 of 4" in text and "of the target 10,000.00" in text
    assert f"risk to stop {expected:,.2f}" in text and "entry 1.08405, SL 1.08, TP 1.08905" in text
    assert "market time 04:53:20 UTC (06:53 Prague)" in text
    assert "state                   trading" in text and "state 0" not in text and "NOT_WARM" not in text


def test_a_refusal_is_shown_with_its_value_and_threshold(running, tmp_path):
    # Every entry filter passes but the score: the engine refuses with SCORE_LOW, and status says by how much.
    cfg = open_entries(tmp_path, min_score=99.0)
    r = running(cfg, model=always("BUY", tmp_path))
    chart = Chart(r.cfg.bridge.endpoint)
    from test_bridge import _open_a_position

    _, reply = _open_a_position(r, chart, tmp_path)
    assert reply["reason_code"] == "SCORE_LOW"
    [c] = _account(_status(r))["charts"]
    score = r.bridge.node.accounts["1510234567"].engine.feature_engine(0).score
    assert c["values"]["score"] == pytest.approx(score) and score < 99
    assert c["why"] == f"score {score:.0f} < 99" and score < 98.5
    # Now the spread: 1 point allowed, the tick's is 3.
    (tmp_path / "b").mkdir()
    cfg2 = open_entries(tmp_path / "b", max_spread_points=1.0)
    r2 = running(cfg2, model=always("BUY", tmp_path))
    chart2 = Chart(r2.cfg.bridge.endpoint)
    t, reply = _open_a_position(r2, chart2, tmp_path)
    reply = chart2.tick(t + 1000, 1.10000, 1.10003)
    assert reply["reason_code"] == "SPREAD_WIDE"
    [c] = _account(_status(r2))["charts"]
    assert c["values"]["spread_points"] == pytest.approx(3.0, abs=1e-6)
    assert c["why"] == "spread 3 > 1 points"


def test_a_halt_is_a_sentence_and_a_chart_that_said_bye_is_closed(running):
    r = running()
    chart = Chart(r.cfg.bridge.endpoint)
    chart.hello()
    chart.tick(T0, 1.0851)
    control_request(r.cfg.bridge.control_endpoint, {"cmd": "halt", "flatten": True, "by": "desk"})
    chart.send({"type": "BYE", "seq": chart.next_seq(), "reason": "EA removed"})
    status = _status(r)
    text = "\n".join(readout.status_lines(status))
    when = datetime.fromtimestamp(status["halt"]["time_ms"] / 1000, tz=timezone.utc)
    assert f"operator: halted by desk at {when:%H:%M:%S} UTC" in text and "flatten: every position closed" in text
    assert "'halted': True" not in text and "{" not in text
    assert "chart EURUSD   closed by its EA (BYE)" in text


def test_status_json_is_strict_json_with_null_for_an_unbounded_headroom(running, tmp_path, capsys):
    cfg = bridge_config(tmp_path)
    r = running(cfg)
    chart = Chart(r.cfg.bridge.endpoint)
    chart.hello()
    # A position on a symbol with no chart: its stop's worth is unknown, so the worst case is unbounded.
    unknown = dict(wire.Position.example, ticket=88, symbol="GBPUSD", magic=0, sl=1.25, open_price=1.26)
    chart.tick(T0, 1.0851, positions=[unknown])
    raw = r.bridge.node.accounts["1510234567"].engine.account
    assert math.isinf(raw["worst_case_loss"]) and math.isinf(raw["headroom"])   # what json.dumps writes as Infinity
    config = tmp_path / "bridge.toml"
    config.write_text(f'[bridge]\njournal = "{cfg.bridge.journal}"\ncontrol_endpoint = '
                      f'"{cfg.bridge.control_endpoint}"\n', encoding="utf-8")
    capsys.readouterr()
    assert main(["status", "--config", str(config), "--json"]) == 0
    out = capsys.readouterr().out
    assert "Infinity" not in out and "NaN" not in out
    shown = strict_loads(out)
    a = _account(shown)["account"]
    assert shown["source"] == "bridge" and a["worst_case_loss"] is None and a["headroom"] is None
    # The control socket's own answer is strict too, whoever reads it.
    import zmq

    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 3000)
    sock.connect(cfg.bridge.control_endpoint)
    sock.send(json.dumps({"cmd": "status", "token": r.bridge.token}).encode())
    strict_loads(sock.recv().decode())
    sock.close()


def test_status_with_the_bridge_down_shows_the_same_floors_and_headroom_from_the_journal(tmp_path, capsys):
    config, ea, control = _process_config(tmp_path)
    with _bridge_process(config, control) as proc:
        chart = Chart(ea)
        chart.hello()
        chart.tick(T0, 1.0851)
        chart.tick(T0 + 1000, 1.0851, balance=100_600.0, equity=100_550.0)
        live = _account(control_request(control, {"cmd": "status"}))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    capsys.readouterr()
    assert main(["status", "--config", str(config), "--json"]) == 0
    down = strict_loads(capsys.readouterr().out)
    assert down["source"].startswith("journal")
    info = _account(down)
    for key in ("daily_floor", "overall_floor", "equity", "safety_buffer", "trading_days"):
        assert info["account"][key] == pytest.approx(live["account"][key]), key
    # With no position open, the headroom needs no stop's worth: the same as the running bridge said.
    assert info["account"]["headroom"] == pytest.approx(live["account"]["headroom"])
    assert info["ftmo"]["permitted_loss_today"] == pytest.approx(live["ftmo"]["permitted_loss_today"])
    assert info["ftmo"]["reset_in_s"] == live["ftmo"]["reset_in_s"]   # the clock of its last tick, not the wall
    assert main(["status", "--config", str(config)]) == 0
    text = capsys.readouterr().out
    assert "from the journal (the bridge is not answering)" in text
    assert f"today's permitted loss  {live['ftmo']['permitted_loss_today']:,.2f} of 5,000.00" in text
    assert f"daily floor {live['account']['daily_floor']:,.2f}" in text
    assert f"headroom                {live['account']['headroom']:,.2f}" in text
    assert "resets at Prague midnight in" in text


def test_the_live_view_shows_words_not_codes(running):
    from rich.console import Console

    from mt5bridge.cli.live_view import plain_line, render

    r = running()
    chart = Chart(r.cfg.bridge.endpoint)
    chart.hello()
    chart.tick(T0, 1.0851)
    control_request(r.cfg.bridge.control_endpoint, {"cmd": "halt", "flatten": False, "by": "desk"})
    chart.tick(T0 + 1000, 1.0851)
    status = _status(r)
    console = Console(width=200, record=True)
    console.print(render(status))
    text = console.export_text()
    assert "OPERATOR HALT: halted by desk at" in text and "no new risk (positions kept)" in text
    assert "reducing: exits only, nothing new opens (halted by the operator)" in text
    assert "today's permitted loss" in text and "resets in 17 h 06 min" in text
    assert "04:53:21 UTC" in text and "OPERATOR_HALT" not in text
    assert "today's permitted loss" in plain_line(status)


def test_holds_of_today_are_counted_by_reason_and_yesterdays_are_not(running):
    import time

    r = running()
    chart = Chart(r.cfg.bridge.endpoint)
    chart.hello()
    for k in range(3):
        chart.tick(T0 + 1000 * k, 1.0851)            # 2026-07-07 (UTC)
    for k in range(2):
        chart.tick(T0 + 86_400_000 + 1000 * k, 1.0851)   # 2026-07-08
    time.sleep(0.7)   # housekeeping hands the counts to the journal every 0.5 s
    status = _status(r)
    info = _account(status)
    assert info["refusals_today"] == {"NOT_WARM": 2}
    assert "held today: the symbol's features are not warm yet 2" in "\n".join(readout.status_lines(status))


def test_a_refusal_claims_no_comparison_its_numbers_do_not_show():
    assert readout.refusal_words("SCORE_LOW", {"score": 48.2, "min_score": 55}) == "score 48 < 55"
    assert readout.refusal_words("SCORE_LOW", {"score": 54.6, "min_score": 55}) == "score 54.6 < 55"
    # A threshold the engine moved (here: one the status does not know) is not claimed; the value is still given.
    assert readout.refusal_words("SCORE_LOW", {"score": 60.0, "min_score": 55}) == \
        "score 60: market score below entry.min_score"
    assert readout.refusal_words("CONFIDENCE_LOW", {"confidence": 0.7, "min_confidence": 0.8}) == \
        "confidence 0.70 < 0.80"
    assert readout.refusal_words("SPREAD_WIDE", {"spread_points": 31.0, "max_spread_points": 30}) == \
        "spread 31 > 30 points"
    assert readout.refusal_words("COOLDOWN", {}) == "within entry.cooldown_minutes of the last close on this symbol"
