#!/usr/bin/env bash
# A one-node Slurm on this machine, to try scripts/slurm/round.sh for real (the tests use it):
# installs Debian's packages when they are missing (as root, with apt-get), writes a
# configuration for one node on 127.0.0.1 under STATE, starts munged (on its own socket),
# slurmctld and slurmd, and waits until the node takes jobs.
#
#   scripts/slurm/local-cluster.sh start     # prints `export SLURM_CONF=STATE/slurm.conf`
#   scripts/slurm/local-cluster.sh status
#   scripts/slurm/local-cluster.sh stop
#
# STATE is $SLURM_STATE or /tmp/socratic-slurm. Clients find the cluster through SLURM_CONF.
# Jobs run as the user who submits them; the daemons run as root. Exit 0 ok, 1 failure (the
# reason on stderr), 2 bad usage.
set -euo pipefail
state=${SLURM_STATE:-/tmp/socratic-slurm}
conf=$state/slurm.conf
packages=(slurmctld slurmd slurm-client munge)

die() { echo "local-cluster: $*" >&2; exit 1; }

install() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
        && command -v sbatch >/dev/null && command -v munged >/dev/null; then
        return
    fi
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null \
        || die "Slurm is not installed, and installing it needs root and apt-get"
    echo "local-cluster: installing ${packages[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    # The packages' own services are not wanted: this script starts the daemons itself.
    # (An image's own policy-rc.d is left as it is.)
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' RETURN
    fi
    apt-get install -y -q --no-install-recommends "${packages[@]}" >/dev/null 2>&1 || {
        apt-get update -q >/dev/null
        apt-get install -y -q --no-install-recommends "${packages[@]}" >/dev/null
    } || die "apt-get install ${packages[*]} failed"
}

running() { [ -f "$state/$1.pid" ] && kill -0 "$(cat "$state/$1.pid")" 2>/dev/null; }

write_conf() {
    local node cpus mem
    node=$(hostname -s)
    cpus=$(nproc)
    mem=$(awk '/MemTotal/ { printf "%d", $2 / 1024 * 0.8 }' /proc/meminfo)
    mkdir -p "$state"/{ctld,d,munge}
    chmod 0711 "$state/munge"
    cat > "$conf" <<EOF
# One node on 127.0.0.1, written by scripts/slurm/local-cluster.sh.
ClusterName=socratic
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$state/munge/munge.socket.2
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/d
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/slurmctld.log
SlurmdLogFile=$state/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/builtin
# Dependent jobs start within seconds of the job they wait for (the default checks each minute).
SchedulerParameters=sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MailProg=/bin/true
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
# Finished jobs stay visible to scontrol for an hour (the tests read their states).
MinJobAge=3600
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
    install
    if running slurmctld && running slurmd && running munged; then
        echo "export SLURM_CONF=$conf"
        return
    fi
    stop >/dev/null 2>&1 || true
    write_conf
    export SLURM_CONF=$conf
    local key=/etc/munge/munge.key
    [ -f "$key" ] || { mkdir -p /etc/munge; dd if=/dev/urandom of="$key" bs=1024 count=1 2>/dev/null; chmod 0400 "$key"; }
    munged --force --socket="$state/munge/munge.socket.2" --key-file="$key" \
        --pid-file="$state/munged.pid" --log-file="$state/munged.log" \
        --seed-file="$state/munge/munged.seed" || die "munged did not start ($state/munged.log)"
    slurmctld -f "$conf" || die "slurmctld did not start ($state/slurmctld.log)"
    slurmd -f "$conf" || die "slurmd did not start ($state/slurmd.log)"
    local node
    node=$(hostname -s)
    for _ in $(seq 60); do
        case $(sinfo -h -n "$node" -o %T 2>/dev/null) in
            idle*|mixed*|allocated*) echo "export SLURM_CONF=$conf"; return ;;
            down*|drain*) scontrol update nodename="$node" state=resume 2>/dev/null || true ;;
        esac
        sleep 0.5
    done
    die "the node did not come up in 30 s (logs in $state)"
}

stop() {
    for daemon in slurmd slurmctld munged; do
        if running "$daemon"; then
            kill "$(cat "$state/$daemon.pid")" 2>/dev/null || true
        fi
    done
    for _ in $(seq 20); do
        running slurmd || running slurmctld || running munged || break
        sleep 0.25
    done
    echo "local-cluster: stopped" >&2
}

status() {
    for daemon in munged slurmctld slurmd; do
        if running "$daemon"; then echo "$daemon: running"; else echo "$daemon: stopped"; fi
    done
    [ -f "$conf" ] && SLURM_CONF=$conf sinfo 2>/dev/null || true
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: scripts/slurm/local-cluster.sh start|status|stop" >&2; exit 2 ;;
esac
