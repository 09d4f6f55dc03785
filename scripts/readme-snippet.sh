#!/usr/bin/env bash
# Prints the code block that follows `<!-- snippet: NAME ... -->` (or
# `<!-- recipe: NAME ... -->`) in a Markdown file (default: the README), so
# tests run exactly what it shows.
#   readme-snippet.sh NAME [FILE]
set -euo pipefail
name=${1:?usage: readme-snippet.sh NAME [FILE]}
file=${2:-$(cd "$(dirname "$0")/.." && pwd)/README.md}
out=$(awk -v name="$name" '
  index($0, "<!-- snippet: " name " ") == 1 || $0 == "<!-- snippet: " name " -->" ||
  index($0, "<!-- recipe: " name " ") == 1 || $0 == "<!-- recipe: " name " -->" { found = 1; next }
  found && /^```/ { if (inside) exit; inside = 1; next }
  found && inside { print }
' "$file")
[ -n "$out" ] || { echo "readme-snippet: no snippet '$name' in $file" >&2; exit 1; }
printf '%s\n' "$out"
