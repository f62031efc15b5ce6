"""The fast reader of TICK, the frame every chart sends several times a second.

`protocol.parse_request` reads any EA message into its pydantic model, through the union of all eight
messages. For a TICK that is more than the bridge needs: the union's dispatch, then one model instance for
the tick and one per position, which the node only reads field by field. This module reads a TICK straight
into plain dicts, with the very rules of `protocol.Tick` and `protocol.Position`:

- the validator is built from those models' own field definitions (types, bounds, lengths, the null-as-empty
  free text) and settings (strict, no extra field, no NaN or infinity), so there is no second copy of a rule
  to keep in step; the one rule that lives in a model method, bid <= ask (`Tick._spread`), is checked here;
- a frame it does not accept, for whatever reason (a bad frame, another message), gives None, and the
  caller reads it with `protocol.parse_request`, which decides and words the refusal exactly as before. So
  this reader can make the bridge accept nothing the protocol refuses, and changes no ERROR code or message.

What it returns equals ``protocol.Tick.model_dump()`` of the same frame; `tick_dict` gives that same dict
for a TICK the models read, so the node handles one shape only. tests/test_fastwire.py holds the two readers
to the same answers on generated frames, valid and not.

In the bridge process, where each tick starts with cold caches, a TICK without positions is read in 0.6–0.8
of the time `parse_request` takes; orjson plus the same checks written in Python was slower than this
(bench/README.md, "Node").
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, get_args, get_origin

from pydantic import ConfigDict, TypeAdapter, ValidationError
from typing_extensions import NotRequired, TypedDict

from mt5bridge import protocol as wire

log = logging.getLogger("mt5bridge.fastwire")

# Model methods that check more than one field. The reader applies them itself (only `_spread`); a model
# with any other is read by pydantic alone until this module learns the new rule (see ENABLED).
KNOWN_MODEL_RULES: dict[str, tuple[str, ...]] = {"Tick": ("_spread",), "Position": ()}
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
_FIELDS = len(wire.Tick.model_fields)
_TICK_HEAD = b'{"type":"TICK"'


def read_tick(frame: bytes, max_bytes: int) -> dict[str, Any] | None:
    """The TICK in ``frame`` as ``Tick.model_dump()`` would give it, or None when the frame is anything but a
    valid TICK (then `protocol.parse_request` decides and explains)."""
    # Cheap tests first, so that other messages (a 600 kB WARMUP) are not read twice.
    if len(frame) > max_bytes or not ENABLED or not (frame.startswith(_TICK_HEAD) or b'"TICK"' in frame):
        return None
    try:
        tick = _validate_json(frame)
    except ValidationError:
        return None
    if tick["bid"] > tick["ask"]:   # Tick._spread
        return None
    if len(tick) != _FIELDS:
        for name, default in _DEFAULTS.items():
            tick.setdefault(name, default)
    return tick


def tick_dict(tick: wire.Tick) -> dict[str, Any]:
    """A TICK the models read, in the shape `read_tick` returns."""
    return tick.model_dump()
