#!/usr/bin/env bash
# Install what the ops machine needs for the lab and the tests, from Debian's packages, and register
# the arm64 emulator. Safe to re-run: it installs only what is missing and changes nothing else.
set -euo pipefail
PACKAGES=(
  podman runc netavark aardvark-dns          # the lab's containers (rootful)
  debootstrap qemu-user-static binfmt-support # base images, arm64 Pis under emulation
  mtools dosfstools e2fsprogs fdisk xz-utils  # SD-card images without mounting
  chromium                                    # the stats page's browser test
  openssh-client rsync git ca-certificates python3-venv
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || { echo "setup-host: need root to install: ${missing[*]}" >&2; exit 1; }
  echo "setup-host: installing ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# qemu-user-static registers its binfmt handlers through binfmt-support; in a container or a
# minimal VM binfmt_misc may not be mounted yet.
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  update-binfmts --enable qemu-aarch64 || update-binfmts --import qemu-aarch64
fi
grep -q '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64 \
  || { echo "setup-host: qemu-aarch64 binfmt handler is not enabled" >&2; exit 1; }

# Go >= 1.21 can fetch the Go 1.22 toolchain geth needs through the module proxy.
if ! command -v go >/dev/null; then
  echo "setup-host: Go is not installed; install Go >= 1.21 (Debian: golang-go from a recent release)" >&2
  exit 1
fi
# Node.js runs the npm `solc` compiler; OpenZeppelin comes from npm.
command -v node >/dev/null && command -v npm >/dev/null \
  || { echo "setup-host: Node.js and npm are needed for the Solidity compiler (apt-get install nodejs npm)" >&2; exit 1; }
echo "setup-host: ok ($(podman --version), $(go version | cut -d' ' -f3), node $(node --version))"
