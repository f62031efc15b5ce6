"""`mt5bridge train`: the fit never sees the future, and the file it writes makes the engine score as validated."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import aggregate_bars

from mt5bridge.cli.entry import main
from mt5bridge.market.readers import Bars, Ticks
from mt5bridge.core.model import SUBMODELS, load_model, model_to_json
from mt5bridge.workbench.train import (
    TrainError,
    fit_logistic,
    market_rows,
    submodel_features,
    train_direction_model,
)

DAYS = 21  # the slowest default features need 200 H1 bars: about two trading weeks before the first sample
M15 = 900


@pytest.fixture(scope="module")
def ticks() -> Ticks:
    from mt5bridge.market.synthetic import generate_ticks

    return generate_ticks("EURUSD", days=DAYS, seed=11)


@pytest.fixture(scope="module")
def fitted(ticks):
    return train_direction_model([market_rows(ticks, M15, "eurusd")], horizon=4)


def _fit_of(result) -> dict:
    model = result.model
    return {"standardize": model.standardize.model_dump(), "submodels": model.model_dump()["submodels"]}


def _with_prices(ticks: Ticks, change: np.ndarray, factor: np.ndarray) -> Ticks:
    """The same tick times with the prices of the ticks in ``change`` moved by ``factor``."""
    bid, ask = ticks.bid.copy(), ticks.ask.copy()
    bid[change] = np.round(bid[change] * factor, 5)
    ask[change] = np.round(ask[change] * factor, 5)
    return Ticks(ticks.times_ms, bid, ask, ticks.volume)


def test_prices_after_the_cutoff_do_not_change_the_fit(ticks, fitted):
    cutoff = fitted.report["cutoff_ms"]
    after = ticks.times_ms >= cutoff
    assert 0 < after.sum() < len(ticks)
    # A 3 % gap up at the cut-off: every label that reached past it would turn up, and the validation part
    # sees another market.
    gap_up = np.full(int(after.sum()), 1.03)
    changed = train_direction_model([market_rows(_with_prices(ticks, after, gap_up), M15, "eurusd")], horizon=4)

    assert changed.report["cutoff_ms"] == cutoff
    assert _fit_of(changed) == _fit_of(fitted)
    assert changed.report["validation"] != fitted.report["validation"]


def test_prices_just_before_the_cutoff_do_change_the_fit(ticks, fitted):
    # The control for the test above: the last training labels end at the cut-off, so a move in the hour
    # before it reaches the fit. Were it not so, the test above could pass without proving anything.
    cutoff = fitted.report["cutoff_ms"]
    last_hour = (ticks.times_ms >= cutoff - 3_600_000) & (ticks.times_ms < cutoff)
    jump = np.full(int(last_hour.sum()), 1.004)
    changed = train_direction_model([market_rows(_with_prices(ticks, last_hour, jump), M15, "eurusd")], horizon=4)
    assert _fit_of(changed)["submodels"] != _fit_of(fitted)["submodels"]


def test_validation_starts_a_horizon_after_the_last_training_label(fitted):
    s = fitted.samples
    train, valid = ~s["validation"], s["validation"]
    cutoff = fitted.report["cutoff_ms"]
    assert s["label_end"][train].max() <= cutoff <= s["t_open"][valid].min()
    # In bars of the one market: the last training bar is at least the horizon before the first validation bar.
    assert s["row"][valid].min() - s["row"][train].max() >= 4 + 1
    share = valid.sum() / len(valid)
    assert 0.25 < share < 0.35  # the default validation fraction, less the flat closes


def test_standardization_is_measured_on_the_training_part_only(ticks, fitted):
    rows = market_rows(ticks, M15, "eurusd")
    s = fitted.samples
    train_rows = s["row"][~s["validation"]]
    std = fitted.model.standardize
    for name in ("h1_ema_200_dist", "m15_rsi_14", "m5_bb_pctb_20_2"):
        from mt5bridge.core.catalog import FEATURE_INDEX

        values = rows.features[train_rows, FEATURE_INDEX[name]]
        assert std.center[name] == pytest.approx(values.mean(), rel=1e-12)
        assert std.scale[name] == pytest.approx(values.std(), rel=1e-12)
        every = rows.features[s["row"], FEATURE_INDEX[name]]
        assert std.center[name] != pytest.approx(every.mean(), rel=1e-9)


def test_each_submodel_keeps_the_features_of_the_base_model(fitted):
    base = submodel_features(load_model())
    assert {s: list(fitted.model.submodels[s].weights) for s in SUBMODELS} == base
    assert all(any(w != 0 for w in fitted.model.submodels[s].weights.values()) for s in SUBMODELS)
    shipped = load_model()
    assert fitted.model.score == shipped.score
    assert fitted.model.direction == shipped.direction
    assert [fitted.model.submodels[s].weight for s in SUBMODELS] == [shipped.submodels[s].weight for s in SUBMODELS]


def test_the_engine_loading_the_file_scores_validation_bars_as_the_fit_did(ticks, fitted, tmp_path):
    from mt5bridge.core.engine import FeatureEngine

    path = tmp_path / "model.json"
    path.write_text(model_to_json(fitted.model), encoding="utf-8")
    engine = FeatureEngine(str(path))
    res = engine.process_ticks(ticks.times_ms, ticks.bid, ticks.ask, ticks.volume, 2, False)
    s = fitted.samples
    valid = s["validation"]
    at = np.searchsorted(res["time"], s["t_open"][valid])
    assert np.array_equal(res["time"][at], s["t_open"][valid])
    p = s["p_up"][valid]
    np.testing.assert_allclose(res["confidence"][at], np.maximum(p, 1 - p), rtol=0, atol=1e-9)
    expected = np.where(p >= 0.55, 1, np.where(p <= 0.45, -1, 0))
    assert np.array_equal(res["direction"][at], expected)
    signals = fitted.report["validation"]["signals"]
    assert signals["buy"] == int((expected == 1).sum()) and signals["sell"] == int((expected == -1).sum())


def test_report_scores_agree_with_the_predictions(fitted):
    s = fitted.samples
    valid = s["validation"]
    p, y = s["p_up"][valid], s["y"][valid]
    v = fitted.report["validation"]["ensemble"]
    assert v["samples"] == valid.sum()
    assert v["accuracy"] == pytest.approx(np.mean((p >= 0.5) == (y == 1)))
    assert v["log_loss"] == pytest.approx(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    up = fitted.report["up_rate"]["train"]
    assert up == pytest.approx(s["y"][~valid].mean())
    assert v["base_rate_log_loss"] == pytest.approx(-np.mean(y * np.log(up) + (1 - y) * np.log(1 - up)))
    table = fitted.report["calibration"]
    assert len(table) == 10 and sum(row["count"] for row in table) == valid.sum()
    for row in table:
        inside = (p >= row["lo"]) & ((p < row["hi"]) | (row["hi"] == 1.0))
        assert row["count"] == inside.sum()
        if row["count"]:
            assert row["observed_up"] == pytest.approx(y[inside].mean())
            assert row["lo"] <= row["mean_predicted"] <= row["hi"]


def test_logistic_fit_reaches_the_penalised_optimum():
    rng = np.random.default_rng(5)
    z = rng.standard_normal((4000, 3))
    true_w = np.array([1.2, -0.7, 0.0])
    y = (rng.random(4000) < 1 / (1 + np.exp(-(z @ true_w + 0.3)))).astype(float)
    w, b, _ = fit_logistic(z, y, 0.01)
    p = 1 / (1 + np.exp(-(z @ w + b)))
    # Zero gradient of mean log-loss + l2/2 |w|^2: the bias is not shrunk, the weights are.
    np.testing.assert_allclose(z.T @ (p - y) / len(y) + 0.01 * w, 0, atol=1e-9)
    assert np.mean(p - y) == pytest.approx(0, abs=1e-9)
    np.testing.assert_allclose(w, true_w, atol=0.12)
    assert b == pytest.approx(0.3, abs=0.1)
    w_strong, _, _ = fit_logistic(z, y, 1.0)
    assert np.all(np.abs(w_strong[:2]) < np.abs(w[:2]))


def test_too_short_a_history_names_the_features_that_never_warmed():
    from mt5bridge.market.synthetic import generate_ticks

    short = generate_ticks("EURUSD", days=6, seed=1)
    with pytest.raises(TrainError) as err:
        train_direction_model([market_rows(short, M15, "six-days.csv")])
    message = str(err.value)
    assert "six-days.csv" in message and "h1_ema_200_dist" in message and "200 H1 bars" in message


def test_m15_bars_cannot_feed_features_built_on_m5(ticks):
    t, o, h, lo, c, v = aggregate_bars(ticks.times_ms, ticks.bid, ticks.volume, 900)
    bars = Bars(t, o, h, lo, c, v, np.full(len(t), 8.0), 900, 1e-5)
    with pytest.raises(TrainError, match=r"M15 bars.*m5_macd_hist_atr"):
        market_rows(bars, M15, "EURUSD_M15.csv", read_features=["m5_macd_hist_atr", "h1_adx_14"])
    market_rows(bars, 3600, "EURUSD_M15.csv", read_features=["h1_adx_14", "m15_rsi_14"])  # these it can rebuild


# --- the command ---------------------------------------------------------------------------------------------


def _write_tick_csv(path, ticks: Ticks) -> None:
    stamps = np.datetime_as_string(ticks.times_ms.astype("datetime64[ms]"), unit="ms")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("time,bid,ask\n")
        fh.writelines(f"{s},{b:.5f},{a:.5f}\n" for s, b, a in zip(stamps, ticks.bid, ticks.ask))


def test_command_trains_from_a_file_and_writes_a_model_serve_can_load(ticks, fitted, tmp_path, capsys):
    from mt5bridge.core.engine import FeatureEngine

    data = tmp_path / "EURUSD_ticks.csv"
    _write_tick_csv(data, ticks)
    out = tmp_path / "eurusd.json"
    # A random walk cannot be predicted: the fit does not beat the base rate, and no model is written for it.
    assert main(["train", "--data", str(data), "--out", str(out), "--json"]) == 1
    captured = capsys.readouterr()
    assert not out.exists() and "does not beat the base rate" in captured.err and "--force" in captured.err
    assert json.loads(captured.out)["beats_base_rate"] is False
    code = main(["train", "--data", str(data), "--out", str(out), "--json", "--force"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads(captured.out)
    model = load_model(out)
    assert model.trained.model_dump() == {"symbols": ["EURUSD"], "data": ["ticks"], "timeframe": "M15",
                                          "beats_base_rate": False}
    assert model.name == "trained-EURUSD_ticks" and FeatureEngine(str(out)).model_name == model.name
    # The file holds the synthetic market's prices exactly, so the fit is the one made in memory.
    assert _fit_of(type(fitted)(model, {}, {})) == _fit_of(fitted)
    assert report["validation"] == fitted.report["validation"]
    assert report["model"]["path"] == str(out)
    assert "out of sample" in model.description.lower()

    again = tmp_path / "again.json"
    assert main(["train", "--data", str(data), "--out", str(again), "--force"]) == 0
    text = capsys.readouterr().out
    assert again.read_bytes() == out.read_bytes()  # deterministic
    assert "out of sample" in text and "Calibration" in text and str(again) in text


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--synthetic", "EURUSD", "--days", "6"], "h1_ema_200_dist"),
        (["--synthetic", "EURUSD", "--timeframe", "M30"], "--timeframe 'M30'"),
        (["--synthetic", "EURUSD", "--l2", "0"], "--l2 0 must be above 0"),
        (["--synthetic", "EURUSD", "--validation-fraction", "0.95"], "--validation-fraction 0.95"),
        (["--synthetic", "NOSUCH"], "no synthetic profile for 'NOSUCH'"),
        (["--data", "missing.csv"], "--data missing.csv: cannot read the file"),
    ],
)
def test_command_refuses_bad_input_with_exit_2(argv, words, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", *argv, "--out", "m.json"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mt5bridge train: error: ") and words in err
    assert not (tmp_path / "m.json").exists()


def test_command_refuses_a_bar_file_of_the_wrong_timeframe(ticks, tmp_path, capsys):
    t, o, h, lo, c, v = aggregate_bars(ticks.times_ms, ticks.bid, ticks.volume, 900)
    path = tmp_path / "EURUSD_M15.csv"
    stamps = np.datetime_as_string(t.astype("datetime64[ms]"), unit="m")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("time,open,high,low,close,volume\n")
        fh.writelines(f"{s},{a:.5f},{b:.5f},{d:.5f},{e:.5f},{int(f)}\n"
                      for s, a, b, d, e, f in zip(stamps, o, h, lo, c, v))
    assert main(["train", "--data", str(path)]) == 2
    err = capsys.readouterr().err
    assert "M15 bars" in err and "m5_" in err and "--bars M1" in err
    # What works comes first, the option that would only lead into another refusal last.
    assert err.index("Export ticks or M1 bars") < err.index("--base-model")
