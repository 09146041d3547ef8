resource "hybrid_workload" "reporting_db" {
  name          = "reporting-db"
  workload_type = "database"
  cpu           = 8
  memory_gb     = 32
  storage_gb    = 200
}

# What the workloads this provider manages cost per hour and per month, by provider and region,
# and ways to pay less: cheaper regions or types, spot pricing, right-sizing from observed
# utilisation. depends_on makes Terraform read the report after the workload exists.
data "hybrid_cost_report" "fleet" {
  spot_allowed = true

  utilization = [
    # From your monitoring: a database idling at 12% CPU gets a smaller type suggested.
    { workload_id = hybrid_workload.reporting_db.id, cpu_utilization = 0.12, memory_utilization = 0.30 },
  ]

  depends_on = [hybrid_workload.reporting_db]
}

output "monthly_cost" {
  value = data.hybrid_cost_report.fleet.total_monthly
}

output "savings" {
  value = [for r in data.hybrid_cost_report.fleet.recommendations : "${r.kind}: ${r.description}"]
}
