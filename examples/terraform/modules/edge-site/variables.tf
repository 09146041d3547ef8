variable "name" {
  description = "Name of the edge site (the hybrid_edge_cluster); node names are unique within it."
  type        = string
}

variable "geographic_region" {
  description = "The region the site serves, e.g. \"eu-central\"; workloads placed here report it as their region."
  type        = string
}

variable "location" {
  description = "Where the site is, in degrees."
  type = object({
    lat = number
    lng = number
  })
}

variable "distribution_strategy" {
  description = "Default strategy for spreading a workload's replicas over this site's nodes."
  type        = string
  default     = "least_loaded"
}

variable "reserved_fraction" {
  description = "Share of every node's CPU and memory kept for the site's own services (0 to 0.9)."
  type        = number
  default     = 0.25

  validation {
    condition     = var.reserved_fraction >= 0 && var.reserved_fraction <= 0.9
    error_message = "The reserved_fraction must be between 0 and 0.9."
  }
}

variable "nodes" {
  description = "The site's nodes by name. gpu_model may be null when gpu_count is 0."
  type = map(object({
    node_type    = string
    capabilities = list(string)
    cpu_cores    = number
    memory_gb    = number
    storage_gb   = number
    gpu_count    = number
    gpu_model    = string
    hourly_cost  = number
    labels       = map(string)
  }))

  validation {
    condition     = alltrue([for n in values(var.nodes) : contains(["gateway", "compute", "storage", "inference"], n.node_type)])
    error_message = "Every node_type must be gateway, compute, storage or inference."
  }
}

variable "labels" {
  description = "Labels of the site itself."
  type        = map(string)
  default     = {}
}
