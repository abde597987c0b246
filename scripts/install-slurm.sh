#!/usr/bin/env bash
# Installs and starts a one-node Slurm cluster on localhost for the real-scheduler test of the scale-out plan
# (tests/slurm.rs): the Debian packages slurmctld, slurmd, slurm-client and munge (apt-get, root), a munge key, a
# minimal slurm.conf describing this machine's real CPUs and memory, and the two daemons started by hand (no systemd
# is needed). Made to work in a container: no cgroup plugin (proctrack/linuxproc, task/none), state, spool and log
# folders under /var/lib/texplain-slurm. No slurmdbd, so `sacct` has no database: finished jobs are kept in
# slurmctld's memory for an hour (`scontrol show job`) and written to the job-completion log
# /var/lib/texplain-slurm/jobcomp.log (jobcomp/filetxt), which the test reads instead.
#
# Idempotent: a cluster that already answers with its node idle is left alone; a slurm.conf that this script did
# not write is never overwritten. On success prints the partition name (`debug`) on stdout. Exits non-zero, saying
# why on stderr, where it cannot (no root, no apt-get, a package fails, a daemon does not start); the test then
# skips with that message.
set -euo pipefail

STATE=/var/lib/texplain-slurm
CONF=/etc/slurm/slurm.conf
MARK="# written by texplain scripts/install-slurm.sh"
PARTITION=debug

die() {
  echo "install-slurm: $*" >&2
  exit 1
}

# The node's state as sinfo sees it (idle, mixed, down, ...), empty where the controller does not answer.
node_state() {
  timeout 10 sinfo -h -N -p "$PARTITION" -o %T 2>/dev/null | head -n 1 | tr -d '*' || true
}

# Whether the daemon of a pid file runs (a zombie does not count).
running() {
  [[ -s "$1" ]] || return 1
  local state
  state=$(awk '{print $3}' "/proc/$(cat "$1")/stat" 2>/dev/null) || return 1
  [[ -n "$state" && "$state" != Z ]]
}

# The slurm.conf of this machine as the only node, with its real CPUs and memory (slurmd -C). The scheduler runs at
# once on each submission and completion (batch_sched_delay=0, sched_min_interval=0): two chained arrays of four
# empty tasks, two at a time, took 4 s instead of 9-10 s here (experiments/scale-out/README.md).
conf_text() {
  local node hw cpus memory
  node=$(hostname -s)
  hw=$(slurmd -C 2>/dev/null | head -n 1)
  cpus=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$hw")
  memory=$(sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
  [[ -n "$cpus" && -n "$memory" ]] || return 1
  cat <<EOF
$MARK
# A one-node cluster on localhost for tests/slurm.rs: no cgroups (works in a container), no accounting database.
ClusterName=texplain
SlurmctldHost=$node(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE/jobcomp.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=3600
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
MpiDefault=none
MailProg=/bin/true
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=$PARTITION Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
}

ready() {
  command -v sbatch >/dev/null 2>&1 || return 1
  # On the cluster this script configured both daemons must run (the controller notices a dead slurmd only
  # minutes later).
  if grep -qxF "$MARK" "$CONF" 2>/dev/null; then
    running "$STATE/slurmctld.pid" && running "$STATE/slurmd.pid" || return 1
  fi
  case "$(node_state)" in
    idle | mixed | allocated | completing) return 0 ;;
    *) return 1 ;;
  esac
}

# Up, and configured by someone else or as this script would configure it now: nothing to do.
if ready && { ! grep -qxF "$MARK" "$CONF" || [[ "$(conf_text)" == "$(cat "$CONF")" ]]; }; then
  echo "$PARTITION"
  exit 0
fi

[[ "$(id -u)" == 0 ]] || die "needs root (apt-get, the daemons, /etc/slurm); run it with sudo"

# 1. The packages.
if ! command -v slurmctld >/dev/null 2>&1 || ! command -v slurmd >/dev/null 2>&1 \
  || ! command -v sbatch >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || die "no apt-get on this machine; install slurmctld, slurmd, slurm-client and munge by hand"
  export DEBIAN_FRONTEND=noninteractive
  log=$(mktemp)
  trap 'rm -f "$log"' EXIT
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge; } >"$log" 2>&1; then
    echo "install-slurm: apt-get could not install slurmctld slurmd slurm-client munge:" >&2
    tail -n 5 "$log" >&2
    exit 1
  fi
fi

# 2. munge: a key (the package makes one; make it where it did not) and the daemon, run as the munge user.
if [[ ! -s /etc/munge/munge.key ]]; then
  mungekey --create --force >/dev/null 2>&1 || dd if=/dev/urandom of=/etc/munge/munge.key bs=128 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
chmod 755 /run/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  runuser -u munge -- /usr/sbin/munged --force || die "munged did not start (see /var/log/munge/munged.log)"
  for _ in $(seq 50); do
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
    sleep 0.1
  done
  munge -n 2>/dev/null | unmunge >/dev/null 2>&1 || die "munged started but does not answer (see /var/log/munge/munged.log)"
fi

# 3. slurm.conf (conf_text).
if [[ -e "$CONF" ]] && ! grep -qxF "$MARK" "$CONF"; then
  die "$CONF exists and was not written by this script; not touching it"
fi
mkdir -p /etc/slurm "$STATE/ctld" "$STATE/d" "$STATE/log"
chown slurm:slurm "$STATE/ctld" "$STATE/log"
touch "$STATE/jobcomp.log"
chown slurm:slurm "$STATE/jobcomp.log"
conf_text >"$CONF.new" || die "slurmd -C did not describe this machine: $(slurmd -C 2>&1 | head -n 1)"
if ! cmp -s "$CONF.new" "$CONF" 2>/dev/null; then
  mv "$CONF.new" "$CONF"
  changed=1
else
  rm -f "$CONF.new"
  changed=0
fi
chmod 644 "$CONF"

# 4. The daemons: started where not running, restarted where the configuration changed.
for daemon in slurmctld slurmd; do
  pidfile="$STATE/$daemon.pid"
  if running "$pidfile" && [[ "$changed" == 1 ]]; then
    kill "$(cat "$pidfile")"
    for _ in $(seq 50); do running "$pidfile" || break; sleep 0.1; done
  fi
  if ! running "$pidfile"; then
    "/usr/sbin/$daemon" || die "$daemon did not start: $(tail -n 5 "$STATE/log/$daemon.log" 2>/dev/null)"
  fi
done

# 5. Wait for the node to register idle (resume it once if it came up down or drained).
for i in $(seq 60); do
  ready && break
  state=$(node_state)
  if [[ "$i" == 10 && -n "$state" ]]; then
    scontrol update NodeName="$node" State=RESUME >/dev/null 2>&1 || true
  fi
  sleep 0.5
done
ready || die "the node did not become idle (sinfo says '$(node_state)'); see $STATE/log/slurmctld.log and slurmd.log"
echo "$PARTITION"
