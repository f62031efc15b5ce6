"""Threshold tuning: many full replays over ranges of settings, ranked, with FTMO breakers disqualified.

A sweep file (TOML) names the settings to vary and how (docs/sweep.md)::

    [sweep]
    method = "grid"            # or "random"
    samples = 40               # random: how many combinations
    seed = 1                   # random: which ones
    objective = "net_profit"   # see OBJECTIVES
    walk_forward = false       # tune on the first part of the data, report the best on the rest
    train_fraction = 0.7
    top = 5                    # walk-forward: how many of the best are replayed on the later part

    [parameters]
    "entry.min_score" = [55, 60, 65]                      # these values
    "exits.sl_atr" = { min = 1.0, max = 2.5, step = 0.5 }  # a grid (random: one of its points)
    "sizing.base_risk_pct_max" = { min = 0.3, max = 1.0 }  # random only: uniform in the range

Every combination is checked against the configuration's rules before anything runs, so a bad range fails
at once with the combination named. Runs are separate processes (``workers``, default every core); each is
a full replay, deterministic, so the ranking does not depend on the order they finish in.
"""

from __future__ import annotations

import copy
import itertools
import math
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import numpy as np

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from mt5bridge.config import Config, ConfigError, config_from_dict
from mt5bridge.workbench.replay import Market, Replay, ReplayError, slice_market

# objective name -> True when larger is better
OBJECTIVES: dict[str, bool] = {
    "net_profit": True,
    "profit_factor": True,
    "sharpe": True,
    "avg_r": True,
    "win_rate": True,
    "max_drawdown_pct": False,
    "max_daily_loss_pct": False,
}
METRICS = ("net_profit", "trades", "win_rate", "profit_factor", "avg_r", "sharpe", "max_drawdown_pct",
           "max_daily_loss_pct", "max_overall_loss_pct", "passed", "breaches")
MAX_RUNS = 5000


class SweepError(ValueError):
    """A sweep file or request that cannot run, with what is wrong."""


@dataclass(frozen=True)
class SweepPlan:
    method: str
    objective: str
    combinations: list[dict[str, Any]]
    walk_forward: bool = False
    train_fraction: float = 0.7
    top: int = 5


def _values(name: str, spec: Any, method: str) -> list[Any] | tuple[float, float, bool]:
    """A parameter's values: a list, or (min, max, integer) for a uniform random range."""
    if isinstance(spec, list):
        if not spec:
            raise SweepError(f"parameters.{name}: an empty list of values")
        return spec
    if isinstance(spec, dict):
        unknown = set(spec) - {"min", "max", "step"}
        if unknown or not {"min", "max"} <= set(spec):
            raise SweepError(f"parameters.{name}: expected {{ min = ..., max = ... [, step = ...] }} or a list, got "
                             f"{spec!r}")
        lo, hi = spec["min"], spec["max"]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in spec.values()):
            raise SweepError(f"parameters.{name}: min, max and step must be numbers")
        if not lo <= hi:
            raise SweepError(f"parameters.{name}: min {lo} is above max {hi}")
        step = spec.get("step")
        if step is None:
            if method == "grid":
                raise SweepError(f"parameters.{name}: a grid needs a step (or a list of values)")
            return (lo, hi, isinstance(lo, int) and isinstance(hi, int))
        if not step > 0:
            raise SweepError(f"parameters.{name}: step must be > 0, got {step}")
        count = int(math.floor((hi - lo) / step + 1e-9)) + 1
        values = [lo + k * step for k in range(count)]
        if all(isinstance(v, int) for v in (lo, hi, step)):
            return [int(v) for v in values]
        return [round(v, 10) for v in values]
    raise SweepError(f"parameters.{name}: expected a list of values or a table {{ min, max, step }}, got {spec!r}")


