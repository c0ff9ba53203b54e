#!/usr/bin/env bash
# Run every molecule scenario (molecule/<scenario>/molecule.yml): create, converge, idempotence,
# verify, destroy. Prints each scenario's time and a closing "N passed, N failed" line.
#   lab/run-molecule.sh [SCENARIO ...]
# The scenarios: geth_network (a sealer and a Pi's client on one chain: roles geth, geth_nodekey, clique_sealer,
# clique_genesis, geth_peers, geth_client), pi_agent (amd64; the arm64 Pi is the system tier's pi1), stats_app and
# monitoring (roles node_exporter and monitoring). One at a time: the project's machines have 2 cores, and each
# scenario's container names (hg-molecule-*) are fixed, so two runs of one scenario would collide.
set -uo pipefail
cd "$(dirname "$0")/.."
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/lab/containers.conf}
export HELIOGRID_CACHE=${HELIOGRID_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/heliogrid}
scenarios=("$@")
if [ ${#scenarios[@]} -eq 0 ]; then
  for f in molecule/*/molecule.yml; do [ -e "$f" ] && scenarios+=("$(basename "$(dirname "$f")")"); done
fi
passed=0; failed=0; failures=()
mkdir -p test-results/molecule
for s in "${scenarios[@]}"; do
  start=$(date +%s)
  if molecule test -s "$s" > "test-results/molecule/$s.log" 2>&1; then
    passed=$((passed + 1)); verdict=passed
  else
    failed=$((failed + 1)); verdict=FAILED; failures+=("$s")
    tail -n 40 "test-results/molecule/$s.log"
  fi
  echo "molecule: $s $verdict in $(( $(date +%s) - start ))s (log: test-results/molecule/$s.log)"
done
[ ${#failures[@]} -eq 0 ] || echo "molecule: failed scenarios: ${failures[*]}"
echo "molecule: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
