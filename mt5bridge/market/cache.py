"""Parsed price files kept on disk, so a second replay, every run of a sweep and every walk-forward window skip
reading the text again.

An entry holds the arrays one file gave (ticks or bars, in UTC) and is named by the SHA-256 of the file's
content, the UTC offset and the point it was read with, and the version of the readers. A file changed in any
way, even to the same size and modification time, hashes to another name: an entry can never answer for
content it was not made from. SHA-256 runs at over 1 GB/s on current CPUs (SHA extensions), a small part of
parsing the same bytes.

Each entry carries a CRC-32 of its arrays and its own length; an entry that fails either check (a disk error,
a copy cut short, a hand edit) is deleted and the file is parsed again. Entries are written to a temporary
name and renamed into place, so parallel sweep workers never read half an entry. The folder is bounded: after
each write, entries made by older readers go, then the least recently used ones until the total is under the
limit, and so do the temporary files of a write that never finished (a worker killed mid-write) an hour on.
Deleting the folder at any time is safe.

Where it lives, and its size, from the environment:

- ``MT5BRIDGE_CACHE_DIR``: the folder; ``off`` turns caching off. Default: ``%LOCALAPPDATA%\\mt5bridge\\market``
  on Windows, ``~/Library/Caches/mt5bridge/market`` on macOS, ``$XDG_CACHE_HOME/mt5bridge/market`` (else
  ``~/.cache/mt5bridge/market``) elsewhere.
- ``MT5BRIDGE_CACHE_MB``: the most the folder holds, in megabytes (default 4096).

Files under 1 MB are not cached: they parse in milliseconds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import mmap
import os
import sys
import time
import zlib
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

# Bumped whenever the readers could give different arrays for the same bytes: older entries are then never used.
READER_VERSION = 2
MAGIC = b"MT5BRIDGE-MARKET-CACHE\n"
SUFFIX = ".mt5cache"
DEFAULT_MAX_MB = 4096
DEFAULT_MIN_FILE_BYTES = 1 << 20
_ALIGN = 64
# A temporary file this old is no write under way (one entry is written in seconds) but one a killed process left.
_ABANDONED_TEMP_S = 3600
_TICK_ARRAYS = ("times_ms", "bid", "ask", "volume")
_BAR_ARRAYS = ("times_ms", "open", "high", "low", "close", "volume", "spread_points")


def default_folder() -> Path | None:
    """The cache folder the environment asks for, or the platform's cache folder; None when caching is off."""
    chosen = os.environ.get("MT5BRIDGE_CACHE_DIR", "").strip()
    if chosen:
        return None if chosen.lower() == "off" else Path(chosen).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "mt5bridge" / "market"


def default_cache() -> MarketCache | None:
    """The cache ``read_market_file`` uses unless told otherwise (see the module's notes)."""
    folder = default_folder()
    if folder is None:
        return None
    text = os.environ.get("MT5BRIDGE_CACHE_MB", "").strip()
    try:
        max_mb = float(text) if text else DEFAULT_MAX_MB
    except ValueError:
        log.warning("MT5BRIDGE_CACHE_MB=%r is not a number of megabytes; using %d", text, DEFAULT_MAX_MB)
        max_mb = DEFAULT_MAX_MB
    return MarketCache(folder, max_bytes=int(max_mb * 1_000_000))


