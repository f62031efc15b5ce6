"""`mt5bridge ea-package`: everything a trader copies into the MetaTrader 5 data folder, laid out as that
folder is — the Expert Advisor, its include files and the 64-bit libzmq.dll it imports — with a README.txt that
says where it goes and holds the sha256 of every file.

The EA sources ship inside the installed package (`mt5bridge/mql5`, from the repository's `mql5/` folder), so
this works from `pip install .` as well as from a checkout. The DLL is the one `mql5/dll/build-libzmq.sh` built,
or one the trader names with `--dll`.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import struct
import sys
from pathlib import Path

import mt5bridge

PACKAGE_MARK = "Written by mt5bridge ea-package"
BUILD_SCRIPT = "mql5/dll/build-libzmq.sh"

# PE header values: the machine type of x86-64 code and the flag that makes an image a DLL.
_MACHINE_AMD64 = 0x8664
_MACHINE_I386 = 0x014C
_IMAGE_FILE_DLL = 0x2000


class PackageError(RuntimeError):
    """The package cannot be written as asked; the message says what to do instead."""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "ea-package", help="write the EA, its includes and libzmq.dll in the layout of the terminal's data folder",
        description="Write the MQL5 folder a trader copies into the MetaTrader 5 data folder (File > Open Data "
                    "Folder): the Expert Advisor, its include files and the 64-bit libzmq.dll, with a README.txt "
                    "holding the sha256 of every file.")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="a new or empty folder to write into (a folder ea-package wrote before is replaced)")
    dll = p.add_mutually_exclusive_group()
    dll.add_argument("--dll", metavar="PATH",
                     help=f"the 64-bit libzmq.dll to ship (default: the one {BUILD_SCRIPT} built)")
    dll.add_argument("--no-dll", action="store_true",
                     help="write the package without libzmq.dll; the EA will not start until one is added")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        if args.no_dll:
            dll = None
        else:
            dll = Path(args.dll) if args.dll else find_built_dll()
            check_dll(dll)
        files = write_package(Path(args.out), dll)
    except PackageError as exc:
        print(f"mt5bridge ea-package: {exc}", file=sys.stderr)
        return 2
    if dll is None:
        print("mt5bridge ea-package: WARNING: this package has NO libzmq.dll (--no-dll): the EA cannot start until "
              "a 64-bit libzmq.dll is in MQL5/Libraries", file=sys.stderr)
    print(f"wrote {len(files)} files to {Path(args.out).resolve()}; copy its MQL5 folder into the terminal's "
          "data folder (File > Open Data Folder), as README.txt there says")
    return 0


# ---- what goes in --------------------------------------------------------------------------------------------

def ea_sources() -> Path:
    """The folder holding Experts/, Include/ and dll/: inside the installed package, or the checkout's mql5/
    when the package runs from a checkout (an editable install or a build in place)."""
    package = Path(mt5bridge.__file__).resolve().parent
    for folder in (package / "mql5", package.parent / "mql5"):
        if (folder / "Experts" / "MT5Bridge.mq5").is_file():
            return folder
    raise PackageError(f"the EA sources are not in this installation ({package / 'mql5'}): reinstall with "
                       "`python -m pip install .` from the repository")


def pinned_libzmq() -> dict[str, str]:
    """LIBZMQ_VERSION, LIBZMQ_ORIG and LIBZMQ_SHA256 from dll/libzmq.pin."""
    pin: dict[str, str] = {}
    for line in (ea_sources() / "dll" / "libzmq.pin").read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            pin[key.strip()] = value.strip()
    return pin


def built_dll() -> Path:
    """Where build-libzmq.sh leaves the DLL by default, from the repository folder: the folder ea-package is
    run from, so that which DLL goes in never depends on where the package happens to be installed."""
    return Path.cwd() / "build" / f"libzmq-{pinned_libzmq()['LIBZMQ_VERSION']}-win64" / "libzmq.dll"


def find_built_dll() -> Path:
    candidate = built_dll()
    if candidate.is_file():
        return candidate
    version = pinned_libzmq()["LIBZMQ_VERSION"]
    raise PackageError(
        f"no libzmq.dll to put in MQL5/Libraries: {candidate} does not exist.\n"
        f"Build it (libzmq {version} for 64-bit Windows, CURVE built in, nothing else to install) on Debian, Ubuntu "
        "or WSL, in the mt5bridge repository:\n"
        "    sudo apt-get install g++-mingw-w64-x86-64-win32 cmake dpkg-dev\n"
        f"    {BUILD_SCRIPT}\n"
        "(it fetches the pinned libzmq source with `apt-get source zeromq3`: see its --help), then run "
        "ea-package again from the repository folder.\n"
        "Or name a 64-bit libzmq.dll you have with --dll PATH, or write the package without one with --no-dll.")


def check_dll(path: Path) -> None:
    """A 64-bit Windows DLL, or a PackageError saying what it is instead: the terminal loads nothing else."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PackageError(f"{path}: cannot read it: {exc.strerror}") from None
    machine, characteristics = _pe_header(data)
    if machine is None:
        raise PackageError(f"{path} is not a Windows DLL")
    if machine == _MACHINE_I386:
        raise PackageError(f"{path} is a 32-bit DLL: MetaTrader 5 is 64-bit and loads only 64-bit (x64) ones")
    if machine != _MACHINE_AMD64:
        raise PackageError(f"{path} is for machine type {machine:#06x}, not 64-bit x86 (x64)")
    if not characteristics & _IMAGE_FILE_DLL:
        raise PackageError(f"{path} is a Windows program, not a DLL")


