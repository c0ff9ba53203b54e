#!/usr/bin/env bash
# Compile the lock files the roles install from (pi_agent, stats_app) and the lab wheelhouse is built from: every
# transitive dependency of a deployed package, pinned, with the sha256 of every file its index has for that version,
# for any platform and Python from 3.11 (uv's universal resolution: the Pis' arm64 and the lab's amd64, Debian
# bookworm's 3.11 and trixie's 3.13). The package's own wheel is not in its lock: it is built here, and its digest
# is pinned beside the lock (the roles' *_package_sha256, written by lab/build-wheelhouse.sh).
# Re-run after changing a dependency in files/*/pyproject.toml (tests/unit/test_locks.py says when); pins already in a
# lock are kept unless they no longer satisfy the pyproject, so the diff shows what the change brought in.
#   lab/compile-locks.sh [--upgrade]       --upgrade: every dependency to its newest allowed version
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-.venv/bin/uv}
# lock file, project, extras (comma-separated, may be empty)
locks=(
  "files/pi_agent/requirements.lock files/pi_agent/pyproject.toml"
  "files/pi_agent/requirements-pi.lock files/pi_agent/pyproject.toml pi"
  "files/stats_app/requirements.lock files/stats_app/pyproject.toml"
)
for entry in "${locks[@]}"; do
  read -r lock project extras <<<"$entry"
  args=()
  for extra in ${extras//,/ }; do args+=(--extra "$extra"); done
  UV_CUSTOM_COMPILE_COMMAND="lab/compile-locks.sh" "$UV" pip compile --quiet --universal --python-version 3.11 \
    --generate-hashes "${args[@]}" "$@" "$project" -o "$lock"
  echo "compile-locks: $lock ($(grep -c '^[a-z0-9]' "$lock") packages)"
done
