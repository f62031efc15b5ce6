"""The compiled engine's public import path, kept for users of the library: ``from mt5bridge.engine import
FeatureEngine``. The engine's face lives in mt5bridge.core.engine; its ``__all__`` is what this path offers."""

from mt5bridge.core.engine import *  # noqa: F401,F403  (re-exported, the names of mt5bridge.core.engine.__all__)
