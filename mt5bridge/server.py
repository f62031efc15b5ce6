"""The bridge process: a ZeroMQ ROUTER the EAs connect to, a control socket for the operator, the node.

One thread, one loop: frames are answered in arrival order, each request by exactly one reply (the node
decides which). The loop never spins: it sleeps in a blocking receive (at most WAIT_S) until a frame comes,
so zmq's I/O thread keeps the CPU it needs on a small machine. SIGINT / SIGTERM (Ctrl-C on Windows too) end the loop
after the frame in hand; the journal is flushed and the process exits 0.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import signal
import time
from pathlib import Path
from urllib.parse import urlparse

import zmq
import zmq.auth

from mt5bridge import protocol as wire
from mt5bridge.config import Config, journal_path
from mt5bridge.journal import Journal, JournalError
from mt5bridge.node import Node

log = logging.getLogger("mt5bridge.server")

HOUSEKEEPING_S = 0.5
FAULT_LOG_EVERY_S = 60.0   # one traceback per kind of fault in this time
WAIT_S = 0.05               # longest a blocking receive waits before the loop looks at everything else


class BridgeError(RuntimeError):
    """The bridge cannot start as configured; the message says what to change."""


def is_loopback(endpoint: str) -> bool:
    """tcp://127.x.x.x, tcp://[::1], tcp://localhost, ipc:// and inproc:// stay on this machine."""
    if endpoint.startswith(("ipc://", "inproc://")):
        return True
    host = urlparse(endpoint).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False   # a name or "*": it may reach beyond this machine


def _secure(sock: zmq.Socket, cfg: Config, config_path: str | None) -> None:
    b = cfg.bridge
    if is_loopback(b.endpoint):
        return
    if b.curve_secret_key_file:
        key_file = Path(b.curve_secret_key_file)
        if not key_file.is_absolute() and config_path:
            key_file = Path(config_path).resolve().parent / key_file
        try:
            public, secret = zmq.auth.load_certificate(str(key_file))
        except (OSError, ValueError) as exc:
            raise BridgeError(f"bridge.curve_secret_key_file {key_file}: cannot load the key: {exc}") from None
        if secret is None:
            raise BridgeError(f"bridge.curve_secret_key_file {key_file} holds no secret key: use the .key_secret file")
        sock.curve_secretkey = secret
        sock.curve_publickey = public
        sock.curve_server = True
        log.info("CURVE encryption on %s (server key %s)", b.endpoint, public.decode())
        return
    if b.allow_insecure_remote:
        for _ in range(3):
            log.critical("bridge.endpoint %s is reachable from other machines WITHOUT encryption "
                         "(allow_insecure_remote = true): anyone who can reach it can send orders", b.endpoint)
        return
    raise BridgeError(
        f"bridge.endpoint {b.endpoint} is not loopback: give bridge.curve_secret_key_file (make one with "
        "`mt5bridge keygen`) or set bridge.allow_insecure_remote = true knowingly")


