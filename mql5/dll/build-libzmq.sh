#!/usr/bin/env bash
# Builds the libzmq.dll the EA imports: 64-bit Windows, cross-compiled with mingw-w64 on Debian/Ubuntu (or WSL),
# from the libzmq source release pinned in libzmq.pin, with CURVE built in (libzmq's bundled tweetnacl) and the
# compiler's runtime linked in, so the DLL needs nothing but Windows' own system DLLs: no libsodium.dll, no
# Visual C++ Redistributable, no libstdc++-6.dll to hunt for.
#
#   mql5/dll/build-libzmq.sh [--out DIR] [--source FILE]
#
#   --out DIR      where libzmq.dll is written (default: build/libzmq-VERSION-win64 in the repository)
#   --source FILE  the pinned source tarball, already downloaded (default: fetched with `apt-get source zeromq3`)
#
# Needs: apt-get install g++-mingw-w64-x86-64-win32 cmake dpkg-dev, and a deb-src line for `apt-get source`.
# Exit status: 0 built and checked; 3 the pinned source could not be had (nothing built); 1 any other failure.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# shellcheck source=libzmq.pin
. "$here/libzmq.pin"

# In a checkout the DLL goes to its build folder, where `mt5bridge ea-package` run from the checkout finds it;
# a copy of this script from an installed package builds into the current folder's build/ instead.
[ -f "$repo/pyproject.toml" ] || repo="$PWD"
out="$repo/build/libzmq-$LIBZMQ_VERSION-win64"
source_file=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --source) source_file="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-libzmq.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

fail() {
  echo "build-libzmq.sh: $*" >&2
  exit 1
}

# Exit status 3: the pinned source could not be had (no deb-src line, another Debian release); nothing was built.
no_source() {
  echo "build-libzmq.sh: $*" >&2
  exit 3
}

mkdir -p "$out"
out="$(cd "$out" && pwd)"
started=$(date +%s)

# ---- the source: Debian's copy of the release, checked against the pinned sha256 before anything is built ----
if [ -z "$source_file" ]; then
  mkdir -p "$out/src"
  source_file="$out/src/$LIBZMQ_ORIG"
  if [ ! -f "$source_file" ]; then
    command -v apt-get >/dev/null ||
      no_source "no apt-get here to fetch $LIBZMQ_ORIG: download Debian's zeromq3 source and pass it with --source FILE"
    echo "fetching the libzmq $LIBZMQ_VERSION source with apt-get source zeromq3 ..."
    if ! (cd "$out/src" && apt-get source --download-only zeromq3) >"$out/src/apt-get.log" 2>&1; then
      cat "$out/src/apt-get.log" >&2
      no_source "apt-get source zeromq3 failed. It needs a deb-src line, e.g. a file /etc/apt/sources.list.d/debian-src.sources
holding (Suites as in your debian.sources):
    Types: deb-src
    URIs: http://deb.debian.org/debian
    Suites: bookworm
    Components: main
    Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
then: sudo apt-get update. Or download $LIBZMQ_ORIG yourself and pass it with --source FILE."
    fi
    [ -f "$source_file" ] ||
      no_source "apt-get source zeromq3 gave $(cd "$out/src" && ls -- *.orig.tar.* 2>/dev/null | tr '\n' ' ')instead of the pinned $LIBZMQ_ORIG:
this system's Debian carries another libzmq release. Pass the pinned file with --source FILE, or move the pin
in mql5/dll/libzmq.pin to that release (version, file name and sha256 together)."
  fi
fi
[ -f "$source_file" ] || no_source "source file $source_file does not exist"
actual="$(sha256sum "$source_file" | cut -d' ' -f1)"
if [ "$actual" != "$LIBZMQ_SHA256" ]; then
  fail "$source_file is not the pinned libzmq $LIBZMQ_VERSION source:
  sha256 expected $LIBZMQ_SHA256 (mql5/dll/libzmq.pin)
  sha256 actual   $actual
Nothing was built. Delete the file and fetch it again; if Debian changed it, check why before moving the pin."
fi
echo "source $LIBZMQ_ORIG: sha256 $actual matches the pin"

host=x86_64-w64-mingw32
for tool in "$host-gcc" "$host-g++" "$host-objdump" "$host-windres" cmake; do
  command -v "$tool" >/dev/null ||
    fail "$tool not found. Install the cross compiler and CMake: sudo apt-get install g++-mingw-w64-x86-64-win32 cmake"
done

# ---- configure and build ------------------------------------------------------------------------------------
work="$out/work"
rm -rf "$work"
mkdir -p "$work"
tar -xzf "$source_file" -C "$work"
src="$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -n 1)"
[ -f "$src/CMakeLists.txt" ] || fail "$source_file holds no CMakeLists.txt: not a libzmq source release"

