"""The compiled engine's public import path, kept for users of the library: ``from mt5bridge.engine import
FeatureEngine``. The engine's face lives in mt5bridge.core.engine."""

from mt5bridge.core.engine import (  # noqa: F401  (re-exported)
    ACTION_NAMES,
    CONSENSUS_NAMES,
    DIRECTION_NAMES,
    STATE_NAMES,
    TIMEFRAME_SECONDS,
    DecisionEngine,
    FeatureEngine,
    ReplayLoop,
)
