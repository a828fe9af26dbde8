#!/usr/bin/env bash
# make lint: clang-format (the whole tree must be formatted as .clang-format says) and clang-tidy
# (.clang-tidy's checks, findings are errors) on every source of src/, in parallel.
# Usage: scripts/lint.sh BUILD_DIR (which holds compile_commands.json).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
[ -f "$build/compile_commands.json" ] || { echo "lint: $build/compile_commands.json missing (build first)"; exit 1; }

mapfile -t cxx < <(git ls-files 'src/*.cpp' 'src/*.hpp' 'include/*.hpp' 'tests/*.cpp' 'tests/*.hpp' 'bench/*.cpp' \
                   | grep -v '^tests/data/')
echo "lint: clang-format on ${#cxx[@]} files"
clang-format --dry-run --Werror "${cxx[@]}"

mapfile -t tus < <(git ls-files 'src/*.cpp')
echo "lint: clang-tidy on ${#tus[@]} translation units ($(nproc) at a time)"
printf '%s\n' "${tus[@]}" | xargs -P "$(nproc)" -n 1 clang-tidy -p "$build" --quiet 2>/dev/null
echo "lint: clean"
