"""The journal keeps its two promises against a bridge killed without warning: a command is committed before it
is sent, and what the FTMO limits depend on (baselines, engine state, the operator's halt) comes back after a
restart. Every test uses a real SQLite file."""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import mt5bridge
from mt5bridge.bridge import journal as journal_mod
from mt5bridge.core.catalog import FEATURE_NAMES
from mt5bridge.bridge.journal import APPLICATION_ID, Journal, JournalError

PACKAGE_PARENT = str(Path(mt5bridge.__file__).resolve().parents[1])
needs_sigkill = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="kill -9 needs a POSIX system")

ACCOUNT = "1510234567"


def command(command_id: int, **changes) -> dict:
    c = dict(
        command_id=command_id, account=ACCOUNT, chart="133476532849512345", symbol="EURUSD", seq=40 + command_id,
        time_ms=1_783_416_645_391 + command_id, action="OPEN", side="BUY", volume=0.5, price=1.08519,
        sl=1.08319, tp=1.08919, ticket=0, reason_code="ENTRY_SIGNAL", reason="long score 0.71 above 0.65",
        payload=json.dumps({"type": "COMMAND", "command_id": command_id}).encode(),
    )
    c.update(changes)
    return c


def result(command_id: int, **changes) -> dict:
    r = dict(command_id=command_id, retcode=10009, ticket=123456790, price=1.08519, volume=0.5,
             text="Request executed", time_ms=1_783_416_645_412, filled=True)
    r.update(changes)
    return r


DEAL = {
    "deal": 98765432, "order": 123456790, "position_id": 123456790, "symbol": "EURUSD", "side": "BUY",
    "entry": "IN", "reason": "EXPERT", "volume": 0.5, "price": 1.08519, "profit": 0.0, "swap": 0.0,
    "commission": -2.5, "magic": 20260101, "time_msc": 1783416645409, "comment": "mt5b 17",
}
POSITION = {
    "ticket": 123456789, "symbol": "EURUSD", "side": "BUY", "volume": 1.0, "open_price": 1.08405, "sl": 1.08205,
    "tp": 1.08905, "profit": 107.0, "swap": -6.9, "commission": -5.0, "magic": 0, "open_time_msc": 1783410000000,
    "comment": None,
}


def trade(ticket: int, *, entry=True, close_ms=1_783_420_000_000) -> dict:
    rng = np.random.default_rng(ticket)
    at_entry = rng.normal(size=len(FEATURE_NAMES)) if entry else None
    if at_entry is not None:
        at_entry[3] = np.nan  # a feature still warming up when the position opened
    return {
        "ticket": ticket, "symbol": "EURUSD", "side": "BUY", "volume": 0.5, "open_price": 1.08519,
        "open_time_ms": 1_783_416_645_409, "close_time_ms": close_ms, "profit": 100.25, "r_multiple": 1.0 / 3.0,
        "mfe_r": 1.5, "mae_r": -0.25, "managed": True, "stage": "TRAILING", "adds": 1,
        "features_at_entry": at_entry, "features_at_exit": rng.normal(size=len(FEATURE_NAMES)),
    }


@pytest.fixture
def path(tmp_path) -> Path:
    return tmp_path / "journal" / "bridge.sqlite"


# --- write-ahead and restarts ---------------------------------------------------------------------------------


def test_a_command_is_committed_when_record_command_returns(path):
    with Journal(path) as journal:
        assert path.is_file(), "the parent folder and the file are created"
        journal.record_command(**command(17))
        # Another connection (another process would see the same) reads it while the journal is still open.
        other = sqlite3.connect(path)
        try:
            row = other.execute("SELECT action, symbol, payload FROM commands WHERE command_id = 17").fetchone()
        finally:
            other.close()
        assert row == ("OPEN", "EURUSD", command(17)["payload"])
        mode, sync = (journal._db.execute(f"PRAGMA {p}").fetchone()[0] for p in ("journal_mode", "synchronous"))
        assert mode == "wal" and sync == 1  # 1 = NORMAL
        assert journal._db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID


