#!/usr/bin/env bash
# Packages a built provider binary the way the Terraform registry and `terraform init` expect.
#
#   scripts/release.sh BINARY VERSION OUT_DIR
#
# writes, for the machine's platform (linux_amd64 on the CI machines):
#
#   OUT_DIR/terraform-provider-hybrid_VERSION_OS_ARCH.zip     the binary, named
#                                                              terraform-provider-hybrid_vVERSION
#   OUT_DIR/terraform-provider-hybrid_VERSION_manifest.json   terraform-registry-manifest.json
#                                                              (plugin protocol 6.0)
#   OUT_DIR/terraform-provider-hybrid_VERSION_SHA256SUMS      sha256 of the zip and the manifest
#   OUT_DIR/mirror/registry.terraform.io/hybrid/hybrid/terraform-provider-hybrid_VERSION_OS_ARCH.zip
#                                                              a filesystem mirror (packed layout)
#                                                              that `terraform init` reads offline
#
# The registry also wants SHA256SUMS signed with the publisher's GPG key
# (terraform-provider-hybrid_VERSION_SHA256SUMS.sig); set RELEASE_GPG_KEY to a key id to sign.
# Zips are byte-for-byte reproducible: fixed timestamp and permissions, no extra fields.
set -euo pipefail

if [ "$#" -ne 3 ]; then
  echo "usage: $0 BINARY VERSION OUT_DIR" >&2
  exit 2
fi
BINARY="$1"; VERSION="$2"; OUT="$3"
NAME="terraform-provider-hybrid"
SOURCE="registry.terraform.io/hybrid/hybrid"

if [ ! -x "$BINARY" ]; then
  echo "release: no executable at $BINARY (build it first: make release)" >&2
  exit 2
fi
if ! [[ "$VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]]; then
  echo "release: VERSION must be semantic (1.2.3 or 1.2.3-rc.1), got '$VERSION'" >&2
  exit 2
fi

if ! [[ "${RELEASE_ZIP_LEVEL:-9}" =~ ^[0-9]$ ]]; then
  echo "release: RELEASE_ZIP_LEVEL must be 0-9, got '${RELEASE_ZIP_LEVEL}'" >&2
  exit 2
fi

case "$(uname -s)" in
  Linux) OS=linux ;;
  Darwin) OS=darwin ;;
  *) echo "release: unsupported OS $(uname -s)" >&2; exit 2 ;;
esac
case "$(uname -m)" in
  x86_64 | amd64) ARCH=amd64 ;;
  aarch64 | arm64) ARCH=arm64 ;;
  *) echo "release: unsupported architecture $(uname -m)" >&2; exit 2 ;;
esac

ZIP="${NAME}_${VERSION}_${OS}_${ARCH}.zip"
MANIFEST="${NAME}_${VERSION}_manifest.json"
SUMS="${NAME}_${VERSION}_SHA256SUMS"

rm -rf "$OUT"
mkdir -p "$OUT/mirror/$SOURCE"

# Python's zipfile is used so that no zip tool is needed and the archive is reproducible.
# RELEASE_ZIP_LEVEL (0-9, default 9) trades size for time; the tests use 1.
python3 - "$BINARY" "${NAME}_v${VERSION}" "$OUT/$ZIP" "${RELEASE_ZIP_LEVEL:-9}" <<'PY'
import sys, zipfile
binary, member, out, level = sys.argv[1:5]
info = zipfile.ZipInfo(member, date_time=(1980, 1, 1, 0, 0, 0))
info.create_system = 3  # unix, so the mode below is honoured when unpacking
info.external_attr = (0o100755 << 16)
info.compress_type = zipfile.ZIP_DEFLATED
with open(binary, "rb") as f, zipfile.ZipFile(out, "w") as z:
    z.writestr(info, f.read(), compresslevel=int(level))
PY

printf '{\n  "version": 1,\n  "metadata": {\n    "protocol_versions": ["6.0"]\n  }\n}\n' >"$OUT/$MANIFEST"

(cd "$OUT" && sha256sum "$ZIP" "$MANIFEST" >"$SUMS")

if [ -n "${RELEASE_GPG_KEY:-}" ]; then
  gpg --batch --yes --local-user "$RELEASE_GPG_KEY" --detach-sign --output "$OUT/$SUMS.sig" "$OUT/$SUMS"
fi

cp "$OUT/$ZIP" "$OUT/mirror/$SOURCE/$ZIP"

echo "release: $OUT/$ZIP"
echo "release: $OUT/$MANIFEST"
echo "release: $OUT/$SUMS"
echo "release: filesystem mirror at $OUT/mirror (terraform init reads it offline)"
