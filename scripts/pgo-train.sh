#!/usr/bin/env bash
# The training run of the profile-guided release build (scripts/pgo.sh): real Terraform commands
# against an instrumented provider binary, so that the profile is what a Terraform run executes.
#
# What runs, each in its own directory, state and sim cloud, from a filesystem mirror holding
# BINARY:
#   - every examples/terraform configuration that applies on the sim cloud (quickstart,
#     multi-cloud-compliance, edge-site, edge-fleet with its module, migration with
#     migrate=true): plan -out, apply of that plan, a no-op re-plan, destroy;
#   - a fleet of TRAIN_COUNT workloads (default 300) in a few shapes (strategies, user
#     locations, preferred providers, tags): the same four commands, plus an import.
# The mix matters more than its size: a profile that only saw one resource shape would tell
# the optimiser the rest of the provider is cold. None of it is the benchmark's configuration
# (bench/bench.py), so the benchmark measures a build trained on other work.
#
# Usage: scripts/pgo-train.sh TERRAFORM BINARY WORK_DIR
set -euo pipefail

TERRAFORM="$(readlink -f "$1")"; BINARY="$(readlink -f "$2")"; WORK="$3"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${VERSION:-$(sed -n 's/^VERSION *:= *//p' "$ROOT/GNUmakefile")}"
COUNT="${TRAIN_COUNT:-300}"

rm -rf "$WORK"
MIRROR="$WORK/mirror"
PKG="$MIRROR/registry.terraform.io/hybrid/hybrid/$VERSION/linux_amd64"
mkdir -p "$PKG" "$WORK/home"
cp "$BINARY" "$PKG/terraform-provider-hybrid_v$VERSION"
. "$ROOT/scripts/mirror-env.sh"
mirror_env "$WORK" "$MIRROR"
export CHECKPOINT_DISABLE=1
# The migration example waits for promotion and scale-down delays: at 1/1000 speed on the sim.
export HYBRID_SIM_TIME_SCALE=0.001

# terraform SUBCOMMAND [args]: flags go before the arguments (Terraform stops parsing at the first).
tf() {
  local sub="$1"; shift
  "$TERRAFORM" "$sub" -input=false -no-color "$@" > "$PWD/last.log" 2>&1 \
    || { echo "pgo-train: terraform $sub $* failed in $PWD:" >&2; cat "$PWD/last.log" >&2; return 1; }
}

# plan -out, apply, no-op re-plan, destroy in the current directory (extra args: -var ...).
cycle() {
  export HYBRID_STATE_PATH="$PWD/hybrid-state.db"
  tf init
  tf plan -out=train.tfplan "$@"
  tf apply train.tfplan
  tf plan -detailed-exitcode "$@"
  tf destroy -auto-approve "$@"
}

cp -r "$ROOT/examples/terraform" "$WORK/examples"
for example in quickstart multi-cloud-compliance edge-site edge-fleet; do
  echo "pgo-train: examples/terraform/$example"
  (cd "$WORK/examples/$example" && cycle)
done
echo "pgo-train: examples/terraform/migration (migrate=true)"
(cd "$WORK/examples/migration" && export HYBRID_STATE_PATH="$PWD/hybrid-state.db" \
  && tf init && tf apply -auto-approve && tf plan -out=train.tfplan -var migrate=true \
  && tf apply train.tfplan && tf plan -detailed-exitcode -var migrate=true \
  && tf destroy -auto-approve -var migrate=true)

echo "pgo-train: a fleet of $COUNT workloads"
mkdir -p "$WORK/fleet"
cat > "$WORK/fleet/main.tf" <<HCL
terraform {
  required_providers {
    hybrid = {
      source  = "hybrid/hybrid"
      version = "$VERSION"
    }
  }
}

provider "hybrid" {
  default_tags = { managed_by = "pgo-train" }
}

locals {
  strategies = ["hybrid", "cost_optimized", "performance_optimized", "latency_optimized", "resilience_optimized"]
}

resource "hybrid_workload" "plain" {
  count     = $COUNT
  name      = "plain-\${count.index}"
  cpu       = 2
  memory_gb = 4 + count.index % 2 * 4

  compliance             = ["soc2"]
  data_residency_regions = ["US"]
}

resource "hybrid_workload" "shaped" {
  count         = 25
  name          = "shaped-\${count.index}"
  workload_type = "api"
  cpu           = 2 + count.index % 4
  memory_gb     = 4 * (1 + count.index % 3)
  storage_gb    = 20
  strategy      = local.strategies[count.index % length(local.strategies)]

  preferred_providers = count.index % 2 == 0 ? ["aws", "gcp"] : null
  max_latency_ms      = 150
  user_locations = [
    { lat = 52.52, lng = 13.40, weight = 0.7 },
    { lat = 40.71, lng = -74.0, weight = 0.3 },
  ]
  tags = { team = "t\${count.index % 3}" }
}
HCL
(cd "$WORK/fleet" && cycle)
# Import: apply one workload, read its id, import it into a fresh state.
(cd "$WORK/fleet" && export HYBRID_STATE_PATH="$PWD/hybrid-state.db" \
  && tf apply -auto-approve -target='hybrid_workload.shaped[0]' \
  && id="$("$TERRAFORM" state show -no-color 'hybrid_workload.shaped[0]' | sed -n 's/^ *id *= *"\(wl-[^"]*\)".*/\1/p' | head -1)" \
  && [ -n "$id" ] && "$TERRAFORM" state rm 'hybrid_workload.shaped[0]' > /dev/null \
  && tf import 'hybrid_workload.shaped[0]' "$id" \
  && tf destroy -auto-approve)
echo "pgo-train: done"
