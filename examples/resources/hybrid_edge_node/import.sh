# An edge node is imported by its id: "en-" followed by 16 hex digits derived from its cluster's
# id and its name.
terraform import hybrid_edge_node.inference_1 en-69fee1483f666bde
