"""Threshold tuning: many full replays over ranges of settings, ranked, with FTMO breakers disqualified.

A sweep file (TOML) names the settings to vary and how (docs/sweep.md)::

    [sweep]
    method = "grid"            # or "random", or "optuna" (TPE, the optional extra mt5bridge[optuna])
    samples = 40               # random: how many combinations
    trials = 60                # optuna: how many runs
    batch = 8                  # optuna: runs asked for at a time (the same whatever the executor)
    seed = 1                   # random and optuna: which ones
    objective = "net_profit"   # a figure of workbench.figures
    walk_forward = false       # tune on the first part of the data, report the best on the rest
    train_fraction = 0.7
    top = 5                    # walk-forward: how many of the best are replayed on the later part

    [parameters]
    "entry.min_score" = [55, 60, 65]                      # these values
    "exits.sl_atr" = { min = 1.0, max = 2.5, step = 0.5 }  # a grid (random: one of its points)
    "sizing.base_risk_pct_max" = { min = 0.3, max = 1.0 }  # random and optuna: anywhere in the range

    [constraints]              # a run that breaks one is disqualified, as an FTMO breach always is
    min_trades = 20
    max_daily_loss_pct = 3.5

Every combination is checked against the configuration's rules before anything runs, so a bad range fails
at once with the combination named. Each run is a full replay, deterministic, so the ranking does not depend
on where runs ran (``workbench.executors``) or the order they finished in; each result is kept in the result
store (``workbench.store``) as it arrives, so no run is done twice.
"""

from __future__ import annotations

import copy
import itertools
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from mt5bridge.config import Config, ConfigError, config_from_dict
from mt5bridge.workbench.executors import ExecutorError, Job, Task, executor_for
from mt5bridge.workbench.figures import (
    FIGURES,
    METRICS,
    Constraint,
    FigureError,
    available,
    constraint,
    figure,
)
from mt5bridge.workbench.replay import Market, ReplayError, slice_market
from mt5bridge.workbench.store import (
    ResultStore,
    content_hash,
    engine_version,
    market_hash,
    run_key,
)

# objective name -> True when larger is better (every figure available here)
OBJECTIVES: dict[str, bool] = {name: FIGURES[name].larger_is_better for name in available()}
MAX_RUNS = 5000
METHODS = ("grid", "random", "optuna")
OPTUNA_EXTRA = 'method = "optuna" needs the optuna package: pip install "mt5bridge[optuna]"'


class SweepError(ValueError):
    """A sweep file or request that cannot run, with what is wrong."""


@dataclass(frozen=True)
class SweepPlan:
    method: str
    objective: str
    combinations: list[dict[str, Any]]      # grid and random; optuna draws its own as it goes
    walk_forward: bool = False
    train_fraction: float = 0.7
    top: int = 5
    constraints: tuple[Constraint, ...] = ()
    space: dict[str, Any] = field(default_factory=dict)   # each parameter's values, as the file gave them
    trials: int = 0
    batch: int = 8
    seed: int = 0

    @property
    def runs(self) -> int:
        """How many runs the search makes (before walk-forward's later period)."""
        return self.trials if self.method == "optuna" else len(self.combinations)

    @property
    def names(self) -> list[str]:
        return list(self.space)


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