# -static with -shared links libstdc++ and libgcc into the DLL (Windows' import libraries stay imports).
# The win32 thread model of the compiler needs no winpthread DLL; libzmq then uses the Windows condition
# variable (Vista+). _WIN32_WINNT comes from CMAKE_SYSTEM_VERSION: 10.0, the oldest Windows MetaTrader 5 supports.
# The EA speaks tcp:// only. IPC is off because libzmq 4.3.4 includes the POSIX socket headers for it under
# any compiler but Microsoft's (fixed after 4.3.4); select() because the bundled wepoll includes <WS2tcpip.h>,
# a name mingw-w64 spells in lower case.
# --no-insert-timestamp and the prefix map keep the date and the build folder out of the DLL, so the same
# source and compiler give the same bytes.
link_flags="-static -static-libgcc -static-libstdc++ -Wl,--no-insert-timestamp -s"
prefix_map="-ffile-prefix-map=$src=libzmq-$LIBZMQ_VERSION"
cmake -S "$src" -B "$work/cmake" -G "Unix Makefiles" \
  -DCMAKE_SYSTEM_NAME=Windows \
  -DCMAKE_SYSTEM_VERSION=10.0 \
  -DCMAKE_SYSTEM_PROCESSOR=x86_64 \
  -DCMAKE_C_COMPILER="$host-gcc" \
  -DCMAKE_CXX_COMPILER="$host-g++" \
  -DCMAKE_RC_COMPILER="$host-windres" \
  -DCMAKE_FIND_ROOT_PATH=/usr/$host \
  -DCMAKE_FIND_ROOT_PATH_MODE_PROGRAM=NEVER \
  -DCMAKE_FIND_ROOT_PATH_MODE_LIBRARY=ONLY \
  -DCMAKE_FIND_ROOT_PATH_MODE_INCLUDE=ONLY \
  -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_C_FLAGS="$prefix_map" \
  -DCMAKE_CXX_FLAGS="$prefix_map" \
  -DCMAKE_SHARED_LINKER_FLAGS="$link_flags" \
  -DBUILD_SHARED=ON -DBUILD_STATIC=OFF -DBUILD_TESTS=OFF \
  -DWITH_LIBSODIUM=OFF -DENABLE_CURVE=ON \
  -DENABLE_DRAFTS=OFF -DWITH_DOCS=OFF -DWITH_PERF_TOOL=OFF -DENABLE_CPACK=OFF \
  -DZMQ_CV_IMPL=win32api -DPOLLER=select -DZMQ_HAVE_IPC=OFF \
  >"$work/configure.log" 2>&1 || { tail -n 40 "$work/configure.log" >&2; fail "cmake could not configure libzmq (log: $work/configure.log)"; }
cmake --build "$work/cmake" --target libzmq -j "$(nproc)" >"$work/build.log" 2>&1 ||
  { tail -n 40 "$work/build.log" >&2; fail "the libzmq build failed (log: $work/build.log)"; }

built="$(find "$work/cmake/bin" -maxdepth 1 -name 'libzmq*.dll' | head -n 1)"
[ -n "$built" ] || fail "the build made no libzmq*.dll in $work/cmake/bin"

# ---- checks: 64-bit, only Windows' own DLLs imported, CURVE inside ------------------------------------------
"$host-objdump" -f "$built" | grep -q 'file format pei-x86-64' || fail "$built is not a 64-bit Windows DLL"
# The DLLs every Windows since 10 carries in System32. Anything else (libstdc++-6.dll, libgcc_s_seh-1.dll,
# libwinpthread-1.dll, libsodium.dll) would be one more file for the trader to find.
system_dlls=" kernel32.dll ws2_32.dll advapi32.dll iphlpapi.dll msvcrt.dll user32.dll "
imports="$("$host-objdump" -p "$built" | sed -n 's/^[[:space:]]*DLL Name: //p' | tr 'A-Z' 'a-z' | tr -d '\r')"
for dll in $imports; do
  case "$system_dlls" in
    *" $dll "*) ;;
    *) fail "$built imports $dll, which Windows does not carry: the runtime was not linked in" ;;
  esac
done
grep -q "^#define ZMQ_HAVE_CURVE" "$work/cmake/platform.hpp" || fail "the build has no CURVE support"

tmp="$out/libzmq.dll.tmp"
cp "$built" "$tmp"
mv "$tmp" "$out/libzmq.dll"
sha="$(sha256sum "$out/libzmq.dll" | cut -d' ' -f1)"
{
  echo "libzmq $LIBZMQ_VERSION for 64-bit Windows, CURVE with the bundled tweetnacl, runtime linked in"
  echo "source $LIBZMQ_ORIG sha256 $LIBZMQ_SHA256"
  echo "compiler $("$host-g++" --version | head -n 1)"
  echo "imports $(echo "$imports" | tr '\n' ' ')"
  echo "libzmq.dll sha256 $sha"
} >"$out/BUILD-INFO.txt"
echo "built $out/libzmq.dll in $(( $(date +%s) - started )) s"
echo "sha256 $sha"
echo "imports only Windows system DLLs: $(echo "$imports" | tr '\n' ' ')"
