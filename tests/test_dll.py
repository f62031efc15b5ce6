"""The libzmq.dll a trader installs: built here from the pinned source, needing nothing but Windows' own DLLs,
and driven under wine exactly as the EA drives it (the functions of its #import block, with its argument types)
against a real `mt5bridge serve`, plain and with CURVE. And `mt5bridge ea-package`, which puts the DLL and the
EA where the terminal looks for them.

The tests that need the DLL run where mingw-w64, CMake and wine are installed (`.ci/run` installs them) and are
skipped otherwise, with the reason; with MT5BRIDGE_DLL_TESTS=required (set by `.ci/run`) a missing tool fails
them instead, so CI cannot pass by skipping. The DLL is built once and kept in pytest's cache folder under a key
of the pin and the build script, so a changed pin or script rebuilds it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, package_process
from mt5bridge.bridge import protocol as wire

DLL_DIR = ROOT / "mql5" / "dll"
BUILD_SCRIPT = DLL_DIR / "build-libzmq.sh"
SMOKE_SOURCE = DLL_DIR / "ea_smoke.c"
ZMQ_MQH = ROOT / "mql5" / "Include" / "MT5Bridge" / "Zmq.mqh"
HOST = "x86_64-w64-mingw32"
# What every Windows 10 carries in System32; the DLL may import these and nothing else.
WINDOWS_SYSTEM_DLLS = {"kernel32.dll", "ws2_32.dll", "advapi32.dll", "iphlpapi.dll", "msvcrt.dll", "user32.dll"}
APT_PACKAGES = "g++-mingw-w64-x86-64-win32 cmake dpkg-dev wine wine64"


def pin() -> dict[str, str]:
    text = (DLL_DIR / "libzmq.pin").read_text(encoding="utf-8")
    return dict(re.findall(r"^(LIBZMQ_\w+)=(\S+)$", text, re.M))


def unavailable(reason: str):
    """Skip, or fail where CI requires these tests to run."""
    if os.environ.get("MT5BRIDGE_DLL_TESTS") == "required":
        pytest.fail(f"{reason} (MT5BRIDGE_DLL_TESTS=required)")
    pytest.skip(reason)


def wine_binary() -> str | None:
    # wine64 runs the 64-bit programs directly; Debian's `wine` wrapper warns about a missing wine32 first.
    return shutil.which("wine64") or next(
        (p for p in ("/usr/lib/wine/wine64", "/usr/lib64/wine/wine64") if os.access(p, os.X_OK)), None
    ) or shutil.which("wine")


# ---- the EA's imports, read from its source ------------------------------------------------------------------

# MQL5 types of the #import block as C types: long/ulong are 64-bit, an array by reference is a pointer to its
# bytes, a scalar by reference a pointer to it.
MQL5_TO_C = {"long": "int64_t", "ulong": "uint64_t", "int": "int", "void": "void",
             "const uchar &[]": "const uint8_t *", "uchar &[]": "uint8_t *", "int &": "int *"}


def ea_imports() -> dict[str, tuple[str, ...]]:
    """name -> (return type, parameter types...) of Zmq.mqh's `#import "libzmq.dll"` block, as C types."""
    text = ZMQ_MQH.read_text(encoding="utf-8")
    block = re.search(r'#import\s+"libzmq\.dll"\s*\n(.*?)\n#import', text, re.S)
    assert block, f'{ZMQ_MQH} has no #import "libzmq.dll" block'
    imports = {}
    for line in block.group(1).splitlines():
        line = line.split("//")[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"(\w+)\s+(\w+)\((.*)\);", line)
        assert m, f"cannot read the import {line!r}"
        params = []
        for param in filter(None, (p.strip() for p in m.group(3).split(","))):
            # "const uchar &optval[]" -> "const uchar &[]"; "int &major" -> "int &"; "long context" -> "long"
            kind = re.sub(r"\s*&\s*\w+\s*\[\]$", " &[]", param)
            kind = re.sub(r"\s*&\s*\w+$", " &", kind)
            kind = re.sub(r"^((?:const\s+)?\w+)\s+\w+$", r"\1", kind)
            assert kind in MQL5_TO_C, f"{m.group(2)}: no C type known for the MQL5 parameter {param!r}"
            params.append(MQL5_TO_C[kind])
        imports[m.group(2)] = (MQL5_TO_C[m.group(1)], *params)
    return imports


