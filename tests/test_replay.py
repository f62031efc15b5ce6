"""Replay: recorded prices through the compiled decision engine with the simulated broker, and the FTMO report.

What a trader relies on: a gap through a stop is filled at the gap price and shows as the breach it is; a stop
inside a bar is filled at the stop; the engine never breaks a rule on an ordinary market; two runs give the
same report; bad input is refused by name."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from desk import always, config_for_signals
from mt5bridge.cli.entry import main
from mt5bridge.config import Config
from mt5bridge.workbench.replay import Replay, ReplayError, load_markets, load_specs, symbol_from_name, synthetic_markets
from mt5bridge.workbench.report import build_report, dumps, render_html
from mt5bridge.market.synthetic import generate_ticks

MIN = 60_000
START = "2024-01-08T00:00:00Z"   # a Monday


def write_ticks(path: Path, ticks) -> Path:
    with open(path, "w") as fh:
        fh.write("time,bid,ask,volume\n")
        for t, b, a, v in zip(ticks.times_ms, ticks.bid, ticks.ask, ticks.volume):
            fh.write(f"{int(t)},{b:.5f},{a:.5f},{v:g}\n")
    return path


def gap_bars(path: Path, *, gap_at_minute: int, gap: float, minutes: int = 2 * 1440, seed: int = 3) -> Path:
    """M1 EURUSD bars from Monday 00:00 UTC: a gentle random walk, and one bar that opens `gap` below the
    previous close (a weekend-like gap through any stop)."""
    rng = np.random.default_rng(seed)
    t0 = 1_704_672_000_000  # 2024-01-08 00:00 UTC
    price = 1.09
    rows = ["time,open,high,low,close,volume,spread"]
    for m in range(minutes):
        o = price - gap if m == gap_at_minute else price
        c = o + rng.normal(0, 0.00012)
        h = max(o, c) + abs(rng.normal(0, 0.00005))
        lo = min(o, c) - abs(rng.normal(0, 0.00005))
        rows.append(f"{t0 + m * MIN},{o:.5f},{h:.5f},{lo:.5f},{c:.5f},10,8")
        price = c
    path.write_text("\n".join(rows) + "\n")
    return path


def forced_buyer(tmp_path, **sections) -> tuple[Config, str]:
    return config_for_signals(**sections), always("BUY", tmp_path)


# ---- the broker's fills ---------------------------------------------------------------------------------------

def test_a_gap_through_the_stop_is_filled_at_the_gap_price_and_breaches_both_limits(tmp_path):
    cfg, model = forced_buyer(tmp_path)
    data = gap_bars(tmp_path / "EURUSD_M1.csv", gap_at_minute=1440 + 600, gap=0.2)
    result = Replay(cfg, load_markets([data], allow_expanded_bars=True), model=model, warmup_days=0.3).run()
    gap_open_ms = 1_704_672_000_000 + (1440 + 600) * MIN
    stops = [d for d in result.deals if d.reason == "SL" and d.time_msc == gap_open_ms]
    assert stops, "a position was open across the gap and its stop was hit by it"
    for deal in stops:
        assert deal.price < stop_in_force(result)[deal.position_id] - 0.02, "filled at the gap price, below the stop"
    report = build_report(result)
    rules = [b["rule"] for b in report["ftmo"]["breaches"]]
    assert rules == ["max_daily_loss", "max_loss"] and report["ftmo"]["passed"] is False
    assert report["ftmo"]["max_daily_loss_pct"] > 5.0
    breach = next(b for b in report["ftmo"]["breaches"] if b["rule"] == "max_daily_loss")
    assert breach["equity"] < breach["floor"] and breach["time"].startswith("2024-01-09T10:00")


def stop_in_force(result) -> dict[int, float]:
    """Each position's last stop: from its OPEN, or the last MODIFY of it that the broker took."""
    sl = {}
    for c in result.commands:
        if c["retcode"] != 10009:
            continue
        if c["action"] == "OPEN":
            sl[c["position"]] = c["sl"]
        elif c["action"] == "MODIFY":
            sl[c["ticket"]] = c["sl"]
    return sl


