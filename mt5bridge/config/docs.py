"""docs/config.md, generated from the schema and the presets: ``python -m mt5bridge.config --write-docs``
(``--check-docs`` exits 1 when it is stale).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Optional, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from mt5bridge.config.loading import PRESET_DIR, PRESETS, parse_config
from mt5bridge.config.params import engine_params
from mt5bridge.config.problems import _allowed, _is_model, _num, _unwrap
from mt5bridge.config.schema import CROSS_RULES, Config
from mt5bridge.config.wording import _dotted, _toml_value
from mt5bridge.config.writer import _is_table, _table_items, _write_table

ROOT = Path(__file__).resolve().parents[2]
DOCS_PATH = ROOT / "docs" / "config.md"
DOCS_COMMAND = "python -m mt5bridge.config --write-docs"

# --- docs/config.md ------------------------------------------------------------------------------------------


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _default_text(field: FieldInfo) -> str:
    value = field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]
    if value is None:
        return f"left out: {(field.json_schema_extra or {}).get('when_unset', 'not set')}"  # type: ignore[union-attr]
    return f"`{_toml_value(value)}`"


def _field_rows(model: type[BaseModel]) -> list[str]:
    rows = ["| key | default | allowed | meaning |", "| --- | --- | --- | --- |"]
    for name, field in model.model_fields.items():
        annotation, metadata = _unwrap(field.annotation, list(field.metadata))
        if _is_model(annotation) or get_origin(annotation) is dict:
            continue
        allowed = _allowed(annotation, metadata, dict(field.json_schema_extra or {}))  # type: ignore[arg-type]
        if field.default is None and field.default_factory is None:
            allowed += ", or left out"
        meaning = _md(field.description or "")
        rows.append(f"| `{field.alias or name}` | {_default_text(field)} | {_md(allowed)} | {meaning} |")
    return rows


def _doc_model(out: list[str], title: str, model: type[BaseModel], description: str) -> None:
    out += ["", f"## {title}", "", _md(" ".join((model.__doc__ or description).split())), ""]
    out += _field_rows(model)
    rules = [r.text for r in getattr(model, "rules", ())]
    if rules:
        out += ["", "Rules: " + "; ".join(rules) + "."]
    for name, field in model.model_fields.items():
        annotation, _ = _unwrap(field.annotation)
        key = field.alias or name
        if _is_model(annotation):
            _doc_model(out, f"[{title.strip('[]')}.{key}]", annotation, field.description or "")
        elif get_origin(annotation) is dict and not _is_model(_unwrap(get_args(annotation)[1])[0]):
            out += ["", f"## [{title.strip('[]')}.{key}]", "", _md(field.description or "")]
            out += ["", "Shipped:", "", "```toml"]
            lines: list[str] = []
            _write_table(lines, (title.strip("[]"), key), field.default_factory())  # type: ignore[misc,call-arg]
            out += lines + ["```"]


def _flat_settings(obj: BaseModel | dict[str, Any], prefix: tuple[str, ...] = ()) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value, _ in _table_items(obj):
        if _is_table(value):
            flat.update(_flat_settings(value, (*prefix, key)))
        else:
            flat[_dotted((*prefix, key))] = value
    return flat


def _preset_rows(preset_dir: Path) -> list[str]:
    """What each shipped preset changes, read as written (a relative path stays relative)."""
    presets = {}
    for name in PRESETS[1:]:
        path = preset_dir / f"{name}.toml"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: the preset is missing; docs/config.md lists every preset")
        presets[name] = _flat_settings(parse_config(path.read_text(encoding="utf-8"), str(path)))
    defaults = _flat_settings(Config())
    changed = [k for k in defaults if any(p.get(k) != defaults[k] for p in presets.values())]
    rows = [
        "| setting | default | " + " | ".join(f"`{n}.toml`" for n in presets) + " |",
        "| --- | --- | " + " | ".join("---" for _ in presets) + " |",
    ]
    for key in changed:
        cells = [f"`{_toml_value(p[key])}`" if p.get(key) != defaults[key] else "" for p in presets.values()]
        rows.append(f"| `{key}` | `{_toml_value(defaults[key])}` | " + " | ".join(cells) + " |")
    return rows


def _engine_rows() -> list[str]:
    doc = (engine_params.__doc__ or "").replace("``", "`")
    intro, _, bullets = doc.partition("\n\n")
    out = [" ".join(intro.split()), ""]
    for line in bullets.strip().splitlines():
        line = line.strip()
        out.append(line if line.startswith("- ") else f"  {line}")
    out += ["", "| key | C type | default |", "| --- | --- | --- |"]
    for key, value in engine_params(Config()).items():
        out.append(f"| `{key}` | {'int64_t' if isinstance(value, int) else 'double'} | {_num(value)} |")
    return out


def render_docs(preset_dir: Path = PRESET_DIR) -> str:
    """docs/config.md; ``preset_dir`` is the checkout's config/ folder (the presets are not installed)."""
    out = [
        "# Configuration",
        "",
        f"<!-- Generated by `{DOCS_COMMAND}` from `mt5bridge/config/schema.py`: change the models, not this page. -->",
        "",
        "Every threshold of the decision engine is set in one TOML file. An empty file is the FTMO 2-Step "
        "challenge; `config/default.toml` lists every key with its default. Check a file before trading it:",
        "",
        "```bash",
        "mt5bridge check-config config/funded_standard.toml",
        "```",
        "",
        "It prints every effective value (defaults filled in) and `OK: <file>`, or every problem at once, one "
        "line each, naming the file, the key, the value and what is allowed, and exits with status 2:",
        "",
        "```text",
        "config/my.toml: entry.min_confidence = 1.4: must be between 0 and 1",
        "config/my.toml: entry.min_confidance = 0.6: unknown key; did you mean entry.min_confidence?",
        "config/my.toml: sizing.base_risk_pct_min = 0.8: must not be above sizing.base_risk_pct_max (0.5)",
        "```",
        "",
        "Unknown keys, wrong types (a number in quotes, `1` for `true`), `nan` and `inf` are refused. Integer "
        "settings take whole numbers only; number settings take `5` as well as `5.0`. `[symbols.NAME]` and "
        "`[sizing.correlation]` add to what ships (an entry of the same name, or the same pair in either order, "
        "replaces the shipped one); every other table has exactly the keys below.",
        "",
        "## Presets",
        "",
        "In `config/`: `default.toml` (2-Step challenge), `verification.toml`, `funded_standard.toml`, "
        "`funded_swing.toml`, `one_step.toml`. A preset sets only what differs from the defaults:",
        "",
        *_preset_rows(preset_dir),
        "",
        "Rules between sections: " + "; ".join(rule.text for rule in CROSS_RULES) + ".",
    ]
    for name, field in Config.model_fields.items():
        annotation, _ = _unwrap(field.annotation)
        if _is_model(annotation):
            _doc_model(out, f"[{name}]", annotation, field.description or "")
        elif get_origin(annotation) is dict:
            entry = _unwrap(get_args(annotation)[1])[0]
            _doc_model(out, f"[{name}.NAME]", entry, field.description or "")
            out += ["", _md(field.description or ""), "", "Shipped:", "", "```toml"]
            lines: list[str] = []
            _write_table(lines, (name,), field.default_factory())  # type: ignore[misc,call-arg]
            out += lines + ["```"]
    out += ["", "## Engine parameters", "", *_engine_rows()]
    return "\n".join(out) + "\n"


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mt5bridge.config", description="Write or check docs/config.md.")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write-docs", action="store_true", help=f"regenerate {DOCS_PATH.relative_to(ROOT)}")
    mode.add_argument("--check-docs", action="store_true", help="exit 1 when the page is stale")
    args = parser.parse_args(argv)
    text = render_docs()
    if args.check_docs:
        current = DOCS_PATH.read_text(encoding="utf-8") if DOCS_PATH.exists() else ""
        if current != text:
            print(f"stale: {DOCS_PATH.relative_to(ROOT)} (run {DOCS_COMMAND})")
            return 1
        return 0
    DOCS_PATH.parent.mkdir(parents=True, exist_ok=True)
    DOCS_PATH.write_text(text, encoding="utf-8", newline="\n")
    print(f"wrote {DOCS_PATH.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
