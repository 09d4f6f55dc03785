#!/usr/bin/env bash
# Builds the litefs-guard wheel from a staged copy of python/ plus a compiled
# extension and the litefs-guard command line tool, so the source tree never
# holds a binary.
#
#   build-wheel.sh PYTHON SO CLI VERSION_FILE STAGE OUTDIR [PLATFORM_TAG]
#
# CLI (the litefs-guard binary) lands in the package as bin/litefs-guard,
# mode 0755; the console script `litefs-guard` (litefs_guard._cli) execs it.
# PYTHON has setuptools and wheel; VERSION_FILE holds the workspace version
# (setup.py reads VERSION); STAGE is wiped and rebuilt; the wheel lands in
# OUTDIR. PLATFORM_TAG (e.g. manylinux_2_17_x86_64) replaces the build
# machine's linux_<arch> tag: only for an extension and tool built for that policy.
set -euo pipefail
[ $# -ge 6 ] || { echo "usage: build-wheel.sh PYTHON SO CLI VERSION_FILE STAGE OUTDIR [PLATFORM_TAG]" >&2; exit 2; }
python=$1 so=$2 cli=$3 version=$4 stage=$5 out=$6 plat=${7:-}
root=$(cd "$(dirname "$0")/.." && pwd)
abs() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
python=$(abs "$python") so=$(abs "$so") cli=$(abs "$cli") version=$(abs "$version") stage=$(abs "$stage") out=$(abs "$out")
[ -f "$so" ] || { echo "build-wheel: $so is missing" >&2; exit 1; }
[ -f "$cli" ] || { echo "build-wheel: $cli is missing" >&2; exit 1; }
rm -rf "$stage"
mkdir -p "$stage/src" "$out"
cp -R "$root/python/." "$stage/src/"
rm -rf "$stage/src/build" "$stage/src/dist" "$stage"/src/*.egg-info
find "$stage/src" \( -name __pycache__ -o -name '*.so' \) -prune -exec rm -rf {} +
cp "$so" "$stage/src/litefs_guard/liblitefs_guard.so"
mkdir -p "$stage/src/litefs_guard/bin"
install -m 0755 "$cli" "$stage/src/litefs_guard/bin/litefs-guard"
cp "$version" "$stage/src/VERSION"
cp "$root/LICENSE" "$stage/src/LICENSE"
if [ -n "$plat" ]; then printf '[bdist_wheel]\nplat_name = %s\n' "$plat" >"$stage/src/setup.cfg"; fi
(cd "$stage/src" && "$python" -m pip wheel -q --disable-pip-version-check --no-deps --no-build-isolation \
  -w "$out" .)
