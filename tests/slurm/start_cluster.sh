#!/usr/bin/env bash
# A throw-away one-node SLURM cluster for tests/workflow/test_slurm.py (root; Debian/Ubuntu).
#
# Installs munge, slurmctld, slurmd and slurm-client with apt-get when they are missing,
# writes a one-node slurm.conf (partition "debug", every core, memory minus a margin, no
# accounting, no cgroups), starts munged, slurmctld and slurmd, and waits until the node
# is idle. The daemons it starts are written to $DELTAGDML_SLURM_STATE/daemons (default
# /run/deltagdml-slurm); stop_cluster.sh stops exactly those. Daemons already running are
# left alone. Without accounting, Snakemake's SLURM executor must poll with squeue
# (--slurm-status-command squeue), which sees a finished job for MinJobAge seconds.
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "start_cluster.sh: needs root" >&2; exit 1; }
STATE=${DELTAGDML_SLURM_STATE:-/run/deltagdml-slurm}
DAEMONS=$STATE/daemons
if [ -s "$DAEMONS" ]; then
  echo "start_cluster.sh: $DAEMONS exists; run stop_cluster.sh first" >&2
  exit 1
fi
mkdir -p "$STATE"
: >"$DAEMONS"

retry() { # retry <seconds> <command...>: true once the command succeeds
  local until=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$until" ] || return 1
    sleep 0.25
  done
}
started() { echo "$1 $2" >>"$DAEMONS"; echo "started $1 (pid $2)"; }

need=()
for bin in /usr/sbin/munged /usr/sbin/slurmctld /usr/sbin/slurmd /usr/bin/sbatch; do
  [ -x "$bin" ] || need=(munge slurmctld slurmd slurm-client)
done
if [ "${#need[@]}" -gt 0 ]; then
  command -v apt-get >/dev/null || { echo "start_cluster.sh: SLURM missing, no apt-get" >&2; exit 1; }
  echo "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# munge: a key, its folders, one daemon
install -d -o munge -g munge -m 700 /etc/munge
[ -s /etc/munge/munge.key ] || head -c 1024 /dev/urandom >/etc/munge/munge.key
chown munge:munge /etc/munge/munge.key
chmod 400 /etc/munge/munge.key
install -d -o munge -g munge -m 755 /run/munge /var/lib/munge /var/log/munge
if ! (munge -n | unmunge) >/dev/null 2>&1; then
  runuser -u munge -- /usr/sbin/munged
  retry 10 sh -c 'munge -n | unmunge' || { echo "munged did not start" >&2; exit 1; }
  started munged "$(cat /run/munge/munged.pid)"
fi

# slurm.conf for this host
host=$(hostname -s)
mem_mb=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
margin=$((mem_mb / 10 < 1024 ? mem_mb / 10 : 1024))
install -d /etc/slurm /var/log/slurm
# own state folders: another cluster's saved state (another ClusterName) would stop slurmctld
SPOOL=/var/lib/slurm/deltagdml
install -d -o slurm -g slurm /var/lib/slurm "$SPOOL" "$SPOOL/ctld" "$SPOOL/d"
chown slurm:slurm /var/log/slurm
if [ -f /etc/slurm/slurm.conf ] && ! grep -q "deltagdml test cluster" /etc/slurm/slurm.conf; then
  cp -p /etc/slurm/slurm.conf /etc/slurm/slurm.conf.deltagdml-backup
fi
cat >/etc/slurm/slurm.conf <<CONF
# deltagdml test cluster (tests/slurm/start_cluster.sh)
ClusterName=deltagdml
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$SPOOL/ctld
SlurmdSpoolDir=$SPOOL/d
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=300
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
NodeName=${host} NodeAddr=127.0.0.1 CPUs=$(nproc --all) RealMemory=$((mem_mb - margin)) State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF

log_tail() { echo "$1 did not start:" >&2; tail -n 5 "/var/log/slurm/$1.log" >&2; exit 1; }
/usr/sbin/slurmctld -c || log_tail slurmctld
retry 20 scontrol ping || log_tail slurmctld
started slurmctld "$(cat /run/slurmctld.pid)"
/usr/sbin/slurmd || log_tail slurmd
retry 10 test -s /run/slurmd.pid || log_tail slurmd
started slurmd "$(cat /run/slurmd.pid)"
idle() { sinfo -h -n "$host" -o %t | grep -qx idle; }
if ! retry 30 idle; then
  scontrol update nodename="$host" state=resume || true
  retry 15 idle || { sinfo >&2; echo "node $host is not idle" >&2; exit 1; }
fi
echo "cluster up: $(sinfo -h -o '%P %D %t %N')"
