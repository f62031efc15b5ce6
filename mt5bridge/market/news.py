"""The news calendar for funded accounts' blackouts: a CSV of restricted releases.

Format (UTF-8, a header line, one release per line): ``time,currency,title`` with the time in UTC as
``YYYY-MM-DD HH:MM`` (or ISO 8601 with a ``T``/``Z``), the currency as a three-letter code, and any title.
FTMO publishes its restricted list each week; export or copy it into this form.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from mt5bridge.common.currencies import CURRENCY_BITS, currency_mask


class NewsCalendarError(ValueError):
    """A calendar that cannot be used, with the file, the line and the reason."""


@dataclass(frozen=True)
class NewsCalendar:
    times_ms: np.ndarray   # int64, UTC ms, sorted
    masks: np.ndarray      # uint32 currency bit masks (mt5bridge.common.currencies.CURRENCY_BITS)
    titles: tuple[str, ...]


def _parse_time(text: str) -> int:
    value = text.strip().replace("T", " ").removesuffix("Z")
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"):
        try:
            return int(datetime.strptime(value, fmt).replace(tzinfo=timezone.utc).timestamp() * 1000)
        except ValueError:
            continue
    raise ValueError(f"time {text!r} is not YYYY-MM-DD HH:MM[:SS] (UTC)")


def load_news(path: str | Path) -> NewsCalendar:
    rows: list[tuple[int, int, str]] = []
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            header = [h.strip().lower() for h in next(reader, [])]
            if header[:3] != ["time", "currency", "title"]:
                raise NewsCalendarError(f"{path}:1: the header must be time,currency,title, not {','.join(header)}")
            for line, row in enumerate(reader, start=2):
                if not row or not "".join(row).strip():
                    continue
                if len(row) < 3:
                    raise NewsCalendarError(f"{path}:{line}: expected time,currency,title, got {','.join(row)}")
                currency = row[1].strip().upper()
                if currency not in CURRENCY_BITS:
                    raise NewsCalendarError(f"{path}:{line}: unknown currency {row[1]!r}")
                try:
                    t = _parse_time(row[0])
                except ValueError as exc:
                    raise NewsCalendarError(f"{path}:{line}: {exc}") from None
                rows.append((t, currency_mask([currency]), row[2].strip()))
    except OSError as exc:
        raise NewsCalendarError(f"{path}: cannot read the news calendar: {exc.strerror or exc}") from None
    if not rows:
        # A blackout over no releases trades through every one of them.
        raise NewsCalendarError(f"{path}: no releases in the news calendar; add the releases the blackout is for")
    rows.sort(key=lambda r: r[0])
    return NewsCalendar(
        np.array([r[0] for r in rows], dtype=np.int64),
        np.array([r[1] for r in rows], dtype=np.uint32),
        tuple(r[2] for r in rows),
    )


def calendar_warnings(cfg, until_ms: int) -> list[str]:
    """What the trader must hear about the news calendar of a blackout that runs until ``until_ms`` (UTC): a
    calendar whose last release is before then leaves the time after it without any blackout."""
    if not cfg.funded.news_blackout:
        return []
    calendar = load_news(cfg.funded.news_file)
    last = int(calendar.times_ms[-1])
    if last >= until_ms:
        return []
    from datetime import datetime, timezone

    when = datetime.fromtimestamp(last / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return [f"the news calendar {cfg.funded.news_file} ends with a release at {when}: after it there is no news "
            "blackout; add the coming releases"]


def blackout_calendar(cfg) -> tuple[np.ndarray, np.ndarray] | None:
    """The calendar the engine's news blackout needs, as plain values (release times in UTC ms, currency masks),
    or None when the blackout is off. Read when the engine is built, so a missing or broken calendar stops the
    start rather than silently trading through the news."""
    if not cfg.funded.news_blackout:
        return None
    calendar = load_news(cfg.funded.news_file)
    return calendar.times_ms, calendar.masks
