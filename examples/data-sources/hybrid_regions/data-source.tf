# Regions of any cloud where GDPR data may live and an A100 GPU can be rented.
data "hybrid_regions" "gdpr_gpu" {
  compliance             = ["gdpr"]
  data_residency_regions = ["EU"]
  gpu_model              = "a100"
}

output "gdpr_gpu_regions" {
  value = data.hybrid_regions.gdpr_gpu.codes
}