def test_a_stop_inside_a_bar_is_filled_at_the_stop(tmp_path):
    cfg, model = forced_buyer(tmp_path)
    data = gap_bars(tmp_path / "EURUSD_M1.csv", gap_at_minute=10**9, gap=0.0)
    result = Replay(cfg, load_markets([data], allow_expanded_bars=True), model=model, warmup_days=0.3).run()
    stops = [d for d in result.deals if d.reason == "SL"]
    assert stops
    sl_of = stop_in_force(result)
    inside = [d for d in stops if d.time_msc % MIN != 0]   # not a bar's open
    assert inside, "some stop was reached inside a bar"
    for d in inside:
        assert d.price == pytest.approx(sl_of[d.position_id], abs=1e-9)


def test_the_engine_keeps_every_ftmo_limit_on_an_ordinary_market(tmp_path):
    # Risky settings on purpose: the guard, not caution, must keep the account inside the limits.
    cfg = config_for_signals(sizing={"base_risk_pct_max": 2.0, "base_risk_pct_min": 1.0})
    markets = synthetic_markets(["EURUSD", "XAUUSD"], days=30, seed=11)
    result = Replay(cfg, markets, model=always("BUY", tmp_path)).run()
    report = build_report(result)
    assert report["trades"] > 5
    assert report["ftmo"]["breaches"] == []
    assert report["ftmo"]["max_daily_loss_pct"] < cfg.ftmo.daily_loss_pct
    for day in report["days"]:
        assert day["lowest_equity"] >= day["start_balance"] - cfg.ftmo.daily_loss_pct / 100 * 100_000


# ---- the account's arithmetic -----------------------------------------------------------------------------------

def test_balance_is_the_sum_of_the_deals_and_the_statistics_follow_from_the_trades(tmp_path):
    cfg, model = forced_buyer(tmp_path)
    result = Replay(cfg, synthetic_markets(["EURUSD"], days=20, seed=5), model=model).run()
    assert result.deals
    assert result.final_balance == pytest.approx(
        100_000 + sum(d.profit + d.commission + d.swap for d in result.deals), abs=0.011 * len(result.deals))
    report = build_report(result)
    profits = [t["profit"] for t in report["trade_list"]]
    assert report["trades"] == len(profits) > 0
    assert report["win_rate"] == pytest.approx(sum(p > 0 for p in profits) / len(profits), abs=1e-4)
    losses = -sum(p for p in profits if p < 0)
    if losses:
        assert report["profit_factor"] == pytest.approx(sum(p for p in profits if p > 0) / losses, rel=1e-3)
    # Each day's worst loss is the one the report calls worst.
    worst = max((d["start_balance"] - d["lowest_equity"]) for d in report["days"]) / 1000.0
    assert report["ftmo"]["max_daily_loss_pct"] >= worst - 1e-6
    # A trading day is a Prague day on which a position was opened.
    prague = ZoneInfo("Europe/Prague")
    opened_days = {datetime.fromisoformat(c["time"].replace("Z", "+00:00")).astimezone(prague).date()
                   for c in report["commands"] if c["action"] in ("OPEN", "ADD") and c["retcode"] == 10009}
    assert report["ftmo"]["trading_days"] == len(opened_days) > 0
    assert sum(report["decisions"].values()) == len(report["commands"])


def test_the_profit_target_and_trading_days_decide_the_verdict(tmp_path):
    cfg = config_for_signals(ftmo={"profit_target_pct": 0.0, "min_trading_days": 0}, account={"phase": "funded"})
    result = Replay(cfg, synthetic_markets(["EURUSD"], days=18, seed=2), model=always("SELL", tmp_path)).run()
    report = build_report(result)
    names = [o["name"] for o in report["ftmo"]["objectives"]]
    assert names == ["max_daily_loss", "max_loss"]   # a funded account has no target and no minimum days
    assert report["ftmo"]["passed"] is (report["ftmo"]["breaches"] == [])


