"""No silent assumption: every way a trader's history can make a result look better than it was is refused by
name, or run only when asked and labelled. Each test is the mistake as it happens: an H1 export, a CSV without
a spread, an MT5 export read without its clock, a weekend gap on the 1-Step, a calendar of the wrong year."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from conftest import on_a_terminal, package_process
from desk import always, config_for_signals
from mt5bridge.cli.entry import build_parser, main
from mt5bridge.market.synthetic import generate_ticks
from mt5bridge.workbench.quality import ny_close_to_utc
from mt5bridge.workbench.replay import Replay, ReplayError, load_markets
from mt5bridge.workbench.report import build_report

MIN = 60_000
HOUR = 3_600_000
MONDAY = 1_704_672_000_000  # 2024-01-08 00:00 UTC


def random_bars(times_ms, *, seed=3, start=1.09, step=0.00012, gap_at=None, gap=0.0):
    """OHLC rows of a gentle random walk at the given bar times; the bar at ``gap_at`` opens ``gap`` lower."""
    rng = np.random.default_rng(seed)
    price, rows = start, []
    for t in times_ms:
        o = price - gap if t == gap_at else price
        c = o + rng.normal(0, step)
        h = max(o, c) + abs(rng.normal(0, step / 2))
        lo = min(o, c) - abs(rng.normal(0, step / 2))
        rows.append((int(t), o, h, lo, c))
        price = c
    return rows


def write_csv_bars(path: Path, rows, *, spread: int | None = 8) -> Path:
    head = "time,open,high,low,close,volume" + (",spread" if spread is not None else "")
    tail = f",{spread}" if spread is not None else ""
    path.write_text(head + "\n" + "".join(f"{t},{o:.5f},{h:.5f},{lo:.5f},{c:.5f},10{tail}\n"
                                          for t, o, h, lo, c in rows))
    return path


def write_mt5_bars(path: Path, rows, *, server_offset_ms, spread: int = 7) -> Path:
    """MT5's own bar export (tab-separated, server time, UTF-16 as MT5 saves it)."""
    lines = ["<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>"]
    for t, o, h, lo, c in rows:
        at = datetime.fromtimestamp((t + server_offset_ms(t)) / 1000, tz=timezone.utc)
        lines.append(f"{at:%Y.%m.%d}\t{at:%H:%M:%S}\t{o:.5f}\t{h:.5f}\t{lo:.5f}\t{c:.5f}\t40\t0\t{spread}")
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-16")
    return path


def ny_close_offset_ms(utc_ms: int) -> int:
    """FTMO's server clock, independently of the engine: New York's offset plus seven hours."""
    ny = datetime.fromtimestamp(utc_ms / 1000, tz=ZoneInfo("America/New_York")).utcoffset()
    return int((ny + timedelta(hours=7)).total_seconds() * 1000)


def weekday_times(start_ms: int, hours: int, period_ms: int) -> list[int]:
    """Bar times of FX trading hours (Sunday 22:00 to Friday 22:00 UTC) from ``start_ms``."""
    out = []
    for t in range(start_ms, start_ms + hours * HOUR, period_ms):
        at = datetime.fromtimestamp(t / 1000, tz=timezone.utc)
        if at.weekday() == 5 or (at.weekday() == 4 and at.hour >= 22) or (at.weekday() == 6 and at.hour < 22):
            continue
        out.append(t)
    return out


# ---- FTMO's day: a gap stop on the day's first tick is that day's loss ------------------------------------------

