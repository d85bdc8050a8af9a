#!/usr/bin/env bash
# environment.yml as a new user gets it: its pip section must resolve in a fresh virtual
# environment (pip's --dry-run: resolved, nothing installed), from the repository root, so a
# requirement that only a package index could satisfy (smooth-topk before its local install)
# fails here. CI runs it after the tests (about a minute).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The entries under "- pip:" (indented "- " lines after it), without comments.
mapfile -t requirements < <(
    awk '/- pip:/ {inside = 1; next} inside && /^ *- / {sub(/^ *- /, ""); sub(/ *#.*/, ""); print}' \
        environment.yml
)
[ "${#requirements[@]}" -gt 0 ] || { echo "environment.yml: no pip section found" >&2; exit 1; }
arguments=()
for requirement in "${requirements[@]}"; do
    read -ra words <<<"$requirement"  # "-e ./smooth-topk[kernel]" is two arguments
    arguments+=("${words[@]}")
done
"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --dry-run "${arguments[@]}" 2> >(grep -v "^WARNING: Location" >&2)
echo "environment.yml: its pip section resolves (${requirements[*]})"
