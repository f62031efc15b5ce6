"""The replay report: what FTMO's dashboard would show for the replayed period, MT5's tester figures, and the
odds of passing.

``build_report`` turns a ReplayResult into plain data (the JSON report): FTMO's objectives and progress, every
figure of MT5's Strategy Tester report (``mt5bridge.workbench.tester``), the odds of passing
(``mt5bridge.workbench.odds``), tables per symbol, close reason, day, week and month, and the trade list.
``render_html`` and ``plot_png`` (``mt5bridge.workbench.report_page``) draw it. The JSON is the same bytes for
the same input and configuration, bar ``generated_at``. docs/replay.md describes every field.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from typing import Any

from mt5bridge.core.decision import ACTION_NAMES
from mt5bridge.workbench.odds import DEFAULT_PATHS, odds_of_replay
from mt5bridge.workbench.tester import prague_day, tester_figures

FILLED = (10008, 10009, 10010)

REPORT_FORMAT = "mt5bridge.workbench.replay-report"
REPORT_VERSION = 2


def iso(time_ms: int) -> str:
    return datetime.fromtimestamp(time_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def prague_date(day_key: int) -> str:
    return (date(1970, 1, 1) + timedelta(days=int(day_key))).isoformat()


def _num(x: float | None, digits: int = 6) -> float | None:
    """A finite number rounded for the report, or None (JSON null) for a value that does not exist."""
    if x is None or not math.isfinite(x):
        return None
    return round(float(x), digits) + 0.0


def _rounded(value: Any, digits: int = 6) -> Any:
    """Every float in a nested structure rounded for the report (None for one that is not finite)."""
    if isinstance(value, float):
        return _num(value, digits)
    if isinstance(value, dict):
        return {k: _rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(v, digits) for v in value]
    return value


def build_report(result, *, inputs: dict[str, Any] | None = None, generated_at: str | None = None,
                 odds_paths: int = DEFAULT_PATHS) -> dict:
    """The report as plain data (see docs/replay.md). ``odds_paths``: paths of the odds' Monte Carlo (0: none)."""
    cfg = result.config
    initial = result.initial_balance
    pct = 100.0 / initial
    ftmo = cfg.ftmo
    net = result.final_balance - initial
    day_profits = [(d, end - start) for d, start, end, _ in result.days]
    best_day = max((p for _, p in day_profits), default=0.0)
    best_share = best_day / net if net > 0 else None
    max_daily = result.max_daily_loss * pct
    max_overall = result.max_overall_loss * pct
    trading_days = len(result.trading_days)
    objectives = []
    if ftmo.profit_target_pct > 0:
        objectives.append({"name": "profit_target", "value": _num(net * pct, 4), "limit": ftmo.profit_target_pct,
                           "unit": "% of initial balance, closed", "passed": net * pct >= ftmo.profit_target_pct,
                           "value_money": _num(net, 2), "limit_money": _num(ftmo.profit_target_pct * initial / 100, 2)})
    objectives.append({"name": "max_daily_loss", "value": _num(max_daily, 4), "limit": ftmo.daily_loss_pct,
                       "unit": "% of initial balance", "passed": not any(b[1] == "max_daily_loss"
                                                                          for b in result.breaches),
                       "value_money": _num(result.max_daily_loss, 2),
                       "limit_money": _num(ftmo.daily_loss_pct * initial / 100, 2)})
    objectives.append({"name": "max_loss", "value": _num(max_overall, 4), "limit": ftmo.max_loss_pct,
                       "unit": "% of initial balance", "passed": not any(b[1] == "max_loss" for b in result.breaches),
                       "value_money": _num(result.max_overall_loss, 2),
                       "limit_money": _num(ftmo.max_loss_pct * initial / 100, 2)})
    if ftmo.min_trading_days > 0 and ftmo.profit_target_pct > 0:
        objectives.append({"name": "min_trading_days", "value": trading_days, "limit": ftmo.min_trading_days,
                           "unit": "Prague days with a position opened", "passed": trading_days >= ftmo.min_trading_days})
    if cfg.account.product == "1-step":
        objectives.append({"name": "best_day_share", "value": _num(best_share, 4), "limit": ftmo.best_day_max_share,
                           "unit": "best day's profit / total profit (reported, not a failure)",
                           "passed": best_share is None or best_share <= ftmo.best_day_max_share})
    passed = all(o["passed"] for o in objectives if o["name"] != "best_day_share")

    trades = result.trades
    profits = [t["profit"] for t in trades]
    wins = [p for p in profits if p > 0]
    losses = [p for p in profits if p < 0]
    returns = [(end - start) / start for _, start, end, _ in result.days if start > 0]
    sharpe = None
    if len(returns) >= 2:
        mean = sum(returns) / len(returns)
        sd = math.sqrt(sum((r - mean) ** 2 for r in returns) / (len(returns) - 1))
        sharpe = mean / sd * math.sqrt(252) if sd > 0 else None
    decisions = Counter(c["action"] for c in result.commands)
    target = ftmo.profit_target_pct
    progress = {
        "profit_pct": _num(net * pct, 4),
        "profit_target_pct": target if target > 0 else None,
        "profit_target_done_pct": _num(min(100.0, max(0.0, 100.0 * net * pct / target)), 2) if target > 0 else None,
        "trading_days": trading_days,
        "min_trading_days": ftmo.min_trading_days,
        "trading_days_done_pct": _num(min(100.0, 100.0 * trading_days / ftmo.min_trading_days), 2)
        if ftmo.min_trading_days > 0 else None,
    }
    odds = _rounded(odds_of_replay(result, paths=odds_paths)) if odds_paths > 0 else None

    return {
        "report": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "generated_at": generated_at or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "input": {
            **(inputs or {}),
            "symbols": result.symbols,
            "start": iso(result.start_ms),
            "end": iso(result.end_ms),
            "ticks": result.ticks,
            "product": cfg.account.product,
            "phase": cfg.account.phase,
        },
        "account": {
            "currency": cfg.account.currency,
            "initial_balance": _num(initial, 2),
            "final_balance": _num(result.final_balance, 2),
            "final_equity": _num(result.final_equity, 2),
        },
        "ftmo": {
            "passed": passed,
            "objectives": objectives,
            "max_daily_loss_pct": _num(max_daily, 4),
            "max_overall_loss_pct": _num(max_overall, 4),
            "breaches": [{"time": iso(t), "rule": rule, "equity": _num(eq, 2), "floor": _num(fl, 2)}
                         for t, rule, eq, fl in result.breaches],
            "trading_days": trading_days,
            "best_day_profit": _num(best_day, 2),
            "best_day_share": _num(best_share, 4),
            "progress": progress,
        },
        "odds": odds,
        "tester": _rounded(tester_figures(result)),
        "trades": len(trades),
        "net_profit": _num(net, 2),
        "win_rate": _num(len(wins) / len(trades), 4) if trades else None,
        "profit_factor": _num(sum(wins) / -sum(losses), 4) if losses else None,
        "avg_r": _num(sum(t["r_multiple"] for t in trades) / len(trades), 4) if trades else None,
        "max_drawdown_pct": _num(100.0 * result.max_drawdown_frac, 4),
        "sharpe": _num(sharpe, 4),
        "avg_mfe_r": _num(sum(t["mfe_r"] for t in trades) / len(trades), 4) if trades else None,
        "avg_mae_r": _num(sum(t["mae_r"] for t in trades) / len(trades), 4) if trades else None,
        "decisions": {a: decisions.get(a, 0) for a in ACTION_NAMES if a != "HOLD"},
        "refusals": dict(sorted(result.refusals.items(), key=lambda kv: (-kv[1], kv[0]))),
        "days": day_table(result),
        "by_week": period_table(result, "week"),
        "by_month": period_table(result, "month"),
        "by_symbol": symbol_table(trades),
        "by_close_reason": close_reason_table(trades),
        "trade_list": trade_list(result),
        "commands": [{
            "time": iso(c["time_ms"]), "command_id": c["command_id"], "action": c["action"], "symbol": c["symbol"],
            "side": c["side"], "volume": _num(c["volume"], 8), "sl": c["sl"], "tp": c["tp"], "ticket": c["ticket"],
            "reason_code": c["reason_code"], "cap": c["cap"], "retcode": c["retcode"], "result": c["result"],
            "fill_price": c["fill_price"], "position": c["position"],
        } for c in result.commands],
        "equity_curve": [{"time": iso(t), "equity": _num(eq, 2), "balance": _num(bal, 2),
                          "daily_floor": _num(df, 2), "overall_floor": _num(of, 2)}
                         for t, eq, bal, df, of in result.samples],
    }


