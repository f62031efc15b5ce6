"""A recorded day of live trading run again through the bridge's own node and engine, and compared, decision by
decision, with what the bridge sent live (``mt5bridge replay --recorded DAY``, docs/recording.md).

The replay is the live code path: a ``Node`` on a journal of its own, fed the very frames the EAs sent, in the
order the bridge received them (across accounts), with the clocks the bridge read (a command's timeout and a
silent chart are judged on them), its housekeeping at the moments it ran and the operator's halts where they came.
A day is replayed from the start of the bridge session it belongs to (the engine's bars and the account's state
carry over from earlier days), and what was decided on that day is compared: every command, field by field and
byte for byte, the decision's numbers behind it, the HOLDs counted by reason, the trading-state changes.

Identical, or each difference listed with its cause: a configuration, model or version that is not the one
recorded; a gap in the recording (a full disk, a damaged file) or a session whose start is gone; and a difference
that follows an earlier one. A difference with none of those causes is a fault of ours, said as such.
"""

from __future__ import annotations

import datetime as _dt
import heapq
import json
import logging
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mt5bridge.bridge.journal import Journal
from mt5bridge.bridge.node import Node
from mt5bridge.bridge.recorder import (
    ACCOUNT,
    CONTROL,
    END,
    FRAME,
    GAP,
    HOUSEKEEPING,
    SESSION,
    RecordingError,
    day_files,
    model_fingerprint,
    read_records,
    recorded_days,
)
from mt5bridge.config import Config

__all__ = ["compare_day", "Comparison", "RecordingError", "config_differences"]

# Settings that cannot change a decision: where things are, how the bridge is reached, how often it logs.
_NOT_DECIDING = ("recording.", "bridge.endpoint", "bridge.control_endpoint", "bridge.journal", "bridge.curve_",
                 "bridge.allow_insecure_remote", "bridge.log_refusals_every_s", "bridge.control_token_file")
COMMAND_FIELDS = ("command_id", "action", "side", "volume", "price", "sl", "tp", "ticket", "reason_code", "reason",
                  "time_ms", "payload", "result_retcode", "result_filled", "expired_outcome")
DECISION_FIELDS = ("score", "confidence", "risk_money", "worst_case_loss", "headroom", "cap")


@dataclass
class Comparison:
    """What the replay of a recorded day found."""

    day: str
    accounts: list[str]
    sessions: int
    frames: int                      # frames of the day replayed
    commands_live: int
    commands_replayed: int
    differences: list[dict[str, Any]] = field(default_factory=list)
    causes: list[str] = field(default_factory=list)   # what makes every decision suspect: config, model
    notes: list[str] = field(default_factory=list)    # what the recording lacks (gaps, damage), and the like

    @property
    def identical(self) -> bool:
        return not self.differences

    def to_json(self) -> dict[str, Any]:
        return {"day": self.day, "identical": self.identical, "accounts": self.accounts, "sessions": self.sessions,
                "frames": self.frames, "commands_live": self.commands_live,
                "commands_replayed": self.commands_replayed, "causes": self.causes, "notes": self.notes,
                "differences": self.differences}


class _Clocks:
    """The bridge's clocks as recorded: the node reads them instead of the machine's."""

    def __init__(self) -> None:
        self.mono = 0.0
        self.wall_s = 0.0

    def clock(self) -> float:
        return self.mono

    def wall(self) -> float:
        return self.wall_s


@dataclass
class _Session:
    id: str
    started_wall: float
    header: dict[str, Any]
    files: list[Path] = field(default_factory=list)
    first_event: int = 1 << 62


def config_differences(recorded: dict[str, Any], cfg: Config) -> list[str]:
    """The settings that differ between the recorded configuration and ``cfg`` and can change a decision,
    as ``key: recorded → replayed``."""
    now = cfg.model_dump(mode="json", by_alias=True)
    out: list[str] = []

    def walk(a: Any, b: Any, key: str) -> None:
        if key and key.startswith(_NOT_DECIDING):
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b), key=str):
                walk(a.get(k), b.get(k), f"{key}.{k}" if key else str(k))
        elif a != b:
            out.append(f"{key}: {json.dumps(a)} recorded, {json.dumps(b)} replayed")

    walk(recorded, now, "")
    return out


def _day_bounds(day: str) -> tuple[float, float]:
    try:
        d = _dt.date.fromisoformat(day)
    except ValueError:
        raise RecordingError(f"--recorded {day!r}: not a day; give it as YYYY-MM-DD (UTC)") from None
    start = _dt.datetime.combine(d, _dt.time(), _dt.timezone.utc).timestamp()
    return start, start + 86_400.0


