"""Fit the direction model's four sub-models on a price history: the maths behind ``mt5bridge train``.

What is fitted, and what is not:

- **Samples** are the bar closes of one timeframe (M15 by default), with the 147 features exactly as the
  compiled engine computed them at that close. The **label** is the sign of the bid's move from that close
  to the close ``horizon`` bars later: up (1) or down (0). A bar whose close is unchanged after the horizon
  says nothing about direction and is left out.
- A sample is used only when every feature the four sub-models read is warm (the engine gives a cold feature
  z = 0, which would teach the model nonsense about the first days of a file).
- **Time-ordered split.** The last ``validation_fraction`` of the samples, by bar time, are the validation
  part. A training sample's label ends at the close of its bar ``horizon`` bars later; only samples whose
  label ends at or before the first validation bar opens are trained on, which leaves a gap of ``horizon``
  bars. So every price the fit sees, features and labels alike, is older than the validation cut-off, and
  the validation scores are what the model would have done on prices it had never seen.
- **Standardization** ``z = clip((value - center) / scale, ±clip)`` with the centre and scale of each feature
  measured on the training part only (mean and standard deviation), written into the model file so the
  engine standardizes live features the same way.
- **Each sub-model** (trend, momentum, mean_reversion, breakout) keeps the features it reads in the base
  model (the shipped ``default.json`` unless another is given) and gets new weights and bias by L2-regularised
  logistic regression: minimise the mean log-loss plus ``l2 / 2 × Σ weight²`` (the bias is not penalised).
  Newton's method on this strictly convex objective converges in a handful of steps and is deterministic.
- What stays as in the base model: the sub-models' ensemble weights, the direction thresholds
  (``buy_above``, ``sell_below``, ``vote_margin``), the standardization clip and the whole market score.

The result is a :class:`~mt5bridge.core.model.DirectionModel` that ``load_model`` and ``FeatureEngine`` accept, and
a report: out-of-sample accuracy, log-loss against the base rate's, the signals the engine would have given,
and a calibration table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from mt5bridge.core.catalog import FEATURE_INDEX, FEATURES
from mt5bridge.core.model import MODEL_FORMAT, SUBMODELS, DirectionModel, load_model
from mt5bridge.market.readers import TIMEFRAME_LABELS, Bars, Ticks, expand_bars_to_ticks

DEFAULT_TIMEFRAME_S = 900
DEFAULT_HORIZON = 4
DEFAULT_L2 = 0.05
DEFAULT_VALIDATION_FRACTION = 0.3
DEFAULT_BINS = 10
MIN_TRAIN_SAMPLES = 200
MIN_VALIDATION_SAMPLES = 50
MIN_SAMPLES_PER_SIDE = 20  # a side seen a handful of times gives a bias, not a model

_PROB_FLOOR = 1e-12  # log-loss of a probability rounded to 0 or 1 stays finite


class TrainError(ValueError):
    """Training cannot go on; the message names what is wrong and what to give instead."""


# ---------------------------------------------------------------------------------------------------------
# Samples from the engine


@dataclass(frozen=True)
class MarketRows:
    """The engine's view of one price history at every bar close of one timeframe."""

    source: str  # the file (or synthetic market) the rows come from, for messages and the report
    timeframe_s: int
    times_ms: np.ndarray  # int64, each row's bar OPEN time in UTC ms, strictly increasing
    features: np.ndarray  # rows x 147, as the engine saw them at the bar's close (NaN where not warm)
    close: np.ndarray  # the bar's closing bid
    ticks: int  # ticks replayed (bars count four each)
    bars_closed: dict[str, int] = field(default_factory=dict)  # per engine timeframe, "M1" .. "H1"

    def __len__(self) -> int:
        return len(self.times_ms)


