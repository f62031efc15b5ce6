"""The feature catalog: the single source of the 147 market features.

Every feature the compiled engine computes is listed here, in the order the engine writes them: a stable
name, its group, its timeframe, a definition precise enough to recompute it, its warm-up, and the default
centre and scale used to standardize it for the direction model.

Two files are generated from this module and a test fails when either is stale:

- ``ext/catalog.pxi``: the index constants the Cython engine writes features at;
- ``docs/features.md``: the reference a trader reads.

Regenerate both with ``python -m mt5bridge.core.catalog --write``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

TIMEFRAMES: tuple[tuple[str, int], ...] = (("m1", 60), ("m5", 300), ("m15", 900), ("h1", 3600))
"""Timeframes the engine builds bars on: name and period in seconds, shortest first."""

GROUPS: tuple[str, ...] = (
    "trend",
    "momentum",
    "volatility",
    "volume",
    "structure",
    "microstructure",
    "session",
    "mtf",
)

FEATURE_COUNT = 147


@dataclass(frozen=True)
class Feature:
    name: str
    group: str
    timeframe: str  # "m1" .. "h1", "tick" for microstructure, "time" for session, "all" for multi-timeframe
    definition: str
    warmup: str  # human reading of the warm-up, e.g. "200 H1 bars"
    center: float  # default standardization: z = (value - center) / scale
    scale: float


@dataclass(frozen=True)
class _BlockFeature:
    """A feature every timeframe carries; ``{tf}`` in name/definition is that timeframe."""

    key: str
    group: str
    definition: str
    bars: int  # closed bars on the timeframe before the value is defined
    center: float
    scale: float


# Notation used in definitions: c, h, l, v are the closed bar's close, high, low and volume; [k] means k bars
# earlier; EMA/ATR/RSI/... are TA-Lib's functions with TA-Lib's seeding (EMA seeded with the SMA of the first n
# values; RSI, ATR, ADX and ±DI Wilder-smoothed; Bollinger with population standard deviation; Stochastic slow
# %K/%D as 3-bar SMAs). A ratio whose denominator is zero is defined as the value in brackets after it.
TIMEFRAME_BLOCK: tuple[_BlockFeature, ...] = (
    # trend
    _BlockFeature("ema_20_dist", "trend", "(c - EMA(c,20)) / ATR(14)  [0]", 20, 0.0, 2.0),
    _BlockFeature("ema_50_dist", "trend", "(c - EMA(c,50)) / ATR(14)  [0]", 50, 0.0, 3.0),
    _BlockFeature("ema_200_dist", "trend", "(c - EMA(c,200)) / ATR(14)  [0]", 200, 0.0, 6.0),
    _BlockFeature("ema_20_slope", "trend", "(EMA(c,20) - EMA(c,20)[5]) / (5 * ATR(14))  [0]", 25, 0.0, 0.2),
    _BlockFeature("ema_50_slope", "trend", "(EMA(c,50) - EMA(c,50)[5]) / (5 * ATR(14))  [0]", 55, 0.0, 0.1),
    _BlockFeature("ema_20_50_gap", "trend", "(EMA(c,20) - EMA(c,50)) / ATR(14)  [0]", 50, 0.0, 1.5),
    _BlockFeature("adx_14", "trend", "ADX(14), 0..100", 28, 25.0, 10.0),
    _BlockFeature("di_diff_14", "trend", "PLUS_DI(14) - MINUS_DI(14), -100..100", 15, 0.0, 15.0),
    # momentum
    _BlockFeature("rsi_14", "momentum", "RSI(c,14), 0..100", 15, 50.0, 12.0),
    _BlockFeature("macd_atr", "momentum", "MACD line(12,26,9) / ATR(14)  [0]", 34, 0.0, 0.8),
    _BlockFeature("macd_hist_atr", "momentum", "MACD histogram(12,26,9) / ATR(14)  [0]", 34, 0.0, 0.3),
    _BlockFeature("stoch_k_14_3_3", "momentum", "STOCH slow %K(14,3,3), 0..100", 18, 50.0, 25.0),
    _BlockFeature("stoch_d_14_3_3", "momentum", "STOCH slow %D(14,3,3), 0..100", 18, 50.0, 25.0),
    _BlockFeature("cci_20", "momentum", "CCI(20) on typical price (h+l+c)/3", 20, 0.0, 100.0),
    _BlockFeature("willr_14", "momentum", "WILLR(14), -100..0", 14, -50.0, 30.0),
    _BlockFeature("roc_10", "momentum", "ROC(c,10) = 100 * (c / c[10] - 1)  [0]", 11, 0.0, 0.5),
    _BlockFeature("ret_1_atr", "momentum", "(c - c[1]) / ATR(14)  [0]", 15, 0.0, 0.8),
    # volatility
    _BlockFeature("atr_14_pct", "volatility", "100 * ATR(14) / c", 15, 0.1, 0.1),
    _BlockFeature("atr_ratio_14_50", "volatility", "ATR(14) / ATR(50)  [1]", 51, 1.0, 0.25),
    _BlockFeature("bb_pctb_20_2", "volatility", "(c - BB lower(20,2)) / (BB upper - BB lower)  [0.5]", 20, 0.5, 0.35),
    _BlockFeature("bb_width_20_2", "volatility", "(BB upper(20,2) - BB lower) / BB middle  [0]", 20, 0.004, 0.004),
    _BlockFeature("range_atr", "volatility", "(h - l) / ATR(14)  [0]", 15, 1.0, 0.5),
    _BlockFeature(
        "realized_vol_20",
        "volatility",
        "100 * population stdev of the last 20 log returns ln(c / c[1])",
        21,
        0.05,
        0.05,
    ),
    # volume and activity
    _BlockFeature(
        "volume_z_20", "volume", "(v - SMA(v,20)) / population stdev(v,20)  [0]", 20, 0.0, 1.0
    ),
    _BlockFeature("volume_ratio_20", "volume", "v / SMA(v,20)  [1]", 20, 1.0, 0.5),
    _BlockFeature(
        "signed_volume_10",
        "volume",
        "sum over the last 10 bars of sign(c - c[1]) * v, divided by the sum of v  [0], -1..1",
        11,
        0.0,
        0.4,
    ),
    # structure and key levels
    _BlockFeature(
        "donchian_pos_20", "structure", "(c - LL(l,20)) / (HH(h,20) - LL(l,20))  [0.5], 0..1", 20, 0.5, 0.3
    ),
    _BlockFeature("dist_high_50_atr", "structure", "(HH(h,50) - c) / ATR(14)  [0]", 50, 3.0, 3.0),
    _BlockFeature("dist_low_50_atr", "structure", "(c - LL(l,50)) / ATR(14)  [0]", 50, 3.0, 3.0),
    _BlockFeature(
        "swing_high_atr",
        "structure",
        "(S - c) / ATR(14)  [0], S = high of the newest swing high in the last 50 bars (a bar whose high is"
        " above the highs of the 2 bars before and the 2 after it), else HH(h,50)",
        50,
        2.0,
        2.5,
    ),
    _BlockFeature(
        "swing_low_atr",
        "structure",
        "(c - S) / ATR(14)  [0], S = low of the newest swing low in the last 50 bars (a bar whose low is"
        " below the lows of the 2 bars before and the 2 after it), else LL(l,50)",
        50,
        2.0,
        2.5,
    ),
)

_MICROSTRUCTURE: tuple[Feature, ...] = (
    Feature(
        "spread_bps", "microstructure", "tick",
        "10000 * (ask - bid) / ((ask + bid) / 2), this tick", "1 tick", 1.0, 1.0,
    ),
    Feature(
        "spread_z_100", "microstructure", "tick",
        "(spread - m) / s  [0]; m, s = exponentially weighted mean and stdev of the spread, alpha = 2/101,"
        " this tick included, started at the first tick's spread", "100 ticks", 0.0, 1.0,
    ),
    Feature(
        "spread_ratio_1000", "microstructure", "tick",
        "spread / m  [1]; m = exponentially weighted mean of the spread, alpha = 2/1001 (its typical value)",
        "100 ticks", 1.0, 0.3,
    ),
    Feature(
        "spread_atr_m1", "microstructure", "tick",
        "spread / M1 ATR(14)  [0]", "15 M1 bars", 0.1, 0.1,
    ),
    Feature(
        "tick_rate_60s", "microstructure", "tick",
        "ticks per second: n / (60 * (1 - exp(-E/60))), n = sum over past ticks of exp(-age_s/60),"
        " E = seconds since the first tick", "60 s", 1.0, 1.0,
    ),
    Feature(
        "tick_rate_ratio_60_900", "microstructure", "tick",
        "tick rate with time constant 60 s / tick rate with time constant 900 s (same form)  [1]",
        "60 s", 1.0, 0.4,
    ),
    Feature(
        "tick_imbalance_100", "microstructure", "tick",
        "exponentially weighted mean of sign(mid - previous mid), alpha = 2/101, -1..1", "100 ticks", 0.0, 0.2,
    ),
    Feature(
        "mid_dev_100_atr_m1", "microstructure", "tick",
        "(mid - exponentially weighted mean of mid, alpha = 2/101) / M1 ATR(14)  [0]",
        "100 ticks and 15 M1 bars", 0.0, 0.5,
    ),
)

_SESSION: tuple[Feature, ...] = (
    Feature("hour_sin", "session", "time", "sin(2 pi H / 24), H = UTC hour of day with minutes as a fraction",
            "1 tick", 0.0, 0.7),
    Feature("hour_cos", "session", "time", "cos(2 pi H / 24)", "1 tick", 0.0, 0.7),
    Feature("weekday_sin", "session", "time", "sin(2 pi (D + H/24) / 7), D = UTC weekday, Monday = 0",
            "1 tick", 0.0, 0.7),
    Feature("weekday_cos", "session", "time", "cos(2 pi (D + H/24) / 7)", "1 tick", 0.0, 0.7),
    Feature("session_asia", "session", "time", "1 from 09:00 to 18:00 Tokyo time (00:00-09:00 UTC), else 0",
            "1 tick", 0.4, 0.5),
    Feature("session_london", "session", "time",
            "1 from 08:00 to 17:00 London local time (GMT/BST by EU rules), else 0", "1 tick", 0.4, 0.5),
    Feature("session_newyork", "session", "time",
            "1 from 08:00 to 17:00 New York local time (EST/EDT by US rules), else 0", "1 tick", 0.4, 0.5),
    Feature("session_overlap", "session", "time", "session_london * session_newyork", "1 tick", 0.15, 0.4),
)

_MTF: tuple[Feature, ...] = (
    Feature("mtf_trend_align", "mtf", "all", "mean over M1, M5, M15, H1 of sign(EMA(c,20) - EMA(c,50)), -1..1",
            "50 bars on each timeframe", 0.0, 0.6),
    Feature("mtf_ema200_align", "mtf", "all", "mean over the 4 timeframes of sign(c - EMA(c,200)), -1..1",
            "200 bars on each timeframe", 0.0, 0.6),
    Feature("mtf_rsi_align", "mtf", "all", "mean over the 4 timeframes of (RSI(14) - 50) / 50, -1..1",
            "15 bars on each timeframe", 0.0, 0.25),
    Feature("mtf_macd_align", "mtf", "all", "mean over the 4 timeframes of sign(MACD histogram), -1..1",
            "34 bars on each timeframe", 0.0, 0.6),
    Feature("mtf_di_align", "mtf", "all", "mean over the 4 timeframes of sign(PLUS_DI(14) - MINUS_DI(14)), -1..1",
            "15 bars on each timeframe", 0.0, 0.6),
    Feature("mtf_adx_mean", "mtf", "all", "mean over the 4 timeframes of ADX(14)", "28 bars on each timeframe", 25.0, 8.0),
    Feature("mtf_vol_term", "mtf", "all",
            "(M5 ATR(14) / sqrt(5)) / (H1 ATR(14) / sqrt(60))  [1]: short- against long-horizon volatility"
            " per minute", "15 bars on each timeframe", 1.0, 0.4),
)

INDICATORS_PER_TIMEFRAME: tuple[str, ...] = (
    "ema_20", "ema_50", "ema_200", "rsi_14", "atr_14", "atr_50",
    "macd_12_26_9", "macd_signal_12_26_9", "macd_hist_12_26_9",
    "bb_upper_20_2", "bb_middle_20_2", "bb_lower_20_2",
    "adx_14", "plus_di_14", "minus_di_14", "stoch_k_14_3_3", "stoch_d_14_3_3",
    "cci_20", "willr_14", "roc_10",
)
"""Raw indicator values behind the features, per timeframe (``mt5bridge features --indicators``)."""


def _expand() -> tuple[Feature, ...]:
    out: list[Feature] = []
    for tf, _ in TIMEFRAMES:
        for b in TIMEFRAME_BLOCK:
            out.append(
                Feature(
                    name=f"{tf}_{b.key}",
                    group=b.group,
                    timeframe=tf,
                    definition=b.definition,
                    warmup=f"{b.bars} {tf.upper()} bars",
                    center=b.center,
                    scale=b.scale,
                )
            )
    out.extend(_MICROSTRUCTURE)
    out.extend(_SESSION)
    out.extend(_MTF)
    return tuple(out)


FEATURES: tuple[Feature, ...] = _expand()
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
FEATURE_INDEX: dict[str, int] = {n: i for i, n in enumerate(FEATURE_NAMES)}
INDICATOR_NAMES: tuple[str, ...] = tuple(f"{tf}_{k}" for tf, _ in TIMEFRAMES for k in INDICATORS_PER_TIMEFRAME)

if len(FEATURES) != FEATURE_COUNT or len(set(FEATURE_NAMES)) != FEATURE_COUNT:
    raise AssertionError(f"the catalog must hold {FEATURE_COUNT} unique features, it holds {len(FEATURES)}")
if any(f.group not in GROUPS for f in FEATURES):
    raise AssertionError("a feature names a group that is not in GROUPS")


def _const(name: str) -> str:
    return name.upper()


def render_pxi() -> str:
    """The Cython include with the engine's write offsets, generated from the catalog."""
    lines = [
        "# Generated by `python -m mt5bridge.core.catalog --write` from mt5bridge/core/catalog.py. Do not edit.",
        "# Feature positions: a timeframe block starts at tf * TF_BLOCK_LEN and holds TF_BLOCK_LEN features at",
        "# the TFO_* offsets; the tick-level, session and multi-timeframe features sit at the F_* positions.",
        "",
        "cdef enum:",
        f"    N_FEATURES = {FEATURE_COUNT}",
        f"    N_TIMEFRAMES = {len(TIMEFRAMES)}",
        f"    TF_BLOCK_LEN = {len(TIMEFRAME_BLOCK)}",
        f"    N_INDICATORS_PER_TF = {len(INDICATORS_PER_TIMEFRAME)}",
        f"    N_INDICATORS = {len(INDICATOR_NAMES)}",
        f"    N_GROUPS = {len(GROUPS)}",
        "",
        "cdef enum:",
    ]
    for i, b in enumerate(TIMEFRAME_BLOCK):
        lines.append(f"    TFO_{_const(b.key)} = {i}")
    lines += ["", "cdef enum:"]
    base = len(TIMEFRAMES) * len(TIMEFRAME_BLOCK)
    for f in FEATURES[base:]:
        lines.append(f"    F_{_const(f.name)} = {FEATURE_INDEX[f.name]}")
    lines += ["", "cdef enum:"]
    for i, k in enumerate(INDICATORS_PER_TIMEFRAME):
        lines.append(f"    IND_{_const(k)} = {i}")
    lines += ["", "cdef enum:"]
    for i, g in enumerate(GROUPS):
        lines.append(f"    G_{_const(g)} = {i}")
    return "\n".join(lines) + "\n"


