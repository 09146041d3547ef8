terraform {
  required_providers {
    hybrid = {
      source  = "hybrid/hybrid"
      version = "~> 0.1"
    }
  }
}

# Every setting is optional. With none, the provider places workloads over its embedded catalog
# and provisions them on the local sim cloud, keeping its state in the user's data directory.
provider "hybrid" {
  # Added to the tags of everything this provider creates; a resource's own tags win.
  default_tags = {
    managed_by  = "terraform"
    cost_center = "platform"
  }
}
