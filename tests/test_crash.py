"""The bridge killed with SIGKILL at random moments while 20 charts on four accounts trade on the simulator.

One scenario, run once per module (``crash_run``): four simulated terminals (one account each, five charts
each, one thread each) trade against a real ``mt5bridge serve`` process over 127.0.0.1, with a model that always
says BUY, entry filters open and short time exits, so commands flow all the time. The bridge is killed with
SIGKILL at seeded random moments and started again on the same journal and endpoints; the charts find it again
as the EA does (NOT_INTRODUCED or silence, then a new socket and HELLO). Now and then the operator halts or
resumes through the control socket, sometimes just before a kill. After the last start, the terminals trade
on past the command timeout, then stop on a tick answered with HOLD, and the bridge is stopped cleanly.

Each promise is then its own test, judged from the journal file and from the simulated brokers:

- no command id is handed out twice, and every command an EA received was journaled before it was sent;
- no order is executed twice: one opening deal per command id, on the account the command was for;
- no command is left unsettled: each has its RESULT or was settled from the book;
- the baselines of every account's Prague days never change once recorded;
- after every start the operator's halt is the journal's last word, for every account;
- the journal's open positions are the brokers' open positions.

CI runs a few kills (``MT5BRIDGE_CRASH_KILLS``, 8 by default); ``MT5BRIDGE_CRASH_KILLS=200`` is the long run.
``MT5BRIDGE_CRASH_SEED`` repeats a run; every failure names the seed and the folder of the bridge's logs.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from desk import always
from mt5bridge.config import effective_toml
from mt5bridge.bridge.journal import Journal
from mt5bridge.simulator import COMMENT_PREFIX, SimulatedTerminal
from test_bridge import _bridge_process, control_request, signal_config

KILLS = int(os.environ.get("MT5BRIDGE_CRASH_KILLS", "8"))
SEED = int(os.environ.get("MT5BRIDGE_CRASH_SEED", "20261121"))
LOGINS = (1510001, 1510002, 1510003, 1510004)
SYMBOLS = ("EURUSD", "GBPUSD", "USDJPY", "XAUUSD", "US30")
# Twenty minutes before midnight in Prague (23:00 UTC in January): the replay crosses into a new FTMO day while
# the bridge is being killed, so a day's baseline is recorded by one bridge and must survive the next.
START = "2024-01-08T22:40:00Z"
COMMAND_TIMEOUT_MS = 500
DEADLINE_MS = 400
SILENCE_MS = 1000           # WELCOME.failsafe_silence_ms: a chart that hears nothing this long introduces itself again
HELLO_TIMEOUT_MS = 1000
UP_AT_MOST_S = 2.5          # a bridge lives at most this long once every chart is back
DOWN_AT_MOST_S = 0.6        # and stays dead at most this long before it is started again
WAIT_S = 30.0               # the longest any one step of the scenario may take before the test fails
ACTIVE, OPERATOR_HALT = "ACTIVE", "OPERATOR_HALT"


def _control(endpoint: str, cmd: str, **fields) -> dict | None:
    """Every request of this test to the bridge's control socket goes through here, with the token of the
    bridge serving ``endpoint``."""
    return control_request(endpoint, {"cmd": cmd, **fields}, timeout_ms=3000)


@dataclass
class Account:
    """One simulated terminal (an account with five charts) replayed in its own thread."""

    terminal: SimulatedTerminal
    rng: random.Random
    received: list = field(default_factory=list)   # (journal_id, command_id, login, symbol, action, executed)
    error: BaseException | None = None
    settle: threading.Event = field(default_factory=threading.Event)
    settled: bool = False
    stopping: bool = False     # the scenario is over (or failed): the terminal stops without settling
    thread: threading.Thread | None = None
    outage: int = 0            # the bridge's deaths so far, counted by the main thread
    outage_seen: int = 0       # the last one this account's trader acted in
    closed_by_hand: list = field(default_factory=list)

    @property
    def login(self) -> int:
        return self.terminal.login

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name=f"account-{self.login}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.terminal.start()
            quiet_since = None
            while True:
                if self.outage != self.outage_seen:
                    self.outage_seen = self.outage
                    self._trader_acts()
                outcome = self.terminal.step()
                if outcome is None:
                    if self.stopping:
                        return
                    raise AssertionError("the replay's market ran out before the scenario ended: give it more days")
                command = outcome.command
                if command is not None and command.action != "HOLD":
                    chart = self.terminal.charts[outcome.symbol]
                    self.received.append((chart.welcome.journal_id, command.command_id, self.login, command.symbol,
                                          command.action, outcome.execution is not None))
                if not self.settle.is_set():
                    continue
                # Settling: a tick answered with HOLD, then a pause longer than the command timeout, then another
                # HOLD. That tick's positions are the broker's (nothing was carried out since the first), and the
                # bridge settled on it every command of the account whose RESULT never came.
                if command is None or command.action != "HOLD":
                    quiet_since = None
                elif quiet_since is None:
                    quiet_since = time.monotonic()
                    time.sleep(COMMAND_TIMEOUT_MS / 1000.0 * 1.5)
                else:
                    self.settled = True
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which fails the test with it
            self.error = exc
        finally:
            self.terminal.close()

    def _trader_acts(self) -> None:
        """While the bridge is dead the trader sometimes closes one of its positions by hand: the bridge must
        find it gone from the book when it is back."""
        positions = list(self.terminal.broker.positions)
        if positions and self.rng.random() < 0.5:
            ticket = self.rng.choice(positions)
            if self.terminal.manual_close(ticket).done:
                self.closed_by_hand.append(ticket)

    def stop(self) -> None:
        self.stopping = True
        self.terminal.stop()
        if self.thread is not None:
            self.thread.join(WAIT_S)

    def executed_ids(self) -> list[tuple[str, int]]:
        return [(jid, cid) for jid, cid, _, _, _, executed in self.received if executed]


@dataclass
class CrashRun:
    """What the scenario saw, for the tests to judge."""

    seed: int
    folder: Path
    journal: Path
    accounts: list[Account]
    kills: int = 0
    commands_per_run: list[int] = field(default_factory=list)
    baselines_seen: list[dict] = field(default_factory=list)    # the baselines table before each kill and at the end
    operator_checks: list[dict] = field(default_factory=list)   # after every start: what status and the journal said
    final_status: dict = field(default_factory=dict)
    exit_code: int | None = None
    faults: list[str] = field(default_factory=list)             # fault lines in the bridges' logs

    def __repr__(self) -> str:
        return f"CrashRun({self.kills} kills; {self.where()})"

    def where(self) -> str:
        return (f"seed {self.seed} (MT5BRIDGE_CRASH_SEED={self.seed} MT5BRIDGE_CRASH_KILLS={KILLS} repeats it); "
                f"bridge logs in {self.folder}")


# ---- the scenario ------------------------------------------------------------------------------------------------


def _write_config(folder: Path) -> tuple[Path, str, str, Path]:
    cfg = signal_config(
        folder,
        bridge={"deadline_ms": DEADLINE_MS, "heartbeat_ms": 200, "stale_after_ms": 1500,
                "command_timeout_ms": COMMAND_TIMEOUT_MS, "failsafe_silence_ms": SILENCE_MS,
                "max_requests_per_minute": 600},
        # Small positions and a large daily budget, so entries keep coming all day.
        sizing={"base_risk_pct_min": 0.05, "base_risk_pct_max": 0.1, "daily_risk_budget_pct": 20.0,
                "max_positions": 8},
        guards={"internal_daily_dd_pct": 4.5, "internal_weekly_dd_pct": 9.0},
        exits={"time_exit_hours": 0.1, "time_exit_min_r": 0.5},
    )
    path = folder / "bridge.toml"
    path.write_text(effective_toml(cfg), encoding="utf-8")
    return path, cfg.bridge.endpoint, cfg.bridge.control_endpoint, Path(cfg.bridge.journal)


def _drain(proc, log: Path) -> threading.Thread:
    """The bridge's stderr into a file: a pipe nobody reads would block the bridge once full."""

    def copy():
        with log.open("a", encoding="utf-8") as out:
            for line in proc.stderr:
                out.write(line)

    thread = threading.Thread(target=copy, daemon=True)
    thread.start()
    return thread


