"""The syntax check: tree-sitter's C++ grammar on the pre-passed MQL5 source (``prepass.py``).

Every ERROR node and every token the parser had to invent (a missing ``;``, ``)`` or ``}``) is reported as
``file:line:column`` of the MQL5 file, which the pre-pass keeps in place."""

from __future__ import annotations

from pathlib import Path

from .prepass import prepass
from .rewrite import parser


def syntax_errors_in(text: str, name: str) -> list[str]:
    source = prepass(text).encode("utf-8")
    tree = parser().parse(source)
    errors: list[str] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            what = f"missing '{node.type}'" if node.is_missing else "syntax error"
            snippet = source[node.start_byte:node.end_byte][:40].decode("utf-8", "replace").replace("\n", " ")
            errors.append(f"{name}:{node.start_point.row + 1}:{node.start_point.column + 1}: {what} near '{snippet}'")
            continue
        if node.has_error:
            stack.extend(node.children)
    return sorted(errors)


def syntax_errors(path: Path) -> list[str]:
    return syntax_errors_in(path.read_text(encoding="utf-8"), str(path))
