"""The operator's commands against a running bridge — `status`, `halt`, `resume` — and `keygen`.

`status` asks the bridge's control socket; when nothing answers it reads the journal instead, so the FTMO
picture is there even with the bridge down. `halt` and `resume` are persisted in the journal either way: a
halted bridge stays halted after a restart. Every request carries the bridge's control token, read from the
owner-only file the bridge made at its first start: without it, the bridge refuses.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    for name, help_text in (("status", "show the FTMO headroom, state, positions and charts"),
                            ("halt", "stop opening new risk (and with --flatten, close everything)"),
                            ("resume", "lift the operator's halt")):
        p = subparsers.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".")
        p.add_argument("--config", metavar="FILE", help="the bridge's configuration (for its endpoints and journal)")
        p.add_argument("--token-file", metavar="FILE",
                       help="the bridge's control token (default: bridge.control_token_file, else control.token "
                       "beside the journal)")
        if name == "status":
            p.add_argument("--json", action="store_true", help="print JSON instead of a table")
        if name == "halt":
            p.add_argument("--flatten", action="store_true", help="also close every open position")
        p.set_defaults(func=run, command=name)
    k = subparsers.add_parser(
        "keygen", help="make CURVE keys: the bridge's pair, or with --client a pair for an EA's terminal",
        description="Without --client: write NAME.key (public) and NAME.key_secret (secret) for the bridge. "
        "With --client NAME: write the client's pair as NAME.key_secret and put its public key into the "
        "bridge's client-keys folder (OUT/clients), optionally limited to some logins.")
    k.add_argument("--out", default="keys", metavar="DIR", help="folder for the key files (default: keys)")
    k.add_argument("--name", default="bridge", help="base name of the bridge's files (default: bridge)")
    k.add_argument("--client", metavar="NAME", help="make a client's key pair and allow it in")
    k.add_argument("--login", type=int, action="append", metavar="LOGIN",
                   help="with --client: an account this key may speak for (repeat it; default: any the bridge "
                   "serves)")
    k.set_defaults(func=keygen)


def run(args: argparse.Namespace) -> int:
    from mt5bridge.bridge.access import (
        AccessError,
        control_token_path,
        read_control_token,
    )
    from mt5bridge.bridge.server import control_request
    from mt5bridge.config import journal_path, load_config

    cfg = load_config(args.config)
    token_file = Path(args.token_file) if args.token_file else control_token_path(cfg, args.config)
    token, token_problem = None, ""
    try:
        token = read_control_token(token_file)
    except AccessError as exc:
        # Still ask: a bridge that is down is told apart from one that refuses, and `status` and `halt` work
        # from the journal when it is down.
        token_problem = str(exc)
    if args.command == "status":
        answer = control_request(cfg.bridge.control_endpoint, {"cmd": "status"}, token=token)
        source = "bridge"
        if answer is None:
            answer = _from_journal(journal_path(cfg, args.config), cfg)
            source = "journal (the bridge is not answering)"
        if answer is None:
            print(f"mt5bridge status: no bridge answers on {cfg.bridge.control_endpoint} and there is no journal "
                  f"at {journal_path(cfg, args.config)}", file=sys.stderr)
            return 1
        if answer.get("ok") is False:
            return _refused(args.command, answer, token_problem)
        if args.json:
            from mt5bridge.common import strictjson

            # Strict JSON: what has no bound (a position without a stop) is null, never Infinity or NaN.
            print(strictjson.dumps(dict(answer, source=source), indent=2, default=str))
        else:
            print(render_status(answer, source))
        return 0
    halted = args.command == "halt"
    flatten = bool(getattr(args, "flatten", False))
    answer = control_request(cfg.bridge.control_endpoint, {"cmd": args.command, "flatten": flatten, "by": "cli"},
                             token=token)
    if answer is None:
        from mt5bridge.bridge.journal import Journal

        with Journal(journal_path(cfg, args.config)) as journal:
            journal.set_halt(halted, flatten=flatten, by="cli (bridge down)", time_ms=int(time.time() * 1000))
        print(f"mt5bridge {args.command}: the bridge is not running; recorded in the journal, it applies at its "
              "next start", file=sys.stderr)
        return 0
    if not answer.get("ok"):
        return _refused(args.command, answer, token_problem)
    print(f"mt5bridge {args.command}: done ({'flatten' if flatten else 'no new risk'})" if halted
          else "mt5bridge resume: done", file=sys.stderr)
    return 0


def _refused(command: str, answer: dict, token_problem: str) -> int:
    from mt5bridge.bridge.logsafe import escape

    print(f"mt5bridge {command}: {escape(str(answer.get('error')))}", file=sys.stderr)
    if token_problem:
        print(f"mt5bridge {command}: {token_problem}", file=sys.stderr)
    return 1


def _from_journal(path: Path, cfg) -> dict | None:
    """The status from the journal while the bridge is down, in the shape the bridge answers: each account's
    floors and headroom worked out from its saved state, the clock of its last saved tick, its positions as last
    seen, today's refusal counts; ``snapshot`` keeps the journal's own record."""
    if not Path(path).exists():
        return None
    from mt5bridge.bridge import readout
    from mt5bridge.bridge.journal import Journal

    with Journal(path) as journal:
        out = {"halt": journal.halt_state(), "accounts": {}}
        for login in journal.accounts():
            snap = journal.snapshot(login)
            saved = snap.get("account")
            info: dict = {"snapshot": snap, "positions": [], "in_flight": [], "charts": []}
            if saved:
                a = readout.floors_from_saved(saved, cfg.ftmo)
                now_ms = int(saved.get("now_ms") or snap.get("saved_ms") or 0)
                f = readout.ftmo_picture(a, cfg.ftmo, now_ms)
                info.update(account=a, ftmo=f)
                for p in snap.get("open_positions") or []:
                    info["positions"].append({
                        "ticket": p["ticket"], "symbol": p["symbol"], "side": p["side"],
                        "volume": p.get("last_volume", p["volume"]), "open_price": p["open_price"],
                        "sl": p.get("last_sl", p["sl"]), "tp": p.get("last_tp", p["tp"]), "profit": p["profit"],
                        "managed": bool(p.get("managed")), "risk_to_stop": None, "risk_share": None})
                day = readout.utc_day(now_ms)
                counts: dict[str, int] = {}
                for row in journal.refusals(login, day):
                    counts[row["reason_code"]] = counts.get(row["reason_code"], 0) + row["count"]
                info["refusals_today"] = counts
            out["accounts"][login] = info
        return out


def render_status(answer: dict, source: str) -> str:
    from mt5bridge.bridge.logsafe import escape
    from mt5bridge.bridge.readout import status_lines

    lines = [f"from the {source}", *status_lines(answer)]
    # Symbols and the halt's `by` come from outside: no escape sequence of theirs reaches the terminal.
    return "\n".join(escape(line) for line in lines)


def keygen(args: argparse.Namespace) -> int:
    import re

    import zmq

    from mt5bridge.bridge.access import (
        CLIENTS_FOLDER_NAME,
        write_public_key,
        write_secret_key,
    )

    if not zmq.has("curve"):
        print("mt5bridge keygen: this pyzmq/libzmq has no CURVE support", file=sys.stderr)
        return 2
    name = args.client or args.name
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name):
        print(f"mt5bridge keygen: {name!r} is not a usable name: letters, digits, '.', '_' and '-' only",
              file=sys.stderr)
        return 2
    if args.login and not args.client:
        print("mt5bridge keygen: --login limits a client's key: give --client NAME too", file=sys.stderr)
        return 2
    if args.login and min(args.login) <= 0:
        print("mt5bridge keygen: --login takes account numbers above 0", file=sys.stderr)
        return 2
    out = Path(args.out)
    public_file = out / CLIENTS_FOLDER_NAME / f"{name}.key" if args.client else out / f"{name}.key"
    secret_file = out / f"{name}.key_secret"
    for path in (public_file, secret_file):
        if path.exists():
            print(f"mt5bridge keygen: {path} exists: keys are never overwritten (every EA or bridge that uses "
                  "them would be locked out); choose another name, or delete it first", file=sys.stderr)
            return 2
    public_file.parent.mkdir(parents=True, exist_ok=True)
    public, secret = (key.decode("ascii") for key in zmq.curve_keypair())
    write_secret_key(secret_file, public, secret, name)
    if not args.client:
        write_public_key(public_file, public, name, client=False)
        print(f"public key:  {public_file}\nsecret key:  {secret_file} (owner-only)\n"
              f"Put the secret file in bridge.curve_secret_key_file; give every EA the public key as its "
              f"InpCurveServerKey: {public}\nThen allow each terminal in with `mt5bridge keygen --client NAME "
              f"--out {out}`.", file=sys.stderr)
        return 0
    write_public_key(public_file, public, name, args.login)
    server = out / f"{args.name}.key"
    server_key = ""
    if server.exists():
        import zmq.auth

        server_key = zmq.auth.load_certificate(str(server))[0].decode("ascii")
    limited = f"for logins {', '.join(map(str, args.login))}" if args.login else "for any login the bridge serves"
    print(f"client {name} allowed in {limited}: {public_file}\n"
          f"  (the bridge reads {out / CLIENTS_FOLDER_NAME}, the default beside {args.name}.key_secret, or "
          "bridge.curve_clients_folder; restart it to apply)\n"
          f"The EA's inputs on every chart of that terminal:\n"
          f"  InpCurveServerKey = {server_key or '(the bridge public key: mt5bridge keygen)'}\n"
          f"  InpCurvePublicKey = {public}\n"
          f"  InpCurveSecretKey = the secret-key line of {secret_file} (owner-only: give it to that terminal "
          "alone)", file=sys.stderr)
    return 0
