resource "hybrid_edge_cluster" "berlin_factory" {
  name              = "berlin-factory"
  geographic_region = "eu-central"

  location {
    lat = 52.52
    lng = 13.40
  }
}

# An inference node with a GPU. Workloads may use what resource_limits allows (here half of
# the CPU and memory; the rest is kept for the node's own services).
resource "hybrid_edge_node" "inference_1" {
  cluster_id   = hybrid_edge_cluster.berlin_factory.id
  name         = "inference-1"
  node_type    = "inference"
  capabilities = ["ml_inference", "real_time_processing"]
  hourly_cost  = 0.12

  hardware_specs {
    cpu_cores  = 16
    memory_gb  = 64
    storage_gb = 1000
    gpu_count  = 1
    gpu_model  = "T4"
  }

  resource_limits {
    cpu       = 8
    memory_gb = 32
  }

  connectivity {
    type           = "fiber"
    bandwidth_gbps = 10
  }

  location {
    lat = 52.51
    lng = 13.39
  }

  labels = { zone = "line-3" }
}
