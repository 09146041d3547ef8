output "cluster_id" {
  description = "The hybrid_edge_cluster id, for a workload's edge_cluster_ids."
  value       = hybrid_edge_cluster.this.id
}

output "node_ids" {
  description = "Node ids by node name."
  value       = { for name, node in hybrid_edge_node.this : name => node.id }
}

output "capacity" {
  description = "CPU cores and memory (GB) that workloads may use across the site."
  value = {
    cpu       = sum([for n in values(var.nodes) : n.cpu_cores * (1 - var.reserved_fraction)])
    memory_gb = sum([for n in values(var.nodes) : n.memory_gb * (1 - var.reserved_fraction)])
  }
}
