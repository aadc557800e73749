# Sourced by test-debs.sh and test-units.sh: the repository root as working directory, root,
# the four packages of `make deb` in $debs, and ok/fail lines counted in $checks.
# $1: the script's name in messages; $2: why it needs root.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"
[ "$(id -u)" -eq 0 ] || { echo "$1: run as root ($2)" >&2; exit 1; }
shopt -s nullglob
debs=(dist/pharos-*.deb)
[ ${#debs[@]} -eq 4 ] || { echo "$1: expected 4 packages in dist/ (make deb), found ${#debs[@]}" >&2; exit 1; }
checks=0
ok() { checks=$((checks + 1)); printf '  ok   %s\n' "$*"; }
