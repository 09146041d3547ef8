# Two factory sites described once each, with the reusable modules/edge-site module, the way an
# infrastructure repository would: a site is a map entry, a node profile is a local, and the
# same point-of-sale service runs at every site, placed on that site's nodes.

terraform {
  required_providers {
    hybrid = {
      source = "hybrid/hybrid"
    }
  }
}

provider "hybrid" {
  default_tags = { managed_by = "edge-fleet" }
}

locals {
  compute = {
    node_type    = "compute"
    capabilities = ["real_time_processing", "data_caching"]
    cpu_cores    = 8
    memory_gb    = 32
    storage_gb   = 500
    gpu_count    = 0
    gpu_model    = null
    hourly_cost  = 0.02
    labels       = { tier = "standard" }
  }
  inference = {
    node_type    = "inference"
    capabilities = ["ml_inference"]
    cpu_cores    = 8
    memory_gb    = 32
    storage_gb   = 1000
    gpu_count    = 1
    gpu_model    = "T4"
    hourly_cost  = 0.10
    labels       = { tier = "gpu" }
  }

  sites = {
    berlin = {
      region   = "eu-central"
      location = { lat = 52.52, lng = 13.40 }
      nodes    = { compute-1 = local.compute, compute-2 = local.compute, gpu-1 = local.inference }
    }
    munich = {
      region   = "eu-south-germany"
      location = { lat = 48.14, lng = 11.58 }
      nodes    = { compute-1 = local.compute }
    }
  }
}

module "site" {
  source   = "../modules/edge-site"
  for_each = local.sites

  name              = "${each.key}-factory"
  geographic_region = each.value.region
  location          = each.value.location
  nodes             = each.value.nodes
  labels            = { fleet = "factories" }
}

# The store's point-of-sale backend at every site: two replicas on standard nodes.
resource "hybrid_workload" "pos_backend" {
  for_each = local.sites

  name             = "pos-backend-${each.key}"
  workload_type    = "api"
  cpu              = 2
  memory_gb        = 4
  replicas         = 2
  edge_cluster_ids = [module.site[each.key].cluster_id]

  edge {
    distribution_strategy = "least_loaded"
    affinity_labels       = { tier = "standard" }
  }

  depends_on = [module.site]
}

output "sites" {
  description = "Per site: the cluster id, its nodes and the capacity left for workloads."
  value = {
    for name, site in module.site : name => {
      cluster_id = site.cluster_id
      nodes      = site.node_ids
      capacity   = site.capacity
    }
  }
}

output "pos_backend_nodes" {
  description = "Which nodes run the point-of-sale replicas at each site."
  value = {
    for site, w in hybrid_workload.pos_backend : site => [for a in w.edge_assignments : "${a.node} x${a.replicas}"]
  }
}
