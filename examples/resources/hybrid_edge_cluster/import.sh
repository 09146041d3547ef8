# An edge cluster is imported by its id: "ec-" followed by 16 hex digits derived from its name.
terraform import hybrid_edge_cluster.berlin_factory ec-5ff173051152af61
