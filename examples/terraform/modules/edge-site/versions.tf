terraform {
  required_version = ">= 1.0"
  required_providers {
    hybrid = {
      source  = "hybrid/hybrid"
      version = ">= 0.1.0"
    }
  }
}
