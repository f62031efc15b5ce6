"""The fast reader of TICK, the frame every chart sends several times a second, and the writer of its usual
reply, a HOLD.

`protocol.parse_request` reads any EA message into its pydantic model, through the union of all eight
messages. For a TICK that is more than the bridge needs: the union's dispatch, then one model instance for
the tick and one per position, which the node only reads field by field. This module reads a TICK straight
into the tuple of its values (each position a dict), with the very rules of `protocol.Tick` and
`protocol.Position`, by two readers tried in turn:

- the compiled one (`mt5bridge.bridge._tickwire`) reads a frame of the usual layout, as the EA and the simulator
  write it (compact, fields in the models' order, plain ASCII text), in one pass in C; for anything else it
  gives None without judging;
- pydantic's validator of TypedDicts with the models' fields reads any other layout.

Both are built from those models' own field definitions (types, bounds, lengths, enumerated values, the
null-as-empty free text) and settings (strict, no extra field, no NaN or infinity), so there is no second
copy of a rule to keep in step; the one rule that lives in a model method, bid <= ask (`Tick._spread`), is
applied by both. A frame neither accepts, for whatever reason (a bad frame, another message), gives None,
and the caller reads it with `protocol.parse_request`, which decides and words the refusal exactly as
before. So the readers can make the bridge accept nothing the protocol refuses, and change no ERROR code
or message.

What they return is the tuple of the values of ``protocol.Tick.model_dump()`` of the same frame, in the
order of TICK_FIELDS; `tick_values` gives the same tuple for a TICK the models read, so the node handles
one shape only. tests/test_fastwire.py holds the readers to the models' answers on generated frames, valid
and not.

The compiled reader takes a sixth of the time of `parse_request` for a TICK without positions, warm or with
cold caches (bench/README.md, "Node").
"""

from __future__ import annotations

import logging
import math
from typing import Annotated, Any, Literal, get_args, get_origin

import annotated_types
from pydantic import ConfigDict, TypeAdapter, ValidationError
from pydantic.functional_validators import BeforeValidator
from typing_extensions import NotRequired, TypedDict

from mt5bridge.bridge import protocol as wire

try:
    from mt5bridge.bridge import _tickwire as compiled
except ImportError as exc:  # pragma: no cover - exercised by a test that hides the module
    raise ImportError(
        f"mt5bridge's compiled TICK reader (mt5bridge.bridge._tickwire) is not built or does not load: {exc}. Build it "
        "by installing the package from its source folder: `python -m pip install .` (or `python -m pip install "
        "-e .` while developing, or `python setup.py build_ext --inplace` after pulling new sources)."
    ) from exc

log = logging.getLogger("mt5bridge.bridge.fastwire")

# Model methods that check more than one field. The readers apply them themselves (only `_spread`); with any
# other, no TICK is read here until this module learns the new rule (see ENABLED).
KNOWN_MODEL_RULES: dict[str, tuple[str, ...]] = {"Tick": ("_spread",), "Position": ()}
ORDERED_FIELDS = (("bid", "ask"),)    # Tick._spread: bid <= ask

# The order of the values read_tick gives: the model's field order, spelled out because the node unpacks the
# tuple in this order. A model whose fields are not these, in this order, stops the import (see below).
TICK_FIELDS = ("type", "seq", "time_msc", "bid", "ask", "volume", "balance", "equity", "margin", "free_margin",
               "positions", "round_trip_us")
if tuple(wire.Tick.model_fields) != TICK_FIELDS:
    raise ImportError(f"protocol.Tick's fields are now {tuple(wire.Tick.model_fields)}: update fastwire.TICK_FIELDS "
                      "and the node's unpacking of a TICK to match")
# Model settings the reader copies (the first three) or that do not bear on reading (the last two).
KNOWN_SETTINGS = frozenset({"strict", "extra", "allow_inf_nan", "frozen", "json_schema_extra"})


def _as_typed_dict(model: type[wire.WireModel], nested: dict[Any, Any]) -> Any:
    """A TypedDict with ``model``'s fields, each with the model's own annotation and rules (``nested`` maps
    a nested model to its TypedDict), validated with the model's settings."""
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if get_origin(annotation) is list and get_args(annotation)[0] in nested:
            annotation = list[nested[get_args(annotation)[0]]]
        if info.metadata:
            annotation = Annotated[(annotation, *info.metadata)]
        # `type` has a default only so the bridge can build messages; on the wire it is required.
        if not info.is_required() and name != "type":
            annotation = NotRequired[annotation]
        fields[name] = annotation
    as_dict = TypedDict(f"{model.__name__}Dict", fields)  # type: ignore[operator]
    settings = model.model_config
    as_dict.__pydantic_config__ = ConfigDict(  # type: ignore[attr-defined]
        strict=settings["strict"], extra=settings["extra"], allow_inf_nan=settings["allow_inf_nan"])
    return as_dict


def _rules_known() -> bool:
    """True when every rule of Tick and Position is one the reader applies."""
    for model in (wire.Tick, wire.Position):
        decorators = model.__pydantic_decorators__
        if tuple(decorators.model_validators) != KNOWN_MODEL_RULES[model.__name__]:
            return False
        if decorators.field_validators or not set(model.model_config) <= KNOWN_SETTINGS:
            return False
        # Names on the wire are the field names, and a default is a value: an alias or a default factory
        # would be a rule this reader does not copy.
        for info in model.model_fields.values():
            if info.alias or info.validation_alias or info.default_factory:
                return False
    return True


ENABLED = _rules_known()
if not ENABLED:   # pragma: no cover - guarded by a test
    log.warning("protocol.Tick has a rule the fast TICK reader does not apply: every TICK is read by the "
                "pydantic models instead (correct, slower)")

