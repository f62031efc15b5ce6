"""The figures of MetaTrader 5's Strategy Tester report, computed from a replay's trades, deals and equity.

Each figure follows MT5's own definition (the terminal's help, "Testing Report", and MetaQuotes' article
"Mathematics in Trading: How to Estimate Trade Results"); docs/replay.md quotes them and says where this
report differs (a trade here is a whole position, partial closes included). Every function takes plain
numbers, so each figure can be checked by hand on a few trades. A figure that does not exist for the input
(a profit factor without a losing trade) is None, which the JSON report writes as null.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")


# --- trades ---------------------------------------------------------------------------------------------------

def z_score(profits: Sequence[float]) -> tuple[float | None, float | None]:
    """The runs test on the sequence of wins and losses: Z and its confidence in % (two-sided normal).

    Z = (N·(R − 0.5) − P) / √(P·(P − N) / (N − 1)), P = 2·W·L, R the number of runs of wins or losses. A trade
    of exactly zero is neither and is left out. None when there are no two outcomes to compare.
    """
    signs = [p > 0 for p in profits if p != 0]
    n = len(signs)
    wins = sum(signs)
    losses = n - wins
    if n < 3 or wins == 0 or losses == 0:
        return None, None
    runs = 1 + sum(1 for a, b in zip(signs, signs[1:]) if a != b)
    p = 2.0 * wins * losses
    var = p * (p - n) / (n - 1)
    if var <= 0:
        return None, None
    z = (n * (runs - 0.5) - p) / math.sqrt(var)
    return z, 100.0 * math.erf(abs(z) / math.sqrt(2.0))


def consecutive(profits: Sequence[float]) -> dict[str, Any]:
    """Series of wins and of losses: the longest (count, and its money), the most money (money, and its count),
    and the average length. A zero trade ends a series and starts none. Of two longest series, the one with
    the more money (the larger loss for losses) is given."""
    series: list[tuple[bool, int, float]] = []   # (win, count, money)
    for p in profits:
        if p == 0:
            series.append((False, 0, 0.0))        # a break, counted in neither
            continue
        win = p > 0
        if series and series[-1][1] > 0 and series[-1][0] == win:
            _, count, money = series[-1]
            series[-1] = (win, count + 1, money + p)
        else:
            series.append((win, 1, p))
    wins = [(c, m) for w, c, m in series if w and c > 0]
    losses = [(c, m) for w, c, m in series if not w and c > 0]

    def longest(runs, sign):
        if not runs:
            return None, None
        c, m = max(runs, key=lambda r: (r[0], sign * r[1]))
        return c, m

    def richest(runs, sign):
        if not runs:
            return None, None
        c, m = max(runs, key=lambda r: (sign * r[1], r[0]))
        return m, c

    out: dict[str, Any] = {}
    out["max_consecutive_wins"], out["max_consecutive_wins_money"] = longest(wins, 1)
    out["max_consecutive_losses"], out["max_consecutive_losses_money"] = longest(losses, -1)
    out["max_consecutive_profit"], out["max_consecutive_profit_count"] = richest(wins, 1)
    out["max_consecutive_loss"], out["max_consecutive_loss_count"] = richest(losses, -1)
    out["avg_consecutive_wins"] = sum(c for c, _ in wins) / len(wins) if wins else None
    out["avg_consecutive_losses"] = sum(c for c, _ in losses) / len(losses) if losses else None
    return out


def holding_period_returns(profits: Sequence[float], initial: float) -> dict[str, float | None]:
    """AHPR, GHPR and the Sharpe ratio of the trades, as MetaQuotes defines them.

    HPR of a trade = balance after it / balance before it, the balance starting at ``initial`` and moving by
    each trade's money. AHPR = mean HPR; GHPR = (final / initial)^(1/N); Sharpe = (AHPR − 1) / σ(HPR), with
    the risk-free rate 0 and σ the root-mean-square deviation (no Bessel correction, as the terminal).
    """
    if not profits or initial <= 0:
        return {"ahpr": None, "ghpr": None, "sharpe_ratio": None}
    balance = initial
    hprs = []
    for p in profits:
        after = balance + p
        if balance <= 0:
            return {"ahpr": None, "ghpr": None, "sharpe_ratio": None}   # an account blown to zero has no HPR
        hprs.append(after / balance)
        balance = after
    ahpr = sum(hprs) / len(hprs)
    ghpr = (balance / initial) ** (1.0 / len(hprs)) if balance > 0 else None
    sd = math.sqrt(sum((h - ahpr) ** 2 for h in hprs) / len(hprs))
    return {"ahpr": ahpr, "ghpr": ghpr, "sharpe_ratio": (ahpr - 1.0) / sd if sd > 0 else None}


def trade_figures(profits: Sequence[float], sides: Sequence[str], initial: float) -> dict[str, Any]:
    """Gross profit and loss, profit factor, expected payoff, wins and losses, long and short trades won,
    series, Z-score, AHPR/GHPR/Sharpe, for trades in the order they closed."""
    n = len(profits)
    wins = [p for p in profits if p > 0]
    losses = [p for p in profits if p < 0]
    gross_profit, gross_loss = sum(wins), sum(losses)
    longs = [p for p, s in zip(profits, sides) if s == "BUY"]
    shorts = [p for p, s in zip(profits, sides) if s == "SELL"]
    z, z_conf = z_score(profits)
    out: dict[str, Any] = {
        "total_trades": n,
        "gross_profit": gross_profit,
        "gross_loss": gross_loss,
        "total_net_profit": gross_profit + gross_loss,
        "profit_factor": gross_profit / -gross_loss if losses else None,
        "expected_payoff": (gross_profit + gross_loss) / n if n else None,
        "profit_trades": len(wins),
        "profit_trades_pct": 100.0 * len(wins) / n if n else None,
        "loss_trades": len(losses),
        "loss_trades_pct": 100.0 * len(losses) / n if n else None,
        "long_trades": len(longs),
        "long_trades_won_pct": 100.0 * sum(p > 0 for p in longs) / len(longs) if longs else None,
        "short_trades": len(shorts),
        "short_trades_won_pct": 100.0 * sum(p > 0 for p in shorts) / len(shorts) if shorts else None,
        "largest_profit_trade": max(wins) if wins else None,
        "largest_loss_trade": min(losses) if losses else None,
        "average_profit_trade": gross_profit / len(wins) if wins else None,
        "average_loss_trade": gross_loss / len(losses) if losses else None,
        "z_score": z,
        "z_score_confidence_pct": z_conf,
    }
    out.update(consecutive(profits))
    out.update(holding_period_returns(profits, initial))
    return out


# --- curves ---------------------------------------------------------------------------------------------------

def drawdowns(values: Sequence[float], initial: float) -> dict[str, float | None]:
    """MT5's three drawdowns of a balance or equity curve that starts at ``initial``.

    absolute = initial − the lowest value below it (0 when it never went below); maximal = the largest fall
    from a running high to a later low, in money, with that fall as % of its high; relative = the largest such
    fall as % of its high, with its money. The two can be different falls.
    """
    peak = initial
    lowest = initial
    max_money = max_money_pct = 0.0
    rel_pct = rel_money = 0.0
    for v in values:
        lowest = min(lowest, v)
        if v > peak:
            peak = v
            continue
        fall = peak - v
        pct = 100.0 * fall / peak if peak > 0 else 0.0
        if fall > max_money:
            max_money, max_money_pct = fall, pct
        if pct > rel_pct:
            rel_pct, rel_money = pct, fall
    return {"absolute": initial - lowest, "maximal": max_money, "maximal_pct": max_money_pct,
            "relative_pct": rel_pct, "relative": rel_money}


def linear_regression(values: Sequence[float]) -> tuple[float | None, float | None]:
    """LR correlation and LR standard error of a curve against its point number.

    The least-squares line through (i, value_i); the correlation is Pearson's r of value and i (its sign is
    the line's slope), the standard error √(Σ residual² / (n − 2)), in money. None under three points; the
    correlation of a flat curve is None.
    """
    n = len(values)
    if n < 3:
        return None, None
    mx = (n - 1) / 2.0
    my = sum(values) / n
    sxx = sum((i - mx) ** 2 for i in range(n))
    sxy = sum((i - mx) * (v - my) for i, v in enumerate(values))
    syy = sum((v - my) ** 2 for v in values)
    slope = sxy / sxx
    residual = sum((v - (my + slope * (i - mx))) ** 2 for i, v in enumerate(values))
    corr = sxy / math.sqrt(sxx * syy) if syy > 0 else None
    return corr, math.sqrt(max(residual, 0.0) / (n - 2))


def balance_curve(deals: Sequence[Any], initial: float) -> list[float]:
    """The balance after each deal that moved it (profit, swap and commission)."""
    balance, out = initial, []
    for d in deals:
        money = d.profit + d.swap + d.commission
        if money != 0:
            balance += money
            out.append(balance)
    return out


def open_margin(deals: Sequence[Any], times: Sequence[int], margin_of) -> list[float]:
    """The margin tied up after each of ``times`` (sorted, ms): each position's open volume then, at its open
    price, through ``margin_of(symbol, volume, price)``. A deal at the very time of a point counts (the curve is
    sampled after the book changes)."""
    events = sorted(deals, key=lambda d: d.time_msc)
    open_pos: dict[int, list] = {}   # position id -> [symbol, volume, price]
    out, k = [], 0
    for t in times:
        while k < len(events) and events[k].time_msc <= t:
            d = events[k]
            if d.entry == "IN":
                open_pos[d.position_id] = [d.symbol, d.volume, d.price]
            elif d.position_id in open_pos:
                open_pos[d.position_id][1] -= d.volume
                if open_pos[d.position_id][1] <= 1e-9:
                    del open_pos[d.position_id]
            k += 1
        out.append(sum(margin_of(s, v, p) for s, v, p in open_pos.values()))
    return out


def minimum_margin_level(equity: Sequence[float], margin: Sequence[float]) -> float | None:
    """The lowest equity / margin × 100 at the points where margin was tied up; None when none was."""
    levels = [100.0 * e / m for e, m in zip(equity, margin) if m > 0]
    return min(levels) if levels else None


# --- time of day, week and year ---------------------------------------------------------------------------------

def by_time(deals: Sequence[Any]) -> dict[str, list[dict[str, Any]]]:
    """MT5's six diagrams as tables, in UTC: entries (deals opening a position) and the profit and loss of exits
    (deals closing all or part of one: their profit, swap and commission) by hour, weekday and month."""
    keys = {"hour": (24, lambda t: t.hour, lambda k: k), "weekday": (7, lambda t: t.weekday(), lambda k: WEEKDAYS[k]),
            "month": (12, lambda t: t.month - 1, lambda k: MONTHS[k])}
    out: dict[str, list[dict[str, Any]]] = {}
    for name, (size, key, label) in keys.items():
        rows = [{name: label(k), "entries": 0, "exits": 0, "profit": 0.0, "loss": 0.0} for k in range(size)]
        for d in deals:
            row = rows[key(datetime.fromtimestamp(d.time_msc / 1000, tz=timezone.utc))]
            if d.entry == "IN":
                row["entries"] += 1
            else:
                money = d.profit + d.swap + d.commission
                row["exits"] += 1
                if money > 0:
                    row["profit"] += money
                else:
                    row["loss"] += money
        out[name] = rows
    return out


# --- a replay's figures ---------------------------------------------------------------------------------------

def prague_day(time_ms: int) -> int:
    """The Prague calendar day of a UTC time, as days since 1970-01-01: the replay's day key, from the engine's
    own Prague offset so the two can never disagree."""
    from mt5bridge.core._engine import prague_offset_minutes

    return (time_ms + prague_offset_minutes(time_ms) * 60_000) // 86_400_000


def equity_points(result) -> list[float]:
    """The equity curve's samples in time order, each Prague day's lowest equity (tick-exact) put in after that
    day's lowest sample: the samples alone would miss a low between two of them."""
    lows = {d: lo for d, _s, _e, lo in result.days}
    by_day: dict[int, list[int]] = {}
    samples = result.samples
    for i, s in enumerate(samples):
        by_day.setdefault(prague_day(s[0]), []).append(i)
    after = {min(idx, key=lambda i: samples[i][1]): lows[d] for d, idx in by_day.items() if d in lows}
    out = []
    for i, s in enumerate(samples):
        out.append(s[1])
        if i in after and after[i] < s[1]:
            out.append(after[i])
    return out


