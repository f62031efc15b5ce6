"""MQL5 → C++ for ``g++ -fsyntax-only``, mechanically and line for line.

On top of the pre-pass (``prepass.py``), guided by tree-sitter's parse so that comments and strings are never
mistaken for code:

- ``#include <Trade\\Trade.mqh>`` → ``#include <Trade/Trade.mqh>`` (the stub or the rewritten include);
- arrays, which MQL5 passes by reference only and resizes at run time: a parameter ``const T &a[]`` becomes
  ``const MqlArray<T> &a`` and a declaration ``T a[]`` or ``T a[N]`` becomes ``MqlArray<T> a``. ``MqlArray`` is
  a template of the stub header, so the element type still has to match and a wrong argument count still fails;
- string literals become ``string("...")``: in MQL5 a literal is a ``string``, so ``"a" + "b"`` (also through
  ``#define`` constants) concatenates; in C++ it would be pointer arithmetic. A ``#define`` whose whole value is
  one literal is wrapped the same way, and so are adjacent literals ``"a" "b"``, which MQL5 joins as C++ does.

Lines never move, so g++'s line numbers are the MQL5 file's. What is not rewritten must already be valid C++,
which is why the EA keeps to a plain subset of MQL5 (``rules.py`` checks the rest of that subset).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import tree_sitter
import tree_sitter_cpp

from .prepass import prepass

_LANGUAGE = tree_sitter.Language(tree_sitter_cpp.language())
_DECLARATIONS = ("parameter_declaration", "optional_parameter_declaration", "declaration", "field_declaration")
_STRING_DEFINE = re.compile(r'^(\s*)("(?:[^"\\\n]|\\.)*")(\s*)$')


class RewriteError(Exception):
    """A construct the mechanical rewrite does not handle; the message names file, line and column."""


def parser() -> tree_sitter.Parser:
    return tree_sitter.Parser(_LANGUAGE)


@dataclass(frozen=True)
class Edit:
    start: int  # byte offsets into the pre-passed source
    end: int
    text: bytes


def _where(name: str, node: tree_sitter.Node) -> str:
    return f"{name}:{node.start_point.row + 1}:{node.start_point.column + 1}"


def _array_edits(node: tree_sitter.Node, source: bytes, name: str, done: set[int]) -> list[Edit]:
    owner = node.parent
    while owner is not None and owner.type not in _DECLARATIONS:
        owner = owner.parent
    if owner is None:
        raise RewriteError(f"{_where(name, node)}: array declarator outside a declaration")
    inner = node.child_by_field_name("declarator")
    if inner is None or inner.type == "array_declarator":
        raise RewriteError(f"{_where(name, node)}: multi-dimensional arrays are not rewritten")
    edits = [Edit(node.start_byte, node.end_byte, source[inner.start_byte:inner.end_byte])]
    if owner.id in done:
        return edits
    done.add(owner.id)
    declarators = owner.children_by_field_name("declarator")
    for d in declarators:
        if b"[" not in source[d.start_byte:d.end_byte]:
            raise RewriteError(f"{_where(name, owner)}: arrays and plain variables in one declaration")
    type_node = owner.child_by_field_name("type")
    if type_node is None:
        raise RewriteError(f"{_where(name, owner)}: array declaration without a type")
    type_text = source[type_node.start_byte:type_node.end_byte]
    edits.append(Edit(type_node.start_byte, type_node.end_byte, b"MqlArray<" + type_text + b">"))
    return edits


def rewrite(mql5: str, name: str = "<mql5>") -> str:
    """The MQL5 source as C++ for g++, with every line where it was."""
    text = prepass(mql5)
    source = text.encode("utf-8")
    tree = parser().parse(source)
    edits: list[Edit] = []
    done: set[int] = set()
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        kind = node.type
        if kind == "preproc_include":
            path = node.child_by_field_name("path")
            if path is not None:
                edits.append(Edit(path.start_byte, path.end_byte, source[path.start_byte:path.end_byte].replace(b"\\", b"/")))
            continue
        if kind == "preproc_def":
            value = node.child_by_field_name("value")
            if value is not None:
                m = _STRING_DEFINE.match(source[value.start_byte:value.end_byte].decode("utf-8"))
                if m:
                    wrapped = f"{m.group(1)}string({m.group(2)}){m.group(3)}"
                    edits.append(Edit(value.start_byte, value.end_byte, wrapped.encode("utf-8")))
            continue
        if kind in ("string_literal", "concatenated_string"):
            edits.append(Edit(node.start_byte, node.start_byte, b"string("))
            edits.append(Edit(node.end_byte, node.end_byte, b")"))
            continue
        if kind == "array_declarator":
            edits.extend(_array_edits(node, source, name, done))
        stack.extend(node.children)
    # apply from the end; insertions at one point keep their order
    out = source
    for edit in sorted(edits, key=lambda e: (e.start, e.end), reverse=True):
        if b"\n" in out[edit.start:edit.end] or b"\n" in edit.text:
            raise RewriteError(f"{name}: an edit would move lines at byte {edit.start}")
        out = out[:edit.start] + edit.text + out[edit.end:]
    result = out.decode("utf-8")
    assert result.count("\n") == mql5.count("\n")
    return result