def smoke_declarations() -> dict[str, tuple[str, ...]]:
    """name -> (return type, parameter types...) of the function pointer types in ea_smoke.c."""
    text = SMOKE_SOURCE.read_text(encoding="utf-8")
    found = {}
    for ret, name, params in re.findall(r"typedef\s+([\w ]+?)\s*\(\*(zmq_\w+)_t\)\(([^)]*)\);", text):
        # "const uint8_t *optval" -> "const uint8_t *"; "(void)" has no parameter
        types = [re.sub(r"\s*\b\w+$", "", p.strip()) for p in params.split(",") if p.strip() not in ("", "void")]
        found[name] = _normal((ret, *types))
    return found


def _normal(types) -> tuple[str, ...]:
    return tuple(re.sub(r"\s+", " ", t.replace("*", " *")).strip() for t in types)


def test_the_smoke_program_declares_exactly_the_eas_imports_with_its_types():
    imports, declared = ea_imports(), smoke_declarations()
    assert set(declared) == set(imports), (
        f"ea_smoke.c does not mirror Zmq.mqh's #import block: missing {sorted(set(imports) - set(declared))}, "
        f"extra {sorted(set(declared) - set(imports))}")
    for name, types in imports.items():
        assert declared[name] == _normal(types), f"{name}: ea_smoke.c has {declared[name]}, the EA {types}"
    # and every one is looked up in the DLL and called, not only declared
    source = SMOKE_SOURCE.read_text(encoding="utf-8")
    for name in imports:
        assert f'must_find(dll, "{name}")' in source, name
        assert re.search(rf"\b{name}\(", source.split("int main", 1)[1]), f"ea_smoke.c never calls {name}"


# ---- the build script refuses a source that is not the pinned one --------------------------------------------