def load_plan(path: str | os.PathLike, base: Config, *, seed: int | None = None) -> SweepPlan:
    """Read and check a sweep file against the base configuration (every combination validated); ``seed``
    replaces the file's."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise SweepError(f"{path}: cannot read the sweep file: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SweepError(f"{path}: not valid TOML: {exc}") from exc
    return plan_from_dict(data, base, str(path), seed=seed)


def _whole(head: dict, key: str, default: int, source: str, least: int = 1) -> int:
    value = head.get(key, default)
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= least):
        raise SweepError(f"{source}: sweep.{key} = {value!r}: must be a whole number >= {least}")
    return value


def plan_from_dict(data: dict, base: Config, source: str = "<sweep>", *, seed: int | None = None) -> SweepPlan:
    head = data.get("sweep", {})
    unknown = set(data) - {"sweep", "parameters", "constraints"}
    if unknown:
        raise SweepError(f"{source}: unknown table(s) {', '.join(sorted(unknown))}; a sweep file has [sweep], "
                         "[parameters] and [constraints]")
    known = {"method", "samples", "trials", "batch", "seed", "objective", "walk_forward", "train_fraction", "top"}
    if set(head) - known:
        raise SweepError(f"{source}: unknown key(s) in [sweep]: {', '.join(sorted(set(head) - known))}; known: "
                         f"{', '.join(sorted(known))}")
    method = head.get("method", "grid")
    if method not in METHODS:
        raise SweepError(f"{source}: sweep.method = {method!r}: use \"grid\", \"random\" or \"optuna\"")
    objective = head.get("objective", "net_profit")
    try:
        figure(objective, f"{source}: sweep.objective")
        constraints = tuple(constraint(k, v, f"{source}: constraints")
                            for k, v in _constraints_table(data, source).items())
    except FigureError as exc:
        raise SweepError(str(exc)) from exc
    train_fraction = head.get("train_fraction", 0.7)
    if not (isinstance(train_fraction, (int, float)) and 0.2 <= train_fraction <= 0.9):
        raise SweepError(f"{source}: sweep.train_fraction = {train_fraction!r}: must be between 0.2 and 0.9")
    top = _whole(head, "top", 5, source)
    if seed is None:
        seed = _whole(head, "seed", 0, source, least=0)
    params = data.get("parameters")
    if not isinstance(params, dict) or not params:
        raise SweepError(f"{source}: no [parameters] to vary")
    base_data = base.model_dump(mode="json", by_alias=True)
    for name in params:
        _check_key(base_data, name, source)
    values = {name: _values(name, spec, method) for name, spec in params.items()}
    trials, batch = 0, 8
    if method == "grid":
        names = list(values)
        combos = [dict(zip(names, combo)) for combo in itertools.product(*(values[n] for n in names))]
    elif method == "random":
        combos = _draw(values, _whole(head, "samples", 20, source), seed)
    else:
        trials, batch = _whole(head, "trials", 50, source), _whole(head, "batch", 8, source)
        combos = []
        _optuna()   # refused before anything runs when the extra is missing
        # The corners of the space must be valid configurations; a combination inside that breaks a rule
        # is told to the search as failed.
        combos_to_check = [dict(zip(values, c)) for c in itertools.product(*(
            (v[0], v[-1]) if isinstance(v, list) else (v[0], v[1]) for v in values.values()))]
        for combo in combos_to_check[:64]:
            config_for(base_data, combo)
    if max(len(combos), trials) > MAX_RUNS:
        raise SweepError(f"{source}: {max(len(combos), trials)} runs; at most {MAX_RUNS} — narrow the ranges or "
                         "use method = \"random\" or \"optuna\"")
    for combo in combos:
        config_for(base_data, combo)   # every combination must be a valid configuration
    return SweepPlan(method, objective, combos, bool(head.get("walk_forward", False)), float(train_fraction), top,
                     constraints, dict(params), trials, batch, seed)


def _constraints_table(data: dict, source: str) -> dict:
    table = data.get("constraints", {})
    if not isinstance(table, dict):
        raise SweepError(f"{source}: constraints must be a table: [constraints]")
    for key in table:
        if key.startswith("ftmo"):
            raise SweepError(f"{source}: constraints.{key}: a run that breaches an FTMO rule is always "
                             "disqualified; nothing to set")
    return table


def _draw(values: dict[str, Any], samples: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
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
    return combos


def _optuna():
    try:
        import optuna
    except ImportError as exc:
        raise SweepError(OPTUNA_EXTRA) from exc
    return optuna


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


@dataclass(frozen=True)
class SweepProgress:
    """Where a sweep stands: ``total`` runs in ``period``, ``stored`` of them read from the store, ``done``
    finished (stored ones included), and the time left estimated from the ``measured`` new runs so far."""

    period: str
    total: int
    stored: int
    done: int
    measured: int
    eta_s: float | None


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


def trading_window(markets: list[Market], warmup_days: float) -> tuple[str, str]:
    """The first and last moment (UTC) a period trades: after its warm-up, to its last tick."""
    first = min(int(m.ticks.times_ms[0]) for m in markets) + int(warmup_days * 86_400_000)
    last = max(int(m.ticks.times_ms[-1]) for m in markets)

    def text(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M")

    return text(first), text(last)


class _Runner:
    """Runs of one sweep: each looked up in the store, the rest sent to the executor, every result stored as it
    arrives."""

    def __init__(self, base: Config, job: Job, store: ResultStore | None, executor: Any, cluster: str | None,
                 workers: int | None, progress: Callable[[SweepProgress], None] | None, replay_key: dict) -> None:
        self.base_data = base.model_dump(mode="json", by_alias=True)
        self.job = job
        self.store = store
        self._given = executor
        self._executor = executor
        self.cluster, self.workers = cluster, workers
        self.progress = progress
        self.replay_key = replay_key
        self.data = {period: [market_hash(m) for m in markets] for period, markets in job.periods.items()}
        self.wanted = set(available())

    def executor(self):
        if self._executor is None:
            try:
                self._executor = executor_for(self.cluster, self.workers)
            except ExecutorError as exc:
                raise SweepError(str(exc)) from exc
        return self._executor

    def close(self) -> None:
        if self._executor is not None and self._given is None:
            self._executor.close()

    def figures(self, period: str, runs: list[tuple[int, dict[str, Any]]]) -> dict[int, dict[str, Any]]:
        """Each run's figures, from the store or from a replay."""
        configs = {run: config_for(self.base_data, combo).model_dump(mode="json", by_alias=True)
                   for run, combo in runs}
        keys = {run: run_key(configs[run], self.data[period], self.replay_key, self.job.engine) for run, _ in runs}
        stored = self.store.get_many(keys.values()) if self.store is not None else {}
        out: dict[int, dict[str, Any]] = {}
        for run, key in keys.items():
            if key in stored and self.wanted <= set(stored[key][0]):
                out[run] = stored[key][0]
        tasks = [Task(run, period, configs[run]) for run, _ in runs if run not in out]
        total, from_store = len(runs), len(out)
        self._tell(period, total, from_store, len(out), 0, None)
        if not tasks:
            return out
        params = dict(runs)
        started = time.perf_counter()
        measured = 0
        try:
            for done in self.executor().run(self.job, tasks):
                if done.engine != self.job.engine:
                    raise SweepError(f"{done.where} runs engine {done.engine}, this machine {self.job.engine}: "
                                     "install the same mt5bridge build on every worker")
                if self.store is not None:
                    self.store.put(keys[done.run], done.engine, params[done.run], done.figures, done.seconds)
                out[done.run] = done.figures
                measured += 1
                elapsed = time.perf_counter() - started
                self._tell(period, total, from_store, len(out), measured,
                           elapsed / measured * (len(tasks) - measured))
        except ExecutorError as exc:
            raise SweepError(str(exc)) from exc
        return out

    def _tell(self, period: str, total: int, stored: int, done: int, measured: int, eta: float | None) -> None:
        if self.progress is not None:
            self.progress(SweepProgress(period, total, stored, done, measured, eta))


