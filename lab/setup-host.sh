#!/usr/bin/env bash
# Install what the ops machine needs for the lab and the tests, from Debian's packages, and register
# the arm64 emulator. Safe to re-run: it installs only what is missing and changes nothing else.
set -euo pipefail
PACKAGES=(
  podman runc netavark aardvark-dns iptables # the lab's containers (rootful; netavark drives iptables)
  debootstrap                                 # base images
  mtools dosfstools e2fsprogs fdisk xz-utils  # SD-card images without mounting
  util-linux                                  # losetup, lsblk, partx for the flashing tests
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

# arm64 Pis run under qemu-user emulation. Bookworm's qemu 7.2 cannot run trixie's systemd (services
# fail with "Result: resources"), so the emulator is the static qemu-aarch64 of Debian trixie's
# qemu-user package, fetched with a private apt configuration (the machine's apt sources are not
# touched) and cached. It is registered with binfmt_misc flags POCF: F loads it once so containers use
# it, and O/C run setuid programs (sudo) with their own credentials as on a real Pi.
QEMU_VERSION=${QEMU_VERSION:-1:10.0.13+ds-0+deb13u1}
CACHE=${HELIOGRID_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/heliogrid}
qemu_dir="$CACHE/qemu/${QEMU_VERSION#*:}"
qemu="$qemu_dir/qemu-aarch64"
if [ ! -x "$qemu" ]; then
  apt_dir=$(mktemp -d)
  trap 'rm -rf "$apt_dir"' EXIT
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
  echo "deb http://deb.debian.org/debian trixie main" > "$apt_dir/sources.list"
  apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
            -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o Debug::NoLocking=1
            -o APT::Sandbox::User=root)
  echo "setup-host: fetching qemu-user $QEMU_VERSION (Debian trixie) for arm64 emulation"
  apt-get "${apt_opts[@]}" -q update >/dev/null
  (cd "$apt_dir" && apt-get "${apt_opts[@]}" -q download "qemu-user=$QEMU_VERSION" >/dev/null)
  dpkg-deb -x "$apt_dir"/qemu-user_*.deb "$apt_dir/x"
  mkdir -p "$qemu_dir"
  install -m 0755 "$apt_dir/x/usr/bin/qemu-aarch64" "$qemu.tmp" && mv "$qemu.tmp" "$qemu"
  rm -rf "$apt_dir"; trap - EXIT
fi
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
handler=/proc/sys/fs/binfmt_misc/qemu-aarch64
if ! grep -qx "interpreter $qemu" "$handler" 2>/dev/null || ! grep -qx "flags: POCF" "$handler"; then
  [ -e "$handler" ] && echo -1 > "$handler"
  printf '%s' ":qemu-aarch64:M::\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xb7\\x00:\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff:$qemu:POCF" \
    > /proc/sys/fs/binfmt_misc/register
  echo "setup-host: registered $qemu for arm64 binaries"
fi
grep -q '^enabled' "$handler" || { echo "setup-host: the qemu-aarch64 binfmt handler is not enabled" >&2; exit 1; }

# Go >= 1.21 can fetch the Go 1.22 toolchain geth needs through the module proxy.
if ! command -v go >/dev/null; then
  echo "setup-host: Go is not installed; install Go >= 1.21 (Debian: golang-go from a recent release)" >&2
  exit 1
fi
# Node.js runs the npm `solc` compiler; OpenZeppelin comes from npm.
command -v node >/dev/null && command -v npm >/dev/null \
  || { echo "setup-host: Node.js and npm are needed for the Solidity compiler (apt-get install nodejs npm)" >&2; exit 1; }
echo "setup-host: ok ($(podman --version), $(go version | cut -d' ' -f3), node $(node --version))"
