"""Sweeps: every combination checked before anything runs, full replays in separate processes giving the same
ranking as one process, FTMO breakers disqualified, walk-forward on data the tuning never saw."""

from __future__ import annotations

import csv

import pytest

from desk import always, config_for_signals
from mt5bridge.cli.entry import main
from mt5bridge.config import Config, load_config
from mt5bridge.workbench.replay import load_markets, synthetic_markets
from mt5bridge.workbench.sweep import SweepError, best_config, plan_from_dict, rank, run_sweep, split_markets
from test_replay import gap_bars


def test_a_grid_is_every_combination_and_a_random_sweep_is_repeatable():
    plan = plan_from_dict({"sweep": {"method": "grid"}, "parameters": {
        "entry.min_score": [50, 60, 70], "exits.sl_atr": {"min": 1.0, "max": 2.0, "step": 0.5}}}, Config())
    assert len(plan.combinations) == 9
    assert {c["exits.sl_atr"] for c in plan.combinations} == {1.0, 1.5, 2.0}
    spec = {"sweep": {"method": "random", "samples": 12, "seed": 4},
            "parameters": {"exits.sl_atr": {"min": 1.0, "max": 3.0}, "entry.min_score": {"min": 40, "max": 70}}}
    a, b = plan_from_dict(spec, Config()), plan_from_dict(spec, Config())
    assert a.combinations == b.combinations and len(a.combinations) == 12
    assert all(1.0 <= c["exits.sl_atr"] <= 3.0 and isinstance(c["entry.min_score"], int) for c in a.combinations)


@pytest.mark.parametrize("parameters, message", [
    ({"entry.min_scor": [1, 2]}, "entry has no setting 'min_scor' (did you mean 'min_score'?)"),
    ({"exits.sl_atr": {"min": 1.0, "max": 2.0}}, "a grid needs a step"),
    ({"exits.sl_atr": {"min": 3.0, "max": 2.0, "step": 0.5}}, "min 3.0 is above max 2.0"),
    ({"sizing.base_risk_pct_min": [0.4, 2.0]}, "sizing.base_risk_pct_min = 2.0"),
])
def test_a_bad_sweep_is_refused_before_anything_runs(parameters, message):
    with pytest.raises(SweepError) as err:
        plan_from_dict({"parameters": parameters}, Config())
    assert message in str(err.value)


def test_processes_give_the_same_ranking_as_one_process(tmp_path):
    base = config_for_signals()
    plan = plan_from_dict({"parameters": {"exits.sl_atr": [1.0, 2.0], "exits.tp_atr": [2.0, 3.0]}}, base)
    markets = synthetic_markets(["EURUSD"], days=17, seed=8)
    args = {"model": always("BUY", tmp_path)}
    one = run_sweep(plan, base, markets, workers=1, replay_args=args)
    two = run_sweep(plan, base, markets, workers=2, replay_args=args)
    assert one == two
    assert [r["rank"] for r in one] == [1, 2, 3, 4]
    profits = [r["net_profit"] for r in one]
    assert profits == sorted(profits, reverse=True)
    assert len({r["trades"] for r in one} | {r["net_profit"] for r in one}) > 1   # the settings mattered


def test_a_run_that_breaches_an_ftmo_rule_is_disqualified_and_never_recommended(tmp_path):
    data = gap_bars(tmp_path / "EURUSD_M1.csv", gap_at_minute=1440 + 600, gap=0.2)
    base = config_for_signals()
    plan = plan_from_dict({"parameters": {"sizing.base_risk_pct_max": [0.05, 0.5],
                                          "sizing.base_risk_pct_min": [0.05]}}, base)
    rows = run_sweep(plan, base, load_markets([data], allow_expanded_bars=True), workers=1,
                     replay_args={"model": always("BUY", tmp_path), "warmup_days": 0.3})
    breached = [r for r in rows if r["disqualified"]]
    kept = [r for r in rows if not r["disqualified"]]
    assert breached and kept, "the bigger risk breaches through the gap, the smaller survives it"
    assert rows[-1]["disqualified"] and rows[0] is kept[0]   # breakers rank last, whatever they made
    cfg, row = best_config(rows, base)
    assert not row["disqualified"] and cfg.sizing.base_risk_pct_max == row["params"]["sizing.base_risk_pct_max"]


def test_ranking_puts_breakers_and_missing_values_last():
    rows = [{"run": 0, "disqualified": True, "net_profit": 900.0}, {"run": 1, "disqualified": False, "net_profit": 5.0},
            {"run": 2, "disqualified": False, "net_profit": None}, {"run": 3, "disqualified": False, "net_profit": 50.0}]
    assert [r["run"] for r in rank(rows, "net_profit")] == [3, 1, 2, 0]
    rows = [{"run": 0, "disqualified": False, "max_drawdown_pct": 4.0},
            {"run": 1, "disqualified": False, "max_drawdown_pct": 1.0}]
    assert [r["run"] for r in rank(rows, "max_drawdown_pct")] == [1, 0]   # smaller is better


def test_walk_forward_reports_the_best_on_a_later_period_the_tuning_never_saw():
    markets = synthetic_markets(["EURUSD"], days=40, seed=3)
    train, test = split_markets(markets, 0.6, 14.0)
    cut = int(train[0].ticks.times_ms[-1])
    first_test_trade = int(test[0].ticks.times_ms[0]) + 14 * 86_400_000
    assert first_test_trade > cut
    assert not test[0].continuous[0]


def test_the_command_writes_results_and_a_best_configuration_that_loads(tmp_path, capsys):
    sweep = tmp_path / "sweep.toml"
    sweep.write_text('[sweep]\nobjective = "net_profit"\nwalk_forward = true\ntop = 2\n\n'
                     '[parameters]\n"exits.sl_atr" = [1.0, 2.0]\n"entry.min_score" = [0, 30]\n')
    out, best = tmp_path / "results.csv", tmp_path / "best.toml"
    code = main(["sweep", "--sweep", str(sweep), "--synthetic", "EURUSD", "--days", "30", "--workers", "2",
                 "--out", str(out), "--best", str(best), "--quiet", "--store", str(tmp_path / "store.sqlite")])
    assert code == 0 and capsys.readouterr().out == ""
    rows = list(csv.DictReader(out.open()))
    assert [r["period"] for r in rows] == ["train"] * 4 + ["test"] * 2
    winner = rows[0]
    cfg = load_config(best)
    assert cfg.exits.sl_atr == float(winner["exits.sl_atr"]) and cfg.entry.min_score == float(winner["entry.min_score"])
    assert main(["sweep", "--sweep", str(tmp_path / "none.toml"), "--synthetic", "EURUSD"]) == 2
    assert "none.toml" in capsys.readouterr().err
    # Shown as a trader reads it: each period's dates, and a run that breached nothing but passed nothing
    # is "no breach", not "kept".
    assert main(["sweep", "--sweep", str(sweep), "--synthetic", "EURUSD", "--days", "30", "--workers", "1",
                 "--out", str(out), "--best", str(best), "--store", str(tmp_path / "store.sqlite")]) == 0
    shown = capsys.readouterr()
    assert "6 runs: 0 new, 6 stored" not in shown.err and "4 runs: 0 new, 4 stored" in shown.err
    text = " ".join(shown.out.split())
    assert "tuning period, 2024-01-15 00:00 → 2024-01-26 04:47 UTC" in text
    assert "later period, 2024-01-26 04:48 → 2024-01-30 23:59 UTC" in text
    assert "no breach" in text and "kept" not in text and "passed" not in text
