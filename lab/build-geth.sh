#!/usr/bin/env bash
# Build geth from its Go module and package it exactly like an official release archive
# (geth-linux-<arch>-<version>-<commit8>.tar.gz holding geth-linux-<arch>-<version>-<commit8>/geth),
# with a .sha256 beside it. Results are cached per version and architecture; a cached archive
# whose checksum no longer matches is rebuilt.
#
# The release (version, commit) is the geth role's default (roles/geth/defaults/main.yml, read by
# lab/geth_defaults.py); its date is the Go module's. GETH_VERSION and GETH_COMMIT (8 characters) override them.
# The binary is stamped with those 8 characters (`geth version` prints them; an official build prints all 40).
# Why Go 1.22: geth 1.13 depends on github.com/fjl/memsize, which does not link with Go >= 1.23.
# The toolchain is fetched through the Go module proxy (GOTOOLCHAIN), so no download host is needed.
set -euo pipefail

read -r release_version release_commit < <(python3 "$(dirname "$0")/geth_defaults.py")
GETH_VERSION=${GETH_VERSION:-$release_version}
GETH_COMMIT=${GETH_COMMIT:-$release_commit}
GO_TOOLCHAIN=${GO_TOOLCHAIN:-go1.22.12}
CACHE=${HELIOGRID_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/heliogrid}
ARCHES=${*:-amd64 arm64}

out="$CACHE/geth/$GETH_VERSION"
mkdir -p "$out"
command -v go >/dev/null || { echo "build-geth: the Go toolchain (go) is not installed" >&2; exit 1; }
export GOTOOLCHAIN="$GO_TOOLCHAIN" GOFLAGS=-mod=readonly

src=""
for arch in $ARCHES; do
  name="geth-linux-$arch-$GETH_VERSION-$GETH_COMMIT"
  if [ -f "$out/$name.tar.gz.sha256" ] && (cd "$out" && sha256sum --status -c "$name.tar.gz.sha256"); then
    echo "build-geth: $name cached ($(cut -c1-16 "$out/$name.tar.gz.sha256")...)"
    continue
  fi
  if [ -z "$src" ]; then
    # Build inside the module's own directory so its go.mod/go.sum pin every dependency exactly.
    # The module's time is the release commit's (2024-04-17T05:22:00Z): geth's gitDate, as YYYYMMDD.
    read -r src GETH_DATE < <(go mod download -json "github.com/ethereum/go-ethereum@v$GETH_VERSION" \
          | python3 -c 'import json,sys; m = json.load(sys.stdin); t = json.load(open(m["Info"]))["Time"]
print(m["Dir"], t[:10].replace("-", ""))')
  fi
  case "$arch" in
    amd64) cgo=1 ;;   # like the official amd64 build: cgo secp256k1
    *) cgo=0 ;;       # cross builds without a C cross compiler
  esac
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/$name"
  echo "build-geth: building $name with $GO_TOOLCHAIN (CGO_ENABLED=$cgo)"
  start=$(date +%s)
  (cd "$src" && GOOS=linux GOARCH="$arch" CGO_ENABLED=$cgo go build -trimpath \
      -ldflags "-X github.com/ethereum/go-ethereum/internal/version.gitCommit=$GETH_COMMIT -X github.com/ethereum/go-ethereum/internal/version.gitDate=$GETH_DATE" \
      -o "$work/$name/geth" ./cmd/geth)
  install -m 0644 "$src/COPYING" "$work/$name/COPYING"
  # Reproducible archive: fixed owner, order and mtime.
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@0" -C "$work" -cf - "$name" \
    | gzip -n > "$out/$name.tar.gz.tmp"
  mv "$out/$name.tar.gz.tmp" "$out/$name.tar.gz"
  (cd "$out" && sha256sum "$name.tar.gz" > "$name.tar.gz.sha256")
  rm -rf "$work"; trap - EXIT
  echo "build-geth: $name built in $(( $(date +%s) - start ))s: $(cut -c1-64 "$out/$name.tar.gz.sha256")"
done
