"""The bridge's status as a trader reads it: FTMO's numbers, the clock to the Prague reset, and words for codes.

One place turns the status (from the control socket, or from the journal while the bridge is down) into what
`mt5bridge status`, the live view, the alerts and the live page show, so all four say the same thing the same
way: a state with its reason in words, a refusal with its value and threshold ("score 48 < 55"), a halt as a
sentence, MT5 retcodes with their meaning, today's permitted loss in money with the time to the reset.

Numbers here are the trader's: money in the account currency, spreads in the symbol's points, times in UTC
milliseconds (shown in UTC and Prague time). An unbounded value (a position without a stop loss) is None, which
strict JSON writes as null.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from mt5bridge.core.decision import STATE_NAMES
from mt5bridge.core.reasons import CODES, WORDS

PRAGUE = ZoneInfo("Europe/Prague")

# MqlTradeResult.retcode: the trade server's answer, in the words a trader knows (MQL5 reference,
# "Return Codes of the Trade Server").
RETCODE_WORDS: dict[int, str] = {
    10004: "requote", 10006: "rejected", 10007: "cancelled by the trader", 10008: "order placed", 10009: "done",
    10010: "done in part", 10011: "request processing error", 10012: "timed out (outcome unknown)",
    10013: "invalid request", 10014: "invalid volume", 10015: "invalid price", 10016: "invalid stops",
    10017: "trading disabled", 10018: "market closed", 10019: "not enough money", 10020: "prices changed",
    10021: "no quotes to process the request", 10022: "invalid expiration", 10023: "order state changed",
    10024: "too many requests", 10025: "no changes in the request", 10026: "autotrading disabled by the server",
    10027: "autotrading disabled in the terminal", 10028: "locked for processing", 10029: "order or position frozen",
    10030: "invalid filling type", 10031: "no connection to the trade server (outcome unknown)",
    10032: "only for live accounts", 10033: "pending-order limit reached", 10034: "volume limit for the symbol reached",
    10035: "invalid or prohibited order type", 10036: "position already closed", 10038: "close volume exceeds the position",
    10039: "a close order for this position already exists", 10040: "position limit reached",
    10041: "pending order activation rejected", 10042: "only long positions allowed", 10043: "only short positions allowed",
    10044: "only position closing allowed", 10045: "only FIFO closing allowed",
}

STATE_WORDS = {"ACTIVE": "trading", "REDUCING": "reducing: exits only, nothing new opens",
               "HALTED": "halted: flattened, nothing opens until the limit resets"}


def retcode_words(retcode: int) -> str:
    """``10009 done``; an unknown code says so rather than guessing."""
    return f"{retcode} {RETCODE_WORDS.get(retcode, 'unknown return code')}"


def reason_words(code: str) -> str:
    return WORDS.get(code, code.lower().replace("_", " "))


def state_words(state: str, reason: str) -> str:
    """``reducing: exits only, nothing new opens (ftmo.reduce_at_share of the daily loss limit used)``."""
    text = STATE_WORDS.get(state, state.lower())
    return text if reason in ("", "NONE") else f"{text} ({reason_words(reason)})"


# ---- the clock ------------------------------------------------------------------------------------------------


def next_reset_ms(now_ms: int) -> int:
    """The next midnight in Prague after ``now_ms`` (UTC ms): when FTMO's daily loss limit starts again."""
    local = datetime.fromtimestamp(now_ms / 1000, tz=timezone.utc).astimezone(PRAGUE)
    midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), tzinfo=PRAGUE)
    return int(midnight.timestamp() * 1000)


def utc_day(time_ms: int) -> str:
    """The UTC date of ``time_ms``, as the journal keys its refusal counts."""
    return datetime.fromtimestamp(time_ms / 1000, tz=timezone.utc).date().isoformat()


def clock_words(time_ms: int | None) -> str:
    """``14:02 UTC (15:02 Prague) Mon 08 Jan``."""
    if not time_ms:
        return "never"
    utc = datetime.fromtimestamp(time_ms / 1000, tz=timezone.utc)
    return f"{utc:%H:%M:%S} UTC ({utc.astimezone(PRAGUE):%H:%M} Prague) {utc:%a %d %b}"


