"""The feature catalog is the single source of the feature list, and what is generated from it is fresh."""

from __future__ import annotations

import math

from mt5bridge.core import catalog
from mt5bridge.core.catalog import FEATURE_COUNT, FEATURES, GROUPS, INDICATOR_NAMES


def test_exactly_147_uniquely_named_features_in_every_group():
    assert FEATURE_COUNT == 147 == len(FEATURES) == len({f.name for f in FEATURES})
    assert {f.group for f in FEATURES} == set(GROUPS)
    for f in FEATURES:
        assert f.definition and f.warmup and math.isfinite(f.center) and f.scale > 0, f.name


def test_each_timeframe_carries_the_same_block():
    for tf, _ in catalog.TIMEFRAMES:
        names = [f.name for f in FEATURES if f.timeframe == tf]
        assert names == [f"{tf}_{b.key}" for b in catalog.TIMEFRAME_BLOCK]


def test_indicator_names_follow_the_documented_pattern():
    for name in ("h1_ema_200", "h1_rsi_14", "h1_atr_14", "h1_macd_12_26_9", "h1_macd_signal_12_26_9",
                 "h1_bb_upper_20_2", "h1_adx_14", "h1_stoch_k_14_3_3"):
        assert name in INDICATOR_NAMES


def test_generated_files_are_fresh(repo_root):
    stale = []
    for path, render in (("ext/catalog.pxi", catalog.render_pxi), ("docs/features.md", catalog.render_markdown)):
        if (repo_root / path).read_text(encoding="utf-8") != render():
            stale.append(path)
    assert not stale, f"stale: {stale}; regenerate with `python -m mt5bridge.core.catalog --write`"
