# Moves a running workload to its cheapest feasible placement by canary steps: 5% of traffic
# for 5 minutes, then 25% and 50% for 10 minutes each, then all of it, each step watched by an
# HTTP health check; the old side is removed 30 s after the new one carries all traffic.
# `terraform plan` shows the steps, downtime, data to move, egress cost and the hourly cost
# delta; a failed check rolls back by itself.
#
# hybrid_migration_plan is not importable: its configuration is not stored in the cloud. Write
# the same configuration instead; apply finds the journal of a migration already under way.

provider "hybrid" {}

resource "hybrid_workload" "checkout_api" {
  name       = "checkout-api"
  cpu        = 2
  memory_gb  = 4
  storage_gb = 20
  strategy   = "performance_optimized"
  # Hand placement changes to migration plans: the workload keeps wherever it runs unless the
  # place stops meeting its requirements.
  replace_threshold_percent = 1000
}

resource "hybrid_migration_plan" "to_cheapest" {
  workload_id     = hybrid_workload.checkout_api.id
  target_strategy = "cost_optimized"
  strategy        = "canary"

  canary {
    steps = [
      { traffic_percentage = 5, duration_minutes = 5 },
      { traffic_percentage = 25, duration_minutes = 10 },
      { traffic_percentage = 50, duration_minutes = 10 },
      { traffic_percentage = 100, duration_minutes = 0 },
    ]
    failure_threshold        = 3
    check_interval_seconds   = 30
    scale_down_delay_seconds = 30
  }

  health_check {
    type               = "http"
    path               = "/healthz"
    port               = 8080
    interval_seconds   = 10
    failure_threshold  = 3
    recovery_threshold = 2
  }
}

output "migration" {
  value = {
    from        = hybrid_migration_plan.to_cheapest.source_placement.region
    to          = hybrid_migration_plan.to_cheapest.target_placement.region
    downtime_s  = hybrid_migration_plan.to_cheapest.estimated_downtime_seconds
    data_gb     = hybrid_migration_plan.to_cheapest.data_transfer_gb
    egress_usd  = hybrid_migration_plan.to_cheapest.estimated_egress_cost
    delta_usd_h = hybrid_migration_plan.to_cheapest.cost_hourly_delta
    status      = hybrid_migration_plan.to_cheapest.status
  }
}