def test_a_source_that_is_not_the_pinned_release_is_refused_before_anything_is_built(tmp_path):
    fake = tmp_path / pin()["LIBZMQ_ORIG"]
    fake.write_bytes(b"not the libzmq release\n")
    out = tmp_path / "out"
    run = subprocess.run(["bash", str(BUILD_SCRIPT), "--source", str(fake), "--out", str(out)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1, run.stderr
    assert f"expected {pin()['LIBZMQ_SHA256']}" in run.stderr, run.stderr
    assert f"actual   {hashlib.sha256(fake.read_bytes()).hexdigest()}" in run.stderr, run.stderr
    assert "Nothing was built" in run.stderr
    assert not (out / "libzmq.dll").exists() and not (out / "work").exists()


# ---- the DLL, built once per session -------------------------------------------------------------------------

@pytest.fixture(scope="session")
def libzmq_dll(request, tmp_path_factory) -> Path:
    missing = [tool for tool in (f"{HOST}-gcc", f"{HOST}-g++", f"{HOST}-objdump", "cmake") if not shutil.which(tool)]
    if missing:
        unavailable(f"building libzmq.dll needs {', '.join(missing)}: apt-get install {APT_PACKAGES}")
    key = hashlib.sha256((DLL_DIR / "libzmq.pin").read_bytes() + BUILD_SCRIPT.read_bytes()).hexdigest()[:12]
    name = f"libzmq-{pin()['LIBZMQ_VERSION']}-win64-{key}"
    cache = getattr(request.config, "cache", None)
    out = cache.mkdir(name) if cache is not None else tmp_path_factory.mktemp(name)
    dll = out / "libzmq.dll"
    if not dll.is_file():
        started = time.monotonic()
        run = subprocess.run(["nice", "bash", str(BUILD_SCRIPT), "--out", str(out)],
                             capture_output=True, text=True, timeout=1800)
        if run.returncode == 3:
            unavailable(f"the pinned libzmq source is not to be had here: {run.stderr.strip()}")
        assert run.returncode == 0, f"build-libzmq.sh failed:\n{run.stdout}\n{run.stderr}"
        print(f"\nlibzmq.dll built in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return dll


def objdump(dll: Path) -> str:
    return subprocess.run([f"{HOST}-objdump", "-p", str(dll)], capture_output=True, text=True, check=True).stdout


def test_the_dll_is_64_bit_needs_only_windows_dlls_and_exports_every_ea_import(libzmq_dll):
    dump = objdump(libzmq_dll)
    assert "file format pei-x86-64" in dump
    imported = {name.lower() for name in re.findall(r"^\s*DLL Name: (\S+)", dump, re.M)}
    assert imported and imported <= WINDOWS_SYSTEM_DLLS, f"imports beyond Windows: {imported - WINDOWS_SYSTEM_DLLS}"
    exported = set(re.findall(r"^\s*\[\s*\d+\]\s+(zmq_\w+)$", dump, re.M))
    assert set(ea_imports()) <= exported, f"not exported: {set(ea_imports()) - exported}"


# ---- the EA's calls under wine -------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def terminal(libzmq_dll, tmp_path_factory) -> "Terminal":
    wine = wine_binary()
    if not wine:
        unavailable(f"running the DLL needs wine: apt-get install {APT_PACKAGES}")
    folder = tmp_path_factory.mktemp("Libraries")
    shutil.copyfile(libzmq_dll, folder / "libzmq.dll")
    # Linked statically like the DLL, so that only the DLL under test can be missing.
    subprocess.run([f"{HOST}-gcc", "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-static", "-s",
                    str(SMOKE_SOURCE), "-o", str(folder / "ea_smoke.exe")], check=True, capture_output=True)
    env = dict(os.environ, WINEPREFIX=str(tmp_path_factory.mktemp("wineprefix")), WINEDEBUG="-all",
               WINEDLLOVERRIDES="mscoree,mshtml=")   # no Mono or Gecko installer for a console program
    env.pop("DISPLAY", None)
    subprocess.run([wine, "wineboot", "--init"], env=env, capture_output=True, timeout=300)
    return Terminal(wine, folder, env)


class Terminal:
    """The folder the terminal loads libzmq.dll from, with the EA's calls in ea_smoke.exe beside it."""

    def __init__(self, wine: str, folder: Path, env: dict):
        self.wine, self.folder, self.env = wine, folder, env
        self.runs = 0

    def converse(self, endpoint: str, requests: list[dict], server_key: str = "-", wait_ms: int = 10_000):
        """Send each request as one frame and receive one frame for it; (the run, the DLL's report, replies)."""
        self.runs += 1
        names = []
        for i, request in enumerate(requests):
            name = f"run{self.runs}-{i}"
            (self.folder / f"{name}.json").write_bytes(json.dumps(request).encode("utf-8"))
            (self.folder / f"{name}.reply").unlink(missing_ok=True)
            names += [f"{name}.json", f"{name}.reply"]
        # relative paths: the program runs in this folder, where wine maps them without drive letters
        run = subprocess.run([self.wine, "ea_smoke.exe", f"--wait-ms={wait_ms}", endpoint,
                              f"1510234567-EURUSD-{self.runs}", server_key, *names],
                             cwd=self.folder, env=self.env, capture_output=True, text=True, timeout=120)
        report = dict(re.findall(r"^(\w+)=(\S+)", run.stdout, re.M))
        replies = [p.read_bytes() if p.exists() else None
                   for p in (self.folder / n for n in names[1::2])]
        return run, report, replies


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def bridge_process(tmp_path: Path, endpoint: str, extra: str = ""):
    """A real `mt5bridge serve` on ``endpoint``, once its control socket answers; stopped at the end."""
    from mt5bridge.bridge.server import control_request

    control = f"tcp://127.0.0.1:{free_port()}"
    config = tmp_path / "bridge.toml"
    config.write_text(f'[bridge]\nendpoint = "{endpoint}"\ncontrol_endpoint = "{control}"\n'
                      f'journal = "journal.sqlite"\n{extra}', encoding="utf-8")
    cmd, env, cwd = package_process(["serve", "--config", str(config)], tmp_path)
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while control_request(control, {"cmd": "status"}, timeout_ms=300) is None:
            assert proc.poll() is None, f"mt5bridge serve stopped: {proc.stderr.read()}"
            assert time.monotonic() < deadline, "mt5bridge serve did not answer on its control endpoint"
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def hello_and_tick() -> list[dict]:
    from mt5bridge.config import Config

    magic = Config.model_validate({}).bridge.magic
    hello = dict(wire.Hello.example, seq=1, magic=magic)
    tick = dict(wire.Tick.example, seq=2, time_msc=hello["time_msc"] + 1000, positions=[])
    return [hello, tick]


def assert_welcomed_and_commanded(replies: list[bytes | None]) -> None:
    welcome, command = (wire.parse_reply(r or b"", 1 << 20) for r in replies)
    assert isinstance(welcome, wire.Welcome) and welcome.reply_to == 1
    assert isinstance(command, wire.Command) and command.reply_to == 2


def test_the_eas_calls_through_the_dll_reach_a_real_bridge(terminal, tmp_path):
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    with bridge_process(tmp_path, endpoint):
        run, report, replies = terminal.converse(endpoint, hello_and_tick())
    assert run.returncode == 0, run.stdout + run.stderr
    assert report["version"] == pin()["LIBZMQ_VERSION"]
    assert report["has_curve"] == "1"
    # the EA reads errno 11 as "nothing yet" (its ZMQ_EAGAIN): the DLL must report that very number
    eagain = re.search(r"#define\s+ZMQ_EAGAIN\s+(\d+)", ZMQ_MQH.read_text(encoding="utf-8")).group(1)
    assert report["eagain"] == eagain
    assert report["closed"] == "1"    # zmq_close and zmq_ctx_term returned 0
    assert_welcomed_and_commanded(replies)


def test_with_curve_the_dll_talks_to_the_bridge_only_with_its_key(terminal, tmp_path):
    import zmq.auth

    from mt5bridge.cli.entry import main

    keys = tmp_path / "keys"
    assert main(["keygen", "--out", str(keys)]) == 0
    assert main(["keygen", "--client", "terminal1", "--out", str(keys)]) == 0
    public, _ = zmq.auth.load_certificate(str(keys / "bridge.key"))
    client_public, client_secret = zmq.auth.load_certificate(str(keys / "terminal1.key_secret"))
    port = free_port()
    # Keys given: CURVE on the loopback endpoint too, with the allow-list of client keys beside the bridge's.
    extra = f'curve_secret_key_file = "{keys / "bridge.key_secret"}"\n'
    endpoint = f"tcp://127.0.0.1:{port}"
    with bridge_process(tmp_path, endpoint, extra):
        pair = f"{public.decode()}:{client_public.decode()}:{client_secret.decode()}"
        run, report, replies = terminal.converse(endpoint, hello_and_tick(), pair)
        assert run.returncode == 0, run.stdout + run.stderr
        assert report["curve_client_key"] == client_public.decode()
        assert_welcomed_and_commanded(replies)
        # A client key the bridge does not list: the handshake is refused, nothing answered.
        run, _, replies = terminal.converse(endpoint, hello_and_tick()[:1], public.decode(), wait_ms=2000)
        assert run.returncode != 0 and replies == [None], run.stdout + run.stderr
        # Without the bridge's key the handshake never completes either.
        run, _, replies = terminal.converse(endpoint, hello_and_tick()[:1], wait_ms=2000)
        assert run.returncode != 0 and replies == [None], run.stdout + run.stderr


# ---- ea-package ----------------------------------------------------------------------------------------------

@pytest.fixture
def ea_package(tmp_path, monkeypatch, capsys):
    """`mt5bridge ea-package ARGS` of the package under test (as built or installed, so its own copy of the EA
    sources), run in an empty folder: (exit status, what it wrote to stderr)."""
    from mt5bridge.cli.entry import main

    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> tuple[int, str]:
        status = main(["ea-package", *args])
        return status, capsys.readouterr().err

    return run


def pe_file(path: Path, machine: int = 0x8664, characteristics: int = 0x2022) -> Path:
    """A file with the headers of a Windows DLL (x64 by default), enough for ea-package to tell what it is."""
    header = bytearray(0x40)
    header[:2] = b"MZ"
    struct.pack_into("<I", header, 0x3C, 0x40)
    header += b"PE\0\0" + struct.pack("<HHIIIHH", machine, 1, 0, 0, 0, 0xF0, characteristics) + bytes(0xF0)
    path.write_bytes(bytes(header))
    return path


def eas_files() -> dict[str, bytes]:
    """What the terminal needs of the EA, by its place in the data folder, from this checkout."""
    files = {"MQL5/Experts/MT5Bridge.mq5": (ROOT / "mql5" / "Experts" / "MT5Bridge.mq5").read_bytes()}
    for f in sorted((ROOT / "mql5" / "Include" / "MT5Bridge").glob("*.mqh")):
        files[f"MQL5/Include/MT5Bridge/{f.name}"] = f.read_bytes()
    return files


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def listed_checksums(readme: str) -> dict[str, str]:
    return {name: digest for digest, name in re.findall(r"^([0-9a-f]{64})  (\S+)$", readme, re.M)}


def test_ea_package_writes_the_data_folder_layout_with_the_sha256_of_every_file(ea_package, tmp_path):
    dll = pe_file(tmp_path / "libzmq-mt-4_3_5.dll")
    out = tmp_path / "package"
    status, err = ea_package("--out", str(out), "--dll", str(dll))
    assert status == 0, err
    written = tree(out)
    readme = written.pop("README.txt").decode("utf-8")
    # the package's own copy of the EA is this checkout's, file for file: nothing missing, nothing stale
    assert written == {**eas_files(), "MQL5/Libraries/libzmq.dll": dll.read_bytes()}
    assert listed_checksums(readme) == {name: hashlib.sha256(data).hexdigest() for name, data in written.items()}
    assert "File > Open Data Folder" in readme and "not built by" in readme


def test_ea_package_ships_the_built_dll_with_its_build_record(ea_package, libzmq_dll, tmp_path):
    out = tmp_path / "package"
    status, err = ea_package("--out", str(out), "--dll", str(libzmq_dll))
    assert status == 0, err
    assert (out / "MQL5" / "Libraries" / "libzmq.dll").read_bytes() == libzmq_dll.read_bytes()
    readme = (out / "README.txt").read_text(encoding="utf-8")
    assert f"source {pin()['LIBZMQ_ORIG']} sha256 {pin()['LIBZMQ_SHA256']}" in readme
    assert f"libzmq.dll sha256 {hashlib.sha256(libzmq_dll.read_bytes()).hexdigest()}" in readme


def test_without_a_dll_ea_package_says_how_to_build_one_and_writes_nothing(ea_package, tmp_path):
    out = tmp_path / "package"
    status, err = ea_package("--out", str(out))
    assert status == 2
    assert "no libzmq.dll to put in MQL5/Libraries" in err
    for how in ("mql5/dll/build-libzmq.sh", "apt-get install g++-mingw-w64-x86-64-win32", "--dll PATH", "--no-dll"):
        assert how in err, how
    assert not out.exists()


def test_ea_package_takes_the_dll_the_build_script_left_in_the_repository_folder(ea_package, tmp_path):
    built = tmp_path / "build" / f"libzmq-{pin()['LIBZMQ_VERSION']}-win64" / "libzmq.dll"
    built.parent.mkdir(parents=True)
    pe_file(built)
    status, err = ea_package("--out", str(tmp_path / "package"))
    assert status == 0, err
    assert (tmp_path / "package" / "MQL5" / "Libraries" / "libzmq.dll").read_bytes() == built.read_bytes()


def test_with_no_dll_the_package_says_loudly_that_the_dll_is_missing(ea_package, tmp_path):
    out = tmp_path / "package"
    status, err = ea_package("--out", str(out), "--no-dll")
    assert status == 0, err
    assert "WARNING" in err and "NO libzmq.dll" in err
    assert not (out / "MQL5" / "Libraries").exists()
    assert "libzmq.dll is NOT in this package" in (out / "README.txt").read_text(encoding="utf-8")


@pytest.mark.parametrize(("make", "says"), [
    (lambda p: pe_file(p, machine=0x014C), "is a 32-bit DLL: MetaTrader 5 is 64-bit"),
    (lambda p: pe_file(p, characteristics=0x0022), "is a Windows program, not a DLL"),
    (lambda p: (p.write_text("ELF, not PE"), p)[1], "is not a Windows DLL"),
], ids=["32-bit", "program", "not-PE"])
def test_a_dll_the_terminal_cannot_load_is_refused_by_name(ea_package, tmp_path, make, says):
    dll = make(tmp_path / "libzmq.dll")
    status, err = ea_package("--out", str(tmp_path / "package"), "--dll", str(dll))
    assert status == 2
    assert f"{dll} {says}" in err, err
    assert not (tmp_path / "package").exists()


def test_ea_package_replaces_its_own_folder_and_never_writes_into_another(ea_package, tmp_path):
    out = tmp_path / "package"
    assert ea_package("--out", str(out), "--no-dll")[0] == 0
    stale = out / "MQL5" / "Include" / "MT5Bridge" / "Removed.mqh"
    stale.write_text("// an include a later EA no longer has", encoding="utf-8")
    assert ea_package("--out", str(out), "--no-dll")[0] == 0
    assert not stale.exists()

    data_folder = tmp_path / "terminal-data"
    (data_folder / "MQL5").mkdir(parents=True)
    (data_folder / "origin.txt").write_text("the terminal's own", encoding="utf-8")
    status, err = ea_package("--out", str(data_folder), "--no-dll")
    assert status == 2 and "is not empty" in err
    assert tree(data_folder) == {"origin.txt": b"the terminal's own"}