def _sessions_of(folder: Path, day: str, problems: list[str]) -> list[_Session]:
    """The bridge sessions with frames on ``day``, each with every file it wrote, from its start on."""
    files = day_files(folder, day)
    if not files:
        days = recorded_days(folder)
        have = (f"recorded days: {days[0]} to {days[-1]} ({len(days)})" if days
                else "there is no recording in it yet")
        raise RecordingError(f"no recording of {day} in {folder}; {have}")
    sessions: dict[str, _Session] = {}
    for path in files:
        for rec in read_records(path, problems):
            if rec.kind == SESSION:
                head = rec.json()
                s = sessions.setdefault(head["session"], _Session(head["session"], head["started_wall"], head))
                if path not in s.files:
                    s.files.append(path)
    # Earlier days' files of those sessions: the engine's bars and the accounts' state carry over from them.
    earliest = min((s.started_wall for s in sessions.values()), default=0.0)
    first_day = _dt.datetime.fromtimestamp(earliest, _dt.timezone.utc).date().isoformat()
    for older in [d for d in recorded_days(folder) if first_day <= d < day]:
        for path in day_files(folder, older):
            for rec in read_records(path):
                if rec.kind == SESSION and rec.json()["session"] in sessions:
                    s = sessions[rec.json()["session"]]
                    if path not in s.files:
                        s.files.append(path)
    if not sessions:
        raise RecordingError(f"the recording of {day} in {folder} holds no session header: its files are damaged "
                             f"({'; '.join(problems) or 'no record reads'})")
    for s in sessions.values():
        s.files.sort(key=lambda p: (p.stem, p.parent.name))
    return sorted(sessions.values(), key=lambda s: s.started_wall)


def _records_of(path: Path, session_id: str, problems: list[str]):
    """The records one file holds of one session (a file holds several when the bridge restarted that day)."""
    current = None
    for rec in read_records(path, problems):
        if rec.kind == SESSION:
            current = rec.json()["session"]
        if current == session_id:
            yield rec


def _merged(session: _Session, problems: list[str]):
    """The session's records from all its files, in the order the bridge made them, each once (a mark is written
    in every account's file under one event number), with the event number before it."""
    last = 0
    for rec in heapq.merge(*(_records_of(p, session.id, problems) for p in session.files), key=lambda r: r.event):
        if rec.event == last:
            continue
        yield rec, last
        last = rec.event


def compare_day(folder: str | Path, day: str, cfg: Config, live_journal: str | Path, *, model: str | None = None,
                news=None, accounts: list[str] | None = None, workdir: str | Path | None = None) -> Comparison:
    """Replay the recording of ``day`` (UTC, YYYY-MM-DD) from ``folder`` with ``cfg`` and compare it with the
    live journal. ``accounts`` limits the comparison (every account is replayed: they share command ids)."""
    folder = Path(folder)
    start_s, end_s = _day_bounds(day)
    problems: list[str] = []
    sessions = _sessions_of(folder, day, problems)
    causes: list[str] = []
    notes: list[str] = []
    first = sessions[0].header
    diffs = config_differences(first.get("config", {}), cfg)
    if diffs:
        causes.append("the configuration is not the one recorded: " + "; ".join(diffs))
    if model is None and first.get("model") and Path(first["model"]).exists():
        model = first["model"]
    if model_fingerprint(model) != first.get("model_sha256"):
        causes.append(f"the model is not the one recorded ({first.get('model') or 'shipped'}, sha256 "
                      f"{str(first.get('model_sha256'))[:12]}; replayed with {model or 'the shipped model'})")
    from mt5bridge import __version__

    if first.get("version") != __version__:
        notes.append(f"recorded by mt5bridge {first.get('version')}, replayed by {__version__}")
    tmp = Path(tempfile.mkdtemp(prefix="mt5bridge-recorded-", dir=workdir))
    try:
        journal = Journal(tmp / "replay.sqlite")
        windows: dict[str, list[int]] = {}
        gaps: list[tuple[int, str]] = []   # (tick time it happened at, words)
        frames = 0
        # The live bridge already logged what the node says of these frames: the replay does not say it again.
        quiet = logging.getLogger("mt5bridge.bridge")
        level = quiet.level
        quiet.setLevel(logging.CRITICAL + 1)
        try:
            for session in sessions:
                frames += _replay_session(session, cfg, journal, model, news, start_s, end_s, windows, gaps,
                                          problems, notes)
        finally:
            quiet.setLevel(level)
            journal.close()
        for p in problems:
            gaps.append((_first_ms(windows), p))
        wanted = sorted(windows) if accounts is None else [a for a in sorted(windows) if a in accounts]
        if accounts and not wanted:
            raise RecordingError(f"--account {', '.join(accounts)}: no ticks of it recorded on {day}; accounts "
                                 f"recorded: {', '.join(sorted(windows)) or 'none'}")
        live = _read_journal(Path(live_journal), wanted, day, windows)
        replayed = _read_journal(tmp / "replay.sqlite", wanted, day, windows)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out = Comparison(day, wanted, len(sessions), frames, len(live["commands"]), len(replayed["commands"]),
                     causes=causes, notes=notes)
    for _, words in gaps:
        if words not in out.notes:
            out.notes.append(words)
    _compare(live, replayed, out, gaps, causes)
    return out


