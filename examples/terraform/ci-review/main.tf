# CI review example: a workload plus the read-only data sources a reviewer (or a pipeline)
# uses to see where it could run and what the fleet costs. Run the review gate on its plan with
# ci-review.sh (see README.md).

terraform {
  required_providers {
    hybrid = {
      source = "hybrid/hybrid"
    }
  }
}

provider "hybrid" {
  default_tags = { managed_by = "ci-review" }
}

variable "max_monthly_budget_increase" {
  description = "Used by the CI script only; documented here so the limit lives with the code."
  type        = number
  default     = 200
}

locals {
  users = [
    { lat = 52.52, lng = 13.40, weight = 0.6, name = "berlin" },
    { lat = 48.86, lng = 2.35, weight = 0.4, name = "paris" },
  ]
}

# Which regions may hold GDPR data at all.
data "hybrid_regions" "gdpr" {
  compliance = ["gdpr"]
}

# Where the users are best served, with the price of a 2 vCPU / 8 GB type in each region.
data "hybrid_region_recommendation" "eu_users" {
  user_locations = local.users
  compliance     = ["gdpr"]
  cpu            = 2
  memory_gb      = 8
  top_k          = 3
}

# The ranking the engine would produce, without provisioning anything.
data "hybrid_placement" "checkout_api" {
  cpu                    = 2
  memory_gb              = 8
  compliance             = ["gdpr"]
  data_residency_regions = ["EU"]
  cost_budget_hourly     = 0.50
  user_locations         = [for u in local.users : { lat = u.lat, lng = u.lng, weight = u.weight }]
  top_k                  = 3
}

resource "hybrid_workload" "checkout_api" {
  name                   = "checkout-api"
  workload_type          = "api"
  cpu                    = 2
  memory_gb              = 8
  compliance             = ["gdpr"]
  data_residency_regions = ["EU"]
  cost_budget_hourly     = 0.50
  user_locations         = [for u in local.users : { lat = u.lat, lng = u.lng, weight = u.weight }]
}

# What the workloads this provider manages cost today, and how to pay less.
data "hybrid_cost_report" "fleet" {
  spot_allowed = false
}

output "gdpr_region_count" {
  value = length(data.hybrid_regions.gdpr.codes)
}

output "best_region_for_users" {
  value = data.hybrid_region_recommendation.eu_users.recommendations[0].region
}

output "engine_choice" {
  value = "${data.hybrid_placement.checkout_api.placement.provider} ${data.hybrid_placement.checkout_api.placement.region} ${data.hybrid_placement.checkout_api.placement.instance_type}"
}

output "fleet_monthly_cost" {
  value = data.hybrid_cost_report.fleet.total_monthly
}
