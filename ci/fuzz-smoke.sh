#!/usr/bin/env bash
# A short run of every fuzz target (default 30 s each) on stable, without sanitizers.
# New corpus entries and crash artifacts go to a scratch folder, so the checked-in corpus
# stays small; a crash fails the script with the command that reproduces it.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-30}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

scratch="$(mktemp -d)"
cd fuzz
cargo fuzz build -s none
for target in $(cargo fuzz list); do
  mkdir -p "$scratch/$target/corpus" "$scratch/$target/artifacts"
  echo "== fuzz $target for ${seconds}s"
  set +e
  cargo fuzz run -s none "$target" "$scratch/$target/corpus" "corpus/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 \
    -artifact_prefix="$scratch/$target/artifacts/" > "$scratch/$target/log" 2>&1
  status=$?
  set -e
  grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::average_exec_per_sec)" \
    "$scratch/$target/log" || true
  if [ "$status" -ne 0 ]; then
    grep -E "panicked|ERROR|SUMMARY" -A3 "$scratch/$target/log" | head -20 || true
    for crash in "$scratch/$target/artifacts"/*; do
      mkdir -p "artifacts/$target"
      cp "$crash" "artifacts/$target/"
      echo "reproduce: cd fuzz && cargo fuzz run -s none $target artifacts/$target/$(basename "$crash")"
    done
    exit 1
  fi
done
rm -rf "$scratch"
