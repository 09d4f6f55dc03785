#!/usr/bin/env bash
# Installs what `make test` needs on a fresh Debian machine, only what is missing.
set -euo pipefail
need=()
command -v sqlite3 >/dev/null || need+=(sqlite3)
command -v curl >/dev/null || need+=(curl)  # make cluster-demo: the walk through the web app
command -v fusermount3 >/dev/null || need+=(fuse3)
command -v valgrind >/dev/null || need+=(valgrind)
# The version matrix: sqlrun linked against the system libsqlite3 (3.40 on Debian 12).
dpkg -s libsqlite3-dev >/dev/null 2>&1 || need+=(libsqlite3-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v objdump >/dev/null && command -v strip >/dev/null || need+=(binutils)  # make wheel/npm: strip, the glibc check
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
/usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
[ -e /dev/fuse ] || echo "install-deps: WARNING: /dev/fuse is missing; FUSE tests cannot mount" >&2
if [ ${#need[@]} -gt 0 ]; then
  echo "install-deps: installing ${need[*]}"
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! rustup component list --installed 2>/dev/null | grep -q clippy; then rustup component add clippy rustfmt; fi
