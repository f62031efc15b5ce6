"""The live terminal view of a bridge (`serve --live`, `demo`): FTMO headroom bars, per-symbol decisions,
latency. Drawn with rich from the same status the control socket answers, refreshed twice a second; when the
output is not a terminal, one plain line every few seconds instead."""

from __future__ import annotations

import sys
import time

from rich.console import Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

BAR_WIDTH = 30


def _bar(used_share: float) -> Text:
    """How much of a limit's allowance is used: green, yellow from 50 %, red from 70 % (the REDUCING level)."""
    used = max(0.0, min(1.0, used_share))
    filled = int(round(used * BAR_WIDTH))
    colour = "green" if used < 0.5 else ("yellow" if used < 0.7 else "red")
    return Text("█" * filled, style=colour) + Text("░" * (BAR_WIDTH - filled), style="grey50") + Text(
        f" {used * 100:5.1f} % used")


def render(status: dict) -> Group:
    parts = []
    halt = status.get("halt", {})
    if halt.get("halted"):
        parts.append(Text(f"OPERATOR HALT{' + FLATTEN' if halt.get('flatten') else ''} (by {halt.get('by')})",
                          style="bold red"))
    for login, info in status.get("accounts", {}).items():
        a = info["account"]
        if not a["balance"]:
            parts.append(Text(f"account {login}: connected, waiting for its first tick"))
            continue
        head = Table.grid(padding=(0, 2))
        head.add_row("state", Text(f"{a['state']} {a['state_reason']}",
                                   style={"ACTIVE": "green", "REDUCING": "yellow"}.get(a["state"], "bold red")))
        head.add_row("balance / equity", f"{a['balance']:,.2f} / {a['equity']:,.2f}")
        head.add_row("daily floor", f"{a['daily_floor']:,.2f}   day start {a['day_start_balance']:,.2f}")
        head.add_row("overall floor", f"{a['overall_floor']:,.2f}")
        head.add_row("daily limit", _bar(a["daily_used_share"]))
        head.add_row("overall limit", _bar(a["overall_used_share"]))
        head.add_row("headroom", f"{a['headroom']:,.2f} ({a.get('headroom_pct', 0.0):.2f} % of initial) after a "
                                 f"worst case of {a['worst_case_loss']:,.2f}")
        head.add_row("trading days", f"{a['trading_days']}   positions {a['positions']}   in flight {a['in_flight']}")
        charts = Table("symbol", "ticks", "last", "answer ms", "decision", "why", "state", box=None, padding=(0, 1))
        for c in info["charts"]:
            age = c["last_tick_age_s"]
            charts.add_row(c["symbol"], f"{c['ticks']:,}", "-" if age is None else f"{age:4.1f} s",
                           f"{c['answer_ms']:.2f}", c.get("last_decision", ""), c.get("last_reason", ""),
                           Text("STALE", style="red") if c["stale"] else "ok")
        positions = Table("ticket", "symbol", "side", "lots", "sl", "tp", "P/L", "who", "stage", box=None,
                          padding=(0, 1))
        for p in info["positions"]:
            positions.add_row(str(p["ticket"]), p["symbol"], p["side"], f"{p['volume']:.2f}", f"{p['sl']}",
                              f"{p['tp']}", f"{p['profit']:,.2f}", "engine" if p["managed"] else "manual", p["stage"])
        parts.append(Panel(Group(head, charts, positions), title=f"account {login}"))
    parts.append(Text(f"frames {status.get('frames', 0):,}   errors {sum(status.get('errors', {}).values())}   "
                      f"uptime {status.get('uptime_s', 0):.0f} s", style="grey50"))
    return Group(*parts)


def plain_line(status: dict) -> str:
    bits = []
    for login, info in status.get("accounts", {}).items():
        a = info["account"]
        ticks = sum(c["ticks"] for c in info["charts"])
        if not a["balance"]:
            bits.append(f"{login}: connected, waiting for its first tick")
            continue
        bits.append(f"{login}: {a['state']} equity {a['equity']:,.2f} headroom {a['headroom']:,.2f} "
                    f"positions {a['positions']} ticks {ticks:,}")
    return " | ".join(bits) or "no account connected yet"


def watch(get_status, until, interval_s: float = 0.5) -> None:
    """Show the status until ``until()`` is true; ``get_status()`` returns the status dict or None."""
    if sys.stdout.isatty():
        with Live(Text("waiting for the bridge..."), refresh_per_second=4, screen=False) as live:
            while not until():
                status = get_status()
                if status is not None:
                    live.update(render(status))
                time.sleep(interval_s)
        return
    last = 0.0
    while not until():
        if time.monotonic() - last >= 5.0:
            status = get_status()
            if status is not None:
                print(plain_line(status), flush=True)
            last = time.monotonic()
        time.sleep(interval_s)
