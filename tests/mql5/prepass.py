"""MQL5 → C++ for a parser, without moving a single line or column.

MQL5 is C++ with a handful of additions. This pass rewrites only those, in place and length for length, so that
a parse error reported on the result points at the same line and column of the MQL5 file:

- ``#property ...`` and the ``#import "x.dll"`` / ``#import`` lines → blanks (the declarations between the two
  ``#import`` lines stay: they are plain C declarations);
- ``input group "..."`` → blanks; ``input`` / ``sinput`` before a declaration → ``const`` (an input is read-only);
- ``C'..'`` (colour) and ``D'..'`` (date) literals → ``0`` and blanks.

Comments, strings and character literals are skipped by a small lexer, so text inside them is never touched.
"""

from __future__ import annotations

import re

_INPUT = re.compile(r"(input|sinput)(?=\s)")
_INPUT_GROUP = re.compile(r"(input|sinput)\s+group\b")


def _blank(text: str) -> str:
    # Same length, newlines kept: columns and lines of everything after stay where they were.
    return "".join(c if c in "\r\n" else " " for c in text)


def code_mask(source: str) -> list[bool]:
    """For each character, True when it is code (not inside a comment, string or character literal)."""
    mask = [True] * len(source)
    i, n = 0, len(source)
    while i < n:
        c = source[i]
        nxt = source[i + 1] if i + 1 < n else ""
        if c == "/" and nxt == "/":
            j = source.find("\n", i)
            j = n if j < 0 else j
        elif c == "/" and nxt == "*":
            j = source.find("*/", i + 2)
            j = n if j < 0 else j + 2
        elif c in "\"'":
            j = i + 1
            while j < n and source[j] != c and source[j] != "\n":
                j += 2 if source[j] == "\\" else 1
            j = min(j + 1, n)
        else:
            i += 1
            continue
        for k in range(i, j):
            mask[k] = False
        i = j
    return mask


def prepass(source: str) -> str:
    """``source`` with MQL5's additions rewritten for a C++ parser; same length, same lines, same columns."""
    out = list(source)
    mask = code_mask(source)
    offset = 0
    for line in source.splitlines(keepends=True):
        start = offset
        offset += len(line)
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        first = start + indent
        if not stripped or not mask[first]:
            continue
        if re.match(r"#\s*(property|import)\b", stripped):
            out[first:start + len(line.rstrip("\r\n"))] = _blank(line[indent:].rstrip("\r\n"))
            continue
        if _INPUT_GROUP.match(stripped):
            out[first:start + len(line.rstrip("\r\n"))] = _blank(line[indent:].rstrip("\r\n"))
            continue
        m = _INPUT.match(stripped)
        if m:
            word = m.group(1)
            out[first:first + len(word)] = " " * (len(word) - 5) + "const"
    text = "".join(out)
    # C'..' and D'..' literals: the letter must start a token and be code
    result = list(text)
    for m in re.finditer(r"(?<![A-Za-z0-9_])[CD]'[^'\n]*'", text):
        if mask[m.start()]:
            result[m.start():m.end()] = "0" + " " * (m.end() - m.start() - 1)
    return "".join(result)
