"""The bridge under faults and attack, each test written as the fault or the attack it defends against: a full
disk under the journal, a journal folder deleted while it runs, kill -9 between the operator's halt and resume,
two accounts trading at once, a chart settling another account's command, a tick after BYE, a clock a day
ahead, and a crowd of charts and logins that must not grow the process without bound."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from conftest import package_process
from desk import always
from mt5bridge.bridge import protocol as wire
from mt5bridge.market.synthetic import generate_ticks
from test_bridge import (SERVER_OFFSET_MS, Chart, _bridge_process, bridge_config, control_request, free_port,  # noqa: F401
                         running, signal_config)

SIGNAL_ENTRY = ('min_score = 0\nrequire_warm = false\nrequire_h1_ema200_alignment = false\nsessions = []\n'
                'cooldown_minutes = 0\nallowed_consensus = ["UNANIMOUS", "STRONG", "WEAK", "SPLIT"]\n')


# ---- helpers: a bridge process on a journal of our choosing ---------------------------------------------------

def _config(tmp_path: Path, journal: Path, **bridge) -> tuple[Path, str, str]:
    ea, control = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    lines = [f'endpoint = "{ea}"', f'control_endpoint = "{control}"', f'journal = "{journal}"',
             "heartbeat_ms = 200", "stale_after_ms = 2000", "command_timeout_ms = 60000"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in bridge.items()]
    text = ("[bridge]\n" + "\n".join(lines) + "\n\n[entry]\n" + SIGNAL_ENTRY
            + "\n[dca]\nenabled = false\n\n[scale_in]\nenabled = false\n")
    path = tmp_path / "bridge.toml"
    path.write_text(text, encoding="utf-8")
    return path, ea, control


def _bridge(config: Path, control: str, model: str | None = None):
    """A bridge process on ``config``, trading with ``model`` when one is given."""
    return _bridge_process(config, control, *(["--model", model] if model else []))


def _warm(chart: Chart, **hello) -> tuple[int, float]:
    """HELLO and a day of warm-up bars; the time (UTC ms) and price of the first live tick."""
    ticks = generate_ticks("EURUSD", days=1, seed=3, start="2026-07-06T00:00:00Z")
    welcome = chart.hello(**hello)
    assert welcome["type"] == "WELCOME", welcome
    chart.warmup(ticks)
    return int(ticks.times_ms[-1]) + 60_000, float(ticks.bid[-1])


def _status(control: str) -> dict:
    answer = control_request(control, {"cmd": "status"}, timeout_ms=3000)
    assert answer is not None, "the bridge did not answer on its control socket"
    return answer


def _result(chart: Chart, cmd: dict, ticket: int, t: int) -> dict:
    return {"type": "RESULT", "seq": chart.next_seq(), "command_id": cmd["command_id"], "outcome": "DONE",
            "retcode": 10009, "ticket": ticket, "price": 1.1, "volume": cmd["volume"], "sl": cmd["sl"],
            "tp": cmd["tp"], "text": "done", "time_msc": t + SERVER_OFFSET_MS}


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MB tmpfs of our own, so the test can fill it; skipped where mounting is not allowed."""
    where = tmp_path / "disk"
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(where)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _fill(disk: Path) -> Path:
    """Fill the disk to the last byte; the filler file, to delete to free it."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 16, 1 << 10, 1):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size):
                    pass
    finally:
        os.close(fd)
    return filler


# ---- the journal cannot write -----------------------------------------------------------------------------

def test_a_full_disk_opens_no_new_risk_keeps_serving_and_resumes_by_itself(tmp_path, small_disk):
    config, ea, control = _config(tmp_path, small_disk / "journal.sqlite")
    with _bridge(config, control, always("BUY", tmp_path)) as proc:
        chart = Chart(ea)
        t, price = _warm(chart)
        filler = _fill(small_disk)
        # The engine wants to open; the journal cannot take the command, so nothing is sent.
        held = chart.tick(t, price)
        assert (held["action"], held["reason_code"]) == ("HOLD", "JOURNAL_UNAVAILABLE"), held
        manual = dict(wire.Position.example, ticket=777, magic=0, comment="by hand")
        for i in range(1, 20):   # every tick answered, none opens anything
            reply = chart.tick(t + i * 1000, price, positions=[manual])
            assert reply["type"] == "COMMAND" and reply["action"] == "HOLD", reply
        status = _status(control)
        assert status["journal"]["writing"] is False and "full" in status["journal"]["problem"]
        [acct] = status["accounts"].values()
        assert acct["in_flight"] == []
        filler.unlink()
        time.sleep(1.2)   # housekeeping finds the journal writing again
        assert _status(control)["journal"]["writing"] is True
        reply = chart.tick(t + 30_000, price, positions=[manual])
        assert reply["action"] == "OPEN", reply
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    err = proc.stderr.read()
    assert err.count("JOURNAL UNAVAILABLE") == 1, err   # said loudly once, not once per tick
    assert "journal writes again" in err
    with sqlite3.connect(small_disk / "journal.sqlite") as db:
        # What came while the journal was down was kept and written: the hand-opened position, the HOLDs.
        assert db.execute("select managed from positions_seen where ticket = 777").fetchall() == [(0,)]
        counts = dict(db.execute("select reason_code, sum(count) from refusals group by reason_code").fetchall())
        assert counts.get("JOURNAL_UNAVAILABLE", 0) >= 20
        assert [a for (a,) in db.execute("select action from commands")] == ["OPEN"]


def test_a_bridge_does_not_start_on_a_journal_it_cannot_write(tmp_path, small_disk):
    from mt5bridge.bridge.journal import Journal

    Journal(small_disk / "journal.sqlite").close()
    filler = _fill(small_disk)
    config, _, _ = _config(tmp_path, small_disk / "journal.sqlite")
    cmd, env, cwd = package_process(["serve", "--config", str(config)], tmp_path)
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "cannot open the journal" in done.stderr and "disk full" in done.stderr, done.stderr
    filler.unlink()


def test_a_journal_folder_deleted_under_the_bridge_is_written_back_and_ids_go_on(tmp_path):
    folder = tmp_path / "data"
    config, ea, control = _config(tmp_path, folder / "journal.sqlite")
    with _bridge(config, control, always("BUY", tmp_path)) as proc:
        chart = Chart(ea)
        t, price = _warm(chart)
        first = chart.tick(t, price)
        assert first["action"] == "OPEN"
        journal_id = _status(control)["journal"]["journal_id"]
        shutil.rmtree(folder)
        time.sleep(1.2)
        assert (folder / "journal.sqlite").exists()
        with sqlite3.connect(folder / "journal.sqlite") as db:
            assert db.execute("select command_id from commands").fetchall() == [(first["command_id"],)]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    assert "was deleted under the running bridge: written back" in proc.stderr.read()
    with _bridge(config, control, always("BUY", tmp_path)):
        again = Chart(ea, identity=b"after-restart")
        t2, price = _warm(again)
        welcome_journal = _status(control)["journal"]["journal_id"]
        assert welcome_journal == journal_id   # the same journal: its ids go on, never 1, 2, 3 again
        # The account's first command is still in flight (no RESULT came): release it, then a new one comes.
        again.send(_result(again, first, 4242, t2))
        nxt = again.tick(t2 + 5000, price, positions=[dict(wire.Position.example, ticket=4242,
                                                           comment=f"mt5b:{first['command_id']}")])
        assert nxt["type"] == "COMMAND"
        if nxt["command_id"]:
            assert nxt["command_id"] > first["command_id"]


# ---- the operator's word survives kill -9 -------------------------------------------------------------------

@pytest.mark.parametrize("last_word", ["resume", "halt"])
def test_the_operators_last_word_survives_kill_9_for_every_account(tmp_path, last_word):
    config, ea, control = _config(tmp_path, tmp_path / "journal.sqlite")
    logins = [1510000001, 1510000002, 1510000003, 1510000004]
    with _bridge(config, control) as proc:
        charts = [Chart(ea, identity=f"{login}-EURUSD".encode()) for login in logins]
        for login, chart in zip(logins, charts):
            chart.hello(login=login)
            chart.tick(1_783_400_000_000, 1.0851)
        assert control_request(control, {"cmd": "halt", "flatten": False, "by": "test"})["ok"]
        for chart in charts:   # every account's state saved while halted
            chart.tick(1_783_400_001_000, 1.0851)
        if last_word == "resume":
            assert control_request(control, {"cmd": "resume", "by": "test"})["ok"]
        os.kill(proc.pid, signal.SIGKILL)   # at once: no tick has passed since the last word
        proc.wait(10)
    with _bridge(config, control):
        for login in logins:
            chart = Chart(ea, identity=f"{login}-EURUSD-again".encode())
            chart.hello(login=login)
            chart.tick(1_783_400_002_000, 1.0851)
        status = _status(control)
        assert status["halt"]["halted"] is (last_word == "halt")
        for login in logins:
            reason = status["accounts"][str(login)]["account"]["state_reason"]
            assert (reason == "OPERATOR_HALT") is (last_word == "halt"), (login, reason)


# ---- accounts never mix -------------------------------------------------------------------------------------

def _two_accounts_open(r, tmp_path):
    a = Chart(r.cfg.bridge.endpoint, identity=b"A-EURUSD")
    b = Chart(r.cfg.bridge.endpoint, identity=b"B-EURUSD")
    t, price = _warm(a, login=1510000001)
    _warm(b, login=1510000002)
    return a, b, a.tick(t, price), b.tick(t, price), t


def test_two_accounts_trading_at_once_never_share_a_command_id(running, tmp_path):
    r = running(signal_config(tmp_path), model=always("BUY", tmp_path))
    a, b, cmd_a, cmd_b, t = _two_accounts_open(r, tmp_path)
    assert cmd_a["action"] == cmd_b["action"] == "OPEN"
    assert cmd_a["command_id"] != cmd_b["command_id"]
    with sqlite3.connect(r.cfg.bridge.journal) as db:
        rows = dict(db.execute("select command_id, account from commands").fetchall())
    assert rows == {cmd_a["command_id"]: "1510000001", cmd_b["command_id"]: "1510000002"}
    # Both halted and flattened at once: each account's close-all goes out under an id of its own.
    r.bridge.node.set_halt(True, True, "test")
    flats = [chart.tick(t + 1000, 1.1, positions=[dict(wire.Position.example, ticket=9001 + i, comment="x")])
             for i, chart in enumerate((a, b))]
    assert [f["action"] for f in flats] == ["CLOSE_ALL", "CLOSE_ALL"], flats
    ids = {f["command_id"] for f in flats}
    assert len(ids) == 2 and not ids & {cmd_a["command_id"], cmd_b["command_id"]}


def test_a_chart_cannot_settle_another_accounts_command(running, tmp_path):
    r = running(signal_config(tmp_path), model=always("BUY", tmp_path))
    a, b, cmd_a, _, t = _two_accounts_open(r, tmp_path)
    forged = b.ask(_result(b, cmd_a, 31337, t))
    assert forged["type"] == "ERROR" and forged["code"] == "FORBIDDEN"
    assert "1510000001" not in forged["message"]   # words name nothing of the other account
    deal = dict(wire.Deal.example, seq=b.next_seq(), comment=f"mt5b:{cmd_a['command_id']}", position_id=31337)
    assert b.ask(deal)["code"] == "FORBIDDEN"
    # The same ticket on another account's server is no forgery: both accounts' deals are journaled.
    for chart, deal_no in ((a, 8001), (b, 8002)):
        chart.send(dict(wire.Deal.example, seq=chart.next_seq(), deal=deal_no, position_id=424242, comment=""))
    # The real RESULT from the owner's chart still settles it.
    a.send(_result(a, cmd_a, 4242, t))
    reply = a.tick(t + 1000, 1.1, positions=[dict(wire.Position.example, ticket=4242,
                                                  comment=f"mt5b:{cmd_a['command_id']}")])
    assert reply["type"] == "COMMAND"
    b.tick(t + 1000, 1.1)
    with sqlite3.connect(r.cfg.bridge.journal) as db:
        assert db.execute("select result_ticket from commands where command_id = ?",
                          (cmd_a["command_id"],)).fetchone() == (4242,)
        assert sorted(db.execute("select account from deals where position_id = 424242").fetchall()) == [
            ("1510000001",), ("1510000002",)]


# ---- identities, BYE and the clock ------------------------------------------------------------------------

def test_a_tick_after_bye_is_not_traded_and_a_new_identity_retires_the_old_chart(running):
    r = running()
    chart = Chart(r.cfg.bridge.endpoint, identity=b"first")
    chart.hello(chart_id=77)
    chart.tick(1_783_400_000_000, 1.0851)
    chart.send({"type": "BYE", "seq": chart.next_seq(), "reason": "chart closed"})
    assert chart.tick(1_783_400_001_000, 1.0851)["code"] == "NOT_INTRODUCED"
    [acct] = _status(r.cfg.bridge.control_endpoint)["accounts"].values()
    assert [(c["chart"], c["closed"]) for c in acct["charts"]] == [("first", True)]
    # The same terminal chart, back under another identity: one chart in status, not a ghost beside it.
    back = Chart(r.cfg.bridge.endpoint, identity=b"second")
    back.hello(chart_id=77)
    back.tick(1_783_400_002_000, 1.0851)
    [acct] = _status(r.cfg.bridge.control_endpoint)["accounts"].values()
    assert [(c["chart"], c["closed"]) for c in acct["charts"]] == [("second", False)]


def test_a_tick_dated_a_day_ahead_is_refused_and_moves_no_clock(running):
    r = running()
    chart = Chart(r.cfg.bridge.endpoint)
    chart.hello()
    now = int(time.time() * 1000)
    assert chart.tick(now, 1.0851)["type"] == "COMMAND"
    day_before = _status(r.cfg.bridge.control_endpoint)["accounts"]
    ahead = chart.tick(now + 86_400_000, 1.0852)
    assert ahead["type"] == "ERROR" and ahead["code"] == "TIME_AHEAD" and ahead["reply_to"] == chart.seq
    assert "bridge.max_time_ahead_ms" in ahead["message"]
    # The chart goes on from where it was: the next true tick is served, the FTMO day has not rolled.
    assert chart.tick(now + 1000, 1.0852)["type"] == "COMMAND"
    after = _status(r.cfg.bridge.control_endpoint)["accounts"]
    [a0], [a1] = day_before.values(), after.values()
    assert a1["account"]["day_start_balance"] == a0["account"]["day_start_balance"]
    assert a1["account"]["daily_floor"] == a0["account"]["daily_floor"]


def test_time_backwards_is_refused_across_reconnects_and_second_charts(running):
    r = running()
    chart = Chart(r.cfg.bridge.endpoint)
    chart.hello()
    chart.tick(1_783_400_010_000, 1.0851)
    chart.hello()   # a reconnect under the same identity
    back = chart.tick(1_783_400_000_000, 1.0851)
    assert back["code"] == "TIME_BACKWARDS" and "time_msc" in back["message"]
    assert str(1_783_400_010_000 + SERVER_OFFSET_MS) in back["message"]
    second = Chart(r.cfg.bridge.endpoint, identity=b"second-eurusd")
    second.hello(chart_id=2)
    assert second.tick(1_783_400_005_000, 1.0851)["code"] == "TIME_BACKWARDS"
    assert second.tick(1_783_400_011_000, 1.0851)["type"] == "COMMAND"


def test_a_seq_far_ahead_does_not_wedge_the_chart(running):
    r = running()
    chart = Chart(r.cfg.bridge.endpoint)
    chart.hello()
    chart.tick(1_783_400_000_000, 1.0851)
    jump = chart.tick(1_783_400_001_000, 1.0851, seq=2**52)
    assert jump["code"] == "SEQUENCE" and jump["reply_to"] == 2**52
    assert chart.tick(1_783_400_002_000, 1.0851)["type"] == "COMMAND"   # the chart's own next seq


# ---- memory stays bounded ---------------------------------------------------------------------------------

def test_charts_and_accounts_are_forgotten_and_capped(running, tmp_path):
    cfg = bridge_config(tmp_path, bridge={"max_charts": 3, "max_accounts": 2, "stale_after_ms": 300,
                                          "heartbeat_ms": 100, "forget_after_ms": 1000})
    r = running(cfg)
    node = r.bridge.node
    one = Chart(cfg.bridge.endpoint, identity=b"one")
    two = Chart(cfg.bridge.endpoint, identity=b"two")
    assert one.hello(login=1510000001)["type"] == "WELCOME"
    assert two.hello(login=1510000002, chart_id=2)["type"] == "WELCOME"
    third_login = Chart(cfg.bridge.endpoint, identity=b"three").hello(login=1510000003, chart_id=3)
    assert third_login["code"] == "CAPACITY" and "bridge.max_accounts" in third_login["message"]
    for c in (one, two):
        c.send({"type": "BYE", "seq": c.next_seq(), "reason": "leaving"})
    # Many logins come and go: the process holds at most what the caps allow, and forgets what is gone.
    for i in range(40):
        c = Chart(cfg.bridge.endpoint, identity=f"visitor-{i}".encode())
        reply = c.hello(login=1510000100 + i, chart_id=100 + i)
        assert reply["type"] == "WELCOME" or reply["code"] == "CAPACITY"
        if reply["type"] == "WELCOME":
            c.send({"type": "BYE", "seq": c.next_seq(), "reason": "done"})
        c.close()
        assert len(node.accounts) <= 2 and len(node.charts) <= 3
        time.sleep(0.05)
    time.sleep(2.0)   # past forget_after_ms: housekeeping forgets the closed and the silent
    assert len(node.charts) == 0 and len(node.accounts) == 0
    # A forgotten account comes back from the journal with the next HELLO.
    assert Chart(cfg.bridge.endpoint, identity=b"back").hello(login=1510000002)["type"] == "WELCOME"


def test_an_identity_taken_over_by_another_connection_is_a_warning_naming_both(running, caplog):
    r = running()
    first = Chart(r.cfg.bridge.endpoint, identity=b"shared-identity")
    first.hello(login=1510000001, chart_id=11)
    first.tick(1_783_400_000_000, 1.0851)
    # Another terminal's EA connects under the same identity: zmq hands the identity to it.
    second = Chart(r.cfg.bridge.endpoint, identity=b"shared-identity")
    assert second.hello(login=1510000002, symbol="GBPUSD", chart_id=22)["type"] == "WELCOME"
    [line] = [m for m in caplog.messages if "taken over" in m]
    assert "1510000001 EURUSD (chart 11)" in line and "1510000002 GBPUSD (chart 22" in line
    # The same EA coming back (same account, symbol and chart) is a reconnect, not a takeover.
    again = Chart(r.cfg.bridge.endpoint, identity=b"shared-identity")
    again.hello(login=1510000002, symbol="GBPUSD", chart_id=22)
    assert len([m for m in caplog.messages if "taken over" in m]) == 1
