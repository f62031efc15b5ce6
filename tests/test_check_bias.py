"""No look-ahead, known warm-up: `mt5bridge check-bias` finds the compiled engine's features equal when the
history is cut at the bar, catches the look-ahead a trader's own feature code typically has (a centred average,
a scale fitted on the whole file), and measures the warm-up each timeframe needs."""

from __future__ import annotations

import json

import numpy as np

from mt5bridge.cli.entry import main
from mt5bridge.market.synthetic import generate_ticks
from mt5bridge.workbench.bias import compare_at_cuts, cut_rows, engine_lookahead, resample


def test_the_engine_features_at_a_bar_are_those_of_the_history_cut_there():
    ticks = generate_ticks("EURUSD", days=3, seed=2)
    leaks, bars, cuts = engine_lookahead(ticks, cuts=6)
    assert bars > 2000 and cuts == 6
    assert leaks == []


def _walk(n: int = 600, seed: int = 1) -> np.ndarray:
    return 1.10 + np.cumsum(np.random.default_rng(seed).normal(0.0, 1e-4, n))


def test_a_centred_average_is_caught_looking_ahead():
    price = _walk()

    def centred(series: np.ndarray) -> np.ndarray:   # the mean of 5 bars around each: 2 of them in the future
        out = np.full(len(series), np.nan)
        for i in range(len(series)):
            window = series[max(0, i - 2):i + 3]
            out[i] = window.mean()
        return out

    def trailing(series: np.ndarray) -> np.ndarray:
        return np.array([series[max(0, i - 4):i + 1].mean() for i in range(len(series))])

    def features(series: np.ndarray) -> np.ndarray:
        return np.column_stack([trailing(series), centred(series)])

    full = features(price)
    rows = cut_rows(len(price), 8)
    leaks = compare_at_cuts(full, lambda r: features(price[:r + 1])[r], rows, ["sma_5", "centred_5"],
                            np.arange(len(price)))
    # Only the centred one differs, and at every cut but the last bar (which has no future in either run).
    assert [leak.feature for leak in leaks] == ["centred_5"]
    assert leaks[0].cuts_differing == len(rows) - 1


def test_a_scale_fitted_on_the_whole_file_is_caught_looking_ahead():
    price = _walk(seed=3)

    def zscore(series: np.ndarray) -> np.ndarray:   # standardised with the mean and stdev of the whole file
        return ((series - series.mean()) / series.std())[:, None]

    rows = cut_rows(len(price), 6)[1:]   # from the second cut: one bar has no spread to scale by
    leaks = compare_at_cuts(zscore(price), lambda r: zscore(price[:r + 1])[r], rows, ["price_z"],
                            np.arange(len(price)))
    # Every cut but the last bar, where the cut history is the whole file.
    assert len(leaks) == 1 and leaks[0].cuts_differing == len(rows) - 1


def test_check_bias_writes_the_warm_up_each_timeframe_needs(tmp_path, capsys):
    report = tmp_path / "bias.json"
    code = main(["check-bias", "--synthetic", "EURUSD", "--days", "20", "--cuts", "3", "--lookahead-days", "2",
                 "--warmups", "20,50,100,200,250,300", "--report", str(report)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "no look-ahead: all 147 features equal" in out
    data = json.loads(report.read_text())   # strict JSON: a value not defined is null
    assert data["lookahead"]["leaks"] == []
    assert set(data["warmup"]) == {"M1", "M5", "M15", "H1"}
    m1 = {f["feature"]: f for f in data["warmup"]["M1"]["features"]}
    assert len(m1) == 31
    # An EMA200 is not even defined on 100 bars; an RSI(14) has converged long before 200.
    assert m1["m1_ema_200_dist"]["worst_by_warmup"]["100"] is None
    assert m1["m1_ema_200_dist"]["needed"] is None or m1["m1_ema_200_dist"]["needed"] > 200
    assert m1["m1_rsi_14"]["needed"] is not None and m1["m1_rsi_14"]["needed"] <= 200
    for name in ("M1", "M5", "M15", "H1"):
        assert f"  {name}: " in out and "the EA sends" in out


def test_a_bar_file_measures_only_the_timeframes_it_can_build(tmp_path, capsys):
    bars = resample(generate_ticks("EURUSD", days=30, seed=4), 900)
    lines = ["time,open,high,low,close,volume"] + [
        f"{t},{o:.5f},{h:.5f},{lo:.5f},{c:.5f},{int(v)}"
        for t, o, h, lo, c, v in zip(bars.times_ms, bars.open, bars.high, bars.low, bars.close, bars.volume)]
    data = tmp_path / "EURUSD_M15.csv"
    data.write_text("\n".join(lines) + "\n")
    code = main(["check-bias", "--input", str(data), "--cuts", "3", "--warmups", "20,50,100"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "M1: not measured (a 15-minute bar file cannot rebuild M1 bars)" in out
    assert "M5: not measured" in out and "M15: " in out and "H1: " in out


def test_bad_options_are_refused_by_name(tmp_path, capsys):
    assert main(["check-bias", "--synthetic", "EURUSD", "--warmups", "200,lots"]) == 2
    assert "--warmups '200,lots'" in capsys.readouterr().err
    assert main(["check-bias", "--synthetic", "EURUSD", "--cuts", "0"]) == 2
    assert "--cuts must be at least 1" in capsys.readouterr().err
    assert main(["check-bias", "--input", str(tmp_path / "missing.csv")]) == 2
    err = capsys.readouterr().err
    assert "missing.csv" in err and "Traceback" not in err


def test_an_mt5_export_without_its_clock_is_refused_by_name(tmp_path, capsys):
    bars = resample(generate_ticks("EURUSD", days=3, seed=5), 900)
    import datetime as dt

    rows = ["<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>"]
    for t, o, h, lo, c, v in zip(bars.times_ms, bars.open, bars.high, bars.low, bars.close, bars.volume):
        when = dt.datetime.fromtimestamp(t / 1000 + 7200, dt.timezone.utc)
        rows.append(f"{when:%Y.%m.%d}\t{when:%H:%M:%S}\t{o:.5f}\t{h:.5f}\t{lo:.5f}\t{c:.5f}\t{int(v)}\t0\t8")
    export = tmp_path / "EURUSD_M15.csv"
    export.write_text("\n".join(rows) + "\n")
    assert main(["check-bias", "--input", str(export), "--cuts", "2", "--warmups", "20"]) == 2
    err = capsys.readouterr().err
    assert "server time" in err and "--server-time ny-close" in err and "Traceback" not in err
    assert main(["check-bias", "--input", str(export), "--server-time", "ny-close", "--cuts", "2",
                 "--warmups", "20,50"]) == 0
