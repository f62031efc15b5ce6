"""The account's decision engine, set up from the configuration.

The compiled ``DecisionEngine`` (ext/decision.pxi) makes every trading decision; this module only turns a
validated :class:`mt5bridge.config.Config` into its parameters and registers symbols with their settings,
so that the live bridge and replay build the engine the same way.
"""

from __future__ import annotations

from array import array
from typing import Any

from mt5bridge.common.currencies import currency_mask
from mt5bridge.config import (
    ASSET_CLASSES,
    Config,
    correlation,
    engine_params,
    symbol_params,
    symbol_settings,
)
from mt5bridge.core.engine import (
    ACTION_NAMES,
    STATE_NAMES,
    DecisionEngine,
    FeatureEngine,
)


def decision_params(cfg: Config) -> dict[str, Any]:
    """The compiled engine's parameters, in its own units (fractions, milliseconds, bit masks)."""
    p = engine_params(cfg)
    pct = 0.01
    return {
        "initial_balance": p["account.initial_balance"],
        "daily_loss_frac": p["ftmo.daily_loss_pct"] * pct,
        "max_loss_frac": p["ftmo.max_loss_pct"] * pct,
        "max_loss_trailing": p["ftmo.max_loss_mode"] == 1,
        "target_frac": p["ftmo.profit_target_pct"] * pct,
        "min_trading_days": p["ftmo.min_trading_days"],
        "stop_at_target": p["ftmo.stop_at_target"],
        "buffer_frac": p["ftmo.safety_buffer_pct"] * pct,
        "slippage_frac": p["ftmo.slippage_allowance_pct"] * pct,
        "gap_frac": [p[f"ftmo.gap_allowance_pct.{c}"] * pct for c in ASSET_CLASSES],
        "gap_horizon_ms": p["ftmo.gap_horizon_ms"],
        # The Best Day Rule is the 1-Step's alone; 0 switches it off.
        "best_day_max_share": p["ftmo.best_day_max_share"] if p["account.product"] == 1 else 0.0,
        "reduce_share": p["ftmo.reduce_at_share"],
        "halt_share": p["ftmo.halt_at_share"],
        "unprotected_stop_atr": p["ftmo.unprotected_stop_atr"],
        "internal_daily_frac": p["guards.internal_daily_dd_pct"] * pct,
        "internal_weekly_frac": p["guards.internal_weekly_dd_pct"] * pct,
        "losing_streak": p["guards.losing_streak"],
        "streak_factor": p["guards.losing_streak_factor"],
        "recovery_frac": p["guards.recovery_dd_pct"] * pct,
        "recovery_factor": p["guards.recovery_factor"],
        "breaker_frac": p["guards.circuit_breaker_pct"] * pct,
        "breaker_ms": p["guards.circuit_breaker_ms"],
        "breaker_flatten": p["guards.circuit_breaker_action"] == 0,
        "perf_window": p["sizing.perf_window"],
        "perf_min": p["sizing.perf_min"],
        "perf_max": p["sizing.perf_max"],
        "min_score": p["entry.min_score"],
        "min_confidence": p["entry.min_confidence"],
        "min_confidence_high_vol": p["entry.min_confidence_high_vol"],
        "consensus_mask": p["entry.allowed_consensus_mask"],
        "max_spread_points": p["entry.max_spread_points"],
        "max_spread_typical_ratio": p["entry.max_spread_typical_ratio"],
        "max_atr_pct": p["entry.max_atr_pct"],
        "high_vol_atr_ratio": p["entry.high_vol_atr_ratio"],
        "require_h1_ema200": p["entry.require_h1_ema200_alignment"],
        "session_mask": p["entry.sessions_mask"],
        "cooldown_ms": p["entry.cooldown_ms"],
        "require_warm": p["entry.require_warm"],
        "sizing_full": p["sizing.mode"] == 0,
        "base_risk_min_frac": p["sizing.base_risk_pct_min"] * pct,
        "base_risk_max_frac": p["sizing.base_risk_pct_max"] * pct,
        "quality_min": p["sizing.quality_min"],
        "quality_max": p["sizing.quality_max"],
        "high_vol_factor": p["sizing.high_vol_factor"],
        "trend_regime_factor": p["sizing.trend_regime_factor"],
        "range_regime_factor": p["sizing.range_regime_factor"],
        "cvar_level": p["sizing.cvar_level"],
        "cvar_window_bars": p["sizing.cvar_window_bars"],
        "holding_bars": p["sizing.holding_bars"],
        "max_positions": p["sizing.max_positions"],
        "max_adds": p["sizing.max_adds_per_position"],
        "max_exposure_frac": p["sizing.max_exposure_pct"] * pct,
        "concentration_share": p["sizing.concentration_share"],
        "daily_risk_budget_frac": p["sizing.daily_risk_budget_pct"] * pct,
        "class_max_lots": [p[f"sizing.class_max_lots.{c}"] for c in ASSET_CLASSES],
        "class_max_notional_frac": [p[f"sizing.class_max_notional_pct.{c}"] * pct for c in ASSET_CLASSES],
        "diversification_floor": p["sizing.diversification_floor"],
        "sl_atr": p["exits.sl_atr"],
        "tp_atr": p["exits.tp_atr"],
        "breakeven_r": p["exits.breakeven_r"],
        "breakeven_offset_points": p["exits.breakeven_offset_points"],
        "partial_r": p["exits.partial_r"],
        "partial_fraction": p["exits.partial_fraction"],
        "trail_atr": p["exits.trail_atr"],
        "time_exit_ms": p["exits.time_exit_ms"],
        "time_exit_min_r": p["exits.time_exit_min_r"],
        "exit_threshold_profit": p["exits.exit_threshold_profit"],
        "exit_threshold_flat": p["exits.exit_threshold_flat"],
        "exit_threshold_loss": p["exits.exit_threshold_loss"],
        "exit_band_frac": p["exits.exit_band_pct"] * pct,
        "weight_quality_drop": p["exits.weight_quality_drop"],
        "weight_direction_reversal": p["exits.weight_direction_reversal"],
        "weight_trend_reversal": p["exits.weight_trend_reversal"],
        "weight_volume_divergence": p["exits.weight_volume_divergence"],
        "weight_key_level": p["exits.weight_key_level"],
        "stop_buffer_points": p["exits.stop_buffer_points"],
        "dca_enabled": p["dca.enabled"],
        "dca_loss_frac": p["dca.loss_pct"] * pct,
        "dca_probability": p["dca.recovery_probability"],
        "dca_min": p["dca.add_min"],
        "dca_max": p["dca.add_max"],
        "dca_max_adds": p["dca.max_adds"],
        "scale_enabled": p["scale_in.enabled"],
        "scale_profit_frac": p["scale_in.profit_pct"] * pct,
        "scale_min_score": p["scale_in.min_score"],
        "scale_min": p["scale_in.add_min"],
        "scale_max": p["scale_in.add_max"],
        "scale_max_adds": p["scale_in.max_adds"],
        "news_blackout": p["funded.news_blackout"],
        "news_before_ms": p["funded.news_before_ms"],
        "news_after_ms": p["funded.news_after_ms"],
        "flat_before_weekend": p["funded.flat_before_weekend"],
        "weekend_flat_ms": p["funded.weekend_flat_ms"],
        "friday_close_minute": p["funded.friday_close_ms"] // 60_000,
    }


