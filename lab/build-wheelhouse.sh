#!/usr/bin/env bash
# Build the wheelhouse the Python services are installed from (the Pi agent, the stats app): each project's own
# wheel, and the binary wheels its lock files (files/*/requirements*.lock, lab/compile-locks.sh) name, for every
# platform the roles serve (amd64 and arm64; Debian bookworm's Python 3.11 and trixie's 3.13). pip fetches them with
# --require-hashes, so a file that differs from its lock is refused here already, as the roles refuse it on the hosts.
# Next to each project wheel goes <wheel>.sha256: the digest its role pins (pi_agent_package_sha256,
# stats_app_package_sha256), since a locally built wheel has no hash in any lock. The lab mirror serves the result,
# so lab hosts install with `pip --no-index --find-links` and need no route to PyPI; a production inventory names a
# copy of it (inventories/example/group_vars/all/wheelhouse.yml).
# The result is cached in $HELIOGRID_CACHE/wheelhouse/<key>, keyed by the locks, the projects' pyproject.toml and
# sources and this script; wheelhouse/current points at the last one built.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${HELIOGRID_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/heliogrid}
PY=${PY:-.venv/bin/python}
projects=(files/pi_agent files/stats_app)
present=()
for p in "${projects[@]}"; do [ -f "$p/pyproject.toml" ] && present+=("$p"); done
key=$( (cat "$0" lab/lock_for_target.py
        for p in "${present[@]}"; do
          cat "$p/pyproject.toml" "$p"/requirements*.lock
          find "$p/src" -type f \( -name '*.py' -o -name '*.json' -o -name '*.html' -o -path '*/static/*' \) -print0 | sort -z | xargs -0 cat
        done) | sha256sum | cut -c1-12)
out="$CACHE/wheelhouse/$key"
if [ -f "$out/.complete" ]; then echo "build-wheelhouse: $out is current"; ln -sfn "$key" "$CACHE/wheelhouse/current"; exit 0; fi
rm -rf "$out.tmp"; mkdir -p "$out.tmp"
for p in "${present[@]}"; do
  "$PY" -m pip wheel -q --no-deps -w "$out.tmp" "$p"
done
for wheel in "$out.tmp"/*.whl; do
  (cd "$out.tmp" && sha256sum "$(basename "$wheel")" > "$(basename "$wheel").sha256")
done
# Every lock for every target (machine:python), except the [pi] extra: lgpio has wheels for aarch64 up to Python 3.12
# only, and trixie's Pis use Debian's python3-lgpio instead (roles/pi_agent/README.md).
targets="x86_64:3.11 x86_64:3.13 aarch64:3.11 aarch64:3.13"
declare -A lock_targets=([files/pi_agent/requirements-pi.lock]="aarch64:3.11")
target=$(mktemp); trap 'rm -f "$target"' EXIT
for p in "${present[@]}"; do
  for lock in "$p"/requirements*.lock; do
    for t in ${lock_targets[$lock]:-$targets}; do
      arch=${t%:*} pyver=${t#*:}
      "$PY" lab/lock_for_target.py "$lock" --machine "$arch" --python "$pyver" > "$target"
      "$PY" -m pip download -q --disable-pip-version-check --require-hashes --only-binary=:all: -d "$out.tmp" \
        --implementation cp --python-version "$pyver" --platform "manylinux_2_34_$arch" \
        --platform "manylinux_2_28_$arch" --platform "manylinux_2_17_$arch" --platform "manylinux2014_$arch" \
        --platform "linux_$arch" --platform any -r "$target"
    done
  done
done
mv "$out.tmp" "$out"; touch "$out/.complete"
ln -sfn "$key" "$CACHE/wheelhouse/current"
echo "build-wheelhouse: $(ls "$out"/*.whl | wc -l) wheels in $out"
(cd "$out" && cat ./*.sha256)
