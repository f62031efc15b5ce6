"""The effective configuration as TOML: every setting with its value, defaults included, written by tomli-w.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Optional

import tomli_w
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from mt5bridge.config.schema import Config
from mt5bridge.config.wording import _dotted, _key

# The tables and the notes on unset keys are laid out here; every key and value is written by tomli-w, so that
# quoting, escapes, floats (inf, nan) and times are TOML as its maintainers read the standard.

def _plain(value: Any) -> Any:
    """A setting's value as the types tomli-w writes (tuples are arrays)."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _is_table(value: Any) -> bool:
    return isinstance(value, (BaseModel, dict))


def _table_items(obj: BaseModel | dict[str, Any]) -> Iterator[tuple[str, Any, Optional[FieldInfo]]]:
    if isinstance(obj, BaseModel):
        for name, field in type(obj).model_fields.items():
            yield field.alias or name, getattr(obj, name), field
    else:
        for key, value in obj.items():
            yield str(key), value, None


def _write_table(lines: list[str], path: tuple[str, ...], obj: BaseModel | dict[str, Any]) -> None:
    items = list(_table_items(obj))
    scalars = [(k, v, f) for k, v, f in items if not _is_table(v)]
    tables = [(k, v) for k, v, _ in items if _is_table(v)]
    if path and (scalars or not tables):
        if lines:
            lines.append("")
        lines.append(f"[{_dotted(path)}]")
    for key, value, field in scalars:
        if value is None:
            note = (field.json_schema_extra or {}).get("when_unset", "") if field else ""  # type: ignore[union-attr]
            lines.append(f"# {_key(key)} not set" + (f": {note}" if note else ""))
        else:
            lines.append(tomli_w.dumps({key: _plain(value)}).rstrip("\n"))
    for key, value in tables:
        _write_table(lines, (*path, key), value)


def effective_toml(cfg: Config) -> str:
    """Every setting of ``cfg`` as TOML, defaults included; ``parse_config`` of it gives ``cfg`` back."""
    lines: list[str] = []
    _write_table(lines, (), cfg)
    return "# mt5bridge: the effective configuration, every key with its value\n\n" + "\n".join(lines) + "\n"