def test_a_monday_gap_through_the_stop_is_that_days_loss_and_breaches_the_one_step_daily_limit(tmp_path):
    friday_close = MONDAY + 5 * 86_400_000 - 2 * HOUR          # Friday 22:00 UTC
    reopen = MONDAY + 6 * 86_400_000 + 22 * HOUR               # Sunday 22:00 UTC: a new Prague day
    times = list(range(MONDAY, friday_close, MIN)) + list(range(reopen, reopen + 86_400_000, MIN))
    data = write_csv_bars(tmp_path / "EURUSD_M1.csv", random_bars(times, gap_at=reopen, gap=0.08))
    cfg = config_for_signals(ftmo={"daily_loss_pct": 3.0, "max_loss_mode": "eod_trailing", "min_trading_days": 0},
                             guards={"internal_daily_dd_pct": 2.0, "circuit_breaker_pct": 2.5},
                             account={"product": "1-step"})
    result = Replay(cfg, load_markets([data], allow_expanded_bars=True), model=always("BUY", tmp_path),
                    warmup_days=0.3).run()
    gap_deals = [d for d in result.deals if d.time_msc == reopen]
    assert any(d.reason == "SL" for d in gap_deals), "a position held over the weekend was stopped by the gap"
    gap_loss = -sum(d.profit + d.commission + d.swap for d in gap_deals)
    assert gap_loss > 0.03 * 100_000, "the gap alone is more than the 1-Step's 3% day"
    report = build_report(result)
    # Friday's balance is the gap day's start: the whole gap is that day's loss, and a breach at the gap tick.
    gap_day = next(d for d in report["days"] if d["prague_day"] == "2024-01-14")
    friday = next(d for d in report["days"] if d["prague_day"] == "2024-01-12")
    assert gap_day["start_balance"] == pytest.approx(friday["end_balance"], abs=0.01)
    assert gap_day["start_balance"] - gap_day["lowest_equity"] >= gap_loss - 0.01
    assert friday["end_balance"] >= friday["lowest_equity"] - 0.01   # Friday is not charged with Monday's gap
    assert report["ftmo"]["max_daily_loss_pct"] >= 100 * gap_loss / 100_000 - 1e-6
    breach = next(b for b in report["ftmo"]["breaches"] if b["rule"] == "max_daily_loss")
    assert breach["time"].startswith("2024-01-14T22:00") and report["ftmo"]["passed"] is False


# ---- bars rebuild their own timeframe and longer ones, never shorter ---------------------------------------------

def h1_export(tmp_path: Path, days: int = 30) -> Path:
    times = weekday_times(MONDAY, days * 24, HOUR)
    return write_mt5_bars(tmp_path / "EURUSD_H1.txt", random_bars(times, step=0.0012),
                          server_offset_ms=ny_close_offset_ms)


