"""Strict JSON for everything the product writes: no NaN, no Infinity.

Python's json writes ``Infinity`` and ``NaN``, which strict parsers (JavaScript's JSON.parse, jq, most
languages' standard ones) refuse. An unbounded or undefined number (a headroom with no stop to bound it, a
share of nothing) is written as ``null``; each such field says in the docs what its null means.
"""

from __future__ import annotations

import json
import math
from typing import Any


def clean(value: Any) -> Any:
    """``value`` with every non-finite float (in dicts, lists and tuples, at any depth) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if hasattr(value, "tolist"):   # numpy arrays and scalars, without importing numpy here
        return clean(value.tolist())
    return value


def plain(value: Any) -> Any:
    """``json.dumps``'s ``default``: numpy arrays and scalars as plain lists and numbers, anything else as its text."""
    if hasattr(value, "tolist"):   # numpy arrays and scalars, without importing numpy here
        return value.tolist()
    return str(value)


def dumps(value: Any, **kwargs: Any) -> str:
    """JSON text any strict parser reads: non-finite numbers become null (``allow_nan=False`` then proves it)."""
    return json.dumps(clean(value), allow_nan=False, **kwargs)