def load_plan(path: str | os.PathLike, base: Config) -> SweepPlan:
    """Read and check a sweep file against the base configuration (every combination validated)."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise SweepError(f"{path}: cannot read the sweep file: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SweepError(f"{path}: not valid TOML: {exc}") from exc
    return plan_from_dict(data, base, str(path))


def plan_from_dict(data: dict, base: Config, source: str = "<sweep>") -> SweepPlan:
    head = data.get("sweep", {})
    unknown = set(data) - {"sweep", "parameters"}
    if unknown:
        raise SweepError(f"{source}: unknown table(s) {', '.join(sorted(unknown))}; a sweep file has [sweep] and "
                         "[parameters]")
    known = {"method", "samples", "seed", "objective", "walk_forward", "train_fraction", "top"}
    if set(head) - known:
        raise SweepError(f"{source}: unknown key(s) in [sweep]: {', '.join(sorted(set(head) - known))}; known: "
                         f"{', '.join(sorted(known))}")
    method = head.get("method", "grid")
    if method not in ("grid", "random"):
        raise SweepError(f"{source}: sweep.method = {method!r}: use \"grid\" or \"random\"")
    objective = head.get("objective", "net_profit")
    if objective not in OBJECTIVES:
        raise SweepError(f"{source}: sweep.objective = {objective!r}: use one of {', '.join(OBJECTIVES)}")
    train_fraction = head.get("train_fraction", 0.7)
    if not (isinstance(train_fraction, (int, float)) and 0.2 <= train_fraction <= 0.9):
        raise SweepError(f"{source}: sweep.train_fraction = {train_fraction!r}: must be between 0.2 and 0.9")
    top = head.get("top", 5)
    if not (isinstance(top, int) and top >= 1):
        raise SweepError(f"{source}: sweep.top = {top!r}: must be a whole number >= 1")
    params = data.get("parameters")
    if not isinstance(params, dict) or not params:
        raise SweepError(f"{source}: no [parameters] to vary")
    base_data = base.model_dump(mode="json", by_alias=True)
    for name in params:
        _check_key(base_data, name, source)
    values = {name: _values(name, spec, method) for name, spec in params.items()}
    if method == "grid":
        names = list(values)
        combos = [dict(zip(names, combo)) for combo in itertools.product(*(values[n] for n in names))]
    else:
        samples = head.get("samples", 20)
        if not (isinstance(samples, int) and samples >= 1):
            raise SweepError(f"{source}: sweep.samples = {samples!r}: must be a whole number >= 1")
        rng = np.random.default_rng(head.get("seed", 0))
        combos = []
        for _ in range(samples):
            combo = {}
            for name, v in values.items():
                if isinstance(v, tuple):
                    lo, hi, whole = v
                    combo[name] = int(rng.integers(lo, hi + 1)) if whole else round(float(rng.uniform(lo, hi)), 6)
                else:
                    combo[name] = v[int(rng.integers(len(v)))]
            combos.append(combo)
    if len(combos) > MAX_RUNS:
        raise SweepError(f"{source}: {len(combos)} combinations; at most {MAX_RUNS} — narrow the ranges or use "
                         "method = \"random\"")
    for combo in combos:
        config_for(base_data, combo)   # every combination must be a valid configuration
    return SweepPlan(method, objective, combos, bool(head.get("walk_forward", False)), float(train_fraction), top)


def _check_key(data: dict, dotted: str, source: str) -> None:
    node: Any = data
    parts = dotted.split(".")
    for k, part in enumerate(parts):
        if not isinstance(node, dict) or part not in node:
            import difflib

            where = ".".join(parts[:k]) or "the configuration"
            options = list(node) if isinstance(node, dict) else []
            hint = difflib.get_close_matches(part, options, n=1)
            raise SweepError(f"{source}: parameters.\"{dotted}\": {where} has no setting {part!r}"
                             + (f" (did you mean {hint[0]!r}?)" if hint else ""))
        node = node[part]


def config_for(base_data: dict, combo: dict[str, Any]) -> Config:
    data = copy.deepcopy(base_data)
    for dotted, value in combo.items():
        node = data
        *parents, last = dotted.split(".")
        for part in parents:
            node = node[part]
        node[last] = value
    try:
        return config_from_dict(data, f"the sweep combination {_describe(combo)}")
    except ConfigError as exc:
        raise SweepError("\n".join(exc.lines)) from exc


def _describe(combo: dict[str, Any]) -> str:
    return ", ".join(f"{k} = {v!r}" for k, v in combo.items())


# --- running ---------------------------------------------------------------------------------------------------


@dataclass
class _Job:
    base_data: dict
    replay_args: dict
    periods: dict[str, list[Market]] = field(default_factory=dict)


_JOB: _Job | None = None


def _init(job: _Job) -> None:
    global _JOB
    _JOB = job


def _run_one(period: str, index: int, combo: dict[str, Any]) -> tuple[str, int, dict[str, Any]]:
    from mt5bridge.workbench.report import build_report

    job = _JOB
    assert job is not None
    cfg = config_for(job.base_data, combo)
    result = Replay(cfg, job.periods[period], **job.replay_args).run()
    report = build_report(result, generated_at="-")
    metrics = {
        "net_profit": report["net_profit"], "trades": report["trades"], "win_rate": report["win_rate"],
        "profit_factor": report["profit_factor"], "avg_r": report["avg_r"], "sharpe": report["sharpe"],
        "max_drawdown_pct": report["max_drawdown_pct"], "max_daily_loss_pct": report["ftmo"]["max_daily_loss_pct"],
        "max_overall_loss_pct": report["ftmo"]["max_overall_loss_pct"], "passed": report["ftmo"]["passed"],
        "breaches": len(report["ftmo"]["breaches"]),
    }
    return period, index, metrics


def split_markets(markets: list[Market], fraction: float, warmup_days: float) -> tuple[list[Market], list[Market]]:
    """The data before and after the walk-forward cut; the later part keeps ``warmup_days`` before the cut so
    its features are warm when it starts trading at the cut."""
    first = min(int(m.ticks.times_ms[0]) for m in markets)
    last = max(int(m.ticks.times_ms[-1]) for m in markets)
    start_trading = first + int(warmup_days * 86_400_000)
    if start_trading >= last:
        raise SweepError(f"the data ({(last - first) / 86_400_000:.1f} days) is no longer than the warm-up "
                         f"({warmup_days:g} days)")
    cut = start_trading + int((last - start_trading) * fraction)
    warm_from = cut - int(warmup_days * 86_400_000)
    train = [slice_market(m, first, cut) for m in markets]
    test = [slice_market(m, warm_from, last + 1) for m in markets]
    return [m for m in train if m is not None], [m for m in test if m is not None]


def run_sweep(
    plan: SweepPlan, base: Config, markets: list[Market], *, workers: int | None = None,
    replay_args: dict | None = None, progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Every run's row: ``period`` ("all", or "train"/"test" walking forward), ``run``, ``params``, the
    metrics, ``disqualified`` (an FTMO rule was breached) and ``rank`` within its period (1 = best)."""
    replay_args = dict(replay_args or {})
    warmup = replay_args.get("warmup_days", 14.0)
    job = _Job(base.model_dump(mode="json", by_alias=True), replay_args)
    if plan.walk_forward:
        job.periods["train"], job.periods["test"] = split_markets(markets, plan.train_fraction, warmup)
        first = "train"
    else:
        job.periods["all"] = markets
        first = "all"
    rows = _run_batch(job, [(first, i, c) for i, c in enumerate(plan.combinations)], workers, progress)
    ranked = rank(rows, plan.objective)
    if plan.walk_forward:
        best = [r for r in ranked if not r["disqualified"]][: plan.top]
        tests = _run_batch(job, [("test", r["run"], r["params"]) for r in best], workers, progress)
        ranked += rank(tests, plan.objective)
    return ranked


