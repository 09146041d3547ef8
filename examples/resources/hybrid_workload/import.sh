# A workload is imported by its id: "wl-" followed by 16 hex digits derived from its name (the
# `id` attribute shows it; it is the same in every workspace). The instance id in the target
# cloud is accepted as well (for azure: the VM's ARM resource id,
# /subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.Compute/virtualMachines/<name>).
terraform import hybrid_workload.checkout_api wl-ed1a6bba45647f0d