# Measured with `mt5bridge check-bias` (mt5bridge/workbench/bias.py); kept here because docs/features.md is
# generated from this module. Measure again after changing an indicator's seeding or smoothing.
WARMUP_MEASURED = (
    "## No look-ahead, and the warm-up each timeframe needs",
    "",
    "`mt5bridge check-bias` checks both (`--synthetic EURUSD`, or `--input FILE` with `--server-time ny-close` or"
    " `--utc-offset HOURS` for an MT5 export; `--report FILE.json` keeps every figure):",
    "",
    "- **No look-ahead.** At sampled bars (`--cuts`, 12 by default, spread over the first `--lookahead-days`), a fresh"
    " engine is run on the history cut at the bar (every tick up to the one that closes it) and its 147 features"
    " are compared, bit for bit, with the full run's at that bar. They are equal: no feature uses anything later."
    " A feature that did (a centred average, a swing confirmed by bars still to come, a scale fitted on the whole"
    " file) differs at the cuts, and the command names it and exits 1.",
    "- **Warm-up.** Per timeframe, a fresh engine is warmed (as WARMUP warms it) with only the last L closed bars"
    " before a cut, and each feature of that timeframe is compared with its value from all the history before the"
    " cut. A feature needs L bars when, from L on, it stays within the tolerance (`--tolerance`, in units of the"
    " feature's `scale` above) at every cut. Exponential smoothing is what takes long: an EMA seeded with the"
    " SMA of its first n values carries that seed for a while after it is defined.",
    "",
    "Measured on 250 days of synthetic EURUSD (seed 0) and XAUUSD (seed 3), 12 cuts, warm-ups 50 to 3000 bars; the"
    " needed warm-up is the largest of the two symbols:",
    "",
    "| timeframe | needed, within 1% of scale | within 0.1% of scale | slowest feature | next slowest | the EA sends"
    " (default / least accepted) |",
    "| --- | ---: | ---: | --- | --- | --- |",
    "| M1 | 800 | 1000 | `m1_ema_200_dist` | `m1_atr_ratio_14_50` (400; 400 at 0.1%) | 3000 / 1000 |",
    "| M5 | 800 | 1000 | `m5_ema_200_dist` | `m5_atr_ratio_14_50` (400; 500 at 0.1%) | 2000 / 1000 |",
    "| M15 | 800 | 1000 | `m15_ema_200_dist` | `m15_atr_ratio_14_50` (400; 500 at 0.1%) | 1000 / 1000 |",
    "| H1 | 800 | 1000 | `h1_ema_200_dist` | `h1_atr_ratio_14_50` (300; 400 at 0.1%) | 1000 / 1000 |",
    "",
    "Every other timeframe feature is within 1% of its scale after 250 bars (the 50-bar EMAs and the ADX take"
    " 150 to 250; at 0.1% they take 250), and `mtf_ema200_align` follows the EMA200s. What it means for WARMUP: the protocol's minimum"
    " of 200 closed bars makes every feature *defined*, not *settled*. The EA therefore sends and requires at least"
    " 1000 closed bars of each timeframe (by default 3000 M1, 2000 M5, 1000 M15, 1000 H1: about two months of H1,"
    " which every MT5 terminal holds), so that the live features equal the replayed ones.",
    "",
)