def market_rows(data: Ticks | Bars, timeframe_s: int, source: str, *, read_features: list[str] | None = None
                ) -> MarketRows:
    """Replay ``data`` through a fresh compiled feature engine and keep one row per bar close of ``timeframe_s``.

    A bar file is expanded to four ticks per bar (as ``mt5bridge features`` does); it rebuilds its own
    timeframe and every longer one, so ``timeframe_s`` may not be shorter than the file's bars, and
    ``read_features`` (the features the model will read) may not include one built on a shorter timeframe,
    the tick-level ones, or the multi-timeframe ones unless the file has M1 bars. A tick file's last bar is
    still forming and gives no row.
    """
    from mt5bridge.core.engine import TIMEFRAME_SECONDS, FeatureEngine

    if timeframe_s not in TIMEFRAME_SECONDS:
        known = ", ".join(TIMEFRAME_LABELS.values())
        raise TrainError(f"timeframe {timeframe_s} s is not one the engine builds ({known})")
    if isinstance(data, Bars):
        _check_bars_fit(data, timeframe_s, source, read_features or [])
        ticks = expand_bars_to_ticks(data)
    else:
        ticks = data
    engine = FeatureEngine()
    record_tf = TIMEFRAME_SECONDS.index(timeframe_s)
    res = engine.process_ticks(
        np.ascontiguousarray(ticks.times_ms, dtype=np.int64), np.ascontiguousarray(ticks.bid, dtype=np.float64),
        np.ascontiguousarray(ticks.ask, dtype=np.float64), np.ascontiguousarray(ticks.volume, dtype=np.float64),
        record_tf, False,
    )
    times, features = [res["time"]], [res["features"]]
    if isinstance(data, Bars):  # a bar file's last bar is complete
        last = engine.close_bars(record_tf, False)
        times.append(last["time"])
        features.append(last["features"])
    times_ms = np.concatenate(times).astype(np.int64)
    period_ms = timeframe_s * 1000
    # The bar's close is its last bid: the last tick before the next period starts, as the engine builds bars.
    last_tick = np.searchsorted(ticks.times_ms, times_ms + period_ms, side="left") - 1
    close = np.asarray(ticks.bid, dtype=np.float64)[last_tick] if len(times_ms) else np.empty(0)
    bars_closed = {TIMEFRAME_LABELS[s]: int(engine.closed_bars(i)) for i, s in enumerate(TIMEFRAME_SECONDS)}
    return MarketRows(source, timeframe_s, times_ms, np.concatenate(features, axis=0), close, len(ticks),
                      bars_closed)


def _check_bars_fit(bars: Bars, timeframe_s: int, source: str, read_features: list[str]) -> None:
    """Refuse, in one message that leads with what works, a bar file that cannot rebuild what the fit needs."""
    from mt5bridge.workbench.quality import cannot_rebuild

    file_tf = TIMEFRAME_LABELS[bars.timeframe_s]
    # Four ticks per bar make no tick-level market, and the multi-timeframe features read M1 bars too.
    unusable = cannot_rebuild(bars.timeframe_s, read_features)
    shorter = timeframe_s < bars.timeframe_s
    if not shorter and not unusable:
        return
    why = []
    if shorter:
        why.append(f"{TIMEFRAME_LABELS[timeframe_s]} bar closes")
    if unusable:
        why.append(f"the sub-models' features {', '.join(unusable)}")
    then = []
    if shorter:
        then.append(f"--timeframe {file_tf} or longer")
    if unusable:
        then.append("--base-model with sub-models that read only what the file holds")
    raise TrainError(
        f"{source} holds {file_tf} bars, which cannot rebuild {' nor '.join(why)}. Export ticks or M1 bars"
        " (mt5bridge history --ticks or --bars M1, or MT5's tick export) and train on them; with this file only,"
        f" give {' and '.join(then)}"
    )


# ---------------------------------------------------------------------------------------------------------
# The fit


@dataclass(frozen=True)
class TrainResult:
    """The fitted model, its report, and per sample what the fit saw and predicted.

    ``samples`` holds equal-length arrays over every training and validation sample, in time order:
    ``market`` (index into the markets given), ``row`` (the bar close within it), ``t_open`` and ``label_end``
    (UTC ms), ``y`` (1 up, 0 down), ``p_up`` (the ensemble's probability) and ``validation`` (True for the
    validation part).
    """

    model: DirectionModel
    report: dict
    samples: dict[str, np.ndarray]


