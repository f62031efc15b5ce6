"""The journal's schema as the ordered steps that build it: ``MIGRATIONS[n]`` takes a journal file from schema
version n to n + 1 (a new file starts at 0). The journal runs the missing steps in one transaction when it opens
an older file. See docs/journal.md.
"""

from __future__ import annotations

import sqlite3
import time as _time
import uuid
from collections.abc import Callable

APPLICATION_ID = 0x4D543542
"""``PRAGMA application_id`` of a journal ("MT5B"): tells a journal from any other SQLite file."""


# --- schema ------------------------------------------------------------------------------------------------
# Each step gets the open connection inside the migration's transaction. Never edit a shipped step: a journal
# written by it exists on some trader's disk. Add a new step at the end instead.


def _create_v1(db: sqlite3.Connection) -> None:
    """Version 0 (an empty file) -> 1: every table."""
    # Statement by statement: executescript() would commit the migration's transaction half-way.
    for statement in _V1_DDL:
        db.execute(statement)
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")


_V1_DDL = (
    # Commands as sent, with the RESULT the EA reported for them, or how they were settled without one.
    # AUTOINCREMENT keeps the highest id ever used in sqlite_sequence, so ids are never reused.
    """CREATE TABLE commands (
        command_id      INTEGER PRIMARY KEY AUTOINCREMENT,
        account         TEXT    NOT NULL,
        chart           TEXT    NOT NULL,
        symbol          TEXT    NOT NULL,
        seq             INTEGER NOT NULL,
        time_ms         INTEGER NOT NULL,
        action          TEXT    NOT NULL,
        side            TEXT    NOT NULL,
        volume          REAL    NOT NULL,
        price           REAL    NOT NULL,
        sl              REAL    NOT NULL,
        tp              REAL    NOT NULL,
        ticket          INTEGER NOT NULL,
        reason_code     TEXT    NOT NULL,
        reason          TEXT    NOT NULL,
        payload         BLOB    NOT NULL,
        result_retcode  INTEGER,
        result_ticket   INTEGER,
        result_price    REAL,
        result_volume   REAL,
        result_text     TEXT,
        result_time_ms  INTEGER,
        result_filled   INTEGER,
        expired_time_ms INTEGER,
        expired_outcome TEXT
    )""",
    "CREATE INDEX commands_by_request ON commands (chart, seq)",
    "CREATE INDEX commands_in_flight ON commands (account, command_id) "
    "WHERE result_time_ms IS NULL AND expired_time_ms IS NULL",
    # Every deal on the account, including stop-losses, take-profits and stop-outs nobody asked for.
    """CREATE TABLE deals (
        account     TEXT    NOT NULL,
        deal        INTEGER NOT NULL,
        "order"     INTEGER NOT NULL,
        position_id INTEGER NOT NULL,
        symbol      TEXT    NOT NULL,
        side        TEXT    NOT NULL,
        entry       TEXT    NOT NULL,
        reason      TEXT    NOT NULL,
        volume      REAL    NOT NULL,
        price       REAL    NOT NULL,
        profit      REAL    NOT NULL,
        swap        REAL    NOT NULL,
        commission  REAL    NOT NULL,
        magic       INTEGER NOT NULL,
        time_msc    INTEGER NOT NULL,
        comment     TEXT    NOT NULL,
        PRIMARY KEY (account, deal)
    )""",
    "CREATE INDEX deals_by_position ON deals (account, position_id)",
    # Every decision that did something (non-HOLD), with the numbers behind it.
    """CREATE TABLE decisions (
        id              INTEGER PRIMARY KEY,
        account         TEXT    NOT NULL,
        symbol          TEXT    NOT NULL,
        time_ms         INTEGER NOT NULL,
        action          TEXT    NOT NULL,
        side            TEXT    NOT NULL,
        volume          REAL    NOT NULL,
        price           REAL    NOT NULL,
        sl              REAL    NOT NULL,
        tp              REAL    NOT NULL,
        ticket          INTEGER NOT NULL,
        command_id      INTEGER NOT NULL,
        reason_code     TEXT    NOT NULL,
        reason          TEXT    NOT NULL,
        cap             TEXT    NOT NULL,
        score           REAL    NOT NULL,
        confidence      REAL    NOT NULL,
        risk_money      REAL    NOT NULL,
        worst_case_loss REAL    NOT NULL,
        headroom        REAL    NOT NULL
    )""",
    "CREATE INDEX decisions_by_account ON decisions (account, time_ms)",
    # Refusals (HOLDs with a reason), counted per account, symbol, reason and UTC day.
    """CREATE TABLE refusals (
        account       TEXT    NOT NULL,
        symbol        TEXT    NOT NULL,
        reason_code   TEXT    NOT NULL,
        utc_day       TEXT    NOT NULL,
        count         INTEGER NOT NULL,
        first_time_ms INTEGER NOT NULL,
        last_time_ms  INTEGER NOT NULL,
        PRIMARY KEY (account, symbol, reason_code, utc_day)
    )""",
    # ACTIVE / REDUCING / HALTED changes of an account, with why.
    """CREATE TABLE transitions (
        id      INTEGER PRIMARY KEY,
        account TEXT    NOT NULL,
        time_ms INTEGER NOT NULL,
        state   TEXT    NOT NULL,
        reason  TEXT    NOT NULL
    )""",
    "CREATE INDEX transitions_by_account ON transitions (account, id)",
    # The decision engine's export_state() per account, as JSON, replaced on every save.
    """CREATE TABLE engine_state (
        account TEXT    PRIMARY KEY,
        time_ms INTEGER NOT NULL,
        state   TEXT    NOT NULL
    )""",
    # What the FTMO limits of a Prague day are measured from.
    """CREATE TABLE baselines (
        account           TEXT NOT NULL,
        prague_day        TEXT NOT NULL,
        day_start_balance REAL NOT NULL,
        initial_balance   REAL NOT NULL,
        peak_equity       REAL NOT NULL,
        PRIMARY KEY (account, prague_day)
    )""",
    # The operator's halts and resumes, newest last; the last row is in force.
    """CREATE TABLE halt (
        id      INTEGER PRIMARY KEY,
        halted  INTEGER NOT NULL,
        flatten INTEGER NOT NULL,
        set_by  TEXT    NOT NULL,
        time_ms INTEGER NOT NULL
    )""",
    # Every position the bridge has seen, its own and the trader's, as first seen and as last changed.
    """CREATE TABLE positions_seen (
        account       TEXT    NOT NULL,
        ticket        INTEGER NOT NULL,
        symbol        TEXT    NOT NULL,
        side          TEXT    NOT NULL,
        volume        REAL    NOT NULL,
        open_price    REAL    NOT NULL,
        sl            REAL    NOT NULL,
        tp            REAL    NOT NULL,
        profit        REAL    NOT NULL,
        swap          REAL    NOT NULL,
        commission    REAL    NOT NULL,
        magic         INTEGER NOT NULL,
        open_time_msc INTEGER NOT NULL,
        comment       TEXT    NOT NULL,
        managed       INTEGER NOT NULL,
        first_seen_ms INTEGER NOT NULL,
        last_seen_ms  INTEGER NOT NULL,
        last_volume   REAL    NOT NULL,
        last_sl       REAL    NOT NULL,
        last_tp       REAL    NOT NULL,
        last_profit   REAL    NOT NULL,
        gone_ms       INTEGER,
        PRIMARY KEY (account, ticket)
    )""",
    # Closed trades with their outcome in R and the 147 features at entry and at exit (float64 bytes).
    """CREATE TABLE closed_trades (
        account           TEXT    NOT NULL,
        ticket            INTEGER NOT NULL,
        symbol            TEXT    NOT NULL,
        side              TEXT    NOT NULL,
        volume            REAL    NOT NULL,
        open_price        REAL    NOT NULL,
        open_time_ms      INTEGER NOT NULL,
        close_time_ms     INTEGER NOT NULL,
        profit            REAL    NOT NULL,
        r_multiple        REAL    NOT NULL,
        mfe_r             REAL    NOT NULL,
        mae_r             REAL    NOT NULL,
        managed           INTEGER NOT NULL,
        stage             TEXT    NOT NULL,
        adds              INTEGER NOT NULL,
        features_at_entry BLOB,
        features_at_exit  BLOB,
        PRIMARY KEY (account, ticket)
    )""",
    "CREATE INDEX closed_trades_by_close ON closed_trades (close_time_ms, account, ticket)",
)


