"""The configuration as the compiled engine reads it: flat numbers in the engine's own units and codes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import get_args, get_origin

from pydantic import BaseModel

from mt5bridge.config.problems import _choices, _unwrap
from mt5bridge.config.schema import ASSET_CLASSES, Config, symbol_settings

# --- numbers for the compiled engine -------------------------------------------------------------------------

ENGINE_SECTIONS = ("account", "ftmo", "guards", "entry", "sizing", "exits", "dca", "scale_in", "funded")
"""The sections whose numbers ``engine_params`` hands to the compiled engine."""

_TO_MS = {"minutes": 60_000, "hours": 3_600_000}


def _engine_key(name: str) -> tuple[str, int]:
    """``cooldown_minutes`` -> (``cooldown_ms``, 60000); other names unchanged with factor 0."""
    words = name.split("_")
    for unit, factor in _TO_MS.items():
        if unit in words:
            return "_".join(w for w in words if w != unit) + "_ms", factor
    return name, 0


def _engine_values(prefix: str, section: BaseModel) -> Iterator[tuple[str, float | int]]:
    for name, field in type(section).model_fields.items():
        value = getattr(section, name)
        annotation, _ = _unwrap(field.annotation, list(field.metadata))
        key = f"{prefix}.{field.alias or name}"
        extra = dict(field.json_schema_extra or {})  # type: ignore[arg-type]
        if isinstance(value, BaseModel):
            yield from _engine_values(key, value)
        elif isinstance(value, bool):
            yield key, int(value)
        elif isinstance(value, (int, float)):
            renamed, factor = _engine_key(field.alias or name)
            if factor:
                yield f"{prefix}.{renamed}", int(round(value * factor))
            else:
                yield key, value
        elif _choices(annotation):
            yield key, _choices(annotation).index(value)
        elif get_origin(annotation) is list and _choices(_unwrap(get_args(annotation)[0])[0]):
            choices = _choices(_unwrap(get_args(annotation)[0])[0])
            yield f"{key}_mask", sum(1 << choices.index(v) for v in value)
        elif extra.get("time_of_day"):
            hours, minutes = map(int, value.split(":"))
            base = re.sub(r"_utc$", "", field.alias or name)
            yield f"{prefix}.{base}_ms", (hours * 60 + minutes) * 60_000
        # strings (paths, currency) and keyed tables are not engine numbers


def engine_params(cfg: Config) -> dict[str, float | int]:
    """Every number the compiled engine reads, flat, keyed ``"section.key"`` (``"section.table.key"`` for a
    sub-table), for copying into a C struct (the C field is the key with dots as underscores).

    - true/false become 1/0.
    - A choice becomes its index among the choices: ``account.product`` 0 = 2-step, 1 = 1-step;
      ``account.phase`` 0 = challenge, 1 = verification, 2 = funded; ``ftmo.max_loss_mode`` 0 = static,
      1 = eod_trailing; ``sizing.mode`` 0 = full, 1 = plain.
    - A list of choices becomes a bit mask ``*_mask``, bit i set when choice i is listed:
      ``entry.allowed_consensus_mask`` bits UNANIMOUS 1, STRONG 2, WEAK 4, SPLIT 8 (bit i = the engine's
      consensus code i); ``entry.sessions_mask`` bits asia 1, london 2, newyork 4.
    - Minutes and hours become integer milliseconds and lose the unit from the name: ``entry.cooldown_ms``,
      ``guards.circuit_breaker_ms``, ``exits.time_exit_ms``, ``funded.news_before_ms``,
      ``funded.news_after_ms``, ``funded.weekend_flat_ms``.
    - ``funded.friday_close_utc`` becomes ``funded.friday_close_ms``, milliseconds after midnight UTC.
    - Left out: ``account.currency``, ``funded.news_file``, ``[sizing.correlation]`` (see ``correlation``)
      and ``[symbols]`` (see ``symbol_params``).
    """
    params: dict[str, float | int] = {}
    for name in ENGINE_SECTIONS:
        params.update(_engine_values(name, getattr(cfg, name)))
    return params


def symbol_params(cfg: Config, name: str) -> dict[str, float | int]:
    """The per-symbol numbers the engine reads: ``asset_class`` (index in fx, metals, indices, energies,
    crypto), ``enabled`` (1/0), ``max_spread_points`` (the symbol's own or ``entry.max_spread_points``),
    ``max_lots`` and ``max_notional_pct`` (the class ceilings)."""
    symbol = symbol_settings(cfg, name)
    asset_class = symbol.asset_class or "indices"
    return {
        "asset_class": ASSET_CLASSES.index(asset_class),
        "enabled": int(symbol.enabled),
        "max_spread_points": symbol.max_spread_points or cfg.entry.max_spread_points,
        "max_lots": getattr(cfg.sizing.class_max_lots, asset_class),
        "max_notional_pct": getattr(cfg.sizing.class_max_notional_pct, asset_class),
    }