def submodel_features(base: DirectionModel) -> dict[str, list[str]]:
    """The features each sub-model reads, in the base model's order."""
    return {sub: list(base.submodels[sub].weights) for sub in SUBMODELS}


def train_direction_model(
    markets: list[MarketRows],
    *,
    horizon: int = DEFAULT_HORIZON,
    l2: float = DEFAULT_L2,
    validation_fraction: float = DEFAULT_VALIDATION_FRACTION,
    bins: int = DEFAULT_BINS,
    base: DirectionModel | None = None,
    name: str = "trained",
) -> TrainResult:
    """Fit the four sub-models on ``markets`` (one :class:`MarketRows` per price history, same timeframe)."""
    _check_settings(markets, horizon, l2, validation_fraction, bins)
    base = load_model(base)
    subsets = submodel_features(base)
    read = list(dict.fromkeys(n for names in subsets.values() for n in names))
    if not read:
        raise TrainError("the base model's sub-models read no features: there is nothing to fit")
    timeframe_s = markets[0].timeframe_s
    samples = _samples(markets, read, horizon)
    split = _split(samples, markets, read, horizon, validation_fraction, timeframe_s)

    train, valid = split["train"], split["valid"]
    x_train = samples.x[train]
    center = x_train.mean(axis=0)
    scale = x_train.std(axis=0)
    constant = [read[j] for j in range(len(read)) if not (scale[j] > 0 and math.isfinite(scale[j]))]
    # A feature that never moved in the training part teaches nothing; it keeps weight 0 and a unit scale so
    # the file stays valid.
    scale = np.where(np.isin(read, constant), 1.0, scale)
    clip = base.standardize.clip
    z = np.clip((samples.x - center) / scale, -clip, clip)

    y = samples.y
    fitted: dict[str, dict] = {}
    p_sub = np.empty((len(SUBMODELS), len(y)))
    for k, sub in enumerate(SUBMODELS):
        cols = [read.index(n) for n in subsets[sub] if n not in constant]
        weights, bias, iterations = fit_logistic(z[np.ix_(train, cols)], y[train], l2)
        by_name = dict.fromkeys(subsets[sub], 0.0)
        for j, w in zip(cols, weights):
            by_name[read[j]] = float(w)
        fitted[sub] = {"weight": base.submodels[sub].weight, "bias": float(bias), "weights": by_name,
                       "iterations": iterations}
        p_sub[k] = _sigmoid(z[:, cols] @ weights + bias)
    ensemble_w = np.array([base.submodels[s].weight for s in SUBMODELS])
    p_up = ensemble_w @ p_sub / ensemble_w.sum()

    model = _build_model(base, name, read, center, scale, fitted)
    report = _report(
        markets, samples, split, p_up, p_sub, base, horizon, l2, validation_fraction, bins, constant, fitted,
        model,
    )
    model = model.model_copy(update={"description": _description(report)})
    report["model"]["description"] = model.description
    used = np.concatenate([train, valid])
    per_sample = {
        "market": samples.market[used], "row": samples.row[used], "t_open": samples.t_open[used],
        "label_end": samples.label_end[used], "y": y[used], "p_up": p_up[used],
        "validation": np.r_[np.zeros(train.size, dtype=bool), np.ones(valid.size, dtype=bool)],
    }
    return TrainResult(model, report, per_sample)