def test_an_h1_export_is_refused_by_name_and_runs_only_when_allowed_labelled_as_modelled(tmp_path, capsys):
    data = h1_export(tmp_path)
    report = tmp_path / "r.json"
    args = ["replay", "--data", str(data), "--server-time", "ny-close", "--report", str(report)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "EURUSD_H1.txt holds H1 bars" in err and "not tick level, M1, M5, M15" in err
    assert "M15 ATR" in err and "m5_roc_10" in err and "--allow-expanded-bars" in err and "Export ticks" in err
    assert not report.exists()
    assert main([*args, "--allow-expanded-bars"]) == 0
    out = capsys.readouterr()
    assert "history quality: H1 bars expanded to 4 ticks each: tick level, M1, M5, M15 modelled" in out.out
    assert "made-up ticks" in out.err
    written = json.loads(report.read_text())["input"]["history"]
    assert written["quality"] == "H1 bars expanded to 4 ticks each: tick level, M1, M5, M15 modelled"
    assert written["symbols"][0]["time"].startswith("server time, ny-close")
    result = Replay(config_for_signals(), load_markets([data], server_time="ny-close", allow_expanded_bars=True))
    history = result.history
    assert history["symbols"][0]["real_timeframes"] == ["H1"] and history["symbols"][0]["modelled"][0] == "tick level"
    assert "m15_rsi_14" in history["modelled_features"] and any("M15 ATR" in r for r in history["modelled_rules"])
    assert history["symbols"][0]["spread"].startswith("the file's spread column (median 7 points)")
    assert "fills at its level" in history["stop_fill"]


def test_a_sweep_on_an_h1_export_is_refused_before_any_run(tmp_path, capsys):
    data = h1_export(tmp_path)
    sweep = tmp_path / "sweep.toml"
    sweep.write_text('[parameters]\n"exits.sl_atr" = [1.0, 2.0]\n')
    out = tmp_path / "s.csv"
    assert main(["sweep", "--sweep", str(sweep), "--data", str(data), "--server-time", "ny-close",
                 "--out", str(out), "--best", str(tmp_path / "b.toml")]) == 2
    assert "holds H1 bars" in capsys.readouterr().err and not out.exists()


def test_features_of_an_h1_export_leave_what_h1_cannot_rebuild_empty(tmp_path, capsys):
    data = h1_export(tmp_path, days=12)
    out = tmp_path / "f.csv"
    assert main(["features", "--input", str(data), "--out", str(out)]) == 2   # server time, clock not said
    assert "ny-close" in capsys.readouterr().err and not out.exists()
    assert main(["features", "--input", str(data), "--server-time", "ny-close", "--out", str(out)]) == 0
    rows = [line.split(",") for line in out.read_text().splitlines()]
    header, body = rows[0], rows[1:]
    for name in ("m1_rsi_14", "m5_rsi_14", "m15_rsi_14", "tick_rate_60s", "mtf_trend_align", "score", "direction"):
        assert {r[header.index(name)] for r in body} == {""}, name
    assert {r[header.index("h1_rsi_14")] for r in body[-10:]} != {""}      # H1 is the file's own: computed
    assert {r[header.index("hour_sin")] for r in body} != {""}


def test_train_and_simulate_refuse_an_h1_export_too(tmp_path, capsys):
    data = h1_export(tmp_path)
    assert main(["train", "--data", str(data), "--server-time", "ny-close", "--timeframe", "H1"]) == 2
    err = capsys.readouterr().err
    assert "holds H1 bars" in err and err.index("Export ticks or M1 bars") < err.index("--base-model")
    assert main(["simulate", "--data", str(data), "--server-time", "ny-close", "--endpoint", "tcp://127.0.0.1:9"]) == 2
    assert "holds H1 bars" in capsys.readouterr().err


# ---- spread ----------------------------------------------------------------------------------------------------

def test_bars_without_a_spread_are_refused_until_one_is_given(tmp_path, capsys):
    rows = random_bars(weekday_times(MONDAY, 17 * 24, MIN * 15))
    data = write_csv_bars(tmp_path / "EURUSD_M15.csv", rows, spread=None)
    with pytest.raises(ReplayError, match="EURUSD_M15.csv holds bars without a spread .it has no spread column"):
        load_markets([data])
    report = tmp_path / "r.json"
    base = ["replay", "--data", str(data), "--report", str(report), "--allow-expanded-bars", "--quiet"]
    assert main(base) == 2
    err = capsys.readouterr().err
    assert "zero spread" in err and "--spread-points" in err and "spread_points" in err and not report.exists()
    assert main([*base, "--spread-points", "9"]) == 0
    got = json.loads(report.read_text())
    assert got["trades"] >= 0
    assert got["input"]["history"]["symbols"][0]["spread"] == "9 points on every bar, from --spread-points"
    markets = load_markets([data], spread_points=9)
    assert np.allclose(markets[0].ticks.ask - markets[0].ticks.bid, 9e-5)
    spec = tmp_path / "spec.toml"
    spec.write_text("[symbols.EURUSD]\nspread_points = 11\n")
    from mt5bridge.workbench.replay import load_specs

    markets = load_markets([data], specs=load_specs(spec))
    assert np.allclose(markets[0].ticks.ask - markets[0].ticks.bid, 11e-5)
    assert "spec file" in markets[0].quality.spread


def test_ticks_whose_ask_is_always_the_bid_carry_no_spread_either(tmp_path):
    ticks = generate_ticks("EURUSD", days=1, seed=2)
    path = tmp_path / "EURUSD_ticks.csv"
    path.write_text("time,bid,ask\n" + "".join(f"{int(t)},{b:.5f},{b:.5f}\n" for t, b in zip(ticks.times_ms[:500],
                                                                                         ticks.bid[:500])))
    with pytest.raises(ReplayError, match="the ask equals the bid on every tick"):
        load_markets([path])
    market = load_markets([path], spread_points=6)[0]
    assert np.allclose(market.ticks.ask - market.ticks.bid, 6e-5)


def test_an_mt5_bar_export_whose_spread_column_is_all_zero_has_no_spread(tmp_path):
    rows = random_bars(weekday_times(MONDAY, 3 * 24, HOUR))
    path = write_mt5_bars(tmp_path / "EURUSD_H1.txt", rows, server_offset_ms=ny_close_offset_ms, spread=0)
    with pytest.raises(ReplayError, match="SPREAD column is 0 on every bar"):
        load_markets([path], server_time="ny-close")


# ---- server time -------------------------------------------------------------------------------------------------

def test_an_mt5_export_is_refused_without_its_clock(tmp_path, capsys):
    data = h1_export(tmp_path)
    assert main(["replay", "--data", str(data), "--report", str(tmp_path / "r.json"), "--allow-expanded-bars"]) == 2
    err = capsys.readouterr().err
    assert "is an MT5 bar export, whose times are the broker's server time" in err
    assert "--server-time ny-close" in err and "--utc-offset" in err


def test_the_new_york_close_rule_gives_each_date_its_offset(tmp_path):
    # Across both clock changes of 2024, including the weeks where Europe and New York disagree.
    utc = np.array([int(datetime(2024, m, d, h, tzinfo=timezone.utc).timestamp() * 1000)
                    for m, d, h in [(1, 8, 9), (3, 8, 12), (3, 11, 9), (3, 28, 12), (4, 2, 10), (7, 1, 0),
                                    (10, 30, 12), (11, 1, 20), (11, 4, 6), (12, 31, 23)]], dtype=np.int64)
    server = utc + np.array([ny_close_offset_ms(int(t)) for t in utc])
    np.testing.assert_array_equal(ny_close_to_utc(server), utc)
    assert {ny_close_offset_ms(int(t)) // HOUR for t in utc} == {2, 3}
    # And through the reader: an MT5 tick export in server time comes out in UTC.
    lines = ["<DATE>\t<TIME>\t<BID>\t<ASK>\t<LAST>\t<VOLUME>\t<FLAGS>"]
    for t, s in zip(utc, server):
        at = datetime.fromtimestamp(s / 1000, tz=timezone.utc)
        lines.append(f"{at:%Y.%m.%d}\t{at:%H:%M:%S.%f}"[:-3] + "\t1.10000\t1.10010\t\t\t6")
    path = tmp_path / "EURUSD_ticks.txt"
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-16")
    market = load_markets([path], server_time="ny-close")[0]
    np.testing.assert_array_equal(market.ticks.times_ms, utc)
    assert "ny-close" in market.quality.server_time


def test_one_fixed_offset_over_a_us_clock_change_is_warned_about(tmp_path):
    times = weekday_times(int(datetime(2024, 2, 19, tzinfo=timezone.utc).timestamp() * 1000), 40 * 24, MIN * 15)
    data = write_mt5_bars(tmp_path / "EURUSD_M15.txt", random_bars(times), server_offset_ms=ny_close_offset_ms)
    replay = Replay(config_for_signals(), load_markets([data], utc_offset_hours=2, allow_expanded_bars=True))
    assert any("crosses a US clock change" in w and "--server-time ny-close" in w for w in replay.warnings)


# ---- news calendar ---------------------------------------------------------------------------------------------------

def test_a_funded_preset_replaying_another_year_says_its_calendar_does_not_cover_it(tmp_path, capsys):
    news = tmp_path / "news.csv"
    news.write_text("time,currency,title\n2026-01-09 13:30,USD,NFP\n2026-02-06 13:30,USD,NFP\n")
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(f'[account]\nphase = "funded"\n[ftmo]\nprofit_target_pct = 0\nmin_trading_days = 0\n'
                   f'[funded]\nnews_blackout = true\nnews_file = "{news}"\n')
    report = tmp_path / "r.json"
    assert main(["replay", "--synthetic", "EURUSD", "--days", "18", "--config", str(cfg), "--quiet",
                 "--report", str(report)]) == 0
    err = capsys.readouterr().err
    assert "(2026-01-09 to 2026-02-06) does not cover the replayed period (2024-01-" in err
    assert "no news blackout was applied at all" in err
    # The shipped funded preset, as a trader runs it on older history.
    preset = Path(__file__).resolve().parents[1] / "config" / "funded_standard.toml"
    assert main(["replay", "--synthetic", "EURUSD", "--days", "16", "--config", str(preset), "--quiet",
                 "--report", str(report)]) == 0
    assert "does not cover the replayed period (2024-01-" in capsys.readouterr().err
    assert any("does not cover" in n for n in json.loads(report.read_text())["input"]["history"]["notes"])


# ---- the model ---------------------------------------------------------------------------------------------------------

def test_replay_warns_when_the_model_was_trained_on_another_symbol_or_data(tmp_path, capsys):
    model = json.loads(Path(always("BUY", tmp_path)).read_text())
    model["trained"] = {"symbols": ["XAUUSD"], "data": ["M1"], "timeframe": "M15", "beats_base_rate": True}
    path = tmp_path / "xau.json"
    path.write_text(json.dumps(model))
    assert main(["replay", "--synthetic", "EURUSD", "--days", "16", "--model", str(path), "--quiet",
                 "--report", str(tmp_path / "r.json")]) == 0
    err = capsys.readouterr().err
    assert "the model was trained on XAUUSD, not on EURUSD" in err
    assert "trained on M1 bars, this replay runs on ticks" in err


# ---- stopping and optional parts ---------------------------------------------------------------------------------------

def test_ctrl_c_stops_a_replay_at_once_with_a_short_message(tmp_path):
    """Ctrl-C in the middle of the replay itself (its progress bar is showing on a terminal)."""
    import select

    report = tmp_path / "r.json"
    proc, master = on_a_terminal(["replay", "--synthetic", "EURUSD", "--days", "60", "--report", str(report)],
                                 tmp_path)
    seen = b""

    def read_for(seconds: float) -> None:
        nonlocal seen
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    return
                if not chunk:
                    return
                seen += chunk
                if b"ticks/s" in seen and proc.poll() is None and not interrupted:
                    return

    interrupted = False
    read_for(60)
    assert b"ticks/s" in seen, seen.decode("utf-8", "replace")   # the replay itself is running
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    interrupted = True
    code = proc.wait(timeout=30)
    took = time.monotonic() - sent
    read_for(1)
    os.close(master)
    text = seen.decode("utf-8", "replace")
    assert code == 130 and took < 3.0
    assert "Traceback" not in text and "mt5bridge replay: interrupted after" in text and "no report written" in text
    assert not report.exists()


def test_plot_without_matplotlib_is_refused_before_the_replay_runs(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)   # as on a machine where it is not installed
    report = tmp_path / "r.json"
    started = time.perf_counter()
    assert main(["replay", "--synthetic", "EURUSD", "--days", "200", "--report", str(report),
                 "--plot", str(tmp_path / "e.png")]) == 2
    assert time.perf_counter() - started < 5.0   # 200 days were not replayed first
    err = capsys.readouterr().err
    assert 'pip install "mt5bridge[plot]"' in err and not report.exists()


# ---- units -------------------------------------------------------------------------------------------------------------

UNITS = ("point", "%", "lot", "ms", "second", "hour", "day", "bar", "usd", "money", "currency", "price", "count",
         "times", "seed", "number", "penalty", "fraction", "port", "bins", "balance", "login")


def test_every_number_an_option_asks_for_names_its_unit():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    missing = []
    for name, command in sub.choices.items():
        for action in command._actions:
            if action.type not in (int, float):
                continue
            text = f"{action.metavar or ''} {action.help or ''}".lower()
            if not any(unit in text for unit in UNITS):
                missing.append(f"{name} {'/'.join(action.option_strings)}: {action.help}")
    assert not missing, "\n".join(missing)


# ---- simulate ------------------------------------------------------------------------------------------------------------

def test_simulate_against_a_bridge_that_has_seen_later_ticks_stops_and_says_what_to_do(tmp_path, capsys):
    from test_bridge import _wait_for, free_port

    ea, control = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    config = tmp_path / "bridge.toml"
    config.write_text(f'[bridge]\nendpoint = "{ea}"\ncontrol_endpoint = "{control}"\njournal = "j.sqlite"\n'
                      'deadline_ms = 2000\n', encoding="utf-8")
    cmd, env, cwd = package_process(["serve", "--config", str(config)], tmp_path)
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(control)
        run = ["simulate", "--endpoint", ea, "--synthetic", "--days", "0.2", "--warmup-days", "0.5",
               "--login", "5550001"]
        assert main([*run, "--max-ticks", "400"]) == 0
        capsys.readouterr()
        started = time.monotonic()
        assert main(run) == 2   # the same hours again: every tick is older than what the bridge has seen
        took = time.monotonic() - started
        err = capsys.readouterr().err
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    assert took < 20
    assert "has already seen ticks of account 5550001 EURUSD up to 2024-01-" in err
    assert "refused the last 5 ticks" in err and "--login" in err and "new journal" in err


def test_simulate_fills_a_stop_inside_an_expanded_bar_at_the_stop_as_replay_does():
    from test_simulator import FakeBridge, scripted, terminal

    from mt5bridge.market.readers import Bars

    n = 40
    t = MONDAY + 8 * HOUR + np.arange(n, dtype=np.int64) * MIN
    o = np.full(n, 1.10000)
    # Each bar: open, up 10 points, down to 50 points under the open, close: expanded as four ticks in that order.
    bars = Bars(times_ms=t, open=o, high=o + 0.00010, low=o - 0.00050, close=o + 0.00002, volume=np.full(n, 4.0),
                spread_points=np.full(n, 5.0), timeframe_s=60, point=1e-5)
    # Bought on bar 10's open tick with the stop 20 points under it: the bar's path runs through it two ticks later.
    plan = {40: {"action": "OPEN", "side": "BUY", "volume": 0.01, "sl": 1.09980}}
    with FakeBridge(scripted(plan)) as bridge:
        sim = terminal(bridge, data={"EURUSD": bars}, days=None)
        sim.run()
    stops = [d for d in sim.broker.history if d.reason == "SL"]
    assert len(stops) == 1 and stops[0].price == 1.09980   # at the stop, not at the bar's low 1.09950


def test_a_sweep_says_its_calendar_does_not_cover_the_history_too(tmp_path, capsys):
    preset = Path(__file__).resolve().parents[1] / "config" / "funded_standard.toml"
    sweep = tmp_path / "sweep.toml"
    sweep.write_text('[parameters]\n"exits.sl_atr" = [1.5]\n')
    assert main(["sweep", "--sweep", str(sweep), "--synthetic", "EURUSD", "--days", "16", "--config", str(preset),
                 "--workers", "1", "--no-store", "--out", str(tmp_path / "s.csv"),
                 "--best", str(tmp_path / "b.toml")]) == 0
    assert "does not cover the replayed period (2024-01-" in capsys.readouterr().err
