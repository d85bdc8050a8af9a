#!/usr/bin/env bash
# A single-node SLURM on this machine, for the cluster tests (CI calls `up`; `down` stops it).
#
#   bash scripts/slurm_local.sh up     # install slurm-wlm and munge if absent, configure, start
#   bash scripts/slurm_local.sh down   # stop the daemons this script started (by their PID files)
#
# Idempotent: `up` on a running scheduler only checks it.  It writes /etc/slurm/slurm.conf only
# when there is none or when this script wrote it (its first line says so): a machine's own
# SLURM is never touched.  Needs root (it installs packages and starts daemons); no systemd.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
MARK="# written by smooth-topk's scripts/slurm_local.sh"
STATE=/var/lib/smooth-topk-slurm
PIDS=(/run/slurmctld.pid /run/slurmd.pid /run/munge/munged.pid)

say() { echo "slurm_local: $*"; }

install_packages() {
    command -v sbatch >/dev/null && command -v munged >/dev/null && return
    say "installing slurm-wlm and munge (Debian packages)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
}

start_munge() {
    if [ -f /run/munge/munged.pid ] && kill -0 "$(cat /run/munge/munged.pid)" 2>/dev/null; then
        return
    fi
    if [ ! -s /etc/munge/munge.key ]; then
        say "creating a munge key"
        mkdir -p /etc/munge
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge
    chmod 0400 /etc/munge/munge.key
    chmod 0755 /run/munge
    su -s /bin/sh munge -c "/usr/sbin/munged --pid-file=/run/munge/munged.pid"
}

write_config() {
    if [ -f "$CONF" ] && [ "$(head -n 1 "$CONF")" != "$MARK" ]; then
        say "$CONF exists and was not written by this script: it is left as it is"
        return
    fi
    local host node
    host=$(hostname -s)
    node=$(slurmd -C | head -n 1)
    mkdir -p /etc/slurm "$STATE/ctld" "$STATE/d" /var/log/slurm
    cat >"$CONF" <<EOF
$MARK
ClusterName=local
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobRequeue=1
ReturnToService=2
MpiDefault=none
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
SchedulerType=sched/backfill
$node State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

up() {
    install_packages
    start_munge
    write_config
    running /run/slurmctld.pid || /usr/sbin/slurmctld
    running /run/slurmd.pid || /usr/sbin/slurmd
    for _ in $(seq 30); do
        if sinfo -h -o "%T" 2>/dev/null | grep -qE "idle|mixed|allocated"; then
            say "up: $(sinfo -h -o '%P %D node(s) %c CPUs %m MB %T')"
            srun -N1 -n1 true
            return
        fi
        sleep 1
    done
    say "the node did not become ready:"
    sinfo || true
    tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log || true
    exit 1
}

down() {
    for pid_file in "${PIDS[@]}"; do
        if running "$pid_file"; then
            kill "$(cat "$pid_file")"
            say "stopped $(basename "$pid_file" .pid)"
        fi
    done
}

case "${1:-}" in
up) up ;;
down) down ;;
*)
    echo "usage: $0 up|down" >&2
    exit 2
    ;;
esac
