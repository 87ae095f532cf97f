#!/usr/bin/env bash
# Installs Triton's perf_analyzer into .tools/ for tests/server/test_perf_analyzer.py, on a Debian 12 machine.
#
# Its PyPI wheel (perf-analyzer, manylinux_2_38) needs glibc >= 2.38 and GCC 13's libstdc++; Debian 12 ships glibc
# 2.36. So this script unpacks Debian 13's libc6, libstdc++6 and libgcc-s1 into .tools/perf_analyzer/lib (nothing
# on the system changes: apt-get only downloads, with a private package list) and writes .tools/bin/perf_analyzer,
# which starts the binary with that newer loader and library path.
#
# Best effort: without network, pip, apt-get or dpkg-deb it says why and exits 0; the test then skips with the reason.
set -uo pipefail
cd "$(dirname "$0")/.."
VERSION="${PERF_ANALYZER_VERSION:-2.60.0}"
DEST="$PWD/.tools/perf_analyzer"
BIN="$PWD/.tools/bin"
PY="${PY:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3

skip() { echo "perf_analyzer not installed: $*" >&2; exit 0; }

if [ -x "$BIN/perf_analyzer" ] && "$BIN/perf_analyzer" --version >/dev/null 2>&1; then
  echo "perf_analyzer already installed: $BIN/perf_analyzer"; exit 0
fi
command -v dpkg-deb >/dev/null && command -v apt-get >/dev/null || skip "needs apt-get and dpkg-deb (Debian)"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
mkdir -p "$DEST" "$BIN"

"$PY" -m pip download --quiet --no-deps --only-binary=:all: --platform manylinux_2_38_x86_64 \
  --python-version 3.11 -d "$work/wheel" "perf-analyzer==$VERSION" || skip "pip could not download perf-analyzer $VERSION"
"$PY" - "$work/wheel" "$DEST" <<'PYEOF' || skip "the wheel holds no perf_analyzer binary"
import sys, zipfile, pathlib
wheel = next(pathlib.Path(sys.argv[1]).glob("perf_analyzer-*.whl"))
with zipfile.ZipFile(wheel) as z:
    data = z.read("perf_analyzer/bin/perf_analyzer")
out = pathlib.Path(sys.argv[2]) / "perf_analyzer.bin"
out.write_bytes(data)
out.chmod(0o755)
PYEOF

# Debian 13 (trixie) runtime libraries, downloaded with a private sources list and package cache.
apt_dir="$work/apt"; mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$work/debs"
echo "deb http://deb.debian.org/debian trixie main" > "$apt_dir/sources.list"
APT=(-o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o "Dir::Etc::sourceparts=-" -o "Dir::State::Lists=$apt_dir/lists"
     -o "Dir::Cache=$apt_dir/cache" -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")
apt-get "${APT[@]}" update -qq >/dev/null 2>&1 || skip "apt-get could not read Debian 13's package list"
(cd "$work/debs" && apt-get "${APT[@]}" download libc6 libstdc++6 libgcc-s1 >/dev/null 2>&1) \
  || skip "apt-get could not download Debian 13's libc6/libstdc++6/libgcc-s1"
rm -rf "$DEST/root"; mkdir -p "$DEST/root"
for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$DEST/root" || skip "dpkg-deb could not unpack $deb"; done
LIB="$DEST/root/usr/lib/x86_64-linux-gnu"
[ -x "$LIB/ld-linux-x86-64.so.2" ] || skip "no loader in Debian 13's libc6"

cat > "$BIN/perf_analyzer" <<WRAP
#!/bin/sh
# perf_analyzer $VERSION with Debian 13's glibc and libstdc++ (scripts/install-perf-analyzer.sh)
exec "$LIB/ld-linux-x86-64.so.2" --library-path "$LIB:/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu" "$DEST/perf_analyzer.bin" "\$@"
WRAP
chmod +x "$BIN/perf_analyzer"
"$BIN/perf_analyzer" --version >/dev/null 2>&1 || skip "perf_analyzer does not start even with Debian 13's libraries"
echo "perf_analyzer $VERSION installed: $BIN/perf_analyzer"
