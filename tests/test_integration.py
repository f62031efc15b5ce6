"""A real `mt5bridge serve` process and the simulated terminal over loopback: every tick answered in time,
every command carried out and acknowledged once, the journal agreeing with the broker."""

from __future__ import annotations

import signal
import sqlite3
import subprocess

from conftest import package_process
from desk import always
from mt5bridge.simulator import SimulatedTerminal
from test_bridge import _wait_for, free_port


def test_simulated_terminal_against_a_real_bridge_process(tmp_path):
    ea, control = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    config = tmp_path / "bridge.toml"
    config.write_text(
        f'[bridge]\nendpoint = "{ea}"\ncontrol_endpoint = "{control}"\njournal = "journal.sqlite"\n'
        'deadline_ms = 2000\n'
        '[entry]\nmin_score = 0\nrequire_warm = false\nrequire_h1_ema200_alignment = false\nsessions = []\n'
        'allowed_consensus = ["UNANIMOUS", "STRONG", "WEAK", "SPLIT"]\ncooldown_minutes = 0\n',
        encoding="utf-8")
    cmd, env, cwd = package_process(["serve", "--config", str(config), "--model", always("BUY", tmp_path)], tmp_path)
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(control)
        terminal = SimulatedTerminal(ea, ["EURUSD", "XAUUSD"], days=0.25, warmup_days=1.0, seed=5)
        report = terminal.run(max_ticks=6000)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(20)
    assert code == 0, proc.stderr.read()
    assert report.ticks_sent == 6000
    assert report.holds_by_timeout == 0 and report.late_replies == 0 and not report.errors_by_code
    assert report.duplicate_commands == 0 and report.invalid_replies == 0
    assert report.commands_by_action.get("OPEN", 0) >= 1
    with sqlite3.connect(tmp_path / "journal.sqlite") as db:
        commands = db.execute("select count(*) from commands").fetchone()[0]
        unanswered = db.execute("select count(*) from commands where result_retcode is null"
                                " and expired_time_ms is null").fetchone()[0]
    non_hold = sum(n for action, n in report.commands_by_action.items() if action != "HOLD")
    assert commands == non_hold
    assert unanswered <= 1   # at most the command of the very last tick, its result cut off by the stop