def _until(what: str, condition, timeout: float = WAIT_S, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        got = condition()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


def _read_journal(path: Path, sql: str, params=()) -> list[tuple]:
    # A second reader on the WAL journal sees what the bridge has committed, without disturbing it.
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as db:
        return db.execute(sql, params).fetchall()


def _baselines(path: Path) -> dict:
    rows = _read_journal(path, "SELECT account, prague_day, day_start_balance, initial_balance FROM baselines")
    return {(a, day): (dsb, initial) for a, day, dsb, initial in rows}


def _last_halt(path: Path) -> bool:
    rows = _read_journal(path, "SELECT halted FROM halt ORDER BY id DESC LIMIT 1")
    return bool(rows[0][0]) if rows else False


def _every_chart_served(control: str, accounts: list[Account]):
    """The status once this bridge serves every chart of every account (each has ticked)."""
    status = _control(control, "status")
    if not status or set(status["accounts"]) != {str(a.login) for a in accounts}:
        return None
    for acct in status["accounts"].values():
        live = [c for c in acct["charts"] if not c["closed"] and c["ticks"] > 0]
        if len(live) < len(SYMBOLS):
            return None
    return status


def _operator_check(run: CrashRun, control: str, status: dict) -> None:
    run.operator_checks.append({
        "start": run.kills, "journal_halted": _last_halt(run.journal), "status_halted": status["halt"]["halted"],
        "accounts": {login: (a["account"]["state"], a["account"]["state_reason"])
                     for login, a in status["accounts"].items()},
    })


def _run_scenario(folder: Path, seed: int) -> CrashRun:
    rng = random.Random(seed)
    config, endpoint, control, journal = _write_config(folder)
    model = always("BUY", folder)
    # Enough market for the whole run: a bridge's life (and death) takes a chart through about ten minutes of it.
    days = 0.2 + KILLS * 0.02
    # The four accounts are on one trade server, which never gives two accounts the same ticket.
    accounts = [Account(SimulatedTerminal(endpoint, list(SYMBOLS), login=login, days=days, seed=seed + i,
                                          warmup_days=1.0, start=START, hello_timeout_ms=HELLO_TIMEOUT_MS,
                                          first_ticket=(i + 1) * 100_000_001),
                        random.Random(seed * 31 + i))
                for i, login in enumerate(LOGINS)]
    run = CrashRun(seed, folder, journal, accounts)
    drains = []
    try:
        _kill_and_start_again(run, config, control, model, rng, drains)
    finally:
        for account in accounts:   # a failed scenario leaves no terminal reconnecting in the background
            account.stop()
        for drain in drains:
            drain.join(10)
    run.baselines_seen.append(_baselines(journal))
    for log in sorted(folder.glob("bridge-*.log")):
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            if " CRITICAL " in line or "Traceback" in line or "INTERNAL_ERROR" in line:
                run.faults.append(f"{log.name}: {line}")
    return run


def _kill_and_start_again(run: CrashRun, config: Path, control: str, model: str, rng: random.Random,
                          drains: list) -> None:
    accounts, journal = run.accounts, run.journal
    halted = False
    for start in range(KILLS + 1):
        with _bridge_process(config, control, "--model", model) as proc:
            drains.append(_drain(proc, run.folder / f"bridge-{start}.log"))
            first_id = (_read_journal(journal, "SELECT max(command_id) FROM commands")[0][0] or 0) if start else 0
            if start == 0:
                for account in accounts:
                    account.start()
            status = _until("every chart to be served",
                            lambda: _fail_on_thread_error(run) or _every_chart_served(control, accounts))
            _operator_check(run, control, status)
            if start == KILLS:
                _finish(run, proc, control)
                break
            # Let commands flow, then the operator's word (sometimes just before the kill), then the kill.
            time.sleep(rng.uniform(0.2, UP_AT_MOST_S))
            if rng.random() < 0.5:
                answer = _control(control, "resume" if halted else "halt", flatten=rng.random() < 0.3,
                                  by="crash test")
                assert answer and answer["ok"], f"the operator's {'resume' if halted else 'halt'}: {answer}"
                halted = answer["halt"]["halted"]
                time.sleep(rng.choice([0.0, rng.uniform(0.0, 0.5)]))
            run.baselines_seen.append(_baselines(journal))
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            run.kills += 1
            for account in accounts:
                account.outage += 1
            last_id = _read_journal(journal, "SELECT max(command_id) FROM commands")[0][0] or 0
            run.commands_per_run.append(last_id - first_id)
        time.sleep(rng.uniform(0.0, DOWN_AT_MOST_S))


def _finish(run: CrashRun, proc, control: str) -> None:
    """After the last start: trade on past the command timeout, settle every terminal, then a clean stop."""
    time.sleep(COMMAND_TIMEOUT_MS / 1000.0 * 3)
    for account in run.accounts:
        account.settle.set()
    for account in run.accounts:
        account.thread.join(WAIT_S)
        assert not account.thread.is_alive(), f"account {account.login} did not settle; {run.where()}"
    _fail_on_thread_error(run)
    time.sleep(0.3)   # the last RESULTs and BYEs on their way
    run.final_status = _control(control, "status")
    proc.send_signal(signal.SIGTERM)
    run.exit_code = proc.wait(20)


def _fail_on_thread_error(run: CrashRun) -> None:
    for account in run.accounts:
        if account.error is not None:
            raise AssertionError(f"account {account.login}: the simulated terminal failed: {account.error!r}; "
                                 f"{run.where()}") from account.error


@pytest.fixture(scope="module")
def crash_run(tmp_path_factory) -> CrashRun:
    folder = tmp_path_factory.mktemp("crash")
    started = time.monotonic()
    run = _run_scenario(folder, SEED)
    commands = _read_journal(run.journal, "SELECT count(*) FROM commands")[0][0]
    expired = dict(_read_journal(run.journal, "SELECT expired_outcome, count(*) FROM commands "
                                              "WHERE expired_outcome IS NOT NULL GROUP BY expired_outcome"))
    reports = [a.terminal.report() for a in run.accounts]
    journaled_deals = set(_read_journal(run.journal, "SELECT account, deal FROM deals"))
    broker_deals = {(str(a.login), d.deal) for a in run.accounts for d in a.terminal.broker.history}
    print(f"\ncrash run: {run.kills} kills in {time.monotonic() - started:.1f} s, {commands} commands "
          f"(per run {run.commands_per_run}), settled without RESULT {expired}, charts introduced again "
          f"{sum(r.reconnects for r in reports)}, positions closed by hand while the bridge was dead "
          f"{sum(len(a.closed_by_hand) for a in run.accounts)}, deals not journaled "
          f"{len(broker_deals - journaled_deals)} of {len(broker_deals)}, ticks {sum(r.ticks_sent for r in reports)}; "
          f"{run.where()}")
    return run


# ---- the promises --------------------------------------------------------------------------------------------


def test_commands_flowed_across_the_kills_and_the_bridge_stopped_cleanly_at_the_end(crash_run):
    run = crash_run
    assert run.kills == KILLS, run.where()
    # Most runs of the bridge handed out commands before they were killed: the kills fell on a trading bridge.
    assert sum(n > 0 for n in run.commands_per_run) >= max(1, KILLS // 2), (run.commands_per_run, run.where())
    assert all(a.settled for a in run.accounts), run.where()
    assert run.exit_code == 0, run.where()


def test_no_command_id_twice_and_every_command_received_was_journaled_first(crash_run):
    run = crash_run
    rows = _read_journal(run.journal, "SELECT command_id, account, symbol, action, payload FROM commands")
    journaled = {cid: (account, symbol, action, json.loads(payload)) for cid, account, symbol, action, payload in rows}
    assert len(journaled) == len(rows), run.where()
    assert all(p["command_id"] == cid for cid, (_, _, _, p) in journaled.items()), run.where()
    # One journal across every restart: one identity in every WELCOME.
    assert len({jid for a in run.accounts for jid, *_ in a.received}) == 1, run.where()
    received = Counter((jid, cid) for a in run.accounts for jid, cid, *_ in a.received)
    twice = {key: n for key, n in received.items() if n > 1}
    assert not twice, f"command ids received more than once: {twice}; {run.where()}"
    assert sum(r.duplicate_commands for r in (a.terminal.report() for a in run.accounts)) == 0, run.where()
    # Write-ahead: whatever reached an EA is in the journal, for that very account, symbol and action, even when
    # the bridge was killed the moment it had sent it.
    for account in run.accounts:
        for jid, cid, login, symbol, action, _ in account.received:
            assert journaled.get(cid, (None,))[:3] == (str(login), symbol, action), (cid, run.where())


def test_no_order_executed_twice_and_none_on_another_account(crash_run):
    run = crash_run
    owner = dict(_read_journal(run.journal, "SELECT command_id, account FROM commands"))
    executed = Counter(key for a in run.accounts for key in a.executed_ids())
    assert all(n == 1 for n in executed.values()), run.where()
    openings: Counter = Counter()
    closings: Counter = Counter()
    for account in run.accounts:
        for deal in account.terminal.broker.history:
            if not deal.comment.startswith(COMMENT_PREFIX):
                continue   # a stop loss or take profit the trade server hit by itself
            cid = int(deal.comment[len(COMMENT_PREFIX):])
            assert owner.get(cid) == str(account.login), (cid, account.login, run.where())
            if deal.entry == "IN":
                openings[cid] += 1
            else:
                closings[(cid, deal.position_id)] += 1
    assert openings, run.where()
    assert {cid: n for cid, n in openings.items() if n > 1} == {}, run.where()
    assert {key: n for key, n in closings.items() if n > 1} == {}, run.where()


def test_no_command_left_unsettled(crash_run):
    run = crash_run
    with Journal(run.journal, create=False) as journal:
        pending = {login: journal.pending_commands(str(login)) for login in LOGINS}
    assert {login: [c["command_id"] for c in p] for login, p in pending.items() if p} == {}, run.where()
    unsettled = _read_journal(run.journal, "SELECT count(*) FROM commands WHERE result_time_ms IS NULL "
                                           "AND expired_time_ms IS NULL")[0][0]
    assert unsettled == 0, run.where()


def test_no_command_stays_in_flight_in_the_engine(crash_run):
    # What the journal settled, the engine of every account counts as settled too: nothing in flight at the end.
    run = crash_run
    in_flight = {login: [(c["command_id"], c["action"], c["filled"], c["ticket"]) for c in a["in_flight"]]
                 for login, a in run.final_status["accounts"].items() if a["in_flight"]}
    assert in_flight == {}, run.where()


def test_day_baselines_never_change_once_recorded(crash_run):
    run = crash_run
    first: dict = {}
    changed = []
    for k, snapshot in enumerate(run.baselines_seen):
        for key, row in snapshot.items():
            if key in first and first[key][1] != row:
                changed.append((key, f"start {first[key][0]}", first[key][1], f"start {k}", row))
            first.setdefault(key, (k, row))
    assert len({day for _, day in first}) >= 1 and {a for a, _ in first} == {str(x) for x in LOGINS}, run.where()
    assert changed == [], run.where()


def test_the_operators_halt_is_the_journals_last_word_after_every_start(crash_run):
    run = crash_run
    wrong = []
    for check in run.operator_checks:
        halted = check["journal_halted"]
        if check["status_halted"] != halted:
            wrong.append(check)
            continue
        for state, reason in check["accounts"].values():
            if (halted and state == ACTIVE) or (not halted and reason == OPERATOR_HALT):
                wrong.append(check)
                break
    assert wrong == [], run.where()


def test_the_journals_open_positions_are_the_brokers(crash_run):
    run = crash_run
    with Journal(run.journal, create=False) as journal:
        for account in run.accounts:
            book = {p["ticket"]: (p["symbol"], p["side"], p["last_volume"], p["last_sl"], p["last_tp"])
                    for p in journal.open_positions(str(account.login))}
            broker = {p.ticket: (p.symbol, p.side, p.volume, p.sl, p.tp)
                      for p in account.terminal.broker.positions.values()}
            assert book == broker, (account.login, run.where())


def test_the_bridge_never_faulted(crash_run):
    run = crash_run
    assert run.faults == [], run.where()
    assert "INTERNAL_ERROR" not in run.final_status["errors"], run.where()