def duration_words(seconds: float | None) -> str:
    """``3 h 12 min``, ``48 s``."""
    if seconds is None or not math.isfinite(seconds):
        return "unknown"
    s = max(0, int(seconds))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s} s"


def money(value: float | None) -> str:
    return "unbounded" if value is None or not math.isfinite(value) else f"{value:,.2f}"


# ---- the FTMO picture ---------------------------------------------------------------------------------------


def ftmo_picture(a: dict[str, Any], ftmo, now_ms: int) -> dict[str, Any]:
    """What an FTMO trader lives by, from an account's numbers (``a``: floors, balance, equity, initial balance,
    trading days), the ``[ftmo]`` settings and the account's clock ``now_ms`` (its latest tick, UTC ms).

    ``permitted_loss_today`` is what equity may still lose before the daily floor; ``max_permitted_loss`` before
    the overall floor; ``profit_target`` is None when the phase has none (funded)."""
    initial = a.get("initial_balance") or 0.0
    equity = a.get("equity") or 0.0
    target = ftmo.profit_target_pct / 100.0 * initial if ftmo.profit_target_pct > 0 and initial else None
    profit = (a.get("balance") or 0.0) - initial if initial else 0.0
    reset = next_reset_ms(now_ms) if now_ms > 0 else None
    return {
        "now_ms": now_ms or None,
        "next_reset_ms": reset,
        "reset_in_s": (reset - now_ms) / 1000.0 if reset else None,
        "permitted_loss_today": equity - a["daily_floor"],
        "daily_loss_limit": ftmo.daily_loss_pct / 100.0 * initial,
        "max_permitted_loss": equity - a["overall_floor"],
        "max_loss_limit": ftmo.max_loss_pct / 100.0 * initial,
        "safety_buffer": a.get("safety_buffer", ftmo.safety_buffer_pct / 100.0 * initial),
        "profit": profit,
        "profit_target": target,
        "target_progress": profit / target if target else None,
        "trading_days": a.get("trading_days", 0),
        "min_trading_days": ftmo.min_trading_days,
    }


def floors_from_saved(saved: dict[str, Any], ftmo) -> dict[str, Any]:
    """An account's floors and headroom from the engine state the journal saved (the bridge is down), worked out
    as the engine does: daily floor = balance at Prague midnight − daily % × initial; overall floor = initial (or,
    trailing, the highest end-of-day balance) − max % × initial. The headroom here does not count the open
    positions' stops (their worth per point is known only to a running bridge): ``headroom_counts_stops`` False."""
    initial = saved.get("initial") or 0.0
    daily = saved.get("day_start_balance", 0.0) - ftmo.daily_loss_pct / 100.0 * initial
    base = max(initial, saved.get("highest_eod_balance") or 0.0) if ftmo.max_loss_mode == "eod_trailing" else initial
    overall = base - ftmo.max_loss_pct / 100.0 * initial
    buffer = ftmo.safety_buffer_pct / 100.0 * initial
    equity = saved.get("equity", 0.0)
    floor = max(daily, overall)
    state, reason = saved.get("state", 0), saved.get("state_reason", 0)
    return {
        "initial_balance": initial, "balance": saved.get("balance", 0.0), "equity": equity,
        "day_start_balance": saved.get("day_start_balance", 0.0), "daily_floor": daily, "overall_floor": overall,
        "equity_floor": floor, "safety_buffer": buffer, "headroom": equity - floor - buffer,
        "headroom_pct": 100.0 * (equity - floor - buffer) / initial if initial else 0.0,
        "headroom_counts_stops": False,
        "state": STATE_NAMES[state] if isinstance(state, int) else state,
        "state_reason": CODES[reason] if isinstance(reason, int) else reason,
        "trading_days": saved.get("trading_days", 0),
    }


