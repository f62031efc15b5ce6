"""The replay report drawn: one self-contained HTML page, and the equity chart as a PNG.

The page needs no network: the chart is inline SVG drawn here, and a small inline script makes it
interactive (a crosshair that reads equity, balance, both floors and the drawdown at any time; the legend
shows or hides each line; a trade's marker names the trade and finds it in the trade list). Without the
script the chart and every table still show. ``plot_png`` draws the same chart with matplotlib (the optional
``plot`` extra).
"""

from __future__ import annotations

import html
import json
from datetime import datetime, timezone
from typing import Any

from mt5bridge.core.reasons import WORDS

FILLED = (10008, 10009, 10010)
_W, _PAD_L, _PAD_R = 960, 64, 16
_TOP, _MAIN_H, _GAP, _DD_H, _BOTTOM = 34, 300, 26, 110, 28
_H = _TOP + _MAIN_H + _GAP + _DD_H + _BOTTOM

SERIES = (  # key, name, colour, width, dash
    ("equity", "equity", "#2ca02c", 1.6, ""),
    ("balance", "balance", "#1f77b4", 1.2, ""),
    ("daily_floor", "daily floor", "#d62728", 1.2, "6 3"),
    ("overall_floor", "overall floor", "#7f0000", 1.2, "2 2"),
    ("target", "profit target", "#9467bd", 1.2, "8 4"),
)


