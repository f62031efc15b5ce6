"""The replay report a trader reads as they read MT5's Strategy Tester: each figure by MT5's own definition, checked
on a few trades worked out by hand; the tables and the trade list add up to the account; the page works in a real
browser without a network.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from conftest import without_browser
from desk import always, config_for_signals

from mt5bridge.simulator import DealRecord
from mt5bridge.workbench.replay import Replay, synthetic_markets
from mt5bridge.workbench.report import build_report, dumps, render_html
from mt5bridge.workbench.tester import (
    balance_curve,
    by_time,
    consecutive,
    drawdowns,
    holding_period_returns,
    linear_regression,
    minimum_margin_level,
    open_margin,
    trade_figures,
    z_score,
)


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp() * 1000)


def deal(entry: str, when: str, *, profit=0.0, commission=0.0, swap=0.0, position=1, volume=1.0, price=1.1,
         symbol="EURUSD") -> DealRecord:
    return DealRecord(deal=0, order=0, position_id=position, symbol=symbol, side="BUY", entry=entry, reason="EXPERT",
                      volume=volume, price=price, profit=profit, swap=swap, commission=commission, magic=0,
                      time_msc=ms(when), comment="")


# ---- MT5's figures on hand-made trades -------------------------------------------------------------------------

def test_z_score_of_a_streaky_sequence_is_the_runs_test():
    # + ×7, − ×6, +, − ×3, +, − ×4, + ×8: N = 30 trades, W = 17, L = 13, R = 7 runs (counted by hand).
    profits = [10.0] * 7 + [-5.0] * 6 + [10.0] + [-5.0] * 3 + [10.0] + [-5.0] * 4 + [10.0] * 8
    n, w, l, r = 30, 17, 13, 7
    p = 2 * w * l
    expected = (n * (r - 0.5) - p) / math.sqrt(p * (p - n) / (n - 1))   # = −3.117: wins follow wins
    z, confidence = z_score(profits)
    assert z == pytest.approx(expected, abs=1e-12) and z == pytest.approx(-3.117, abs=1e-3)
    # The confidence is two-sided: 2Φ(|z|) − 1, as MT5 prints "-2.94 (99.67%)" and "-1.24 (78.50%)".
    assert confidence == pytest.approx(100 * (2 * statistics.NormalDist().cdf(abs(expected)) - 1), abs=1e-9)
    assert round(100 * (2 * statistics.NormalDist().cdf(2.94) - 1), 2) == 99.67
    assert round(100 * (2 * statistics.NormalDist().cdf(1.24) - 1), 2) == 78.50


def test_z_score_of_strict_alternation_is_positive_and_zero_trades_are_left_out():
    # + − + − + − + −: N = 8, W = L = 4, R = 8: Z = (8·7.5 − 32)/√(32·24/7) = 2.673.
    z, _ = z_score([5.0, -5.0, 0.0, 5.0, -5.0, 5.0, -5.0, 0.0, 5.0, -5.0])
    assert z == pytest.approx(28 / math.sqrt(32 * 24 / 7), abs=1e-12)
    assert z_score([1.0, 2.0, 3.0]) == (None, None)   # no losses: nothing to test


def test_consecutive_wins_and_losses_count_and_money():
    profits = [10.0, 20.0, -5.0, -5.0, -5.0, 30.0, 40.0, 50.0, -100.0, 5.0]
    c = consecutive(profits)
    # win series: (2, 30), (3, 120), (1, 5); loss series: (3, −15), (1, −100).
    assert (c["max_consecutive_wins"], c["max_consecutive_wins_money"]) == (3, 120.0)
    assert (c["max_consecutive_losses"], c["max_consecutive_losses_money"]) == (3, -15.0)
    assert (c["max_consecutive_profit"], c["max_consecutive_profit_count"]) == (120.0, 3)
    assert (c["max_consecutive_loss"], c["max_consecutive_loss_count"]) == (-100.0, 1)
    assert c["avg_consecutive_wins"] == 2.0 and c["avg_consecutive_losses"] == 2.0


def test_gross_profit_factor_payoff_and_the_largest_and_average_trades():
    profits = [100.0, -40.0, 60.0, -20.0, 0.0]
    sides = ["BUY", "SELL", "SELL", "BUY", "BUY"]
    f = trade_figures(profits, sides, 10_000.0)
    assert f["gross_profit"] == 160.0 and f["gross_loss"] == -60.0 and f["total_net_profit"] == 100.0
    assert f["profit_factor"] == pytest.approx(160 / 60)
    assert f["expected_payoff"] == pytest.approx(100 / 5)
    assert f["largest_profit_trade"] == 100.0 and f["largest_loss_trade"] == -40.0
    assert f["average_profit_trade"] == 80.0 and f["average_loss_trade"] == -30.0
    assert (f["profit_trades"], f["loss_trades"]) == (2, 2)
    assert f["long_trades"] == 3 and f["long_trades_won_pct"] == pytest.approx(100 / 3)
    assert f["short_trades"] == 2 and f["short_trades_won_pct"] == 50.0
    assert trade_figures([5.0], ["BUY"], 100.0)["profit_factor"] is None   # no loss: no factor


def test_ahpr_ghpr_and_sharpe_from_the_balance_trade_by_trade():
    # 1000 → 1100 → 990 → 1040: HPRs 1.1, 0.9, 1040/990.
    hprs = [1.1, 0.9, 1040 / 990]
    mean = sum(hprs) / 3
    rms = math.sqrt(sum((h - mean) ** 2 for h in hprs) / 3)
    got = holding_period_returns([100.0, -110.0, 50.0], 1000.0)
    assert got["ahpr"] == pytest.approx(mean, abs=1e-12)
    assert got["ghpr"] == pytest.approx(1.04 ** (1 / 3), abs=1e-12)
    assert got["sharpe_ratio"] == pytest.approx((mean - 1) / rms, abs=1e-12)


def test_maximal_and_relative_drawdown_can_be_different_falls():
    # From 1000: 1100 → 900 falls 200 (18.18% of 1100); 1500 → 1240 falls 260 (17.33% of 1500).
    d = drawdowns([1100.0, 900.0, 1500.0, 1240.0, 1600.0, 1590.0], 1000.0)
    assert d["absolute"] == 100.0                       # initial − the lowest balance below it
    assert d["maximal"] == 260.0 and d["maximal_pct"] == pytest.approx(100 * 260 / 1500)
    assert d["relative_pct"] == pytest.approx(200 / 11) and d["relative"] == 200.0
    assert drawdowns([1010.0, 1020.0], 1000.0)["absolute"] == 0.0


def test_lr_correlation_and_standard_error_of_the_balance_curve():
    corr, se = linear_regression([1.0, 3.0, 2.0, 4.0])
    # By hand: sxy = 4, sxx = syy = 5: r = 0.8; residuals −0.3, 0.9, −0.9, 0.3: √(1.8 / 2).
    assert corr == pytest.approx(0.8) and se == pytest.approx(math.sqrt(0.9))
    slope, icept = np.polyfit(np.arange(4), [1.0, 3.0, 2.0, 4.0], 1)
    assert slope == pytest.approx(0.8) and icept == pytest.approx(1.3)
    down, _ = linear_regression([5.0, 4.0, 3.0])
    assert down == pytest.approx(-1.0)     # a falling balance correlates negatively


def test_the_lowest_margin_level_is_equity_over_the_margin_open_then():
    deals = [deal("IN", "2024-01-08 10:00", volume=1.0, price=1.1, commission=-2.5),
             deal("OUT", "2024-01-08 12:00", volume=0.4, price=1.2, profit=40.0),
             deal("OUT", "2024-01-08 14:00", volume=0.6, price=1.05, profit=-30.0)]
    times = [ms("2024-01-08 09:00"), ms("2024-01-08 11:00"), ms("2024-01-08 13:00"), ms("2024-01-08 15:00")]

    def margin_of(symbol, volume, price):   # 1:100 on 100,000 units
        return volume * price * 100_000 / 100

    margin = open_margin(deals, times, margin_of)
    assert margin == pytest.approx([0.0, 1100.0, 660.0, 0.0])   # 0.6 lots stay open after the partial close
    assert minimum_margin_level([100_000, 99_000, 99_500, 99_600], margin) == pytest.approx(99_000 / 1100 * 100)
    assert minimum_margin_level([1.0], [0.0]) is None
    assert balance_curve(deals, 1000.0) == pytest.approx([997.5, 1037.5, 1007.5])


def test_entries_and_exits_by_hour_weekday_and_month():
    deals = [deal("IN", "2024-01-08 09:30"),                      # Monday
             deal("OUT", "2024-01-09 15:00", profit=50.0),        # Tuesday
             deal("OUT", "2024-01-09 15:10", profit=-20.0, commission=-1.0),
             deal("IN", "2024-03-01 23:59")]                      # a Friday in March
    t = by_time(deals)
    assert t["hour"][9]["entries"] == 1 and t["hour"][23]["entries"] == 1
    assert t["hour"][15] == {"hour": 15, "entries": 0, "exits": 2, "profit": 50.0, "loss": -21.0}
    assert t["weekday"][0]["entries"] == 1 and t["weekday"][1]["exits"] == 2 and t["weekday"][4]["entries"] == 1
    assert t["month"][0]["month"] == "January" and t["month"][0]["profit"] == 50.0
    assert t["month"][2]["entries"] == 1


# ---- a real replay's report adds up -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    cfg = config_for_signals()
    result = Replay(cfg, synthetic_markets(["EURUSD", "XAUUSD"], days=24, seed=5), model=always("BUY", tmp)).run()
    return result, build_report(result, odds_paths=2000)


def test_the_tester_figures_follow_from_the_trade_list_and_the_deals(replayed):
    result, report = replayed
    t, trades = report["tester"], report["trade_list"]
    profits = [x["profit"] for x in sorted(result.trades, key=lambda x: x["close_time_ms"])]
    assert t["total_trades"] == len(trades) > 5
    assert t["gross_profit"] == pytest.approx(sum(p for p in profits if p > 0), abs=1e-4)
    assert t["gross_loss"] == pytest.approx(sum(p for p in profits if p < 0), abs=1e-4)
    assert t["total_deals"] == len(result.deals)
    # The balance drawdown from the deals, by numpy: the running peak minus the balance.
    bal = np.array([result.initial_balance] + list(np.cumsum([d.profit + d.swap + d.commission
                                                              for d in result.deals]) + result.initial_balance))
    assert t["balance_drawdown_maximal"] == pytest.approx(float((np.maximum.accumulate(bal) - bal).max()), abs=1e-4)
    # Equity falls at least as far as the balance does, and MT5's relative figure is the tick-by-tick one.
    assert t["equity_drawdown_maximal"] >= t["balance_drawdown_maximal"] - 0.01
    assert t["equity_drawdown_relative_pct"] == pytest.approx(report["max_drawdown_pct"], abs=1e-4)
    assert t["margin_level_min_pct"] > 100
    assert sum(r["entries"] for r in t["hour"]) == sum(d.entry == "IN" for d in result.deals)
    assert sum(r["profit"] + r["loss"] for r in t["month"]) == pytest.approx(
        sum(d.profit + d.swap + d.commission for d in result.deals if d.entry != "IN"), abs=1e-3)
    json.loads(dumps(report))   # strict JSON


def test_the_tables_add_up_to_the_account(replayed):
    result, report = replayed
    net = sum(x["profit"] for x in report["trade_list"])
    assert sum(r["net_profit"] for r in report["by_symbol"]) == pytest.approx(net, abs=0.05)
    assert sum(r["trades"] for r in report["by_close_reason"]) == len(report["trade_list"])
    assert sum(r["net_profit"] for r in report["by_close_reason"]) == pytest.approx(net, abs=0.05)
    change = result.days[-1][2] - result.days[0][1]
    assert sum(w["profit"] for w in report["by_week"]) == pytest.approx(change, abs=0.05)
    assert sum(m["profit"] for m in report["by_month"]) == pytest.approx(change, abs=0.05)
    assert sum(w["trading_days"] for w in report["by_week"]) == report["ftmo"]["trading_days"]
    worst = max(d["daily_loss_pct"] for d in report["days"])
    assert max(w["worst_daily_loss_pct"] for w in report["by_week"]) == pytest.approx(worst)


def test_the_trade_list_carries_prices_reason_duration_pips_and_stops(replayed):
    result, report = replayed
    opened = {c["position"]: c for c in result.commands if c["action"] == "OPEN" and c["retcode"] == 10009}
    for x in report["trade_list"]:
        assert x["close_reason"] and x["close_price"] is not None
        start = datetime.fromisoformat(x["open_time"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(x["close_time"].replace("Z", "+00:00"))
        assert x["duration_s"] == pytest.approx((end - start).total_seconds(), abs=1e-3)
        pip = 0.0001 if x["symbol"] == "EURUSD" else 0.01
        sign = 1 if x["side"] == "BUY" else -1
        assert x["pips"] == pytest.approx(sign * (x["close_price"] - x["open_price"]) / pip, abs=0.051)
        if x["ticket"] in opened:
            assert x["initial_sl"] == opened[x["ticket"]]["sl"] and x["initial_tp"] == opened[x["ticket"]]["tp"]
        if x["close_reason"] == "STOP_LOSS":
            assert x["close_price"] == pytest.approx(x["sl"], abs=1e-6) or x["pips"] < 0


def test_objectives_progress_and_odds_are_in_the_report(replayed):
    result, report = replayed
    f = report["ftmo"]
    target = next(o for o in f["objectives"] if o["name"] == "profit_target")
    assert target["limit_money"] == 10_000 and target["value_money"] == report["net_profit"]
    daily = next(o for o in f["objectives"] if o["name"] == "max_daily_loss")
    assert daily["value_money"] == pytest.approx(daily["value"] * 1000, abs=0.06)   # the % is rounded to 4 places
    g = f["progress"]
    assert g["trading_days"] == f["trading_days"] and g["min_trading_days"] == 4
    assert g["profit_target_done_pct"] == pytest.approx(max(0.0, min(100.0, 10 * report["net_profit"] / 1000)),
                                                        abs=0.01)
    odds = report["odds"]
    for key in ("p_pass", "p_daily_breach", "p_max_breach", "median_days_to_target"):
        assert key in odds and key in odds["trade_order"]
    assert 0.0 <= odds["p_pass"] <= 1.0 and odds["source_days"] == len(result.days) and odds["paths"] == 2000


# ---- the page in a real browser ----------------------------------------------------------------------------------

def _browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


class Browser:
    """Headless Chromium driven over its DevTools pipe (fds 3 and 4): no network, no extra package."""

    def __init__(self, exe: str, profile: Path):
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def wire():   # in the child: its fds 3 and 4 become the pipes' ends (copied first, as they may be 3 or 4)
            a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             f"--user-data-dir={profile}", "--no-first-run", "--window-size=1200,900", "about:blank"],
            pass_fds=(3, 4), preexec_fn=wire, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._id = 0
        self.session = None
        self.requests: list[str] = []

    def send(self, method: str, params: dict | None = None, *, session: bool = True) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        while True:
            while b"\0" not in self._buf:
                chunk = os.read(self._from_chrome, 1 << 16)
                if not chunk:
                    raise RuntimeError("the browser closed its pipe")
                self._buf += chunk
            raw, self._buf = self._buf.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("method") == "Network.requestWillBeSent":
                self.requests.append(reply["params"]["request"]["url"])
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def open(self, url: str) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]
        self.send("Network.enable")
        self.send("Page.enable")
        self.send("Page.navigate", {"url": url})
        deadline = time.monotonic() + 30
        while self.eval("document.readyState") != "complete":
            assert time.monotonic() < deadline, "the page did not load"
            time.sleep(0.1)

    def eval(self, expression: str):
        got = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in got:
            raise RuntimeError(f"{expression}: {got['exceptionDetails']}")
        return got["result"].get("value")

    def mouse(self, kind: str, x: float, y: float) -> None:
        self.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)
        os.close(self._to_chrome)
        os.close(self._from_chrome)


@pytest.fixture
def browser(tmp_path):
    exe = _browser()
    if exe is None:
        without_browser("no Chromium on this machine: the page's browser test needs one (apt-get install chromium)")
    b = Browser(exe, tmp_path / "profile")
    yield b
    b.close()


def test_the_page_draws_every_trade_and_answers_the_mouse_without_a_network(replayed, tmp_path, browser):
    result, report = replayed
    page = tmp_path / "report.html"
    page.write_text(render_html(report, result), encoding="utf-8")
    browser.open(page.as_uri())
    assert [u for u in browser.requests if not u.startswith("file:")] == [], "the page fetched something"
    assert browser.eval("document.querySelectorAll('#chart .trade').length") == len(result.trades)
    assert browser.eval("!!document.querySelector('#chart [data-series=\"target\"]')")
    assert browser.eval("!!document.querySelector('#chart [data-series=\"drawdown\"] polygon')")
    # Hover in the middle of the plot: the read-out names a time and the equity of the sample under the mouse.
    box = browser.eval("(() => { const r = document.getElementById('chart').getBoundingClientRect();"
                       " window.scrollTo(0, r.top + window.scrollY - 50);"
                       " const q = document.getElementById('chart').getBoundingClientRect();"
                       " return [q.left, q.top, q.width, q.height]; })()")
    left, top, width, height = box
    browser.mouse("mouseMoved", left + width * 0.5, top + height * 0.4)
    tip = browser.eval("document.getElementById('tip').hidden ? null : document.getElementById('tip').textContent")
    assert tip and "equity" in tip and "daily floor" in tip and "drawdown" in tip
    shown_time = tip.split(" UTC")[0]
    t0, t1 = result.samples[0][0], result.samples[-1][0]
    x0, x1 = 64, 960 - 16
    t_mouse = t0 + ((width * 0.5) / width * 960 - x0) / (x1 - x0) * (t1 - t0)
    i = max(k for k, s in enumerate(result.samples) if s[0] <= t_mouse)
    sample = result.samples[i]
    assert shown_time == datetime.fromtimestamp(sample[0] / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")
    assert f"equity {sample[1]:,.2f}" in tip
    # The legend hides and shows the equity line.
    click = "document.querySelector('#chart .legend[data-for=\"equity\"]').dispatchEvent(new MouseEvent('click'))"
    browser.eval(click)
    assert browser.eval("document.querySelector('#chart [data-series=\"equity\"]').style.display") == "none"
    browser.eval(click)
    assert browser.eval("document.querySelector('#chart [data-series=\"equity\"]').style.display") == ""
    # A trade's marker finds its row in the trade list.
    ticket = result.trades[0]["ticket"]
    browser.eval(f"document.querySelector('#chart .trade[data-ticket=\"{ticket}\"]')"
                 ".dispatchEvent(new MouseEvent('click'))")
    assert browser.eval(f"document.getElementById('trade-{ticket}').classList.contains('picked')")


def test_the_png_has_a_title_the_target_and_the_trades(replayed, tmp_path):
    from mt5bridge.workbench.report_page import equity_figure, plot_png

    result, report = replayed
    plot_png(result, str(tmp_path / "equity.png"), report)
    assert (tmp_path / "equity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fig = equity_figure(result, report)
    ax = fig.axes[0]
    title = ax.get_title()
    assert "EURUSD, XAUUSD" in title and ("FAILED" in title or "PASSED" in title)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "profit target 110,000" in labels
    target = [line for line in ax.get_lines() if line.get_label().startswith("profit target")][0]
    assert list(target.get_ydata()) == pytest.approx([110_000, 110_000])
    marked = sum(len(c.get_offsets()) for c in ax.collections)
    assert marked == 2 * len(result.trades)   # an entry and an exit for every trade


def test_the_command_writes_the_figures_the_odds_and_the_page(tmp_path):
    from mt5bridge.cli.entry import main

    out, page, png = tmp_path / "r.json", tmp_path / "r.html", tmp_path / "r.png"
    assert main(["replay", "--synthetic", "EURUSD", "--days", "18", "--quiet", "--report", str(out),
                 "--html", str(page), "--plot", str(png)]) == 0
    report = json.loads(out.read_text())
    assert report["odds"]["paths"] == 10_000 and report["odds"]["horizon_days"] == 252
    assert report["tester"]["total_deals"] >= 0 and len(report["tester"]["hour"]) == 24
    text = page.read_text()
    assert "The odds of passing" in text and "Strategy Tester figures" in text and 'id="curve"' in text
    assert "History quality:</b> synthetic ticks" in text   # what the prices were made of, at the top
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in text
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_a_replay_without_a_trade_reports_figures_that_do_not_exist_as_null():
    from mt5bridge.config import Config

    cfg = Config.model_validate({"entry": {"min_score": 100}, "scale_in": {"enabled": False, "min_score": 100}})
    result = Replay(cfg, synthetic_markets(["EURUSD"], days=16)).run()
    assert result.trades == []
    report = build_report(result, odds_paths=500)
    t = report["tester"]
    assert t["total_trades"] == 0 and t["profit_factor"] is None and t["z_score"] is None and t["ahpr"] is None
    assert t["margin_level_min_pct"] is None and t["lr_correlation"] is None
    # Flat days never reach the target: every path is still undecided at the horizon, none passes.
    assert report["odds"]["p_pass"] == 0.0 and report["odds"]["p_undecided"] == 1.0
    assert report["odds"]["trade_order"]["p_pass"] is None
    json.loads(dumps(report))
    assert "Strategy Tester figures" in render_html(report, result)