def position_risk(position: dict[str, Any], value_per_price: float | None, permitted_loss: float) -> dict[str, Any]:
    """What the position's stop would take from equity now (its floating P/L down to the P/L at its stop), and
    that as a share of today's permitted loss. None for both when it has no stop (or no known worth per point):
    unbounded."""
    sl = position.get("sl") or 0.0
    if not sl or not value_per_price:
        return {"risk_to_stop": None, "risk_share": None}
    side = 1.0 if position["side"] == "BUY" else -1.0
    at_stop = (sl - position["open_price"]) * side * value_per_price * position["volume"]
    risk = max(0.0, position.get("profit", 0.0) - at_stop)
    return {"risk_to_stop": risk, "risk_share": risk / permitted_loss if permitted_loss > 0 else None}


def refusal_words(code: str, values: dict[str, Any] | None) -> str:
    """A refusal with the value that failed and its threshold: ``score 48 < 55``, ``spread 31 > 30 points``."""
    v = values or {}
    # The comparison is only said when the numbers show it: a threshold the engine moved (a stricter one in high
    # volatility, say) is not claimed; the value is still given.
    if code == "SCORE_LOW" and "score" in v:
        if v["score"] < v["min_score"]:
            # 54.6 against 55 reads "54.6 < 55", never "55 < 55".
            shown = f"{v['score']:.0f}" if round(v["score"]) < v["min_score"] else f"{v['score']:.1f}"
            return f"score {shown} < {v['min_score']:g}"
        return f"score {v['score']:.0f}: {reason_words(code)}"
    if code == "CONFIDENCE_LOW" and "confidence" in v:
        if v["confidence"] < v["min_confidence"]:
            return f"confidence {v['confidence']:.2f} < {v['min_confidence']:.2f}"
        return f"confidence {v['confidence']:.2f}: {reason_words(code)}"
    if code == "SPREAD_WIDE" and "spread_points" in v:
        if v["spread_points"] > v["max_spread_points"]:
            return f"spread {v['spread_points']:.0f} > {v['max_spread_points']:.0f} points"
        return f"spread {v['spread_points']:.0f} points: {reason_words(code)}"
    if code in ("HEADROOM", "DCA_HEADROOM", "GAP_HEADROOM") and "headroom" in v:
        return f"{reason_words(code)}: headroom {money(v['headroom'])}"
    return reason_words(code)


def halt_words(halt: dict[str, Any]) -> str:
    """``halted by cli at 14:02 UTC (15:02 Prague) Mon 08 Jan, flatten`` or ``not halted by the operator``."""
    if not halt or not halt.get("halted"):
        return "not halted by the operator"
    by = halt.get("by") or "the operator"
    return (f"halted by {by} at {clock_words(halt.get('time_ms'))}, "
            f"{'flatten: every position closed' if halt.get('flatten') else 'no new risk (positions kept)'}")


def used_words(share: float | None) -> str:
    return "unknown" if share is None else f"{max(0.0, share) * 100:.0f} % used"


# ---- the whole status as lines --------------------------------------------------------------------------------


def status_lines(status: dict[str, Any]) -> list[str]:
    """The status as the lines `mt5bridge status` prints: words with numbers, one idea a line."""
    lines = [f"operator: {halt_words(status.get('halt') or {})}"]
    journal = status.get("journal") or {}
    if journal and not journal.get("writing", True):
        lines.append(f"JOURNAL UNAVAILABLE: {journal.get('problem')}: no new risk until it writes again")
    alerts = status.get("alerts")
    if alerts and alerts.get("channels"):   # without a channel there is nothing to count
        lines.append(alerts_line(alerts))
    for login, info in (status.get("accounts") or {}).items():
        lines.extend(account_lines(login, info))
    return lines


def alerts_line(alerts: dict[str, Any]) -> str:
    text = (f"alerts: {alerts.get('sent', 0)} sent, {alerts.get('failed', 0)} failed attempts, "
            f"{alerts.get('queued', 0)} waiting, {alerts.get('dropped', 0)} dropped")
    if alerts.get("last_error"):
        text += f"; last failure: {alerts['last_error']}"
    return text


def _row(label: str, text: str) -> str:
    return f"  {label:<24}{text}"


