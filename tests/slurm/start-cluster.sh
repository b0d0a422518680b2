#!/usr/bin/env bash
# Start a single-node Slurm test cluster on 127.0.0.1 without systemd.
#
#   sudo tests/slurm/start-cluster.sh        # install (if needed) and start
#   tests/slurm/stop-cluster.sh              # stop exactly what this started
#
# Daemons: munged, mariadbd (--skip-networking, unix socket, private datadir),
# slurmdbd, slurmctld, slurmd. Their PIDs are recorded in $STATE/pids/*.pid and
# their logs are in $STATE/log/. Idempotent: daemons that are already running
# (recorded PID alive) are left alone; if everything is up it says so, exits 0.
#
# Environment:
#   EVOSWEEP_SLURM_STATE    state directory (default /var/lib/evosweep-slurm)
#   EVOSWEEP_SLURM_ACCOUNT  account created for root (default evosweep; must
#                           match slurm_account in profiles/slurm/config.yaml)
#   EVOSWEEP_SLURM_TIMEOUT  seconds to wait for each readiness check (default 60)
#   EVOSWEEP_SLURM_CPUS     CPUs the node announces (default 4, more than the
#                           machine has, via SlurmdParameters=config_overrides)
set -euo pipefail

STATE=${EVOSWEEP_SLURM_STATE:-/var/lib/evosweep-slurm}
ACCOUNT=${EVOSWEEP_SLURM_ACCOUNT:-evosweep}
TIMEOUT=${EVOSWEEP_SLURM_TIMEOUT:-60}
NODE_CPUS=${EVOSWEEP_SLURM_CPUS:-4}
CLUSTER=evosweep
PARTITION=debug
PACKAGES=(munge slurmctld slurmd slurm-client slurmdbd mariadb-server)
T0=$(date +%s)

