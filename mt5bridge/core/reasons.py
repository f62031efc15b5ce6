"""Why the engine did what it did: every decision and every refusal carries one of these codes.

The list is the single source of the codes: ``ext/reasons.pxi`` (the engine's constants) is generated from
it with ``python -m mt5bridge.core.reasons --write`` and a test fails when it is stale. Codes are stable: they
are journaled and reported, so a code is never renumbered or reused; new ones go at the end.
"""

from __future__ import annotations

import sys
from pathlib import Path

REASONS: tuple[tuple[str, str], ...] = (
    ("NONE", "nothing to report"),
    # entries
    ("ENTRY_SIGNAL", "score, confidence and consensus passed every entry filter"),
    ("NOT_WARM", "the symbol's features are not warm yet"),
    ("DIRECTION_HOLD", "the ensemble sees no direction"),
    ("SCORE_LOW", "market score below entry.min_score"),
    ("CONFIDENCE_LOW", "confidence below entry.min_confidence (or min_confidence_high_vol in high volatility)"),
    ("CONSENSUS_WEAK", "consensus not in entry.allowed_consensus"),
    ("SPREAD_WIDE", "spread above entry.max_spread_points"),
    ("SPREAD_ABNORMAL", "spread above entry.max_spread_typical_ratio times its typical value"),
    ("VOLATILITY_GATE", "ATR above entry.max_atr_pct of price"),
    ("TREND_MISALIGNED", "the trade is against the H1 EMA 200"),
    ("SESSION_CLOSED", "outside the allowed sessions"),
    ("COOLDOWN", "within entry.cooldown_minutes of the last close on this symbol"),
    ("POSITION_OPEN", "the engine already holds a position on this symbol"),
    ("COMMAND_IN_FLIGHT", "a command for this symbol awaits its result"),
    ("MAX_POSITIONS", "sizing.max_positions reached (open positions and orders in flight)"),
    ("BELOW_MIN_VOLUME", "the size allowed is below the symbol's minimum volume"),
    ("HEADROOM", "the worst case would cross an FTMO limit minus the safety buffer"),
    ("CLASS_MAX_LOTS", "the symbol class's lot cap binds"),
    ("CLASS_NOTIONAL", "the symbol class's notional cap binds"),
    ("CONCENTRATION", "one trade may use only sizing.concentration_share of the day's risk budget"),
    ("EXPOSURE", "margin in use would pass sizing.max_exposure_pct of equity"),
    ("SYMBOL_MAX_VOLUME", "the symbol's maximum volume binds"),
    ("UNPROTECTED_POSITION", "a position without a stop loss and without an ATR to assume one"),
    ("NEWS_BLACKOUT", "inside a news blackout for this symbol's currencies"),
    ("WEEKEND", "too close to the weekend close"),
    ("TRADE_DISABLED", "the symbol is disabled in the configuration"),
    ("STATE_REDUCING", "trading state is REDUCING: only exits"),
    ("STATE_HALTED", "trading state is HALTED"),
    # guards and trading-state transitions
    ("DAILY_LIMIT_REDUCE", "ftmo.reduce_at_share of the daily loss limit used"),
    ("DAILY_LIMIT_HALT", "ftmo.halt_at_share of the daily loss limit used: flatten"),
    ("OVERALL_LIMIT_REDUCE", "ftmo.reduce_at_share of the maximum loss used"),
    ("OVERALL_LIMIT_HALT", "ftmo.halt_at_share of the maximum loss used: flatten"),
    ("INTERNAL_DAILY_DD", "guards.internal_daily_dd_pct reached: no new risk today"),
    ("INTERNAL_WEEKLY_DD", "guards.internal_weekly_dd_pct reached: no new risk this week"),
    ("CIRCUIT_BREAKER", "guards.circuit_breaker_pct lost from the day's peak: entries paused"),
    ("TARGET_REACHED", "profit target and trading days reached: no new risk"),
    ("OPERATOR_HALT", "halted by the operator"),
    # exits and position management
    ("BREAKEVEN", "stop moved to breakeven at exits.breakeven_r"),
    ("PARTIAL_TP", "part closed at exits.partial_r"),
    ("TRAILING", "stop trailed after the partial close"),
    ("TIME_EXIT", "open exits.time_exit_hours without reaching exits.time_exit_min_r"),
    ("EXIT_SCORE", "exit score passed its threshold"),
    ("FLATTEN", "trading state HALTED: close everything"),
    ("WEEKEND_FLAT", "funded.flat_before_weekend: close everything before the weekend"),
    ("DCA", "adding to a losing position with a high recovery probability"),
    ("SCALE_IN", "adding to a winning position in a strong market"),
    ("DCA_HEADROOM", "an add was refused: the whole position's worst case would not fit the headroom"),
    # the bridge's own
    ("JOURNAL_UNAVAILABLE", "the journal cannot write: no new risk until it can (closes still go out)"),
    ("INITIAL_BALANCE_UNKNOWN", "the initial balance is neither configured nor reported by the EA: no new risk"),
    # added later: codes are never renumbered, so new ones go here
    ("ADDS_USED", "the position has taken all its adds (sizing.max_adds_per_position, dca.max_adds or "
                  "scale_in.max_adds)"),
    ("CIRCUIT_BREAKER_FLATTEN", "guards.circuit_breaker_pct lost from the day's equity peak: close everything"),
    ("GAP_HEADROOM", "held over the market close, the worst case with the gap allowance would cross an FTMO limit "
                     "minus the safety buffer"),
)

CODES: tuple[str, ...] = tuple(code for code, _ in REASONS)
WORDS: dict[str, str] = dict(REASONS)

if len(set(CODES)) != len(CODES):
    raise AssertionError("reason codes must be unique")


def render_pxi() -> str:
    lines = [
        "# Generated by `python -m mt5bridge.core.reasons --write` from mt5bridge/core/reasons.py. Do not edit.",
        "",
        "cdef enum:",
    ]
    lines += [f"    R_{code} = {i}" for i, code in enumerate(CODES)]
    return "\n".join(lines) + "\n"


PXI = Path(__file__).resolve().parents[2] / "ext" / "reasons.pxi"


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        PXI.write_text(render_pxi(), encoding="utf-8", newline="\n")
        print(f"wrote {PXI}")
    else:
        print("\n".join(f"{c}: {w}" for c, w in REASONS))
