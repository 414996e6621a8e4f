#!/usr/bin/env bash
# Build .venv-sgdml: the reference sGDML 1.0.3 (needs numpy<2.4 and torch) for interop tests.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -x .venv-sgdml/bin/python ] && .venv-sgdml/bin/python -c "import sgdml.predict" 2>/dev/null; then
  exit 0
fi
python3 -m venv .venv-sgdml
.venv-sgdml/bin/pip install -q "numpy<2.4" scipy psutil future "torch==2.13.0" 2>&1 | grep -v "^WARNING: Location" || true
.venv-sgdml/bin/pip install -q --no-deps "sgdml==1.0.3" 2>&1 | grep -v "^WARNING: Location" || true
.venv-sgdml/bin/python -c "import sgdml.predict; print('sGDML reference environment ready')"
