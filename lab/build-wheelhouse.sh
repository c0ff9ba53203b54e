#!/usr/bin/env bash
# Build a wheelhouse for the Python services installed on lab hosts (the Pi agent, the stats app):
# each project's own wheel plus binary wheels of all its dependencies for every lab platform
# (amd64/arm64, Debian bookworm's Python 3.11 and trixie's 3.13). The lab mirror serves it, so lab
# hosts install with `pip --no-index --find-links` and need no route to PyPI; real hosts use PyPI.
# The result is cached, keyed by the projects' pyproject.toml files and this script.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${HELIOGRID_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/heliogrid}
PY=${PY:-.venv/bin/python}
projects=(files/pi_agent files/stats_app)
present=()
for p in "${projects[@]}"; do [ -f "$p/pyproject.toml" ] && present+=("$p"); done
key=$( (cat "$0"; for p in "${present[@]}"; do cat "$p/pyproject.toml"; find "$p/src" -type f -name '*.py' -print0 | sort -z | xargs -0 cat; done) | sha256sum | cut -c1-12)
out="$CACHE/wheels/$key"
if [ -f "$out/.complete" ]; then echo "build-wheelhouse: $out is current"; ln -sfn "$key" "$CACHE/wheels/current"; exit 0; fi
rm -rf "$out.tmp"; mkdir -p "$out.tmp"
for p in "${present[@]}"; do
  "$PY" -m pip wheel -q --no-deps -w "$out.tmp" "$p"
done
for wheel in "$out.tmp"/*.whl; do
  for arch in x86_64 aarch64; do
    for pyver in 3.11 3.13; do
      "$PY" -m pip download -q -d "$out.tmp" --only-binary=:all: --implementation cp --python-version "$pyver" \
        --platform "manylinux_2_28_$arch" --platform "manylinux_2_17_$arch" --platform "manylinux2014_$arch" \
        --platform linux_"$arch" --platform any "$wheel"
    done
  done
done
mv "$out.tmp" "$out"; touch "$out/.complete"
ln -sfn "$key" "$CACHE/wheels/current"
echo "build-wheelhouse: $(ls "$out" | wc -l) wheels in $out"
