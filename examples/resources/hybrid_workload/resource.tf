# An API for European users: GDPR, data kept in the EU, under $0.50 an hour. The plan shows
# the provider, region and instance type the engine chose, the hourly cost, the latency to the
# users and the reason, before anything is created.
resource "hybrid_workload" "checkout_api" {
  name          = "checkout-api"
  workload_type = "api"
  cpu           = 2
  memory_gb     = 8

  compliance             = ["gdpr"]
  data_residency_regions = ["EU"]
  cost_budget_hourly     = 0.50
  max_latency_ms         = 60

  user_locations = [
    { lat = 52.52, lng = 13.40, weight = 0.6 }, # Berlin
    { lat = 48.86, lng = 2.35, weight = 0.4 },  # Paris
  ]

  tags = { team = "payments" }
}

# A batch job that cares mostly about price: custom weights instead of a named strategy, and
# only AWS or GCP.
resource "hybrid_workload" "nightly_report" {
  name                = "nightly-report"
  workload_type       = "batch"
  cpu                 = 4
  memory_gb           = 16
  replicas            = 2
  preferred_providers = ["aws", "gcp"]

  strategy = "custom"
  weights = {
    cost        = 0.7
    performance = 0.2
    latency     = 0
    resilience  = 0.1
  }
}

output "checkout_api_placement" {
  value = "${hybrid_workload.checkout_api.placement.provider}/${hybrid_workload.checkout_api.placement.region}: ${hybrid_workload.checkout_api.placement.reason}"
}
