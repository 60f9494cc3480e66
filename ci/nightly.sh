#!/usr/bin/env bash
# The nightly job: random seeds for a given time with --jobs = cores, then every fuzz target
# under AddressSanitizer (cargo +nightly fuzz run) for a given time. Prints a summary of the
# failures with their replay commands and exits non-zero on any failure.
#
#   ci/nightly.sh [SEED_SECONDS (default 3600)] [FUZZ_SECONDS_PER_TARGET (default 900)]
set -uo pipefail
cd "$(dirname "$0")/.."
seed_seconds="${1:-3600}"
fuzz_seconds="${2:-900}"
jobs="$(nproc 2>/dev/null || echo 2)"
out="$(mktemp -d)"
failures=0

cargo build --release --bin vopr || exit 2
vopr=target/release/vopr

echo "== random seeds for ${seed_seconds}s on $jobs jobs"
deadline=$(( $(date +%s) + seed_seconds ))
batch=0
while [ "$(date +%s)" -lt "$deadline" ]; do
  start=$(( ($(date +%s%N) ^ (batch << 20)) % 1000000000000 ))
  "$vopr" --seeds "$start..$((start + 50))" --jobs "$jobs" --json > "$out/batch-$batch.jsonl"
  batch=$((batch + 1))
done
python3 - "$out" <<'PY' || failures=$((failures + 1))
import json, sys, glob
bad = []
total = 0
for path in sorted(glob.glob(sys.argv[1] + "/batch-*.jsonl")):
    for line in open(path):
        s = json.loads(line)
        total += 1
        if s["outcome"] != "pass":
            bad.append(s)
print(f"{total} seeds, {len(bad)} failed")
for s in bad:
    v = s.get("violation") or {}
    print(f"  seed {s['seed']}: {s['outcome']} {v.get('invariant', '')} {v.get('message', '')[:200]}")
    print(f"    replay: cargo run --release --bin vopr -- --seed {s['seed']}")
sys.exit(1 if bad else 0)
PY

echo "== fuzz targets under AddressSanitizer, ${fuzz_seconds}s each"
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked || exit 2
fi
cd fuzz
for target in $(cargo fuzz list); do
  mkdir -p "$out/corpus/$target"
  # The simulation targets run without trace-compares instrumentation (it hooks every
  # comparison of the simulator: a third of the speed); the decoders keep it. Alphabetical
  # order rebuilds once.
  flags=()
  case "$target" in scenario | view_change) flags=(--no-trace-compares) ;; esac
  if ! cargo +nightly fuzz run "${flags[@]}" "$target" "$out/corpus/$target" "corpus/$target" -- \
      -max_total_time="$fuzz_seconds" > "$out/fuzz-$target.log" 2>&1; then
    failures=$((failures + 1))
    echo "  $target: FAILED; see $out/fuzz-$target.log; reproduce with:"
    for crash in artifacts/"$target"/crash-*; do
      echo "    cd fuzz && cargo +nightly fuzz run ${flags[*]} $target $crash"
    done
  else
    echo "  $target: clean ($(grep -Eo 'exec/s: [0-9]+' "$out/fuzz-$target.log" | tail -1))"
  fi
done

echo "nightly: $failures failing part(s); logs in $out"
[ "$failures" -eq 0 ]
