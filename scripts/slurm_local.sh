#!/usr/bin/env bash
# A single-node SLURM on this machine, for the cluster tests (CI calls `up`; `down` stops it).
#
#   bash scripts/slurm_local.sh up     # install slurm-wlm and munge if absent, configure, start
#   bash scripts/slurm_local.sh down   # stop the daemons this script started, and only those
#
# It touches only what it made. `up` writes /etc/slurm/slurm.conf only when there is none or
# when this script wrote it (its first line says so); on a machine's own slurm.conf it starts
# nothing, and uses that SLURM if it answers. It uses a munge daemon that already answers, or
# starts its own with its own key, files and PID file under $STATE (never a machine's munge
# key or folders). It records the daemons it started in $STATE/started, and `down` stops those
# alone, after checking that each PID still belongs to that daemon. Idempotent: `up` on a
# running scheduler only checks it. Needs root (it installs packages, starts daemons); no systemd.
set -euo pipefail

# SLURM_LOCAL_ROOT prefixes every path it uses (the tests run it in a temporary root).
ROOT=${SLURM_LOCAL_ROOT:-}
PATH=$PATH:/usr/sbin
CONF=$ROOT/etc/slurm/slurm.conf
MARK="# written by smooth-topk's scripts/slurm_local.sh"
STATE=$ROOT/var/lib/smooth-topk-slurm
RUN=$STATE/run          # the PID files of the daemons this script starts
STARTED=$STATE/started  # one line per daemon it started: name and PID file

say() { echo "slurm_local: $*"; }

install_packages() {
    command -v sbatch >/dev/null && command -v munged >/dev/null && return
    say "installing slurm-wlm and munge (Debian packages)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
}

# Whether the daemon `name` runs under the PID its PID file holds (not a reused PID).
running() {
    local name=$1 pid_file=$2 pid
    [ -f "$pid_file" ] || return 1
    pid=$(cat "$pid_file")
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ]
}

started() { echo "$1 $2" >>"$STARTED"; }

munge_answers() { command -v munge >/dev/null && munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
    if munge_answers; then
        return  # a munge daemon already answers (the machine's, or the one started before)
    fi
    local own=$STATE/munge
    mkdir -p "$own"
    chown munge:munge "$own"
    chmod 0700 "$own"
    if [ ! -d "$ROOT/run/munge" ]; then  # the socket's folder: created, so this script's own
        mkdir -p "$ROOT/run/munge"
        chown munge:munge "$ROOT/run/munge"
    fi
    if [ ! -s "$own/munge.key" ]; then
        say "creating this script's own munge key ($own/munge.key)"
        dd if=/dev/urandom of="$own/munge.key" bs=1024 count=1 status=none
        chown munge:munge "$own/munge.key"
        chmod 0400 "$own/munge.key"
    fi
    su -s /bin/sh munge -c "$(command -v munged) --key-file=$own/munge.key \
        --pid-file=$own/munged.pid --log-file=$own/munged.log --seed-file=$own/munged.seed"
    started munged "$own/munged.pid"
}

ours() { [ -f "$CONF" ] && [ "$(head -n 1 "$CONF")" = "$MARK" ]; }

write_config() {
    local host node
    host=$(hostname -s)
    node=$(slurmd -C | head -n 1)
    mkdir -p "$(dirname "$CONF")" "$STATE/ctld" "$STATE/d" "$RUN" "$ROOT/var/log/slurm"
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
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$ROOT/var/log/slurm/slurmctld.log
SlurmdLogFile=$ROOT/var/log/slurm/slurmd.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
SchedulerType=sched/backfill
$node State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

ready() {
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
    tail -n 20 "$ROOT/var/log/slurm/slurmctld.log" "$ROOT/var/log/slurm/slurmd.log" || true
    exit 1
}

up() {
    install_packages
    if [ -f "$CONF" ] && ! ours; then
        if sinfo -h >/dev/null 2>&1; then
            say "$CONF was not written by this script; its SLURM answers and is used as it is"
            ready
            return
        fi
        say "$CONF exists and was not written by this script: no daemon is started on it"
        exit 1
    fi
    mkdir -p "$STATE" "$RUN"
    start_munge
    write_config
    if ! running slurmctld "$RUN/slurmctld.pid"; then
        slurmctld
        started slurmctld "$RUN/slurmctld.pid"
    fi
    if ! running slurmd "$RUN/slurmd.pid"; then
        slurmd
        started slurmd "$RUN/slurmd.pid"
    fi
    ready
}

down() {
    [ -f "$STARTED" ] || return 0
    local name pid_file
    # the scheduler first, munge last (the reverse of the order they were started in)
    tac "$STARTED" | sort -u -k1,1 | sort -k1,1r | while read -r name pid_file; do
        if running "$name" "$pid_file"; then
            kill "$(cat "$pid_file")"
            say "stopped $name"
        fi
    done
    rm -f "$STARTED"
}

case "${1:-}" in
up) up ;;
down) down ;;
*)
    echo "usage: $0 up|down" >&2
    exit 2
    ;;
esac
