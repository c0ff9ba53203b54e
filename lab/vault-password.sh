#!/usr/bin/env bash
# The lab's ansible-vault password: random, made on first use, kept in .lab/ (git-ignored, 0600).
# Production inventories use their own vault identity (e.g. --vault-id prod@prompt).
set -euo pipefail
file="$(cd "$(dirname "$0")/.." && pwd)/.lab/vault-password"
if [ ! -s "$file" ]; then
  mkdir -p "$(dirname "$file")"
  (umask 077 && head -c 32 /dev/urandom | base64 > "$file")
fi
cat "$file"
