#!/usr/bin/env bash
# A short run of every fuzz target (default 30 s each) on stable, without sanitizers.
# New corpus entries go to a scratch folder so the checked-in corpus stays small.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-30}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cd fuzz
cargo fuzz build -s none
for target in $(cargo fuzz list); do
  mkdir -p "$scratch/$target"
  echo "== fuzz $target for ${seconds}s"
  cargo fuzz run -s none "$target" "$scratch/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 2>&1 | grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::average_exec_per_sec|==[0-9]+== ERROR|SUMMARY)|panicked" || true
  # A crash makes cargo fuzz exit non-zero; with `set -o pipefail` masked by grep, check the artifacts.
  if ls "artifacts/$target"/crash-* >/dev/null 2>&1; then
    echo "fuzz target $target crashed; reproduce with: cd fuzz && cargo fuzz run -s none $target artifacts/$target/crash-*"
    exit 1
  fi
done
