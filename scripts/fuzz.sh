#!/usr/bin/env bash
# Coverage-guided fuzzing of what the provider decodes from outside (issue #10): Terraform's
# DynamicValue bytes, stored state given to UpgradeResourceState, catalog snapshots, and the
# HTTP/2 frames the gRPC server reads.
#
#   scripts/fuzz.sh [seconds per target, default 60]
#
# cargo-fuzz drives libFuzzer; `--sanitizer none` keeps it on the stable toolchain (the only one
# here), so memory errors in C dependencies are not detected, only crashes and failed asserts in
# our code. Prints, per target, the executions and the crashes found; exits 1 on any crash.
# Crash inputs land in fuzz/artifacts/<target>/; replay one with
#   cargo fuzz run --sanitizer none <target> fuzz/artifacts/<target>/<file>
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_PER_TARGET="${1:-60}"
TARGETS=(dynamic_value state_upgrade catalog_snapshot http2_connection)
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$ROOT/target/fuzz}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install --locked cargo-fuzz
fi

cd "$ROOT/fuzz"
CORPUS="$ROOT/fuzz/corpus"
cargo run --quiet --release --bin write_seeds -- "$CORPUS"

status=0
for target in "${TARGETS[@]}"; do
  log="$(mktemp)"
  mkdir -p "$CORPUS/$target" "$ROOT/fuzz/artifacts/$target"
  set +e
  cargo fuzz run --sanitizer none --release "$target" "$CORPUS/$target" -- \
    -max_total_time="$SECONDS_PER_TARGET" -max_len=65536 -timeout=10 -rss_limit_mb=4096 \
    -print_final_stats=1 >"$log" 2>&1
  rc=$?
  set -e
  runs="$(grep -oE '^stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')"
  crashes="$(find "$ROOT/fuzz/artifacts/$target" -type f | wc -l)"
  echo "fuzz $target: ${SECONDS_PER_TARGET} s, $runs executions, $crashes crash inputs (exit $rc)"
  if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    status=1
    grep -E 'panicked|ERROR|SUMMARY' "$log" | head -20 || true
  fi
  rm -f "$log"
done
exit "$status"
