"""The journal's book against the terminal's: every open position and every deal of the day that differs, in
words. The truth is the terminal's; what differs is a question for the trader, never fixed silently."""

from __future__ import annotations

import math
from datetime import datetime, timezone


def reconcile(terminal_positions: list[dict], journal_positions: list[dict], terminal_deals: list[dict],
              journal_deals: list[dict]) -> list[dict]:
    """Every difference between the terminal's book and the journal's, each a dict with ``kind``, ``ticket``,
    ``symbol`` and ``detail`` (what differs, in words)."""
    out: list[dict] = []
    term = {p["ticket"]: p for p in terminal_positions}
    jour = {p["ticket"]: p for p in journal_positions}
    for ticket in sorted(term.keys() - jour.keys()):
        p = term[ticket]
        out.append(_diff("position_not_in_journal", p, f"{p['side']} {p['volume']:g} lots at {p['open_price']:g}"
                         f" is open in the terminal but not in the journal"))
    for ticket in sorted(jour.keys() - term.keys()):
        p = jour[ticket]
        out.append(_diff("position_not_in_terminal", p, f"{p['side']} {p['last_volume']:g} lots is open in the"
                         " journal but not in the terminal (closed while the bridge did not see it?)"))
    for ticket in sorted(term.keys() & jour.keys()):
        t, j = term[ticket], jour[ticket]
        for name, ours in (("symbol", "symbol"), ("side", "side"), ("volume", "last_volume"), ("sl", "last_sl"),
                           ("tp", "last_tp")):
            if not _same(t[name], j[ours]):
                out.append(_diff(f"position_{name}_differs", t, f"{name} is {_show(t[name])} in the terminal,"
                                 f" {_show(j[ours])} in the journal"))
    term_deals = {d["deal"]: d for d in terminal_deals}
    jour_deals = {d["deal"]: d for d in journal_deals}
    for deal in sorted(term_deals.keys() - jour_deals.keys()):
        d = term_deals[deal]
        out.append(_diff("deal_not_in_journal", d, f"{_deal_words(d)} is in the terminal but not in the journal",
                         ticket=deal))
    for deal in sorted(jour_deals.keys() - term_deals.keys()):
        d = jour_deals[deal]
        out.append(_diff("deal_not_in_terminal", d, f"{_deal_words(d)} is in the journal but not in the"
                         " terminal's history", ticket=deal))
    for deal in sorted(term_deals.keys() & jour_deals.keys()):
        t, j = term_deals[deal], jour_deals[deal]
        for name in ("symbol", "side", "entry", "volume", "price", "position_id"):
            if not _same(t[name], j[name]):
                out.append(_diff(f"deal_{name}_differs", t, f"{name} is {_show(t[name])} in the terminal,"
                                 f" {_show(j[name])} in the journal", ticket=deal))
    return out


def _diff(kind: str, record: dict, detail: str, *, ticket: int | None = None) -> dict:
    return {"kind": kind, "ticket": record["ticket"] if ticket is None else ticket, "symbol": record["symbol"],
            "detail": detail}


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def _show(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _deal_words(d: dict) -> str:
    when = datetime.fromtimestamp(d["time_msc"] / 1000, tz=timezone.utc).strftime("%H:%M:%S")
    return (f"{d['side']} {d['entry']} {d['volume']:g} lots at {d['price']:g} ({d['reason']}, server time {when},"
            f" position {d['position_id']})")


def format_reconcile(s: dict) -> str:
    positions, deals = s["positions"], s["deals_today"]
    lines = [f"account {s['account']} ({s['server']}), journal {s['journal']}"]
    lines.append(f"open positions: terminal {positions['terminal']}, journal {positions['journal']}; deals since"
                 f" Prague midnight ({s['prague_day_start_utc']} UTC): terminal {deals['terminal']},"
                 f" journal {deals['journal']}")
    if not s["differences"]:
        lines.append("no differences: the journal agrees with the terminal")
    else:
        lines.append(f"{len(s['differences'])} difference{'s' if len(s['differences']) != 1 else ''}:")
        lines.extend(f"  {d['symbol']} {'deal' if d['kind'].startswith('deal') else 'position'} {d['ticket']}:"
                     f" {d['detail']}" for d in s["differences"])
    return "\n".join(lines)