say() { printf '[start-cluster %3ss] %s\n' "$(($(date +%s) - T0))" "$*"; }
die() { printf '[start-cluster] ERROR: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages and starts daemons); try: sudo $0"

# ---------------------------------------------------------------- helpers
# wait_for DESCRIPTION COMMAND...: poll COMMAND until it succeeds or TIMEOUT.
wait_for() {
    local what=$1; shift
    local deadline=$(($(date +%s) + TIMEOUT))
    until "$@" >/dev/null 2>&1; do
        if (($(date +%s) >= deadline)); then
            say "timed out after ${TIMEOUT}s waiting for: $what"
            return 1
        fi
        sleep 0.5
    done
    say "ready: $what"
}

# alive NAME: the recorded PID of NAME is a live process running NAME's binary.
alive() {
    local pidfile=$STATE/pids/$1.pid pid
    [[ -s $pidfile ]] || return 1
    pid=$(<"$pidfile")
    [[ -r /proc/$pid/cmdline ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$2"
}

# launch NAME PATTERN COMMAND...: start COMMAND in the foreground mode of the
# daemon, detached (new session, no tty, output to a log), record its PID.
launch() {
    local name=$1 pattern=$2; shift 2
    if alive "$name" "$pattern"; then
        say "$name already running (pid $(<"$STATE/pids/$name.pid"))"
        return 0
    fi
    setsid "$@" </dev/null >>"$STATE/log/$name.out" 2>&1 &
    echo $! >"$STATE/pids/$name.pid"
    say "started $name (pid $!)"
}

dump_logs() {
    local f
    for f in "$STATE"/log/*; do
        [[ -s $f ]] || continue
        echo "----- tail $f" >&2
        tail -n 15 "$f" >&2
    done
}
fail() { say "FAILED: $*"; dump_logs; die "$*"; }

# ------------------------------------------------------------ already up?
cluster_ready() {
    scontrol ping 2>/dev/null | grep -q 'is UP' &&
        sinfo -h -p "$PARTITION" -o '%T' 2>/dev/null | grep -Eq '^(idle|mixed|allocated)' &&
        sacctmgr -n -P show association where user=root account="$ACCOUNT" 2>/dev/null | grep -q .
}
all_alive() {
    alive munged munged && alive mariadb mariadbd && alive slurmdbd slurmdbd &&
        alive slurmctld slurmctld && alive slurmd slurmd
}
if command -v scontrol >/dev/null 2>&1 && [[ -d $STATE/pids ]] && all_alive && cluster_ready; then
    say "cluster already up (state $STATE); nothing to do"
    exit 0
fi

# ---------------------------------------------------------------- install
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install ${missing[*]} yourself (Debian/Ubuntu only)"
    say "installing: ${missing[*]}"
    # Keep package scripts from starting daemons (there is no systemd here and
    # we start them ourselves). Only remove the policy file if we created it.
    created_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        created_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >"/tmp/evosweep-slurm-apt.log" 2>&1; then
        say "apt-get install failed, retrying after apt-get update"
        apt-get update -q >>"/tmp/evosweep-slurm-apt.log" 2>&1 || true
        apt-get install -y -q --no-install-recommends "${missing[@]}" >>"/tmp/evosweep-slurm-apt.log" 2>&1 || {
            ((created_policy)) && rm -f /usr/sbin/policy-rc.d
            tail -n 20 /tmp/evosweep-slurm-apt.log >&2
            die "apt-get install ${missing[*]} failed (log: /tmp/evosweep-slurm-apt.log)"
        }
    fi
    ((created_policy)) && rm -f /usr/sbin/policy-rc.d
    say "installed"
else
    say "packages already installed"
fi

# ------------------------------------------------------------ configuration
mkdir -p "$STATE"/{pids,log,run,ctld,slurmd,mysql}
chmod 755 "$STATE"
HOST=$(hostname -s)
MYSQL_SOCK=$STATE/run/mysqld.sock

# What the hardware really is (Boards/Sockets/Cores/Threads/RealMemory).
read -r REAL_MEM < <(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
[[ -n ${REAL_MEM:-} ]] || fail "could not read RealMemory from 'slurmd -C'"
# Leave some memory for the OS and the daemons.
NODE_MEM=$((REAL_MEM * 9 / 10))

mkdir -p /etc/slurm
for f in /etc/slurm/slurm.conf /etc/slurm/slurmdbd.conf; do
    if [[ -e $f ]] && ! grep -q 'generated by evosweep' "$f"; then
        cp -p "$f" "$f.before-evosweep"
        say "kept a copy of the existing $f as $f.before-evosweep"
    fi
done

cat >/etc/slurm/slurm.conf <<EOF
# generated by evosweep tests/slurm/start-cluster.sh -- single-node test cluster
ClusterName=$CLUSTER
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
CryptoType=crypto/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups/systemd in this machine.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
# Several jobs share the node; memory is a consumable resource.
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
# Reject requests the partition can never satisfy at submit time.
EnforcePartLimits=ALL
ReturnToService=2
# Accounting through slurmdbd so sacct works (the Snakemake plugin needs it).
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=6819
AccountingStorageEnforce=associations
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=5
JobCompType=jobcomp/none
MinJobAge=300
KillWait=10
InactiveLimit=0
SlurmctldTimeout=60
SlurmdTimeout=60
# The node announces more CPUs than the machine has (tests ask --ntasks=4).
SlurmdParameters=config_overrides
NodeName=$HOST NodeAddr=127.0.0.1 NodeHostname=$HOST CPUs=$NODE_CPUS Boards=1 SocketsPerBoard=1 CoresPerSocket=$NODE_CPUS ThreadsPerCore=1 RealMemory=$NODE_MEM State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF

umask 077
cat >/etc/slurm/slurmdbd.conf <<EOF
# generated by evosweep tests/slurm/start-cluster.sh
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=root
PidFile=$STATE/run/slurmdbd.pid
LogFile=$STATE/log/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=root
StorageLoc=slurm_acct_db
EOF
umask 022
chmod 600 /etc/slurm/slurmdbd.conf

# ------------------------------------------------------------------ munge
if [[ ! -s /etc/munge/munge.key ]]; then
    say "creating /etc/munge/munge.key"
    mkdir -p /etc/munge
    if command -v mungekey >/dev/null 2>&1; then
        mungekey --create --keyfile=/etc/munge/munge.key --force
    else
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
fi
chown munge:munge /etc/munge /etc/munge/munge.key
chmod 700 /etc/munge
chmod 400 /etc/munge/munge.key
mkdir -p /run/munge /var/lib/munge /var/log/munge
chown munge:munge /run/munge /var/lib/munge /var/log/munge
chmod 755 /run/munge
# setpriv execs (no fork), so the recorded PID is munged's own.
launch munged munged setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged --foreground
wait_for "munge credentials" bash -c 'munge -n | unmunge' || fail "munged did not come up"

# ---------------------------------------------------------------- mariadb
if [[ ! -d $STATE/mysql/mysql ]]; then
    say "initialising the MariaDB datadir $STATE/mysql"
    mariadb-install-db --no-defaults --user=root --datadir="$STATE/mysql" \
        --auth-root-authentication-method=socket --skip-test-db \
        >"$STATE/log/mariadb-install.log" 2>&1 || fail "mariadb-install-db failed (see $STATE/log/mariadb-install.log)"
fi
launch mariadb mariadbd /usr/sbin/mariadbd --no-defaults --user=root \
    --datadir="$STATE/mysql" --socket="$MYSQL_SOCK" --skip-networking \
    --pid-file="$STATE/run/mariadb.pid" --log-error="$STATE/log/mariadb.log" \
    --innodb-buffer-pool-size=256M --innodb-lock-wait-timeout=900 --max-allowed-packet=64M
wait_for "mariadb on $MYSQL_SOCK" mariadb-admin --no-defaults --socket="$MYSQL_SOCK" ping || fail "mariadb did not come up"
mariadb --no-defaults --socket="$MYSQL_SOCK" -e 'CREATE DATABASE IF NOT EXISTS slurm_acct_db' ||
    fail "could not create slurm_acct_db"

# --------------------------------------------------------------- slurmdbd
# slurmdbd connects to "localhost", i.e. the unix socket; MYSQL_UNIX_PORT
# points the client library at ours.
launch slurmdbd slurmdbd env MYSQL_UNIX_PORT="$MYSQL_SOCK" /usr/sbin/slurmdbd -D
wait_for "slurmdbd answers sacctmgr" sacctmgr -n show cluster || fail "slurmdbd did not come up"

if ! sacctmgr -n -P show cluster format=cluster | grep -qx "$CLUSTER"; then
    sacctmgr -i add cluster "$CLUSTER" >/dev/null || fail "sacctmgr add cluster failed"
    say "added cluster $CLUSTER to the accounting database"
fi
if ! sacctmgr -n -P show account "$ACCOUNT" format=account | grep -qx "$ACCOUNT"; then
    sacctmgr -i add account "$ACCOUNT" cluster="$CLUSTER" description="evosweep tests" organization=evosweep >/dev/null ||
        fail "sacctmgr add account failed"
    say "added account $ACCOUNT"
fi
if ! sacctmgr -n -P show association where user=root account="$ACCOUNT" format=user | grep -qx root; then
    sacctmgr -i add user root account="$ACCOUNT" cluster="$CLUSTER" >/dev/null || fail "sacctmgr add user failed"
    say "associated user root with account $ACCOUNT"
fi
sacctmgr -i modify user root set defaultaccount="$ACCOUNT" >/dev/null 2>&1 || true

# ----------------------------------------------------------- slurmctld/d
launch slurmctld slurmctld /usr/sbin/slurmctld -D -i
wait_for "slurmctld (scontrol ping)" bash -c 'scontrol ping | grep -q "is UP"' || fail "slurmctld did not come up"
launch slurmd slurmd /usr/sbin/slurmd -D
wait_for "node $HOST idle in partition $PARTITION" \
    bash -c "sinfo -h -n $HOST -p $PARTITION -o '%T' | grep -Eq '^(idle|mixed|allocated)$'" || {
    sinfo -N -l >&2 || true
    fail "node $HOST did not become idle"
}
wait_for "slurmctld registered with slurmdbd" \
    bash -c "sacctmgr -n -P show cluster format=cluster,controlhost | grep -q '^$CLUSTER|.'" ||
    fail "slurmctld is not registered with slurmdbd"

# ------------------------------------------------------------ smoke tests
say "smoke test: srun -n1 true"
timeout "$TIMEOUT" srun -A "$ACCOUNT" -p "$PARTITION" -n1 -t 1 true || fail "srun -n1 true failed"
say "smoke test: sbatch --ntasks=$NODE_CPUS (polling sacct)"
jobid=$(sbatch --parsable -A "$ACCOUNT" -p "$PARTITION" -n "$NODE_CPUS" -t 1 -o /dev/null --wrap 'srun true') ||
    fail "sbatch smoke test was rejected"
jobid=${jobid%%;*}
wait_for "job $jobid COMPLETED in sacct" \
    bash -c "sacct -X -n -P -j $jobid -o State | grep -qx COMPLETED" || {
    sacct -j "$jobid" >&2 || true
    fail "smoke-test job $jobid did not complete"
}

say "cluster up in $(($(date +%s) - T0))s: cluster=$CLUSTER partition=$PARTITION account=$ACCOUNT node=$HOST cpus=$NODE_CPUS mem=${NODE_MEM}M"
say "state, logs and PIDs: $STATE (stop with tests/slurm/stop-cluster.sh)"