def build_engine(cfg: Config, magic: int, first_command_id: int = 1,
                 news: tuple[Any, Any] | None = None) -> DecisionEngine:
    """The engine for one account. With a news blackout configured, ``news`` is the calendar as plain values
    (release times in UTC ms, currency masks), read by whoever builds the engine (see
    mt5bridge.market.news.blackout_calendar); without it the start is refused rather than silently trading
    through the news."""
    engine = DecisionEngine(decision_params(cfg), magic, first_command_id)
    if cfg.funded.news_blackout:
        if news is None:
            raise ValueError("funded.news_blackout is on but no news calendar was handed to the engine")
        engine.set_news(*news)
    return engine


def add_symbol(engine: DecisionEngine, cfg: Config, name: str, spec: dict[str, Any],
               features: FeatureEngine | None = None) -> int:
    """Register a symbol with its broker specification and its configured class, currencies and limits;
    its correlations with the symbols already registered are set from ``[sizing.correlation]``."""
    settings = symbol_settings(cfg, name)
    params = symbol_params(cfg, name)
    index = engine.add_symbol(
        name, spec, features if features is not None else FeatureEngine(), params["asset_class"],
        currency_mask(settings.currencies or ()), bool(params["enabled"]), params["max_spread_points"],
    )
    for other_index, other in enumerate(engine.symbols[:-1]):
        rho = correlation(cfg, name, other)
        if rho:
            engine.set_correlation(index, other_index, rho)
    return index


BOOK_COLUMNS = ("q", "i", "i", "d", "d", "d", "d", "d", "q", "q")
"""Array type codes of a position's fields as ``DecisionEngine.sync_positions`` takes them: ticket, symbol index,
side (1 buy, -1 sell), volume, open price, SL, TP, profit with swap and commission, open time (UTC ms), magic."""


def sync_book(engine: DecisionEngine, time_ms: int, rows: list[tuple]) -> None:
    """Give the engine every position of the account: one tuple per position, fields in BOOK_COLUMNS order."""
    # Column by column, as the engine takes them; array.array costs less to fill than numpy for a few rows.
    columns = list(zip(*rows)) or [()] * len(BOOK_COLUMNS)
    engine.sync_positions(time_ms, *[array(kind, column) for kind, column in zip(BOOK_COLUMNS, columns)])


__all__ = ["ACTION_NAMES", "BOOK_COLUMNS", "STATE_NAMES", "DecisionEngine", "add_symbol", "build_engine",
           "currency_mask", "decision_params", "sync_book"]
