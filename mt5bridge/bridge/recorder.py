"""The bridge's recording: every frame each account's EAs sent, kept so that a day of live trading can be run
again through the same node and engine and compared, decision by decision, with what the bridge sent
(``mt5bridge replay --recorded DAY``, docs/recording.md).

What is kept, per account: every frame its charts sent (HELLO with the symbol's specification, WARMUP, TICK with
the account and the positions as the EA reported them, RESULT, DEAL, CLOCK, FAILSAFE, BYE), each with the
bridge's monotonic and wall clocks as the node read them; the moments of housekeeping (a command's timeout and a
silent chart are judged then); the operator's halts and resumes; at each session's start the configuration, the
model's fingerprint, the next command id and the halt; and, when an account is first served, the state the
journal gave its engine.

On disk: ``<folder>/<login>/<YYYY-MM-DD>.mt5rec``, one file per account and UTC day of the bridge's clock (UTC,
like the journal's refusal counts, which the comparison reads by UTC day). A file is a run of gzip members, one per
flush, so a bridge killed mid-write loses only its last unflushed seconds and every earlier member still reads.
Inside, records: ``RECORD`` (kind, event number, monotonic s, wall s, length a, length b), then a, then b.

The tick path only appends bytes to a buffer in memory: compressing and writing happen in a thread of their own,
every ``recording.flush_every_s``, at a chart's BYE and at shutdown, so a slow or full disk never holds a tick.
When writing fails (a full disk), the recording stops, says so once, and tries again a minute later; the
frames it could not keep are marked as a gap, which the comparison names as the cause of what follows. The
oldest days are deleted first to keep the folder under ``recording.max_mb``.
"""

from __future__ import annotations

import datetime as _dt
import gzip
import hashlib
import json
import logging
import os
import queue
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mt5bridge.common import strictjson

log = logging.getLogger("mt5bridge.bridge.recorder")

RECORD = struct.Struct("<cQddHI")
"""Kind (one byte), event number, monotonic time (s), wall time (s, UTC epoch), length of a, length of b."""
FRAME, HOUSEKEEPING, CONTROL, SESSION, ACCOUNT, GAP, END = b"F", b"H", b"C", b"S", b"A", b"G", b"E"
SUFFIX = ".mt5rec"
TICK_HEAD = b'{"type":"TICK",'   # how the EA (and the simulator) begin a TICK
FORMAT = 1
RETRY_S = 60.0
MAX_QUEUED_BYTES = 256 << 20   # what waits for the writer: beyond it, frames are dropped (and a gap marked)
COMPRESS_LEVEL = 6


@dataclass
class _Book:
    """One account's file of the current day and what waits to be written to it."""

    login: str
    path: Path
    buf: bytearray = field(default_factory=bytearray)


