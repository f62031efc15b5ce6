"""How often a line about one kind of event from one chart may reach the log."""

from __future__ import annotations

from mt5bridge.bridge.logsafe import escape


def printable(text: str, limit: int = 300) -> str:
    """``text`` from a frame as it may go into a log line: escaped (no line breaks or terminal control codes)
    and cut at ``limit`` characters."""
    text = escape(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class RateLog:
    """Decides which of many like events are logged, so that a flood of them (bad frames, FAILSAFEs, BYEs,
    RESULTs that change nothing, messages of several parts) cannot fill the disk: at most one line per chart
    and kind every ``every_s`` seconds, each saying how many came since that pair's last line. Pairs are
    remembered while their window lasts and at most ``max_pairs`` at once (a sender that changes its identity
    with every frame makes a new pair each time): the events of pairs forgotten before their next line, and of
    pairs past the cap, are summed into one line every ``every_s``."""

    def __init__(self, every_s: float, max_pairs: int = 1024) -> None:
        self.every_s = every_s
        self.max_pairs = max_pairs
        self.pairs: dict[tuple[bytes, str], list] = {}   # (identity, code) -> [time of its last line, refused since]
        self.untold = 0           # refusals no line has told yet, of pairs no longer (or never) remembered
        self.next_sweep = 0.0

    def note(self, identity: bytes, code: str, now: float) -> tuple[int | None, int]:
        """Count one refusal of ``code`` from ``identity`` at ``now``. Returns (since, untold): ``since`` is None
        when this refusal is not to be logged, else how many of this pair were refused since its last line;
        ``untold`` refusals of other pairs are to be logged in one line when it is not 0."""
        key = (identity, code)
        entry = self.pairs.get(key)
        since: int | None = None
        if entry is not None:
            if now - entry[0] >= self.every_s:
                since, entry[0], entry[1] = entry[1], now, 0
            else:
                entry[1] += 1
        untold = self.sweep(now) if now >= self.next_sweep else 0
        if entry is None:
            if len(self.pairs) < self.max_pairs:
                self.pairs[key] = [now, 0]
                since = 0
            else:
                self.untold += 1
        return since, untold

    def sweep(self, now: float) -> int:
        """Forget the pairs whose window has passed; the refusals no line has told yet."""
        for key in [k for k, (said_at, _) in self.pairs.items() if now - said_at >= self.every_s]:
            self.untold += self.pairs.pop(key)[1]
        untold, self.untold = self.untold, 0
        self.next_sweep = now + self.every_s
        return untold