# ---- inputs ---------------------------------------------------------------------------------------------------

def test_a_folder_replays_every_symbol_on_one_account_in_time_order(tmp_path):
    folder = tmp_path / "history"
    folder.mkdir()
    eur = generate_ticks("EURUSD", days=16, start=START, seed=1)
    gbp = generate_ticks("GBPUSD", days=16, start=START, seed=2)
    write_ticks(folder / "EURUSD_ticks.csv", eur)
    write_ticks(folder / "GBPUSD_ticks.csv", gbp)
    cfg, model = forced_buyer(tmp_path)
    replay = Replay(cfg, load_markets([folder]), model=model)
    start = min(eur.times_ms[0], gbp.times_ms[0]) + 14 * 86_400_000   # warm-up from the first tick
    assert replay.total_ticks == int((eur.times_ms >= start).sum() + (gbp.times_ms >= start).sum())
    result = replay.run()
    assert result.symbols == ["EURUSD", "GBPUSD"]
    assert {c["symbol"] for c in result.commands if c["action"] == "OPEN"} == {"EURUSD", "GBPUSD"}
    times = [d.time_msc for d in result.deals]
    assert times == sorted(times)


def test_symbol_names_come_from_file_names(tmp_path):
    assert symbol_from_name("EURUSD_ticks.csv") == "EURUSD"
    assert symbol_from_name("/x/XAUUSD_M1_2024.csv") == "XAUUSD"
    assert symbol_from_name("us30.csv") == "US30"
    with pytest.raises(ReplayError, match="cannot tell the symbol"):
        symbol_from_name("_data.csv")


def test_a_spec_file_sets_what_a_symbol_is_worth_and_costs(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text("[symbols.EURUSD]\ncommission_per_lot = 3.5\nvolume_step = 0.1\nvolume_min = 0.1\n")
    cfg, model = forced_buyer(tmp_path)
    result = Replay(cfg, synthetic_markets(["EURUSD"], days=17, seed=4), specs=load_specs(spec), model=model).run()
    assert result.deals
    for d in result.deals:
        assert d.commission == pytest.approx(-3.5 * d.volume, abs=0.006)
        assert round(d.volume * 10) == pytest.approx(d.volume * 10, abs=1e-9)
    bad = tmp_path / "bad.toml"
    bad.write_text("[symbols.EURUSD]\ntick_vlaue = 1.0\n")
    with pytest.raises(ReplayError, match="tick_vlaue"):
        load_specs(bad)
    bad.write_text("[symbols.EURUSD]\nvolume_min = -1\n")
    with pytest.raises(ReplayError, match="volume_min = -1: must be above 0"):
        load_specs(bad)


def test_too_little_data_for_the_warm_up_is_refused_by_name(tmp_path):
    with pytest.raises(ReplayError, match="warm-up"):
        Replay(Config(), synthetic_markets(["EURUSD"], days=3)).run()


# ---- the command ------------------------------------------------------------------------------------------------

def test_the_command_writes_identical_reports_for_identical_runs_and_an_html_page(tmp_path, capsys):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text('[entry]\nmin_score = 0\nrequire_warm = false\nsessions = []\n')
    args = ["replay", "--synthetic", "EURUSD", "--days", "18", "--config", str(cfg), "--quiet"]
    assert main([*args, "--report", str(tmp_path / "a.json"), "--html", str(tmp_path / "a.html")]) == 0
    assert main([*args, "--report", str(tmp_path / "b.json")]) == 0
    assert capsys.readouterr().out == ""   # --quiet: nothing on screen
    a = json.loads((tmp_path / "a.json").read_text())
    b = json.loads((tmp_path / "b.json").read_text())
    assert a.pop("generated_at") and b.pop("generated_at")
    assert dumps(a) == dumps(b)
    assert {"passed", "max_daily_loss_pct", "max_overall_loss_pct", "breaches", "trading_days"} <= set(a["ftmo"])
    for key in ("trades", "net_profit", "win_rate", "profit_factor", "avg_r", "max_drawdown_pct", "sharpe",
                "decisions", "refusals"):
        assert key in a
    page = (tmp_path / "a.html").read_text()
    assert "<svg" in page and "FTMO objectives" in page and "daily floor" in page


def test_the_command_refuses_bad_input_by_name_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["replay", "--data", str(tmp_path / "missing.csv"), "--report", str(out)]) == 2
    assert "missing.csv" in capsys.readouterr().err
    broken = tmp_path / "EURUSD.csv"
    broken.write_text("time,bid,ask\n2024-01-08 00:00:00,1.1,1.0999\n")
    assert main(["replay", "--data", str(broken), "--report", str(out)]) == 2
    err = capsys.readouterr().err
    assert "EURUSD.csv" in err and ":2" in err
    assert main(["replay", "--synthetic", "EURUSD", "--days", "20", "--balance", "-5", "--report", str(out)]) == 2
    assert "--balance" in capsys.readouterr().err
    assert not out.exists()


