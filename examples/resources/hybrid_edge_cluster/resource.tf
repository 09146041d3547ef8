# An edge site. Its nodes (hybrid_edge_node) host workloads that allow the "edge" provider;
# those placements report geographic_region as their region.
resource "hybrid_edge_cluster" "berlin_factory" {
  name                  = "berlin-factory"
  geographic_region     = "eu-central"
  distribution_strategy = "latency_aware"

  location {
    lat = 52.52
    lng = 13.40
  }

  labels = {
    site = "factory"
    tier = "production"
  }
}