def _add_highest_eod_balance(db: sqlite3.Connection) -> None:
    """Version 1 -> 2: baselines keep the highest end-of-day balance, which the 1-Step product's trailing
    maximum loss is measured from.

    Rows written before are filled with what they imply: a Prague day starts with the balance the previous day
    ended on, so the highest end-of-day balance known on a day is the highest starting balance of that day and
    the days before it, never below the initial balance.
    """
    db.execute("ALTER TABLE baselines ADD COLUMN highest_eod_balance REAL")
    db.execute(
        """UPDATE baselines SET highest_eod_balance = MAX(initial_balance, (
               SELECT MAX(b.day_start_balance) FROM baselines AS b
               WHERE b.account = baselines.account AND b.prague_day <= baselines.prague_day))"""
    )


def _add_failsafes(db: sqlite3.Connection) -> None:
    """Version 2 -> 3: what the EAs' own failsafes did (FAILSAFE messages), per account and chart."""
    db.execute(
        """CREATE TABLE failsafes (
            id      INTEGER PRIMARY KEY,
            account TEXT    NOT NULL,
            chart   TEXT    NOT NULL,
            symbol  TEXT    NOT NULL,
            time_ms INTEGER NOT NULL,
            kind    TEXT    NOT NULL,
            detail  TEXT    NOT NULL
        )"""
    )
    db.execute("CREATE INDEX failsafes_by_account ON failsafes (account, id)")


