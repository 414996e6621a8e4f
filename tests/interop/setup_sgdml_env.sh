#!/usr/bin/env bash
# Build .venv-sgdml: the reference sGDML 1.0.3 (needs numpy<2.4 and torch) for interop tests.
# A build that fails (e.g. no network) is removed again, so nothing half-made stays behind:
# exit code 1 and one line on stderr; the interop tests then skip.
set -uo pipefail
cd "$(dirname "$0")/../.."
VENV=.venv-sgdml
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import sgdml.predict" 2>/dev/null; then
  exit 0
fi
rm -rf "$VENV"
fail() {
  rm -rf "$VENV"
  echo "sGDML reference environment not built ($1); the interop tests will be skipped" >&2
  exit 1
}
python3 -m venv "$VENV" || fail "python3 -m venv failed"
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
pip_q() {
  "$VENV/bin/pip" install -q --disable-pip-version-check --timeout 30 --retries 1 "$@" >>"$LOG" 2>&1
}
if ! pip_q "numpy<2.4" scipy psutil future "torch==2.13.0" || ! pip_q --no-deps "sgdml==1.0.3" \
  || ! "$VENV/bin/python" -c "import sgdml.predict" >>"$LOG" 2>&1; then
  fail "pip: $(grep -m1 '^ERROR' "$LOG" || tail -n1 "$LOG"); no network?"
fi
echo "sGDML reference environment ready"