def fit_logistic(z: np.ndarray, y: np.ndarray, l2: float, *, max_iter: int = 100, tol: float = 1e-10
                 ) -> tuple[np.ndarray, float, int]:
    """Weights and bias minimising mean log-loss + l2/2 · |w|² (bias unpenalised), by damped Newton steps.

    Returns (weights, bias, iterations). ``z`` is samples x features, ``y`` is 0/1.
    """
    n, d = z.shape
    a = np.hstack([z, np.ones((n, 1))])
    y = np.asarray(y, dtype=np.float64)
    penalty = np.full(d + 1, float(l2))
    penalty[-1] = 0.0
    theta = np.zeros(d + 1)
    up = min(max(y.mean(), 1e-6), 1 - 1e-6)
    theta[-1] = math.log(up / (1 - up))

    def objective(t: np.ndarray) -> float:
        s = a @ t
        return float(np.mean(np.logaddexp(0.0, s) - y * s) + 0.5 * np.sum(penalty * t * t))

    f = objective(theta)
    for iteration in range(1, max_iter + 1):
        p = _sigmoid(a @ theta)
        grad = a.T @ (p - y) / n + penalty * theta
        hess = (a * (p * (1 - p))[:, None]).T @ a / n + np.diag(penalty)
        step = np.linalg.solve(hess, grad)
        # Backtracking keeps every step a descent even far from the optimum.
        t = 1.0
        while True:
            candidate = theta - t * step
            f_new = objective(candidate)
            if f_new <= f - 1e-4 * t * float(grad @ step) or t < 1e-10:
                break
            t *= 0.5
        theta, f = candidate, f_new
        if float(np.max(np.abs(t * step))) < tol:
            return theta[:-1], float(theta[-1]), iteration
    return theta[:-1], float(theta[-1]), max_iter


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow warning for large |x|, unlike 1 / (1 + exp(-x))


def _check_settings(markets: list[MarketRows], horizon: int, l2: float, validation_fraction: float,
                    bins: int) -> None:
    if not markets:
        raise TrainError("no price history given")
    if len({m.timeframe_s for m in markets}) != 1:
        raise TrainError("every price history must be cut into bars of the same timeframe")
    if not (isinstance(horizon, int) and horizon >= 1):
        raise TrainError(f"horizon {horizon!r}: must be a whole number of bars, at least 1")
    if not (math.isfinite(l2) and l2 > 0):
        raise TrainError(f"l2 {l2!r}: must be a number above 0 (0.05 is a sensible start)")
    if not (0.05 <= validation_fraction <= 0.8):
        raise TrainError(f"validation fraction {validation_fraction!r}: must be between 0.05 and 0.8")
    if not (isinstance(bins, int) and 2 <= bins <= 50):
        raise TrainError(f"bins {bins!r}: must be a whole number from 2 to 50")


@dataclass(frozen=True)
class _Samples:
    """Every bar close that has a label and warm features, across all markets, in time order."""

    market: np.ndarray  # index into the markets list
    row: np.ndarray  # row within its market
    t_open: np.ndarray  # the bar's open time, UTC ms
    label_end: np.ndarray  # when the label's closing price is known: the close of the bar `horizon` later
    x: np.ndarray  # samples x read features
    ret: np.ndarray  # the forward return the label is the sign of
    y: np.ndarray  # 1 up, 0 down (flat returns included here, left out after the split)


def _samples(markets: list[MarketRows], read: list[str], horizon: int) -> _Samples:
    idx = [FEATURE_INDEX[n] for n in read]
    parts = []
    for m_i, m in enumerate(markets):
        n = len(m) - horizon
        if n <= 0:
            continue
        x = m.features[:n][:, idx]
        warm = np.isfinite(x).all(axis=1)
        rows = np.flatnonzero(warm)
        period = m.timeframe_s * 1000
        ret = m.close[rows + horizon] / m.close[rows] - 1.0
        parts.append((np.full(rows.size, m_i), rows, m.times_ms[rows], m.times_ms[rows + horizon] + period,
                      x[rows], ret))
    if not parts or sum(p[1].size for p in parts) == 0:
        return _Samples(*(np.empty(0, dtype=np.int64) for _ in range(4)), np.empty((0, len(read))),
                        np.empty(0), np.empty(0))
    market, row, t_open, label_end, x, ret = (np.concatenate(c) for c in zip(*parts))
    # Time order across markets; ties (two symbols' bars at the same time) in the order the files were given.
    order = np.lexsort((market, t_open))
    ret = ret[order]
    return _Samples(market[order], row[order], t_open[order], label_end[order], x[order], ret,
                    (ret > 0).astype(np.float64))


