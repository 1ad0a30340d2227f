#!/usr/bin/env bash
# A private one-node Slurm for tests, from Debian's packages (slurmctld, slurmd, slurm-client, munge): its own munge
# key and socket, slurm.conf, state, spool and logs under DIR, ports 16817/16818, this machine's cores as the node.
# Source it, then:
#   slurm_start DIR    starts munged, slurmctld and slurmd; waits until the node is idle; exports SLURM_CONF
#   slurm_stop DIR     stops them (safe to call twice; tests call it from an EXIT trap)
# Fails (exit status 1, the reason and the daemons' log tails on stderr) when a daemon is missing or does not start.

slurm_fail() {
  echo "slurm_cluster: $*" >&2
  for log in "$SLURM_TEST_DIR"/log/*.log; do [ -f "$log" ] && { echo "--- $log" >&2; tail -n 20 "$log" >&2; }; done
  return 1
}

slurm_start() {
  SLURM_TEST_DIR=$(realpath -m "$1")
  local tool
  for tool in munged slurmctld slurmd sbatch srun squeue scontrol scancel sinfo; do
    command -v "$tool" >/dev/null || { slurm_fail "'$tool' not found: scripts/install-deps.sh installs Slurm and munge"; return 1; }
  done
  # slurmd 22.05 initialises a cgroup plugin whatever the configuration: a system without /sys/fs/cgroup (a bare
  # chroot) cannot run it.
  mountpoint -q /sys/fs/cgroup || { slurm_fail "/sys/fs/cgroup is not mounted: slurmd needs the cgroup hierarchy"; return 1; }
  slurm_stop "$SLURM_TEST_DIR" 2>/dev/null || true
  rm -rf "$SLURM_TEST_DIR" && mkdir -p "$SLURM_TEST_DIR"/{state,spool,log}
  local d=$SLURM_TEST_DIR host cpus mem
  dd if=/dev/urandom of="$d/munge.key" bs=1024 count=1 status=none && chmod 400 "$d/munge.key"
  munged --force --key-file="$d/munge.key" --socket="$d/munge.socket" --pid-file="$d/munged.pid" \
         --log-file="$d/log/munged.log" --seed-file="$d/munged.seed" || { slurm_fail "munged did not start"; return 1; }
  host=$(hostname) cpus=$(nproc) mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 2048 ))
  cat > "$d/slurm.conf" <<CONF
ClusterName=spvittest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=$(id -un)
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$d/munge.socket,cred_expire=10
CredType=cred/munge
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool
SlurmctldPidFile=$d/slurmctld.pid
SlurmdPidFile=$d/slurmd.pid
SlurmctldLogFile=$d/log/slurmctld.log
SlurmdLogFile=$d/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=pmix
ReturnToService=2
SchedulerType=sched/backfill
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobRequeue=1
KillWait=60
MinJobAge=600
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF
  export SLURM_CONF=$d/slurm.conf
  slurmctld -f "$SLURM_CONF" || { slurm_fail "slurmctld did not start"; return 1; }
  slurmd -f "$SLURM_CONF" || { slurm_fail "slurmd did not start"; return 1; }
  local _
  for _ in $(seq 1 60); do
    sinfo -h -o %t 2>/dev/null | grep -qx idle && { echo "slurm_cluster: node $host idle ($cpus CPUs), SLURM_CONF=$SLURM_CONF"; return 0; }
    sleep 0.5
  done
  slurm_fail "the node did not become idle within 30 s ($(sinfo -h -o %t 2>&1))"
}

slurm_stop() {
  local d
  d=$(realpath -m "${1:-$SLURM_TEST_DIR}")
  [ -d "$d" ] || return 0
  local pidfile
  for pidfile in "$d/slurmd.pid" "$d/slurmctld.pid" "$d/munged.pid"; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null
  done
  sleep 1
  for pidfile in "$d/slurmd.pid" "$d/slurmctld.pid" "$d/munged.pid"; do
    [ -f "$pidfile" ] && kill -9 "$(cat "$pidfile")" 2>/dev/null
    rm -f "$pidfile"
  done
  return 0
}
