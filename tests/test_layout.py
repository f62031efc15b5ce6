"""The house's rooms and the one way their imports run.

cli → workbench → simulator / mt5 → bridge / market → core → config → common. A room imports only the rooms
below it (and itself); lazy imports inside functions count too, since they run just the same. The compiled
core in ext/ imports only mt5bridge.core and does no file or socket I/O of its own.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "mt5bridge"

# What each room may import, besides itself.
BELOW: dict[str, set[str]] = {
    "common": set(),
    "config": {"common"},
    "core": {"config", "common"},
    "market": {"core", "config", "common"},
    "bridge": {"core", "config", "common"},
    "simulator": {"bridge", "market", "core", "config", "common"},
    "mt5": {"bridge", "market", "core", "config", "common"},
    "workbench": {"simulator", "mt5", "bridge", "market", "core", "config", "common"},
    "cli": {"workbench", "simulator", "mt5", "bridge", "market", "core", "config", "common"},
}
# The package's own top: its version, `python -m mt5bridge`, and the public path of the compiled engine.
TOP = {"__init__": set(), "__main__": {"cli"}, "engine": {"core"}}


def _room(module: str) -> str | None:
    """The room of a dotted module inside the package: 'bridge' for mt5bridge.bridge.node."""
    parts = module.split(".")
    if parts[0] != "mt5bridge" or len(parts) == 1:
        return None
    return parts[1]


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every mt5bridge module ``path`` imports, at the top or inside a function, with its line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "mt5bridge":
                # `from mt5bridge import protocol`: each name may be a module of the top.
                found += [(node.lineno, f"mt5bridge.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.ImportFrom) and node.level:
            pytest.fail(f"{path.relative_to(ROOT)}:{node.lineno}: relative import; the house uses absolute ones")
    return [(line, name) for line, name in found if name.split(".")[0] == "mt5bridge"]


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "mql5" not in p.relative_to(PACKAGE).parts)


def test_every_module_lives_in_a_room():
    loose = [p.name for p in PACKAGE.glob("*.py") if p.stem not in TOP]
    assert loose == [], f"modules outside the rooms: {loose}; put each in the room of its idea"
    rooms = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()} - {"mql5"}
    assert rooms == set(BELOW), f"rooms on disk {sorted(rooms)} differ from the layers {sorted(BELOW)}"
    for room in rooms:
        doc = ast.get_docstring(ast.parse((PACKAGE / room / "__init__.py").read_text()))
        assert doc, f"mt5bridge/{room}/__init__.py says nothing of its idea"


def test_imports_run_one_way():
    wrong = []
    for path in _modules():
        rel = path.relative_to(PACKAGE)
        here = rel.parts[0] if len(rel.parts) > 1 else None
        allowed = BELOW[here] | {here} if here else TOP[path.stem]
        for line, name in _imports(path):
            room = _room(name)
            if room is None or room == "__version__":   # the package's version, at its top for everyone
                continue
            if room not in allowed and (here is not None or room not in TOP):
                wrong.append(f"mt5bridge/{rel}:{line}: {here or 'top'} imports {name}")
    assert wrong == [], "imports that run up the house:\n" + "\n".join(wrong)


def test_the_decision_engine_and_the_news_calendar_do_not_import_each_other():
    decision = [name for _, name in _imports(PACKAGE / "core" / "decision.py")]
    news = [name for _, name in _imports(PACKAGE / "market" / "news.py")]
    assert not any(n.startswith("mt5bridge.market") for n in decision)
    assert not any(n.startswith("mt5bridge.core") for n in news)


def test_the_compiled_core_imports_only_core_and_does_no_io():
    for path in sorted((ROOT / "ext").glob("*.p*")):
        if path.suffix not in (".pyx", ".pxi"):
            continue
        code = "\n".join(line.split("#", 1)[0] for line in path.read_text().splitlines())
        for name in re.findall(r"\b(?:from|import)\s+(mt5bridge[\w.]*)", code):
            assert name.startswith("mt5bridge.core."), f"{path.name} imports {name}: ext/ is the compiled core"
        for io in (r"\bopen\(", r"\bimport\s+(zmq|socket|sqlite3)\b", r"\bPath\("):
            assert not re.search(io, code), f"{path.name} does I/O ({io}); the compiled core takes plain values"
