#!/usr/bin/env bash
# Stop the daemons tests/slurm/start_cluster.sh started (newest first), after cancelling
# the cluster's jobs; put back a slurm.conf it replaced. A pid is signalled only while its
# process still has the recorded name.
set -uo pipefail
[ "$(id -u)" -eq 0 ] || { echo "stop_cluster.sh: needs root" >&2; exit 1; }
STATE=${DELTAGDML_SLURM_STATE:-/run/deltagdml-slurm}
DAEMONS=$STATE/daemons
[ -s "$DAEMONS" ] || { echo "nothing to stop"; exit 0; }
if scontrol ping >/dev/null 2>&1; then
  jobs=$(squeue -h -o %i 2>/dev/null || true)
  if [ -n "$jobs" ]; then
    # shellcheck disable=SC2086
    scancel $jobs
    sleep 2
  fi
fi
tac "$DAEMONS" | while read -r name pid; do
  if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != "$name" ]; then
    echo "$name ($pid) is no longer running"
    continue
  fi
  kill -TERM "$pid"
  for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  echo "stopped $name ($pid)"
  # daemons that dropped root cannot remove their pid files; stale ones confuse restarts
  for f in "/run/$name.pid" "/run/munge/$name.pid"; do
    [ "$(cat "$f" 2>/dev/null)" = "$pid" ] && rm -f "$f"
  done
done
rm -f "$DAEMONS"
if [ -f /etc/slurm/slurm.conf.deltagdml-backup ]; then
  mv /etc/slurm/slurm.conf.deltagdml-backup /etc/slurm/slurm.conf
fi
