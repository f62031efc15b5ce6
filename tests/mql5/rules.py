"""What g++ cannot know about MQL5, checked on tree-sitter's parse of the EA.

g++ accepts C++ that MetaEditor refuses. The EA keeps to a plain subset of MQL5, and these checks hold it there:

- no C++ MQL5 lacks or handles differently: pointers and ``->``, ``new``/``delete``, templates, lambdas,
  ``auto``, namespaces, ``using``, exceptions, ``nullptr``, ``unsigned``/``signed``/``long long``, ``#pragma``;
- no variable or parameter named after one of MQL5's C-style math functions (``floor``, ``round``, ...);
- structures and class objects are passed by reference only, arrays too, and no function returns a structure
  (MQL5 refuses the first two; the last is kept out for safety);
- the event handlers have the signatures the terminal calls (a different one would compile and never run);
- the ``#import "libzmq.dll"`` block declares each function as libzmq's ``zmq.h`` does, with C types mapped to
  what a 64-bit terminal passes (``void *`` handle → ``long``, ``size_t`` → ``ulong``, a buffer or C string →
  a ``uchar`` array, ``int *`` → ``int &``), and its constants have zmq.h's values.
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path

from .prepass import prepass
from .rewrite import parser

FORBIDDEN_NODES = {
    "template_declaration": "templates",
    "lambda_expression": "lambdas",
    "namespace_definition": "namespaces",
    "using_declaration": "using",
    "alias_declaration": "using aliases",
    "new_expression": "new (object pointers)",
    "delete_expression": "delete (object pointers)",
    "nullptr": "nullptr",
    "pointer_declarator": "pointers",
    "abstract_pointer_declarator": "pointers",
    "placeholder_type_specifier": "auto",
    "try_statement": "exceptions",
    "throw_statement": "exceptions",
    "static_assert_declaration": "static_assert",
}

# MQL5's C-style names of its math functions: a variable or parameter must not take them
BUILTIN_NAMES = {"fabs", "acos", "asin", "atan", "ceil", "cos", "exp", "floor", "fmax", "fmin", "fmod", "log",
                 "log10", "pow", "rand", "round", "sin", "sqrt", "srand", "tan", "expm1", "log1p", "cosh", "sinh",
                 "tanh", "acosh", "asinh", "atanh"}

HANDLERS = {
    "OnInit": r"intOnInit\((void)?\)",
    "OnDeinit": r"voidOnDeinit\((const)?int\w+\)",
    "OnTick": r"voidOnTick\((void)?\)",
    "OnTimer": r"voidOnTimer\((void)?\)",
    "OnTradeTransaction": r"voidOnTradeTransaction\(constMqlTradeTransaction&\w+,constMqlTradeRequest&\w+,"
                          r"constMqlTradeResult&\w+\)",
}

# structure and class types of the terminal and its standard library the EA uses
TERMINAL_STRUCTS = {"MqlTick", "MqlRates", "MqlDateTime", "MqlTradeRequest", "MqlTradeResult", "MqlTradeTransaction",
                    "CTrade", "CObject"}


def _parse(path: Path):
    source = prepass(path.read_text(encoding="utf-8")).encode("utf-8")
    return source, parser().parse(source)


def _walk(root):
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(node.children)


def _node_text(source: bytes, node) -> str:
    return source[node.start_byte:node.end_byte].decode("utf-8")


def _where(path: Path, node) -> str:
    return f"{path}:{node.start_point.row + 1}:{node.start_point.column + 1}"


def struct_names(files: list[Path]) -> set[str]:
    names = set(TERMINAL_STRUCTS)
    for path in files:
        source, tree = _parse(path)
        for node in _walk(tree.root_node):
            if node.type in ("struct_specifier", "class_specifier") and node.child_by_field_name("body"):
                name = node.child_by_field_name("name")
                if name is not None:
                    names.add(source[name.start_byte:name.end_byte].decode())
    return names


def subset_problems(files: list[Path]) -> list[str]:
    """Constructs outside the MQL5 subset the EA is written in, as 'file:line:col: problem'."""
    problems: list[str] = []
    structs = struct_names(files)
    for path in files:
        source, tree = _parse(path)
        text = partial(_node_text, source)
        for node in _walk(tree.root_node):
            kind = node.type
            if kind in FORBIDDEN_NODES:
                problems.append(f"{_where(path, node)}: {FORBIDDEN_NODES[kind]} are not used in MQL5 code here")
            elif kind == "field_expression" and node.child_by_field_name("operator") is not None \
                    and text(node.child_by_field_name("operator")) == "->":
                problems.append(f"{_where(path, node)}: '->' does not exist in MQL5")
            elif kind == "sized_type_specifier" and text(node) not in ("long", "short"):
                problems.append(f"{_where(path, node)}: '{text(node)}': MQL5 spells it uchar/ushort/uint/ulong/long")
            elif kind == "preproc_call" and text(node).lstrip().startswith("#pragma"):
                problems.append(f"{_where(path, node)}: #pragma is not MQL5 (use #ifndef include guards)")
            elif kind == "reference_declarator" and text(node).lstrip().startswith("&&"):
                problems.append(f"{_where(path, node)}: rvalue references do not exist in MQL5")
            elif kind == "enum_specifier" and any(c.type in ("class", "struct") for c in node.children):
                problems.append(f"{_where(path, node)}: enum class does not exist in MQL5")
            elif kind == "identifier" and text(node) in BUILTIN_NAMES and node.parent is not None \
                    and node.parent.type in ("init_declarator", "declaration", "parameter_declaration",
                                             "optional_parameter_declaration", "reference_declarator"):
                problems.append(f"{_where(path, node)}: '{text(node)}' is an MQL5 built-in function's name")
            elif kind in ("parameter_declaration", "optional_parameter_declaration"):
                problems.extend(_parameter_problems(path, node, text, structs))
            elif kind == "function_definition":
                type_node = node.child_by_field_name("type")
                declarator = node.child_by_field_name("declarator")
                if type_node is not None and text(type_node) in structs and declarator is not None \
                        and declarator.type == "function_declarator":
                    problems.append(f"{_where(path, node)}: returns the structure {text(type_node)} by value; "
                                    "fill a reference parameter instead")
    return problems


def _parameter_problems(path: Path, node, text, structs: set[str]) -> list[str]:
    declarator = node.child_by_field_name("declarator")
    type_node = node.child_by_field_name("type")
    if declarator is None or type_node is None:
        return []
    by_reference = declarator.type == "reference_declarator"
    if declarator.type == "array_declarator":
        return [f"{_where(path, node)}: arrays are passed by reference only in MQL5 ('T &name[]')"]
    if text(type_node) in structs and not by_reference:
        return [f"{_where(path, node)}: '{text(node)}': structures and objects are passed by reference only in MQL5"]
    return []


def handler_problems(main: Path) -> list[str]:
    """The event handlers the EA needs, each with the signature the terminal calls."""
    source, tree = _parse(main)
    found: dict[str, str] = {}
    for node in _walk(tree.root_node):
        if node.type != "function_definition":
            continue
        declarator = node.child_by_field_name("declarator")
        name_node = declarator.child_by_field_name("declarator") if declarator is not None else None
        if name_node is None:
            continue
        name = source[name_node.start_byte:name_node.end_byte].decode()
        if name in HANDLERS:
            signature = source[node.start_byte:declarator.end_byte].decode("utf-8")
            found[name] = re.sub(r"\s+", "", signature)
    problems = []
    for name, pattern in HANDLERS.items():
        if name not in found:
            problems.append(f"{main}: no {name} handler")
        elif not re.fullmatch(pattern, found[name]):
            problems.append(f"{main}: {name} is declared '{found[name]}', which the terminal does not call")
    return problems


# ---- the #import block against zmq.h ------------------------------------------------------------------

_C_DECLARATION = re.compile(r"(?P<ret>[\w ]+?)\s*(?P<star>\*?)\s*(?P<name>zmq_\w+)\s*\((?P<params>[^)]*)\)\s*;")
_HANDLES = {"s_", "context_", ""}


def _c_param(param: str) -> str:
    """One C parameter of zmq.h as the MQL5 parameter type a 64-bit terminal passes for it."""
    m = re.fullmatch(r"\s*(?P<type>(const\s+)?\w+)\s*(?P<star>\*?)\s*(?P<name>\w*)\s*", param)
    if m is None:
        raise ValueError(f"cannot read the C parameter {param!r}")
    ctype, star, name = m.group("type"), m.group("star"), m.group("name")
    if not star:
        return {"int": "int", "size_t": "ulong"}[ctype]
    if ctype == "void" and name in _HANDLES:
        return "long"
    return {"const void": "const uchar &[]", "void": "uchar &[]", "const char": "const uchar &[]",
            "char": "uchar &[]", "int": "int &"}[ctype]


def zmq_reference(path: Path) -> tuple[dict[str, tuple[str, list[str]]], dict[str, int]]:
    """zmq.h's prototypes (name → MQL5 return type, parameter types) and constants, from the reference file."""
    text = path.read_text(encoding="utf-8")
    constants: dict[str, int] = {}
    for m in re.finditer(r"^#define (\w+) (.+)$", text, re.MULTILINE):
        # a number, or a sum of numbers and names defined above it: (ZMQ_HAUSNUMERO + 53)
        terms = m.group(2).strip("()").split("+")
        constants[m.group(1)] = sum(constants[t.strip()] if t.strip() in constants else int(t) for t in terms)
    body = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    body = "\n".join(line for line in body.splitlines() if not line.startswith("#"))
    functions = {}
    for m in _C_DECLARATION.finditer(" ".join(body.split())):
        ret = "long" if m.group("star") else m.group("ret").strip()
        params = [] if m.group("params").strip() == "void" else [_c_param(p) for p in m.group("params").split(",")]
        functions[m.group("name")] = (ret, params)
    return functions, constants


