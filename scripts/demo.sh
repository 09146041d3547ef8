#!/usr/bin/env bash
# The main job: a real `terraform init/plan/apply` of examples/terraform/quickstart against the
# provider installed in the local filesystem mirror, on the embedded sim cloud.
# Usage: scripts/demo.sh TERRAFORM MIRROR_DIR WORK_DIR
set -euo pipefail

TERRAFORM="$1"; MIRROR="$2"; WORK="$3"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

rm -rf "$WORK"
mkdir -p "$WORK/home"
cp -r "$ROOT/examples/terraform/quickstart/." "$WORK/"

# Our own CLI config: nothing on the machine (~/.terraformrc, TF_CLI_CONFIG_FILE) is used.
. "$ROOT/scripts/mirror-env.sh"
mirror_env "$WORK" "$MIRROR"
export HYBRID_STATE_PATH="$WORK/hybrid-state.db"

cd "$WORK"
echo "==> terraform init";  "$TERRAFORM" init -input=false -no-color
echo "==> terraform plan";  "$TERRAFORM" plan -input=false -no-color -out=demo.tfplan
echo "==> terraform apply (provisions the placement the plan showed, on the sim cloud)"
"$TERRAFORM" apply -input=false -no-color demo.tfplan
echo "==> re-plan (expects no changes)"
"$TERRAFORM" plan -input=false -no-color -detailed-exitcode >/dev/null && echo "No changes: placement is stable."