_CHILD = textwrap.dedent(
    """
    import json, os, signal, sys
    import numpy as np
    from mt5bridge.bridge.journal import Journal

    j = Journal(sys.argv[1])
    for cid in (1, 2, 3):
        j.record_command(command_id=cid, account="1510234567", chart="chart-eurusd", symbol="EURUSD", seq=10 + cid,
                         time_ms=1000 + cid, action="OPEN", side="BUY", volume=0.5, price=1.1, sl=1.09, tp=1.12,
                         ticket=0, reason_code="ENTRY_SIGNAL", reason="long", payload=b"reply %d" % cid)
    j.record_result(command_id=1, retcode=10009, ticket=555, price=1.1, volume=0.5, text="done", time_ms=1100,
                    filled=True)
    j.save_engine_state("1510234567", 1200, {"version": 1, "account": {"day_start_balance": 100250.5,
                        "halted_today": False, "perf_r": [0.5, -1.0]}, "next_command_id": 4, "in_flight": []})
    j.record_baseline("1510234567", "2026-07-07", day_start_balance=100250.5, initial_balance=100000.0,
                      peak_equity=100400.0, highest_eod_balance=100250.5)
    j.set_halt(True, flatten=True, by="operator (telegram)", time_ms=1300)
    j.record_transition("1510234567", 1250, "REDUCING", "DAILY_LIMIT_NEAR")
    j.record_deal("1510234567", json.loads(sys.argv[2]))
    j.record_position_seen("1510234567", json.loads(sys.argv[3]), managed=False, time_ms=1260)
    features = np.arange(147, dtype=np.float64)
    j.record_closed_trade("1510234567", dict(ticket=777, symbol="EURUSD", side="SELL", volume=0.2,
        open_price=1.1, open_time_ms=900, close_time_ms=1280, profit=-40.0, r_multiple=-1.0, mfe_r=0.2,
        mae_r=-1.0, managed=True, stage="OPEN", adds=0, features_at_entry=features, features_at_exit=-features))
    print("journaled", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def _child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_PARENT, env.get("PYTHONPATH")) if p)
    return env


@needs_sigkill
def test_a_bridge_killed_with_kill_9_loses_nothing_it_journaled(path):
    run = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), json.dumps(DEAL), json.dumps(POSITION)],
        capture_output=True, text=True, env=_child_env(), timeout=60,
    )
    assert run.returncode == -signal.SIGKILL, run.stderr
    assert run.stdout.strip() == "journaled"
    # Killed, so never closed: the commits are still in the write-ahead log, which the reopen recovers.
    assert Path(f"{path}-wal").exists()

    with Journal(path) as journal:
        assert [c["command_id"] for c in journal.pending_commands(ACCOUNT)] == [2, 3]
        assert journal.next_command_id() == 4
        assert journal.reply_for("chart-eurusd", 13) == b"reply 3"
        assert journal.command(1)["result_ticket"] == 555 and journal.command(1)["result_filled"] is True
        state = journal.load_engine_state(ACCOUNT)
        assert state["account"] == {"day_start_balance": 100250.5, "halted_today": False, "perf_r": [0.5, -1.0]}
        assert journal.latest_baseline(ACCOUNT)["day_start_balance"] == 100250.5
        halt = journal.halt_state()
        assert halt == {"halted": True, "flatten": True, "by": "operator (telegram)", "time_ms": 1300,
                        "record": halt["record"]} and halt["record"] > 0
        assert journal.transitions(ACCOUNT)[-1]["state"] == "REDUCING"
        assert journal.record_deal(ACCOUNT, DEAL) is False, "the deal was journaled before the kill"
        [closed] = journal.closed_trades(ACCOUNT)
        np.testing.assert_array_equal(closed["features_at_exit"], -np.arange(147.0))
        assert journal.open_positions(ACCOUNT)[0]["ticket"] == POSITION["ticket"]


_WRITER = textwrap.dedent(
    """
    import sys
    from mt5bridge.bridge.journal import Journal

    j = Journal(sys.argv[1])
    cid = j.next_command_id()
    while True:
        j.record_command(command_id=cid, account="1510234567", chart="chart-xauusd", symbol="XAUUSD", seq=cid,
                         time_ms=cid, action="MODIFY", side="", volume=0.0, price=2400.0, sl=2390.0, tp=0.0,
                         ticket=42, reason_code="TRAILING", reason="trail", payload=b"x" * 200)
        print(cid, flush=True)   # only once record_command has returned: the command may now be sent
        cid += 1
    """
)


@needs_sigkill
def test_every_command_reported_journaled_survives_a_kill_at_any_moment(path):
    with Journal(path) as journal:  # a restart later: ids continue after these
        for cid in range(1, 6):
            journal.record_command(**command(cid))
    child = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True,
                             env=_child_env())
    reported = []
    try:
        for line in child.stdout:
            reported.append(int(line))
            if len(reported) == 300:
                os.kill(child.pid, signal.SIGKILL)  # mid-stream, while it is writing the next one
                break
        reported += [int(line) for line in child.stdout]
    finally:
        child.kill()
        child.wait(timeout=30)
    assert reported[0] == 6, "ids continue after the ones journaled before the restart"
    with Journal(path) as journal:
        journaled = {c["command_id"] for c in journal.pending_commands(ACCOUNT)}
        assert set(reported) <= journaled
        assert journal.next_command_id() > max(reported)


def test_ids_are_never_reused_and_a_duplicate_is_refused(path):
    with Journal(path) as journal:
        assert journal.next_command_id() == 1
        journal.record_command(**command(41))
        with pytest.raises(JournalError, match=r"command 41 is already journaled .*OPEN EURUSD.*next_command_id"):
            journal.record_command(**command(41, action="CLOSE"))
        assert journal.command(41)["action"] == "OPEN"
        with pytest.raises(JournalError, match="must be > 0"):
            journal.record_command(**command(0))
    with Journal(path) as journal:
        assert journal.next_command_id() == 42
    # Even rows removed by hand (an operator tidying the file) do not bring an id back.
    db = sqlite3.connect(path)
    db.execute("DELETE FROM commands")
    db.commit()
    db.close()
    with Journal(path) as journal:
        assert journal.next_command_id() == 42


def test_a_re_sent_request_gets_the_same_reply(path):
    with Journal(path) as journal:
        journal.record_command(**command(7, chart="c1", seq=42, payload=b"first session"))
        assert journal.reply_for("c1", 42) == b"first session"
        assert journal.reply_for("c1", 43) is None and journal.reply_for("c2", 42) is None
        # After a HELLO the chart's seq starts again: the newest reply to (chart, seq) is the one re-sent.
        journal.record_command(**command(8, chart="c1", seq=42, payload=b"second session"))
        assert journal.reply_for("c1", 42) == b"second session"


# --- results and commands in flight -----------------------------------------------------------------------------


def test_results_are_recorded_once_and_unknown_ones_are_told_apart(path):
    with Journal(path) as journal:
        journal.record_command(**command(17))
        journal.record_command(**command(18))
        assert [c["command_id"] for c in journal.pending_commands(ACCOUNT)] == [17, 18]
        assert journal.record_result(**result(17)) == "recorded"
        assert journal.record_result(**result(17, price=9.99, filled=False)) == "duplicate"
        assert journal.record_result(**result(99)) == "unknown"
        first = journal.command(17)
        assert first["result_price"] == 1.08519 and first["result_filled"] is True, "the first result stands"
        assert first["result_retcode"] == 10009 and first["result_text"] == "Request executed"
        assert [c["command_id"] for c in journal.pending_commands(ACCOUNT)] == [18]
        assert journal.pending_commands("999") == []


def test_commands_without_a_result_are_settled_against_the_positions(path):
    with Journal(path) as journal:
        for cid in (1, 2, 3):
            journal.record_command(**command(cid))
        journal.record_result(**result(3))
        pending = journal.pending_commands(ACCOUNT)
        assert [c["command_id"] for c in pending] == [1, 2]
        assert set(pending[0]) >= {"account", "chart", "symbol", "seq", "time_ms", "action", "side", "volume",
                                   "price", "sl", "tp", "ticket", "reason_code", "reason", "payload"}
        journal.expire_command(1, 5_000, "filled_seen")
        journal.expire_command(2, 5_000, "not_seen")
        journal.expire_command(3, 5_000, "not_seen")   # has a result: keeps it, not settled
        assert journal.pending_commands(ACCOUNT) == []
        assert journal.command(1)["expired_outcome"] == "filled_seen"
        assert journal.command(3)["expired_outcome"] is None
        # A RESULT arriving after the command was settled is real news: recorded.
        assert journal.record_result(**result(2, filled=False, retcode=10006)) == "recorded"
        with pytest.raises(JournalError, match="outcome 'maybe' is not one of filled_seen, not_seen"):
            journal.expire_command(1, 5_000, "maybe")
        with pytest.raises(JournalError, match="command 77 was never journaled"):
            journal.expire_command(77, 5_000, "not_seen")


# --- what happened on the account ---------------------------------------------------------------------------


def test_a_deal_is_recorded_once_per_account(path):
    with Journal(path) as journal:
        assert journal.record_deal(ACCOUNT, DEAL) is True
        assert journal.record_deal(ACCOUNT, dict(DEAL, profit=1.0)) is False
        assert journal.record_deal("520000111", DEAL) is True, "deal tickets are per account"
        [d] = journal.deals(ACCOUNT)
        assert d == dict(DEAL, account=ACCOUNT)
        assert journal.record_deal(ACCOUNT, dict(DEAL, deal=98765433, comment=None)) is True
        with pytest.raises(JournalError, match="deal: missing commission, magic"):
            journal.record_deal(ACCOUNT, {k: v for k, v in DEAL.items() if k not in ("commission", "magic")})


def test_ten_thousand_refusals_are_one_row_written_on_flush(path):
    with Journal(path, refusal_flush_s=3600) as journal:
        t0 = 1_783_416_645_000
        for i in range(10_000):
            journal.record_refusal(ACCOUNT, "EURUSD", t0 + i, "SPREAD_WIDE")
        changes = journal._db.total_changes
        assert journal.refusals(ACCOUNT) == [], "counted in memory, not one statement per call"
        journal.flush()
        assert journal._db.total_changes == changes + 1
        [row] = journal.refusals(ACCOUNT)
        assert row == {"account": ACCOUNT, "symbol": "EURUSD", "reason_code": "SPREAD_WIDE",
                       "utc_day": "2026-07-07", "count": 10_000, "first_time_ms": t0, "last_time_ms": t0 + 9_999}
        # The next flush adds to the same day's row; another UTC day or reason is a row of its own.
        journal.record_refusal(ACCOUNT, "EURUSD", t0 - 5, "SPREAD_WIDE")
        journal.record_refusal(ACCOUNT, "EURUSD", t0 + 86_400_000, "SPREAD_WIDE")
        journal.record_refusal(ACCOUNT, "EURUSD", t0, "COOLDOWN")
    with Journal(path) as journal:   # close() flushed
        rows = {(r["utc_day"], r["reason_code"]): r for r in journal.refusals(ACCOUNT)}
        assert rows["2026-07-07", "SPREAD_WIDE"]["count"] == 10_001
        assert rows["2026-07-07", "SPREAD_WIDE"]["first_time_ms"] == t0 - 5
        assert rows["2026-07-08", "SPREAD_WIDE"]["count"] == 1 and rows["2026-07-07", "COOLDOWN"]["count"] == 1


def test_refusals_are_written_every_few_seconds_without_a_flush(path, monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(journal_mod, "_monotonic", lambda: clock[0])
    with Journal(path, refusal_flush_s=5) as journal:
        journal.record_refusal(ACCOUNT, "EURUSD", 1_000, "SPREAD_WIDE")
        clock[0] += 4.9
        journal.record_refusal(ACCOUNT, "EURUSD", 2_000, "SPREAD_WIDE")
        assert journal.refusals(ACCOUNT) == []
        clock[0] += 0.2
        journal.record_refusal(ACCOUNT, "EURUSD", 3_000, "SPREAD_WIDE")
        assert journal.refusals(ACCOUNT)[0]["count"] == 3


def test_decisions_and_trading_state_changes(path):
    decision = {
        "action": "OPEN", "symbol": "EURUSD", "side": "BUY", "volume": np.float64(0.5), "price": 1.08519,
        "sl": 1.08319, "tp": 1.08919, "ticket": 0, "command_id": np.int64(17), "reason_code": "ENTRY_SIGNAL",
        "reason": "long", "cap": "CONCENTRATION", "score": 0.71, "confidence": 0.8, "risk_money": 100.0,
        "worst_case_loss": 350.0, "headroom": 4200.0,
    }
    with Journal(path) as journal:
        journal.record_decision(ACCOUNT, "EURUSD", 1_000, decision)
        [row] = journal.decisions(ACCOUNT)
        assert row["cap"] == "CONCENTRATION" and row["command_id"] == 17 and row["volume"] == 0.5
        with pytest.raises(JournalError, match="a HOLD is counted with record_refusal"):
            journal.record_decision(ACCOUNT, "EURUSD", 1_000, dict(decision, action="HOLD"))
        with pytest.raises(JournalError, match="volume: expected a number, got None"):
            journal.record_decision(ACCOUNT, "EURUSD", 1_000, dict(decision, volume=None))
        journal.record_transition(ACCOUNT, 2_000, "REDUCING", "DAILY_LIMIT_NEAR")
        journal.record_transition(ACCOUNT, 3_000, "HALTED", "DAILY_LIMIT")
        assert [t["state"] for t in journal.transitions(ACCOUNT)] == ["REDUCING", "HALTED"]


# --- state a restart needs ------------------------------------------------------------------------------------


def test_the_operators_halt_survives_a_restart(path):
    with Journal(path) as journal:
        assert journal.halt_state() == {"halted": False, "flatten": False, "by": "", "time_ms": 0, "record": 0}
        journal.set_halt(True, flatten=False, by="cli", time_ms=1_000)
    with Journal(path) as journal:
        assert journal.halt_state() == {"halted": True, "flatten": False, "by": "cli", "time_ms": 1_000,
                                        "record": 1}
        journal.set_halt(False, flatten=False, by="cli resume", time_ms=2_000)
    with Journal(path) as journal:
        assert journal.halt_state()["halted"] is False


def test_engine_state_and_baselines_are_upserted(path):
    state = {"version": 1, "account": {"equity": 100_123.45, "breaker_until_ms": -4611686018427387904,
                                       "started": True, "perf_r": [0.1, float("inf")]},
             "lifecycle": {"1001": {"stage": 0}}, "cooldown_until_ms": {"EURUSD": np.int64(5)}}
    with Journal(path) as journal:
        assert journal.load_engine_state(ACCOUNT) is None
        journal.save_engine_state(ACCOUNT, 1_000, state)
        journal.save_engine_state(ACCOUNT, 2_000, dict(state, version=1, next_command_id=9))
        loaded = journal.load_engine_state(ACCOUNT)
        assert loaded["account"] == state["account"] and loaded["next_command_id"] == 9
        assert loaded["cooldown_until_ms"] == {"EURUSD": 5}
        with pytest.raises(JournalError, match="cannot be saved: object is not plain data"):
            journal.save_engine_state(ACCOUNT, 1_000, {"x": object()})

        journal.record_baseline(ACCOUNT, "2026-07-06", day_start_balance=100_000.0, initial_balance=100_000.0,
                                peak_equity=100_500.0, highest_eod_balance=100_000.0)
        journal.record_baseline(ACCOUNT, "2026-07-07", day_start_balance=100_250.0, initial_balance=100_000.0,
                                peak_equity=100_300.0, highest_eod_balance=100_250.0)
        journal.record_baseline(ACCOUNT, "2026-07-07", day_start_balance=100_250.0, initial_balance=100_000.0,
                                peak_equity=100_900.0, highest_eod_balance=100_250.0)
        assert len(journal.baselines(ACCOUNT)) == 2
        assert journal.latest_baseline(ACCOUNT)["peak_equity"] == 100_900.0
        with pytest.raises(JournalError, match="prague_day '07/07/2026' is not YYYY-MM-DD"):
            journal.record_baseline(ACCOUNT, "07/07/2026", day_start_balance=1.0, initial_balance=1.0,
                                    peak_equity=1.0, highest_eod_balance=1.0)
        with pytest.raises(JournalError, match="day_start_balance: nan is not a finite number"):
            journal.record_baseline(ACCOUNT, "2026-07-08", day_start_balance=math.nan, initial_balance=1.0,
                                    peak_equity=1.0, highest_eod_balance=1.0)


def test_the_engines_own_state_and_closed_trade_round_trip(tmp_path, path):
    from desk import Desk, always, config_for_signals

    cfg = config_for_signals()
    desk = Desk(cfg, model=always("BUY", tmp_path))
    desk.add("EURUSD")
    t, price = desk.warm("EURUSD", days=1)
    opened = desk.tick("EURUSD", t + 60_000, price)
    assert opened["action"] == "OPEN"
    desk.tick("EURUSD", t + 61_000, price)
    [ticket] = desk.positions
    desk.close(ticket)
    desk.tick("EURUSD", t + 62_000, price)
    [closed] = desk.engine.closed_trades
    with Journal(path) as journal:
        journal.record_decision(ACCOUNT, "EURUSD", t + 60_000, opened)
        journal.save_engine_state(ACCOUNT, t + 62_000, desk.engine.export_state())
        assert journal.record_closed_trade(ACCOUNT, closed) is True
    with Journal(path) as journal:
        restarted = Desk(cfg, model=always("BUY", tmp_path))
        restarted.engine.restore_state(journal.load_engine_state(ACCOUNT))
        restarted.add("EURUSD")
        assert restarted.engine.export_state() == desk.engine.export_state()
        [back] = journal.closed_trades(ACCOUNT)
        np.testing.assert_array_equal(back["features_at_entry"], closed["features_at_entry"])
        np.testing.assert_array_equal(back["features_at_exit"], closed["features_at_exit"])
        assert journal.decisions(ACCOUNT)[0]["command_id"] == opened["command_id"]


# --- positions and trades -----------------------------------------------------------------------------------------


def test_positions_are_noted_when_first_seen_and_when_they_change(path):
    with Journal(path) as journal:
        assert journal.record_position_seen(ACCOUNT, POSITION, managed=False, time_ms=1_000) is True
        changes = journal._db.total_changes
        for i in range(100):   # every tick reports it again: no write while nothing that matters changed
            seen = journal.record_position_seen(ACCOUNT, dict(POSITION, profit=i), managed=False, time_ms=1_001 + i)
            assert seen is False
        assert journal._db.total_changes == changes
        journal.record_position_seen(ACCOUNT, dict(POSITION, sl=1.083, profit=50.0), managed=False, time_ms=2_000)
        [p] = journal.open_positions(ACCOUNT)
        assert p["managed"] is False and p["sl"] == 1.08205 and p["last_sl"] == 1.083 and p["last_profit"] == 50.0
    with Journal(path) as journal:
        assert journal.record_position_seen(ACCOUNT, dict(POSITION, sl=1.083), managed=False, time_ms=3_000) is False
        assert journal.record_position_seen(ACCOUNT, dict(POSITION, ticket=5), managed=True, time_ms=3_000) is True
        # Closed while the bridge was down: the book no longer has it.
        assert journal.reconcile_positions(ACCOUNT, [5], time_ms=4_000) == [POSITION["ticket"]]
        assert [p["ticket"] for p in journal.open_positions(ACCOUNT)] == [5]
    with Journal(path) as journal:
        # Back in the book (the book reconciled against was incomplete): open again.
        assert journal.record_position_seen(ACCOUNT, dict(POSITION, sl=1.083), managed=False, time_ms=4_500) is False
        assert sorted(p["ticket"] for p in journal.open_positions(ACCOUNT)) == [5, POSITION["ticket"]]
        assert journal.reconcile_positions(ACCOUNT, [5], time_ms=4_600) == [POSITION["ticket"]]
        journal.record_closed_trade(ACCOUNT, trade(5))
        assert journal.open_positions(ACCOUNT) == []


def test_closed_trades_round_trip_with_their_features(path):
    with Journal(path) as journal:
        first, second = trade(101, close_ms=2_000), trade(102, entry=False, close_ms=1_000)
        assert journal.record_closed_trade(ACCOUNT, first) is True
        assert journal.record_closed_trade(ACCOUNT, dict(first, profit=-1.0)) is False
        assert journal.record_closed_trade("520000111", second) is True
        with pytest.raises(JournalError, match=r"features_at_exit has shape \(3,\), expected \(147,\)"):
            journal.record_closed_trade(ACCOUNT, dict(trade(103), features_at_exit=[1.0, 2.0, 3.0]))
    with Journal(path) as journal:
        everyone = journal.closed_trades()
        assert [t["ticket"] for t in everyone] == [102, 101], "in the order they closed"
        [back] = journal.closed_trades(ACCOUNT)
        assert back["profit"] == 100.25 and back["r_multiple"] == 1.0 / 3.0 and back["managed"] is True
        assert back["features_at_entry"].dtype == np.float64 and back["features_at_entry"].shape == (147,)
        np.testing.assert_array_equal(back["features_at_entry"], first["features_at_entry"])  # NaN kept too
        np.testing.assert_array_equal(back["features_at_exit"], first["features_at_exit"])
        assert everyone[0]["features_at_entry"] is None


def test_trades_export_to_csv_with_entry_and_exit_features(path, tmp_path):
    out = tmp_path / "trades.csv"
    first = trade(101)
    with Journal(path) as journal:
        journal.record_closed_trade(ACCOUNT, first)
        journal.record_closed_trade("520000111", trade(102, entry=False))
        assert journal.export_trades(out) == 2
        with out.open(encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
        header = list(rows[0])
        fields = ["account", "ticket", "symbol", "side", "volume", "open_price", "open_time_ms", "open_time_utc",
                  "close_time_ms", "close_time_utc", "profit", "r_multiple", "mfe_r", "mae_r", "managed", "stage",
                  "adds", "gross_profit", "swap", "commission", "close_price", "close_reason", "settled"]
        assert header == fields + [f"entry_{n}" for n in FEATURE_NAMES] + [f"exit_{n}" for n in FEATURE_NAMES]
        mine = next(r for r in rows if r["account"] == ACCOUNT)
        assert mine["ticket"] == "101" and float(mine["r_multiple"]) == 1.0 / 3.0 and mine["managed"] == "1"
        assert mine["close_time_utc"] == "2026-07-07 10:26:40.000"
        assert mine["settled"] == "0" and mine["close_reason"] == ""   # no deal of it journaled: not settled
        name = FEATURE_NAMES[0]
        assert float(mine[f"entry_{name}"]) == first["features_at_entry"][0]
        assert float(mine[f"exit_{name}"]) == first["features_at_exit"][0]
        assert mine[f"entry_{FEATURE_NAMES[3]}"] == "", "a feature not warm yet is empty"
        other = next(r for r in rows if r["account"] == "520000111")
        assert all(other[f"entry_{n}"] == "" for n in FEATURE_NAMES), "features unknown at entry are empty"
        assert journal.export_trades(out, account=ACCOUNT) == 1
        assert not out.with_name("trades.csv.part").exists()


def _export_parser() -> argparse.ArgumentParser:
    from mt5bridge.cli import export_trades as export_trades_cmd

    parser = argparse.ArgumentParser(prog="mt5bridge")
    export_trades_cmd.register(parser.add_subparsers(dest="command"))
    return parser


def test_the_export_trades_command(path, tmp_path, capsys):
    with Journal(path) as journal:
        journal.record_closed_trade(ACCOUNT, trade(101))
    out = tmp_path / "out.csv"
    parser = _export_parser()

    args = parser.parse_args(["export-trades", "--journal", str(path), "--out", str(out), "--account", ACCOUNT])
    assert args.func(args) == 0
    assert f"wrote 1 closed trade (account {ACCOUNT})" in capsys.readouterr().err
    assert len(out.read_text(encoding="utf-8").splitlines()) == 2

    args = parser.parse_args(["export-trades", "--journal", str(tmp_path / "nope.sqlite"), "--out", str(out)])
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert "mt5bridge export-trades: error: --journal" in err and "nope.sqlite does not exist" in err
    assert not (tmp_path / "nope.sqlite").exists(), "a missing journal is not created by an export"

    args = parser.parse_args(["export-trades", "--journal", str(path), "--out", str(out), "--account", "42"])
    assert args.func(args) == 2
    assert f"--account 42 is not in {path} (accounts in it: {ACCOUNT})" in capsys.readouterr().err

    args = parser.parse_args(["export-trades", "--journal", str(path), "--out", str(tmp_path / "no" / "x.csv")])
    assert args.func(args) == 2
    assert "cannot write the file" in capsys.readouterr().err


def test_snapshot_shows_what_status_needs_while_the_bridge_is_down(path):
    with Journal(path) as journal:
        journal.save_engine_state(ACCOUNT, 5_000, {"version": 1, "account": {"state": 1, "equity": 99_000.0}})
        journal.record_baseline(ACCOUNT, "2026-07-07", day_start_balance=100_000.0, initial_balance=100_000.0,
                                peak_equity=100_100.0, highest_eod_balance=100_000.0)
        journal.record_command(**command(3))
        journal.record_transition(ACCOUNT, 4_000, "REDUCING", "DAILY_LIMIT_NEAR")
        journal.record_position_seen(ACCOUNT, POSITION, managed=False, time_ms=4_500)
        journal.set_halt(True, flatten=True, by="cli", time_ms=4_800)
        journal.record_refusal("520000111", "XAUUSD", 1, "NEWS_BLACKOUT")
        assert journal.accounts() == [ACCOUNT, "520000111"]
    with Journal(path) as journal:
        snap = journal.snapshot(int(ACCOUNT))   # a login as a number is the same account
        assert snap["login"] == ACCOUNT
        assert snap["account"] == {"state": 1, "equity": 99_000.0} and snap["saved_ms"] == 5_000
        assert snap["baseline"]["prague_day"] == "2026-07-07"
        assert [c["command_id"] for c in snap["pending_commands"]] == [3]
        assert snap["last_transition"] == {"time_ms": 4_000, "state": "REDUCING", "reason": "DAILY_LIMIT_NEAR"}
        assert snap["halt"]["halted"] is True
        assert [p["ticket"] for p in snap["open_positions"]] == [POSITION["ticket"]]
        assert journal.snapshot("999")["account"] is None


# --- schema: migrations and files that are not journals -----------------------------------------------------------


def _version_1_file(path: Path) -> None:
    """A journal as mt5bridge wrote it at schema version 1, before baselines kept the highest end-of-day
    balance. MIGRATIONS[0] is that layout: shipped steps are never edited."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None)
    journal_mod.MIGRATIONS[0](db)
    db.execute("PRAGMA user_version = 1")
    db.execute("PRAGMA journal_mode = WAL")
    columns = [r[1] for r in db.execute("PRAGMA table_info(baselines)")]
    assert columns == ["account", "prague_day", "day_start_balance", "initial_balance", "peak_equity"]
    db.execute(
        "INSERT INTO commands (command_id, account, chart, symbol, seq, time_ms, action, side, volume, price, sl, "
        "tp, ticket, reason_code, reason, payload) VALUES (12, ?, 'c', 'EURUSD', 5, 1, 'OPEN', 'BUY', 0.5, 1.1, "
        "1.09, 1.12, 0, 'ENTRY_SIGNAL', 'long', x'7b7d')",
        (ACCOUNT,),
    )
    for day, start in (("2026-07-06", 100_000.0), ("2026-07-07", 101_500.0), ("2026-07-08", 100_800.0)):
        db.execute("INSERT INTO baselines VALUES (?, ?, ?, 100000.0, ?)", (ACCOUNT, day, start, start + 300))
    db.execute("INSERT INTO engine_state VALUES (?, 7, '{\"version\": 1, \"account\": {\"equity\": 1.5}}')",
               (ACCOUNT,))
    db.execute("INSERT INTO halt (halted, flatten, set_by, time_ms) VALUES (1, 0, 'cli', 9)")
    db.close()


def test_an_older_journal_is_migrated_and_keeps_its_data(path):
    _version_1_file(path)
    with Journal(path) as journal:
        assert Journal.SCHEMA_VERSION == 4 and len(journal_mod.MIGRATIONS) == 4
        assert journal._db.execute("PRAGMA user_version").fetchone()[0] == 4
        assert [c["command_id"] for c in journal.pending_commands(ACCOUNT)] == [12]
        assert journal.next_command_id() == 13
        assert journal.load_engine_state(ACCOUNT) == {"version": 1, "account": {"equity": 1.5}}
        assert journal.halt_state()["halted"] is True
        # The new column is filled with what the older rows imply: the highest balance a day started with.
        assert [(b["prague_day"], b["highest_eod_balance"]) for b in journal.baselines(ACCOUNT)] == [
            ("2026-07-06", 100_000.0), ("2026-07-07", 101_500.0), ("2026-07-08", 101_500.0)]
        journal.record_baseline(ACCOUNT, "2026-07-09", day_start_balance=1.0, initial_balance=1.0,
                                peak_equity=1.0, highest_eod_balance=101_500.0)
    with Journal(path) as journal:   # already current: opened as it is
        assert len(journal.baselines(ACCOUNT)) == 4
        # Version 3's table is there and takes what an EA's failsafe did.
        journal.record_failsafe(ACCOUNT, "chart-1", "EURUSD", 5, "EQUITY_GUARD", "closed 2 positions")
        assert [(f["kind"], f["detail"]) for f in journal.failsafes(ACCOUNT)] == [("EQUITY_GUARD", "closed 2 positions")]
        # Version 4 gave the journal an identity once; reopening keeps it.
        identity = journal.journal_id
        assert re.fullmatch(r"[0-9a-f]{32}", identity)
    with Journal(path) as journal:
        assert journal.journal_id == identity


def test_a_failed_migration_leaves_the_file_as_it_was(path, monkeypatch):
    _version_1_file(path)

    def broken(db):
        db.execute("ALTER TABLE baselines ADD COLUMN highest_eod_balance REAL")
        db.execute("SELECT no_such_column FROM baselines")

    monkeypatch.setattr(journal_mod, "MIGRATIONS", (journal_mod.MIGRATIONS[0], broken))
    with pytest.raises(JournalError, match="from schema version 1 to 2: .*the file was left as it was"):
        Journal(path)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    assert "highest_eod_balance" not in [r[1] for r in db.execute("PRAGMA table_info(baselines)")]
    assert db.execute("SELECT count(*) FROM baselines").fetchone()[0] == 3
    db.close()


def test_a_journal_from_a_newer_mt5bridge_is_refused_untouched(path):
    with Journal(path):
        pass
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 5")
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(JournalError) as err:
        Journal(path)
    message = str(err.value)
    assert str(path) in message and "schema version 5" in message and "version 4" in message
    assert "upgrade mt5bridge" in message
    assert path.read_bytes() == before


@pytest.mark.parametrize("content", ["text", "sqlite"])
def test_a_file_that_is_not_a_journal_is_refused(tmp_path, content):
    path = tmp_path / "trades.csv"
    if content == "text":
        path.write_text("time,bid,ask\n2026-07-07 10:00:00,1.08512,1.08519\n" * 50, encoding="utf-8")
    else:
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE quotes (time TEXT, bid REAL)")
        db.commit()
        db.close()
    before = path.read_bytes()
    with pytest.raises(JournalError, match=f"{path} is .*not an mt5bridge journal"):
        Journal(path)
    assert path.read_bytes() == before


def test_paths_that_cannot_be_a_journal(tmp_path):
    with pytest.raises(JournalError, match="is a folder"):
        Journal(tmp_path)
    with pytest.raises(JournalError, match="no journal at"):
        Journal(tmp_path / "missing.sqlite", create=False)
    assert not (tmp_path / "missing.sqlite").exists()
    journal = Journal(tmp_path / "j.sqlite")
    journal.close()
    journal.close()
    with pytest.raises(JournalError, match="is closed"):
        journal.next_command_id()