class Recorder:
    """Records the frames the bridge serves, per account and UTC day; see the module's docstring."""

    def __init__(self, folder: str | Path, *, max_bytes: int, flush_every_s: float, session: dict[str, Any],
                 accounts: list[int] | None = None, clock=time.monotonic, wall=time.time) -> None:
        self.folder = Path(folder)
        # bridge.accounts: a HELLO for another login is refused by the node, and makes no folder here.
        self.accounts = {str(a) for a in accounts or ()}
        self.max_bytes = max_bytes
        self.flush_every_s = flush_every_s
        self.clock = clock
        self.wall = wall
        started = wall()
        self.session = dict(session, format=FORMAT, session=f"{int(started * 1000)}-{os.getpid()}",
                            started_wall=started)
        self.on = True               # False while writing fails: nothing is buffered then
        self.problem: str | None = None
        self.event = 0
        self.lost = 0                # records not kept since the last gap mark
        self.books: dict[str, _Book] = {}
        self.day = ""
        self.day_end = 0.0
        self.next_flush = clock() + flush_every_s
        self.next_retry = 0.0
        self.bytes_written = 0
        self._queued = 0   # bytes handed to the writer and not yet written (both threads change it)
        self._queued_lock = threading.Lock()
        self._queue: queue.Queue[tuple[Path, bytes] | None] = queue.Queue()
        self._failed = threading.Event()
        self._fail_words = ""
        self._writes = 0            # blocks written (by the writer thread)
        self._outage_said = False   # the stop was said: said again only after the recording came back
        self._writes_at_resume = 0
        self._set_day(started)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._writer = threading.Thread(target=self._write_loop, name="mt5bridge-recorder", daemon=True)
        self._writer.start()
        self._queue.put((self.folder, b""))   # retention at start: the folder may be over the cap already

    # ---- the serve loop's side: appends only ------------------------------------------------------------------

    def frame(self, identity: bytes, frame: bytes, node) -> None:
        """Keep a frame the node is about to handle, in the file of the account it speaks for. Called before
        ``node.handle``: an account's first HELLO is kept with the state the journal will give its engine. Never
        raises: a fault of the recorder stops the recording, not the frame."""
        if not self.on:
            self.lost += 1
            return
        try:
            chart = node.charts.get(identity)
            # Most frames are TICKs of a known chart, which the EA begins with their type: no HELLO or BYE to look
            # for in them (two scans of the frame, each longer than the rest of this, with positions).
            usual = chart is not None and frame.startswith(TICK_HEAD)
            if usual:
                login = chart.account
            elif chart is None or b'"HELLO"' in frame:
                login = _hello_login(frame)
                if login is None:
                    if chart is None:
                        return   # no account: refused as not introduced, it changes nothing
                    login = chart.account
                elif self.accounts and login not in self.accounts:
                    return
                elif login not in node.accounts:
                    self._account_snapshot(login, node)
            else:
                login = chart.account
            wall = self.wall()
            if wall >= self.day_end:
                self._rotate(wall)
            book = self.books.get(login) or self._open(login)
            self.event += 1
            buf = book.buf
            buf += RECORD.pack(FRAME, self.event, self.clock(), wall, len(identity), len(frame))
            buf += identity
            buf += frame
            if not usual and b'"BYE"' in frame:
                self._flush_book(book)
        except Exception as exc:
            self._fault(exc)

    def housekeeping(self, node) -> None:
        """The moment the node's housekeeping runs (marked in every open file), then a flush when due."""
        now = self.clock()
        if self.on:
            self._mark_all(HOUSEKEEPING, b"")
        elif now >= self.next_retry:
            self._resume()
        if now >= self.next_flush:
            self.flush()

    def control(self, halted: bool, flatten: bool, by: str) -> None:
        """The operator's halt or resume, as the node applied it (never raises: the operator's answer stands)."""
        if self.on:
            try:
                self._mark_all(CONTROL, json.dumps({"halted": halted, "flatten": flatten, "by": by}).encode())
            except Exception as exc:
                self._fault(exc)

    def _fault(self, exc: Exception) -> None:
        """A fault of the recorder's own (a bug): logged with its traceback, and the recording stops as on a full
        disk; trading goes on."""
        log.critical("the recorder failed: %s", exc, exc_info=True)
        self._stop(f"the recorder failed: {exc}")

    def flush(self) -> None:
        self.next_flush = self.clock() + self.flush_every_s
        self._check_writer()
        for book in self.books.values():
            self._flush_book(book)

    def close(self) -> None:
        """The session's end marked in every file, everything written, the writer stopped."""
        if self.on:
            self._mark_all(END, b"")
        self.flush()
        self._queue.put(None)
        self._writer.join(10.0)
        self._check_writer()

    def status(self) -> dict[str, Any]:
        return {"recording": self.on, "folder": str(self.folder), "problem": self.problem,
                "bytes_written": self.bytes_written, "accounts": sorted(self.books)}

    # ---- files -------------------------------------------------------------------------------------------------

    def _set_day(self, wall: float) -> None:
        day = _dt.datetime.fromtimestamp(wall, _dt.timezone.utc).date()
        self.day = day.isoformat()
        self.day_end = _dt.datetime.combine(day + _dt.timedelta(days=1), _dt.time(), _dt.timezone.utc).timestamp()

    def _rotate(self, wall: float) -> None:
        """A new UTC day: every account's file is finished and the next frame opens the new day's."""
        self.flush()
        self.books.clear()
        self._set_day(wall)
        self._queue.put((self.folder, b""))   # retention: yesterday's size is known now

    def _open(self, login: str) -> _Book:
        book = _Book(login, self.folder / _safe_name(login) / f"{self.day}{SUFFIX}")
        self.books[login] = book
        # Every file says which session it belongs to, so a day can be replayed from the session's start.
        header = dict(self.session, day=self.day, account=login)
        self._append(book, SESSION, b"", json.dumps(header, default=str).encode())
        return book

    def _account_snapshot(self, login: str, node) -> None:
        """The journal's state for an account the node is about to create from it."""
        try:
            state = node.journal.load_engine_state(login)
        except Exception as exc:   # the node meets the same failure and says it; the recording notes it
            state, problem = None, str(exc)
        else:
            problem = None
        book = self.books.get(login) or self._open(login)
        self._append(book, ACCOUNT, b"", json.dumps({"login": login, "engine_state": state, "problem": problem},
                                                    default=strictjson.plain).encode())

    def _append(self, book: _Book, kind: bytes, a: bytes, b: bytes) -> None:
        self.event += 1
        book.buf += RECORD.pack(kind, self.event, self.clock(), self.wall(), len(a), len(b))
        book.buf += a
        book.buf += b

    def _mark_all(self, kind: bytes, payload: bytes) -> None:
        """One event in every open file (same event number: the replay merges the files and keeps it once)."""
        if not self.books:
            return
        self.event += 1
        head = RECORD.pack(kind, self.event, self.clock(), self.wall(), 0, len(payload))
        for book in self.books.values():
            book.buf += head
            book.buf += payload

    def _flush_book(self, book: _Book) -> None:
        if not book.buf:
            return
        data = bytes(book.buf)
        book.buf.clear()
        with self._queued_lock:
            behind = self._queued + len(data) > MAX_QUEUED_BYTES
            if not behind:
                self._queued += len(data)
        if behind:
            self._stop("the disk does not keep up with the recording", dropped=1)
            return
        self._queue.put((book.path, data))

    # ---- failure and recovery ----------------------------------------------------------------------------------

    def _check_writer(self) -> None:
        if self._failed.is_set() and self.on:
            self._stop(self._fail_words)
        elif self._outage_said and self.on and self._writes > self._writes_at_resume:
            self._outage_said = False
            log.warning("recording resumed; what came while it was stopped is not in it (marked as a gap)")

    def _stop(self, why: str, dropped: int = 0) -> None:
        """Recording stops (trading does not): said once, retried after RETRY_S."""
        if self.on and not self._outage_said:
            # Once per outage: a disk that stays full is not said again at every retry.
            log.critical("RECORDING STOPPED: %s. Trading goes on; `replay --recorded` will show the gap. Trying "
                         "again every %g s.", why, RETRY_S)
            self._outage_said = True
        self.on = False
        self.problem = why
        self.lost += dropped + sum(1 for b in self.books.values() if b.buf)
        for book in self.books.values():
            book.buf.clear()
        self.next_retry = self.clock() + RETRY_S

    def _resume(self) -> None:
        """Try again: the writer is told to write a gap mark; recording goes on when it could."""
        self.next_retry = self.clock() + RETRY_S
        if self._queued:
            return   # the writer is still at the backlog
        self._failed.clear()
        self.on = True
        self.problem = None
        # Each file goes on with its session's header again: the one written before may be in what was lost.
        logins = list(self.books)
        self.books.clear()
        for login in logins:
            self._open(login)
        self._mark_all(GAP, json.dumps({"why": "recording stopped (see the bridge's log)",
                                        "records_lost_at_least": self.lost}).encode())
        self.lost = 0
        self._writes_at_resume = self._writes

    # ---- the writer thread -------------------------------------------------------------------------------------

    def _write_loop(self) -> None:
        total = _folder_bytes(self.folder)
        while True:
            job = self._queue.get()
            if job is None:
                return
            path, data = job
            if not data:   # a retention check
                total = self._keep_under_cap(_folder_bytes(self.folder))
                continue
            try:
                if self._failed.is_set():
                    continue   # dropped: the serve loop learns of the failure at its next flush
                block = gzip.compress(data, COMPRESS_LEVEL, mtime=0)
                path.parent.mkdir(parents=True, exist_ok=True)
                with open(path, "ab") as f:
                    before = f.tell()
                    try:
                        f.write(block)
                        f.flush()
                    except OSError:
                        # Half a member would hide every later one from the reader: the file is put back.
                        _truncate(f, before)
                        raise
                self.bytes_written += len(block)
                self._writes += 1
                total += len(block)
                if total > self.max_bytes:
                    total = self._keep_under_cap(_folder_bytes(self.folder))
            except OSError as exc:
                self._fail_words = f"cannot write {path}: {exc.strerror or exc}"
                self._failed.set()
            finally:
                with self._queued_lock:
                    self._queued -= len(data)

    def _keep_under_cap(self, total: int) -> int:
        """Delete whole days (every account's file of the day), oldest first, until the folder is under the cap;
        today's files are kept (a day that alone passes the cap stops the recording until tomorrow)."""
        if total <= self.max_bytes:
            return total
        by_day: dict[str, list[Path]] = {}
        for path in self.folder.glob(f"*/*{SUFFIX}"):
            by_day.setdefault(path.stem, []).append(path)
        for day in sorted(by_day):
            if total <= self.max_bytes:
                break
            if day >= self.day:
                self._fail_words = (f"today's recordings alone pass recording.max_mb ({self.max_bytes >> 20} MB); "
                                    "raise it to keep whole days")
                self._failed.set()
                break
            for path in by_day[day]:
                try:
                    size = path.stat().st_size
                    path.unlink()
                    total -= size
                except OSError as exc:
                    log.warning("cannot delete the old recording %s: %s", path, exc)
            log.info("recordings of %s deleted to stay under recording.max_mb", day)
        return total