def _first_ms(windows: dict[str, list[int]]) -> int:
    return min((w[0] for w in windows.values()), default=0)


def _replay_session(session: _Session, cfg: Config, journal: Journal, model, news, start_s: float, end_s: float,
                    windows: dict[str, list[int]], gaps: list, problems: list[str], notes: list[str]) -> int:
    head = session.header
    halt = head.get("halt") or {}
    if halt and bool(journal.halt_state()["halted"]) != bool(halt.get("halted")):
        journal.set_halt(bool(halt.get("halted")), flatten=bool(halt.get("flatten")), by=str(halt.get("by", "")),
                         time_ms=int(session.started_wall * 1000))
    clocks = _Clocks()
    node = Node(cfg, journal, model=model, clock=clocks.clock, wall=clocks.wall, news=news)
    if head.get("next_command_id", 0) > node.next_command_id:
        # Ids the live journal had used before the recording began.
        node.next_command_id = head["next_command_id"]
    frames = 0
    tick_ms = 0
    started = False
    for rec, last in _merged(session, problems):
        if not started:
            started = True
            if rec.event != 1:
                gaps.append((0, f"the recording of session {session.id} does not reach back to its start (the "
                             "oldest days were deleted to stay under recording.max_mb, or a file is missing): the "
                             "engine's bars and the account's state before it are not replayed"))
        elif rec.event != last + 1:
            gaps.append((tick_ms, f"{rec.event - last - 1} record(s) of session {session.id} are missing before "
                         f"{_when(rec.wall)} (a file damaged or deleted)"))
        clocks.mono, clocks.wall_s = rec.mono, rec.wall
        if rec.kind == FRAME:
            try:
                node.handle(rec.a, rec.b)
            except Exception as exc:   # the live bridge answered INTERNAL_ERROR and went on: so does the replay
                notes.append(f"the node failed on a frame at {_when(rec.wall)}: {exc}")
            if start_s <= rec.wall < end_s:
                frames += 1
                chart = node.charts.get(rec.a)
                if chart is not None and chart.last_tick_ms > -(1 << 61):
                    w = windows.setdefault(chart.account, [chart.last_tick_ms, chart.last_tick_ms])
                    w[0] = min(w[0], chart.last_tick_ms)
                    w[1] = max(w[1], chart.last_tick_ms)
                    tick_ms = chart.last_tick_ms
        elif rec.kind == HOUSEKEEPING:
            node.housekeeping()
        elif rec.kind == CONTROL:
            c = rec.json()
            node.set_halt(bool(c["halted"]), bool(c["flatten"]), str(c["by"]))
        elif rec.kind == ACCOUNT:
            _seed_account(rec.json(), journal, node, notes)
        elif rec.kind == GAP:
            g = rec.json()
            gaps.append((tick_ms, f"the recording stopped before {_when(rec.wall)} (at least "
                         f"{g.get('records_lost_at_least', 0)} frames not kept: {g.get('why')})"))
        elif rec.kind == END:
            break
        # SESSION: the same session's header in the next file; nothing to do
        if rec.wall >= end_s:
            break   # the day is over: what comes later is not compared
    node.close()
    return frames


def _seed_account(snapshot: dict, journal: Journal, node: Node, notes: list[str]) -> None:
    """The state the live journal gave an account's engine at its first HELLO: the replay's journal is given the
    same, where it does not already hold it (the recording starts after the account's history began)."""
    login, state = snapshot["login"], snapshot.get("engine_state")
    if login in node.accounts or state is None:
        return
    mine = journal.load_engine_state(login)
    if mine is not None and json.dumps(mine, sort_keys=True, default=str) == json.dumps(state, sort_keys=True,
                                                                                         default=str):
        return
    if mine is not None:
        notes.append(f"account {login}: the replay's state at its HELLO differed from the live one; the live one "
                     "is used from there")
    journal.save_engine_state(login, int(state.get("account", {}).get("now_ms", 0) or 0), state)


