# Three services of one product with different legal constraints, placed by the same engine on
# three clouds: EU customer data under GDPR kept in the EU, US health records under HIPAA kept
# in the US, and a public catalogue that only needs to be close to its users and cheap. The plan
# shows for each where it goes and why; a change that would move data out of its jurisdiction is
# impossible, not just reviewed.

terraform {
  required_providers {
    hybrid = {
      source = "hybrid/hybrid"
    }
  }
}

provider "hybrid" {
  default_tags = { managed_by = "multi-cloud-compliance", product = "clinic" }
}

# Which regions may hold EU personal data at all (for the reviewer; the workload enforces it).
data "hybrid_regions" "gdpr_eu" {
  compliance             = ["gdpr"]
  data_residency_regions = ["EU"]
}

# EU patients' accounts: GDPR, data in the EU, on Azure.
resource "hybrid_workload" "eu_accounts" {
  name                   = "clinic-eu-accounts"
  workload_type          = "database"
  cpu                    = 4
  memory_gb              = 16
  compliance             = ["gdpr"]
  data_residency_regions = ["EU"]
  preferred_providers    = ["azure"]
  cost_budget_hourly     = 1.00
  user_locations = [
    { lat = 52.52, lng = 13.40, weight = 2 }, # Berlin
    { lat = 48.86, lng = 2.35, weight = 1 },  # Paris
  ]
  tags = { data_class = "personal" }
}

# US health records: HIPAA, data in the US, on AWS.
resource "hybrid_workload" "us_records" {
  name                   = "clinic-us-records"
  workload_type          = "database"
  cpu                    = 4
  memory_gb              = 16
  storage_gb             = 500
  compliance             = ["hipaa"]
  data_residency_regions = ["US"]
  preferred_providers    = ["aws"]
  user_locations = [
    { lat = 40.71, lng = -74.01 }, # New York
    { lat = 41.88, lng = -87.63 }, # Chicago
  ]
  tags = { data_class = "phi" }
}

# The public catalogue: no personal data, so any compliant-enough cloud; cheapest near users.
resource "hybrid_workload" "catalogue" {
  name                = "clinic-catalogue"
  workload_type       = "web"
  cpu                 = 2
  memory_gb           = 4
  replicas            = 2
  compliance          = ["iso27001"]
  preferred_providers = ["gcp"]
  strategy            = "cost_optimized"
  user_locations = [
    { lat = 52.52, lng = 13.40 },
    { lat = 40.71, lng = -74.01 },
  ]
}

output "placements" {
  description = "Where each service runs: provider/region/instance type and the engine's reason."
  value = {
    for w in [hybrid_workload.eu_accounts, hybrid_workload.us_records, hybrid_workload.catalogue] :
    w.name => "${w.placement.provider}/${w.placement.region}/${w.placement.instance_type}: ${w.placement.reason}"
  }
}

output "gdpr_region_count" {
  value = length(data.hybrid_regions.gdpr_eu.codes)
}

output "monthly_cost" {
  description = "Estimated USD per month for the three services (730 hours)."
  value       = format("%.2f", 730 * (hybrid_workload.eu_accounts.placement.estimated_cost_hourly + hybrid_workload.us_records.placement.estimated_cost_hourly + hybrid_workload.catalogue.placement.estimated_cost_hourly))
}