def _split(samples: _Samples, markets: list[MarketRows], read: list[str], horizon: int, fraction: float,
           timeframe_s: int) -> dict:
    """Training and validation sample indices, the cut-off, and what was left out."""
    n = len(samples.t_open)
    if n == 0:
        raise TrainError(_no_warm_rows(markets, read, horizon))
    # The cut-off depends on bar times only (warm-up is a count of bars), never on prices: changing a price
    # after the cut-off cannot move it.
    n_valid = max(1, math.ceil(fraction * n))
    cutoff = int(samples.t_open[n - n_valid])
    in_valid = samples.t_open >= cutoff
    in_train = samples.label_end <= cutoff
    flat = samples.ret == 0
    train = np.flatnonzero(in_train & ~flat)
    valid = np.flatnonzero(in_valid & ~flat)
    tf = TIMEFRAME_LABELS[timeframe_s]
    if train.size < MIN_TRAIN_SAMPLES or valid.size < MIN_VALIDATION_SAMPLES:
        raise TrainError(
            f"too few samples: {train.size} for training and {valid.size} for validation ({n} {tf} bar closes"
            f" with every sub-model feature warm and a label {horizon} bars ahead); at least {MIN_TRAIN_SAMPLES}"
            f" and {MIN_VALIDATION_SAMPLES} are needed: give a longer history"
            + (f" or a shorter --timeframe than {tf}" if timeframe_s > 60 else "")
        )
    ups = int(samples.y[train].sum())
    downs = int(train.size - ups)
    if min(ups, downs) < MIN_SAMPLES_PER_SIDE:
        raise TrainError(
            f"the training part moved up {ups} times and down {downs} times over {horizon} {tf} bars: at least"
            f" {MIN_SAMPLES_PER_SIDE} of each are needed to learn a direction"
        )
    return {
        "train": train, "valid": valid, "cutoff_ms": cutoff, "candidates": n,
        "flat": int(flat.sum()), "gap_dropped": int(n - in_valid.sum() - in_train.sum()),
    }


def _no_warm_rows(markets: list[MarketRows], read: list[str], horizon: int) -> str:
    tf = TIMEFRAME_LABELS[markets[0].timeframe_s]
    idx = [FEATURE_INDEX[n] for n in read]
    lines = []
    for m in markets:
        ever = np.isfinite(m.features[:, idx]).any(axis=0) if len(m) else np.zeros(len(idx), dtype=bool)
        cold = [f"{read[j]} (needs {FEATURES[idx[j]].warmup})" for j in range(len(idx)) if not ever[j]]
        bars = ", ".join(f"{k} {v}" for k, v in m.bars_closed.items())
        if cold:
            lines.append(f"{m.source}: features never warm: {', '.join(cold)}; bars closed: {bars}")
        elif len(m) <= horizon:
            lines.append(f"{m.source}: only {len(m)} {tf} bar closes, none with a label {horizon} bars ahead")
        else:
            lines.append(f"{m.source}: the sub-models' features are never all warm at once before the last"
                         f" {horizon} bars; bars closed: {bars}")
    return ("no sample to train on: " + "; ".join(lines)
            + ". Give a longer history (the slowest features need 200 H1 bars, about two trading weeks, before"
            " the first sample) or --base-model with sub-models that read faster features")


# ---------------------------------------------------------------------------------------------------------
# The model file and the report


