#!/usr/bin/env bash
# The repository must stand on its own: nothing in it may point to files outside it (the
# team's design notes, the mailing-list threads the project came from), and every
# invariant (I#) and historical race (R#) it cites must be defined in docs/DESIGN.md.
#   self_contained_lint.sh <repo root>
set -euo pipefail
root="$1"
cd "$root"

outside='\.\./shared|ARCHITECTURE\.md|STYLE\.md|seeds?/[0-9]|seed [0-9]{3}'
files() {  # every file of the tree but images: git's view in a checkout, else all files
  if [ "$(git rev-parse --show-toplevel 2>/dev/null)" = "$(pwd -P)" ]; then
    git ls-files --cached --others --exclude-standard | grep -v '\.png$' | sed 's|^|./|'
  else
    find . -type f -not -path './build*' -not -path './.git/*' -not -name '*.png' | sort
  fi
}

status=0
while IFS= read -r file; do
  if grep -nIE "$outside" "$file" >/dev/null; then
    grep -nIE "$outside" "$file" | sed "s|^|$file:|" >&2
    echo "self_contained_lint: $file points outside the repository" >&2
    status=1
  fi
done < <(files)

design=docs/DESIGN.md
if [ ! -f "$design" ]; then
  echo "self_contained_lint: $design is missing" >&2
  exit 1
fi
defined="$(grep -oE '\*\*[IR][0-9]+\*\*|^\| R[0-9]+ \|' "$design" | grep -oE '[IR][0-9]+' | sort -u)"
while IFS= read -r file; do
  for id in $(grep -ohIE '\b[IR][0-9]+\b' "$file" | sort -u); do
    if ! grep -qx "$id" <<<"$defined"; then
      echo "self_contained_lint: $file cites $id, which $design does not define" >&2
      status=1
    fi
  done
done < <(files)
[ "$status" -eq 0 ] && echo "self_contained_lint: ok"
exit "$status"
