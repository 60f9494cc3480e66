#!/usr/bin/env bash
# A short run of every fuzz target (default 30 s each) on stable, without sanitizers.
# New corpus entries and crash artifacts go to a scratch folder, so the checked-in corpus
# stays small; a crash fails the script with the command that reproduces it.
#
# A fixed libFuzzer seed (FUZZ_SEED, default 1) makes the mutations the same on every run
# (within the time limit, which still decides how many inputs run). Built without
# trace-compares instrumentation: it hooks every comparison of the simulator and cost the
# simulation targets two thirds of their speed; their protocol features reach libFuzzer as
# extra counters instead (fuzz/src/lib.rs). The nightly job keeps it for the decoders.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-30}"
seed="${FUZZ_SEED:-1}"
flags=(-s none --no-trace-compares)

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

scratch="$(mktemp -d)"
cd fuzz
cargo fuzz build "${flags[@]}"
for target in $(cargo fuzz list); do
  mkdir -p "$scratch/$target/corpus" "$scratch/$target/artifacts"
  echo "== fuzz $target for ${seconds}s"
  set +e
  cargo fuzz run "${flags[@]}" "$target" "$scratch/$target/corpus" "corpus/$target" -- \
    -max_total_time="$seconds" -seed="$seed" -print_final_stats=1 \
    -artifact_prefix="$scratch/$target/artifacts/" > "$scratch/$target/log" 2>&1
  status=$?
  set -e
  grep -E "^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::average_exec_per_sec)" \
    "$scratch/$target/log" || true
  if [ "$status" -ne 0 ]; then
    grep -E "panicked|ERROR|SUMMARY" -A3 "$scratch/$target/log" | head -20 || true
    for crash in "$scratch/$target/artifacts"/*; do
      mkdir -p "artifacts/$target"
      cp "$crash" "artifacts/$target/"
      echo "reproduce: cd fuzz && cargo fuzz run ${flags[*]} $target artifacts/$target/$(basename "$crash")"
    done
    exit 1
  fi
done
rm -rf "$scratch"