class MarketCache:
    """A folder of parsed price files, at most ``max_bytes`` in total; files under ``min_file_bytes`` skipped."""

    def __init__(self, folder: str | os.PathLike, *, max_bytes: int = DEFAULT_MAX_MB * 1_000_000,
                 min_file_bytes: int = DEFAULT_MIN_FILE_BYTES) -> None:
        self.folder = Path(folder)
        self.max_bytes = int(max_bytes)
        self.min_file_bytes = int(min_file_bytes)

    def key(self, content: bytes, offset_ms: int, point: float | None) -> str | None:
        """The entry name for a file's content read with this offset and point; None when not worth caching."""
        if len(content) < self.min_file_bytes:
            return None
        digest = hashlib.sha256(content).hexdigest()
        point_tag = "auto" if point is None else float(point).hex()
        return f"{digest}-v{READER_VERSION}-o{int(offset_ms)}-p{point_tag}"

    def path_of(self, key: str) -> Path:
        return self.folder / (key + SUFFIX)

    def load(self, key: str):
        """The Ticks or Bars stored under ``key``, or None when there is no sound entry (a broken one is deleted)."""
        path = self.path_of(key)
        try:
            with open(path, "rb") as fh:
                # A private mapping: the arrays are read from the page cache as they are used, and writing to
                # one changes this process's copy only.
                blob = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_COPY)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:  # ValueError: an empty file cannot be mapped
            log.warning("market cache entry %s cannot be read (%s); parsing the file", path, exc)
            _remove(path)
            return None
        try:
            data = _decode(blob)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("market cache entry %s is damaged (%s); deleting it and parsing the file", path, exc)
            _remove(path)
            return None
        try:
            os.utime(path)  # most recently used: the last to go when the folder is full
        except OSError:
            pass
        return data

    def save(self, key: str, data) -> None:
        """Store the arrays under ``key``; a cache that cannot be written is logged and otherwise left alone."""
        header, arrays = _encode(data)
        size = len(header) + sum(a.nbytes for a in arrays)
        if size > self.max_bytes:
            return
        path = self.path_of(key)
        temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(temp, "wb") as fh:
                fh.write(header)
                for a in arrays:
                    fh.write(memoryview(a).cast("B"))
            os.replace(temp, path)
        except OSError as exc:
            log.warning("market cache %s cannot be written (%s); the file is read without it", self.folder, exc)
            _remove(temp)
            return
        self.prune()

    def entries(self) -> list[Path]:
        try:
            return [p for p in self.folder.iterdir() if p.suffix == SUFFIX]
        except OSError:
            return []

    def size(self) -> int:
        return sum(_size(p) for p in self.entries())

    def prune(self) -> None:
        """Delete the entries older readers made (never to be used again), then the least recently used ones
        until the folder holds at most ``max_bytes``; and the temporary files of writes that never finished."""
        now = time.time()
        for p in self.folder.glob(f".*{SUFFIX}.*.tmp"):
            try:
                if now - p.stat().st_mtime > _ABANDONED_TEMP_S:
                    _remove(p)
            except OSError:
                pass
        entries = []
        current = f"-v{READER_VERSION}-"
        for p in self.entries():
            if current not in p.name:
                _remove(p)
                continue
            try:
                st = p.stat()
            except OSError:
                continue
            entries.append((st.st_mtime_ns, st.st_size, p))
        total = sum(size for _, size, _ in entries)
        for _, size, p in sorted(entries):
            if total <= self.max_bytes:
                break
            _remove(p)
            total -= size


def _encode(data) -> tuple[bytes, list[np.ndarray]]:
    from mt5bridge.market.readers import Bars

    names = _BAR_ARRAYS if isinstance(data, Bars) else _TICK_ARRAYS
    arrays = [np.ascontiguousarray(getattr(data, n)) for n in names]
    crc = 0
    for a in arrays:
        crc = zlib.crc32(memoryview(a).cast("B"), crc)
    meta = {
        "kind": "bars" if isinstance(data, Bars) else "ticks",
        "arrays": [[n, a.dtype.str, int(a.shape[0])] for n, a in zip(names, arrays)],
        "crc32": crc,
        "source_format": data.source_format,
    }
    if isinstance(data, Bars):
        meta["timeframe_s"] = int(data.timeframe_s)
        meta["point"] = float(data.point).hex()
        meta["has_spread"] = bool(data.has_spread)
    text = MAGIC + json.dumps(meta, separators=(",", ":")).encode() + b"\n"
    header = text + b" " * (-len(text) % _ALIGN)  # the arrays start aligned
    return header, arrays


def _decode(blob: mmap.mmap):
    from mt5bridge.market.readers import Bars, Ticks

    if blob[:len(MAGIC)] != MAGIC:
        raise ValueError("not a market cache entry")
    end = blob.find(b"\n", len(MAGIC), 4096)
    if end < 0:
        raise ValueError("no header line")
    meta = json.loads(blob[len(MAGIC):end])
    offset = end + 1 + (-(end + 1) % _ALIGN)
    arrays = {}
    crc = 0
    for name, dtype, count in meta["arrays"]:
        dt = np.dtype(dtype)
        if dt not in (np.dtype("<i8"), np.dtype("<f8")) or not isinstance(count, int) or count < 0:
            raise ValueError(f"array {name!r} of {dtype} x {count}")
        nbytes = dt.itemsize * count
        if offset + nbytes > len(blob):
            raise ValueError("entry cut short")
        with memoryview(blob) as whole, whole[offset:offset + nbytes] as part:
            crc = zlib.crc32(part, crc)
        arrays[name] = np.frombuffer(blob, dtype=dt, count=count, offset=offset)
        offset += nbytes
    if offset != len(blob):
        raise ValueError("entry longer than its arrays")
    if crc != meta["crc32"]:
        raise ValueError("checksum differs")
    source_format = str(meta["source_format"])
    if meta["kind"] == "ticks" and tuple(arrays) == _TICK_ARRAYS:
        return Ticks(**arrays, source_format=source_format)
    if meta["kind"] == "bars" and tuple(arrays) == _BAR_ARRAYS:
        return Bars(**arrays, timeframe_s=int(meta["timeframe_s"]), point=float.fromhex(meta["point"]),
                    source_format=source_format, has_spread=meta["has_spread"] is True)
    raise ValueError(f"unknown entry kind {meta['kind']!r}")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass
