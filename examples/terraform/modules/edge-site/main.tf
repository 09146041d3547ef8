# An edge site as one unit: the cluster and its nodes from a map, with a share of every node
# kept back for the site's own services. Teams add a site by adding a module block.

resource "hybrid_edge_cluster" "this" {
  name                  = var.name
  geographic_region     = var.geographic_region
  distribution_strategy = var.distribution_strategy
  labels                = var.labels

  location {
    lat = var.location.lat
    lng = var.location.lng
  }
}

resource "hybrid_edge_node" "this" {
  for_each = var.nodes

  cluster_id   = hybrid_edge_cluster.this.id
  name         = each.key
  node_type    = each.value.node_type
  capabilities = each.value.capabilities
  hourly_cost  = each.value.hourly_cost
  labels       = merge({ site = var.name }, each.value.labels)

  hardware_specs {
    cpu_cores  = each.value.cpu_cores
    memory_gb  = each.value.memory_gb
    storage_gb = each.value.storage_gb
    gpu_count  = each.value.gpu_count
    gpu_model  = each.value.gpu_model
  }

  resource_limits {
    cpu       = each.value.cpu_cores * (1 - var.reserved_fraction)
    memory_gb = each.value.memory_gb * (1 - var.reserved_fraction)
  }

  location {
    lat = var.location.lat
    lng = var.location.lng
  }
}