def test_the_html_page_escapes_what_it_shows(tmp_path):
    result = Replay(config_for_signals(), synthetic_markets(["EURUSD"], days=16, seed=9),
                    model=always("BUY", tmp_path)).run()
    report = build_report(result, inputs={"sources": ["<script>"]})
    report["input"]["symbols"] = ["<b>EURUSD</b>"]
    page = render_html(report, result)
    assert "<b>EURUSD</b>" not in page and "&lt;b&gt;EURUSD&lt;/b&gt;" in page


def test_plot_writes_the_equity_chart_as_a_png(tmp_path):
    png, report = tmp_path / "equity.png", tmp_path / "r.json"
    assert main(["replay", "--synthetic", "EURUSD", "--days", "16", "--report", str(report), "--plot", str(png),
                 "--quiet"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_a_long_run_on_a_terminal_shows_progress_with_ticks_per_second(tmp_path):
    """On a terminal (here a pseudo-terminal) the progress bar shows; --quiet and pipes never see it."""
    import os
    import pty
    import subprocess

    from conftest import package_process

    report = tmp_path / "r.json"
    cmd, env, cwd = package_process(["replay", "--synthetic", "EURUSD", "--days", "40", "--report", str(report)],
                                    tmp_path)
    env = dict(env, COLUMNS="120", TERM="xterm")
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:   # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert proc.wait(timeout=120) == 0
    text = seen.decode("utf-8", "replace")
    assert "━" in text and "ticks/s" in text and report.exists()   # the bar, and the rate beside it
    piped = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    assert piped.returncode == 0 and "━" not in piped.stderr   # no bar drawn into a pipe


def test_the_loop_refuses_a_tick_of_a_symbol_the_engine_does_not_have():
    replay = Replay(Config(), synthetic_markets(["EURUSD"], days=15))
    sym, t, bid, ask, vol, _ = replay._arrays
    bad = sym.copy()
    bad[5] = 3
    with pytest.raises(ValueError, match="tick 5: unknown symbol index 3"):
        replay.loop.run(bad, t, bid, ask, vol, 0, 100)


def test_loose_limits_and_a_calendar_that_ends_too_soon_are_said_at_start(tmp_path, capsys):
    news = tmp_path / "news.csv"
    news.write_text("time,currency,title\n2024-01-18 13:30,USD,CPI\n")
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(f'[ftmo]\ndaily_loss_pct = 8\n\n[funded]\nnews_blackout = true\nnews_file = "{news}"\n')
    args = ["replay", "--synthetic", "EURUSD", "--days", "20", "--config", str(cfg), "--quiet",
            "--report", str(tmp_path / "r.json")]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "ftmo.daily_loss_pct = 8.0 is above FTMO's 5%" in err
    assert "ends with a release at 2024-01-18 13:30 UTC: after it there is no news blackout" in err
    news.write_text("time,currency,title\n")   # a blackout over no releases at all is refused
    assert main(args) == 2
    assert "no releases in the news calendar" in capsys.readouterr().err


def test_a_broken_model_file_is_refused_by_name_before_any_run(tmp_path, capsys):
    model = tmp_path / "model.json"
    model.write_text("{not json")
    assert main(["replay", "--synthetic", "EURUSD", "--days", "16", "--model", str(model),
                 "--report", str(tmp_path / "r.json")]) == 2
    assert "model.json" in capsys.readouterr().err
    sweep = tmp_path / "sweep.toml"
    sweep.write_text('[parameters]\n"exits.sl_atr" = [1.0, 2.0]\n')
    assert main(["sweep", "--sweep", str(sweep), "--synthetic", "EURUSD", "--days", "16", "--model", str(model),
                 "--out", str(tmp_path / "s.csv"), "--best", str(tmp_path / "b.toml")]) == 2
    assert "model.json" in capsys.readouterr().err and not (tmp_path / "s.csv").exists()


def _rollovers_between(open_ms: int, close_ms: int) -> int:
    """Nights charged between two times, counted independently: 17:00 New York on each weekday passed,
    Wednesday's three."""
    from datetime import timedelta

    ny = ZoneInfo("America/New_York")
    day = datetime.fromtimestamp(open_ms / 1000, tz=ny).date()
    nights = 0
    while True:
        at = datetime(day.year, day.month, day.day, 17, tzinfo=ny)
        ms = int(at.timestamp() * 1000)
        if ms > close_ms:
            return nights
        if ms > open_ms and at.weekday() < 5:
            nights += 3 if at.weekday() == 2 else 1
        day += timedelta(days=1)


def test_the_rollover_is_17_new_york_on_weekdays_across_the_clock_changes():
    replay = Replay(Config(), synthetic_markets(["EURUSD"], days=15))
    ny = ZoneInfo("America/New_York")
    t = int(datetime(2024, 3, 1, tzinfo=ZoneInfo("UTC")).timestamp() * 1000)
    for _ in range(60):   # through the March clock change
        nxt = replay.loop.next_rollover_after(t)
        at = datetime.fromtimestamp(nxt / 1000, tz=ny)
        assert (at.hour, at.minute) == (17, 0) and at.weekday() < 5 and nxt > t
        assert _rollovers_between(t, nxt - 1) == 0   # none skipped
        t = nxt


def test_swaps_accrue_at_each_rollover_and_are_settled_by_the_closing_deal(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text("[symbols.EURUSD]\nswap_long = -7.5\nswap_short = 2.0\ncommission_per_lot = 0\n")
    cfg = config_for_signals(exits={"time_exit_hours": 0.0, "sl_atr": 6.0, "tp_atr": 12.0})
    result = Replay(cfg, synthetic_markets(["EURUSD"], days=30, seed=6), specs=load_specs(spec),
                    model=always("BUY", tmp_path)).run()
    opened = {d.position_id: d for d in result.deals if d.entry == "IN"}
    charged = 0
    for deal in (d for d in result.deals if d.entry == "OUT"):
        nights = _rollovers_between(opened[deal.position_id].time_msc, deal.time_msc)
        assert deal.swap == pytest.approx(-7.5 * deal.volume * nights, abs=0.011 * max(nights, 1))
        charged += nights
    assert charged > 0, "some position was held over a rollover"
    assert result.final_balance == pytest.approx(
        100_000 + sum(d.profit + d.commission + d.swap for d in result.deals), abs=0.011 * len(result.deals))
