"""Builds the Cython sources in ext/ into the compiled engine inside the mt5bridge package.

Build switches, read from the environment at build time:
  MT5BRIDGE_BUILD=release   (default) optimised, bounds and wrap-around checks off, C division
  MT5BRIDGE_BUILD=debug     bounds checks, wrap-around, Python division semantics, no optimisation, -g
  MT5BRIDGE_ANNOTATE=1      also write ext/*.html, Cython's annotated source (yellow = Python interaction)
  MT5BRIDGE_PROFILE=1       compile with Cython's profiling hooks (cProfile sees the cdef functions)
"""

import os
import sys

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

BUILD = os.environ.get("MT5BRIDGE_BUILD", "release").strip().lower()
if BUILD not in ("release", "debug"):
    sys.exit(f"MT5BRIDGE_BUILD must be 'release' or 'debug', not {BUILD!r}")
DEBUG = BUILD == "debug"
ANNOTATE = os.environ.get("MT5BRIDGE_ANNOTATE", "") == "1"
PROFILE = os.environ.get("MT5BRIDGE_PROFILE", "") == "1"

directives = {
    "language_level": "3",
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "cdivision": not DEBUG,
    "initializedcheck": DEBUG,
    "nonecheck": False,  # on, it would need the GIL in the nogil methods that read the engine's own fields
    "embedsignature": True,
    "profile": PROFILE,
    "linetrace": PROFILE,
    "warn.unused": False,
}

if sys.platform == "win32":
    compile_args = ["/Od", "/Zi"] if DEBUG else ["/O2"]
else:
    compile_args = ["-O0", "-g"] if DEBUG else ["-O3"]
    # Exact IEEE arithmetic is kept on purpose (no -ffast-math): indicator values must match TA-Lib's.
    compile_args += ["-Wno-unused-function", "-Wno-unreachable-code"]

macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
if PROFILE:
    macros.append(("CYTHON_TRACE", "1"))

# The engine is one compiled module: its parts live in ext/*.pxi, each one idea, included by ext/_engine.pyx.
# A single module lets the C compiler inline across the whole per-tick path, and Cython cannot resolve
# cimports between modules whose sources sit outside the package directory.
extensions = [
    Extension(
        "mt5bridge.core._engine",
        ["ext/_engine.pyx"],
        include_dirs=[numpy.get_include(), "ext"],
        define_macros=macros,
        extra_compile_args=compile_args,
        extra_link_args=["-g"] if DEBUG and sys.platform != "win32" else [],
    ),
    # The TICK reader builds Python objects and shares nothing with the engine: a module of its own.
    Extension(
        "mt5bridge.bridge._tickwire",
        ["ext/_tickwire.pyx"],
        define_macros=macros,
        extra_compile_args=compile_args,
        extra_link_args=["-g"] if DEBUG and sys.platform != "win32" else [],
    ),
    # The price-file reader parses bytes the market package has read: its own module, like the TICK reader.
    Extension(
        "mt5bridge.market._marketread",
        ["ext/_marketread.pyx"],
        include_dirs=[numpy.get_include()],
        define_macros=macros,
        extra_compile_args=compile_args,
        extra_link_args=["-g"] if DEBUG and sys.platform != "win32" else [],
    ),
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        annotate=ANNOTATE,
        include_path=["ext"],
        force=DEBUG or PROFILE,
    ),
)
