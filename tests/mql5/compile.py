"""The compile check: the EA, rewritten to C++ (``rewrite.py``), through ``g++ -fsyntax-only`` against the stub
headers in ``stubs/`` (forced in with ``-include``). Line numbers in g++'s messages are mapped back to the MQL5
files, which the rewrite keeps line for line."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from .rewrite import rewrite

STUBS = Path(__file__).resolve().parent / "stubs"
GXX_FLAGS = [
    "-std=c++17",
    "-fsyntax-only",
    "-fmax-errors=50",
    # MQL5 refuses a function that can end without returning its value; g++ only warns
    "-Werror=return-type",
]


class CompilerMissing(Exception):
    pass


def gxx() -> str:
    """The g++ to use; raises CompilerMissing when there is none (the check must never pass without it)."""
    path = shutil.which("g++")
    if path is None:
        raise CompilerMissing("g++ is not installed: the EA's compile check cannot run (apt-get install g++)")
    return path


def write_rewritten(mql5_root: Path, out: Path) -> tuple[Path, dict[str, str]]:
    """Rewrites the EA and its includes under ``out``; returns the main file and a map rewritten path → MQL5 path."""
    names: dict[str, str] = {}
    include = out / "include"
    for source in sorted((mql5_root / "Include").rglob("*.mqh")):
        target = include / source.relative_to(mql5_root / "Include")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(rewrite(source.read_text(encoding="utf-8"), str(source)), encoding="utf-8")
        names[str(target)] = str(source)
    main_source = mql5_root / "Experts" / "MT5Bridge.mq5"
    main = out / "MT5Bridge.cpp"
    main.write_text(rewrite(main_source.read_text(encoding="utf-8"), str(main_source)), encoding="utf-8")
    names[str(main)] = str(main_source)
    return main, names


def compile_ea(mql5_root: Path, work: Path) -> tuple[int, str]:
    """(exit status, g++'s messages with paths and lines of the MQL5 files)."""
    main, names = write_rewritten(mql5_root, work)
    command = [gxx(), *GXX_FLAGS, "-include", str(STUBS / "mql5.h"), "-I", str(work / "include"), "-I", str(STUBS),
               str(main)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    messages = done.stderr
    for rewritten, original in sorted(names.items(), key=lambda kv: -len(kv[0])):
        messages = messages.replace(rewritten, original)
    return done.returncode, messages


def first_errors(messages: str, limit: int = 15) -> str:
    lines = [line for line in messages.splitlines() if re.search(r":\d+:\d+: (fatal )?error:", line)]
    return "\n".join(lines[:limit]) or messages[:3000]


RUNTIME = Path(__file__).resolve().parent / "runtime"
PURE_INCLUDES = ("Protocol.mqh", "Json.mqh", "Messages.mqh", "PragueClock.mqh", "TradeMath.mqh",
                 "DealResend.mqh")


def build_harness(mql5_root: Path, work: Path) -> Path:
    """Compiles runtime/harness.cpp with the EA's pure includes (rewritten) into an executable; returns its path.
    Raises subprocess.CalledProcessError with g++'s messages when it does not build."""
    include = work / "include" / "MT5Bridge"
    include.mkdir(parents=True, exist_ok=True)
    for name in PURE_INCLUDES:
        source = mql5_root / "Include" / "MT5Bridge" / name
        (include / name).write_text(rewrite(source.read_text(encoding="utf-8"), str(source)), encoding="utf-8")
    binary = work / "harness"
    command = [gxx(), "-std=c++17", "-O0", "-include", str(RUNTIME / "runtime.h"), "-I", str(work / "include"),
               str(RUNTIME / "harness.cpp"), "-o", str(binary)]
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=300)
    return binary
