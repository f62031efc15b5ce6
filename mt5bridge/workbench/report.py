"""The replay report: what FTMO's dashboard would show for the replayed period, and more.

``build_report`` turns a ReplayResult into plain data (the JSON report); ``render_html`` draws it as one
self-contained page (the equity chart is inline SVG, nothing fetched); ``plot_png`` writes the same chart as a
PNG with matplotlib (optional: ``pip install "mt5bridge[plot]"``). The JSON is the same bytes for the same input
and configuration, bar ``generated_at``. docs/replay.md describes every field.
"""

from __future__ import annotations

import html
import json
import math
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from typing import Any

from mt5bridge.core.decision import ACTION_NAMES
from mt5bridge.core.reasons import WORDS

REPORT_FORMAT = "mt5bridge.workbench.replay-report"
REPORT_VERSION = 1


def iso(time_ms: int) -> str:
    return datetime.fromtimestamp(time_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def prague_date(day_key: int) -> str:
    return (date(1970, 1, 1) + timedelta(days=int(day_key))).isoformat()


def _num(x: float | None, digits: int = 6) -> float | None:
    """A finite number rounded for the report, or None (JSON null) for a value that does not exist."""
    if x is None or not math.isfinite(x):
        return None
    return round(float(x), digits) + 0.0


def build_report(result, *, inputs: dict[str, Any] | None = None, generated_at: str | None = None) -> dict:
    """The report as plain data (see docs/replay.md)."""
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
                           "unit": "% of initial balance, closed", "passed": net * pct >= ftmo.profit_target_pct})
    objectives.append({"name": "max_daily_loss", "value": _num(max_daily, 4), "limit": ftmo.daily_loss_pct,
                       "unit": "% of initial balance", "passed": not any(b[1] == "max_daily_loss"
                                                                          for b in result.breaches)})
    objectives.append({"name": "max_loss", "value": _num(max_overall, 4), "limit": ftmo.max_loss_pct,
                       "unit": "% of initial balance", "passed": not any(b[1] == "max_loss" for b in result.breaches)})
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
        },
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
        "days": [{"prague_day": prague_date(d), "start_balance": _num(s, 2), "end_balance": _num(e, 2),
                  "lowest_equity": _num(lo, 2), "profit": _num(e - s, 2)} for d, s, e, lo in result.days],
        "trade_list": [{
            "ticket": t["ticket"], "symbol": t["symbol"], "side": t["side"], "volume": _num(t["volume"], 8),
            "open_price": t["open_price"], "open_time": iso(t["open_time_ms"]), "close_time": iso(t["close_time_ms"]),
            "profit": _num(t["profit"], 2), "r_multiple": _num(t["r_multiple"], 4), "mfe_r": _num(t["mfe_r"], 4),
            "mae_r": _num(t["mae_r"], 4), "stage": t["stage"], "managed": t["managed"],
        } for t in trades],
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


# --- HTML -------------------------------------------------------------------------------------------------------

_W, _H, _PAD = 960, 360, 56


