"""The direction model file: sub-model weights, standardization and market-score terms.

The compiled engine reads its scoring from a JSON model file so that a trained model (``mt5bridge train``)
can replace the shipped one without a rebuild. ``docs/model.md`` describes the format and the shipped
defaults; :func:`load_model` validates a file and names exactly what is wrong with a bad one.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from mt5bridge.core.catalog import FEATURE_COUNT, FEATURE_INDEX, FEATURES, GROUPS

SUBMODELS: tuple[str, ...] = ("trend", "momentum", "mean_reversion", "breakout")
MAX_SCORE_TERMS = 128  # matches ext/scoring.pxi
MODEL_FORMAT = "mt5bridge.direction-model"
DEFAULT_MODEL = "default.json"


class ModelError(ValueError):
    """A model file that cannot be used, with the file and the reason."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def _known_features(names: dict[str, float] | list[str], where: str) -> None:
    unknown = [n for n in names if n not in FEATURE_INDEX]
    if unknown:
        raise ValueError(f"{where}: unknown feature(s) {', '.join(sorted(unknown))} (see docs/features.md)")


class Standardize(_Strict):
    clip: float = Field(4.0, gt=0, le=20, description="standardized values are clipped to [-clip, clip]")
    center: dict[str, float] = Field(default_factory=dict, description="per-feature centre overrides")
    scale: dict[str, float] = Field(default_factory=dict, description="per-feature scale overrides (> 0)")

    @field_validator("center")
    @classmethod
    def _center_names(cls, v: dict[str, float]) -> dict[str, float]:
        _known_features(v, "standardize.center")
        return v

    @field_validator("scale")
    @classmethod
    def _scale_names(cls, v: dict[str, float]) -> dict[str, float]:
        _known_features(v, "standardize.scale")
        bad = [n for n, s in v.items() if not s > 0]
        if bad:
            raise ValueError(f"standardize.scale must be > 0 for {', '.join(bad)}")
        return v


class Submodel(_Strict):
    weight: float = Field(1.0, ge=0, description="weight of this sub-model's probability in the ensemble")
    bias: float = 0.0
    weights: dict[str, float] = Field(description="feature name -> logistic weight on its standardized value")

    @field_validator("weights")
    @classmethod
    def _weight_names(cls, v: dict[str, float]) -> dict[str, float]:
        _known_features(v, "weights")
        return v


class DirectionRule(_Strict):
    buy_above: float = Field(0.55, gt=0.5, lt=1.0)
    sell_below: float = Field(0.45, gt=0.0, lt=0.5)
    vote_margin: float = Field(0.03, ge=0.0, lt=0.5)


class ScoreTerm(_Strict):
    feature: str
    transform: Literal["value", "abs"] = Field(
        "value", description="'abs' scores |value - offset|, 'value' scores value - offset"
    )
    offset: float = 0.0
    lo: float = Field(description="quality 0 at lo")
    hi: float = Field(description="quality 1 at hi (hi < lo makes a falling ramp)")
    weight: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> "ScoreTerm":
        _known_features([self.feature], "score.terms")
        if self.lo == self.hi:
            raise ValueError(f"score term {self.feature}: lo and hi must differ (both {self.lo})")
        return self


class Score(_Strict):
    group_weights: dict[str, float]
    terms: list[ScoreTerm] = Field(max_length=MAX_SCORE_TERMS)

    @field_validator("group_weights")
    @classmethod
    def _groups(cls, v: dict[str, float]) -> dict[str, float]:
        if set(v) != set(GROUPS):
            raise ValueError(f"group_weights must name exactly the groups {', '.join(GROUPS)}")
        if any(w < 0 for w in v.values()) or sum(v.values()) <= 0:
            raise ValueError("group_weights must be >= 0 with a positive sum")
        return v


class Trained(_Strict):
    """What a trained model was fitted on, written by ``mt5bridge train`` so a replay on other data can say so."""

    symbols: list[str] = Field(default_factory=list, description="the symbols of the history it was fitted on")
    data: list[str] = Field(default_factory=list, description="'ticks', or the bars' timeframe (M1, M5, M15, H1)"
                            " of each history")
    timeframe: str = Field("", description="the bar closes that were its samples (M1, M5, M15, H1)")
    beats_base_rate: bool = Field(True, description="out of sample, its log-loss beat the base rate's")


