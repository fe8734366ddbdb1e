#!/usr/bin/env bash
# A one-node Slurm cluster on localhost for the integration tests (../shared/reference/slurm).
#   scripts/cluster/slurm.sh up DIR     install if needed, configure under DIR, start munged,
#                                       slurmctld and slurmd; prints `export SLURM_CONF=...`
#   scripts/cluster/slurm.sh down DIR   stop those daemons by their own PIDs, remove DIR
# Needs root (Debian packages, the munge user).
set -euo pipefail
cmd=${1:?up or down}; dir=${2:?folder}
conf="$dir/slurm.conf"

stop_pid() {
    local f=$1
    [ -f "$f" ] || return 0
    local pid; pid=$(cat "$f")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
}

if [ "$cmd" = down ]; then
    stop_pid "$dir/slurmd.pid"
    stop_pid "$dir/slurmctld.pid"
    stop_pid "$dir/munge/munged.pid"
    rm -rf "$dir"
    exit 0
fi

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        slurmctld slurmd slurm-client munge >/dev/null
fi
host=$(hostname -s)
mkdir -p "$dir"/{munge,state,spool,log}
chmod 755 "$dir" "$dir/munge"
chown munge:munge "$dir/munge"
key="$dir/munge/munge.key"
dd if=/dev/urandom of="$key" bs=1024 count=1 status=none
chown munge:munge "$key"; chmod 400 "$key"
runuser -u munge -- munged --socket="$dir/munge/munge.socket.2" --key-file="$key" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed"
cat > "$conf" <<CONF
ClusterName=darkmagic
SlurmctldHost=$host(127.0.0.1)
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket.2
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
ReturnToService=2
MinJobAge=600
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$conf"
slurmctld
slurmd
for _ in $(seq 100); do
    if sinfo -h -o '%T' 2>/dev/null | grep -qx idle; then
        echo "export SLURM_CONF=$conf"
        exit 0
    fi
    sleep 0.2
done
echo "slurm did not come up; see $dir/log" >&2
exit 1