class Bridge:
    def __init__(self, cfg: Config, config_path: str | None = None, *, model: str | None = None,
                 journal: Journal | None = None) -> None:
        self.cfg = cfg
        self.journal = journal or Journal(journal_path(cfg, config_path))
        try:
            # A bridge whose journal cannot write would send commands it cannot remember: it does not start.
            self.journal.probe()
        except JournalError as exc:
            self.journal.close()
            raise BridgeError(f"{exc}: the bridge needs a journal it can write (free disk space, write "
                              "permission on the file and its folder)") from None
        self.node = Node(cfg, self.journal, model=model)
        self.ctx = zmq.Context.instance()
        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        # A reply to a chart that has gone away is dropped by zmq rather than queued forever.
        self.router.setsockopt(zmq.ROUTER_MANDATORY, 0)
        # An EA that reconnects keeps its chart identity; without hand-over, zmq would silently drop the new
        # connection while it still holds the old one, and the chart would wait on a bridge that never hears it.
        self.router.setsockopt(zmq.ROUTER_HANDOVER, 1)
        # Frames over max_frame_bytes are answered with FRAME_TOO_LARGE by the node; only a frame far beyond it
        # (an attack, not an EA) makes zmq drop the connection before it reaches memory.
        self.router.setsockopt(zmq.MAXMSGSIZE, cfg.bridge.max_frame_bytes * 16)
        _secure(self.router, cfg, config_path)
        if not is_loopback(cfg.bridge.control_endpoint):
            raise BridgeError(f"bridge.control_endpoint {cfg.bridge.control_endpoint} must be on loopback")
        self.control = self.ctx.socket(zmq.REP)
        self.control.setsockopt(zmq.LINGER, 0)
        try:
            self.router.bind(cfg.bridge.endpoint)
            self.control.bind(cfg.bridge.control_endpoint)
        except zmq.ZMQError as exc:
            self.close()
            raise BridgeError(f"cannot bind {cfg.bridge.endpoint} / {cfg.bridge.control_endpoint}: {exc} "
                              "(is another bridge running?)") from None
        self.stopping = False
        self._faults: dict[tuple[str, str, str], tuple[float, int]] = {}
        self.frames = 0
        self.started = time.monotonic()

    # ---- the loop ------------------------------------------------------------------------------------------

    def request_stop(self, *_args) -> None:
        self.stopping = True

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGINT, self.request_stop)
        if hasattr(signal, "SIGTERM"):
            signal.signal(signal.SIGTERM, self.request_stop)
        if hasattr(signal, "SIGBREAK"):   # Ctrl-Break in a Windows console
            signal.signal(signal.SIGBREAK, self.request_stop)

    def serve(self, until: float | None = None, on_housekeeping=None) -> None:
        """Answer frames until a stop is requested (or ``until``, a monotonic time, passes).

        A blocking receive with a short timeout, not a poller: it is the cheapest wait pyzmq offers, and the
        control socket is cheap to look at between frames (its EVENTS), so an operator waits at most the
        timeout for an answer.
        """
        router, control = self.router, self.control
        router.setsockopt(zmq.RCVTIMEO, int(WAIT_S * 1000))
        next_house = time.monotonic() + HOUSEKEEPING_S
        next_control = 0.0
        log.info("serving on %s (control %s)", self.cfg.bridge.endpoint, self.cfg.bridge.control_endpoint)
        while not self.stopping:
            try:
                identity = router.recv()
            except zmq.Again:
                identity = None
            if identity is not None:
                self._serve_frame(identity)
            now = time.monotonic()
            # The control socket is looked at every WAIT_S, not after every frame: an operator does not
            # notice 50 ms, a tick path would notice the extra system call.
            if now >= next_control:
                if control.poll(0, zmq.POLLIN):
                    self._guarded("answering the control socket", self._answer_control)
                next_control = now + WAIT_S
            if now >= next_house:
                # Housekeeping runs outside the per-frame guard: a fault there (a journal that cannot write, a
                # bug) must not stop the bridge either.
                self._guarded("housekeeping", self.node.housekeeping)
                if on_housekeeping is not None:
                    on_housekeeping(self)
                next_house = now + HOUSEKEEPING_S
            if until is not None and now >= until:
                break

    def _serve_frame(self, identity: bytes) -> None:
        # Two plain receives and sends instead of the multipart helpers: on the tick path every
        # microsecond of Python shows in the round trip.
        router = self.router
        self.frames += 1
        # A ROUTER message is the peer's identity and at least one more frame, so the first recv never waits.
        # Received as a zmq.Frame, whose `more` pyzmq fills in C as it receives: its Python getsockopt(RCVMORE)
        # costs about a microsecond, more than the Frame and its copy to bytes.
        part = router.recv(copy=False)
        frame = part.bytes
        extra = 0
        while part.more:
            part = router.recv(copy=False)
            extra += 1
        if extra:
            # A DEALER of ours sends exactly one frame; anything else is not an EA of ours.
            log.warning("dropped a message of %d parts from %r", 2 + extra, identity)
            return
        try:
            reply = self.node.handle(identity, frame)
        except Exception as exc:
            # A fault of ours (a bug) must not stop the bridge for every other chart, nor go unseen: it is logged
            # with its traceback and the EA gets an ERROR answering its frame, so it holds at once. The words go
            # to the log only: they may name another account's command or chart.
            self._fault(f"a frame from {identity!r}", exc)
            self.node.errors["INTERNAL_ERROR"] += 1
            reply = wire.encode(wire.ErrorReply(reply_to=_frame_seq(frame), code="INTERNAL_ERROR",
                                                message="the bridge failed on this frame; its log says why"))
        if reply is not None:
            router.send(identity, zmq.SNDMORE)
            router.send(reply)

    def _guarded(self, what: str, step) -> None:
        try:
            step()
        except Exception as exc:
            self._fault(what, exc)

    def _fault(self, what: str, exc: Exception) -> None:
        """Log a fault with its traceback, at most once a minute per kind of fault, with how many were not
        logged: a fault that repeats on every frame must not fill the disk with the same traceback."""
        key = (what if not what.startswith("a frame") else "a frame", type(exc).__name__, str(exc)[:200])
        now = time.monotonic()
        last, skipped = self._faults.get(key, (-FAULT_LOG_EVERY_S, 0))
        if now - last >= FAULT_LOG_EVERY_S:
            more = f" ({skipped} more like it not logged)" if skipped else ""
            log.critical("failed in %s: %s%s", what, exc, more, exc_info=True)
            self._faults[key] = (now, 0)
        else:
            self._faults[key] = (last, skipped + 1)
        if len(self._faults) > 1000:
            self._faults.clear()

    def _answer_control(self) -> None:
        try:
            request = json.loads(self.control.recv())
            cmd = request.get("cmd")
            if cmd == "status":
                answer = self.node.status()
                answer["uptime_s"] = time.monotonic() - self.started
                answer["frames"] = self.frames
            elif cmd in ("halt", "resume"):
                self.node.set_halt(cmd == "halt", bool(request.get("flatten")), str(request.get("by", "operator")))
                answer = {"ok": True, "halt": self.node.halt}
            else:
                answer = {"ok": False, "error": f"unknown control command {cmd!r}"}
        except (ValueError, AttributeError) as exc:
            answer = {"ok": False, "error": f"bad control request: {exc}"}
        except JournalError as exc:
            # The operator's word is journaled before it takes effect: not written, not done.
            answer = {"ok": False, "error": f"not done: {exc}"}
        self.control.send(json.dumps(answer, default=_jsonable).encode())

    # ---- shutting down -------------------------------------------------------------------------------------

    def close(self) -> None:
        """Finish cleanly: every account's state saved, the journal flushed and closed, the sockets closed. A
        fault on the way (a journal that cannot write) is logged and the rest still done."""
        try:
            if hasattr(self, "node"):
                self._guarded("saving the state at shutdown", self.node.close)
            self._guarded("closing the journal", self.journal.close)
        finally:
            for sock in (getattr(self, "router", None), getattr(self, "control", None)):
                if sock is not None:
                    sock.close(linger=0)


def _frame_seq(frame: bytes) -> int:
    """The frame's seq when it has a readable one, for an ERROR that answers it; else -1."""
    try:
        seq = json.loads(frame).get("seq")
    except Exception:
        return wire.REPLY_TO_UNKNOWN
    return seq if type(seq) is int and 0 <= seq < 2**53 else wire.REPLY_TO_UNKNOWN


def _jsonable(value):
    try:
        import numpy as np

        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, np.generic):
            return value.item()
    except ImportError:  # pragma: no cover
        pass
    return str(value)


def control_request(endpoint: str, request: dict, timeout_ms: int = 1500) -> dict | None:
    """Ask a running bridge; None when nothing answers in time (the Lazy Pirate way: LINGER 0, then close)."""
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, timeout_ms)
    sock.setsockopt(zmq.SNDTIMEO, timeout_ms)
    try:
        sock.connect(endpoint)
        sock.send(json.dumps(request).encode())
        return json.loads(sock.recv())
    except zmq.Again:
        return None
    finally:
        sock.close(linger=0)