def _truncate(f, size: int) -> None:
    try:
        f.truncate(size)
    except OSError:
        pass


def _hello_login(frame: bytes) -> str | None:
    """The login of a HELLO frame, or None when the frame is not a HELLO (or does not say a login)."""
    try:
        msg = json.loads(frame)
    except ValueError:
        return None
    if not isinstance(msg, dict) or msg.get("type") != "HELLO":
        return None
    login = msg.get("login")
    return str(login) if type(login) is int and login > 0 else None


def _safe_name(login: str) -> str:
    return "".join(ch for ch in login if ch.isalnum()) or "account"


def _folder_bytes(folder: Path) -> int:
    total = 0
    for path in folder.glob(f"*/*{SUFFIX}"):
        try:
            total += path.stat().st_size
        except OSError:
            pass
    return total


def model_fingerprint(model: str | None) -> str:
    """SHA-256 of the model file the engines read ("shipped" for the package's own)."""
    if not model:
        return "shipped"
    try:
        return hashlib.sha256(Path(model).read_bytes()).hexdigest()
    except OSError as exc:
        return f"unreadable: {exc}"


def recording_folder(cfg, config_path: str | Path | None) -> Path:
    """``recording.folder``, else ``recordings`` in the journal's folder."""
    from mt5bridge.config import journal_path

    if cfg.recording.folder:
        path = Path(cfg.recording.folder)
        if path.is_absolute() or config_path is None:
            return path
        return Path(config_path).resolve().parent / path
    return journal_path(cfg, config_path).parent / "recordings"


