# The regions that serve these users best, with the price of a 2 vCPU / 8 GB type in each.
data "hybrid_region_recommendation" "eu_users" {
  user_locations = [
    { lat = 52.52, lng = 13.40, weight = 3, name = "berlin" },
    { lat = 48.86, lng = 2.35, weight = 2, name = "paris" },
    { lat = 40.42, lng = -3.70, weight = 1, name = "madrid" },
  ]
  compliance = ["gdpr"]
  cpu        = 2
  memory_gb  = 8
  top_k      = 3
}

output "recommended_regions" {
  value = [for r in data.hybrid_region_recommendation.eu_users.recommendations : "${r.provider}/${r.region}"]
}
