"""Alerts reach the trader: a real bridge over real sockets sends every event through Apprise to a real JSON webhook
on loopback, once each, in order, with the right numbers; a dead webhook is retried, counted and shown in status,
and trading goes on."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytest.importorskip("apprise", reason="alerts need Apprise: pip install \"mt5bridge[alerts]\"")

from desk import always  # noqa: E402
from mt5bridge.bridge import protocol as wire  # noqa: E402
from mt5bridge.bridge.journal import JournalError  # noqa: E402
from test_bridge import SERVER_OFFSET_MS, Chart, Running, bridge_config, control_request  # noqa: E402

T0 = 1_783_400_000_000   # 2026-07-07 04:53:20 UTC; Prague midnight is 22:00 UTC that day
PRAGUE_MIDNIGHT = 1_783_461_600_000


class Webhook:
    """A JSON webhook on 127.0.0.1 that keeps what Apprise posts to it."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def titles(self) -> list[str]:
        return [m["title"] for m in self.received]

    def wait_for(self, n: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < n and time.monotonic() < deadline:
            time.sleep(0.02)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook():
    hook = Webhook()
    yield hook
    hook.close()


def _dead_url() -> str:
    with socket.socket() as s:   # a port nobody listens on: every post is refused at once
        s.bind(("127.0.0.1", 0))
        return f"json://127.0.0.1:{s.getsockname()[1]}/"


def _signal_config(tmp_path, **alerts):
    entry = {"min_score": 0, "require_warm": False, "require_h1_ema200_alignment": False, "sessions": [],
             "cooldown_minutes": 0, "allowed_consensus": ["UNANIMOUS", "STRONG", "WEAK", "SPLIT"]}
    return bridge_config(tmp_path, entry=entry, dca={"enabled": False}, scale_in={"enabled": False},
                         bridge={"stale_after_ms": 1500},
                         alerts=dict({"retry_after_s": 0.05, "max_retry_after_s": 0.2}, **alerts))


def test_every_event_arrives_once_in_order_with_its_numbers(webhook, tmp_path):
    from mt5bridge.market.synthetic import generate_ticks

    cfg = _signal_config(tmp_path, urls=[webhook.url])
    r = Running(cfg, model=always("BUY", tmp_path))
    try:
        chart = Chart(cfg.bridge.endpoint)
        ticks = generate_ticks("EURUSD", days=1, seed=3, start="2026-07-06T00:00:00Z")
        chart.hello()
        chart.warmup(ticks)
        t = T0
        cmd = chart.tick(t, 1.1)
        assert cmd["action"] == "OPEN"
        # The server refuses it first (a definite refusal, retried by the engine later) ...
        chart.send({"type": "RESULT", "seq": chart.next_seq(), "command_id": cmd["command_id"], "outcome": "REFUSED",
                    "retcode": 10006, "ticket": 0, "price": 0.0, "volume": 0.0, "text": "rejected",
                    "time_msc": t + 500 + SERVER_OFFSET_MS})
        t += 1000
        cmd = chart.tick(t, 1.1)
        assert cmd["action"] == "OPEN"
        chart.send({"type": "RESULT", "seq": chart.next_seq(), "command_id": cmd["command_id"], "outcome": "DONE",
                    "retcode": 10009, "ticket": 555, "price": 1.10007, "volume": cmd["volume"], "text": "done",
                    "time_msc": t + 500 + SERVER_OFFSET_MS})
        pos = dict(wire.Position.example, ticket=555, symbol="EURUSD", side="BUY", volume=cmd["volume"],
                   open_price=1.10007, sl=cmd["sl"], tp=cmd["tp"], profit=0.0, swap=0.0, commission=0.0,
                   magic=20261121, comment=f"mt5b:{cmd['command_id']}")
        t += 1000
        chart.tick(t, 1.1, positions=[pos])
        deal = dict(wire.Deal.example, position_id=555, side="BUY", volume=cmd["volume"], magic=20261121,
                    commission=0.0)
        chart.send(dict(deal, seq=chart.next_seq(), deal=1, entry="IN", price=1.10007, profit=0.0,
                        time_msc=t + SERVER_OFFSET_MS, comment=f"mt5b:{cmd['command_id']}"))
        chart.send(dict(deal, seq=chart.next_seq(), deal=2, entry="OUT", side="SELL", reason="SL", price=1.09990,
                        profit=-50.0, time_msc=t + 500 + SERVER_OFFSET_MS, comment="[sl 1.09990]"))
        t += 1000
        chart.tick(t, 1.1, positions=[], balance=101_200.5, equity=101_200.5)   # closed at its stop: 50.00 lost
        control_request(cfg.bridge.control_endpoint, {"cmd": "halt", "flatten": False, "by": "desk"})
        t += 1000
        chart.tick(t, 1.1, balance=101_200.5, equity=101_200.5)
        control_request(cfg.bridge.control_endpoint, {"cmd": "resume", "by": "desk"})
        # Equity falls: 52 % of the daily limit used, then 73 % (REDUCING at 70 %); repeated ticks say nothing new.
        for k, equity in enumerate((98_650.5, 98_650.0, 97_600.5, 97_600.0)):
            t += 1000
            chart.tick(t, 1.1, balance=101_200.5, equity=equity)
            time.sleep(0.55)   # housekeeping looks at the headroom every 0.5 s
        chart.send({"type": "FAILSAFE", "seq": chart.next_seq(), "kind": "EQUITY_GUARD",
                    "time_msc": t + SERVER_OFFSET_MS, "detail": "equity below floor: closed 2 positions"})
        time.sleep(2.2)   # silent past stale_after_ms (1.5 s)
        t += 1000
        chart.tick(t, 1.1, balance=101_200.5, equity=97_600.0)
        time.sleep(0.6)
        # The journal fails on the next command it must write, and comes back at the next housekeeping.
        real = r.bridge.journal.record_transition
        failed = []

        def full_disk(*args, **kwargs):
            if failed:
                return real(*args, **kwargs)
            failed.append(1)
            raise JournalError("journal: cannot write: database or disk is full")

        r.bridge.journal.record_transition = full_disk
        t += 1000
        chart.tick(t, 1.1, balance=101_200.5, equity=101_000.0)   # back to ACTIVE: a transition to write
        time.sleep(0.7)
        # Prague midnight: the day's summary.
        chart.tick(PRAGUE_MIDNIGHT + 1000, 1.1, balance=101_200.5, equity=101_000.0)
        time.sleep(0.55)
        # A new Prague day: its own warnings, from its own floor (101,200.50 − 5,000.00).
        chart.tick(PRAGUE_MIDNIGHT + 2000, 1.1, balance=101_200.5, equity=98_600.0)
        time.sleep(0.55)
    finally:
        r.stop()
    webhook.wait_for(21)
    titles = webhook.titles()
    expected = [
        "bridge started",
        "1510234567 EURUSD: order refused",
        "1510234567 EURUSD: filled",
        "1510234567 EURUSD: position closed",
        "operator halt",
        "1510234567: REDUCING",
        "operator resume",
        "1510234567: ACTIVE",
        "1510234567: daily loss limit 50 % used",
        "1510234567: REDUCING",
        "1510234567: daily loss limit 70 % used",
        "1510234567 EURUSD: EA failsafe EQUITY_GUARD",
        "1510234567 EURUSD: EA silent",
        "1510234567 EURUSD: EA back",
        "journal unavailable: no new risk",
        "1510234567: REDUCING",   # the desk's own daily drawdown guard, written once the journal is back
        "journal writes again",
        "1510234567: ACTIVE",     # a new Prague day
        "1510234567: day closed",
        "1510234567: daily loss limit 50 % used",   # again: a new Prague day
        "bridge stopped",
    ]
    assert titles == expected, '\n'.join(f"{m['title']}: {m['message']}" for m in webhook.received)
    bodies = {m["title"]: m["message"] for m in webhook.received}
    assert "10006 rejected" in bodies["1510234567 EURUSD: order refused"]
    assert f"command {cmd['command_id']} BUY filled: {cmd['volume']:.2f} lots at 1.10007, ticket 555 (10009 done)" in \
        bodies["1510234567 EURUSD: filled"]
    assert "position 555 BUY" in bodies["1510234567 EURUSD: position closed"]
    assert "closed: stop loss; result -50.00" in bodies["1510234567 EURUSD: position closed"]
    assert "halted by desk" in bodies["operator halt"]
    # Used: the equity fallen from the day's start (101,250.50) as a share of the daily limit (5,000.00).
    first, again = [m["message"] for m in webhook.received if m["title"] == "1510234567: daily loss limit 50 % used"]
    assert "daily loss limit 52 % used: 2,400.00 may still be lost" in first
    assert "daily loss limit 52 % used: 2,399.50 may still be lost before the floor; equity 98,600.00" in again
    assert "daily loss limit 73 % used: 1,350.00 may still be lost" in bodies["1510234567: daily loss limit 70 % used"]
    assert "equity below floor: closed 2 positions" in bodies["1510234567 EURUSD: EA failsafe EQUITY_GUARD"]
    assert "database or disk is full" in bodies["journal unavailable: no new risk"]
    summary = bodies["1510234567: day closed"]
    assert "Prague day 2026-07-07 closed: -50.00; balance 101,200.50" in summary and "trading days 1 of 4" in summary
    assert {m["type"] for m in webhook.received} <= {"info", "warning", "failure", "success"}


def test_a_dead_channel_is_retried_counted_and_shown_and_trading_goes_on(webhook, tmp_path):
    cfg = _signal_config(tmp_path, urls=[_dead_url(), webhook.url], retries=2)
    r = Running(cfg)
    try:
        chart = Chart(cfg.bridge.endpoint)
        chart.hello()
        for k in range(20):
            assert chart.tick(T0 + 1000 * k, 1.0851)["type"] == "COMMAND"
        control_request(cfg.bridge.control_endpoint, {"cmd": "halt", "flatten": False, "by": "desk"})
        webhook.wait_for(2)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            alerts = control_request(cfg.bridge.control_endpoint, {"cmd": "status"})["alerts"]
            if alerts["dropped"] >= 2:
                break
            time.sleep(0.05)
        # The good channel got both alerts at once; the dead one tried each 1 + 2 times, then gave up on it.
        assert webhook.titles() == ["bridge started", "operator halt"]
        assert alerts["failed"] == 6 and alerts["dropped"] == 2 and alerts["sent"] == 2
        assert alerts["last_error"].startswith("json channel 1:")
        assert [c["failing"] for c in alerts["channels"]] == [True, False]
        from mt5bridge.bridge.readout import alerts_line

        assert "2 sent, 6 failed attempts, 0 waiting, 2 dropped" in alerts_line(alerts)
        assert chart.tick(T0 + 30_000, 1.0851)["type"] == "COMMAND"
    finally:
        r.stop()


def test_each_kind_is_on_silent_or_off(webhook, tmp_path):
    cfg = _signal_config(tmp_path, urls=[webhook.url], operator="silent", bridge="off")
    r = Running(cfg)
    try:
        control_request(cfg.bridge.control_endpoint, {"cmd": "halt", "flatten": True, "by": "desk"})
        recent = control_request(cfg.bridge.control_endpoint, {"cmd": "status"})["alerts"]["recent"]
    finally:
        r.stop()
    time.sleep(0.3)
    assert webhook.received == []                         # silent: not sent; off: not even shown
    assert [(e["title"], e["sent"]) for e in recent] == [("operator halt", False)]
    assert "flatten" in recent[0]["body"]


def test_a_url_apprise_cannot_use_stops_the_start_with_its_name(tmp_path):
    from mt5bridge.bridge.server import Bridge, BridgeError

    with pytest.raises(BridgeError, match="alerts.urls: nosuchservice channel 1 is not an Apprise URL"):
        Bridge(bridge_config(tmp_path, alerts={"urls": ["nosuchservice://x"]}))


def test_a_restart_after_a_crash_is_told_apart_from_a_start(webhook, tmp_path):
    import os
    import signal

    from test_bridge import _bridge_process, _process_config

    config, ea, control = _process_config(tmp_path)
    config.write_text(config.read_text() + f'\n[alerts]\nurls = ["{webhook.url}"]\n', encoding="utf-8")
    with _bridge_process(config, control) as proc:
        webhook.wait_for(1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    with _bridge_process(config, control) as proc:
        webhook.wait_for(2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    with _bridge_process(config, control) as proc:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    webhook.wait_for(5)
    assert webhook.titles() == ["bridge started", "bridge restarted after a crash", "bridge stopped",
                                "bridge started", "bridge stopped"]


def test_serve_refuses_an_unusable_alert_url_with_exit_2_before_serving(tmp_path, capsys):
    from mt5bridge.cli.entry import main
    from test_bridge import _process_config

    config, _, _ = _process_config(tmp_path)
    config.write_text(config.read_text() + '\n[alerts]\nurls = ["json://127.0.0.1:9/", "telegrm://typo"]\n',
                      encoding="utf-8")
    assert main(["serve", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "alerts.urls: telegrm channel 2 is not an Apprise URL" in err and "Traceback" not in err


def test_the_circuit_breaker_is_told_once_with_the_end_of_its_pause(webhook, tmp_path):
    from mt5bridge.bridge import readout

    cfg = bridge_config(tmp_path, guards={"circuit_breaker_pct": 1.0}, alerts={"urls": [webhook.url]})
    r = Running(cfg)
    try:
        chart = Chart(cfg.bridge.endpoint)
        chart.hello()
        chart.tick(T0, 1.0851, equity=101_250.5)
        for k in range(3):   # 1.04 % below the day's peak: tripped once, not on every tick after
            chart.tick(T0 + 1000 * (k + 1), 1.0851, equity=100_200.0)
            time.sleep(0.55)
    finally:
        r.stop()
    webhook.wait_for(4)
    breaker = [m["message"] for m in webhook.received if m["title"] == "1510234567: circuit breaker"]
    assert len(breaker) == 1, webhook.titles()
    assert breaker[0] == ("circuit breaker tripped: equity 100,200.00, 1 % or more below the day's peak; entries "
                          f"paused until {readout.clock_words(T0 + 1000 + 4 * 3_600_000)}, every position closed")


def test_a_flood_of_one_failsafe_reaches_the_trader_once(webhook, tmp_path):
    """An EA repeating the same FAILSAFE (a reconnect loop) must not flood the phone: one alert, the rest counted."""
    r = Running(_signal_config(tmp_path, urls=[webhook.url]))
    try:
        chart = Chart(r.cfg.bridge.endpoint)
        hello = dict(wire.Hello.example, seq=0, server_utc_offset_s=SERVER_OFFSET_MS // 1000)
        assert chart.ask(hello)["type"] == "WELCOME"
        for seq in range(1, 41):
            chart.send(dict(wire.Failsafe.example, seq=seq))   # a FAILSAFE gets no answer
        deadline = time.monotonic() + 10
        status = None
        while time.monotonic() < deadline and (status is None or status["alerts"]["repeated"] < 39):
            time.sleep(0.05)
            status = control_request(r.cfg.bridge.control_endpoint, {"cmd": "status"})
    finally:
        r.stop()
    failsafes = [t for t in webhook.titles() if "EA failsafe" in t]
    assert len(failsafes) == 1, webhook.titles()
    assert status["alerts"]["repeated"] == 39


def test_an_alert_that_comes_back_after_its_opposite_is_sent_again():
    """EA silent, EA back, EA silent again within REPEAT_S: the second "silent" is sent, or the trader's last word
    would be "back" while the EA is silent; the very same alert with nothing between is still held back."""
    from types import SimpleNamespace

    from mt5bridge.bridge.alerts import Alerts

    settings = SimpleNamespace(urls=[], ea_silence="silent", journal="silent", operator="silent")
    alerts = Alerts(settings)
    silent = ("ea_silent", "1 EURUSD: EA silent", "the EA on EURUSD has been silent for 6 s")
    back = ("ea_back", "1 EURUSD: EA back", "the EA on EURUSD is heard again")
    for event in (silent, back, silent, back, silent, silent):
        alerts.emit(*event)
    assert [e.kind for e in alerts.recent] == ["ea_silent", "ea_back", "ea_silent", "ea_back", "ea_silent"]
    assert alerts.counts["repeated"] == 1
    for event in (("journal_unavailable", "journal unavailable", "disk full"), ("journal_back", "back", "ok"),
                  ("journal_unavailable", "journal unavailable", "disk full")):
        alerts.emit(*event)
    assert [e.kind for e in alerts.recent][-3:] == ["journal_unavailable", "journal_back", "journal_unavailable"]


def test_the_repeats_kept_stay_bounded_in_a_flood_of_different_alerts():
    """More different alerts within REPEAT_S than MAX_REPEATS_KEPT: the oldest are forgotten, the newest still held."""
    from types import SimpleNamespace

    from mt5bridge.bridge.alerts import MAX_REPEATS_KEPT, Alerts

    alerts = Alerts(SimpleNamespace(urls=[], failsafe="silent"))
    for n in range(MAX_REPEATS_KEPT + 500):
        alerts.emit("failsafe", f"chart {n}", "the EA acted on its own")
    assert len(alerts._repeats) == MAX_REPEATS_KEPT
    alerts.emit("failsafe", f"chart {MAX_REPEATS_KEPT + 499}", "the EA acted on its own")
    assert alerts.counts["repeated"] == 1
    alerts.emit("failsafe", "chart 0", "the EA acted on its own")   # forgotten: sent again
    assert alerts.counts["repeated"] == 1 and len(alerts._repeats) == MAX_REPEATS_KEPT