def account_lines(login: str, info: dict[str, Any]) -> list[str]:
    a = info.get("account") or {}
    f = info.get("ftmo") or {}
    lines = [f"account {login}"]
    if not a:
        return lines + ["  nothing known yet"]
    lines.append(_row("state", state_words(a.get("state", ""), a.get("state_reason", ""))))
    lines.append(_row("balance / equity", f"{money(a.get('balance'))} / {money(a.get('equity'))}"))
    if f:
        lines.append(_row("today's permitted loss", f"{money(f.get('permitted_loss_today'))} of "
                          f"{money(f.get('daily_loss_limit'))} (daily floor {money(a.get('daily_floor'))}, "
                          f"{used_words(a.get('daily_used_share'))}); resets at Prague midnight in "
                          f"{duration_words(f.get('reset_in_s'))}"))
        lines.append(_row("maximum permitted loss", f"{money(f.get('max_permitted_loss'))} of "
                          f"{money(f.get('max_loss_limit'))} (overall floor {money(a.get('overall_floor'))}, "
                          f"{used_words(a.get('overall_used_share'))})"))
    else:
        lines.append(_row("floors", f"daily {money(a.get('daily_floor'))}, overall {money(a.get('overall_floor'))}"))
    stops = "" if a.get("headroom_counts_stops", True) else " (open positions' stops not counted: bridge down)"
    worst = f" after a worst case of {money(a['worst_case_loss'])}" if "worst_case_loss" in a else ""
    lines.append(_row("headroom", f"{money(a.get('headroom'))}{worst}, keeping the safety buffer of "
                      f"{money(a.get('safety_buffer'))} from the floor{stops}"))
    if f:
        target = f.get("profit_target")
        progress = (f"profit {money(f.get('profit'))} of the target {money(target)} "
                    f"({max(0.0, f.get('target_progress') or 0.0) * 100:.0f} %)" if target else
                    f"profit {money(f.get('profit'))} (no profit target in this phase)")
        lines.append(_row("objectives", f"{progress}; trading days {f.get('trading_days', 0)} of "
                          f"{f.get('min_trading_days', 0)}"))
        lines.append(_row("market clock", clock_words(f.get("now_ms"))))
    for p in info.get("positions", []):
        share = p.get("risk_share")
        risk = (f"risk to stop {money(p.get('risk_to_stop'))}"
                + (f" ({share * 100:.0f} % of today's permitted loss)" if share is not None else ""))
        lines.append(f"  position {p['ticket']} {p['symbol']} {p['side']} {p['volume']:.2f} lots, entry "
                     f"{p['open_price']}, SL {p['sl'] or 'none'}, TP {p['tp'] or 'none'}, P/L {money(p['profit'])}, "
                     f"{risk}; {'engine' if p.get('managed') else 'manual'}")
    for c in info.get("in_flight", []):
        lines.append(f"  awaiting its result: command {c['command_id']} {c['action']} {c['symbol']} "
                     f"{c['volume']:.2f} lots")
    for c in info.get("charts", []):
        lines.append("  " + chart_words(c))
    counts = info.get("refusals_today") or {}
    if counts:
        lines.append("  held today: " + ", ".join(f"{reason_words(k).split(':')[0]} {n:,}"
                                                  for k, n in sorted(counts.items(), key=lambda kv: -kv[1])[:6]))
    return lines


def chart_words(c: dict[str, Any]) -> str:
    if c.get("closed"):
        return f"chart {c['symbol']:<8} closed by its EA (BYE); last tick at {clock_words(c.get('market_time_ms'))}"
    age = c.get("last_tick_age_s")
    heard = "never heard" if age is None else f"heard {age:.1f} s ago"
    decision = c.get("last_decision", "")
    why = c.get("why") or reason_words(c.get("last_reason", ""))
    rt = f", round trip {c['round_trip_ms']:.1f} ms" if c.get("round_trip_ms") else ""
    return (f"chart {c['symbol']:<8} market time {clock_words(c.get('market_time_ms'))}, {heard}"
            f"{' (SILENT)' if c.get('stale') else ''}; {c.get('ticks', 0):,} ticks, answered in "
            f"{c.get('answer_ms', 0.0):.2f} ms{rt}; {decision}: {why}")