def _iso(time_ms: int) -> str:
    return datetime.fromtimestamp(time_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def target_balance(result) -> float | None:
    """The balance that meets the profit target, or None without one."""
    pct = result.config.ftmo.profit_target_pct
    return result.initial_balance * (1 + pct / 100) if pct > 0 else None


def equity_at(samples: list, time_ms: int) -> float:
    """The equity of the last sample at or before ``time_ms`` (the first sample before the curve starts)."""
    lo, hi = 0, len(samples) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if samples[mid][0] <= time_ms:
            lo = mid
        else:
            hi = mid - 1
    return samples[lo][1]


def drawdown_pct(samples: list) -> list[float]:
    """Equity's fall from its running peak, % of that peak, at each sample."""
    peak, out = float("-inf"), []
    for s in samples:
        peak = max(peak, s[1])
        out.append(100.0 * (peak - s[1]) / peak if peak > 0 else 0.0)
    return out


def svg_chart(result) -> str:
    """Equity, balance, both floors and the target over time, each entry (▲ buy, ▼ sell) and exit (● green for a
    profit, red for a loss) on the equity line, breaches ringed, and the drawdown panel below."""
    samples = result.samples
    if len(samples) < 2:
        return "<p>Too short a replay to draw.</p>"
    t0, t1 = samples[0][0], samples[-1][0]
    target = target_balance(result)
    values = [v for s in samples for v in s[1:5]] + ([target] if target else [])
    lo, hi = min(values), max(values)
    if hi - lo < 1e-9:
        hi = lo + 1.0
    pad = 0.04 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    dd = drawdown_pct(samples)
    dd_hi = max(1.0, max(dd) * 1.1)
    x_span = _W - _PAD_L - _PAD_R

    def x(t: int) -> float:
        return _PAD_L + (t - t0) / max(1, t1 - t0) * x_span

    def y(v: float) -> float:
        return _TOP + (hi - v) / (hi - lo) * _MAIN_H

    dd_top = _TOP + _MAIN_H + _GAP

    def y_dd(v: float) -> float:
        return dd_top + v / dd_hi * _DD_H

    p = [f'<svg id="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" width="100%" role="img" '
         f'aria-label="equity chart" data-t0="{t0}" data-t1="{t1}" data-x0="{_PAD_L}" data-x1="{_W - _PAD_R}">',
         f'<rect x="0" y="0" width="{_W}" height="{_H}" fill="#fff"/>']
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        p.append(f'<line x1="{_PAD_L}" x2="{_W - _PAD_R}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eee"/>'
                 f'<text x="4" y="{y(v) + 4:.1f}" font-size="11" fill="#666">{v:,.0f}</text>')
    for v in (0.0, dd_hi / 2, dd_hi):   # 0 prints as 0.0% (not -0.0%), a fall as -1.2%
        p.append(f'<line x1="{_PAD_L}" x2="{_W - _PAD_R}" y1="{y_dd(v):.1f}" y2="{y_dd(v):.1f}" stroke="#eee"/>'
                 f'<text x="4" y="{y_dd(v) + 4:.1f}" font-size="11" fill="#666">{-v + 0.0:.1f}%</text>')
    p.append(f'<text x="{_PAD_L}" y="{dd_top - 6}" font-size="11" fill="#444">'
             'drawdown of equity from its peak, %</text>')
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        t = int(t0 + frac * (t1 - t0))
        anchor = "start" if frac == 0 else "end" if frac == 1 else "middle"
        p.append(f'<text x="{x(t):.1f}" y="{_H - 8}" font-size="11" fill="#666" text-anchor="{anchor}">'
                 f'{_iso(t)[:10]}</text>')
    # the lines
    for k, (key, _name, colour, width, dash) in enumerate(SERIES):
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        if key == "target":
            if target is None:
                continue
            p.append(f'<g data-series="target"><line x1="{_PAD_L}" x2="{_W - _PAD_R}" y1="{y(target):.1f}" '
                     f'y2="{y(target):.1f}" stroke="{colour}" stroke-width="{width}"{extra}/></g>')
            continue
        pts = " ".join(f"{x(s[0]):.1f},{y(s[k + 1]):.1f}" for s in samples)
        p.append(f'<g data-series="{key}"><polyline fill="none" stroke="{colour}" stroke-width="{width}"{extra} '
                 f'points="{pts}"/></g>')
    area = " ".join(f"{x(s[0]):.1f},{y_dd(d):.1f}" for s, d in zip(samples, dd))
    p.append(f'<g data-series="drawdown"><polygon fill="#d62728" fill-opacity="0.25" stroke="#d62728" '
             f'stroke-width="0.8" points="{x(t0):.1f},{y_dd(0):.1f} {area} {x(t1):.1f},{y_dd(0):.1f}"/></g>')
    # the trades, on the equity line
    marks = ['<g data-series="trades">']
    for t in result.trades:
        if not t0 <= t["open_time_ms"] <= t1 or not t0 <= t["close_time_ms"] <= t1:
            continue
        up = t["side"] == "BUY"
        cx, cy = x(t["open_time_ms"]), y(equity_at(samples, t["open_time_ms"]))
        tri = (f"{cx - 5:.1f},{cy + 9:.1f} {cx + 5:.1f},{cy + 9:.1f} {cx:.1f},{cy + 1:.1f}" if up else
               f"{cx - 5:.1f},{cy - 9:.1f} {cx + 5:.1f},{cy - 9:.1f} {cx:.1f},{cy - 1:.1f}")
        label = (f'#{t["ticket"]} {t["side"]} {t["volume"]:g} {t["symbol"]} {_iso(t["open_time_ms"])} → '
                 f'{_iso(t["close_time_ms"])} {t["profit"]:+,.2f} ({t.get("close_reason") or "?"})')
        colour = "#2ca02c" if t["profit"] > 0 else "#d62728"
        ex, ey = x(t["close_time_ms"]), y(equity_at(samples, t["close_time_ms"]))
        marks.append(f'<g class="trade" data-ticket="{t["ticket"]}"><title>{_esc(label)}</title>'
                     f'<line x1="{cx:.1f}" y1="{cy:.1f}" x2="{ex:.1f}" y2="{ey:.1f}" stroke="{colour}" '
                     f'stroke-width="0.8" stroke-dasharray="2 2"/>'
                     f'<polygon points="{tri}" fill="{"#1f77b4" if up else "#ff7f0e"}"/>'
                     f'<circle cx="{ex:.1f}" cy="{ey:.1f}" r="3.2" fill="{colour}"/></g>')
    marks.append("</g>")
    p += marks
    for t, rule, eq, _fl in result.breaches:
        p.append(f'<circle class="breach" cx="{x(t):.1f}" cy="{y(eq):.1f}" r="7" fill="none" stroke="#000" '
                 f'stroke-width="2"><title>breach: {_esc(rule)} {_iso(t)} equity {eq:,.2f}</title></circle>')
    # the legend: each item shows or hides its series
    legend = [(key, name, colour) for key, name, colour, _w, _d in SERIES if key != "target" or target]
    legend += [("trades", "trades: ▲ buy ▼ sell ● exit", "#1f77b4"), ("drawdown", "drawdown", "#d62728")]
    lx = _PAD_L
    for key, name, colour in legend:
        p.append(f'<g class="legend" data-for="{key}" style="cursor:pointer"><rect x="{lx}" y="10" width="14" '
                 f'height="5" fill="{colour}"/><text x="{lx + 18}" y="17" font-size="11">{_esc(name)}</text></g>')
        lx += 26 + 6.2 * len(name)
    # the crosshair, moved by the script
    p.append(f'<line id="cross" x1="0" x2="0" y1="{_TOP}" y2="{dd_top + _DD_H}" stroke="#888" stroke-width="0.8" '
             'visibility="hidden"/>')
    p.append("</svg>")
    return "".join(p)


_SCRIPT = r"""
(function () {
  var data = JSON.parse(document.getElementById('curve').textContent);
  var svg = document.getElementById('chart'), cross = document.getElementById('cross');
  var tip = document.getElementById('tip');
  var t0 = +svg.dataset.t0, t1 = +svg.dataset.t1, x0 = +svg.dataset.x0, x1 = +svg.dataset.x1;
  function money(v) {
    return v === null ? '-' : v.toLocaleString('en-US', {minimumFractionDigits: 2, maximumFractionDigits: 2});
  }
  function nearest(t) {
    var lo = 0, hi = data.t.length - 1;
    while (lo < hi) { var mid = (lo + hi + 1) >> 1; if (data.t[mid] <= t) lo = mid; else hi = mid - 1; }
    return lo;
  }
  svg.addEventListener('mousemove', function (ev) {
    var box = svg.getBoundingClientRect();
    var vx = (ev.clientX - box.left) / box.width * svg.viewBox.baseVal.width;
    if (vx < x0 || vx > x1) { cross.setAttribute('visibility', 'hidden'); tip.hidden = true; return; }
    var i = nearest(t0 + (vx - x0) / (x1 - x0) * (t1 - t0));
    var cx = x0 + (data.t[i] - t0) / Math.max(1, t1 - t0) * (x1 - x0);
    cross.setAttribute('x1', cx); cross.setAttribute('x2', cx); cross.setAttribute('visibility', 'visible');
    tip.hidden = false;
    tip.textContent = new Date(data.t[i]).toISOString().slice(0, 16).replace('T', ' ') + ' UTC  equity ' +
      money(data.equity[i]) + '  balance ' + money(data.balance[i]) + '  daily floor ' + money(data.daily_floor[i]) +
      '  overall floor ' + money(data.overall_floor[i]) + '  drawdown -' + data.drawdown[i].toFixed(2) + '%';
  });
  svg.addEventListener('mouseleave', function () { cross.setAttribute('visibility', 'hidden'); tip.hidden = true; });
  Array.prototype.forEach.call(svg.querySelectorAll('.legend'), function (item) {
    item.addEventListener('click', function () {
      var g = svg.querySelector('[data-series="' + item.dataset.for + '"]');
      if (!g) return;
      var hide = g.style.display !== 'none';
      g.style.display = hide ? 'none' : '';
      item.style.opacity = hide ? 0.35 : 1;
    });
  });
  Array.prototype.forEach.call(svg.querySelectorAll('.trade'), function (mark) {
    mark.style.cursor = 'pointer';
    mark.addEventListener('click', function () {
      var row = document.getElementById('trade-' + mark.dataset.ticket);
      if (!row) return;
      Array.prototype.forEach.call(document.querySelectorAll('tr.picked'), function (r) {
        r.classList.remove('picked');
      });
      row.classList.add('picked');
      row.scrollIntoView({block: 'center'});
    });
  });
})();
"""


def curve_json(result) -> str:
    """The sampled curve for the script, safe inside a <script> element."""
    s = result.samples
    data = {"t": [p[0] for p in s], "equity": [round(p[1], 2) for p in s], "balance": [round(p[2], 2) for p in s],
            "daily_floor": [round(p[3], 2) for p in s], "overall_floor": [round(p[4], 2) for p in s],
            "drawdown": [round(v, 4) for v in drawdown_pct(s)]}
    return json.dumps(data, allow_nan=False).replace("</", "<\\/")


def _table(rows: list[list[Any]], head: list[str], row_ids: list[str] | None = None) -> str:
    out = ["<table><thead><tr>", *(f"<th>{_esc(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for k, row in enumerate(rows):
        rid = f' id="{_esc(row_ids[k])}"' if row_ids else ""
        out.append(f"<tr{rid}>" + "".join(f"<td>{_esc(v)}</td>" for v in row) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.2f}{unit}"
    return f"{v}{unit}"


def _pair(money: Any, pct: Any, pct_first: bool = False) -> str:
    if pct_first:
        return f"{_fmt(pct, '%')} ({_fmt(money)})"
    return f"{_fmt(money)} ({_fmt(pct, '%')})"


def tester_rows(t: dict) -> list[list[str]]:
    """MT5's "Results" figures, named and paired as the terminal shows them."""
    return [
        ["Total net profit", _fmt(t["total_net_profit"])], ["Gross profit", _fmt(t["gross_profit"])],
        ["Gross loss", _fmt(t["gross_loss"])], ["Profit factor", _fmt(t["profit_factor"])],
        ["Expected payoff", _fmt(t["expected_payoff"])], ["Recovery factor", _fmt(t["recovery_factor"])],
        ["Sharpe ratio", _fmt(t["sharpe_ratio"])],
        ["Z-score", f"{_fmt(t['z_score'])} ({_fmt(t['z_score_confidence_pct'], '%')})"],
        ["AHPR", f"{t['ahpr']:.4f} ({(t['ahpr'] - 1) * 100:.2f}%)" if t["ahpr"] is not None else "—"],
        ["GHPR", f"{t['ghpr']:.4f} ({(t['ghpr'] - 1) * 100:.2f}%)" if t["ghpr"] is not None else "—"],
        ["LR correlation", _fmt(t["lr_correlation"])], ["LR standard error", _fmt(t["lr_standard_error"])],
        ["Balance drawdown absolute", _fmt(t["balance_drawdown_absolute"])],
        ["Balance drawdown maximal", _pair(t["balance_drawdown_maximal"], t["balance_drawdown_maximal_pct"])],
        ["Balance drawdown relative", _pair(t["balance_drawdown_relative"], t["balance_drawdown_relative_pct"], True)],
        ["Equity drawdown absolute", _fmt(t["equity_drawdown_absolute"])],
        ["Equity drawdown maximal", _pair(t["equity_drawdown_maximal"], t["equity_drawdown_maximal_pct"])],
        ["Equity drawdown relative", _pair(t["equity_drawdown_relative"], t["equity_drawdown_relative_pct"], True)],
        ["Margin level (lowest)", _fmt(t["margin_level_min_pct"], "%")],
        ["Total trades", _fmt(t["total_trades"])], ["Total deals", _fmt(t["total_deals"])],
        ["Short trades (won %)", f"{t['short_trades']} ({_fmt(t['short_trades_won_pct'], '%')})"],
        ["Long trades (won %)", f"{t['long_trades']} ({_fmt(t['long_trades_won_pct'], '%')})"],
        ["Profit trades (% of total)", f"{t['profit_trades']} ({_fmt(t['profit_trades_pct'], '%')})"],
        ["Loss trades (% of total)", f"{t['loss_trades']} ({_fmt(t['loss_trades_pct'], '%')})"],
        ["Largest profit trade", _fmt(t["largest_profit_trade"])],
        ["Largest loss trade", _fmt(t["largest_loss_trade"])],
        ["Average profit trade", _fmt(t["average_profit_trade"])],
        ["Average loss trade", _fmt(t["average_loss_trade"])],
        ["Maximum consecutive wins ($)",
         f"{_fmt(t['max_consecutive_wins'])} ({_fmt(t['max_consecutive_wins_money'])})"],
        ["Maximum consecutive losses ($)",
         f"{_fmt(t['max_consecutive_losses'])} ({_fmt(t['max_consecutive_losses_money'])})"],
        ["Maximal consecutive profit (count)",
         f"{_fmt(t['max_consecutive_profit'])} ({_fmt(t['max_consecutive_profit_count'])})"],
        ["Maximal consecutive loss (count)",
         f"{_fmt(t['max_consecutive_loss'])} ({_fmt(t['max_consecutive_loss_count'])})"],
        ["Average consecutive wins", _fmt(t["avg_consecutive_wins"])],
        ["Average consecutive losses", _fmt(t["avg_consecutive_losses"])],
    ]


def _bars(rows: list[dict], key: str) -> str:
    """Entries and profit/loss by hour, weekday or month: a table with inline bars."""
    most = max([r["entries"] for r in rows] + [1])
    money = max([r["profit"] for r in rows] + [-r["loss"] for r in rows] + [1e-9])
    out = [f"<table class='bars'><thead><tr><th>{_esc(key)}</th><th>entries</th><th>exits</th><th>profit</th>"
           "<th>loss</th></tr></thead><tbody>"]
    for r in rows:
        out.append(f"<tr><td>{_esc(r[key])}</td>"
                   f"<td><span class='bar' style='width:{60 * r['entries'] / most:.0f}px'></span> {r['entries']}</td>"
                   f"<td>{r['exits']}</td>"
                   f"<td><span class='bar win' style='width:{60 * r['profit'] / money:.0f}px'></span> "
                   f"{r['profit']:,.2f}</td>"
                   f"<td><span class='bar loss' style='width:{60 * -r['loss'] / money:.0f}px'></span> "
                   f"{r['loss']:,.2f}</td></tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _progress(label: str, done: float | None, text: str) -> str:
    if done is None:
        return ""
    return (f"<div class='progress'><span>{_esc(label)}</span><div class='track'><div class='fill' "
            f"style='width:{done:.1f}%'></div></div><span>{_esc(text)}</span></div>")


def _odds(odds: dict | None) -> str:
    if not odds or odds.get("p_pass") is None:
        return "<p>Not enough replayed days to estimate.</p>"

    def pct(v):
        return "—" if v is None else f"{100 * v:.1f}%"

    def ci(v, as_pct=True):
        if not v:
            return "—"
        return f"{pct(v[0])} – {pct(v[1])}" if as_pct else f"{v[0]:.0f} – {v[1]:.0f}"

    rows = []
    for name, o in (("days (block bootstrap)", odds), ("trade order", odds.get("trade_order") or {})):
        if o.get("p_pass") is None:
            continue
        rows.append([name, f"{pct(o['p_pass'])} ({ci(o['p_pass_ci'])})",
                     f"{pct(o['p_daily_breach'])} ({ci(o['p_daily_breach_ci'])})",
                     f"{pct(o['p_max_breach'])} ({ci(o['p_max_breach_ci'])})", pct(o["p_undecided"]),
                     "—" if o["median_days_to_target"] is None else
                     f"{o['median_days_to_target']:.0f} ({ci(o['median_days_to_target_ci'], False)})"])
    return (_table(rows, ["resampled", "P(pass)", "P(daily-limit breach)", "P(max-loss breach)", "undecided",
                          "median days to target"]) +
            f"<p class='note'>{odds['paths']:,} paths of {odds['horizon_days']} days drawn from the "
            f"{odds['source_days']} replayed days (blocks of {odds['block']}); 95% intervals in brackets."
            + (" Fewer than 20 replayed days: read these odds as a sketch, not a measure." if odds["source_days"] < 20
               else "") + "</p>")


def render_html(report: dict, result) -> str:
    """One self-contained page: verdict, objectives and progress, the odds of passing, the chart, MT5's figures,
    the tables and the trade list."""
    f = report["ftmo"]
    verdict = "PASSED" if f["passed"] else "FAILED"
    objectives = _table([[o["name"], _fmt(o["value"], "%" if o["unit"].startswith("%") else ""),
                          _fmt(o["limit"], "%" if o["unit"].startswith("%") else ""),
                          _fmt(o.get("value_money")), _fmt(o.get("limit_money")), o["unit"],
                          "yes" if o["passed"] else "NO"] for o in f["objectives"]],
                        ["objective", "value", "limit", "value (money)", "limit (money)", "unit", "met"])
    g = f["progress"]
    progress = (_progress("profit target", g["profit_target_done_pct"],
                          f"{_fmt(g['profit_pct'], '%')} of {_fmt(g['profit_target_pct'], '%')}") +
                _progress("trading days", g["trading_days_done_pct"],
                          f"{g['trading_days']} of {g['min_trading_days']}"))
    breaches = _table([[b["time"], b["rule"], b["equity"], b["floor"]] for b in f["breaches"]],
                      ["time", "rule", "equity", "floor"]) if f["breaches"] else "<p>None.</p>"
    t = report["tester"]
    rows = tester_rows(t)
    half = (len(rows) + 1) // 2
    tester = ("<div class='cols'>" + _table(rows[:half], ["figure", "value"]) +
              _table(rows[half:], ["figure", "value"]) + "</div>")
    timing = "".join(f"<div>{_bars(t[k], k)}</div>" for k in ("hour", "weekday", "month"))
    symbols = _table([[r["symbol"], r["trades"], r["won_pct"], r["net_profit"], r["gross_profit"], r["gross_loss"],
                       r["profit_factor"], r["lots"], r["long"], r["short"]] for r in report["by_symbol"]],
                     ["symbol", "trades", "won %", "net", "gross profit", "gross loss", "PF", "lots", "long", "short"])
    reasons = _table([[r["close_reason"], r["trades"], r["won_pct"], r["net_profit"], r["average_profit"]]
                      for r in report["by_close_reason"]], ["close reason", "trades", "won %", "net", "average"])
    days = _table([[d["prague_day"], d["start_balance"], d["end_balance"], d["lowest_equity"], d["profit"],
                    d["profit_pct"], d["daily_loss_pct"], d["trades_closed"], "yes" if d["trading_day"] else ""]
                   for d in report["days"]],
                  ["Prague day", "start", "end", "lowest equity", "profit", "profit %", "worst loss %", "trades",
                   "traded"])
    weeks = _table([[w["week"], w["start_balance"], w["end_balance"], w["profit"], w["profit_pct"],
                     w["worst_daily_loss_pct"], w["trades_closed"], w["trading_days"]] for w in report["by_week"]],
                   ["week", "start", "end", "profit", "profit %", "worst day %", "trades", "trading days"])
    months = _table([[m["month"], m["start_balance"], m["end_balance"], m["profit"], m["profit_pct"],
                      m["worst_daily_loss_pct"], m["trades_closed"], m["trading_days"]] for m in report["by_month"]],
                    ["month", "start", "end", "profit", "profit %", "worst day %", "trades", "trading days"])
    decisions = _table([[a, n] for a, n in report["decisions"].items()], ["command", "count"])
    refusals = _table([[code, n, WORDS.get(code, "")] for code, n in report["refusals"].items()],
                      ["reason", "ticks", "meaning"])
    tl = report["trade_list"]
    trades = _table([[x["ticket"], x["symbol"], x["side"], x["volume"], x["open_time"], x["open_price"], x["sl"],
                      x["tp"], x["close_time"], x["close_price"], x["close_reason"], x["duration_s"], x["pips"],
                      x["profit"], x["r_multiple"]] for x in tl],
                    ["ticket", "symbol", "side", "lots", "opened", "open price", "SL", "TP", "closed", "close price",
                     "close reason", "duration s", "pips", "profit", "R"],
                    row_ids=[f"trade-{x['ticket']}" for x in tl])
    i = report["input"]
    title = f"Replay {', '.join(i['symbols'])} {i['start'][:10]} to {i['end'][:10]}"
    history = i.get("history") or {}
    quality = ""
    if history.get("quality"):
        # What the prices were made of comes first: a result on modelled prices is read as such.
        notes = "".join(f"<li>{_esc(n)}</li>" for n in history.get("notes") or [])
        quality = (f"<p class='quality'><b>History quality:</b> {_esc(history['quality'])}</p>"
                   + (f"<ul class='quality'>{notes}</ul>" if notes else ""))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1100px; }}
table {{ border-collapse: collapse; margin: 8px 0 16px; }} td, th {{ border: 1px solid #ddd; padding: 3px 8px; }}
th {{ background: #f4f4f4; text-align: left; }} .PASSED {{ color: #1a7f37; }} .FAILED {{ color: #b00020; }}
.cols {{ display: flex; gap: 24px; flex-wrap: wrap; align-items: flex-start; }}
.bar {{ display: inline-block; height: 8px; background: #1f77b4; }} .bar.win {{ background: #1f77b4; }}
.bar.loss {{ background: #d62728; }} tr.picked td {{ background: #fff3c4; }}
.progress {{ display: flex; gap: 10px; align-items: center; margin: 4px 0; }}
.progress .track {{ width: 260px; height: 10px; background: #eee; }}
.progress .fill {{ height: 10px; background: #1a7f37; }}
#tip {{ font: 12px monospace; background: #f8f8f8; border: 1px solid #ddd; padding: 3px 6px; min-height: 1.2em; }}
.note {{ color: #666; font-size: 12px; }} .quality {{ background: #fff8e1; padding: 4px 8px; }}
</style></head><body>
<h1>{_esc(title)}</h1>
<p>{_esc(i['product'])} {_esc(i['phase'])}, initial balance {report['account']['initial_balance']:,}
{_esc(report['account']['currency'])}, {i['ticks']:,} ticks. Generated {_esc(report['generated_at'])}.</p>
{quality}
<h2 class="{verdict}">FTMO objectives: {verdict}</h2>
{objectives}
{progress}
<p>Worst daily loss {f['max_daily_loss_pct']}% · worst overall loss {f['max_overall_loss_pct']}% ·
trading days {f['trading_days']} · best day share {f['best_day_share']}</p>
<h3>Breaches</h3>{breaches}
<h2>The odds of passing</h2>{_odds(report.get('odds'))}
<h2>Equity</h2>
<div id="tip" hidden></div>
{svg_chart(result)}
<p class="note">Hover for the values at any time; click a legend item to show or hide it; click a trade to find it
in the trade list.</p>
<h2>Strategy Tester figures</h2>{tester}
<h3>Entries and exits by hour, weekday and month (UTC)</h3><div class="cols">{timing}</div>
<h2>By symbol</h2>{symbols}
<h2>By close reason</h2>{reasons}
<h2>By month</h2>{months}
<h2>By week</h2>{weeks}
<h2>By day</h2>{days}
<h2>Commands</h2>{decisions}
<h2>Ticks held, by reason</h2>{refusals}
<h2>Trades</h2>{trades}
<script type="application/json" id="curve">{curve_json(result)}</script>
<script>{_SCRIPT}</script>
</body></html>
"""


def plot_png(result, path: str, report: dict | None = None) -> None:
    """The equity chart as a PNG (matplotlib, the optional ``plot`` extra): a title, equity, balance, both floors,
    the profit target, each trade's entry and exit on the equity line, breaches, and the drawdown below."""
    fig = equity_figure(result, report)
    import matplotlib.pyplot as plt

    fig.savefig(path)
    plt.close(fig)


def equity_figure(result, report: dict | None = None):
    """The PNG's matplotlib figure (the verdict in its title when ``report`` is given)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise RuntimeError('--plot needs matplotlib: pip install "mt5bridge[plot]"') from exc
    samples = result.samples
    if not samples:
        raise RuntimeError("--plot: the replay has no equity to draw")

    def when(ms: int) -> datetime:
        return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)

    times = [when(s[0]) for s in samples]
    fig, (ax, ax_dd) = plt.subplots(2, 1, figsize=(11, 6), dpi=100, sharex=True,
                                    gridspec_kw={"height_ratios": [3, 1]})
    ax.plot(times, [s[1] for s in samples], color="#2ca02c", lw=1.4, label="equity")
    ax.plot(times, [s[2] for s in samples], color="#1f77b4", lw=1.0, label="balance")
    ax.plot(times, [s[3] for s in samples], color="#d62728", lw=1.0, ls="--", label="daily floor")
    ax.plot(times, [s[4] for s in samples], color="#7f0000", lw=1.0, ls=":", label="overall floor")
    target = target_balance(result)
    if target is not None:
        ax.axhline(target, color="#9467bd", lw=1.0, ls="-.", label=f"profit target {target:,.0f}")
    buys = [t for t in result.trades if t["side"] == "BUY"]
    sells = [t for t in result.trades if t["side"] == "SELL"]
    for group, marker, colour, name in ((buys, "^", "#1f77b4", "buy"), (sells, "v", "#ff7f0e", "sell")):
        if group:
            ax.scatter([when(t["open_time_ms"]) for t in group], [equity_at(samples, t["open_time_ms"]) for t in group],
                       marker=marker, s=36, color=colour, zorder=3, label=f"{name} ({len(group)})")
    wins = [t for t in result.trades if t["profit"] > 0]
    losses = [t for t in result.trades if t["profit"] <= 0]
    for group, colour, name in ((wins, "#2ca02c", "exit, profit"), (losses, "#d62728", "exit, loss")):
        if group:
            ax.scatter([when(t["close_time_ms"]) for t in group],
                       [equity_at(samples, t["close_time_ms"]) for t in group], marker="o", s=18, color=colour,
                       edgecolors="#333", linewidths=0.4, zorder=3, label=f"{name} ({len(group)})")
    for t, _rule, eq, _fl in result.breaches:
        ax.plot([when(t)], [eq], "ko", mfc="none", ms=10, zorder=4)
    currency = result.config.account.currency
    ax.set_ylabel(currency)
    ax.legend(loc="upper left", fontsize=7, ncol=3)
    ax.grid(alpha=0.3)
    net = result.final_balance - result.initial_balance
    verdict = ""
    if report is not None:
        verdict = "PASSED" if report["ftmo"]["passed"] else "FAILED"
    ax.set_title(f"{', '.join(result.symbols)}  {times[0]:%Y-%m-%d} to {times[-1]:%Y-%m-%d}  "
                 f"{result.config.account.product} {result.config.account.phase}  net {net:+,.2f} {currency}"
                 f"  {verdict}".rstrip(), fontsize=10)
    dd = drawdown_pct(samples)
    ax_dd.fill_between(times, [-v for v in dd], 0, color="#d62728", alpha=0.3, lw=0)
    ax_dd.set_ylabel("drawdown %")
    ax_dd.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig
