"""The wording of what is wrong with a configuration file: each validation error turned into one line that
names the file, the dotted key, the value given and what is allowed, with the nearest key for a misspelt one.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal, Optional, Union, get_args, get_origin

import annotated_types as at
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from mt5bridge.config.schema import Config, Violation
from mt5bridge.config.wording import ConfigIssue, _dotted, _toml_value

# --- error messages ------------------------------------------------------------------------------------------

_RANGE_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


def _issue(source: str, data: dict[str, Any], error: Mapping[str, Any]) -> ConfigIssue:
    """The problem one pydantic error stands for, as the trader reads it."""
    loc = tuple(error["loc"])
    kind = error["type"]
    if loc and loc[-1] == "[key]":
        parent, key = _str_loc(loc[:-2]), str(loc[-2])
        value = _lookup(data, loc[:-1], missing=error.get("input"))
        return ConfigIssue(source, _dotted((*parent, key)), _toml_value(value), _key_problem(parent))
    field_loc, field = _field_at(loc)
    value = _toml_value(_lookup(data, field_loc, missing=error.get("input")))
    key = _dotted(_str_loc(field_loc))
    if kind == "extra_forbidden":
        return ConfigIssue(source, key, value, _unknown_key_problem(_str_loc(field_loc)))
    if field is None:
        return ConfigIssue(source, key, value, str(error.get("msg", "invalid")))
    annotation, metadata, extra = field
    typed = kind not in _RANGE_ERRORS
    problem = "must be " + _allowed(annotation, metadata, extra, typed)
    if kind == "unknown_currency":
        problem += f": {error.get('msg', '')}"   # which code, and the ones news can be matched to
    return ConfigIssue(source, key, value, problem)


def _violation_issue(source: str, data: dict[str, Any], prefix: tuple[str, ...], v: Violation) -> ConfigIssue:
    others = [_dotted((*prefix, *o)) for o in v.others]
    path = (*prefix, *v.key)
    value = _lookup(data, path, missing=v.value)  # as the file wrote it: 40, not 40.0
    return ConfigIssue(source, _dotted(path), _toml_value(value), v.problem.format(*others))


def _str_loc(loc: Iterable[Any]) -> tuple[str, ...]:
    return tuple(str(part) for part in loc)


def _lookup(data: Any, loc: Iterable[Any], missing: Any = None) -> Any:
    for part in loc:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return missing
    return data


def _key_problem(parent: tuple[str, ...]) -> str:
    if parent[-1:] == ("correlation",):
        return 'a correlation key names two different symbols as "A/B", such as "EURUSD/GBPUSD"'
    if parent == ("symbols",):
        return "a symbol name has 1 to 32 characters, no spaces, slashes or quotes"
    return "invalid key"


def _unknown_key_problem(loc: tuple[str, ...]) -> str:
    owner = _model_at(loc[:-1])
    if owner is None:
        return "unknown key"
    known = [f.alias or name for name, f in owner.model_fields.items()]
    close = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6)
    if not loc[:-1]:
        hint = f"did you mean [{close[0]}]?" if close else f"the sections are {', '.join(known)}"
        return f"unknown section; {hint}"
    if close:
        return f"unknown key; did you mean {_dotted((*loc[:-1], close[0]))}?"
    return f"unknown key; [{_dotted(loc[:-1])}] has {', '.join(known)}"


def _model_at(loc: tuple[str, ...]) -> Optional[type[BaseModel]]:
    model: Any = Config
    for part in loc:
        if _is_model(model):
            field = _fields_by_key(model).get(part)
            if field is None:
                return None
            model = field.annotation
        elif get_origin(model) is dict:
            model = get_args(model)[1]
        else:
            return None
        model = _unwrap(model)[0]
    return model if _is_model(model) else None


def _field_at(loc: tuple[Any, ...]) -> tuple[tuple[Any, ...], Optional[tuple[Any, list[Any], dict[str, Any]]]]:
    """The part of ``loc`` that names a setting, and that setting's type, constraints and extra schema."""
    model: Any = Config
    leaf: Optional[tuple[Any, list[Any], dict[str, Any]]] = None
    for i, part in enumerate(loc):
        if _is_model(model):
            field = _fields_by_key(model).get(str(part))
            if field is None:
                return loc[: i + 1], None
            annotation, metadata = _unwrap(field.annotation, list(field.metadata))
            leaf = (annotation, metadata, dict(field.json_schema_extra or {}))  # type: ignore[arg-type]
            model = annotation
        elif get_origin(model) is dict and isinstance(part, str):
            annotation, metadata = _unwrap(get_args(model)[1])
            leaf = (annotation, metadata, {})
            model = annotation
        else:
            # a list element, or deeper than any setting: the whole setting is what is wrong
            return loc[:i], leaf
    return loc, leaf


def _fields_by_key(model: type[BaseModel]) -> dict[str, FieldInfo]:
    return {(f.alias or name): f for name, f in model.model_fields.items()}


def _unwrap(annotation: Any, metadata: Optional[list[Any]] = None) -> tuple[Any, list[Any]]:
    """Strip Optional and Annotated, collecting constraints on the way."""
    metadata = list(metadata or [])
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation, *extra = get_args(annotation)
            for item in extra:
                metadata.extend(item.metadata if isinstance(item, FieldInfo) else [item])
        elif origin in (Union, types.UnionType) and type(None) in get_args(annotation):
            rest = [a for a in get_args(annotation) if a is not type(None)]
            annotation = rest[0] if len(rest) == 1 else Union[tuple(rest)]
        else:
            return annotation, metadata


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _choices(annotation: Any) -> Optional[tuple[Any, ...]]:
    return get_args(annotation) if get_origin(annotation) is Literal else None


def _allowed(annotation: Any, metadata: list[Any], extra: dict[str, Any], typed: bool = True) -> str:
    """What a setting accepts, in words: "between 0 and 1", or with ``typed`` "a number between 0 and 1"."""
    if "allowed" in extra:
        return str(extra["allowed"])
    if annotation is bool:
        return "true or false"
    if annotation in (int, float):
        span = _span(metadata)
        noun = "a whole number" if annotation is int else "a number"
        if not typed:
            return span
        return f"{noun} {span}".strip() if span else noun
    choices = _choices(annotation)
    if choices:
        return "one of " + ", ".join(_toml_value(c) for c in choices)
    if get_origin(annotation) is list:
        item, _ = _unwrap(get_args(annotation)[0])
        item_choices = _choices(item)
        what = ", ".join(_toml_value(c) for c in item_choices) if item_choices else "strings"
        least = next((m.min_length for m in metadata if isinstance(m, at.MinLen)), 0)
        return f"{'a non-empty' if least else 'a'} list of distinct values from {what}"
    if _is_model(annotation) or get_origin(annotation) is dict:
        return "a table"
    if annotation is str:
        return "a string"
    return "valid"


def _span(metadata: list[Any]) -> str:
    bounds = {}
    for m in metadata:
        for name in ("ge", "gt", "le", "lt"):
            if isinstance(m, getattr(at, name.capitalize())):
                bounds[name] = getattr(m, name)
    low = ("ge", bounds["ge"]) if "ge" in bounds else ("gt", bounds["gt"]) if "gt" in bounds else None
    high = ("le", bounds["le"]) if "le" in bounds else ("lt", bounds["lt"]) if "lt" in bounds else None
    if low and high:
        if low[0] == "ge" and high[0] == "le":
            return f"between {_num(low[1])} and {_num(high[1])}"
        first = f"at least {_num(low[1])}" if low[0] == "ge" else f"above {_num(low[1])}"
        second = f"at most {_num(high[1])}" if high[0] == "le" else f"below {_num(high[1])}"
        return f"{first} and {second}"
    if low:
        return f"at least {_num(low[1])}" if low[0] == "ge" else f"above {_num(low[1])}"
    if high:
        return f"at most {_num(high[1])}" if high[0] == "le" else f"below {_num(high[1])}"
    return ""


def _num(value: float) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


