"""The bridge's journal: one SQLite file holding everything a restart must not forget.

Two promises, both about a bridge that dies without warning (``kill -9``, a crash, a closed console):

- **Write-ahead.** A command is journaled before it is sent: when ``record_command`` returns, the command is
  committed, so after a restart the bridge knows every order it may have put in the market, answers a re-sent
  request with the very same reply, and never reuses a command id. If ``record_command`` raises, the command
  must not be sent.
- **FTMO state survives.** The day's starting balance, the peaks the limits trail, the engine's exported state,
  the trading-state changes and the operator's halt are committed as they happen, so the limits a restarted
  bridge enforces are the ones it enforced before.

The file is in WAL mode with ``synchronous=NORMAL``: a commit reaches the operating system before the call
returns, which is what survives a killed process. (A power cut can lose the last commits before the next
checkpoint; protecting against that would cost an fsync per command.) Readers, such as ``mt5bridge status`` or
``export-trades``, can open the file while the bridge writes to it.

Refusals are the one thing not written as they happen: the engine refuses on nearly every tick, so they are
counted in memory per account, symbol, reason and UTC day, and written every few seconds and on ``flush()`` /
``close()``. A killed bridge loses at most those few seconds of counts.

The schema carries a version (``PRAGMA user_version``) and an application id that marks the file as a journal.
``MIGRATIONS`` is the ordered list of steps; step n takes version n to n + 1, and opening an older file runs the
missing steps in one transaction, so a failed upgrade leaves the file as it was. Steps are history: once shipped
they are never edited, a change is a new step at the end. See docs/journal.md.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from time import monotonic as _monotonic
from typing import Any

import numpy as np

from mt5bridge.bridge.journal_schema import APPLICATION_ID, MIGRATIONS
from mt5bridge.core import settlement

__all__ = ["Journal", "JournalError", "RecordRefused", "APPLICATION_ID", "EXPIRY_OUTCOMES", "MIGRATIONS"]

EXPIRY_OUTCOMES = ("filled_seen", "not_seen")
"""How a command that never got a RESULT was settled against the positions: its position showed up in the book
(``filled_seen``), or it did not (``not_seen``)."""

RESULT_OUTCOMES = ("DONE", "PARTIAL", "PLACED", "REFUSED", "UNKNOWN")
"""What a RESULT can say of a command (the protocol's ``RESULT.outcome``)."""

REFUSAL_FLUSH_S = 5.0
"""Seconds between writes of the refusal counts while refusals keep coming."""

BUSY_TIMEOUT_MS = 5000
"""How long a statement waits for another process's write lock (a status reader, a migration) before failing."""

_DAY_MS = 86_400_000
_FEATURES_DTYPE = np.dtype("<f8")  # stored little-endian whatever the machine, so files move between machines


class JournalError(RuntimeError):
    """The journal cannot be opened, or refused a record; the message names the file and what to do."""


class RecordRefused(JournalError):
    """The journal refused the record itself (a command id it already holds, a row that breaks a constraint),
    as opposed to failing to write it: trying again later would not help."""


# --- the journal ---------------------------------------------------------------------------------------------


class Journal:
    """The bridge's journal in one SQLite file; see the module documentation for what it promises."""

    SCHEMA_VERSION: int = len(MIGRATIONS)

    def __init__(self, path: str | Path, *, create: bool = True, refusal_flush_s: float = REFUSAL_FLUSH_S) -> None:
        """Open the journal at ``path``, creating it (and its folders) unless ``create`` is False, and bring an
        older schema up to date. Raises JournalError for a file that is not a journal, a journal written by a
        newer mt5bridge, or a file that cannot be opened."""
        self.path = Path(path)
        self.refusal_flush_s = float(refusal_flush_s)
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        self._refusals: dict[tuple[str, str, str, int], list[int]] = {}
        self._refusals_due = _monotonic() + self.refusal_flush_s
        # (account, ticket) -> (volume, sl, tp) as last written, so a position reported on every tick costs a
        # dictionary look-up, and SQL only when it first appears or changes.
        self._positions: dict[tuple[str, int], tuple[float, float, float]] = {}

        if self.path.is_dir():
            raise JournalError(f"{self.path} is a folder: give the path of the journal file, e.g. journal.sqlite")
        if not create and not self.path.exists():
            raise JournalError(f"no journal at {self.path}: give the path the bridge was started with")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(
                str(self.path), isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
            )
        except (OSError, sqlite3.Error) as exc:
            raise JournalError(f"cannot open the journal {self.path}: {exc}") from exc
        try:
            self._open(db)
        except BaseException:
            db.close()
            raise
        db.row_factory = sqlite3.Row
        self._db = db
        self.journal_id: str = self._read("SELECT journal_id FROM identity")[0][0]
        """Made when the journal was created, never changed: command ids are unique within one journal."""
        self._file_id = _file_id(self.path)

    # --- is it still there, and does it write? ---------------------------------------------------------------

    def probe(self) -> None:
        """Write something and commit it, or raise JournalError saying why not (a read-only file or folder, a
        full disk, an I/O error): the bridge checks this before it serves, and while the journal is failing, to
        learn when it writes again."""
        with self._lock:
            db = self._conn()
            try:
                db.execute("BEGIN IMMEDIATE")
                db.execute("UPDATE identity SET created_ms = created_ms")
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if db.in_transaction:
                    try:
                        db.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                raise JournalError(f"journal {self.path}: cannot write: {exc}") from exc

    def file_problem(self) -> str | None:
        """None while the journal's file is the one this journal opened; else what happened to it ("deleted",
        "replaced by another file"). SQLite writes on into a file deleted under it, so without this check a
        journal deleted by hand would be lost at the next restart, and its command ids handed out again."""
        now = _file_id(self.path)
        if now == self._file_id:
            return None
        return "deleted" if now is None else "replaced by another file"

    def restore_file(self) -> None:
        """Write the journal, as this process holds it, back to its path after its file was deleted (its folder
        too, if that went): everything it held is kept, its identity and command ids included, and this journal
        goes on in the new file. Refuses when another file took the path (it is never overwritten). Raises
        JournalError when it cannot (a full disk): the bridge tries again later."""
        with self._lock:
            db = self._conn()
            if _file_id(self.path) is not None:
                raise JournalError(f"journal {self.path}: another file is at its path; it is left untouched: "
                                   "move it away, or restart the bridge to use it")
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fresh = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False,
                                        timeout=BUSY_TIMEOUT_MS / 1000)
            except (OSError, sqlite3.Error) as exc:
                raise JournalError(f"journal {self.path}: cannot write it back: {exc}") from exc
            try:
                db.backup(fresh)
                self._open(fresh)
                if fresh.execute("SELECT journal_id FROM identity").fetchone()[0] != self.journal_id:
                    raise JournalError(f"journal {self.path}: the copy written back has another identity")
            except (sqlite3.Error, JournalError) as exc:
                fresh.close()
                for leftover in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")):
                    try:
                        leftover.unlink()
                    except OSError:
                        pass
                if isinstance(exc, JournalError):
                    raise
                raise JournalError(f"journal {self.path}: cannot write it back: {exc}") from exc
            fresh.row_factory = sqlite3.Row
            db.close()
            self._db = fresh
            self._file_id = _file_id(self.path)

    def _open(self, db: sqlite3.Connection) -> None:
        version = self._check_identity(db)
        # The journal mode lives in the file: set once it is known to be ours, never on someone else's file.
        try:
            mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        except sqlite3.Error as exc:
            raise JournalError(f"cannot open the journal {self.path}: {exc}") from exc
        if str(mode).lower() != "wal":
            raise JournalError(
                f"cannot put the journal {self.path} in WAL mode (SQLite answered {mode!r}); keep it on a local "
                "disk, not a network share"
            )
        if version < self.SCHEMA_VERSION:
            self._migrate(db)

    def _check_identity(self, db: sqlite3.Connection) -> int:
        """The file's schema version, after making sure the file is a journal this code can read."""
        try:
            app_id = db.execute("PRAGMA application_id").fetchone()[0]
            version = db.execute("PRAGMA user_version").fetchone()[0]
            objects = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        except sqlite3.OperationalError as exc:
            # The file may well be a journal: it is the disk or the permissions that fail (a WAL journal needs
            # to write beside the file even to be read).
            raise JournalError(
                f"cannot open the journal {self.path}: {exc}: is the disk full, or the file or its folder not "
                "writable?"
            ) from exc
        except sqlite3.DatabaseError as exc:
            raise JournalError(
                f"{self.path} is not an mt5bridge journal (SQLite: {exc}); give the journal's path, or a new file "
                "name to start one"
            ) from exc
        if app_id != APPLICATION_ID and (app_id != 0 or version != 0 or objects != 0):
            raise JournalError(
                f"{self.path} is an SQLite database but not an mt5bridge journal (application id {app_id:#x}, "
                f"{objects} schema objects); give the journal's path, or a new file name to start one"
            )
        self._refuse_newer(version)
        return version

    def _refuse_newer(self, version: int) -> None:
        if version > self.SCHEMA_VERSION:
            from mt5bridge import __version__

            raise JournalError(
                f"the journal {self.path} has schema version {version}, newer than version {self.SCHEMA_VERSION} "
                f"that mt5bridge {__version__} knows: upgrade mt5bridge (pip install --upgrade mt5bridge) to "
                "open it; the file was not changed"
            )

    def _migrate(self, db: sqlite3.Connection) -> None:
        try:
            # IMMEDIATE takes the write lock first, so two processes opening an old file do not both upgrade it.
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise JournalError(f"cannot upgrade the journal {self.path}: {exc}") from exc
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            self._refuse_newer(version)
            for step in range(version, self.SCHEMA_VERSION):
                try:
                    MIGRATIONS[step](db)
                except sqlite3.Error as exc:
                    raise JournalError(
                        f"cannot upgrade the journal {self.path} from schema version {step} to {step + 1}: {exc}; "
                        "the file was left as it was"
                    ) from exc
                db.execute(f"PRAGMA user_version = {step + 1}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    # --- housekeeping ----------------------------------------------------------------------------------------

    def close(self) -> None:
        """Write the refusal counts still in memory, then close the file. Closing twice is harmless."""
        if self._db is None:
            return
        try:
            self.flush()
        finally:
            with self._lock:
                if self._db is not None:
                    self._db.close()
                    self._db = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r}{'' if self._db is not None else ', closed'})"

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise JournalError(f"the journal {self.path} is closed")
        return self._db

    def _write(self, what: str, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        """One statement, committed when it returns (autocommit: each statement is its own transaction)."""
        with self._lock:
            db = self._conn()
            try:
                return db.execute(sql, tuple(params))
            except sqlite3.Error as exc:
                raise JournalError(f"journal {self.path}: cannot {what}: {exc}") from exc

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            db = self._conn()
            try:
                return db.execute(sql, tuple(params)).fetchall()
            except sqlite3.Error as exc:
                raise JournalError(f"journal {self.path}: cannot read: {exc}") from exc

    # --- commands --------------------------------------------------------------------------------------------

    def next_command_id(self) -> int:
        """1 + the highest command id ever journaled: ids are never reused, across restarts too."""
        rows = self._read(
            "SELECT (SELECT seq FROM sqlite_sequence WHERE name = 'commands'), (SELECT max(command_id) FROM commands)"
        )
        seq, highest = rows[0]
        return max(seq or 0, highest or 0) + 1

    def record_command(
        self, *, command_id: int, account: str, chart: str, symbol: str, seq: int, time_ms: int, action: str,
        side: str, volume: float, price: float, sl: float, tp: float, ticket: int, reason_code: str, reason: str,
        payload: bytes,
    ) -> None:
        """Journal a command before it is sent; it is committed when this returns. A command id already
        journaled raises JournalError: sending it would be a second order under the same id."""
        cid = _int("command_id", command_id)
        if cid <= 0:
            raise JournalError(f"command_id {cid}: must be > 0 (a HOLD is not journaled)")
        if not isinstance(payload, (bytes, bytearray, memoryview)):
            raise JournalError(f"command {cid}: payload must be the bytes sent, got {type(payload).__name__}")
        row = (
            cid, _account(account), _text("chart", chart), _text("symbol", symbol), _int("seq", seq),
            _int("time_ms", time_ms), _text("action", action), _text("side", side, empty=True),
            _num("volume", volume), _num("price", price), _num("sl", sl), _num("tp", tp), _int("ticket", ticket),
            _text("reason_code", reason_code), _text("reason", reason, empty=True), bytes(payload),
        )
        try:
            self._write(
                f"journal command {cid}",
                "INSERT INTO commands (command_id, account, chart, symbol, seq, time_ms, action, side, volume, "
                "price, sl, tp, ticket, reason_code, reason, payload) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                row,
            )
        except JournalError as exc:
            if isinstance(exc.__cause__, sqlite3.IntegrityError):
                old = self.command(cid)
                if old is not None:
                    raise RecordRefused(
                        f"command {cid} is already journaled ({old['action']} {old['symbol']} for account "
                        f"{old['account']}, chart {old['chart']} seq {old['seq']}); ids are never reused: take "
                        "next_command_id()"
                    ) from None
            raise

    def command(self, command_id: int) -> dict | None:
        """Every column of one command, or None when it was never journaled."""
        rows = self._read("SELECT * FROM commands WHERE command_id = ?", (_int("command_id", command_id),))
        return _command_dict(rows[0]) if rows else None

    def command_account(self, command_id: int) -> str | None:
        """The account a command was issued for; None when it was never journaled."""
        rows = self._read("SELECT account FROM commands WHERE command_id = ?", (_int("command_id", command_id),))
        return rows[0][0] if rows else None

    def forget_account(self, account: str) -> None:
        """Drop what this process caches of an account the bridge no longer serves (its rows stay)."""
        with self._lock:
            for key in [k for k in self._positions if k[0] == account]:
                del self._positions[key]

    def reply_for(self, chart: str, seq: int) -> bytes | None:
        """The payload sent in reply to the request ``seq`` of ``chart``, to answer a re-send of it with the
        same reply; None when no command answered it. A chart's seq starts again after a HELLO, so when the same
        (chart, seq) was answered in more than one session the newest reply is returned: ask only for a re-send
        of the chart's latest request."""
        rows = self._read(
            "SELECT payload FROM commands WHERE chart = ? AND seq = ? ORDER BY command_id DESC LIMIT 1",
            (str(chart), _int("seq", seq)),
        )
        return bytes(rows[0][0]) if rows else None

    def record_result(
        self, *, command_id: int, retcode: int, ticket: int, price: float, volume: float, text: str, time_ms: int,
        filled: bool, outcome: str | None = None, sl: float = 0.0, tp: float = 0.0,
    ) -> str:
        """Record the EA's RESULT for a command: ``"recorded"``; ``"duplicate"`` when the command already has
        one (nothing changes: the first result stands); ``"unknown"`` when no such command was journaled. A late
        result for a command already settled without one is still recorded.

        An ``outcome`` of ``"UNKNOWN"`` (a timeout or lost connection: the order may still be filled) or
        ``"PLACED"`` (an order the server holds, not yet filled) is recorded but leaves the command pending: it
        counts against every limit until it is settled with ``expire_command``. A later definite result for it
        replaces it."""
        cid = _int("command_id", command_id)
        if outcome is not None and outcome not in RESULT_OUTCOMES:
            raise JournalError(f"command {cid}: outcome {outcome!r} is not one of {', '.join(RESULT_OUTCOMES)}")
        params = (
            _int("retcode", retcode), _int("ticket", ticket), _num("price", price), _num("volume", volume),
            "" if text is None else str(text), _int("time_ms", time_ms), 1 if filled else 0, outcome,
            _num("sl", sl), _num("tp", tp), cid,
        )
        with self._lock:
            cur = self._write(
                f"record the result of command {cid}",
                "UPDATE commands SET result_retcode = ?, result_ticket = ?, result_price = ?, result_volume = ?, "
                "result_text = ?, result_time_ms = ?, result_filled = ?, result_outcome = ?, result_sl = ?, "
                "result_tp = ? WHERE command_id = ? AND (result_time_ms IS NULL OR result_outcome IN ('UNKNOWN', 'PLACED'))",
                params,
            )
            if cur.rowcount == 1:
                return "recorded"
            exists = self._read("SELECT 1 FROM commands WHERE command_id = ?", (cid,))
        return "duplicate" if exists else "unknown"

    def pending_commands(self, account: str) -> list[dict]:
        """The account's commands journaled (so perhaps sent) with neither a RESULT nor a settlement: they count
        against every limit as if filled. Oldest first, every column."""
        rows = self._read(
            "SELECT * FROM commands WHERE account = ? AND (result_time_ms IS NULL OR result_outcome IN ('UNKNOWN', 'PLACED')) "
            "AND expired_time_ms IS NULL ORDER BY command_id",
            (_account(account),),
        )
        return [_command_dict(r) for r in rows]

    def expire_command(self, command_id: int, time_ms: int, outcome: str) -> None:
        """Settle a command whose RESULT never came, after checking the positions: ``"filled_seen"`` (its
        position is in the book) or ``"not_seen"``. It leaves the pending commands. A command that has a result
        or was settled already keeps what it has."""
        cid = _int("command_id", command_id)
        if outcome not in EXPIRY_OUTCOMES:
            raise JournalError(f"command {cid}: outcome {outcome!r} is not one of {', '.join(EXPIRY_OUTCOMES)}")
        with self._lock:
            cur = self._write(
                f"settle command {cid}",
                "UPDATE commands SET expired_time_ms = ?, expired_outcome = ? "
                "WHERE command_id = ? AND (result_time_ms IS NULL OR result_outcome IN ('UNKNOWN', 'PLACED')) "
                "AND expired_time_ms IS NULL",
                (_int("time_ms", time_ms), outcome, cid),
            )
            if cur.rowcount == 0 and not self._read("SELECT 1 FROM commands WHERE command_id = ?", (cid,)):
                raise JournalError(f"command {cid} was never journaled: nothing to settle")

    # --- what happened on the account ------------------------------------------------------------------------

    def record_deal(self, account: str, deal: dict) -> bool:
        """Record a DEAL; False when this deal of this account is already journaled (the EA re-sends)."""
        d = _require("deal", deal, _DEAL_KEYS)
        row = (
            _account(account), _int("deal", d["deal"]), _int("order", d["order"]),
            _int("position_id", d["position_id"]),
            _text("symbol", d["symbol"]), _text("side", d["side"]), _text("entry", d["entry"]),
            _text("reason", d["reason"]), _num("volume", d["volume"]), _num("price", d["price"]),
            _num("profit", d["profit"]), _num("swap", d["swap"]), _num("commission", d["commission"]),
            _int("magic", d["magic"]), _int("time_msc", d["time_msc"]), _free(d["comment"]),
        )
        cur = self._write(
            f"record deal {row[1]}",
            'INSERT OR IGNORE INTO deals (account, deal, "order", position_id, symbol, side, entry, reason, volume, '
            "price, profit, swap, commission, magic, time_msc, comment) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            row,
        )
        return cur.rowcount == 1

    def position_deals(self, account: str, position_id: int) -> list[dict]:
        """The deals of one position of the account, in the order they happened."""
        rows = self._read("SELECT * FROM deals WHERE account = ? AND position_id = ? ORDER BY time_msc, deal",
                          (_account(account), _int("position_id", position_id)))
        return [dict(r) for r in rows]

    def has_deal_commented(self, account: str, comment: str) -> bool:
        """Whether a deal of the account carries ``comment`` (a command's ``mt5b:<id>``)."""
        return bool(self._read("SELECT 1 FROM deals WHERE account = ? AND comment = ? LIMIT 1",
                               (_account(account), str(comment))))

    def decision_risk(self, command_id: int) -> float:
        """The money a command put at risk when it was decided (0 when unknown)."""
        rows = self._read("SELECT risk_money FROM decisions WHERE command_id = ? LIMIT 1",
                          (_int("command_id", command_id),))
        return float(rows[0][0]) if rows and rows[0][0] is not None else 0.0

    def deals(self, account: str) -> list[dict]:
        """The account's deals, in the order they happened."""
        rows = self._read("SELECT * FROM deals WHERE account = ? ORDER BY time_msc, deal", (_account(account),))
        return [dict(r) for r in rows]

    def record_decision(self, account: str, symbol: str, time_ms: int, decision: dict) -> None:
        """Record a decision that did something (the engine's ``decision`` dict). HOLDs are counted with
        ``record_refusal`` instead: there is one on nearly every tick."""
        d = _require("decision", decision, _DECISION_KEYS)
        if d["action"] == "HOLD":
            raise JournalError(
                f"decision for {symbol} at {time_ms}: a HOLD is counted with record_refusal, not journaled alone"
            )
        row = (
            _account(account), _text("symbol", symbol), _int("time_ms", time_ms), _text("action", d["action"]),
            _text("side", d["side"], empty=True), _num("volume", d["volume"]), _num("price", d["price"]),
            _num("sl", d["sl"]), _num("tp", d["tp"]), _int("ticket", d["ticket"]),
            _int("command_id", d["command_id"]), _text("reason_code", d["reason_code"]),
            _text("reason", d["reason"], empty=True), _text("cap", d["cap"], empty=True),
            _num("score", d["score"], finite=False), _num("confidence", d["confidence"], finite=False),
            _num("risk_money", d["risk_money"], finite=False),
            _num("worst_case_loss", d["worst_case_loss"], finite=False),
            _num("headroom", d["headroom"], finite=False),
        )
        self._write(
            f"record the decision for {symbol}",
            "INSERT INTO decisions (account, symbol, time_ms, action, side, volume, price, sl, tp, ticket, "
            "command_id, reason_code, reason, cap, score, confidence, risk_money, worst_case_loss, headroom) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            row,
        )

    def decisions(self, account: str) -> list[dict]:
        """The account's non-HOLD decisions, oldest first."""
        rows = self._read("SELECT * FROM decisions WHERE account = ? ORDER BY id", (_account(account),))
        return [dict(r) for r in rows]

    def record_refusal(self, account: str, symbol: str, time_ms: int, reason_code: str, count: int = 1,
                       last_ms: int | None = None) -> None:
        """Count a refusal (a HOLD with its reason) at ``time_ms``, or ``count`` of them from ``time_ms`` to
        ``last_ms`` within one UTC day. It only updates a count in memory; the counts are written every
        ``refusal_flush_s`` seconds and on ``flush()``. Call it from one thread."""
        day = time_ms // _DAY_MS
        if last_ms is None:
            last_ms = time_ms
        elif last_ms // _DAY_MS != day or last_ms < time_ms or count < 1:
            raise JournalError(f"refusals of {symbol}: {count} from {time_ms} to {last_ms} are not one run "
                               "within one UTC day")
        key = (account, symbol, reason_code, day)
        entry = self._refusals.get(key)
        if entry is None:
            self._refusals[key] = [count, time_ms, last_ms]
        else:
            entry[0] += count
            # Charts report in their own rhythm, so times may arrive slightly out of order across calls.
            if time_ms < entry[1]:
                entry[1] = time_ms
            if last_ms > entry[2]:
                entry[2] = last_ms
        if _monotonic() >= self._refusals_due:
            self.flush()

    def flush(self) -> None:
        """Write the refusal counts held in memory (added to what the journal has for the same day)."""
        with self._lock:
            self._refusals_due = _monotonic() + self.refusal_flush_s
            if not self._refusals:
                return
            pending, self._refusals = self._refusals, {}
            rows = [
                (str(acc), str(sym), str(code), _utc_day(int(day)), n, int(first), int(last))
                for (acc, sym, code, day), (n, first, last) in pending.items()
            ]
            db = self._conn()
            try:
                db.execute("BEGIN")
                db.executemany(
                    "INSERT INTO refusals (account, symbol, reason_code, utc_day, count, first_time_ms, "
                    "last_time_ms) VALUES (?,?,?,?,?,?,?) ON CONFLICT (account, symbol, reason_code, utc_day) "
                    "DO UPDATE SET count = count + excluded.count, "
                    "first_time_ms = min(first_time_ms, excluded.first_time_ms), "
                    "last_time_ms = max(last_time_ms, excluded.last_time_ms)",
                    rows,
                )
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                # Keep the counts for the next attempt rather than lose them.
                for key, (n, first, last) in pending.items():
                    entry = self._refusals.setdefault(key, [0, first, last])
                    entry[0] += n
                    entry[1], entry[2] = min(entry[1], first), max(entry[2], last)
                raise JournalError(f"journal {self.path}: cannot write the refusal counts: {exc}") from exc

    def refusals(self, account: str) -> list[dict]:
        """The account's refusal counts as written (call ``flush()`` first for the latest), by day."""
        rows = self._read(
            "SELECT * FROM refusals WHERE account = ? ORDER BY utc_day, symbol, reason_code", (_account(account),)
        )
        return [dict(r) for r in rows]

    def record_transition(self, account: str, time_ms: int, state: str, reason: str) -> None:
        """Record a change of the account's trading state (ACTIVE, REDUCING, HALTED) and why."""
        self._write(
            "record a trading-state change",
            "INSERT INTO transitions (account, time_ms, state, reason) VALUES (?,?,?,?)",
            (_account(account), _int("time_ms", time_ms), _text("state", state), _text("reason", reason, empty=True)),
        )

    def record_failsafe(self, account: str, chart: str, symbol: str, time_ms: int, kind: str, detail: str) -> None:
        """Record something an EA's own failsafe did (stopped opening, closed at its equity floor, ...)."""
        self._write(
            "record an EA failsafe",
            "INSERT INTO failsafes (account, chart, symbol, time_ms, kind, detail) VALUES (?,?,?,?,?,?)",
            (_account(account), _text("chart", chart), _text("symbol", symbol), _int("time_ms", time_ms),
             _text("kind", kind), _text("detail", detail, empty=True)),
        )

    def failsafes(self, account: str) -> list[dict]:
        rows = self._read("SELECT * FROM failsafes WHERE account = ? ORDER BY id", (_account(account),))
        return [dict(r) for r in rows]

    def transitions(self, account: str) -> list[dict]:
        rows = self._read("SELECT * FROM transitions WHERE account = ? ORDER BY id", (_account(account),))
        return [dict(r) for r in rows]

    # --- state a restart needs -------------------------------------------------------------------------------

    def save_engine_state(self, account: str, time_ms: int, state: dict) -> None:
        """Replace the account's saved engine state (the decision engine's ``export_state()``)."""
        if not isinstance(state, dict):
            raise JournalError(f"engine state of account {account}: expected a dict, got {type(state).__name__}")
        try:
            # allow_nan: a float the engine holds (an infinite distance, a NaN score) comes back as it went in.
            text = json.dumps(state, separators=(",", ":"), allow_nan=True, default=_plain)
        except (TypeError, ValueError) as exc:
            raise JournalError(f"engine state of account {account} cannot be saved: {exc}") from exc
        self._write(
            f"save the engine state of account {account}",
            "INSERT INTO engine_state (account, time_ms, state) VALUES (?,?,?) "
            "ON CONFLICT (account) DO UPDATE SET time_ms = excluded.time_ms, state = excluded.state",
            (_account(account), _int("time_ms", time_ms), text),
        )

    def load_engine_state(self, account: str) -> dict | None:
        """The account's last saved engine state, or None when none was saved."""
        rows = self._read("SELECT state FROM engine_state WHERE account = ?", (_account(account),))
        return json.loads(rows[0][0]) if rows else None

    def engine_state_time(self, account: str) -> int | None:
        """When (tick time, ms) the account's engine state was last saved; None when never."""
        rows = self._read("SELECT time_ms FROM engine_state WHERE account = ?", (_account(account),))
        return rows[0][0] if rows else None

    def record_baseline(
        self, account: str, prague_day: str, *, day_start_balance: float, initial_balance: float,
        peak_equity: float, highest_eod_balance: float,
    ) -> None:
        """Record (or update) what the account's FTMO limits are measured from on a Prague day (YYYY-MM-DD)."""
        try:
            day = _dt.date.fromisoformat(str(prague_day)).isoformat()
        except ValueError:
            raise JournalError(f"baseline of account {account}: prague_day {prague_day!r} is not YYYY-MM-DD") from None
        self._write(
            f"record the {day} baseline of account {account}",
            "INSERT INTO baselines (account, prague_day, day_start_balance, initial_balance, peak_equity, "
            "highest_eod_balance) VALUES (?,?,?,?,?,?) ON CONFLICT (account, prague_day) DO UPDATE SET "
            "day_start_balance = excluded.day_start_balance, initial_balance = excluded.initial_balance, "
            "peak_equity = excluded.peak_equity, highest_eod_balance = excluded.highest_eod_balance",
            (
                _account(account), day, _num("day_start_balance", day_start_balance),
                _num("initial_balance", initial_balance), _num("peak_equity", peak_equity),
                _num("highest_eod_balance", highest_eod_balance),
            ),
        )

    def latest_baseline(self, account: str) -> dict | None:
        """The account's baseline of its latest Prague day, or None."""
        rows = self._read(
            "SELECT * FROM baselines WHERE account = ? ORDER BY prague_day DESC LIMIT 1", (_account(account),)
        )
        return dict(rows[0]) if rows else None

    def baselines(self, account: str) -> list[dict]:
        rows = self._read("SELECT * FROM baselines WHERE account = ? ORDER BY prague_day", (_account(account),))
        return [dict(r) for r in rows]

    def set_halt(self, halted: bool, *, flatten: bool, by: str, time_ms: int) -> None:
        """Halt (or resume) trading on the operator's word; a halted bridge stays halted after a restart."""
        self._write(
            "record the halt" if halted else "record the resume",
            "INSERT INTO halt (halted, flatten, set_by, time_ms) VALUES (?,?,?,?)",
            (1 if halted else 0, 1 if flatten else 0, _text("by", by), _int("time_ms", time_ms)),
        )

    def halt_state(self) -> dict:
        """The operator's halt in force: ``{"halted", "flatten", "by", "time_ms", "record"}``; not halted when
        never set. ``record`` numbers the operator's decisions (0: none yet), so a saved engine state can tell
        whether it has seen the latest one."""
        rows = self._read("SELECT halted, flatten, set_by, time_ms, id FROM halt ORDER BY id DESC LIMIT 1")
        if not rows:
            return {"halted": False, "flatten": False, "by": "", "time_ms": 0, "record": 0}
        halted, flatten, by, time_ms, record = rows[0]
        return {"halted": bool(halted), "flatten": bool(flatten), "by": by, "time_ms": time_ms, "record": record}

    # --- positions and trades --------------------------------------------------------------------------------

    def record_position_seen(self, account: str, position: dict, *, managed: bool, time_ms: int) -> bool:
        """Note a position of the book (a TICK's ``positions`` entry). True the first time the position is seen;
        ``managed`` False marks one the trader opened by hand (or another EA did). Later calls cost a look-up,
        and write only when its volume, stop loss or take profit changed."""
        try:
            # The common case, the same position as on the last tick, before any checking.
            if self._positions.get((account, position["ticket"])) == (position["volume"], position["sl"],
                                                                       position["tp"]):
                return False
        except (KeyError, TypeError):
            pass
        acc = _account(account)
        p = _require("position", position, _POSITION_KEYS)
        ticket = _int("ticket", p["ticket"])
        now = (_num("volume", p["volume"]), _num("sl", p["sl"]), _num("tp", p["tp"]))
        key = (acc, ticket)
        known = self._positions.get(key)
        if known == now:
            return False
        with self._lock:
            if known is None:
                cur = self._write(
                    f"record position {ticket}",
                    "INSERT OR IGNORE INTO positions_seen (account, ticket, symbol, side, volume, open_price, sl, "
                    "tp, profit, swap, commission, magic, open_time_msc, comment, managed, first_seen_ms, "
                    "last_seen_ms, last_volume, last_sl, last_tp, last_profit) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        acc, ticket, _text("symbol", p["symbol"]), _text("side", p["side"]), now[0],
                        _num("open_price", p["open_price"]), now[1], now[2], _num("profit", p["profit"]),
                        _num("swap", p["swap"]), _num("commission", p["commission"]), _int("magic", p["magic"]),
                        _int("open_time_msc", p["open_time_msc"]), _free(p["comment"]), 1 if managed else 0,
                        _int("time_ms", time_ms), time_ms, now[0], now[1], now[2], _num("profit", p["profit"]),
                    ),
                )
                if cur.rowcount == 1:
                    self._positions[key] = now
                    return True
                # Seen before a restart: compare with what was written then.
                rows = self._read(
                    "SELECT last_volume, last_sl, last_tp FROM positions_seen "
                    "WHERE account = ? AND ticket = ? AND gone_ms IS NULL",
                    key,
                )
                if rows and tuple(rows[0]) == now:
                    self._positions[key] = now
                    return False
            # In the book, so open: also undoes a reconcile_positions() that was given an incomplete book.
            self._write(
                f"update position {ticket}",
                "UPDATE positions_seen SET last_seen_ms = ?, last_volume = ?, last_sl = ?, last_tp = ?, "
                "last_profit = ?, gone_ms = NULL WHERE account = ? AND ticket = ?",
                (_int("time_ms", time_ms), *now, _num("profit", p["profit"]), acc, ticket),
            )
            self._positions[key] = now
        return False

    def reconcile_positions(self, account: str, open_tickets: Iterable[int], *, time_ms: int) -> list[int]:
        """Mark as gone every position the journal holds open for the account that is not in ``open_tickets``
        (the book as the terminal reports it now), e.g. positions closed while the bridge was down. Returns
        their tickets."""
        acc = _account(account)
        still_open = {_int("ticket", t) for t in open_tickets}
        with self._lock:
            rows = self._read(
                "SELECT ticket FROM positions_seen WHERE account = ? AND gone_ms IS NULL ORDER BY ticket", (acc,)
            )
            gone = [r[0] for r in rows if r[0] not in still_open]
            if gone:
                db = self._conn()
                try:
                    db.execute("BEGIN")
                    db.executemany(
                        "UPDATE positions_seen SET gone_ms = ? WHERE account = ? AND ticket = ?",
                        [(_int("time_ms", time_ms), acc, t) for t in gone],
                    )
                    db.execute("COMMIT")
                except sqlite3.Error as exc:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise JournalError(f"journal {self.path}: cannot mark closed positions: {exc}") from exc
                for t in gone:
                    self._positions.pop((acc, t), None)
        return gone

    def position_seen(self, account: str, ticket: int) -> dict | None:
        """The position as first seen (side, open price and time, magic) and last seen; None when never seen."""
        rows = self._read("SELECT * FROM positions_seen WHERE account = ? AND ticket = ?",
                          (_account(account), _int("ticket", ticket)))
        return dict(rows[0]) if rows else None

    def open_positions(self, account: str) -> list[dict]:
        """Positions of the account as last seen and not known to be closed, oldest first."""
        rows = self._read(
            "SELECT * FROM positions_seen WHERE account = ? AND gone_ms IS NULL ORDER BY open_time_msc, ticket",
            (_account(account),),
        )
        return [_with_bool(dict(r), "managed") for r in rows]

    def record_closed_trade(self, account: str, trade: dict) -> bool:
        """Record a closed trade (an entry of the engine's ``closed_trades``) with its features at entry and at
        exit; False when this account's ticket is already recorded. The position leaves the open positions."""
        from mt5bridge.core.catalog import FEATURE_COUNT

        acc = _account(account)
        t = _require("closed trade", trade, _TRADE_KEYS)
        ticket = _int("ticket", t["ticket"])
        row = (
            acc, ticket, _text("symbol", t["symbol"]), _text("side", t["side"]), _num("volume", t["volume"]),
            _num("open_price", t["open_price"]), _int("open_time_ms", t["open_time_ms"]),
            _int("close_time_ms", t["close_time_ms"]), _num("profit", t["profit"]),
            _num("r_multiple", t["r_multiple"], finite=False), _num("mfe_r", t["mfe_r"], finite=False),
            _num("mae_r", t["mae_r"], finite=False), 1 if t["managed"] else 0, _text("stage", t["stage"]),
            _int("adds", t["adds"]),
            _features(ticket, "features_at_entry", t["features_at_entry"], FEATURE_COUNT),
            _features(ticket, "features_at_exit", t["features_at_exit"], FEATURE_COUNT),
            _num("risk_money", t.get("risk_money", 0.0)), _num("r_dist", t.get("r_dist", 0.0)),
            _num("profit", t["profit"]),
        )
        with self._lock:
            db = self._conn()
            try:
                db.execute("BEGIN")
                cur = db.execute(
                    "INSERT OR IGNORE INTO closed_trades (account, ticket, symbol, side, volume, open_price, "
                    "open_time_ms, close_time_ms, profit, r_multiple, mfe_r, mae_r, managed, stage, adds, "
                    "features_at_entry, features_at_exit, risk_money, r_dist, floating_profit) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    row,
                )
                new = cur.rowcount == 1
                db.execute(
                    "UPDATE positions_seen SET gone_ms = ? WHERE account = ? AND ticket = ? AND gone_ms IS NULL",
                    (row[7], acc, ticket),
                )
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise JournalError(f"journal {self.path}: cannot record closed trade {ticket}: {exc}") from exc
            self._positions.pop((acc, ticket), None)
        return new

    def settle_trade(self, account: str, ticket: int) -> dict | None:
        """Settle a position from the broker's deals (``mt5bridge.core.settlement``): once the deals of ``ticket`` (its
        position id) close all the volume they opened, the account's closed trade of that ticket takes the
        realized money (profit, swap and commission of every deal, partial closes included), the volume really
        traded, the exit price, R from the realized money, MFE and MAE that include the exit fill, and why it
        closed (``settlement.CLOSE_REASONS``).

        Returns ``{"realized", "close_reason", "trade"}`` (``trade`` False while no closed trade of the ticket is
        recorded yet: it is settled when it is), or None while the deals do not close the position."""
        acc = _account(account)
        ticket = _int("ticket", ticket)
        deals = self.position_deals(acc, ticket)
        money = settlement.realized(deals)
        if money is None:
            return None
        with self._lock:
            rows = self._read("SELECT * FROM closed_trades WHERE account = ? AND ticket = ?", (acc, ticket))
            if not rows:
                last = [d for d in deals if d["entry"] in ("OUT", "OUT_BY", "INOUT")][-1]
                reason = settlement.close_reason(last, None, self._reason_code_of)
                return {"realized": money["realized"], "close_reason": reason, "trade": False}
            s = settlement.settle(dict(rows[0]), deals, self._reason_code_of)
            self._write(
                f"settle trade {ticket}",
                "UPDATE closed_trades SET profit = ?, gross_profit = ?, swap = ?, commission = ?, volume = ?, "
                "close_price = ?, close_reason = ?, settled = 1, r_multiple = ?, mfe_r = ?, mae_r = ? "
                "WHERE account = ? AND ticket = ?",
                (s["profit"], s["gross_profit"], s["swap"], s["commission"], s["volume"], s["close_price"],
                 s["close_reason"], s["r_multiple"], s["mfe_r"], s["mae_r"], acc, ticket),
            )
        return {"realized": s["profit"], "close_reason": s["close_reason"], "trade": True}

    def _reason_code_of(self, command_id: int) -> str:
        rows = self._read("SELECT reason_code FROM commands WHERE command_id = ?", (command_id,))
        return rows[0][0] if rows else ""

    def closed_trades(self, account: str | None = None) -> list[dict]:
        """Closed trades, of one account or all, in the order they closed; features as numpy float64 arrays
        (None where unknown)."""
        return [_trade_dict(r) for r in self._trade_rows(account)]

    def _trade_rows(self, account: str | None) -> list[sqlite3.Row]:
        if account is None:
            return self._read("SELECT * FROM closed_trades ORDER BY close_time_ms, account, ticket")
        return self._read(
            "SELECT * FROM closed_trades WHERE account = ? ORDER BY close_time_ms, ticket", (_account(account),)
        )

    def export_trades(self, out_path: str | Path, *, account: str | None = None) -> int:
        """Write closed trades as CSV: one row per trade, its fields, then ``entry_<feature>`` and
        ``exit_<feature>`` for the 147 catalog features (empty where unknown). The file appears only when
        complete (written beside it, then renamed). Returns the number of trades written."""
        import csv

        from mt5bridge.common.atomicfile import replaced_when_complete
        from mt5bridge.core.catalog import FEATURE_NAMES

        rows = self._trade_rows(account)
        header = [
            *_EXPORT_FIELDS, *(f"entry_{n}" for n in FEATURE_NAMES), *(f"exit_{n}" for n in FEATURE_NAMES),
        ]
        blank = [""] * len(FEATURE_NAMES)
        with replaced_when_complete(out_path, newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(header)
            for r in rows:
                writer.writerow([
                    r["account"], r["ticket"], r["symbol"], r["side"], repr(r["volume"]), repr(r["open_price"]),
                    r["open_time_ms"], _utc_text(r["open_time_ms"]), r["close_time_ms"],
                    _utc_text(r["close_time_ms"]), repr(r["profit"]), repr(r["r_multiple"]), repr(r["mfe_r"]),
                    repr(r["mae_r"]), r["managed"], r["stage"], r["adds"], _cell(r["gross_profit"]), _cell(r["swap"]),
                    _cell(r["commission"]), _cell(r["close_price"]), r["close_reason"] or "", r["settled"],
                    *_feature_cells(r["features_at_entry"], blank),
                    *_feature_cells(r["features_at_exit"], blank),
                ])
        return len(rows)

    # --- overview --------------------------------------------------------------------------------------------

    def accounts(self) -> list[str]:
        """Every account the journal has anything for."""
        tables = ("commands", "deals", "decisions", "refusals", "transitions", "failsafes", "engine_state", "baselines",
                  "positions_seen", "closed_trades")
        found = {r[0] for r in self._read(" UNION ".join(f"SELECT DISTINCT account FROM {t}" for t in tables))}
        found.update(str(key[0]) for key in self._refusals)
        return sorted(found)

    def snapshot(self, account: str) -> dict:
        """What ``mt5bridge status`` shows while the bridge is down: ``account``, the saved engine state's
        account part (None when never saved) and ``saved_ms``, when it was saved; ``baseline``, the latest
        Prague day's; ``pending_commands``; ``last_transition``; ``halt``; ``open_positions`` as last seen;
        and ``login``."""
        acc = _account(account)
        state = self.load_engine_state(acc)
        last = self._read(
            "SELECT time_ms, state, reason FROM transitions WHERE account = ? ORDER BY id DESC LIMIT 1", (acc,)
        )
        return {
            "login": acc,
            "account": state.get("account") if state else None,
            "saved_ms": self.engine_state_time(acc),
            "baseline": self.latest_baseline(acc),
            "pending_commands": self.pending_commands(acc),
            "last_transition": dict(last[0]) if last else None,
            "halt": self.halt_state(),
            "open_positions": self.open_positions(acc),
        }


# --- helpers ---------------------------------------------------------------------------------------------------

_DEAL_KEYS = ("deal", "order", "position_id", "symbol", "side", "entry", "reason", "volume", "price", "profit",
              "swap", "commission", "magic", "time_msc", "comment")
_DECISION_KEYS = ("action", "side", "volume", "price", "sl", "tp", "ticket", "command_id", "reason_code", "reason",
                  "cap", "score", "confidence", "risk_money", "worst_case_loss", "headroom")
_POSITION_KEYS = ("ticket", "symbol", "side", "volume", "open_price", "sl", "tp", "profit", "swap", "commission",
                  "magic", "open_time_msc", "comment")
_TRADE_KEYS = ("ticket", "symbol", "side", "volume", "open_price", "open_time_ms", "close_time_ms", "profit",
               "r_multiple", "mfe_r", "mae_r", "managed", "stage", "adds", "features_at_entry", "features_at_exit")
_EXPORT_FIELDS = ("account", "ticket", "symbol", "side", "volume", "open_price", "open_time_ms", "open_time_utc",
                  "close_time_ms", "close_time_utc", "profit", "r_multiple", "mfe_r", "mae_r", "managed", "stage",
                  "adds", "gross_profit", "swap", "commission", "close_price", "close_reason", "settled")


def _cell(value: float | None) -> str:
    return "" if value is None else repr(value)


def _file_id(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file at ``path``; None when there is none. On Windows, where an open file cannot be
    deleted, inode numbers are still given by os.stat."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _require(what: str, record: dict, keys: tuple[str, ...]) -> dict:
    if not isinstance(record, dict):
        raise JournalError(f"{what}: expected a dict, got {type(record).__name__}")
    missing = [k for k in keys if k not in record]
    if missing:
        raise JournalError(f"{what}: missing {', '.join(missing)} (has {', '.join(map(str, record)) or 'nothing'})")
    return record


def _account(account: Any) -> str:
    # MT5 logins are numbers; the journal keys accounts by their text so 1510234567 and "1510234567" agree.
    if isinstance(account, bool) or not isinstance(account, (str, int, np.integer)):
        raise JournalError(f"account {account!r}: expected the login as text")
    text = str(account).strip()
    if not text:
        raise JournalError("account: empty; give the account's login")
    return text


def _text(name: str, value: Any, *, empty: bool = False) -> str:
    if not isinstance(value, str):
        raise JournalError(f"{name}: expected text, got {value!r}")
    if not empty and not value:
        raise JournalError(f"{name}: empty")
    return value


def _free(value: Any) -> str:
    # The EA writes an empty comment as null.
    return "" if value is None else str(value)


def _int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise JournalError(f"{name}: expected a whole number, got {value!r}")
    return int(value)


def _num(name: str, value: Any, *, finite: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise JournalError(f"{name}: expected a number, got {value!r}")
    number = float(value)
    # Prices, volumes and money must be real numbers: a NaN here would poison every limit computed from it.
    if finite and not math.isfinite(number):
        raise JournalError(f"{name}: {number!r} is not a finite number")
    return number


def _features(ticket: int, name: str, value: Any, count: int) -> bytes | None:
    if value is None:
        return None
    try:
        arr = np.asarray(value, dtype=_FEATURES_DTYPE)
    except (TypeError, ValueError) as exc:
        raise JournalError(f"closed trade {ticket}: {name} is not an array of numbers: {exc}") from None
    if arr.shape != (count,):
        raise JournalError(f"closed trade {ticket}: {name} has shape {arr.shape}, expected ({count},)")
    return arr.tobytes()


def _array(blob: bytes | None) -> np.ndarray | None:
    return None if blob is None else np.frombuffer(blob, dtype=_FEATURES_DTYPE).astype(np.float64)


def _feature_cells(blob: bytes | None, blank: list[str]) -> list[str]:
    if blob is None:
        return blank
    # A feature still warming up is NaN: unknown, written empty like a trade without features.
    return ["" if v != v else repr(v) for v in np.frombuffer(blob, dtype=_FEATURES_DTYPE).tolist()]


def _command_dict(row: sqlite3.Row) -> dict:
    d = dict(row)
    d["payload"] = bytes(d["payload"])
    if d["result_filled"] is not None:
        d["result_filled"] = bool(d["result_filled"])
    return d


def _trade_dict(row: sqlite3.Row) -> dict:
    d = dict(row)
    d["managed"] = bool(d["managed"])
    d["features_at_entry"] = _array(d["features_at_entry"])
    d["features_at_exit"] = _array(d["features_at_exit"])
    return d


def _with_bool(d: dict, key: str) -> dict:
    d[key] = bool(d[key])
    return d


def _plain(value: Any) -> Any:
    """JSON for the numpy values an engine state may carry."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not plain data (floats, ints, bools, text, lists, dicts)")


def _utc_day(day: int) -> str:
    return (_dt.date(1970, 1, 1) + _dt.timedelta(days=day)).isoformat()


def _utc_text(time_ms: int) -> str:
    t = _dt.datetime(1970, 1, 1) + _dt.timedelta(milliseconds=time_ms)
    return t.strftime("%Y-%m-%d %H:%M:%S.") + f"{t.microsecond // 1000:03d}"