def dumps(report: dict) -> str:
    """The report as JSON text: keys in a fixed order, so equal reports are equal bytes."""
    return json.dumps(report, indent=1, ensure_ascii=False, allow_nan=False) + "\n"




# --- tables ---------------------------------------------------------------------------------------------------

def _group(trades: list[dict], key) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for t in trades:
        out.setdefault(key(t), []).append(t)
    return out


def _trade_stats(trades: list[dict]) -> dict[str, Any]:
    profits = [t["profit"] for t in trades]
    won = sum(p > 0 for p in profits)
    gross_profit = sum(p for p in profits if p > 0)
    gross_loss = sum(p for p in profits if p < 0)
    return {"trades": len(trades), "won_pct": _num(100.0 * won / len(trades), 2) if trades else None,
            "net_profit": _num(gross_profit + gross_loss, 2), "gross_profit": _num(gross_profit, 2),
            "gross_loss": _num(gross_loss, 2),
            "profit_factor": _num(gross_profit / -gross_loss, 4) if gross_loss < 0 else None,
            "average_profit": _num((gross_profit + gross_loss) / len(trades), 2) if trades else None}


def symbol_table(trades: list[dict]) -> list[dict[str, Any]]:
    """Per symbol: trades, won %, net, gross profit and loss, profit factor, lots traded, longs and shorts."""
    rows = []
    for symbol, group in sorted(_group(trades, lambda t: t["symbol"]).items()):
        rows.append({"symbol": symbol, **_trade_stats(group), "lots": _num(sum(t["volume"] for t in group), 8),
                     "long": sum(t["side"] == "BUY" for t in group), "short": sum(t["side"] == "SELL" for t in group)})
    return rows


