#!/usr/bin/env bash
# Profile-guided release build of terraform-provider-hybrid (`make release-pgo`).
#
# Why: the plugin's CPU per Terraform call is mostly code we do not write (tokio, hyper/h2,
# rustls, prost, SQLite) running with cold caches, one call at a time, between Terraform's own
# work. Telling LLVM which branches and functions a real Terraform run takes lets it lay out and
# inline for that path, across all of those crates at once. rustc, Firefox and Chromium ship
# PGO builds for the same reason.
#
# Steps:
#   1. an instrumented release build (-Cprofile-generate) in $TARGET_DIR/pgo-generate;
#   2. scripts/pgo-train.sh: real Terraform commands against it (examples and a fleet);
#   3. llvm-profdata of the LLVM major version rustc is built on merges the raw profiles
#      (Debian's llvm-<major> package, installed with apt when missing);
#   4. the release build again with -Cprofile-use, in $TARGET_DIR/pgo.
# `--target <host>` keeps the flags off build scripts and proc macros (they run on the build
# machine and are not what we ship). Progress goes to stderr; stdout gets the optimised
# binary's path and nothing else.
#
# Usage: scripts/pgo.sh TERRAFORM
set -euo pipefail

TERRAFORM="$(readlink -f "$1")"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
PROVIDER=terraform-provider-hybrid
HOST="$(rustc -vV | sed -n 's/^host: //p')"
LLVM_MAJOR="$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')"
PROFILES="$TARGET_DIR/pgo-profiles"

PROFDATA="$(command -v "llvm-profdata-$LLVM_MAJOR" || true)"
if [ -z "$PROFDATA" ]; then
  echo "==> installing llvm-$LLVM_MAJOR (llvm-profdata for rustc's LLVM $LLVM_MAJOR) with apt" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "llvm-$LLVM_MAJOR" >&2
  PROFDATA="$(command -v "llvm-profdata-$LLVM_MAJOR")"
fi

rm -rf "$PROFILES"
mkdir -p "$PROFILES/raw"

echo "==> instrumented release build ($TARGET_DIR/pgo-generate)" >&2
(cd "$ROOT" && RUSTFLAGS="-Cprofile-generate=$PROFILES/raw" \
  cargo build --release --quiet -p "$PROVIDER" --target "$HOST" \
  --target-dir "$TARGET_DIR/pgo-generate")

echo "==> training run (scripts/pgo-train.sh)" >&2
LLVM_PROFILE_FILE="$PROFILES/raw/%m_%p.profraw" \
  bash "$ROOT/scripts/pgo-train.sh" "$TERRAFORM" \
  "$TARGET_DIR/pgo-generate/$HOST/release/$PROVIDER" "$PROFILES/train" >&2
raw_count="$(find "$PROFILES/raw" -name '*.profraw' | wc -l)"
[ "$raw_count" -gt 0 ] || { echo "pgo: the training run wrote no profile" >&2; exit 1; }

echo "==> merging $raw_count raw profiles" >&2
"$PROFDATA" merge -o "$PROFILES/merged.profdata" "$PROFILES/raw" >&2
# Named by its content: cargo tracks RUSTFLAGS, not the file they name, so a new profile under
# the old name would leave the previous build in place.
PROFILE="$PROFILES/merged-$(sha256sum "$PROFILES/merged.profdata" | cut -c1-16).profdata"
mv "$PROFILES/merged.profdata" "$PROFILE"

# The link order (see provider/terraform/build.rs). First link/hot-symbols-pgo.txt: what a
# plan, apply, re-plan and destroy ran in an earlier profile-guided build (`make hot-symbols`
# writes it; such a build inlines most of the small functions link/hot-symbols.txt names, so that
# list alone leaves the run's code spread out). Then whatever else the training ran, most run
# first (names are linker symbols; internal functions carry a "module;" prefix in the profile),
# then link/hot-symbols.txt for what the profile cannot see: the standard library, which is not
# instrumented, and the C and assembly of SQLite and AWS-LC.
ORDER="$PROFILES/link-order-$(basename "$PROFILE" .profdata).txt"
"$PROFDATA" show --all-functions --counts "$PROFILE" | python3 -c '
import re, sys
ran, name = [], None
for line in sys.stdin:
    if line.startswith("  ") and not line.startswith("   ") and line.rstrip().endswith(":"):
        name = line.strip()[:-1].split(";")[-1]
    elif name and "Block counts:" in line:
        total = sum(int(n) for n in re.findall(r"\d+", line.split(":", 1)[1]))
        if total:
            ran.append((-total, name))
        name = None
def listed(path):
    try:
        return open(path).read().split()
    except FileNotFoundError:
        return []
seen = set()
for symbol in listed(sys.argv[1]) + [s for _, s in sorted(ran)] + listed(sys.argv[2]):
    if symbol not in seen:
        seen.add(symbol)
        print(symbol)
' "$ROOT/provider/terraform/link/hot-symbols-pgo.txt" \
  "$ROOT/provider/terraform/link/hot-symbols.txt" > "$ORDER"
echo "==> link order: $(wc -l < "$ORDER") functions ($ORDER)" >&2

echo "==> optimised release build ($TARGET_DIR/pgo)" >&2
(cd "$ROOT" && RUSTFLAGS="-Cprofile-use=$PROFILE" HYBRID_LINK_ORDER_FILE="$ORDER" \
  cargo build --release --quiet -p "$PROVIDER" --target "$HOST" --target-dir "$TARGET_DIR/pgo")
echo "$TARGET_DIR/pgo/$HOST/release/$PROVIDER"
