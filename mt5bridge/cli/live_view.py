"""The live terminal view of a bridge (`serve --live`, `demo`): FTMO's numbers in words, per-chart decisions with
the values behind them, positions and their risk, latency. Drawn with rich from the same status the control
socket answers (worded by ``mt5bridge.bridge.readout``, as `status` is), refreshed twice a second; when the
output is not a terminal, one plain line every few seconds instead."""

from __future__ import annotations

import sys
import time

from rich.console import Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from mt5bridge.bridge import readout

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
        parts.append(Text(f"OPERATOR HALT: {readout.halt_words(halt)}", style="bold red"))
    journal = status.get("journal") or {}
    if journal and not journal.get("writing", True):
        parts.append(Text(f"JOURNAL UNAVAILABLE: {journal.get('problem')}: no new risk", style="bold red"))
    for login, info in status.get("accounts", {}).items():
        a = info["account"]
        f = info.get("ftmo") or {}
        if not a["balance"]:
            parts.append(Text(f"account {login}: connected, waiting for its first tick"))
            continue
        m = readout.money
        head = Table.grid(padding=(0, 2))
        head.add_row("state", Text(readout.state_words(a["state"], a["state_reason"]),
                                   style={"ACTIVE": "green", "REDUCING": "yellow"}.get(a["state"], "bold red")))
        head.add_row("balance / equity", f"{m(a['balance'])} / {m(a['equity'])}")
        head.add_row("today's permitted loss",
                     f"{m(f.get('permitted_loss_today'))} of {m(f.get('daily_loss_limit'))} (daily floor "
                     f"{m(a['daily_floor'])}); resets in {readout.duration_words(f.get('reset_in_s'))}")
        head.add_row("daily limit", _bar(a["daily_used_share"]))
        head.add_row("maximum permitted loss",
                     f"{m(f.get('max_permitted_loss'))} of {m(f.get('max_loss_limit'))} (overall floor "
                     f"{m(a['overall_floor'])})")
        head.add_row("overall limit", _bar(a["overall_used_share"]))
        head.add_row("headroom", f"{m(a['headroom'])} after a worst case of {m(a['worst_case_loss'])}, keeping the "
                                 f"safety buffer of {m(a['safety_buffer'])}")
        target = f.get("profit_target")
        head.add_row("objectives", (f"profit {m(f.get('profit'))} of {m(target)} "
                                    f"({max(0.0, f.get('target_progress') or 0.0) * 100:.0f} %)" if target
                                    else f"profit {m(f.get('profit'))}")
                     + f"; trading days {a['trading_days']} of {f.get('min_trading_days', 0)}")
        head.add_row("market clock", readout.clock_words(f.get("now_ms")))
        charts = Table("symbol", "market time", "heard", "ticks", "answer ms", "decision", "why", box=None,
                       padding=(0, 1))
        for c in info["charts"]:
            age = c["last_tick_age_s"]
            heard = (Text("closed (BYE)", style="grey50") if c.get("closed") else
                     Text(f"{age:4.1f} s ago SILENT", style="red") if c["stale"] else
                     "-" if age is None else f"{age:4.1f} s ago")
            market = readout.clock_words(c.get("market_time_ms")).split(" (")[0]
            charts.add_row(c["symbol"], market, heard, f"{c['ticks']:,}", f"{c['answer_ms']:.2f}",
                           c.get("last_decision", ""), c.get("why") or readout.reason_words(c.get("last_reason", "")))
        positions = Table("ticket", "symbol", "side", "lots", "entry", "SL", "TP", "P/L", "risk to stop",
                          "of permitted", "who", box=None, padding=(0, 1))
        for p in info["positions"]:
            share = p.get("risk_share")
            positions.add_row(str(p["ticket"]), p["symbol"], p["side"], f"{p['volume']:.2f}", f"{p['open_price']}",
                              f"{p['sl'] or 'none'}", f"{p['tp'] or 'none'}", m(p["profit"]),
                              m(p.get("risk_to_stop")), "-" if share is None else f"{share * 100:.0f} %",
                              "engine" if p["managed"] else "manual")
        parts.append(Panel(Group(head, charts, positions), title=f"account {login}"))
    alerts = status.get("alerts")
    if alerts and alerts.get("recent"):
        last = alerts["recent"][-3:]
        parts.append(Text("\n".join(f"alert {readout.clock_words(e['time_ms']).split(' (')[0]}: {e['title']}: "
                                    f"{e['body']}" for e in last), style="cyan"))
    parts.append(Text(f"frames {status.get('frames', 0):,}   errors {sum(status.get('errors', {}).values())}   "
                      f"uptime {status.get('uptime_s', 0):.0f} s", style="grey50"))
    return Group(*parts)


def plain_line(status: dict) -> str:
    bits = []
    for login, info in status.get("accounts", {}).items():
        a = info["account"]
        f = info.get("ftmo") or {}
        ticks = sum(c["ticks"] for c in info["charts"])
        if not a["balance"]:
            bits.append(f"{login}: connected, waiting for its first tick")
            continue
        bits.append(f"{login}: {readout.state_words(a['state'], a['state_reason'])}; equity {a['equity']:,.2f}; "
                    f"today's permitted loss {readout.money(f.get('permitted_loss_today'))} (reset in "
                    f"{readout.duration_words(f.get('reset_in_s'))}); headroom {readout.money(a['headroom'])}; "
                    f"positions {a['positions']}; ticks {ticks:,}")
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
