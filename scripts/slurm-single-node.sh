#!/usr/bin/env bash
# A one-machine SLURM cluster to try `gwasm collect --executor slurm` on: this host is the
# controller and the only compute node. Installs Debian's slurm-wlm and munge if missing, writes
# /etc/slurm/slurm.conf, starts munged, slurmctld and slurmd directly (no systemd needed), and
# waits until the node is idle. Run as root. Idempotent: when the cluster is already up it exits 0
# at once. Not for a real cluster: it runs jobs as root with no isolation.
#
#   sudo scripts/slurm-single-node.sh          # start (or check) the cluster
#   sinfo; squeue                              # then use it
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "slurm-single-node.sh: run as root (it installs packages and starts daemons)" >&2
    exit 1
fi

conf_dir=/etc/slurm
conf=$conf_dir/slurm.conf
host=$(hostname -s)

node_state() {
    # The state of this host's node as sinfo reports it ("idle", "mixed", "down*", ...), or nothing.
    timeout 5 sinfo -h -N -n "$host" -o '%T' 2>/dev/null | head -n 1 || true
}

cluster_up() {
    case "$(node_state)" in
        idle | mixed | allocated | completing) return 0 ;;
        *) return 1 ;;
    esac
}

running() {
    # A live process of that name (a zombie left by a daemon's double fork does not count).
    pgrep -x -r R,S,D "$1" >/dev/null
}

write_conf() {
    # slurm.conf: this host as controller and only node, sized from the machine.
    local cpus mem_mb real_mem
    cpus=$(nproc)
    mem_mb=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
    # Leave room for the system and the daemons; slurmd drains a node that reports less than this.
    real_mem=$((mem_mb > 2048 ? mem_mb - 1024 : mem_mb * 3 / 4))
    cat <<EOF
# Written by scripts/slurm-single-node.sh: a one-machine cluster, $host is controller and node.
ClusterName=gwasm-local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=60
# Seconds between the SIGTERM and the SIGKILL of a cancelled job (submitit ignores the SIGTERM).
KillWait=2
Waittime=0
# Jobs submitted without --mem get a share of the node rather than all of it.
DefMemPerCPU=$((real_mem / cpus))
NodeName=$host CPUs=$cpus RealMemory=$real_mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

new_conf=$(write_conf)
if command -v sinfo >/dev/null 2>&1 && [ "$(cat "$conf" 2>/dev/null)" = "$new_conf" ] && running slurmctld && running slurmd && cluster_up; then
    echo "slurm: $host is up ($(node_state))"
    exit 0
fi

if ! command -v slurmctld >/dev/null 2>&1 || ! command -v slurmd >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
    echo "slurm: installing slurm-wlm and munge" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # The packages' postinst scripts try to start services; without systemd they only warn.
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

# munge: one key shared by every daemon and client of the cluster (here, one machine).
mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    if command -v mungekey >/dev/null 2>&1; then
        mungekey --create --keyfile=/etc/munge/munge.key
    else
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
fi
chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge 2>/dev/null || true
chmod 0700 /etc/munge
chmod 0400 /etc/munge/munge.key
chmod 0755 /run/munge
if ! running munged; then
    # munged refuses to run as root unless forced; run it as its own user when that user exists.
    if id munge >/dev/null 2>&1; then
        runuser -u munge -- munged
    else
        munged --force
    fi
fi
for _ in $(seq 50); do
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
    sleep 0.1
done

mkdir -p "$conf_dir" /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/slurm
printf '%s\n' "$new_conf" >"$conf.new"
changed=1
if [ -f "$conf" ] && cmp -s "$conf" "$conf.new"; then
    changed=0
fi
mv "$conf.new" "$conf"

if [ "$changed" -eq 1 ]; then
    # A new configuration: restart whatever runs with the old one. -c clears the old state (jobs,
    # node states) that may name another host.
    for daemon in slurmd slurmctld; do
        # The daemon this script started, by the pid it wrote (checked to be that daemon still).
        pid=$(cat "/run/slurm/$daemon.pid" 2>/dev/null || true)
        if [ -n "$pid" ] && [ "$(ps -p "$pid" -o comm= 2>/dev/null)" = "$daemon" ]; then
            kill "$pid"
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
    done
    ctld_flags=(-c)
else
    ctld_flags=()
fi
running slurmctld || slurmctld "${ctld_flags[@]}"
running slurmd || slurmd

for _ in $(seq 150); do
    if cluster_up; then
        echo "slurm: $host is up ($(node_state)): $(grep '^NodeName=' "$conf")"
        exit 0
    fi
    state=$(node_state)
    case "$state" in
        down* | drain* | unknown*)
            # A node that came back after a restart stays down until told otherwise.
            scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 || true
            ;;
    esac
    sleep 0.2
done
echo "slurm-single-node.sh: the node $host did not become idle (state: '$(node_state)'); see /var/log/slurm/" >&2
exit 1
