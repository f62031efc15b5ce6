"""Alerts that reach a trader away from the PC: what happened, in words with numbers, sent through Apprise.

The bridge says what happened (``emit``); whether and where it goes is configuration (``[alerts]``): each kind
of event is ``on`` (sent to every channel, shown in status and on the page), ``silent`` (shown in status, on
the page and in the log, not sent) or ``off``. Channels are Apprise URLs (Telegram, Discord, e-mail, a JSON
webhook, ...), so the bridge carries no code of its own per service.

Sending never touches the tick path: ``emit`` only puts the event on each channel's bounded queue (when a
queue is full the event is dropped for that channel and counted, never waited for), and one sender thread per
channel delivers them in order. A channel that fails is retried with back-off, every failure counted and
shown in `status`; a channel that stays down costs the other channels and trading nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("mt5bridge.bridge.alerts")

# Every kind of event, with the [alerts] key that switches it and how urgent it is to a trader (Apprise's
# notify type: a channel may show a warning or a failure differently).
EVENTS: dict[str, tuple[str, str]] = {
    "fill": ("fills", "info"),
    "order_refused": ("fills", "warning"),
    "close": ("closes", "info"),
    "halt": ("operator", "warning"),
    "resume": ("operator", "info"),
    "trading_state": ("trading_state", "warning"),
    "headroom": ("headroom", "warning"),
    "ea_silent": ("ea_silence", "failure"),
    "ea_back": ("ea_silence", "success"),
    "failsafe": ("failsafe", "failure"),
    "journal_unavailable": ("journal", "failure"),
    "journal_back": ("journal", "success"),
    "bridge_started": ("bridge", "info"),
    "bridge_stopped": ("bridge", "warning"),
    "bridge_restarted_after_crash": ("bridge", "failure"),
    "daily_summary": ("daily_summary", "info"),
}
RECENT = 50   # events kept for status and the page


REPEAT_S = 60.0
"""Seconds within which the very same alert (kind, title and words) is counted rather than sent again."""
MAX_REPEATS_KEPT = 1024


@dataclass(frozen=True)
class Event:
    kind: str
    title: str
    body: str
    time_ms: int    # wall clock, UTC ms: when the bridge noticed it
    sent: bool      # False for a silent kind


class _Channel:
    """One Apprise URL, its queue and its sender thread."""

    def __init__(self, url: str, number: int, settings, counters: Alerts) -> None:
        import apprise

        self.url = url
        self.name = _redact(url, number)
        self.apprise = apprise.Apprise()
        if not self.apprise.add(url):
            raise ValueError(f"alerts.urls: {self.name} is not an Apprise URL it can use (see its list of services)")
        self.queue: deque[Event] = deque()
        self.settings = settings
        self.counters = counters
        self.wake = threading.Condition()
        self.stopping = False
        self.failing_since: float | None = None
        self.thread = threading.Thread(target=self._run, name=f"alerts {self.name}", daemon=True)

    def put(self, event: Event) -> bool:
        with self.wake:
            if len(self.queue) >= self.settings.queue_size:
                return False
            self.queue.append(event)
            self.wake.notify()
        return True

    def _run(self) -> None:
        while True:
            with self.wake:
                while not self.queue and not self.stopping:
                    self.wake.wait()
                if not self.queue:
                    return
                event = self.queue[0]
            self._deliver(event)
            with self.wake:
                self.queue.popleft()

    def _deliver(self, event: Event) -> None:
        delay = self.settings.retry_after_s
        attempt = 0
        for attempt in range(1 + self.settings.retries):
            try:
                ok = bool(self.apprise.notify(body=event.body, title=event.title,
                                              notify_type=EVENTS[event.kind][1]))
                error = "the service did not accept it"
            except Exception as exc:   # a channel's fault must never reach the bridge
                ok, error = False, f"{type(exc).__name__}: {exc}"
            if ok:
                self.counters.count("sent")
                self.failing_since = None
                return
            self.counters.count("failed", f"{self.name}: {error}")
            if self.failing_since is None:
                self.failing_since = time.monotonic()
                log.warning("alerts: %s failed (%s); retrying with back-off", self.name, error)
            if attempt == self.settings.retries or self.stopping:
                break
            with self.wake:
                # stop() wakes this early: a stopping bridge gives each alert one more try, not the whole back-off.
                self.wake.wait(delay)
            delay = min(delay * 2.0, self.settings.max_retry_after_s)
        self.counters.count("dropped")
        log.error("alerts: %s: gave up on %r after %d attempts", self.name, event.title, attempt + 1)


class Alerts:
    """The alerts of one bridge: ``emit`` from the bridge's thread, delivery on the channels' own threads."""

    def __init__(self, settings, *, wall=time.time) -> None:
        self.settings = settings
        self.wall = wall
        self._lock = threading.Lock()
        self.counts = {"sent": 0, "failed": 0, "dropped": 0, "repeated": 0}
        self.last_error = ""
        # The same alert again within REPEAT_S is counted, not sent: a flood of one FAILSAFE must neither flood
        # the trader's phone nor the log. The next one sent after the window says how many were held back.
        self._repeats: dict[tuple[str, str, str], list[float]] = {}
        self.recent: deque[Event] = deque(maxlen=RECENT)
        self.channels = [_Channel(url, n, settings, self) for n, url in enumerate(settings.urls, 1)]

    def start(self) -> Alerts:
        for channel in self.channels:
            channel.thread.start()
        return self

    def emit(self, kind: str, title: str, body: str) -> None:
        """Queue an event (never blocks, never raises for a channel's sake)."""
        mode = getattr(self.settings, EVENTS[kind][0])
        if mode == "off":
            return
        now = time.monotonic()
        key = (kind, title, body)
        seen = self._repeats.get(key)
        if seen is not None and now - seen[0] < REPEAT_S:
            seen[1] += 1
            self.count("repeated")
            return
        if seen is not None and seen[1]:
            body = f"{body} (and {seen[1]:.0f} times more in the {REPEAT_S:.0f} s before)"
        # Put back last, so the dict stays in the order the alerts were sent: at the bound, the one sent longest
        # ago is forgotten (a repeat of it is then sent again, never lost), however many came in the window.
        self._repeats.pop(key, None)
        while len(self._repeats) >= MAX_REPEATS_KEPT:
            del self._repeats[next(iter(self._repeats))]
        # An alert of another kind under the same [alerts] key says the opposite (EA back after EA silent,
        # journal back, resume after halt): the alert it ends is sent again when it comes back, even within
        # REPEAT_S, or the last word the trader has would be "back" while the EA is silent again.
        setting = EVENTS[kind][0]
        for other in [k for k in self._repeats if k[0] != kind and EVENTS[k[0]][0] == setting]:
            del self._repeats[other]
        self._repeats[key] = [now, 0]
        event = Event(kind, title, body, int(self.wall() * 1000), mode == "on")
        self.recent.append(event)
        # At INFO: what an alert says is in the log already, at its own level, where it happened.
        log.info("alert%s: %s: %s", "" if mode == "on" else " (silent)", title, body)
        if mode != "on":
            return
        for channel in self.channels:
            if not channel.put(event):
                self.count("dropped", f"{channel.name}: queue full ({self.settings.queue_size} events)")

    def count(self, what: str, error: str = "") -> None:
        with self._lock:
            self.counts[what] += 1
            if error:
                self.last_error = error

    def status(self) -> dict[str, Any]:
        with self._lock:
            counts = dict(self.counts)
        return {
            **counts, "last_error": self.last_error,
            "queued": sum(len(c.queue) for c in self.channels),
            "channels": [{"channel": c.name, "queued": len(c.queue), "failing": c.failing_since is not None}
                         for c in self.channels],
            "recent": [{"kind": e.kind, "title": e.title, "body": e.body, "time_ms": e.time_ms, "sent": e.sent}
                       for e in list(self.recent)[-20:]],
        }

    def stop(self, timeout_s: float | None = None) -> None:
        """Deliver what is queued (each channel gets ``flush_s`` at most), then end the sender threads."""
        timeout_s = self.settings.flush_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout_s
        for channel in self.channels:
            with channel.wake:
                channel.stopping = True
                channel.wake.notify_all()
        for channel in self.channels:
            if channel.thread.is_alive():
                channel.thread.join(max(0.0, deadline - time.monotonic()))
            if channel.queue:
                log.error("alerts: %s: %d alerts not delivered at shutdown", channel.name, len(channel.queue))


class _NoAlerts:
    """A node without a server (replay, tests): events go nowhere and cost nothing."""

    def emit(self, kind: str, title: str, body: str) -> None:
        pass

    def status(self) -> None:
        return None

    def stop(self, timeout_s: float | None = None) -> None:
        pass


NO_ALERTS = _NoAlerts()


def make_alerts(settings) -> Alerts:
    """The bridge's alerts as ``[alerts]`` sets them. Without a URL the events are still shown in status and on
    the page. Raises ValueError naming a URL Apprise cannot use, or saying Apprise is not installed."""
    if settings.urls:
        try:
            import apprise  # noqa: F401
        except ImportError:
            raise ValueError('alerts.urls is set but Apprise is not installed: pip install "mt5bridge[alerts]"') \
                from None
    return Alerts(settings).start()


def _redact(url: str, number: int) -> str:
    """The URL as logs and status show it: its service and place in the list, never the tokens or passwords
    that Apprise URLs carry in their host and path (a Telegram bot token, a webhook's secret path)."""
    return f"{url.partition('://')[0]} channel {number}"