def _mql5_param(param: str) -> str:
    param = " ".join(param.split())
    m = re.fullmatch(r"(?P<const>const )?(?P<type>\w+) ?(?P<ref>&)? ?(?P<name>\w+)(?P<array>\[\])?", param)
    if m is None:
        raise ValueError(f"cannot read the MQL5 parameter {param!r}")
    out = (m.group("const") or "") + m.group("type")
    if m.group("ref"):
        out += " &"
    if m.group("array"):
        out += "[]"
    return out


def import_problems(zmq_mqh: Path, reference: Path) -> list[str]:
    """Differences between the EA's #import "libzmq.dll" block and libzmq's zmq.h."""
    text = zmq_mqh.read_text(encoding="utf-8")
    block = re.search(r'#import\s+"libzmq\.dll"(?P<body>.*?)#import', text, re.DOTALL)
    if block is None:
        return [f"{zmq_mqh}: no #import \"libzmq.dll\" block"]
    expected, constants = zmq_reference(reference)
    problems = []
    imported = {}
    for m in re.finditer(r"(?P<ret>\w+)\s+(?P<name>zmq_\w+)\s*\((?P<params>[^)]*)\)\s*;", block.group("body")):
        params = [_mql5_param(p) for p in m.group("params").split(",") if p.strip() and p.strip() != "void"]
        imported[m.group("name")] = (m.group("ret"), params)
    for name, (ret, params) in imported.items():
        if name not in expected:
            problems.append(f"{zmq_mqh}: {name} is imported but not in the zmq.h reference")
            continue
        if (ret, params) != expected[name]:
            problems.append(f"{zmq_mqh}: {name} imported as {ret}({', '.join(params)}); zmq.h says "
                            f"{expected[name][0]}({', '.join(expected[name][1])})")
    for name in expected:
        if name not in imported:
            problems.append(f"{zmq_mqh}: the zmq.h reference lists {name}, which is not imported (remove it there)")
    for m in re.finditer(r"^#define\s+(ZMQ_\w+)\s+(\d+)", text, re.MULTILINE):
        name = m.group(1)
        reference_name = "ETERM" if name == "ZMQ_ETERM" else name
        if reference_name in constants and constants[reference_name] != int(m.group(2)):
            problems.append(f"{zmq_mqh}: {name} is {m.group(2)}, zmq.h says {constants[reference_name]}")
    return problems


