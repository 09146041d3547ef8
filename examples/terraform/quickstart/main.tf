# Quickstart: one workload placed by the engine and provisioned on the embedded sim cloud.
# `terraform plan` shows where it goes, what it costs per hour and why; no cloud account needed.

terraform {
  required_providers {
    hybrid = {
      source = "hybrid/hybrid"
    }
  }
}

provider "hybrid" {
  default_tags = { managed_by = "quickstart" }
}

resource "hybrid_workload" "checkout_api" {
  name          = "checkout-api"
  workload_type = "api"
  cpu           = 2
  memory_gb     = 8
  storage_gb    = 50

  compliance             = ["gdpr"]
  data_residency_regions = ["EU"]
  cost_budget_hourly     = 0.50
  max_latency_ms         = 60
  strategy               = "hybrid"

  user_locations = [
    { lat = 52.52, lng = 13.40, weight = 0.6 }, # Berlin
    { lat = 48.86, lng = 2.35, weight = 0.4 },  # Paris
  ]

  tags = { team = "payments" }
}

output "placement" {
  description = "Where the engine put the workload, its hourly cost, latency and the reason."
  value = {
    where    = "${hybrid_workload.checkout_api.placement.provider}/${hybrid_workload.checkout_api.placement.region}/${hybrid_workload.checkout_api.placement.instance_type}"
    cost     = hybrid_workload.checkout_api.placement.estimated_cost_hourly
    latency  = hybrid_workload.checkout_api.placement.estimated_latency_ms
    reason   = hybrid_workload.checkout_api.placement.reason
    instance = hybrid_workload.checkout_api.instance_id
  }
}