_validate_json = TypeAdapter(
    _as_typed_dict(wire.Tick, {wire.Position: _as_typed_dict(wire.Position, {})})
).validator.validate_json
_DEFAULTS = {name: info.default for name, info in wire.Tick.model_fields.items()
             if not info.is_required() and name != "type"}
_TICK_HEAD = b'{"type":"TICK"'


class UnknownRule(ValueError):
    """A field of Tick or Position has a type or constraint the compiled reader does not apply."""


def _whole_int64(bound: Any) -> bool:
    return (isinstance(bound, (int, float)) and not isinstance(bound, bool) and math.isfinite(bound)
            and bound == int(bound) and wire.MIN_INT64 <= int(bound) <= wire.MAX_INT64)


def _layout(model: type[wire.WireModel]) -> list[tuple]:
    """``model``'s fields, in order, as the compiled reader takes them (see ext/_tickwire.pyx)."""
    out = []
    for name, info in model.model_fields.items():
        annotation, choices = info.annotation, ()
        if annotation is int:
            kind = compiled.KIND_INT
        elif annotation is float:
            kind = compiled.KIND_FLOAT
        elif annotation is str:
            kind = compiled.KIND_TEXT
        elif get_origin(annotation) is Literal and all(isinstance(c, str) for c in get_args(annotation)):
            kind, choices = compiled.KIND_CHOICE, get_args(annotation)
        elif get_origin(annotation) is list and get_args(annotation)[0] is wire.Position and model is wire.Tick:
            kind = compiled.KIND_LIST
        else:
            raise UnknownRule(f"{model.__name__}.{name}: type {annotation}")
        lo = hi = None
        lo_strict = hi_strict = null_as_empty = False
        min_len, max_len = 0, -1
        for rule in info.metadata:
            if isinstance(rule, annotated_types.Gt):
                lo, lo_strict = rule.gt, True
            elif isinstance(rule, annotated_types.Ge):
                lo = rule.ge
            elif isinstance(rule, annotated_types.Lt):
                hi, hi_strict = rule.lt, True
            elif isinstance(rule, annotated_types.Le):
                hi = rule.le
            elif isinstance(rule, annotated_types.MinLen):
                min_len = rule.min_length
            elif isinstance(rule, annotated_types.MaxLen):
                max_len = rule.max_length
            elif isinstance(rule, BeforeValidator) and rule.func is wire._null_as_empty and kind == compiled.KIND_TEXT:
                null_as_empty = True
            else:
                raise UnknownRule(f"{model.__name__}.{name}: rule {rule!r}")
        if kind == compiled.KIND_INT:
            # The compiled reader holds an integer field's bounds as signed 64-bit integers.
            if not all(b is None or _whole_int64(b) for b in (lo, hi)):
                raise UnknownRule(f"{model.__name__}.{name}: an integer bound that is not a 64-bit integer")
            lo, hi = (None if b is None else int(b) for b in (lo, hi))
        out.append((name, kind, lo, lo_strict, hi, hi_strict, min_len, max_len, null_as_empty, choices))
    return out


def read_tick_any_layout(frame: bytes) -> tuple | None:
    """The TICK in ``frame`` read by pydantic with the models' rules, whatever its layout; None when it is not
    a valid TICK. The frame size cap is the caller's."""
    # A cheap test first, so that other messages (a 600 kB WARMUP) are not read twice.
    if not (frame.startswith(_TICK_HEAD) or b'"TICK"' in frame):
        return None
    try:
        tick = _validate_json(frame)
    except ValidationError:
        return None
    for lower, higher in ORDERED_FIELDS:
        if tick[lower] > tick[higher]:
            return None
    if len(tick) != len(TICK_FIELDS):
        for name, default in _DEFAULTS.items():
            tick.setdefault(name, default)
    return tuple(tick[name] for name in TICK_FIELDS)


def _compiled_reader() -> Any:
    """The compiled reader, with pydantic's behind it for other layouts; None when it cannot be used."""
    try:
        return compiled.TickReader(_layout(wire.Tick), _layout(wire.Position), ORDERED_FIELDS, read_tick_any_layout)
    except UnknownRule as exc:   # pragma: no cover - guarded by a test
        log.warning("the compiled TICK reader is off (%s): TICKs are read by pydantic instead (correct, slower)", exc)
        return None


def _pydantic_only(frame: bytes, max_bytes: int) -> tuple | None:
    return None if len(frame) > max_bytes else read_tick_any_layout(frame)


def _none(frame: bytes, max_bytes: int) -> None:
    return None


_COMPILED = _compiled_reader() if ENABLED else None
_read_usual = _COMPILED.read_usual if _COMPILED is not None else None   # the C pass alone, for the tests

# read_tick(frame, max_bytes): the TICK in ``frame`` as the tuple of its values (TICK_FIELDS), or None when the
# frame is anything but a valid TICK or is longer than ``max_bytes`` (then `protocol.parse_request` decides and
# explains). The compiled reader's own method when there is one, so that a tick costs no Python call more;
# pydantic's reader alone otherwise; and when the models have a rule this module does not apply, no reader.
if _COMPILED is not None:
    read_tick = _COMPILED.read
elif ENABLED:   # pragma: no cover - only with a rule the compiled reader does not know
    read_tick = _pydantic_only
else:   # pragma: no cover - guarded by a test
    read_tick = _none


# hold_reply(seq, tail): the bytes of a HOLD COMMAND answering TICK ``seq``; ``tail`` is everything after the
# reply_to number, which depends only on the chart and the reason (the node builds it once per pair).
hold_reply = compiled.hold_reply


def tick_values(tick: wire.Tick) -> tuple:
    """A TICK the models read, in the shape `read_tick` returns."""
    values = tick.model_dump()
    return tuple(values[name] for name in TICK_FIELDS)