# ---- what each promise of the EA rests on ---------------------------------------------------------------

# (function, what its body must contain, why). The pure parts of each promise (retry policy, sides, clamps,
# finite numbers, the clock) run in the harness; these hold the terminal-bound code to calling them, so undoing
# a fix by dropping a call fails here.
REQUIRED = [
    ("Run", "IsOutcomeUnknown(", "an answer that leaves the outcome unknown ends the job: never a second request"),
    ("Run", "BetweenSteps(", "the equity guard runs before every retry, and an opening job stops when it forbids"),
    ("ExecuteOpen", "OpeningOrderType(", "OPEN and ADD take their order type from BUY or SELL only"),
    ("FromJob", "OutcomeOf(", "RESULT.outcome comes from the server's answer (PLACED is not a fill)"),
    ("FromJob", "sl_after", "RESULT.sl/tp are the stops in force, a stop the broker moved included"),
    ("SendOnce", "FillingAsCTrade(", "the partial close asks for the filling policy CTrade would use"),
    ("ExecuteCloseAll", "BetweenSteps(", "the equity guard runs between the closes of CLOSE_ALL"),
    ("ApplyWelcome", "ClampWelcome(", "WELCOME's timings are held to the EA's own input ranges"),
    ("ApplyWelcome", "journal_id", "the journal's identity from WELCOME keys the executed ids"),
    ("EnsureExecutedIds", "JournalId()", "the executed-ids file is per account and journal"),
    ("HandleCommand", ".Claim(", "a command id is claimed in the shared file before its order is sent"),
    ("HandleLateCommands", ".Claim(", "a late command is claimed too, so it can never run later"),
    ("Rewrite", "FileMove(", "the executed-ids file is rewritten through a temporary file moved over it"),
    ("Rewrite", "FILE_REWRITE", "FileMove replaces the old file only with FILE_REWRITE"),
    ("OnInit", "Reinitialise()", "a change of symbol, inputs or account re-initialises what depends on them"),
    ("Reinitialise", "g_executed.Forget()", "the executed-ids file is loaded again after a re-initialisation"),
    ("Reinitialise", "g_guard.Reset(", "the guard's midnight balance is worked out again"),
    ("Reinitialise", "g_session.Reset(", "the session starts again from nothing"),
    ("OnDeinit", "g_last_deinit_reason", "OnInit must know that it re-initialises"),
    ("BetweenSteps", "CheckEquityGuard()", "the steps of a command run the equity guard"),
    ("Service", "WarmupStep()", "the warm-up goes one timeframe per timer event, the guard between them"),
    ("GuardOnce", "g_clock.Offset()", "the guard's Prague day comes from the checked server clock"),
    ("Offset", "WholeHourOffset(", "the server's UTC offset is checked against the PC clock"),
    ("Offset", "TesterServerOffset(", "in the Strategy Tester the broker's known offset is used"),
    ("CollectHello", "FirstDeposit()", "HELLO reports the first deposit"),
    ("CollectHello", "BalanceAtUtc(", "HELLO reports the balance at the last Prague midnight"),
    ("TellClock", "BuildClock(", "a change of the server's UTC offset is told with CLOCK"),
    ("Tick", "TellClock()", "CLOCK goes before the next TICK"),
    ("Tick", "BadNumbers()", "a TICK with NaN or infinity is not sent"),
    ("QueueResult", "FiniteResult(", "a RESULT never carries NaN or infinity as 0"),
    ("Disconnect", "RESULT_UNSENT", "a RESULT not acknowledged is sent again after a reconnect"),
    ("Classify", "Acknowledge(", "a RESULT is dropped only once the bridge has read it"),
    ("Acknowledge", "m_deal_seq[i]<=reply_to", "a DEAL is dropped only once the bridge has read it"),
    ("Flush", "m_deal_seq[i]=seq", "a DEAL sent is kept until acknowledged, not dropped once sent"),
    ("Disconnect", "DEAL_UNSENT", "a DEAL not acknowledged (NOT_INTRODUCED, a lost connection) goes again after "
     "the next WELCOME"),
    ("ApplyWelcome", "m_resend_due=true", "after every WELCOME the deals since the trusted point are sent again"),
    ("Service", "ResendStep()", "the deals go again step by step after a WELCOME, the equity guard between steps"),
    ("ReadResendHistory", "ResendFromMsc(", "the re-send starts at the trusted point, never further back than allowed"),
    ("ReadResendHistory", "PickDealsToResend(", "the re-send is bounded in count, so a reconnect cannot flood"),
    ("ReadResendHistory", "HistorySelect(", "the deals sent again come from the account history"),
    ("OnTick", "MT5B_MAX_POSITIONS", "the EA says when the TICK's position cap hides positions"),
    ("Open", "ZMQ_Z85_KEY_CHARS+1", "CURVE keys go to zmq_setsockopt with their terminating zero"),
]
FORBIDDEN = [
    ("SeenOnAccount", "Sleep(", "the look at the account after an unknown answer never waits"),
    ("WarmupStep", "Sleep(", "waiting for history is a later timer event, never a Sleep"),
    ("SendWarmup", "Sleep(", "waiting for history is a later timer event, never a Sleep"),
    ("ResendStep", "Sleep(", "the re-send after a WELCOME never waits"),
    ("ReadResendHistory", "Sleep(", "the re-send after a WELCOME never waits"),
    ("Open", "ZMQ_Z85_KEY_CHARS)", "a CURVE key without its terminating zero (40 bytes) is not what zmq_setsockopt reads"),
]


def _bodies(files: list[Path]) -> dict[str, str]:
    from .conformance import functions

    texts = {path: path.read_text(encoding="utf-8") for path in files}
    bodies: dict[str, str] = {}
    for fn in functions(files):
        code = re.sub(r"//[^\n]*", " ", texts[fn.file][fn.start:fn.end])
        bodies[fn.name] = bodies.get(fn.name, "") + "\n" + code
    return bodies


def promise_problems(files: list[Path]) -> list[str]:
    """Calls the EA's promises rest on that are missing, and waits where none may be."""
    bodies = _bodies(files)
    problems = []
    for name, needed, why in REQUIRED:
        if name not in bodies:
            problems.append(f"no function {name}: {why}")
        elif needed not in bodies[name]:
            problems.append(f"{name} does not contain {needed!r}: {why}")
    for name, banned, why in FORBIDDEN:
        if banned in bodies.get(name, ""):
            problems.append(f"{name} contains {banned!r}: {why}")
    return problems
