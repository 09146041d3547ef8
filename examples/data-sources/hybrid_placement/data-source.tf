# Ask the engine where a workload would go, without provisioning anything: the winner, the
# ranking with per-dimension scores, and why the rejected candidates were rejected.
data "hybrid_placement" "checkout_api" {
  cpu                    = 2
  memory_gb              = 8
  compliance             = ["gdpr"]
  data_residency_regions = ["EU"]
  cost_budget_hourly     = 0.50
  user_locations         = [{ lat = 52.52, lng = 13.40 }]
  top_k                  = 3
}

output "best_place" {
  value = "${data.hybrid_placement.checkout_api.placement.provider} ${data.hybrid_placement.checkout_api.placement.region} ${data.hybrid_placement.checkout_api.placement.instance_type}"
}

output "runner_up_reasons" {
  value = [for r in data.hybrid_placement.checkout_api.ranked : r.reason]
}
