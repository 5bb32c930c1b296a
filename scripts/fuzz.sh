#!/usr/bin/env bash
# Runs each libFuzzer target built in BUILD (tests/fuzz/NAME_fuzz.cc) for SECONDS seconds, one
# after another, from a fresh copy of its checked-in seeds (tests/fuzz/corpus/NAME), so the
# source tree is never written. Prints one line per target; fails if any found a crash.
# Its corpus, log and crashing inputs stay in BUILD/fuzz-run/NAME/.
# Usage: scripts/fuzz.sh [BUILD [SECONDS]]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-fuzz}
seconds=${2:-${FUZZ_SECONDS:-60}}
export UBSAN_OPTIONS=print_stacktrace=1

failed=0
for source in tests/fuzz/*_fuzz.cc; do
  name=$(basename "$source" _fuzz.cc)
  work=$build/fuzz-run/$name
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/crashes"
  cp tests/fuzz/corpus/"$name"/* "$work/corpus/"
  verdict=ok
  "$build/${name}_fuzz" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$work/crashes/" "$work/corpus" >"$work/log" 2>&1 ||
    verdict=FAILED
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)
  [ -n "$execs" ] || execs=$(grep -o '^#[0-9]*' "$work/log" | tail -n 1 | tr -d '#' || true)
  printf 'fuzz: %-14s %10s execs in %ss  %s\n' "$name" "${execs:-0}" "$seconds" "$verdict"
  if [ "$verdict" != ok ]; then
    failed=1
    # What broke, and where in our code: the full report is in the log.
    grep -E 'ERROR:|runtime error|invariant broken|what\(\)|SUMMARY' "$work/log" | head -n 5 |
      cut -c1-200 | sed 's/^/    /' || true
    grep -E '^ *#[0-9]+ .* /[^ ]*/(src|tests/fuzz)/[^ ]+$' "$work/log" | head -n 6 |
      sed -E 's/^ *(#[0-9]+) 0x[0-9a-f]+ in ([^( ]+).* ([^ ]+)$/    \1 \3  \2/' || true
    for crash in "$work/crashes"/*; do
      if [ -e "$crash" ]; then
        echo "    input: $crash: $(head -c 48 "$crash" | od -An -tx1 -v | tr -d ' \n')"
      fi
    done
    echo "    log: $work/log"
  fi
done
exit $failed
