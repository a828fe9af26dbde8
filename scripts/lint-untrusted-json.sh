#!/usr/bin/env bash
# Data-plane sources read client requests and provider answers: untrusted JSON. On it no
# accessor may throw (docs/ARCHITECTURE.md, "No exceptions on the data plane"). This lint fails
# on the nlohmann calls that throw on a wrong type or a missing key, and on a get_ref<> that no
# type check guards in the lines just before it. Config loading (src/config, src/runtime) and the
# reader that implements the checks (src/json) are not data plane.
# Usage: scripts/lint-untrusted-json.sh [source root]   (exit 1 and one line per finding)
set -euo pipefail
root=${1:-$(dirname "$0")/..}
cd "$root"
dirs=(src/api src/aws src/filters src/http src/log src/net src/providers src/proxy src/routing src/server src/sse src/stream
      src/upstream src/util)
not_data_plane=(src/config src/json src/runtime)
# Every directory is either scanned or named as not data plane, so a new one cannot slip past;
# a listed one that disappears is an error too (LINT_FIXTURE=1: a fixture tree with a few).
missing=0
for d in "${dirs[@]}"; do
  [ -d "$d" ] || [ "${LINT_FIXTURE:-0}" = 1 ] || { echo "lint: $d is listed but missing"; missing=1; }
done
for d in src/*/; do
  d=${d%/}
  [[ " ${dirs[*]} ${not_data_plane[*]} " == *" $d "* ]] ||
    { echo "lint: $d is neither scanned nor listed as not data plane"; missing=1; }
done
[ "$missing" = 0 ] || exit 1
files=$(find "${dirs[@]}" \( -name '*.cpp' -o -name '*.hpp' \) 2>/dev/null | sort || true)
[ -n "$files" ] || { echo "lint: no sources under $root"; exit 1; }
# shellcheck disable=SC2086
awk '
  function report(why) { printf "%s:%d: %s: %s\n", FILENAME, FNR, why, $0; bad = 1 }
  FNR == 1 { delete recent; n = 0 }
  {
    code = $0
    sub(/(^|[ \t])\/\/.*/, "", code)  # comments do not count ("http://" in a string does)
    if (code ~ /(\.|->)(template[ \t]+)?get<[^>]*>\(/ || code ~ /(\.|->)get_to\(/) report("throwing get<>/get_to");
    else if (code ~ /(\.|->)value\([^)]/) report("value(key, default) throws on a wrong type");
    else if (code ~ /(^|[^A-Za-z0-9_])(nlohmann::)?(json|Json)::parse\(/) report("throwing json::parse (use json::parse_untrusted)");
    else if (code ~ /(\.|->)at\(/ && code !~ /(^|[^A-Za-z0-9_])r\.at\(/) report("at() throws on a missing key or index (use json::find or the Reader)");
    if (code ~ /get_ref</) {
      guarded = (code ~ /is_[a-z_]+\(\)|expect\(/)
      for (i = 1; i <= 4 && !guarded; i++) if (recent[(n - i) % 4] ~ /is_[a-z_]+\(\)|expect\(/) guarded = 1
      if (!guarded) report("get_ref<> with no type check in the 4 lines before it");
    }
    recent[n % 4] = code; n++
  }
  END { exit bad }
' $files
