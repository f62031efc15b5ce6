"""Does the EA write and read exactly the wire protocol?

The EA builds each message in one function (``BuildTick`` ...) and reads each bridge message in one
(``ParseCommand`` ...), naming every key with a ``MT5B_F_*`` constant of the generated ``Protocol.mqh``. This
module reads those functions with tree-sitter, maps the constants to field names, and compares them with the
JSON Schema the protocol generates (``docs/protocol.schema.json``):

- every key a builder writes is a field of its message, every required field is written, and the ``type`` it
  writes is its own message type;
- every key a parser reads is a field of its message, and together with the reply header it reads them all;
- ``MT5B_F_*`` constants appear in no other function, so no key is written or read anywhere unchecked;
- no string literal outside ``Protocol.mqh`` equals a field name, message type or enum value of the protocol:
  a retyped ``"bid"`` would not follow a change of the protocol.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from .prepass import code_mask, prepass
from .rewrite import parser

# message functions of the EA → the schema definitions whose fields they write or read
BUILDERS = {
    "BuildHello": "HELLO",
    "BuildWarmup": "WARMUP",
    "BuildTick": "TICK",
    "BuildResult": "RESULT",
    "BuildDeal": "DEAL",
    "BuildFailsafe": "FAILSAFE",
    "BuildHeartbeat": "HEARTBEAT",
    "BuildClock": "CLOCK",
    "BuildBye": "BYE",
    "WritePosition": "Position",
}
PARSERS = {
    "ParseWelcome": "WELCOME",
    "ParseCommand": "COMMAND",
    "ParseError": "ERROR",
    "ReadCommandId": "COMMAND",
}
# read before the type is known: must be fields of every bridge → EA message
REPLY_HEADER = "ReadReplyHeader"
BRIDGE_MESSAGES = ("WELCOME", "COMMAND", "ERROR")


@dataclass
class Protocol:
    """What Protocol.mqh defines and what the schema says each message holds."""

    defines: dict[str, str | int]  # MT5B_* → value
    properties: dict[str, set[str]]  # message type (or "Position") → its fields
    required: dict[str, set[str]]
    vocabulary: set[str] = field(default_factory=set)  # every field name, type and enum value

    def field_name(self, constant: str) -> str | None:
        value = self.defines.get(constant)
        return value if isinstance(value, str) else None


def load_protocol(mqh: Path, schema_path: Path) -> Protocol:
    defines: dict[str, str | int] = {}
    for m in re.finditer(r'^#define[ \t]+(MT5B_\w+)[ \t]+(\S.*?)[ \t]*$', mqh.read_text(encoding="utf-8"), re.MULTILINE):
        value = m.group(2)
        if value.startswith('"'):
            defines[m.group(1)] = json.loads(value)
        else:
            defines[m.group(1)] = int(value.strip("()"))
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    properties: dict[str, set[str]] = {}
    required: dict[str, set[str]] = {}
    vocabulary: set[str] = set()
    for name, definition in schema["$defs"].items():
        props = definition.get("properties", {})
        kind = props.get("type", {}).get("const", name)
        properties[kind] = set(props)
        required[kind] = set(definition.get("required", []))
        vocabulary.update(props)
        vocabulary.add(kind)
        for prop in props.values():
            vocabulary.update(_enum_values(prop))
    return Protocol(defines, properties, required, vocabulary)


def _enum_values(prop: dict) -> set[str]:
    values = {v for v in prop.get("enum", []) if isinstance(v, str)}
    if isinstance(prop.get("const"), str):
        values.add(prop["const"])
    nested = list(prop.get("anyOf", []))
    if isinstance(prop.get("items"), dict):
        nested.append(prop["items"])
    for option in nested:
        values.update(_enum_values(option))
    return values


@dataclass
class Function:
    name: str
    file: Path
    line: int
    constants: list[str]  # MT5B_* identifiers in its body, in order
    start: int = 0  # character offsets of the definition in the file
    end: int = 0


def functions(files: list[Path]) -> list[Function]:
    """Every function and method definition of the EA with the MT5B_* identifiers it uses."""
    found: list[Function] = []
    for path in files:
        source = prepass(path.read_text(encoding="utf-8")).encode("utf-8")
        tree = parser().parse(source)
        stack = [tree.root_node]
        while stack:
            node = stack.pop()
            if node.type == "function_definition":
                declarator = node.child_by_field_name("declarator")
                name_node = declarator.child_by_field_name("declarator") if declarator else None
                name = source[name_node.start_byte:name_node.end_byte].decode() if name_node else "?"
                body = source[node.start_byte:node.end_byte].decode("utf-8")
                start = len(source[:node.start_byte].decode("utf-8"))
                found.append(Function(name.split("::")[-1], path, node.start_point.row + 1,
                                      re.findall(r"\bMT5B_[A-Z0-9_]+\b", body), start, start + len(body)))
                continue
            stack.extend(node.children)
    return found


def check(files: list[Path], protocol: Protocol) -> list[str]:
    """Every way the EA's messages differ from the protocol, as 'file:line: problem'."""
    problems: list[str] = []
    by_name: dict[str, Function] = {}
    found = functions(files)
    problems.extend(_fields_outside_functions(files, found))
    for fn in found:
        where = f"{fn.file}:{fn.line}"
        keys = [protocol.field_name(c) for c in fn.constants if c.startswith("MT5B_F_")]
        unknown = [c for c in fn.constants if c not in protocol.defines]
        for constant in unknown:
            problems.append(f"{where}: {fn.name} uses {constant}, which Protocol.mqh does not define")
        if fn.name in BUILDERS or fn.name in PARSERS or fn.name == REPLY_HEADER:
            if fn.name in by_name:
                problems.append(f"{where}: {fn.name} is defined twice")
            by_name[fn.name] = fn
        elif keys:
            problems.append(f"{where}: {fn.name} names protocol fields {sorted({k for k in keys if k})}; only the "
                            "Build*/Parse* message functions may")
    for name, kind in BUILDERS.items():
        fn = by_name.get(name)
        if fn is None:
            problems.append(f"the EA has no {name} (it builds {kind})")
            continue
        where = f"{fn.file}:{fn.line}"
        written = {protocol.field_name(c) for c in fn.constants if c.startswith("MT5B_F_")}
        for key in sorted(k for k in written - protocol.properties[kind] if k):
            problems.append(f"{where}: {name} writes '{key}', which {kind} does not have")
        for key in sorted(protocol.required[kind] - written):
            problems.append(f"{where}: {name} does not write '{key}', which {kind} requires")
        types = {protocol.defines.get(c) for c in fn.constants if c.startswith("MT5B_MSG_")}
        expected = set() if kind == "Position" else {kind}
        if types != expected:
            problems.append(f"{where}: {name} writes type {sorted(t for t in types if t)}, expected {sorted(expected)}")
    header = by_name.get(REPLY_HEADER)
    header_keys = {protocol.field_name(c) for c in header.constants if c.startswith("MT5B_F_")} if header else set()
    if header is None:
        problems.append(f"the EA has no {REPLY_HEADER}")
    for kind in BRIDGE_MESSAGES:
        for key in sorted(k for k in header_keys - protocol.properties[kind] if k):
            problems.append(f"{header.file}:{header.line}: {REPLY_HEADER} reads '{key}', which {kind} does not have")
    read: dict[str, set[str]] = {kind: set(header_keys) for kind in BRIDGE_MESSAGES}
    for name, kind in PARSERS.items():
        fn = by_name.get(name)
        if fn is None:
            problems.append(f"the EA has no {name} (it reads {kind})")
            continue
        keys = {protocol.field_name(c) for c in fn.constants if c.startswith("MT5B_F_")}
        for key in sorted(k for k in keys - protocol.properties[kind] if k):
            problems.append(f"{fn.file}:{fn.line}: {name} reads '{key}', which {kind} does not have")
        read[kind] |= {k for k in keys if k}
    for kind in BRIDGE_MESSAGES:
        for key in sorted(protocol.properties[kind] - read[kind]):
            problems.append(f"the EA never reads '{key}' of {kind}")
    return problems


