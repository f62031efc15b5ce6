"""The bridge process: a ZeroMQ ROUTER the EAs connect to, a control socket for the operator, the node.

One thread, one loop: frames are answered in arrival order, each request by exactly one reply (the node
decides which). The loop never spins: it sleeps in a blocking receive (at most WAIT_S) until a frame comes,
so zmq's I/O thread keeps the CPU it needs on a small machine. SIGINT / SIGTERM (Ctrl-C on Windows too) end the loop
after the frame in hand; the journal is flushed and the process exits 0.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import os
import signal
import time
from pathlib import Path
from urllib.parse import urlparse

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from mt5bridge.bridge import logsafe
from mt5bridge.bridge import protocol as wire
from mt5bridge.bridge.access import (AccessError, ClientKey, client_keys_folder, control_token_path, ensure_control_token,
                              load_client_keys)
from mt5bridge.config import Config, journal_path
from mt5bridge.bridge.journal import Journal, JournalError
from mt5bridge.bridge.node import Node
from mt5bridge.bridge.ratelog import RateLog
from mt5bridge.bridge.recorder import start_recorder

log = logging.getLogger("mt5bridge.bridge.server")

HOUSEKEEPING_S = 0.5
FAULT_LOG_EVERY_S = 60.0   # one traceback per kind of fault in this time
ZAP_DOMAIN = b"mt5bridge"
CONTROL_MAX_BYTES = 65_536
MAX_BY_CHARS = 80           # who halted or resumed, as the control request names it
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


def _secure(sock: zmq.Socket, cfg: Config, config_path: str | None) -> dict[str, ClientKey] | None:
    """CURVE on the EA socket when the bridge has a secret key, loopback or not: a trader who gives keys wants
    them used. Returns the client keys the ZAP handler lets in (None without CURVE)."""
    b = cfg.bridge
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
        try:
            keys = load_client_keys(client_keys_folder(cfg, config_path))
        except AccessError as exc:
            raise BridgeError(str(exc)) from None
        sock.curve_secretkey = secret
        sock.curve_publickey = public
        sock.curve_server = True
        # Without a ZAP handler answering, libzmq lets every CURVE client in; the domain makes it ask ours.
        sock.zap_domain = ZAP_DOMAIN
        log.info("CURVE encryption on %s (server key %s); %d client key(s) allowed: %s", b.endpoint,
                 public.decode(), len(keys), ", ".join(sorted(k.name for k in keys.values())))
        return keys
    if is_loopback(b.endpoint):
        return None
    if b.allow_insecure_remote:
        for _ in range(3):
            log.critical("bridge.endpoint %s is reachable from other machines WITHOUT encryption "
                         "(allow_insecure_remote = true): anyone who can reach it can send orders", b.endpoint)
        return None
    raise BridgeError(
        f"bridge.endpoint {b.endpoint} is not loopback: give bridge.curve_secret_key_file (make one with "
        "`mt5bridge keygen`) or set bridge.allow_insecure_remote = true knowingly")


class _ClientAllowList:
    """The ZAP handler's question, "may this key connect?", answered from the client-keys folder.

    Every refusal is counted; they are logged at a bounded rate, since anyone who can reach the port can
    make them."""

    def __init__(self, keys: dict[str, ClientKey], folder: Path) -> None:
        self.keys = keys
        self.folder = folder
        self.refused = 0
        self.last_refused = ""

    def callback(self, domain: str, key: bytes) -> bool:
        if key.decode("ascii", "replace") in self.keys:
            return True
        self.refused += 1
        self.last_refused = key.decode("ascii", "replace")
        return False


def _bind_owner_only(sock: zmq.Socket, endpoint: str) -> None:
    """Bind; an ``ipc://`` socket file is made owner-only: connecting to it needs write permission on it."""
    if not endpoint.startswith("ipc://") or os.name == "nt":
        sock.bind(endpoint)
        return
    # The umask covers the instant between bind() creating the file and the chmod: no one else can connect
    # in between. bind() creates the file in this thread, before it returns.
    old = os.umask(0o077)
    try:
        sock.bind(endpoint)
    finally:
        os.umask(old)
    path = sock.getsockopt_string(zmq.LAST_ENDPOINT)[len("ipc://"):]
    if path.startswith("@"):
        log.warning("control endpoint %s is an abstract socket, which has no file permissions: any local "
                    "process can reach it (the control token still guards it)", endpoint)
        return
    os.chmod(path, 0o600)