def render_markdown() -> str:
    """docs/features.md, generated from the catalog."""
    out = [
        "# Features",
        "",
        "Generated by `python -m mt5bridge.core.catalog --write` from `mt5bridge/core/catalog.py`; a test fails when this"
        " page is stale.",
        "",
        f"The engine computes exactly {FEATURE_COUNT} features per symbol, in the order below (the column order"
        " of `mt5bridge features`). Timeframe features are updated when a bar of their timeframe closes, tick"
        " features on every tick, session features when the minute changes, and the multi-timeframe features"
        " whenever any bar closes.",
        "",
        "Conventions: `c`, `h`, `l`, `v` are the closed bar's close, high, low and volume; `[k]` after a value"
        " means k bars earlier. EMA, RSI, ATR, MACD, BB (Bollinger), STOCH, ADX, PLUS_DI, MINUS_DI, CCI, WILLR"
        " and ROC are TA-Lib's functions with TA-Lib's seeding: EMA seeded with the SMA of its first n values"
        " (MACD's fast EMA is started where TA-Lib starts it, at bar slow - fast); RSI, ATR, ADX and the DIs"
        " Wilder-smoothed (alpha = 1/n); Bollinger bands with the population standard deviation; Stochastic"
        " slow %K and %D as 3-bar SMAs. HH/LL are the highest high and lowest low of the last n bars including"
        " the current one. A bracketed value after a ratio, like `[0]`, is the value when its denominator is"
        " zero. In a flat market TA-Lib's conventions hold: RSI is 0 with no gains and no losses, STOCH %K and"
        " WILLR are 0 when the high equals the low, CCI is 0, the DIs are 0 when the true ranges sum to zero,"
        " and a variance or sum below TA-Lib's zero threshold (1e-14) counts as zero. Bar prices are bid"
        " prices, as on MetaTrader's charts; bar volume is the sum of tick volumes.",
        "",
        "Warm-up is the history a feature needs before it is defined. Before that its value is NaN and its"
        " warm flag is 0; once warm it is never NaN. A symbol is warm when every feature is.",
        "",
        "`center` and `scale` are the default standardization `z = (value - center) / scale` that the direction"
        " model applies (a model file may carry its own).",
        "",
        "| # | name | group | timeframe | definition | warm-up | center | scale |",
        "| ---: | --- | --- | --- | --- | --- | ---: | ---: |",
    ]
    for i, f in enumerate(FEATURES):
        definition = f.definition.replace("|", "\\|")
        out.append(
            f"| {i} | `{f.name}` | {f.group} | {f.timeframe} | {definition} | {f.warmup} | {f.center:g} | {f.scale:g} |"
        )
    out += [
        "",
        "## Raw indicators",
        "",
        "`mt5bridge features --indicators` also writes these per timeframe (prefixed `m1_`, `m5_`, `m15_`, `h1_`),"
        " except where a feature of the same name is already a column:",
        "",
        ", ".join(f"`{k}`" for k in INDICATORS_PER_TIMEFRAME),
        "",
        *WARMUP_MEASURED,
    ]
    return "\n".join(out)


ROOT = Path(__file__).resolve().parents[2]
GENERATED = {
    ROOT / "ext" / "catalog.pxi": render_pxi,
    ROOT / "docs" / "features.md": render_markdown,
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mt5bridge.core.catalog", description=__doc__.splitlines()[0])
    p.add_argument("--write", action="store_true", help="regenerate ext/catalog.pxi and docs/features.md")
    args = p.parse_args(argv)
    if not args.write:
        print("\n".join(FEATURE_NAMES))
        return 0
    for path, render in GENERATED.items():
        path.write_text(render(), encoding="utf-8", newline="\n")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