class DirectionModel(_Strict):
    format: Literal["mt5bridge.direction-model"]
    version: Literal[1]
    name: str
    description: str = ""
    trained: Trained | None = Field(None, description="what the model was fitted on (absent in the shipped model)")
    standardize: Standardize = Field(default_factory=Standardize)
    submodels: dict[str, Submodel]
    direction: DirectionRule = Field(default_factory=DirectionRule)
    score: Score

    @field_validator("submodels")
    @classmethod
    def _four(cls, v: dict[str, Submodel]) -> dict[str, Submodel]:
        if set(v) != set(SUBMODELS):
            raise ValueError(f"submodels must be exactly {', '.join(SUBMODELS)}; got {', '.join(sorted(v))}")
        if sum(s.weight for s in v.values()) <= 0:
            raise ValueError("at least one sub-model needs a weight > 0")
        return v

    def arrays(self) -> dict[str, object]:
        """The model as the flat arrays the compiled engine copies in."""
        center = np.array([f.center for f in FEATURES], dtype=np.float64)
        scale = np.array([f.scale for f in FEATURES], dtype=np.float64)
        for name, c in self.standardize.center.items():
            center[FEATURE_INDEX[name]] = c
        for name, s in self.standardize.scale.items():
            scale[FEATURE_INDEX[name]] = s
        weights = np.zeros((len(SUBMODELS), FEATURE_COUNT), dtype=np.float64)
        for k, sub in enumerate(SUBMODELS):
            for name, w in self.submodels[sub].weights.items():
                weights[k, FEATURE_INDEX[name]] = w
        terms = self.score.terms
        return {
            "center": center,
            "scale": scale,
            "clip": self.standardize.clip,
            "weights": weights,
            "bias": np.array([self.submodels[s].bias for s in SUBMODELS], dtype=np.float64),
            "submodel_weight": np.array([self.submodels[s].weight for s in SUBMODELS], dtype=np.float64),
            "buy_above": self.direction.buy_above,
            "sell_below": self.direction.sell_below,
            "vote_margin": self.direction.vote_margin,
            "term_feature": np.array([FEATURE_INDEX[t.feature] for t in terms], dtype=np.int32),
            "term_group": np.array([GROUPS.index(FEATURES[FEATURE_INDEX[t.feature]].group) for t in terms],
                                   dtype=np.int32),
            "term_abs": np.array([t.transform == "abs" for t in terms], dtype=np.int32),
            "term_lo": np.array([t.lo + (0.0 if t.transform == "abs" else t.offset) for t in terms],
                                dtype=np.float64),
            "term_hi": np.array([t.hi + (0.0 if t.transform == "abs" else t.offset) for t in terms],
                                dtype=np.float64),
            "term_offset": np.array([t.offset if t.transform == "abs" else 0.0 for t in terms], dtype=np.float64),
            "term_weight": np.array([t.weight for t in terms], dtype=np.float64),
            "group_weight": np.array([self.score.group_weights[g] for g in GROUPS], dtype=np.float64),
        }


def _describe(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)


def load_model(source: str | Path | DirectionModel | None = None) -> DirectionModel:
    """Load and validate a model file; None gives the shipped default."""
    if isinstance(source, DirectionModel):
        return source
    if source is None:
        text = resources.files("mt5bridge").joinpath("models", DEFAULT_MODEL).read_text(encoding="utf-8")
        where = f"mt5bridge/models/{DEFAULT_MODEL}"
    else:
        where = str(source)
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise ModelError(f"{where}: cannot read the model file: {exc.strerror or exc}") from exc
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelError(f"{where}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from exc
    try:
        return DirectionModel.model_validate(raw)
    except ValidationError as exc:
        raise ModelError(f"{where}: {_describe(exc)}") from exc


def model_to_json(model: DirectionModel) -> str:
    """Serialize a model the way the shipped file is written (stable key order, finite numbers only)."""
    data = model.model_dump(mode="json")
    if data.get("trained") is None:
        data.pop("trained", None)   # a model nobody trained here says nothing about it
    return json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n"
