#!/usr/bin/env bash
# One entry point for a fresh machine (pip only, no conda needed):
#   bash run.sh pipeline [snakemake options]   install, then run the default pipeline
#   bash run.sh tests [pytest options]         install, then run the test suite
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}

install() {
  "$PYTHON" -m pip install --quiet --disable-pip-version-check -e ".[workflow,dev]" 2>&1 \
    | grep -v "^WARNING: Location\|Running pip as the 'root' user" || true
}

case "${1:-}" in
  pipeline)
    shift
    install
    exec "$PYTHON" -m snakemake --cores "${CORES:-2}" "$@"
    ;;
  tests)
    shift
    install
    bash tests/interop/setup_sgdml_env.sh || true  # without it, the interop tests skip
    exec "$PYTHON" -m pytest "$@"
    ;;
  *)
    echo "usage: bash run.sh pipeline|tests [options]" >&2
    exit 2
    ;;
esac