def tester_figures(result) -> dict[str, Any]:
    """Every figure of MT5's tester report for a ReplayResult (docs/replay.md, "MT5's tester figures")."""
    initial = result.initial_balance
    trades = sorted(result.trades, key=lambda t: t["close_time_ms"])
    profits = [t["profit"] for t in trades]
    out = trade_figures(profits, [t["side"] for t in trades], initial)
    balance = balance_curve(result.deals, initial)
    bal = drawdowns(balance, initial)
    eq = drawdowns(equity_points(result), initial)
    tick_relative = 100.0 * result.max_drawdown_frac
    if tick_relative > eq["relative_pct"]:
        eq["relative_pct"] = tick_relative   # the loop measured it on every tick; its money is not known
        eq["relative"] = None
    net = out["total_net_profit"]
    out["balance_drawdown_absolute"] = bal["absolute"]
    out["balance_drawdown_maximal"] = bal["maximal"]
    out["balance_drawdown_maximal_pct"] = bal["maximal_pct"]
    out["balance_drawdown_relative_pct"] = bal["relative_pct"]
    out["balance_drawdown_relative"] = bal["relative"]
    out["equity_drawdown_absolute"] = eq["absolute"]
    out["equity_drawdown_maximal"] = eq["maximal"]
    out["equity_drawdown_maximal_pct"] = eq["maximal_pct"]
    out["equity_drawdown_relative_pct"] = eq["relative_pct"]
    out["equity_drawdown_relative"] = eq["relative"]
    out["recovery_factor"] = net / eq["maximal"] if eq["maximal"] > 0 else None
    out["lr_correlation"], out["lr_standard_error"] = linear_regression([initial, *balance])
    specs = getattr(result, "specs", None) or {}
    leverage = getattr(result, "leverage", 0.0) or 0.0
    level = None
    if specs and leverage > 0:
        def margin_of(symbol: str, volume: float, price: float) -> float:
            return volume * price * specs[symbol].money_per_price / leverage

        times = [s[0] for s in result.samples]
        level = minimum_margin_level([s[1] for s in result.samples], open_margin(result.deals, times, margin_of))
    out["margin_level_min_pct"] = level
    out["total_deals"] = len(result.deals)
    out.update(by_time(result.deals))
    return out
