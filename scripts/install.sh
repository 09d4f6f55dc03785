#!/usr/bin/env bash
# The install, install-system and uninstall targets of the Makefile.
#
#   install.sh install MODE SRC DEST [MODE SRC DEST ...]
#   install.sh link TARGET LINK
#   install.sh uninstall
#
# Environment: DESTDIR (prefix for every path written, as usual) and
# MANIFEST, the file (under DESTDIR) that records what was installed, one
# line per path: `file PATH` or `link PATH TARGET`. `uninstall` removes
# exactly what it lists, then the manifest and its directory if empty, and
# nothing else.
set -euo pipefail
: "${MANIFEST:?MANIFEST is not set}"
DESTDIR=${DESTDIR:-}
manifest="$DESTDIR$MANIFEST"

record() { # record LINE: adds LINE to the manifest, once
  install -d "$(dirname "$manifest")"
  touch "$manifest"
  grep -qxF -- "$1" "$manifest" || printf '%s\n' "$1" >>"$manifest"
}

cmd=${1:-}
shift || true
case "$cmd" in
install)
  [ $(($# % 3)) -eq 0 ] && [ $# -gt 0 ] || { echo "install.sh install: expects MODE SRC DEST triples" >&2; exit 2; }
  while [ $# -gt 0 ]; do
    mode=$1 src=$2 dest=$3
    shift 3
    [ -f "$src" ] || { echo "install: $src is missing (build it first)" >&2; exit 1; }
    install -d "$DESTDIR$(dirname "$dest")"
    install -m "$mode" "$src" "$DESTDIR$dest"
    record "file $dest"
    echo "installed $DESTDIR$dest"
  done
  ;;
link)
  target=${1:?link TARGET}
  link=${2:?link LINK}
  case "$link" in
  /*) ;;
  *) echo "install-system: LOADER_DIR is empty or relative ('$link')" >&2; exit 2 ;;
  esac
  if [ "$(dirname "$target")" = "$(dirname "$link")" ]; then
    echo "install-system: $target is already in the loader's directory"
    exit 0
  fi
  if [ -e "$DESTDIR$link" ] && [ ! -L "$DESTDIR$link" ]; then
    echo "install-system: $DESTDIR$link exists and is not a link: not replacing it" >&2
    exit 1
  fi
  install -d "$DESTDIR$(dirname "$link")"
  ln -sfn "$target" "$DESTDIR$link"
  record "link $link $target"
  echo "linked $DESTDIR$link -> $target"
  ;;
uninstall)
  if [ ! -f "$manifest" ]; then
    echo "uninstall: no manifest at $manifest: nothing recorded as installed here (same PREFIX/DESTDIR as the install?)"
    exit 0
  fi
  while read -r kind path target; do
    f="$DESTDIR$path"
    case "$kind" in
    file)
      if [ -f "$f" ] && [ ! -L "$f" ]; then rm -f "$f" && echo "removed $f"; fi
      ;;
    link)
      # Only our link: one someone re-pointed since is theirs now.
      if [ -L "$f" ] && [ "$(readlink "$f")" = "$target" ]; then rm -f "$f" && echo "removed $f"; fi
      ;;
    *) echo "uninstall: $manifest: unknown line '$kind $path $target'" >&2; exit 1 ;;
    esac
  done <"$manifest"
  rm -f "$manifest"
  rmdir "$(dirname "$manifest")" 2>/dev/null || true
  ;;
*)
  echo "usage: install.sh install MODE SRC DEST... | link TARGET LINK | uninstall" >&2
  exit 2
  ;;
esac
