#!/usr/bin/env bash
# CI step: plan, turn the plan into JSON, and let the provider binary review it.
#
#   exit 0  the plan passes every policy below (the summary is in review.md)
#   exit 1  a policy is violated (review.md and stderr list which)
#   exit 2  the plan JSON could not be read (the message says why)
#
# PROVIDER_BIN is the terraform-provider-hybrid binary (the same one `terraform init` installed;
# `find .terraform/providers -name 'terraform-provider-hybrid*' -type f` finds it).
set -euo pipefail

PROVIDER_BIN="${PROVIDER_BIN:-$(find .terraform/providers -name 'terraform-provider-hybrid*' -type f | head -n 1)}"
MAX_MONTHLY_INCREASE="${MAX_MONTHLY_INCREASE:-200}"

terraform init -input=false
terraform plan -input=false -out=plan.tfplan
terraform show -json plan.tfplan > plan.json

status=0
"$PROVIDER_BIN" review \
  --max-monthly-increase "$MAX_MONTHLY_INCREASE" \
  --fail-on-compliance-change \
  --require-migration-plan \
  plan.json > review.md || status=$?

# Machine-readable copy for dashboards or a bot (same policies, same exit code).
"$PROVIDER_BIN" review --format json \
  --max-monthly-increase "$MAX_MONTHLY_INCREASE" \
  --fail-on-compliance-change \
  --require-migration-plan \
  plan.json > review.json || true

cat review.md
exit "$status"