def _pe_header(data: bytes) -> tuple[int | None, int]:
    if len(data) < 0x40 or data[:2] != b"MZ":
        return None, 0
    (offset,) = struct.unpack_from("<I", data, 0x3C)
    if len(data) < offset + 24 or data[offset:offset + 4] != b"PE\0\0":
        return None, 0
    machine, _sections, _stamp, _symbols, _count, _optional, characteristics = struct.unpack_from(
        "<HHIIIHH", data, offset + 4)
    return machine, characteristics


# ---- writing it ----------------------------------------------------------------------------------------------

def write_package(out: Path, dll: Path | None) -> list[str]:
    """Write the MQL5 tree and README.txt into ``out``; return the files' paths, relative to ``out``."""
    _make_room(out)
    sources = ea_sources()
    copies: list[tuple[Path, str]] = [(sources / "Experts" / "MT5Bridge.mq5", "MQL5/Experts/MT5Bridge.mq5")]
    copies += [(f, f"MQL5/Include/MT5Bridge/{f.name}")
               for f in sorted((sources / "Include" / "MT5Bridge").glob("*.mqh"))]
    if dll is not None:
        # Always this name: the EA's #import names libzmq.dll, whatever the file was called.
        copies.append((dll, "MQL5/Libraries/libzmq.dll"))
    for source, relative in copies:
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    files = [relative for _, relative in copies]
    (out / "README.txt").write_text(readme(out, files, dll), encoding="utf-8")
    return files


def _make_room(out: Path) -> None:
    # Never write into a folder holding anything else (the terminal's own data folder, say): only a folder
    # this command wrote before is emptied, so that a file the EA no longer has does not linger in it.
    if out.exists() and not out.is_dir():
        raise PackageError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()):
        readme_file = out / "README.txt"
        ours = readme_file.is_file() and PACKAGE_MARK in readme_file.read_text(encoding="utf-8", errors="replace")
        if not ours or {p.name for p in out.iterdir()} - {"README.txt", "MQL5"}:
            raise PackageError(f"--out {out} is not empty: give a new folder (ea-package only replaces a folder "
                               "it wrote itself)")
        shutil.rmtree(out / "MQL5", ignore_errors=True)
        readme_file.unlink()
    out.mkdir(parents=True, exist_ok=True)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def readme(out: Path, files: list[str], dll: Path | None) -> str:
    version = pinned_libzmq()["LIBZMQ_VERSION"]
    if dll is None:
        dll_text = ["libzmq.dll is NOT in this package (written with --no-dll). Put a 64-bit libzmq.dll into",
                    "MQL5\\Libraries before attaching the EA, or build one with " + BUILD_SCRIPT + "."]
    else:
        info = dll.parent / "BUILD-INFO.txt"
        info_lines = info.read_text(encoding="utf-8").splitlines() if info.is_file() else []
        # The build's record is shown only when it describes this very file.
        if f"libzmq.dll sha256 {sha256(dll)}" in info_lines:
            dll_text = ["libzmq.dll was built by " + BUILD_SCRIPT + ":"]
            dll_text += ["  " + line for line in info_lines if line.strip()]
        else:
            dll_text = [f"libzmq.dll was given with --dll ({dll.name}); it was not built by {BUILD_SCRIPT}",
                        f"(which builds libzmq {version}), so whether it needs other DLLs is not known here."]
    lines = [
        f"MT5Bridge Expert Advisor. {PACKAGE_MARK} {mt5bridge.__version__}.",
        "",
        "Install:",
        "1. In MetaTrader 5: File > Open Data Folder. Copy the MQL5 folder from here into the folder that opens",
        "   (merge it with the MQL5 folder there): MQL5\\Experts\\MT5Bridge.mq5, MQL5\\Include\\MT5Bridge\\*.mqh and",
        "   MQL5\\Libraries\\libzmq.dll land where the terminal looks for them.",
        "2. Open MQL5\\Experts\\MT5Bridge.mq5 in MetaEditor and compile it (F7): 0 errors.",
        "3. Tools > Options > Expert Advisors: tick 'Allow algorithmic trading' and 'Allow DLL imports'.",
        "4. Start `mt5bridge serve`, then attach MT5Bridge to one chart per symbol.",
        "The full guide, inputs and first-run checklist: mql5/README.md in the mt5bridge repository.",
        "",
        *dll_text,
        "",
        "sha256 of every file (Windows: certutil -hashfile FILE SHA256; Linux: sha256sum -c):",
        *(f"{sha256(out / name)}  {name}" for name in files),
        "",
    ]
    return "\n".join(lines)