def _run_batch(job: _Job, tasks: list[tuple[str, int, dict]], workers: int | None,
               progress: Callable[[int, int], None] | None) -> list[dict[str, Any]]:
    workers = max(1, min(workers or os.cpu_count() or 1, len(tasks)))
    out: dict[tuple[str, int], dict[str, Any]] = {}
    params = {(p, i): c for p, i, c in tasks}
    if workers == 1:
        _init(job)
        results = (_run_one(*t) for t in tasks)
        for k, res in enumerate(results, 1):
            out[(res[0], res[1])] = res[2]
            if progress:
                progress(k, len(tasks))
    else:
        import multiprocessing as mp

        # fork shares the loaded prices with the workers without copying them; elsewhere they are pickled once
        # per worker.
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init, initargs=(job,)) as pool:
            futures = [pool.submit(_run_one, *t) for t in tasks]
            for k, fut in enumerate(as_completed(futures), 1):
                period, index, metrics = fut.result()
                out[(period, index)] = metrics
                if progress:
                    progress(k, len(tasks))
    return [{"period": p, "run": i, "params": params[(p, i)], **out[(p, i)],
             "disqualified": out[(p, i)]["breaches"] > 0} for p, i, _ in tasks]


def rank(rows: list[dict[str, Any]], objective: str) -> list[dict[str, Any]]:
    """Rows ordered best first by ``objective``; breakers of an FTMO rule and runs without a value last."""
    larger = OBJECTIVES[objective]

    def key(row: dict[str, Any]) -> tuple:
        value = row[objective]
        missing = value is None
        score = 0.0 if missing else (-value if larger else value)
        return (row["disqualified"], missing, score, row["run"])

    ordered = sorted(rows, key=key)
    for k, row in enumerate(ordered, 1):
        row["rank"] = k
    return ordered


def best_config(rows: list[dict[str, Any]], base: Config) -> tuple[Config, dict[str, Any]] | None:
    """The best qualifying run's configuration (of the training period when walking forward)."""
    for row in rows:
        if row["period"] in ("all", "train") and not row["disqualified"]:
            return config_for(base.model_dump(mode="json", by_alias=True), row["params"]), row
    return None


__all__ = ["METRICS", "OBJECTIVES", "ReplayError", "SweepError", "SweepPlan", "best_config", "config_for",
           "load_plan", "plan_from_dict", "rank", "run_sweep", "split_markets"]
