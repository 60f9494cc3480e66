#!/usr/bin/env bash
# The test command (README): formatting, lints, every test, the regression seeds, a fixed sweep
# of fresh seeds, and a short smoke run of every fuzz target. Sized for 2 cores, well under 30 min.
set -euo pipefail
cd "$(dirname "$0")/.."

jobs="${VOPR_JOBS:-$(nproc 2>/dev/null || echo 2)}"
sweep="${VOPR_SWEEP:-1..801}"

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

echo "== cargo test"
cargo test --workspace

echo "== fresh clone"
ci/fresh-clone.sh

echo "== build vopr (release)"
cargo build --release --bin vopr
vopr=target/release/vopr

echo "== vopr replay seeds/"
"$vopr" --jobs "$jobs" replay seeds/

echo "== vopr sweep $sweep"
"$vopr" --seeds "$sweep" --jobs "$jobs"

if [ -x ci/fuzz-smoke.sh ]; then
  echo "== fuzz smoke"
  ci/fuzz-smoke.sh
fi