def run_sweep(
    plan: SweepPlan, base: Config, markets: list[Market], *, workers: int | None = None, cluster: str | None = None,
    executor: Any = None, store: ResultStore | None = None, replay_args: dict | None = None,
    progress: Callable[[SweepProgress], None] | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Every run's row: ``period`` ("all", or "train"/"test" walking forward), ``run``, ``params``, the
    figures, ``from``/``to`` (the period's trading window, UTC), ``disqualified`` (an FTMO rule breached or a
    constraint broken), ``note`` (why, or that it made no trade) and ``rank`` within its period (1 = best).

    Runs go to ``executor``, else to ``cluster`` (a Dask address or ``local:N``), else to ``workers`` local
    processes; with a ``store``, stored runs are read back instead of replayed and new ones stored."""
    args = dict(replay_args or {})
    warmup = float(args.get("warmup_days", 14.0))
    model = args.get("model")
    try:
        model_text = Path(model).read_bytes() if model else None
    except OSError as exc:
        raise SweepError(f"{model}: cannot read the model file: {exc.strerror or exc}") from exc
    job = Job({}, specs=args.get("specs"), model_text=model_text, warmup_days=warmup, balance=args.get("balance"),
              slippage_points=float(args.get("slippage_points", 0.0)), engine=engine_version())
    if plan.walk_forward:
        job.periods["train"], job.periods["test"] = split_markets(markets, plan.train_fraction, warmup)
        first = "train"
    else:
        job.periods["all"] = markets
        first = "all"
    windows = {period: trading_window(m, warmup) for period, m in job.periods.items()}
    replay_key = {"specs": job.specs, "model": content_hash(model_text), "warmup_days": warmup,
                  "balance": job.balance, "slippage_points": job.slippage_points}
    runner = _Runner(base, job, store, executor, cluster, workers, progress, replay_key)
    try:
        if plan.method == "optuna":
            rows = _optuna_search(plan, runner, first, windows[first])
        else:
            runs = list(enumerate(plan.combinations))
            rows = _rows(first, runs, runner.figures(first, runs), windows[first], plan)
        ranked = rank(rows, plan.objective)
        if plan.walk_forward:
            best = [r for r in ranked if _recommendable(r)][: plan.top]
            runs = [(r["run"], r["params"]) for r in best]
            ranked += rank(_rows("test", runs, runner.figures("test", runs), windows["test"], plan), plan.objective)
    finally:
        runner.close()
    return ranked


def _rows(period: str, runs: list[tuple[int, dict]], figures: dict[int, dict], window: tuple[str, str],
          plan: SweepPlan) -> list[dict[str, Any]]:
    return [judge({"period": period, "run": run, "params": combo, **figures[run], "from": window[0],
                   "to": window[1]}, plan.constraints) for run, combo in runs]


def judge(row: dict[str, Any], constraints: tuple[Constraint, ...] = ()) -> dict[str, Any]:
    """Mark a run disqualified when it breached an FTMO rule or broke a constraint, and say why in ``note``;
    a run without a trade is no result (ranked last, never recommended) and is noted as such."""
    notes = []
    if row["breaches"]:
        notes.append("breached an FTMO rule")
    for c in constraints:
        if c.shortfall(row.get(c.figure)) > 0:
            notes.append(c.describe(row.get(c.figure)))
    row["disqualified"] = bool(notes)
    if row["trades"] == 0:
        notes.append("no trades: not a result")
    row["note"] = "; ".join(notes)
    return row


def _recommendable(row: dict[str, Any]) -> bool:
    return not row["disqualified"] and row.get("trades", 1) != 0


def _optuna_search(plan: SweepPlan, runner: _Runner, period: str, window: tuple[str, str]) -> list[dict[str, Any]]:
    """TPE over the sweep's ranges, ``plan.batch`` runs asked for at a time and told back in the order they were
    asked, so the same seed gives the same runs whatever ran them; runs breaking a constraint, breaching or
    not trading are infeasible to the sampler."""
    import warnings

    optuna = _optuna()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Optuna 5 takes each trial's constraints from the trial itself; earlier versions through the sampler.
    named = hasattr(optuna.trial.Trial, "set_constraint")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # A short search starts modelling after a third of its runs rather than after ten.
        sampler = optuna.samplers.TPESampler(
            seed=plan.seed, n_startup_trials=max(2, min(10, plan.trials // 3)),
            **({} if named else {"constraints_func": lambda t: t.user_attrs["constraints"]}))
    larger = FIGURES[plan.objective].larger_is_better
    study = optuna.create_study(direction="maximize" if larger else "minimize", sampler=sampler)
    rows: list[dict[str, Any]] = []
    while len(study.trials) < plan.trials:
        asked = [study.ask() for _ in range(min(plan.batch, plan.trials - len(study.trials)))]
        runs, refused = [], []
        for trial in asked:
            combo = _suggest(trial, plan.space)
            try:
                config_for(runner.base_data, combo)
                runs.append((trial, combo))
            except SweepError:
                refused.append(trial)   # a combination the configuration's rules refuse: no run, no result
        figures = runner.figures(period, [(t.number, c) for t, c in runs])
        for trial in refused:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        for trial, combo in runs:
            row = judge({"period": period, "run": trial.number, "params": combo, **figures[trial.number],
                         "from": window[0], "to": window[1]}, plan.constraints)
            rows.append(row)
            limits = {"ftmo_breaches": float(row["breaches"]), "no_trades": 1.0 if row["trades"] == 0 else 0.0,
                      **{c.key: c.shortfall(row.get(c.figure)) for c in plan.constraints}}
            if named:
                for name, value in limits.items():
                    trial.set_constraint(name, value)
            else:
                trial.set_user_attr("constraints", list(limits.values()))
            value = row[plan.objective]
            if value is None:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, float(value))
    return rows


def _suggest(trial: Any, space: dict[str, Any]) -> dict[str, Any]:
    """One combination drawn by the sampler: a list is a choice, a stepped range its points, a range without
    a step anywhere in it (whole numbers if min and max are)."""
    combo = {}
    for name, spec in space.items():
        if isinstance(spec, list):
            combo[name] = trial.suggest_categorical(name, spec)
            continue
        points = _values(name, spec, "optuna")
        if isinstance(points, list):
            combo[name] = points[trial.suggest_int(name, 0, len(points) - 1)]
        elif points[2]:
            combo[name] = trial.suggest_int(name, points[0], points[1])
        else:
            combo[name] = round(trial.suggest_float(name, points[0], points[1]), 6)
    return combo


def rank(rows: list[dict[str, Any]], objective: str) -> list[dict[str, Any]]:
    """Rows ordered best first by ``objective``; then the disqualified (a breach or a broken constraint) and
    runs without a value; runs that made no trade last of all."""
    larger = OBJECTIVES[objective]

    def key(row: dict[str, Any]) -> tuple:
        value = row[objective]
        missing = value is None
        score = 0.0 if missing else (-value if larger else value)
        return (row.get("trades", 1) == 0, row["disqualified"], missing, score, row["run"])

    ordered = sorted(rows, key=key)
    for k, row in enumerate(ordered, 1):
        row["rank"] = k
    return ordered


def best_config(rows: list[dict[str, Any]], base: Config) -> tuple[Config, dict[str, Any]] | None:
    """The best qualifying run's configuration (of the training period when walking forward)."""
    for row in rows:
        if row["period"] in ("all", "train") and _recommendable(row):
            return config_for(base.model_dump(mode="json", by_alias=True), row["params"]), row
    return None


__all__ = ["METRICS", "OBJECTIVES", "ReplayError", "SweepError", "SweepPlan", "SweepProgress", "best_config",
           "config_for", "judge", "load_plan", "plan_from_dict", "rank", "run_sweep", "split_markets",
           "trading_window"]