def close_reason_table(trades: list[dict]) -> list[dict[str, Any]]:
    """Per close reason (stop loss, take profit, trailing stop, engine exit, ...): the trades' figures."""
    groups = _group(trades, lambda t: t.get("close_reason") or "UNSETTLED")
    return [{"close_reason": reason, **_trade_stats(group)}
            for reason, group in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))]


def day_table(result) -> list[dict[str, Any]]:
    """Per Prague day: balances, lowest equity, profit (money and %), the day's worst loss against the daily
    limit (% of the initial balance), trades closed, whether a position was opened."""
    pct = 100.0 / result.initial_balance
    closed = Counter(prague_day(t["close_time_ms"]) for t in result.trades)
    traded = set(result.trading_days)
    return [{"prague_day": prague_date(d), "start_balance": _num(s, 2), "end_balance": _num(e, 2),
             "lowest_equity": _num(lo, 2), "profit": _num(e - s, 2), "profit_pct": _num((e - s) * pct, 4),
             "daily_loss_pct": _num(max(0.0, s - lo) * pct, 4), "trades_closed": closed.get(d, 0),
             "trading_day": d in traded} for d, s, e, lo in result.days]


def period_table(result, period: str) -> list[dict[str, Any]]:
    """Per ISO week (``2024-W02``) or month (``2024-01``) of Prague days: start and end balance, profit (money and
    % of the start balance), the worst day's loss (% of initial), trades closed, trading days."""
    def key(day: int) -> str:
        d = date(1970, 1, 1) + timedelta(days=day)
        if period == "week":
            year, week, _ = d.isocalendar()
            return f"{year}-W{week:02d}"
        return f"{d.year}-{d.month:02d}"

    pct = 100.0 / result.initial_balance
    closed = Counter(key(prague_day(t["close_time_ms"])) for t in result.trades)
    traded = Counter(key(d) for d in result.trading_days)
    rows: dict[str, dict[str, Any]] = {}
    for d, s, e, lo in result.days:
        k = key(d)
        row = rows.setdefault(k, {period: k, "start_balance": s, "end_balance": e, "worst_daily_loss_pct": 0.0})
        row["end_balance"] = e
        row["worst_daily_loss_pct"] = max(row["worst_daily_loss_pct"], max(0.0, s - lo) * pct)
    out = []
    for k, row in rows.items():
        s, e = row["start_balance"], row["end_balance"]
        out.append({period: k, "start_balance": _num(s, 2), "end_balance": _num(e, 2), "profit": _num(e - s, 2),
                    "profit_pct": _num(100.0 * (e - s) / s, 4) if s > 0 else None,
                    "worst_daily_loss_pct": _num(row["worst_daily_loss_pct"], 4), "trades_closed": closed.get(k, 0),
                    "trading_days": traded.get(k, 0)})
    return out


