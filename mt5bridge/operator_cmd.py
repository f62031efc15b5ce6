"""The operator's commands against a running bridge — `status`, `halt`, `resume` — and `keygen`.

`status` asks the bridge's control socket; when nothing answers it reads the journal instead, so the FTMO
picture is there even with the bridge down. `halt` and `resume` are persisted in the journal either way: a
halted bridge stays halted after a restart.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    for name, help_text in (("status", "show the FTMO headroom, state, positions and charts"),
                            ("halt", "stop opening new risk (and with --flatten, close everything)"),
                            ("resume", "lift the operator's halt")):
        p = subparsers.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".")
        p.add_argument("--config", metavar="FILE", help="the bridge's configuration (for its endpoints and journal)")
        if name == "status":
            p.add_argument("--json", action="store_true", help="print JSON instead of a table")
        if name == "halt":
            p.add_argument("--flatten", action="store_true", help="also close every open position")
        p.set_defaults(func=run, command=name)
    k = subparsers.add_parser("keygen", help="make a CURVE key pair for a bridge reachable from other machines",
                              description="Write NAME.key (public) and NAME.key_secret (secret) into a folder.")
    k.add_argument("--out", default="keys", metavar="DIR", help="folder for the key files (default: keys)")
    k.add_argument("--name", default="bridge", help="base name of the files (default: bridge)")
    k.set_defaults(func=keygen)


def run(args: argparse.Namespace) -> int:
    from mt5bridge.config import journal_path, load_config
    from mt5bridge.server import control_request

    cfg = load_config(args.config)
    if args.command == "status":
        answer = control_request(cfg.bridge.control_endpoint, {"cmd": "status"})
        source = "bridge"
        if answer is None:
            answer = _from_journal(journal_path(cfg, args.config))
            source = "journal (the bridge is not answering)"
        if answer is None:
            print(f"mt5bridge status: no bridge answers on {cfg.bridge.control_endpoint} and there is no journal "
                  f"at {journal_path(cfg, args.config)}", file=sys.stderr)
            return 1
        if args.json:
            print(json.dumps(dict(answer, source=source), indent=2, default=str))
        else:
            print(render_status(answer, source))
        return 0
    halted = args.command == "halt"
    flatten = bool(getattr(args, "flatten", False))
    answer = control_request(cfg.bridge.control_endpoint, {"cmd": args.command, "flatten": flatten, "by": "cli"})
    if answer is None:
        from mt5bridge.journal import Journal

        with Journal(journal_path(cfg, args.config)) as journal:
            journal.set_halt(halted, flatten=flatten, by="cli (bridge down)", time_ms=int(time.time() * 1000))
        print(f"mt5bridge {args.command}: the bridge is not running; recorded in the journal, it applies at its "
              "next start", file=sys.stderr)
        return 0
    if not answer.get("ok"):
        print(f"mt5bridge {args.command}: {answer.get('error')}", file=sys.stderr)
        return 1
    print(f"mt5bridge {args.command}: done ({'flatten' if flatten else 'no new risk'})" if halted
          else "mt5bridge resume: done", file=sys.stderr)
    return 0


def _from_journal(path: Path) -> dict | None:
    if not Path(path).exists():
        return None
    from mt5bridge.journal import Journal

    with Journal(path) as journal:
        return {"halt": journal.halt_state(),
                "accounts": {login: {"snapshot": journal.snapshot(login)} for login in journal.accounts()}}


def render_status(answer: dict, source: str) -> str:
    lines = [f"from the {source}", f"operator halt: {answer['halt']}"]
    for login, info in answer.get("accounts", {}).items():
        a = info.get("account") or (info.get("snapshot") or {}).get("account") or {}
        lines.append(f"account {login}")
        for key in ("state", "state_reason", "balance", "equity", "day_start_balance", "daily_floor",
                    "overall_floor", "headroom", "headroom_pct", "worst_case_loss", "trading_days"):
            if key in a:
                value = a[key]
                lines.append(f"  {key:<18} {value:,.2f}" if isinstance(value, float) else f"  {key:<18} {value}")
        for p in info.get("positions", []):
            lines.append(f"  position {p['ticket']} {p['symbol']} {p['side']} {p['volume']:.2f} sl {p['sl']} "
                         f"{'engine' if p['managed'] else 'manual'} {p['stage']}")
        for c in info.get("in_flight", []):
            lines.append(f"  in flight: command {c['command_id']} {c['action']} {c['symbol']} {c['volume']:.2f}")
        for c in info.get("charts", []):
            age = c["last_tick_age_s"]
            lines.append(f"  chart {c['symbol']:<8} ticks {c['ticks']:>8}  last {age:.1f} s ago  "
                         f"answered in {c['answer_ms']:.3f} ms"
                         f"{'  round trip %.1f ms' % c['round_trip_ms'] if c.get('round_trip_ms') else ''}"
                         f"{'  STALE' if c['stale'] else ''}")
    return "\n".join(lines)


def keygen(args: argparse.Namespace) -> int:
    import zmq
    import zmq.auth

    if not zmq.has("curve"):
        print("mt5bridge keygen: this pyzmq/libzmq has no CURVE support", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    public, secret = zmq.auth.create_certificates(str(out), args.name)
    print(f"public key:  {public}\nsecret key:  {secret}\nPut the secret file in bridge.curve_secret_key_file; "
          "give the EA the public key (its CURVE server key input).", file=sys.stderr)
    return 0