def _when(wall: float) -> str:
    return _dt.datetime.fromtimestamp(wall, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _read_journal(path: Path, accounts: list[str], day: str, windows: dict[str, list[int]]) -> dict[str, Any]:
    """Commands (with their decisions' numbers), HOLD counts and trading-state changes of the day's windows."""
    if not path.exists():
        raise RecordingError(f"{path}: no such journal (--journal, or bridge.journal in --config)")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        commands: dict[tuple, dict] = {}
        refusals: dict[tuple, int] = {}
        transitions: list[tuple] = []
        for login in accounts:
            lo, hi = windows[login]
            for row in db.execute("SELECT * FROM commands WHERE account = ? AND time_ms BETWEEN ? AND ? "
                                  "ORDER BY command_id", (login, lo, hi)):
                cmd = dict(row)
                decision = db.execute("SELECT * FROM decisions WHERE account = ? AND command_id = ?",
                                      (login, cmd["command_id"])).fetchone()
                for name in DECISION_FIELDS:
                    cmd[name] = decision[name] if decision is not None else None
                commands[(login, cmd["chart"], cmd["seq"])] = cmd
            for row in db.execute("SELECT symbol, reason_code, count FROM refusals WHERE account = ? AND utc_day = ?",
                                  (login, day)):
                refusals[(login, row["symbol"], row["reason_code"])] = row["count"]
            transitions += [(login, r["time_ms"], r["state"], r["reason"]) for r in db.execute(
                "SELECT time_ms, state, reason FROM transitions WHERE account = ? AND time_ms BETWEEN ? AND ? "
                "ORDER BY rowid", (login, lo, hi))]
        return {"commands": commands, "refusals": refusals, "transitions": transitions}
    except sqlite3.DatabaseError as exc:
        raise RecordingError(f"{path}: cannot read the journal: {exc}") from None
    finally:
        db.close()


def _compare(live: dict, replayed: dict, out: Comparison, gaps: list[tuple[int, str]], causes: list[str]) -> None:
    found: list[dict[str, Any]] = []
    for key in sorted(set(live["commands"]) | set(replayed["commands"]),
                      key=lambda k: ((live["commands"].get(k) or replayed["commands"][k])["time_ms"], k)):
        a, b = live["commands"].get(key), replayed["commands"].get(key)
        where = {"account": key[0], "chart": key[1], "seq": key[2], "time_ms": (a or b)["time_ms"]}
        if a is None:
            found.append(dict(where, what=f"replay sent {b['action']} {b['side']} {b['volume']:g} "
                              f"({b['reason_code']}); live held"))
        elif b is None:
            found.append(dict(where, what=f"live sent {a['action']} {a['side']} {a['volume']:g} "
                              f"({a['reason_code']}); the replay held"))
        else:
            fields = {name: {"live": _plain(a[name]), "replay": _plain(b[name])}
                      for name in COMMAND_FIELDS + DECISION_FIELDS if a[name] != b[name]}
            if fields:
                found.append(dict(where, what=f"{a['action']} differs in {', '.join(fields)}", fields=fields))
    for key in sorted(set(live["refusals"]) | set(replayed["refusals"])):
        n_live, n_replay = live["refusals"].get(key, 0), replayed["refusals"].get(key, 0)
        if n_live != n_replay:
            found.append({"account": key[0], "symbol": key[1], "time_ms": None,
                          "what": f"HOLDs for {key[2]}: {n_live} live, {n_replay} replayed"})
    if live["transitions"] != replayed["transitions"]:
        found.append({"account": None, "time_ms": None, "what": "trading-state changes differ",
                      "live": [list(t) for t in live["transitions"]],
                      "replay": [list(t) for t in replayed["transitions"]]})
    first = None
    for diff in found:
        diff["cause"] = _cause(diff, first, gaps, causes)
        if first is None and diff["time_ms"] is not None:
            first = diff
    out.differences = found


def _cause(diff: dict, first: dict | None, gaps: list[tuple[int, str]], causes: list[str]) -> str:
    if causes:
        return causes[0] if len(causes) == 1 else " ; ".join(causes)
    t = diff["time_ms"]
    before = [words for at, words in gaps if t is None or at <= t]
    if before:
        return before[-1]
    if first is not None:
        return (f"follows from the first difference (account {first['account']}, chart {first['chart']}, seq "
                f"{first['seq']}): everything after it was decided on another account")
    if diff["time_ms"] is None:
        return "follows from the decisions above" if first else "unexplained"
    return ("unexplained: the same frames gave another decision; this is a fault of mt5bridge, please report it "
            "with the recording")


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value