def _svg_chart(result) -> str:
    """Equity, balance and both FTMO floors over time, with each trade's open (▲ buy, ▼ sell) and close."""
    samples = result.samples
    if len(samples) < 2:
        return "<p>Too short a replay to draw.</p>"
    t0, t1 = samples[0][0], samples[-1][0]
    values = [v for s in samples for v in s[1:5]]
    lo, hi = min(values), max(values)
    if hi - lo < 1e-9:
        hi = lo + 1.0
    margin = 0.05 * (hi - lo)
    lo, hi = lo - margin, hi + margin

    def x(t: int) -> float:
        return _PAD + (t - t0) / max(1, t1 - t0) * (_W - 2 * _PAD)

    def y(v: float) -> float:
        return _H - _PAD + (lo - v) / (hi - lo) * (_H - 2 * _PAD) + 0.0

    def line(k: int, colour: str, width: float, dash: str = "") -> str:
        pts = " ".join(f"{x(s[0]):.1f},{y(s[k]):.1f}" for s in samples)
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        return f'<polyline fill="none" stroke="{colour}" stroke-width="{width}"{extra} points="{pts}"/>'

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" width="100%" role="img" '
             'aria-label="equity chart">',
             f'<rect x="0" y="0" width="{_W}" height="{_H}" fill="#fff"/>']
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        parts.append(f'<line x1="{_PAD}" x2="{_W - _PAD}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eee"/>'
                     f'<text x="4" y="{y(v) + 4:.1f}" font-size="11" fill="#666">{v:,.0f}</text>')
    for frac in (0.0, 0.5, 1.0):
        t = int(t0 + frac * (t1 - t0))
        parts.append(f'<text x="{x(t) - 30:.1f}" y="{_H - _PAD + 18}" font-size="11" fill="#666">'
                     f'{iso(t)[:10]}</text>')
    parts += [line(3, "#d62728", 1.2, "6 3"), line(4, "#7f0000", 1.2, "2 2"), line(2, "#1f77b4", 1.2),
              line(1, "#2ca02c", 1.6)]
    for c in result.commands:
        if c["action"] in ("OPEN", "ADD") and c["retcode"] in (10008, 10009, 10010) and t0 <= c["time_ms"] <= t1:
            up = c["side"] == "BUY"
            cx, cy = x(c["time_ms"]), _PAD / 2 + (0 if up else 8)
            pts = (f"{cx - 4:.1f},{cy + 4:.1f} {cx + 4:.1f},{cy + 4:.1f} {cx:.1f},{cy - 4:.1f}" if up else
                   f"{cx - 4:.1f},{cy - 4:.1f} {cx + 4:.1f},{cy - 4:.1f} {cx:.1f},{cy + 4:.1f}")
            parts.append(f'<polygon points="{pts}" fill="{"#2ca02c" if up else "#d62728"}">'
                         f'<title>{html.escape(c["action"] + " " + c["side"] + " " + c["symbol"])} '
                         f'{c["volume"]:g} lots {iso(c["time_ms"])}</title></polygon>')
    for t in result.trades:
        if t0 <= t["close_time_ms"] <= t1:
            parts.append(f'<circle cx="{x(t["close_time_ms"]):.1f}" cy="{_H - _PAD - 4}" r="2.5" '
                         f'fill="{"#2ca02c" if t["profit"] > 0 else "#d62728"}"><title>close {html.escape(t["symbol"])}'
                         f' {t["profit"]:+.2f}</title></circle>')
    for t, rule, eq, _fl in result.breaches:
        parts.append(f'<circle cx="{x(t):.1f}" cy="{y(eq):.1f}" r="6" fill="none" stroke="#000" stroke-width="2">'
                     f'<title>breach: {html.escape(rule)} {iso(t)}</title></circle>')
    legend = (("equity", "#2ca02c"), ("balance", "#1f77b4"), ("daily floor", "#d62728"),
              ("overall floor", "#7f0000"))
    for k, (name, colour) in enumerate(legend):
        parts.append(f'<rect x="{_PAD + 120 * k}" y="{_H - 18}" width="14" height="4" fill="{colour}"/>'
                     f'<text x="{_PAD + 120 * k + 18}" y="{_H - 12}" font-size="11">{name}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table(rows: list[list[Any]], head: list[str]) -> str:
    out = ["<table><thead><tr>", *(f"<th>{html.escape(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{html.escape('' if v is None else str(v))}</td>" for v in row) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def render_html(report: dict, result) -> str:
    """One self-contained HTML page: verdict, objectives, statistics, the chart, decisions, refusals, trades."""
    f = report["ftmo"]
    verdict = "PASSED" if f["passed"] else "FAILED"
    objectives = _table([[o["name"], o["value"], o["limit"], o["unit"], "yes" if o["passed"] else "NO"]
                         for o in f["objectives"]], ["objective", "value", "limit", "unit", "met"])
    breaches = _table([[b["time"], b["rule"], b["equity"], b["floor"]] for b in f["breaches"]],
                      ["time", "rule", "equity", "floor"]) if f["breaches"] else "<p>None.</p>"
    stats = _table([[k, report[k]] for k in ("trades", "net_profit", "win_rate", "profit_factor", "avg_r",
                                             "max_drawdown_pct", "sharpe", "avg_mfe_r", "avg_mae_r")],
                   ["statistic", "value"])
    decisions = _table([[a, n] for a, n in report["decisions"].items()], ["command", "count"])
    refusals = _table([[code, n, WORDS.get(code, "")] for code, n in report["refusals"].items()],
                      ["reason", "ticks", "meaning"])
    trades = _table([[t["open_time"], t["close_time"], t["symbol"], t["side"], t["volume"], t["profit"],
                      t["r_multiple"], t["mfe_r"], t["mae_r"], t["stage"]] for t in report["trade_list"]],
                    ["opened", "closed", "symbol", "side", "lots", "profit", "R", "MFE R", "MAE R", "stage"])
    i = report["input"]
    title = f"Replay {', '.join(i['symbols'])} {i['start'][:10]} to {i['end'][:10]}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1000px; }}
table {{ border-collapse: collapse; margin: 8px 0 16px; }} td, th {{ border: 1px solid #ddd; padding: 3px 8px; }}
th {{ background: #f4f4f4; text-align: left; }} .PASSED {{ color: #1a7f37; }} .FAILED {{ color: #b00020; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{html.escape(i['product'])} {html.escape(i['phase'])}, initial balance {report['account']['initial_balance']:,}
{html.escape(report['account']['currency'])}, {i['ticks']:,} ticks. Generated {html.escape(report['generated_at'])}.</p>
<h2 class="{verdict}">FTMO objectives: {verdict}</h2>
{objectives}
<p>Worst daily loss {f['max_daily_loss_pct']}% · worst overall loss {f['max_overall_loss_pct']}% ·
trading days {f['trading_days']} · best day share {f['best_day_share']}</p>
<h3>Breaches</h3>{breaches}
<h2>Equity</h2>{_svg_chart(result)}
<h2>Statistics</h2>{stats}
<h2>Commands</h2>{decisions}
<h2>Ticks held, by reason</h2>{refusals}
<h2>Trades</h2>{trades}
</body></html>
"""


def plot_png(result, path: str) -> None:
    """The equity chart as a PNG (matplotlib, the optional ``plot`` extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise RuntimeError('--plot needs matplotlib: pip install "mt5bridge[plot]"') from exc
    samples = result.samples
    times = [datetime.fromtimestamp(s[0] / 1000, tz=timezone.utc) for s in samples]
    fig, ax = plt.subplots(figsize=(11, 4.5), dpi=100)
    ax.plot(times, [s[1] for s in samples], color="#2ca02c", lw=1.4, label="equity")
    ax.plot(times, [s[2] for s in samples], color="#1f77b4", lw=1.0, label="balance")
    ax.plot(times, [s[3] for s in samples], color="#d62728", lw=1.0, ls="--", label="daily floor")
    ax.plot(times, [s[4] for s in samples], color="#7f0000", lw=1.0, ls=":", label="overall floor")
    for c in result.commands:
        if c["action"] in ("OPEN", "ADD") and c["retcode"] in (10008, 10009, 10010):
            ax.axvline(datetime.fromtimestamp(c["time_ms"] / 1000, tz=timezone.utc), color="#bbb", lw=0.5)
    for t, _rule, eq, _fl in result.breaches:
        ax.plot([datetime.fromtimestamp(t / 1000, tz=timezone.utc)], [eq], "ko", mfc="none", ms=9)
    ax.set_ylabel(result.config.account.currency)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