class Bridge:
    def __init__(self, cfg: Config, config_path: str | None = None, *, model: str | None = None,
                 journal: Journal | None = None, news=None) -> None:
        self.cfg = cfg
        if cfg.funded.news_blackout and news is None:
            # Checked before anything opens: every account's engine would be refused at its HELLO.
            raise BridgeError("funded.news_blackout is on but no news calendar was given to the bridge "
                              "(mt5bridge.market.news.blackout_calendar reads it)")
        self.journal = journal or Journal(journal_path(cfg, config_path))
        try:
            # A bridge whose journal cannot write would send commands it cannot remember: it does not start.
            self.journal.probe()
        except JournalError as exc:
            self.journal.close()
            raise BridgeError(f"{exc}: the bridge needs a journal it can write (free disk space, write "
                              "permission on the file and its folder)") from None
        self.node = Node(cfg, self.journal, model=model, news=news)
        # Whatever set up this process's logging, text from frames and control requests is escaped in it.
        logsafe.protect()
        try:
            self.token = ensure_control_token(control_token_path(cfg, config_path))
        except AccessError as exc:
            self.close()
            raise BridgeError(str(exc)) from None
        self._token_bytes = self.token.encode()
        self.control_refused = 0          # control requests refused for want of the token, since the start
        self._control_refused_logged = 0
        self._control_refused_said = float("-inf")
        self._allow_list: _ClientAllowList | None = None
        self._auth: ThreadAuthenticator | None = None
        self._clients_refused_logged = 0
        self._clients_refused_said = float("-inf")
        # A context of its own: the ZAP handler answers for every socket of its context, and this bridge's
        # allow-list must not apply to (or be bypassed through) anyone else's sockets in the same process.
        self.ctx = zmq.Context()
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
        self.control = None
        try:
            self.client_keys = _secure(self.router, cfg, config_path)
        except BridgeError:
            self.close()
            raise
        self.node.client_keys = self.client_keys
        # The chart each identity was introduced by, and with which client key (CURVE only): see _handle_keyed.
        self._chart_keys: dict[bytes, tuple[object, str | None]] = {}
        if self.client_keys is not None:
            self._allow_list = _ClientAllowList(self.client_keys, client_keys_folder(cfg, config_path))
            self._auth = ThreadAuthenticator(self.ctx)
            self._auth.start()
            self._auth.configure_curve_callback(domain=ZAP_DOMAIN.decode(), credentials_provider=self._allow_list)
        if not is_loopback(cfg.bridge.control_endpoint):
            self.close()
            raise BridgeError(f"bridge.control_endpoint {cfg.bridge.control_endpoint} must be on loopback")
        self.control = self.ctx.socket(zmq.REP)
        self.control.setsockopt(zmq.LINGER, 0)
        # A control request is a few hundred bytes; anyone local can connect before the token is checked.
        self.control.setsockopt(zmq.MAXMSGSIZE, CONTROL_MAX_BYTES)
        try:
            self.router.bind(cfg.bridge.endpoint)
            _bind_owner_only(self.control, cfg.bridge.control_endpoint)
        except (zmq.ZMQError, OSError) as exc:
            self.close()
            raise BridgeError(f"cannot bind {cfg.bridge.endpoint} / {cfg.bridge.control_endpoint}: {exc} "
                              "(is another bridge running?)") from None
        self.stopping = False
        self._faults: dict[tuple[str, str, str], tuple[float, int]] = {}
        self._dropped = RateLog(cfg.bridge.log_refusals_every_s)   # messages of several parts: not an EA's
        self.frames = 0
        self.started = time.monotonic()
        self.recorder = start_recorder(cfg, config_path, self.node, model)   # for `replay --recorded`

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
                self._guarded("housekeeping", self._housekeeping)
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
            since, _ = self._dropped.note(identity, "parts", time.monotonic())
            if since is not None:
                log.warning("dropped a message of %d parts from %r%s", 2 + extra, identity,
                            f" ({since} more since the last line)" if since else "")
            return
        # The node reads the connection's properties (the ZAP User-Id: the client's CURVE key) from the frame.
        self.node.frame = part
        if self.recorder is not None:
            self.recorder.frame(identity, frame, self.node)
        try:
            if self.client_keys is not None:
                reply = self._handle_keyed(identity, frame)
            else:
                reply = self.node.handle(identity, frame)
        except Exception as exc:
            # A fault of ours (a bug) must not stop the bridge for every other chart, nor go unseen: it is logged
            # with its traceback and the EA gets an ERROR answering its frame, so it holds at once. The words go
            # to the log only: they may name another account's command or chart.
            self._fault(f"a frame from {identity!r}", exc)
            self.node.errors["INTERNAL_ERROR"] += 1
            reply = wire.encode(wire.ErrorReply(reply_to=wire.frame_seq(frame), code="INTERNAL_ERROR",
                                                message="the bridge failed on this frame; its log says why"))
        if reply is not None:
            router.send(identity, zmq.SNDMORE)
            router.send(reply)

    def _housekeeping(self) -> None:
        self._say_refusals(time.monotonic())
        self._forget_chart_keys()
        if self.recorder is not None:
            self.recorder.housekeeping(self.node)
        self.node.housekeeping()

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

    def _handle_keyed(self, identity: bytes, frame: bytes) -> bytes | None:
        """With CURVE: a chart belongs to the client key that introduced it.

        zmq hands a chart's identity over to whichever connection claims it, so without this check a client
        key limited to account B could send TICKs under the identity of a chart of account A and be served
        as A. A frame from another key under a known chart's identity is refused unless it is a HELLO, which
        the node judges for the new key (and which then makes the chart that key's)."""
        node = self.node
        user_id = node.frame_property("User-Id")
        known = self._chart_keys.get(identity)
        chart = node.charts.get(identity)
        if known is not None and known[0] is chart and chart is not None and known[1] != user_id:
            seq, kind = _seq_and_type(frame)
            if kind != "HELLO":
                return node._refuse(identity, wire.ProtocolError(
                    "FORBIDDEN", "this chart was introduced with another client key: say HELLO first", seq))
        reply = node.handle(identity, frame)
        chart = node.charts.get(identity)
        if chart is not None and (known is None or known[0] is not chart):
            self._chart_keys[identity] = (chart, user_id)
        return reply

    def _answer_control(self) -> None:
        raw = self.control.recv()
        try:
            answer = self._control_answer(raw)
        except Exception as exc:
            # A REP socket that received must reply, or it answers no one again: a fault of ours is answered too.
            log.error("control: failed to answer a request: %s", exc, exc_info=True)
            answer = {"ok": False, "error": f"the bridge failed on this request: {exc}"}
        self.control.send(json.dumps(answer, default=_jsonable).encode())

    def _control_answer(self, raw: bytes) -> dict:
        try:
            request = json.loads(raw)
            if not isinstance(request, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            return self._refuse_control(f"refused: not a control request ({exc})")
        given = request.get("token")
        if not isinstance(given, str) or not given:
            return self._refuse_control("refused: the request carries no control token (mt5bridge status, halt and "
                                        "resume read it from the bridge's token file; see bridge.control_token_file)")
        # Constant time: how long the comparison takes says nothing about how much of a guess was right.
        if not hmac.compare_digest(given.encode("utf-8", "replace"), self._token_bytes):
            return self._refuse_control("refused: wrong control token (is it the token file of this bridge?)")
        cmd = request.get("cmd")
        if cmd == "status":
            answer = self.node.status()
            answer["uptime_s"] = time.monotonic() - self.started
            answer["frames"] = self.frames
            answer["control_refused"] = self.control_refused
            if self._allow_list is not None:
                answer["clients_refused"] = self._allow_list.refused
            return answer
        if cmd in ("halt", "resume"):
            # Kept short and escaped here as well as in the log: it goes into the journal and `status`.
            by = logsafe.escape(str(request.get("by", "operator")))[:MAX_BY_CHARS]
            try:
                self.node.set_halt(cmd == "halt", bool(request.get("flatten")), by)
            except JournalError as exc:
                # The operator's word is journaled before it takes effect: not written, not done.
                return {"ok": False, "error": f"not done: {exc}"}
            if self.recorder is not None:
                self.recorder.control(cmd == "halt", bool(request.get("flatten")), by)
            return {"ok": True, "halt": self.node.halt}
        return {"ok": False, "error": f"unknown control command {logsafe.escape(str(cmd))[:40]!r}"}

    def _refuse_control(self, error: str) -> dict:
        """Refused, and counted; the trader hears of it at a bounded rate (anyone local can send these)."""
        self.control_refused += 1
        self._say_refusals(time.monotonic())
        return {"ok": False, "error": error}

    def _say_refusals(self, now: float) -> None:
        every = self.cfg.bridge.log_refusals_every_s
        if now - self._control_refused_said >= every and self.control_refused > self._control_refused_logged:
            log.warning("control: refused %d request(s) without the right token (%d since the start); is another "
                        "process trying to halt or read this bridge?",
                        self.control_refused - self._control_refused_logged, self.control_refused)
            self._control_refused_logged = self.control_refused
            self._control_refused_said = now
        allow = self._allow_list
        if (allow is not None and now - self._clients_refused_said >= every
                and allow.refused > self._clients_refused_logged):
            log.warning("CURVE: refused %d connection(s) whose client key is not in %s (%d since the start; "
                        "latest key %s); add a client with `mt5bridge keygen --client NAME`",
                        allow.refused - self._clients_refused_logged, allow.folder, allow.refused,
                        allow.last_refused)
            self._clients_refused_logged = allow.refused
            self._clients_refused_said = now

    # ---- shutting down -------------------------------------------------------------------------------------

    def _forget_chart_keys(self) -> None:
        if self._chart_keys:
            charts = self.node.charts
            for identity in [i for i, (chart, _) in self._chart_keys.items() if charts.get(i) is not chart]:
                del self._chart_keys[identity]

    # ---- shutting down -------------------------------------------------------------------------------------

    def close(self) -> None:
        """Finish cleanly: every account's state saved, the journal flushed and closed, the sockets closed. A
        fault on the way (a journal that cannot write) is logged and the rest still done."""
        try:
            if getattr(self, "recorder", None) is not None:
                self._guarded("finishing the recording", self.recorder.close)
            if hasattr(self, "node"):
                self._guarded("saving the state at shutdown", self.node.close)
            self._guarded("closing the journal", self.journal.close)
        finally:
            if getattr(self, "_auth", None) is not None:
                self._auth.stop()
                self._auth = None
            for sock in (getattr(self, "router", None), getattr(self, "control", None)):
                if sock is not None:
                    sock.close(linger=0)
            if getattr(self, "ctx", None) is not None:
                self.ctx.destroy(linger=0)
                self.ctx = None


def _seq_and_type(frame: bytes) -> tuple[int, str | None]:
    """A frame's seq and type as far as they can be read (only on the rare path of a refusal)."""
    try:
        msg = json.loads(frame)
        seq = msg.get("seq")
        return (seq if type(seq) is int and 0 <= seq < 2**53 else wire.REPLY_TO_UNKNOWN), msg.get("type")
    except (ValueError, AttributeError):
        return wire.REPLY_TO_UNKNOWN, None


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


def control_request(endpoint: str, request: dict, timeout_ms: int = 1500, *, token: str | None = None) -> dict | None:
    """Ask a running bridge, with its control ``token``; None when nothing answers in time (the Lazy Pirate way:
    LINGER 0, then close). A bridge refuses a request without the right token: ``{"ok": false, "error": ...}``."""
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, timeout_ms)
    sock.setsockopt(zmq.SNDTIMEO, timeout_ms)
    if token is not None:
        request = dict(request, token=token)
    try:
        sock.connect(endpoint)
        sock.send(json.dumps(request).encode())
        return json.loads(sock.recv())
    except zmq.Again:
        return None
    finally:
        sock.close(linger=0)
