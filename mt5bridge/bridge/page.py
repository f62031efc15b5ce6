"""The live page: a read-only view of the bridge in a browser, as FTMO's dashboard shows an account and more.

Served by Starlette under uvicorn on a thread of its own (``pip install "mt5bridge[page]"``): the page
(``page.html``, plain HTML, CSS, inline SVG and a little JavaScript, nothing fetched from the internet) asks
``status.json`` every ``page.refresh_ms`` and draws it. ``status.json`` is the very status `mt5bridge status`
reads, in strict JSON, with each account's equity curves added: the day's (every status the bridge made today,
thinned to at most CURVE_POINTS) and the challenge's (the balance at each Prague midnight from the journal, then
today's equity).

The page's thread never touches the bridge: the bridge hands it a finished status between frames
(``publish``), and the page only serves the latest one. Nothing on the page can change anything.

Loopback by default. Any other address needs a token (``page.token_file``), given by the browser as
``?token=...``, compared in constant time, and the bridge logs a loud warning at every start.
"""

from __future__ import annotations

import hmac
import logging
import socket
import threading
from collections import deque
from importlib import resources
from pathlib import Path
from typing import Any

from mt5bridge.common import strictjson

log = logging.getLogger("mt5bridge.bridge.page")

CURVE_POINTS = 2000   # points of the day's equity curve kept per account; older ones are thinned, not dropped
MIN_TOKEN_CHARS = 16


class PageError(RuntimeError):
    """The page cannot start as configured; the message says what to change."""


def page_token(settings, config_path: str | None) -> str | None:
    """The token a browser must give; None on loopback without a token file. Raises PageError for a non-loopback
    host without a usable token."""
    from mt5bridge.bridge.server import is_loopback

    token = None
    if settings.token_file:
        path = Path(settings.token_file)
        if not path.is_absolute() and config_path:
            path = Path(config_path).resolve().parent / path
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise PageError(f"page.token_file {path}: cannot read it ({exc.strerror or exc})") from None
        if len(token) < MIN_TOKEN_CHARS:
            raise PageError(f"page.token_file {path}: the token has {len(token)} characters; at least "
                            f"{MIN_TOKEN_CHARS} are needed (e.g. python -c \"import secrets; print(secrets.token_urlsafe())\")")
    if not is_loopback(f"tcp://{_bracketed(settings.host)}:{settings.port}"):
        if token is None:
            raise PageError(f"page.host {settings.host} is not loopback: give page.token_file (a file holding a token "
                            "of at least 16 characters) so that only a browser that knows it sees the account")
        for _ in range(3):
            log.critical("the live page listens on %s:%d, reachable from other machines: anyone with the token and "
                         "the address sees the account (read-only); it travels unencrypted over plain HTTP",
                         settings.host, settings.port)
    return token


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class Curves:
    """Each account's equity through the day (market time), and its balance at each Prague midnight."""

    def __init__(self) -> None:
        self.day: dict[str, deque] = {}
        self.day_of: dict[str, int | None] = {}

    def add(self, login: str, info: dict[str, Any]) -> None:
        a, f = info.get("account") or {}, info.get("ftmo") or {}
        now, reset = f.get("now_ms"), f.get("next_reset_ms")
        if not now or not a.get("balance"):
            return
        points = self.day.setdefault(login, deque())
        if self.day_of.get(login) != reset:   # a new Prague day: a new day curve
            points.clear()
            self.day_of[login] = reset
        if points and points[-1][0] == now:
            return
        points.append((now, a["equity"], a["balance"]))
        if len(points) > CURVE_POINTS:
            kept = list(points)[::2]
            points.clear()
            points.extend(kept)

    def of(self, login: str) -> list[list[float]]:
        return [list(p) for p in self.day.get(login, ())]


class LivePage:
    def __init__(self, settings, token: str | None) -> None:
        try:
            import uvicorn
            from starlette.applications import Starlette
            from starlette.responses import HTMLResponse, PlainTextResponse, Response
            from starlette.routing import Route
        except ImportError:
            raise PageError('the live page needs Starlette and uvicorn: pip install "mt5bridge[page]"') from None
        self.settings = settings
        self.token = token
        self.curves = Curves()
        self._latest = b'{"starting": true}'
        html = resources.files("mt5bridge.bridge").joinpath("page.html").read_text(encoding="utf-8")
        self._html = html.replace("__REFRESH_MS__", str(settings.refresh_ms))

        def allowed(request) -> bool:
            if self.token is None:
                return True
            given = request.query_params.get("token", "")
            return hmac.compare_digest(given.encode("utf-8", "replace"), self.token.encode())

        async def index(request):
            if not allowed(request):
                return PlainTextResponse("this page needs its token: add ?token=... to the address", 403)
            return HTMLResponse(self._html, headers={"Cache-Control": "no-store"})

        async def status(request):
            if not allowed(request):
                return PlainTextResponse("wrong or missing token", 403)
            return Response(self._latest, media_type="application/json", headers={"Cache-Control": "no-store"})

        # Read-only: GET only; anything else is refused by the router (405).
        app = Starlette(routes=[Route("/", index, methods=["GET"]), Route("/status.json", status, methods=["GET"])])
        family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            # Bound here, not by uvicorn on its thread, so that a port in use stops the start with its reason.
            self._socket.bind((settings.host, settings.port))
            self._socket.listen(128)   # a browser that comes before uvicorn's thread is up waits in the backlog
        except OSError as exc:
            self._socket.close()
            raise PageError(f"page: cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc} "
                            "(another program on that port? set page.port)") from None
        self.port = self._socket.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        name="live page", daemon=True)

    def start(self) -> LivePage:
        self._thread.start()
        log.info("live page on http://%s:%d/", _bracketed(self.settings.host), self.port)
        return self

    def publish(self, status: dict[str, Any], baselines: dict[str, list[dict]]) -> None:
        """The latest status, with each account's curves, ready to serve (called on the bridge's thread)."""
        for login, info in status.get("accounts", {}).items():
            self.curves.add(login, info)
            info["curve_day"] = self.curves.of(login)
            info["curve_challenge"] = [[b["prague_day"], b["day_start_balance"]] for b in baselines.get(login, [])]
        # Bytes swapped in one assignment: the page's thread serves either the old status or the new, whole.
        self._latest = strictjson.dumps(status, default=str).encode()

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(5)
        self._socket.close()