def _fields_outside_functions(files: list[Path], found: list[Function]) -> list[str]:
    """MT5B_F_* in code outside any function (a global, a #define of our own): a key nothing would check."""
    problems = []
    for path in files:
        if path.name == "Protocol.mqh":
            continue
        text = path.read_text(encoding="utf-8")
        mask = code_mask(text)
        ranges = [(fn.start, fn.end) for fn in found if fn.file == path]
        for m in re.finditer(r"\bMT5B_F_[A-Z0-9_]+\b", text):
            if mask[m.start()] and not any(a <= m.start() < b for a, b in ranges):
                line = text.count("\n", 0, m.start()) + 1
                problems.append(f"{path}:{line}: {m.group(0)} outside a message function")
    return problems


def _literal_value(text: str) -> str | None:
    try:
        return json.loads(text)
    except ValueError:
        return None


def retyped_literals(files: list[Path], protocol: Protocol) -> list[str]:
    """String literals outside Protocol.mqh equal to a protocol name or value, as 'file:line:col: ...'."""
    problems: list[str] = []
    words = {w for w in protocol.vocabulary if w}
    for path in files:
        if path.name == "Protocol.mqh":
            continue
        source = prepass(path.read_text(encoding="utf-8")).encode("utf-8")
        tree = parser().parse(source)
        stack = [tree.root_node]
        while stack:
            node = stack.pop()
            if node.type == "preproc_include":
                continue
            texts = []
            if node.type == "string_literal":
                texts = [(node, source[node.start_byte:node.end_byte].decode("utf-8"))]
            elif node.type == "preproc_arg":
                text = source[node.start_byte:node.end_byte].decode("utf-8")
                texts = [(node, m.group(0)) for m in re.finditer(r'"(?:[^"\\\n]|\\.)*"', text)]
            for where, literal in texts:
                value = _literal_value(literal)
                if value in words:
                    problems.append(f"{path}:{where.start_point.row + 1}:{where.start_point.column + 1}: string "
                                    f"literal {literal} is a protocol name or value: use its MT5B_* constant")
            if node.type != "string_literal":
                stack.extend(node.children)
    return problems
