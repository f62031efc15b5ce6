"""The sweep's result store: every replay's figures kept under a key of what decided them, so no run is done twice.

A run's key is a hash of everything that decides its result and nothing else:

- the configuration it ran, every key (the base configuration with the run's settings), in canonical JSON;
- the data it read: a content hash of each market's prices as replayed (times, bid, ask, volume, which ticks
  continue a bar's path, the symbol and its digits), so the same file read twice, or the same synthetic
  generator with the same seed, gives the same key, and a changed file, clock offset or seed gives another;
- the replay's own settings (balance, slippage, warm-up days, the symbol specifications, the direction model
  file's content);
- the engine's version: the package version and a hash of the compiled engine and of the Python sources that
  turn prices into a result (core, simulator, config, market, the replay, its report and the figures read from
  it), so rebuilding or changing any of them makes every stored result stale rather than wrong.

The store is one SQLite file (``default_path()``; ``--store`` names another). Only the process that drives a
sweep writes to it, one row per finished run, committed at once: a sweep that is interrupted keeps every run
that finished, and the next sweep over the same runs (the same command again, or another sweep that shares
some of them) reads them back instead of replaying. ``runs`` counts how many times a key was stored, which is
1 unless two sweeps ran the same run at the same time.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
import time
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

STORE_FORMAT = 1
# The folders and files whose sources decide a replay's result (relative to the package).
# The figures and the odds of passing are computed where the replay ran, so their sources count too.
_ENGINE_SOURCES = ("core", "simulator", "config", "market", "workbench/replay.py", "workbench/report.py",
                   "workbench/figures.py", "workbench/tester.py", "workbench/odds.py", "models")


def default_path() -> Path:
    """Where results are kept unless ``--store`` says otherwise: the user's cache folder
    (``%LOCALAPPDATA%\\mt5bridge`` on Windows, ``$XDG_CACHE_HOME/mt5bridge`` or ``~/.cache/mt5bridge`` elsewhere)."""
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        root = Path(os.environ["LOCALAPPDATA"])
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "mt5bridge" / "sweep-results.sqlite"


@lru_cache(maxsize=1)
def engine_version() -> str:
    """The package version and a hash of what turns prices into a result; the same on every machine that
    installed the same build, different after any change to the engine."""
    import mt5bridge

    package = Path(mt5bridge.__file__).resolve().parent
    digest = hashlib.blake2b(digest_size=12)
    for name in _ENGINE_SOURCES:
        where = package / name
        files = sorted(p for p in where.rglob("*") if p.is_file()) if where.is_dir() else [where] * where.exists()
        for path in files:
            if path.suffix not in (".py", ".so", ".pyd", ".json") or "__pycache__" in path.parts:
                continue
            digest.update(path.relative_to(package).as_posix().encode())
            digest.update(path.read_bytes())
    return f"{mt5bridge.__version__}+{digest.hexdigest()}"


def market_hash(market: Any) -> str:
    """A content hash of one market's prices exactly as a replay reads them."""
    import numpy as np

    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{market.symbol}|{market.digits}|".encode())
    ticks = market.ticks
    for array, kind in ((ticks.times_ms, np.int64), (ticks.bid, np.float64), (ticks.ask, np.float64),
                        (ticks.volume, np.float64), (market.continuous, np.bool_)):
        digest.update(np.ascontiguousarray(array, dtype=kind).tobytes())
    return digest.hexdigest()


def canonical(value: Any) -> str:
    """JSON with sorted keys and no spaces: equal values, equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def content_hash(data: bytes | None) -> str | None:
    """A content hash of a file's bytes, as read once for the runs that use them (None: no file)."""
    if data is None:
        return None
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def run_key(config_data: dict, data_hashes: Iterable[str], replay_settings: dict, engine: str) -> str:
    """The key of one run: what it ran, on what, with which engine."""
    text = canonical({"format": STORE_FORMAT, "config": config_data, "data": list(data_hashes),
                      "replay": replay_settings, "engine": engine})
    return hashlib.sha256(text.encode()).hexdigest()


class StoreError(RuntimeError):
    """The store file cannot be opened or read, with its path."""


class ResultStore:
    """One SQLite file of results by run key."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Results arrive one by one from the executor; a few ms of waiting beats failing when another
            # sweep sharing the store is committing.
            self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, engine TEXT NOT NULL, "
                "settings TEXT NOT NULL, figures TEXT NOT NULL, seconds REAL NOT NULL, stored_at REAL NOT NULL, "
                "runs INTEGER NOT NULL DEFAULT 1)")
            self._db.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
            row = self._db.execute("SELECT value FROM meta WHERE name = 'format'").fetchone()
            if row is None:
                self._db.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (str(STORE_FORMAT),))
            elif row[0] != str(STORE_FORMAT):
                raise StoreError(f"{self.path}: a result store of format {row[0]}, this version reads format "
                                 f"{STORE_FORMAT}; give another --store or delete that file")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: cannot use it as the sweep's result store: {exc}") from exc
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot create the sweep's result store: {exc.strerror or exc}") from exc

    def get_many(self, keys: Iterable[str]) -> dict[str, tuple[dict, float]]:
        """The stored figures and replay seconds of every key that has them."""
        keys = list(keys)
        out: dict[str, tuple[dict, float]] = {}
        for start in range(0, len(keys), 500):
            part = keys[start:start + 500]
            marks = ",".join("?" * len(part))
            for key, figures, seconds in self._db.execute(
                    f"SELECT key, figures, seconds FROM results WHERE key IN ({marks})", part):
                out[key] = (json.loads(figures), seconds)
        return out

    def put(self, key: str, engine: str, settings: dict, figures: dict, seconds: float) -> None:
        """Keep one run's result now (committed before this returns)."""
        self._db.execute(
            "INSERT INTO results (key, engine, settings, figures, seconds, stored_at) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET figures = excluded.figures, seconds = excluded.seconds, "
            "stored_at = excluded.stored_at, runs = runs + 1",
            (key, engine, canonical(settings), canonical(figures), float(seconds), time.time()))

    def times_stored(self) -> dict[str, int]:
        """How many times each key was stored."""
        return dict(self._db.execute("SELECT key, runs FROM results"))

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["ResultStore", "STORE_FORMAT", "StoreError", "canonical", "content_hash", "default_path", "engine_version",
           "market_hash", "run_key"]
