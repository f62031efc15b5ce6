"""The odds of passing: a Monte Carlo a trader may decide on, so it must give the known answer where there is one.

A sure winner passes (and on the very day the arithmetic says), a sure breacher fails by the rule it breaks, and
a fair coin toss lands where an exact dynamic programme of the same random walk says, within the Monte Carlo's
own error; the 1-Step's trailing floor and best-day rule and the trading-days minimum are applied as FTMO
applies them."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from mt5bridge.config import Config, load_config
from mt5bridge.workbench.odds import Rules, block_indices, judge, odds_by_trade_order, odds_of_passing

TWO_STEP = Config()   # 5% daily, 10% static, 10% target, 4 trading days


def one_step(**ftmo) -> Config:
    """The shipped 1-Step preset, with some [ftmo] keys replaced."""
    data = load_config(Path(__file__).resolve().parent.parent / "config" / "one_step.toml").model_dump(by_alias=True)
    data["ftmo"].update(ftmo)
    return Config.model_validate(data)


def coin_toss_exact(horizon: int, up: int = 10, ruin_below: int = -10) -> tuple[float, float]:
    """P(pass) and P(ruin) within ``horizon`` days of a fair ±1 walk from 0 that passes on reaching ``up`` and is
    ruined on going below ``ruin_below`` (equity strictly under the floor): exact, by dynamic programming."""
    lo = ruin_below - 1
    prob = {0: 1.0}
    passed = ruined = 0.0
    for _ in range(horizon):
        nxt: dict[int, float] = {}
        for x, p in prob.items():
            for step in (1, -1):
                y = x + step
                if y >= up:
                    passed += p / 2
                elif y <= lo:
                    ruined += p / 2
                else:
                    nxt[y] = nxt.get(y, 0.0) + p / 2
        prob = nxt
    return passed, ruined


def within_mc_error(estimate: float, exact: float, paths: int, sigmas: float = 4.0) -> bool:
    return abs(estimate - exact) <= sigmas * math.sqrt(max(exact * (1 - exact), 1e-4) / paths)


# ---- known answers ---------------------------------------------------------------------------------------------

def test_a_sure_winner_passes_on_the_day_the_arithmetic_says():
    # +1% every day, never below the day's start: 10% on day 10, with 10 trading days (more than 4).
    odds = odds_of_passing([1.0] * 30, TWO_STEP, paths=2000)
    assert odds["p_pass"] == 1.0 and odds["p_daily_breach"] == 0.0 and odds["p_max_breach"] == 0.0
    assert odds["median_days_to_target"] == 10
    assert odds["p_pass_ci"] == [1.0, 1.0]


def test_a_sure_daily_breacher_fails_by_the_daily_limit_on_its_first_day():
    odds = odds_of_passing([0.5] * 20, TWO_STEP, daily_low_pct=[-5.2] * 20, paths=2000)
    assert odds["p_pass"] == 0.0 and odds["p_daily_breach"] == 1.0 and odds["p_max_breach"] == 0.0
    assert odds["median_days_to_target"] is None


def test_a_slow_bleeder_fails_by_the_max_loss_not_the_daily_limit():
    # −3% a day is inside the 5% daily limit; on day 4 equity reaches −12% < −10%.
    odds = odds_of_passing([-3.0] * 10, TWO_STEP, paths=1000)
    assert odds["p_max_breach"] == 1.0 and odds["p_daily_breach"] == 0.0 and odds["p_pass"] == 0.0


def test_a_loss_exactly_at_the_limit_is_not_a_breach():
    # FTMO: equity must not go *below* the floor; exactly −5% in a day is allowed.
    odds = odds_of_passing([2.0] * 10, TWO_STEP, daily_low_pct=[-5.0] * 10, paths=500)
    assert odds["p_daily_breach"] == 0.0 and odds["p_pass"] == 1.0


def test_a_fair_coin_toss_lands_where_the_exact_random_walk_does():
    # Days of +1% and −1% in equal number, each day's low its loss: with blocks of 1 the bootstrap is a fair
    # ±1 walk, absorbed at +10% (the target) and below −10% (the max loss).
    horizon, paths = 120, 20_000
    odds = odds_of_passing([1.0, -1.0] * 50, TWO_STEP, paths=paths, block=1, horizon_days=horizon, seed=7)
    exact_pass, exact_ruin = coin_toss_exact(horizon)
    assert within_mc_error(odds["p_pass"], exact_pass, paths)
    assert within_mc_error(odds["p_max_breach"], exact_ruin, paths)
    assert odds["p_daily_breach"] == 0.0
    assert odds["p_pass"] + odds["p_max_breach"] + odds["p_undecided"] == pytest.approx(1.0)
    lo, hi = odds["p_pass_ci"]
    assert lo <= exact_pass <= hi


def test_blocks_of_days_keep_their_order():
    # Alternating days in blocks of 5: a block is +−+−+ (net +1%) or −+−+− (net −1%), each reaching its net on
    # its first day. So the balance is a fair ±1 walk per block, and a path passes or fails on the first day of
    # a block: the odds are the exact walk's over 24 blocks (120 days), the days to target 1 + 5k.
    paths = 20_000
    odds = odds_of_passing([1.0, -1.0] * 50, TWO_STEP, paths=paths, block=5, horizon_days=120, seed=9)
    exact_pass, exact_ruin = coin_toss_exact(24)
    assert within_mc_error(odds["p_pass"], exact_pass, paths)
    assert within_mc_error(odds["p_max_breach"], exact_ruin, paths)
    assert (odds["median_days_to_target"] - 1) % 5 == 0


def test_the_coin_toss_with_no_horizon_to_speak_of_is_gamblers_ruin():
    # Absorbed at +10 or at −11 (−10 exactly is allowed): P(pass) = 11/21 for a fair walk, given time.
    odds = odds_of_passing([1.0, -1.0], TWO_STEP, paths=20_000, block=1, horizon_days=3000, seed=3)
    assert odds["p_undecided"] < 0.001
    assert within_mc_error(odds["p_pass"], 11 / 21, 20_000)


def test_the_trade_order_monte_carlo_agrees_with_the_exact_walk_on_one_coin_toss_trade_a_day():
    horizon, paths = 120, 20_000
    odds = odds_by_trade_order([1.0, -1.0] * 20, [1] * 40, TWO_STEP, paths=paths, horizon_days=horizon, seed=11)
    exact_pass, exact_ruin = coin_toss_exact(horizon)
    assert within_mc_error(odds["p_pass"], exact_pass, paths)
    assert within_mc_error(odds["p_max_breach"], exact_ruin, paths)


def test_trades_in_one_day_add_up_to_the_days_low_and_can_break_the_daily_limit():
    # Three trades a day, each losing 2%: closed −6% a day; the third trade takes the day past −5%.
    odds = odds_by_trade_order([-2.0], [3], TWO_STEP, paths=500)
    assert odds["p_daily_breach"] == 1.0 and odds["p_pass"] == 0.0
    # A trade's floating low counts on top of the day's closed result before it. Two trades a day from: A, +2%
    # never under water; B, flat but 7.5% under water on the way. AA: low 0, +4%. AB: +2% then −7.5% → −5.5%,
    # a breach; BA and BB: −7.5%, a breach. So each day breaks the daily limit with probability 3/4, and a
    # path passes only by four AA days in a row (12% on day 3, the 4th trading day on day 4): 1/256.
    paths = 40_000
    odds = odds_by_trade_order([2.0, 0.0], [2], TWO_STEP, trade_low_pct=[0.0, -7.5], paths=paths, seed=1)
    assert within_mc_error(odds["p_pass"], 1 / 256, paths)
    assert within_mc_error(odds["p_daily_breach"], 255 / 256, paths)
    assert odds["median_days_to_target"] == 4


# ---- the rules --------------------------------------------------------------------------------------------------

def test_the_trailing_floor_of_the_one_step_follows_the_best_end_of_day_balance():
    rules = Rules.of(one_step(profit_target_pct=0.0))
    # Day 1 closes +8%: the floor rises to −2%. Day 3 starts at +3% and dips 6% under: equity −3% < −2%.
    pnl = np.array([[8.0, -5.0, -1.0], [8.0, -5.0, -1.0]])
    low = np.array([[0.0, -2.5, -6.0], [0.0, -2.5, -4.0]])
    got = judge(pnl, low, np.ones_like(pnl, dtype=bool), rules)
    assert got["max_breach"].tolist() == [True, False]
    static = Rules.of(Config.model_validate({"ftmo": {"profit_target_pct": 0.0, "daily_loss_pct": 10.0}}))
    assert not judge(pnl, low, np.ones_like(pnl, dtype=bool), static)["max_breach"].any()


def test_the_target_waits_for_the_minimum_trading_days():
    rules = Rules.of(TWO_STEP)
    pnl = np.array([[12.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    traded = np.array([[True, False, True, True, False, True]])
    got = judge(pnl, np.zeros_like(pnl), traded, rules)
    assert got["passed"][0] and got["days"][0] == 6   # the 4th trading day is the 6th day


def test_the_best_day_rule_holds_the_one_step_target_back():
    rules = Rules.of(one_step())
    # +9% then +0.5% a day: the total is 10% on day 3, but the best day (9%) is over half of it until the total
    # reaches 18%, on day 19.
    pnl = np.array([[9.0] + [0.5] * 30])
    got = judge(pnl, np.zeros_like(pnl), np.ones_like(pnl, dtype=bool), rules)
    assert got["passed"][0] and got["days"][0] == 19


def test_a_day_that_reaches_the_target_and_breaks_a_limit_fails():
    rules = Rules.of(TWO_STEP)
    pnl = np.array([[5.0, 1.0, 1.0, 4.0]])
    low = np.array([[0.0, 0.0, 0.0, -5.5]])
    got = judge(pnl, low, np.ones_like(pnl, dtype=bool), rules)
    assert not got["passed"][0] and got["daily_breach"][0]


def test_a_funded_account_passes_by_keeping_the_account():
    funded = Config.model_validate({"account": {"phase": "funded"}, "ftmo": {"profit_target_pct": 0.0,
                                                                             "min_trading_days": 0}})
    odds = odds_of_passing([0.2, -0.1], funded, paths=500, horizon_days=50)
    assert odds["p_pass"] == 1.0 and odds["median_days_to_target"] is None


# ---- the resampling ---------------------------------------------------------------------------------------------

def test_block_indices_are_runs_of_consecutive_days_wrapping_round():
    idx = block_indices(np.random.default_rng(0), 7, 50, 20, 5)
    assert idx.shape == (50, 20) and idx.min() >= 0 and idx.max() < 7
    for row in idx:
        for b in range(0, 20, 5):
            run = row[b:b + 5]
            assert all((run[i + 1] - run[i]) % 7 == 1 for i in range(len(run) - 1))


def test_the_same_seed_gives_the_same_odds_and_another_seed_other_paths():
    history = np.random.default_rng(5).normal(0.2, 1.2, 60)
    a = odds_of_passing(history, TWO_STEP, paths=3000, seed=4)
    b = odds_of_passing(history, TWO_STEP, paths=3000, seed=4)
    c = odds_of_passing(history, TWO_STEP, paths=3000, seed=5)
    assert a == b and a != c


def test_no_days_gives_no_odds_and_bad_arguments_are_refused():
    odds = odds_of_passing([], TWO_STEP)
    assert odds["p_pass"] is None and odds["source_days"] == 0
    with pytest.raises(ValueError, match="paths"):
        odds_of_passing([1.0], TWO_STEP, paths=0)
    with pytest.raises(ValueError, match="one value per day"):
        odds_of_passing([1.0, 2.0], TWO_STEP, daily_low_pct=[0.0])
    with pytest.raises(ValueError, match="finite"):
        odds_of_passing([1.0, float("nan")], TWO_STEP)


@pytest.mark.parametrize("preset", ["2-step", "1-step", "funded"])
def test_a_path_judged_in_parts_ends_as_judged_whole(preset):
    # The Monte Carlo draws paths 40 days at a time and carries the balance, the trailing floor's peak, the
    # trading days and the best day across: the outcome must be the one of the path judged in one piece.
    cfg = {"2-step": TWO_STEP, "1-step": one_step(profit_target_pct=6.0),
           "funded": Config.model_validate({"account": {"phase": "funded"},
                                            "ftmo": {"profit_target_pct": 0.0, "min_trading_days": 0}})}[preset]
    rules = Rules.of(cfg)
    rng = np.random.default_rng(2)
    pnl = rng.normal(0.05, 0.9, (3000, 150))
    low = np.minimum(pnl, 0.0) - rng.exponential(0.8, pnl.shape)
    traded = rng.random(pnl.shape) < 0.7
    whole = judge(pnl, low, traded, rules)
    carry, done = None, {k: np.zeros(len(pnl), dtype=whole[k].dtype) for k in ("passed", "daily_breach",
                                                                              "max_breach", "days")}
    alive = np.arange(len(pnl))
    for start in range(0, 150, 40):
        part = slice(start, min(start + 40, 150))
        got = judge(pnl[alive, part], low[alive, part], traded[alive, part], rules, carry, last=part.stop == 150)
        for k in done:
            done[k][alive] = got[k]
        still = ~(got["passed"] | got["daily_breach"] | got["max_breach"])
        alive, carry = alive[still], got["carry"].take(still)
    for k in done:
        assert (done[k] == whole[k]).all(), k
    assert whole["passed"].any() and (whole["daily_breach"] | whole["max_breach"]).any()
