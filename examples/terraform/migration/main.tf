# A reviewed migration: a running API moves to a cheaper placement by blue-green, with a health
# gate before the switch. Apply once to run the workload where it is placed today, then apply
# with `-var migrate=true`: the plan shows the target, the steps, the downtime (0), the data to
# move, the egress cost and the hourly saving before anything moves. A failed check sends the
# traffic back and removes the new side by itself.

terraform {
  required_providers {
    hybrid = {
      source = "hybrid/hybrid"
    }
  }
}

provider "hybrid" {}

variable "migrate" {
  description = "Set to true to plan and run the migration."
  type        = bool
  default     = false
}

resource "hybrid_workload" "orders_api" {
  name       = "orders-api"
  cpu        = 4
  memory_gb  = 16
  storage_gb = 50
  strategy   = "performance_optimized"
  # Placement changes are left to migration plans: the workload stays where it runs while that
  # place meets its requirements.
  replace_threshold_percent = 1000
}

resource "hybrid_migration_plan" "to_cheaper" {
  count           = var.migrate ? 1 : 0
  workload_id     = hybrid_workload.orders_api.id
  target_strategy = "cost_optimized"
  strategy        = "blue_green"

  blue_green {
    auto_promote             = true
    promote_after_seconds    = 60
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
  value = var.migrate ? {
    from        = hybrid_migration_plan.to_cheaper[0].source_placement.region
    to          = hybrid_migration_plan.to_cheaper[0].target_placement.region
    downtime_s  = hybrid_migration_plan.to_cheaper[0].estimated_downtime_seconds
    delta_usd_h = hybrid_migration_plan.to_cheaper[0].cost_hourly_delta
    status      = hybrid_migration_plan.to_cheaper[0].status
  } : null
}