def _add_identity_and_outcomes(db: sqlite3.Connection) -> None:
    """Version 3 -> 4: the journal's identity, and what a RESULT said of a command's outcome.

    The identity is made once, when the journal gets this step, and never changes: WELCOME tells it to the EA,
    which keys the command ids it has executed by it, so a new journal's ids are never taken for an old one's.
    """
    db.execute("CREATE TABLE identity (journal_id TEXT NOT NULL, created_ms INTEGER NOT NULL)")
    db.execute("INSERT INTO identity (journal_id, created_ms) VALUES (?, ?)",
               (uuid.uuid4().hex, int(_time.time() * 1000)))
    # DONE, PARTIAL, PLACED, REFUSED or UNKNOWN; NULL on rows written before, which were DONE or REFUSED as
    # result_filled says. An UNKNOWN result leaves the command pending until it is settled.
    db.execute("ALTER TABLE commands ADD COLUMN result_outcome TEXT")
    db.execute("ALTER TABLE commands ADD COLUMN result_sl REAL")
    db.execute("ALTER TABLE commands ADD COLUMN result_tp REAL")
    # A closed trade as the broker's deals settle it: the realized money in its parts, the volume really traded,
    # the exit fill and why the position closed; `settled` 0 while only the book's last floating profit is known.
    for column in ("gross_profit REAL", "swap REAL", "commission REAL", "close_price REAL", "close_reason TEXT",
                   "settled INTEGER NOT NULL DEFAULT 0", "risk_money REAL", "r_dist REAL", "floating_profit REAL"):
        db.execute(f"ALTER TABLE closed_trades ADD COLUMN {column}")


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _create_v1, _add_highest_eod_balance, _add_failsafes, _add_identity_and_outcomes,
)
"""``MIGRATIONS[n]`` takes a journal from schema version n to n + 1; a new file starts at 0."""