def _build_model(base: DirectionModel, name: str, read: list[str], center: np.ndarray, scale: np.ndarray,
                 fitted: dict[str, dict]) -> DirectionModel:
    data = {
        "format": MODEL_FORMAT,
        "version": 1,
        "name": name,
        "description": "",
        "standardize": {
            "clip": base.standardize.clip,
            "center": {n: float(c) for n, c in zip(read, center)},
            "scale": {n: float(s) for n, s in zip(read, scale)},
        },
        "submodels": {s: {k: fitted[s][k] for k in ("weight", "bias", "weights")} for s in SUBMODELS},
        "direction": base.direction.model_dump(),
        "score": base.score.model_dump(),
    }
    return load_model(DirectionModel.model_validate(data))


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, _PROB_FLOOR, 1 - _PROB_FLOOR)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _scores(p: np.ndarray, y: np.ndarray, train_up: float) -> dict:
    majority = 1.0 if train_up >= 0.5 else 0.0
    return {
        "samples": int(y.size),
        "accuracy": float(np.mean((p >= 0.5) == (y == 1))),
        "base_rate_accuracy": float(np.mean(y == majority)),
        "log_loss": _log_loss(p, y),
        "base_rate_log_loss": _log_loss(np.full(y.size, train_up), y),
    }


def _signals(p: np.ndarray, y: np.ndarray, base: DirectionModel) -> dict:
    buy = p >= base.direction.buy_above
    sell = p <= base.direction.sell_below
    right = int(np.sum(buy & (y == 1)) + np.sum(sell & (y == 0)))
    given = int(buy.sum() + sell.sum())
    return {
        "buy_above": base.direction.buy_above, "sell_below": base.direction.sell_below,
        "buy": int(buy.sum()), "sell": int(sell.sum()), "hold": int(y.size - given),
        "hit_rate": right / given if given else None,
    }


