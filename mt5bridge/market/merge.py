"""Several symbols' ticks in one time order, handed out a window at a time.

A replay of many symbols walks their ticks merged by time. Merging them all at once would hold a second copy
of every tick (and the sort's index beside it) for the whole run; a window at a time holds the symbols' own
arrays and one window, whatever the length of the history. Each window is cut at a time T: every tick before
T of every symbol, none after, so the windows laid end to end are exactly the whole merge. Ties in time keep
the symbols' order (their index), as a stable merge of the whole would.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

WINDOW_TICKS = 1 << 16

Window = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class MergedTicks:
    """The ticks of several symbols, each given as (symbol index, times_ms, bid, ask, volume, continuous) with
    times non-decreasing; read as windows of (symbol index, time, bid, ask, volume, continuous) arrays."""

    def __init__(self, parts: Sequence[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]):
        self.parts = [p for p in parts if len(p[1])]
        self.parts.sort(key=lambda p: p[0])  # ties in time go in symbol-index order

    def __len__(self) -> int:
        return sum(len(p[1]) for p in self.parts)

    @property
    def first_ms(self) -> int:
        return min(int(p[1][0]) for p in self.parts)

    @property
    def last_ms(self) -> int:
        return max(int(p[1][-1]) for p in self.parts)

    def windows(self, size: int | None = None) -> Iterator[Window]:
        """Windows of at most about ``size`` ticks per symbol (default WINDOW_TICKS), in time order."""
        size = size or WINDOW_TICKS
        pos = [0] * len(self.parts)
        while True:
            left = [(i, len(p[1]) - pos[i]) for i, p in enumerate(self.parts) if pos[i] < len(p[1])]
            if not left:
                return
            if len(left) == 1:
                i, _ = left[0]
                end = min(len(self.parts[i][1]), pos[i] + size)
                yield self._one(i, pos[i], end)
                pos[i] = end
                continue
            # Cut after the earliest of the symbols' size-th next ticks: no symbol gives more than its size
            # before that time, except ticks sharing the cut time itself.
            cut = min((int(self.parts[i][1][pos[i] + size - 1]) for i, n in left if n >= size), default=None)
            ends = []
            for i, p in enumerate(self.parts):
                if cut is None:
                    ends.append(len(p[1]))
                else:
                    ends.append(pos[i] + int(np.searchsorted(p[1][pos[i]:], cut, side="right")))
            yield self._many(pos, ends)
            pos = ends

    def _one(self, i: int, start: int, end: int) -> Window:
        index, t, bid, ask, vol, cont = self.parts[i]
        return (np.full(end - start, index, dtype=np.int32), np.ascontiguousarray(t[start:end], dtype=np.int64),
                *(np.ascontiguousarray(a[start:end], dtype=np.float64) for a in (bid, ask, vol)),
                np.ascontiguousarray(cont[start:end], dtype=bool))

    def _many(self, starts: list[int], ends: list[int]) -> Window:
        pieces = [self._one(i, s, e) for i, (s, e) in enumerate(zip(starts, ends)) if e > s]
        if len(pieces) == 1:
            return pieces[0]
        columns = [np.concatenate([piece[k] for piece in pieces]) for k in range(6)]
        order = np.argsort(columns[1], kind="stable")  # pieces are in symbol order: ties stay so
        return tuple(np.ascontiguousarray(c[order]) for c in columns)

    def arrays(self) -> Window:
        """The whole merge at once (for a look at it; a replay walks the windows)."""
        windows = list(self.windows())
        if not windows:
            empty = np.empty(0)
            return (np.empty(0, np.int32), np.empty(0, np.int64), empty, empty, empty, np.empty(0, bool))
        return tuple(np.concatenate([w[k] for w in windows]) for k in range(6))
