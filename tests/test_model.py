"""The direction model file: the shipped one loads, a replaced one changes the engine, a bad one is named."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mt5bridge.core.engine import FeatureEngine
from mt5bridge.core.model import ModelError, load_model, model_to_json


def write(tmp_path, data) -> str:
    p = tmp_path / "model.json"
    p.write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8")
    return str(p)


@pytest.fixture
def default_dict():
    return json.loads(model_to_json(load_model()))


def test_the_shipped_model_loads_and_round_trips(default_dict):
    m = load_model()
    assert m.name == "default" and set(m.submodels) == {"trend", "momentum", "mean_reversion", "breakout"}
    assert json.loads(model_to_json(m)) == default_dict


def test_a_replaced_model_changes_the_decisions(tmp_path, default_dict, eurusd_ticks):
    flipped = default_dict
    for sub in flipped["submodels"].values():
        sub["weights"] = {k: -w for k, w in sub["weights"].items()}
    a = FeatureEngine()
    b = FeatureEngine(write(tmp_path, flipped))
    ra = a.process_ticks(eurusd_ticks.times_ms, eurusd_ticks.bid, eurusd_ticks.ask, eurusd_ticks.volume, 1)
    rb = b.process_ticks(eurusd_ticks.times_ms, eurusd_ticks.bid, eurusd_ticks.ask, eurusd_ticks.volume, 1)
    np.testing.assert_array_equal(ra["features"], rb["features"])
    decided = ra["direction"] != 0
    assert decided.any()
    # Negated weights on symmetric sub-models turn every BUY into a SELL and back.
    np.testing.assert_array_equal(rb["direction"][decided], -ra["direction"][decided])
    np.testing.assert_allclose(ra["score"], rb["score"])


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["submodels"]["trend"]["weights"].update({"h1_no_such_feature": 1.0}), "unknown feature"),
        (lambda d: d["submodels"].pop("breakout"), "submodels must be exactly"),
        (lambda d: d["score"]["terms"].append({"feature": "h1_adx_14", "lo": 2, "hi": 2}), "lo and hi must differ"),
        (lambda d: d["direction"].update({"buy_above": 0.4}), "direction.buy_above"),
        (lambda d: d.update({"colour": "red"}), "colour"),
        (lambda d: d["score"]["group_weights"].pop("session"), "group_weights must name exactly"),
    ],
)
def test_a_bad_model_file_fails_with_the_file_and_the_reason(tmp_path, default_dict, mutate, message):
    mutate(default_dict)
    path = write(tmp_path, default_dict)
    with pytest.raises(ModelError, match=message) as exc:
        FeatureEngine(path)
    assert path in str(exc.value)


def test_broken_json_names_line_and_column(tmp_path):
    path = write(tmp_path, '{\n  "format": \n}')
    with pytest.raises(ModelError, match=r"model.json:3:1: not valid JSON"):
        load_model(path)


def test_the_model_file_allows_no_more_score_terms_than_the_engine_holds():
    from mt5bridge.core import _engine
    from mt5bridge.core.model import MAX_SCORE_TERMS

    # The engine's term arrays are C arrays of a fixed size: the file's limit must be that size.
    assert MAX_SCORE_TERMS == _engine.SCORE_TERMS_CAPACITY
