#!/bin/sh
# Static analysis of the contracts with Slither, pointed at the build's own solc (the npm soljson
# behind solc-adapter.js) and settings. Exits non-zero on any high or medium finding.
#
# Slither pins web3 7 and cannot share the project's venv (web3 8), so it gets its own, built once
# per requirements-slither.txt under ${XDG_CACHE_HOME:-~/.cache}/heliogrid/slither-venv/<hash>/.
# Set SLITHER_PYTHON to use an existing interpreter that has slither-analyzer instead.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
requirements="$here/requirements-slither.txt"

if [ -z "${SLITHER_PYTHON:-}" ]; then
    key=$(sha256sum "$requirements" | cut -c1-16)
    venv="${XDG_CACHE_HOME:-$HOME/.cache}/heliogrid/slither-venv/$key"
    if [ ! -f "$venv/.complete" ]; then
        echo "run_slither: installing Slither into $venv (once)" >&2
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
        touch "$venv/.complete"
    fi
    SLITHER_PYTHON="$venv/bin/python"
fi

cd "$here"
exec env PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" "$SLITHER_PYTHON" -m heliogrid_contracts.static_analysis "$@"
