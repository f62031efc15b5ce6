"""The spec-file checker reports every problem of a file at once, a misspelt key with the nearest known one."""

from __future__ import annotations

import pickle

import pytest

from mt5bridge.cli import main
from mt5bridge.market.symbolspec import SPEC_KEYS, SpecFileError, read_spec_file

FULL = dict(digits=5, point=1e-05, tick_size=1e-05, tick_value=1.0, contract_size=100000.0, volume_min=0.01,
            volume_step=0.01, volume_max=100.0, stops_level=0, freeze_level=0, spread_points=8.0,
            commission_per_lot=2.5)


def spec_text(symbol: str, table: dict) -> str:
    return f"[symbols.{symbol}]\n" + "".join(f"{k} = {v!r}\n" for k, v in table.items())


def test_a_misspelt_key_and_a_negative_volume_are_both_reported(tmp_path):
    table = {k: v for k, v in FULL.items() if k != "commission_per_lot"}
    table["commision_per_lot"] = 2.5
    table["volume_min"] = -0.01
    path = tmp_path / "spec.toml"
    path.write_text(spec_text("EURUSD", table))
    with pytest.raises(SpecFileError) as info:
        read_spec_file(path)
    problems = info.value.problems
    assert problems == [
        f"{path}: symbols.EURUSD.commision_per_lot = 2.5: unknown key; did you mean commission_per_lot?",
        f"{path}: symbols.EURUSD.volume_min = -0.01: must be above 0",
    ]  # and no "missing commission_per_lot": the suggestion says it
    assert str(info.value) == "\n".join(problems)
    assert pickle.loads(pickle.dumps(info.value)).problems == problems


def test_every_symbol_and_every_key_is_checked_before_refusing(tmp_path):
    path = tmp_path / "spec.toml"
    path.write_text(spec_text("EURUSD", {"digits": 5.5, "spreadpoints": 8, "volume_step": 0})
                    + spec_text("XAUUSD", {"volume_min": 5.0, "volume_max": 1.0, "zzz": 1}))
    with pytest.raises(SpecFileError) as info:
        read_spec_file(path, partial=True)
    text = str(info.value)
    assert "symbols.EURUSD.digits = 5.5: expected a whole number >= 0" in text
    assert "symbols.EURUSD.spreadpoints = 8: unknown key; did you mean spread_points?" in text
    assert "symbols.EURUSD.volume_step = 0: must be above 0" in text
    assert "symbols.XAUUSD: volume_min 5.0 is above volume_max 1.0" in text
    assert f"symbols.XAUUSD.zzz = 1: unknown key; a symbol's table has {', '.join(SPEC_KEYS)}" in text
    assert len(info.value.problems) == 5


def test_a_full_table_missing_keys_says_which(tmp_path):
    path = tmp_path / "spec.toml"
    path.write_text(spec_text("EURUSD", {k: v for k, v in FULL.items() if k not in ("point", "digits")}))
    with pytest.raises(SpecFileError, match=r"symbols\.EURUSD: missing digits, point$"):
        read_spec_file(path)
    assert read_spec_file(path, partial=True)["EURUSD"]["volume_max"] == 100.0


def test_replay_names_every_problem_of_the_spec_file_before_running(tmp_path, capsys):
    path = tmp_path / "spec.toml"
    path.write_text(spec_text("EURUSD", {"commision_per_lot": 3.0, "volume_min": -1.0}))
    report = tmp_path / "r.json"
    code = main(["replay", "--synthetic", "EURUSD", "--days", "16", "--spec", str(path), "--report", str(report),
                 "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and not report.exists()
    assert "commision_per_lot = 3.0: unknown key; did you mean commission_per_lot?" in err
    assert "volume_min = -1.0: must be above 0" in err
    assert "Traceback" not in err