def start_recorder(cfg, config_path: str | Path | None, node, model: str | None) -> Recorder | None:
    """The bridge's recorder as configured (None when ``recording.enabled`` is off, or when its folder cannot be
    made: said loudly, and the bridge trades on without a recording)."""
    if not cfg.recording.enabled:
        return None
    from mt5bridge import __version__

    session = {"config": cfg.model_dump(mode="json", by_alias=True), "model": model or "",
               "model_sha256": model_fingerprint(model), "version": __version__,
               "next_command_id": node.next_command_id, "halt": node.halt}
    folder = recording_folder(cfg, config_path)
    try:
        return Recorder(folder, max_bytes=cfg.recording.max_mb << 20, flush_every_s=cfg.recording.flush_every_s,
                        session=session, accounts=cfg.bridge.accounts)
    except OSError as exc:
        log.critical("NOT RECORDING: cannot use the recordings folder %s: %s (recording.folder)", folder, exc)
        return None


# ---- reading ------------------------------------------------------------------------------------------------------


class RecordingError(ValueError):
    """A recording that cannot be read as one; the message names the file."""


@dataclass
class Record:
    kind: bytes
    event: int
    mono: float
    wall: float
    a: bytes
    b: bytes

    def json(self) -> dict:
        return json.loads(self.b)


def read_records(path: Path, problems: list[str] | None = None) -> Iterator[Record]:
    """The records of one file, in order. A damaged or cut-off end (a bridge killed mid-write) ends the file;
    it is noted in ``problems``."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read: {exc.strerror or exc}") from None
    pos = 0
    while pos < len(raw):
        d = zlib.decompressobj(wbits=31)
        try:
            data = d.decompress(raw[pos:])
        except zlib.error as exc:
            if problems is not None:
                problems.append(f"{path}: damaged after byte {pos} ({exc}): the rest of the file is not read")
            return
        if not d.eof:
            if problems is not None:
                problems.append(f"{path}: cut off after byte {pos} (the bridge stopped while writing)")
            return
        pos = len(raw) - len(d.unused_data)
        yield from _split(data, path, problems)


def _split(data: bytes, path: Path, problems: list[str] | None) -> Iterator[Record]:
    pos, size, n = 0, RECORD.size, len(data)
    while pos < n:
        if n - pos < size:
            if problems is not None:
                problems.append(f"{path}: a record cut short")
            return
        kind, event, mono, wall, la, lb = RECORD.unpack_from(data, pos)
        pos += size
        if pos + la + lb > n:
            if problems is not None:
                problems.append(f"{path}: a record cut short")
            return
        a = data[pos:pos + la]
        pos += la
        b = data[pos:pos + lb]
        pos += lb
        yield Record(kind, event, mono, wall, a, b)


def recorded_days(folder: Path) -> list[str]:
    """The UTC days with a recording of any account, oldest first."""
    return sorted({p.stem for p in folder.glob(f"*/*{SUFFIX}")})


def day_files(folder: Path, day: str) -> list[Path]:
    return sorted(folder.glob(f"*/{day}{SUFFIX}"))
