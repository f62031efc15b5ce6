"""The compiled engine, imported with a clear message when it has not been built.

There is no pure-Python fallback: a slow engine that silently replaced the compiled one would trade late.
"""

from __future__ import annotations

try:
    from mt5bridge.core._engine import (  # noqa: F401  (re-exported)
        ACTION_NAMES,
        CONSENSUS_NAMES,
        DIRECTION_NAMES,
        STATE_NAMES,
        TIMEFRAME_SECONDS,
        DecisionEngine,
        FeatureEngine,
        ReplayLoop,
    )
except ImportError as exc:  # pragma: no cover - exercised by a test that hides the module
    raise ImportError(
        "mt5bridge's compiled engine (mt5bridge.core._engine) is not built or does not load: "
        f"{exc}. Build it by installing the package from its source folder: "
        "`python -m pip install .` (or `python -m pip install -e .` while developing); "
        "a C compiler and Python's headers are needed (on Windows: Microsoft C++ Build Tools)."
    ) from exc

__all__ = ["ACTION_NAMES", "CONSENSUS_NAMES", "DIRECTION_NAMES", "STATE_NAMES", "TIMEFRAME_SECONDS", "DecisionEngine",
           "FeatureEngine", "ReplayLoop"]
