"""A closed trade settled from the broker's deals: one rule for the live journal and for the replay, so the same
fills give the same closed-trade record in both.

Deals are dicts (or rows) with the DEAL message's fields: ``entry``, ``volume``, ``price``, ``profit``, ``swap``,
``commission``, ``reason``, ``comment``. A trade is what the engine recorded when the position left its book:
``side``, ``open_price``, ``stage``, ``r_multiple``, ``mfe_r``, ``mae_r``, and, where known, ``risk_money`` (the money
at risk at entry, which makes R) and ``r_dist`` (the stop distance in price, which makes the exit fill's R).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

CLOSE_REASONS = ("STOP_LOSS", "TAKE_PROFIT", "TRAILING_STOP", "BREAKEVEN", "TIME_EXIT", "EXIT_SCORE", "PARTIAL_TP",
                 "FLATTEN", "ENGINE_EXIT", "MANUAL", "STOP_OUT", "EA_FAILSAFE", "EXPERT", "OTHER")
"""Why a settled trade closed, from its last closing deal: its stop (hit as set, at breakeven, or trailed), its
take profit, an engine exit by rule (time, exit score, the rest of a partial close, a flatten;
``ENGINE_EXIT:<code>`` for any other rule), the trader's hand, a stop-out, the EA's own failsafe, another EA
(``EXPERT``) or anything else."""

COMMENT_PREFIX = "mt5b:"
_ENGINE_CLOSE_REASONS = {
    "TIME_EXIT": "TIME_EXIT", "EXIT_SCORE": "EXIT_SCORE", "PARTIAL_TP": "PARTIAL_TP", "FLATTEN": "FLATTEN",
    "CIRCUIT_BREAKER_FLATTEN": "FLATTEN", "WEEKEND_FLAT": "FLATTEN", "DAILY_LIMIT_HALT": "FLATTEN",
    "OVERALL_LIMIT_HALT": "FLATTEN", "OPERATOR_HALT": "FLATTEN",
}
_OPENING = ("IN", "INOUT")
_CLOSING = ("OUT", "OUT_BY", "INOUT")


def realized(deals: Sequence[Any]) -> dict[str, float] | None:
    """The money and volume of a position's deals once they close all the volume they opened: ``realized``
    (profit + swap + commission of every deal, partial closes included), its parts, ``volume`` traded and the
    exit ``close_price``; None while the position is still (partly) open."""
    closing = [d for d in deals if d["entry"] in _CLOSING]
    if not closing:
        return None
    opened = sum(d["volume"] for d in deals if d["entry"] in _OPENING)
    closed = sum(d["volume"] for d in closing)
    if closed < opened - 1e-9:
        return None
    gross = sum(d["profit"] for d in deals)
    swap = sum(d["swap"] for d in deals)
    commission = sum(d["commission"] for d in deals)
    return {"realized": gross + swap + commission, "gross_profit": gross, "swap": swap, "commission": commission,
            "volume": max(opened, closed), "close_price": closing[-1]["price"]}


def settle(trade: dict[str, Any], deals: Sequence[Any], reason_code_of: Callable[[int], str]) -> dict[str, Any] | None:
    """The settled fields of ``trade`` from the deals of its position (None while they do not close it): the
    realized money as ``profit`` with its parts, the ``volume`` traded, the ``close_price``, R from the realized
    money, MFE and MAE that include the exit fill, and the ``close_reason``. ``reason_code_of(command_id)`` gives
    the reason code of the engine's command that closed it ("" when unknown)."""
    money = realized(deals)
    if money is None:
        return None
    last = [d for d in deals if d["entry"] in _CLOSING][-1]
    risk, r_dist = trade.get("risk_money") or 0.0, trade.get("r_dist") or 0.0
    mfe, mae = trade["mfe_r"], trade["mae_r"]
    if r_dist > 0:
        # The exit fill is the last excursion: a stop filled through its price is a loss beyond -1 R.
        exit_r = (1.0 if trade["side"] == "BUY" else -1.0) * (last["price"] - trade["open_price"]) / r_dist
        mfe, mae = max(mfe, exit_r), min(mae, exit_r)
    return {
        "profit": money["realized"], "gross_profit": money["gross_profit"], "swap": money["swap"],
        "commission": money["commission"], "volume": money["volume"], "close_price": money["close_price"],
        "close_reason": close_reason(last, trade, reason_code_of), "settled": True,
        "r_multiple": money["realized"] / risk if risk > 0 else trade["r_multiple"], "mfe_r": mfe, "mae_r": mae,
    }


def close_reason(deal: Any, trade: dict[str, Any] | None, reason_code_of: Callable[[int], str]) -> str:
    """Why a position closed, from its last closing deal (and, for the engine's own, its command)."""
    why = deal["reason"]
    if why == "TP":
        return "TAKE_PROFIT"
    if why == "SO":
        return "STOP_OUT"
    if why in ("CLIENT", "MOBILE", "WEB"):
        return "MANUAL"
    if why == "SL":
        if trade is not None and trade.get("stage") == "TRAILING":
            return "TRAILING_STOP"
        r_dist = (trade or {}).get("r_dist") or 0.0
        if trade is not None and r_dist > 0 and abs(deal["price"] - trade["open_price"]) < 0.1 * r_dist:
            return "BREAKEVEN"
        return "STOP_LOSS"
    comment = deal["comment"] or ""
    if comment.startswith(COMMENT_PREFIX):
        try:
            command_id = int(comment[len(COMMENT_PREFIX):])
        except ValueError:
            return "EA_FAILSAFE"   # the EA's own closes carry words, not a command id ("mt5b:equity guard")
        code = reason_code_of(command_id)
        return _ENGINE_CLOSE_REASONS.get(code, f"ENGINE_EXIT:{code}" if code else "ENGINE_EXIT")
    return "EXPERT" if why == "EXPERT" else "OTHER"
