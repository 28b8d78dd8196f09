#!/usr/bin/env bash
# A real one-node SLURM cluster on this machine (slurmctld + slurmd + munged, no systemd), for tests and trials.
# Follows ../shared/docs/local-slurm.md (Debian 12, root). Installs the Debian packages when missing.
#
# usage: sbatch/local_cluster.sh start STATE_DIR   # prints "ready" once the node is idle
#        sbatch/local_cluster.sh stop STATE_DIR    # stops only the daemons that `start` started, by pid
# A start that fails after starting a daemon stops what it started (exit status 3).
set -euo pipefail
usage="usage: sbatch/local_cluster.sh start|stop STATE_DIR"
[[ $# -eq 2 ]] || { echo "$usage" >&2; exit 2; }
action=$1 state=$2
mkdir -p "$state"

start() {
    if command -v sinfo >/dev/null && [[ "$(sinfo -h -o %t 2>/dev/null | head -1)" == idle ]]; then
        echo ready  # a cluster is already up: use it, start (and later stop) nothing
        return 0
    fi
    [[ $(id -u) -eq 0 ]] || { echo "local_cluster.sh: needs root" >&2; exit 3; }
    if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null \
        || ! command -v sbatch >/dev/null; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client munge >"$state/apt.log" 2>&1 || {
            apt-get update -q >>"$state/apt.log" 2>&1 &&
            apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client munge >>"$state/apt.log" 2>&1
        } || { echo "local_cluster.sh: apt-get install failed (see $state/apt.log)" >&2; exit 3; }
    fi
    local host
    host=$(hostname -s)
    getent hosts "$host" >/dev/null || echo "127.0.0.1 $host" >> /etc/hosts
    if [[ ! -S /run/munge/munge.socket.2 ]] || ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        install -d -o munge -g munge -m 0755 /run/munge
        runuser -u munge -- "$(command -v munged)" || fail "munged did not start"
        keep_pid /run/munge/munged.pid munged
    fi
    mkdir -p /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /etc/slurm
    cat > /etc/slurm/slurm.conf <<CONF
ClusterName=localci
SlurmctldHost=${host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MailProg=/bin/true
AuthInfo=cred_expire=10
SchedulerParameters=sched_interval=5,bf_interval=5
MinJobAge=4
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=10
Waittime=0
$(slurmd -C | head -1) State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
    slurmctld || fail "slurmctld did not start (see /var/log/slurm/)"
    keep_pid /run/slurmctld.pid slurmctld
    slurmd || fail "slurmd did not start (see /var/log/slurm/)"
    keep_pid /run/slurmd.pid slurmd
    for _ in $(seq 120); do
        [[ "$(sinfo -h -n "$host" -o %t 2>/dev/null)" == idle ]] && { echo ready; return 0; }
        sleep 0.5
    done
    fail "node $host did not become idle (see /var/log/slurm/)"
}

fail() {   # stop the daemons this start started, then give up
    echo "local_cluster.sh: $1" >&2
    stop
    exit 3
}

keep_pid() {   # a daemon writes its pid file after forking: wait for it (seconds on a loaded machine), then keep it
    for _ in $(seq 120); do
        [[ -s "$1" ]] && { cp "$1" "$state/$2.pid"; return 0; }
        sleep 0.5
    done
    fail "$2 wrote no pid file $1"
}

stop() {
    for daemon in slurmd slurmctld munged; do
        if [[ -f "$state/$daemon.pid" ]]; then
            kill "$(cat "$state/$daemon.pid")" 2>/dev/null || true
            rm -f "$state/$daemon.pid"
        fi
    done
}

case "$action" in
    start) start ;;
    stop) stop ;;
    *) echo "$usage" >&2; exit 2 ;;
esac