def stops_of(commands: list[dict]) -> dict[int, dict[str, float]]:
    """Each position's stop loss and take profit: as opened, and as in force at the end (its last MODIFY the
    broker took)."""
    out: dict[int, dict[str, float]] = {}
    for c in commands:
        if c["retcode"] not in FILLED:
            continue
        if c["action"] in ("OPEN", "ADD") and c["position"]:
            out[c["position"]] = {"initial_sl": c["sl"], "initial_tp": c["tp"], "sl": c["sl"], "tp": c["tp"]}
        elif c["action"] == "MODIFY" and c["ticket"] in out:
            out[c["ticket"]].update(sl=c["sl"], tp=c["tp"])
    return out


def pip_size(spec) -> float | None:
    """A pip: ten points on a 5- or 3-digit quote (0.0001 EURUSD, 0.01 USDJPY), else one point."""
    if spec is None:
        return None
    return spec.point * 10 if spec.digits in (3, 5) else spec.point


def trade_list(result) -> list[dict[str, Any]]:
    """Every closed trade, MT5's history columns and the engine's: prices, close reason, duration, pips, SL, TP."""
    stops = stops_of(result.commands)
    specs = getattr(result, "specs", None) or {}
    rows = []
    for t in result.trades:
        pip = pip_size(specs.get(t["symbol"]))
        close_price = t.get("close_price")
        direction = 1.0 if t["side"] == "BUY" else -1.0
        pips = direction * (close_price - t["open_price"]) / pip if pip and close_price is not None else None
        levels = stops.get(t["ticket"], {})
        rows.append({
            "ticket": t["ticket"], "symbol": t["symbol"], "side": t["side"], "volume": _num(t["volume"], 8),
            "open_time": iso(t["open_time_ms"]), "open_price": t["open_price"],
            "close_time": iso(t["close_time_ms"]), "close_price": close_price,
            "close_reason": t.get("close_reason"),
            "duration_s": _num((t["close_time_ms"] - t["open_time_ms"]) / 1000, 3),
            "pips": _num(pips, 1), "sl": levels.get("sl"), "tp": levels.get("tp"),
            "initial_sl": levels.get("initial_sl"), "initial_tp": levels.get("initial_tp"),
            "commission": _num(t.get("commission"), 2), "swap": _num(t.get("swap"), 2),
            "profit": _num(t["profit"], 2), "r_multiple": _num(t["r_multiple"], 4), "mfe_r": _num(t["mfe_r"], 4),
            "mae_r": _num(t["mae_r"], 4), "stage": t["stage"], "managed": t["managed"],
        })
    return rows


def render_html(report: dict, result) -> str:
    """The report as one self-contained, interactive HTML page (``mt5bridge.workbench.report_page``)."""
    from mt5bridge.workbench.report_page import render_html as render

    return render(report, result)


def plot_png(result, path: str, report: dict | None = None) -> None:
    """The equity chart as a PNG (``mt5bridge.workbench.report_page``; needs matplotlib)."""
    from mt5bridge.workbench.report_page import plot_png as plot

    plot(result, path, report)