def calibration_table(p: np.ndarray, y: np.ndarray, bins: int) -> list[dict]:
    """Predicted probability of an up-move in equal-width bins against how often the market went up."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)
    table = []
    for b in range(bins):
        inside = which == b
        count = int(inside.sum())
        table.append({
            "lo": float(edges[b]), "hi": float(edges[b + 1]), "count": count,
            "mean_predicted": float(p[inside].mean()) if count else None,
            "observed_up": float(y[inside].mean()) if count else None,
        })
    return table


def _report(markets, samples, split, p_up, p_sub, base, horizon, l2, fraction, bins, constant, fitted,
            model) -> dict:
    train, valid = split["train"], split["valid"]
    y = samples.y
    train_up = float(y[train].mean())
    tf = TIMEFRAME_LABELS[markets[0].timeframe_s]
    period = markets[0].timeframe_s * 1000
    notes = []
    if constant:
        notes.append(f"constant over the training part, weight left at 0: {', '.join(constant)}")
    for sub in SUBMODELS:
        if fitted[sub]["iterations"] >= 100:
            notes.append(f"{sub}: the fit stopped after 100 Newton steps without settling; try a larger --l2")
    return {
        "data": [
            {"source": m.source, "ticks": m.ticks, "bars": len(m),
             "from": _utc(int(m.times_ms[0])) if len(m) else None,
             "to": _utc(int(m.times_ms[-1]) + period) if len(m) else None}
            for m in markets
        ],
        "timeframe": tf,
        "horizon_bars": horizon,
        "l2": l2,
        "validation_fraction": fraction,
        "samples": {
            "candidates": split["candidates"], "train": int(train.size), "validation": int(valid.size),
            "flat_left_out": split["flat"], "gap_left_out": split["gap_dropped"],
        },
        "cutoff_utc": _utc(split["cutoff_ms"]),
        "cutoff_ms": split["cutoff_ms"],
        "train_period": {"from": _utc(int(samples.t_open[train].min())),
                         "to": _utc(int(samples.label_end[train].max()))},
        "validation_period": {"from": _utc(int(samples.t_open[valid].min())),
                              "to": _utc(int(samples.label_end[valid].max()))},
        "up_rate": {"train": train_up, "validation": float(y[valid].mean())},
        "validation": {
            "ensemble": _scores(p_up[valid], y[valid], train_up),
            "submodels": {s: _scores(p_sub[k][valid], y[valid], train_up) for k, s in enumerate(SUBMODELS)},
            "signals": _signals(p_up[valid], y[valid], base),
        },
        "train": {"ensemble": _scores(p_up[train], y[train], train_up)},
        "calibration": calibration_table(p_up[valid], y[valid], bins),
        "submodels": {s: {k: fitted[s][k] for k in ("weight", "bias", "weights")} for s in SUBMODELS},
        "model": {"name": model.name},
        "notes": notes,
    }


def _description(report: dict) -> str:
    v = report["validation"]["ensemble"]
    sources = ", ".join(d["source"] for d in report["data"])
    return (
        f"Trained by mt5bridge train on {sources}: {report['timeframe']} bar closes, labels {report['horizon_bars']}"
        f" bars ahead, L2 {report['l2']:g}, {report['samples']['train']} training samples up to"
        f" {report['train_period']['to']}. Out of sample ({v['samples']} bars from"
        f" {report['validation_period']['from']}):"
        f" accuracy {100 * v['accuracy']:.1f}% (base rate {100 * v['base_rate_accuracy']:.1f}%), log-loss"
        f" {v['log_loss']:.4f} (base rate {v['base_rate_log_loss']:.4f})."
    )


def format_report(report: dict, out_path: str | None) -> str:
    """The report as the trader reads it in a terminal."""
    v = report["validation"]
    s = report["samples"]
    tf = report["timeframe"]
    lines = ["Data:"]
    for d in report["data"]:
        lines.append(f"  {d['source']}: {d['ticks']} ticks, {d['bars']} {tf} bars, {d['from']} to {d['to']}")
    train, valid = report["train_period"], report["validation_period"]
    up = report["up_rate"]
    lines.append(f"Labels: up or down over the next {report['horizon_bars']} {tf} bars; L2 {report['l2']:g}")
    lines.append(f"Training:   {s['train']} samples, {train['from']} to {train['to']} (up {100 * up['train']:.1f}%)")
    lines.append(f"Validation: {s['validation']} samples, {valid['from']} to {valid['to']}"
                 f" (up {100 * up['validation']:.1f}%)")
    lines.append(f"Cut-off:    {report['cutoff_utc']}: every price the fit saw is older; {s['gap_left_out']} bars"
                 f" in the gap, {s['flat_left_out']} unchanged closes left out")
    lines.append("")
    lines.append(f"{'out of sample':<16}{'accuracy':>10}{'base rate':>11}{'log-loss':>10}{'base rate':>11}")
    rows = [("ensemble", v["ensemble"]), *v["submodels"].items(), ("(in sample)", report["train"]["ensemble"])]
    for label, sc in rows:
        lines.append(f"{label:<16}{100 * sc['accuracy']:>9.1f}%{100 * sc['base_rate_accuracy']:>10.1f}%"
                     f"{sc['log_loss']:>10.4f}{sc['base_rate_log_loss']:>11.4f}")
    sig = v["signals"]
    hit = "n/a" if sig["hit_rate"] is None else f"{100 * sig['hit_rate']:.1f}% right"
    lines.append("")
    lines.append(f"Signals out of sample (BUY at p_up >= {sig['buy_above']:g}, SELL at <= {sig['sell_below']:g}):"
                 f" {sig['buy']} BUY, {sig['sell']} SELL, {sig['hold']} HOLD; {hit}")
    lines.append("")
    lines.append("Calibration out of sample:")
    lines.append(f"  {'predicted p_up':<16}{'samples':>8}{'mean p_up':>11}{'went up':>9}")
    for row in report["calibration"]:
        if row["count"]:
            lines.append(f"  {row['lo']:.2f} - {row['hi']:.2f}{'':<5}{row['count']:>8}{row['mean_predicted']:>11.3f}"
                         f"{100 * row['observed_up']:>8.1f}%")
    lines.extend(f"Note: {note}" for note in report["notes"])
    lines.append("")
    lines.append(f"Model written to {out_path}" if out_path else "No model written (give --out FILE to write one).")
    return "\n".join(lines)
