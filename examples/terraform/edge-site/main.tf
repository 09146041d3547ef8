# An edge site: a factory with a gateway, two compute nodes and a GPU inference node, and the
# workloads that run there. The plan shows which node each replica lands on and why; capacity
# is booked in the shared ledger at apply, so another workspace cannot take it twice.

terraform {
  required_providers {
    hybrid = {
      source = "hybrid/hybrid"
    }
  }
}

provider "hybrid" {
  default_tags = { managed_by = "edge-site" }
}

locals {
  nodes = {
    gw-1 = {
      node_type    = "gateway"
      capabilities = ["data_caching"]
      cpu_cores    = 4
      memory_gb    = 8
      gpu_count    = 0
      hourly_cost  = 0.01
      lat          = 52.5205
      lng          = 13.4095
    }
    compute-1 = {
      node_type    = "compute"
      capabilities = ["real_time_processing", "analytics"]
      cpu_cores    = 16
      memory_gb    = 64
      gpu_count    = 0
      hourly_cost  = 0.03
      lat          = 52.5210
      lng          = 13.4100
    }
    compute-2 = {
      node_type    = "compute"
      capabilities = ["real_time_processing", "analytics"]
      cpu_cores    = 16
      memory_gb    = 64
      gpu_count    = 0
      hourly_cost  = 0.03
      lat          = 52.5190
      lng          = 13.4080
    }
    inference-1 = {
      node_type    = "inference"
      capabilities = ["ml_inference", "real_time_processing"]
      cpu_cores    = 8
      memory_gb    = 32
      gpu_count    = 1
      hourly_cost  = 0.12
      lat          = 52.5200
      lng          = 13.4050
    }
  }
}

resource "hybrid_edge_cluster" "factory" {
  name                  = "berlin-factory"
  geographic_region     = "eu-central"
  distribution_strategy = "least_loaded"

  location {
    lat = 52.52
    lng = 13.40
  }

  labels = { site = "factory" }
}

resource "hybrid_edge_node" "node" {
  for_each = local.nodes

  cluster_id   = hybrid_edge_cluster.factory.id
  name         = each.key
  node_type    = each.value.node_type
  capabilities = each.value.capabilities
  hourly_cost  = each.value.hourly_cost

  hardware_specs {
    cpu_cores  = each.value.cpu_cores
    memory_gb  = each.value.memory_gb
    storage_gb = 500
    gpu_count  = each.value.gpu_count
    gpu_model  = each.value.gpu_count > 0 ? "T4" : null
  }

  # Keep a quarter of every node for the site's own services.
  resource_limits {
    cpu       = each.value.cpu_cores * 0.75
    memory_gb = each.value.memory_gb * 0.75
  }

  connectivity {
    type           = "fiber"
    bandwidth_gbps = 10
  }

  location {
    lat = each.value.lat
    lng = each.value.lng
  }

  labels = { role = each.value.node_type }
}

# Sensor ingestion: six replicas spread over the nodes that do real-time processing, the least
# loaded first, never on the gateway.
resource "hybrid_workload" "sensor_ingest" {
  name             = "sensor-ingest"
  workload_type    = "streaming"
  cpu              = 2
  memory_gb        = 4
  replicas         = 6
  edge_cluster_ids = [hybrid_edge_cluster.factory.id]

  edge {
    distribution_strategy = "least_loaded"
    required_capabilities = ["real_time_processing"]
    anti_affinity_labels  = { role = "gateway" }

    scaling_policy {
      min_replicas  = 3
      max_replicas  = 9
      cpu_threshold = 0.7
    }
  }

  depends_on = [hybrid_edge_node.node]
}

# Visual inspection: one model server on the node with the GPU.
resource "hybrid_workload" "visual_inspection" {
  name             = "visual-inspection"
  workload_type    = "ml_inference"
  cpu              = 4
  memory_gb        = 16
  edge_cluster_ids = [hybrid_edge_cluster.factory.id]

  edge {
    distribution_strategy = "capability_based"
    required_capabilities = ["ml_inference"]
    node_types            = ["inference"]
  }

  depends_on = [hybrid_edge_node.node]
}

output "sensor_ingest_replicas" {
  description = "How many sensor-ingest replicas run on which node."
  value       = { for a in hybrid_workload.sensor_ingest.edge_assignments : a.node => a.replicas }
}

output "visual_inspection_node" {
  value = hybrid_workload.visual_inspection.placement.node
}

output "site_cost_hourly" {
  description = "Estimated USD per hour of both workloads at the site."
  value       = format("%.3f", hybrid_workload.sensor_ingest.placement.estimated_cost_hourly + hybrid_workload.visual_inspection.placement.estimated_cost_hourly)
}
