# Sourced by scripts that run Terraform against a filesystem mirror (demo.sh, pgo-train.sh):
# `mirror_env WORK MIRROR` writes WORK/terraformrc, a CLI configuration that installs
# hybrid/hybrid from MIRROR only, and points Terraform at it with HOME=WORK/home, so nothing on
# the machine (~/.terraformrc, TF_CLI_CONFIG_FILE, a plugin cache, TF_LOG) is used.
mirror_env() {
  local work="$1" mirror="$2"
  mkdir -p "$work/home"
  cat > "$work/terraformrc" <<HCL
provider_installation {
  filesystem_mirror {
    path    = "$mirror"
    include = ["registry.terraform.io/hybrid/hybrid"]
  }
  direct {
    exclude = ["registry.terraform.io/hybrid/hybrid"]
  }
}
HCL
  export TF_CLI_CONFIG_FILE="$work/terraformrc"
  export HOME="$work/home"
  export TF_IN_AUTOMATION=1
  unset TF_LOG TF_PLUGIN_CACHE_DIR
}
