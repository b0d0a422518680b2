#!/usr/bin/env bash
# Start a multi-node Slurm test cluster on this machine, without systemd.
#
#   sudo tests/slurm/start-cluster.sh [NODES]  # install (if needed) and start NODES nodes (3)
#   sudo tests/slurm/stop-cluster.sh           # stop exactly what this started
#
# A second cluster beside the first, with settings of its own (tests/slurm/wide.env):
#   sudo bash -c 'set -a; . tests/slurm/wide.env; tests/slurm/start-cluster.sh'
#   sudo EVOSWEEP_SLURM_STATE=/var/lib/evosweep-slurm-wide tests/slurm/stop-cluster.sh
#
# The root network namespace is the login node: munged (private socket), mariadbd
# (--skip-networking, unix socket, private datadir), slurmdbd and slurmctld run there, on the
# address .1 of a bridge this script creates. Compute nodes node1..nodeN each run slurmd in
# their own network namespace (ip netns evosweep-nodeK, a veth on the bridge, address .1K,
# lo up, no default route) and UTS namespace (hostname nodeK). /etc/hosts gets one tagged
# line per node, so node names resolve the same everywhere. The filesystem is shared.
#
# PIDs are recorded in $STATE/pids/*.pid, logs are in $STATE/log/. Idempotent: what is
# already up is left alone; if everything is up it says so and exits 0.
#
# Environment:
#   EVOSWEEP_SLURM_STATE    state directory (default /var/lib/evosweep-slurm)
#   EVOSWEEP_SLURM_ACCOUNT  account created for root (default evosweep; must
#                           match slurm_account in profiles/slurm/config.yaml)
#   EVOSWEEP_SLURM_TIMEOUT  seconds to wait for each readiness check (default 60)
#   EVOSWEEP_SLURM_CPUS     CPUs each node announces (default 4, more than the
#                           machine has, via SlurmdParameters=config_overrides)
#   EVOSWEEP_SLURM_NODES    number of compute nodes (default 3; the first argument wins)
#   EVOSWEEP_SLURM_NET      first three octets of the bridge's private /24 (default 10.77.13)
#   EVOSWEEP_SLURM_BRIDGE   the bridge's name (default evsw0)
#   EVOSWEEP_SLURM_NODE_PREFIX  node names are PREFIX1..PREFIXN (default node)
#   EVOSWEEP_SLURM_CLUSTER  ClusterName, also the tag of the /etc/hosts lines (default evosweep)
#   EVOSWEEP_SLURM_PORT     slurmctld's port; slurmd's is +1, slurmdbd's +2 (default 6817)
#   SLURM_CONF              where slurm.conf is written, slurmdbd.conf beside it
#                           (default /etc/slurm/slurm.conf)
set -euo pipefail

if (($#)); then
    [[ $1 =~ ^[0-9]+$ ]] || { echo "usage: $0 [NODES]" >&2; exit 2; }
    export EVOSWEEP_SLURM_NODES=$1
fi
# shellcheck source=tests/slurm/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HOST=$(hostname -s)
MYSQL_SOCK=$STATE/run/mysqld.sock
MUNGE_DIR=$STATE/munge
MUNGE_SOCK=$MUNGE_DIR/munge.socket
ACCOUNT=${EVOSWEEP_SLURM_ACCOUNT:-evosweep}
TIMEOUT=${EVOSWEEP_SLURM_TIMEOUT:-60}
NODE_CPUS=${EVOSWEEP_SLURM_CPUS:-4}
PACKAGES=(munge slurmctld slurmd slurm-client slurmdbd mariadb-server iproute2 util-linux)
T0=$(date +%s)

say() { printf '[start-cluster %3ss] %s\n' "$(($(date +%s) - T0))" "$*"; }
die() { printf '[start-cluster] ERROR: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages, starts daemons, creates namespaces); try: sudo $0"
((NODE_COUNT >= 1 && NODE_COUNT <= 89)) || die "EVOSWEEP_SLURM_NODES must be 1..89"
take_lock
NODE_RANGE="$NODE_PREFIX[1-$NODE_COUNT]"
ADDR_RANGE="$NET.[11-$((10 + NODE_COUNT))]"

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
        sleep 0.2
    done
    say "ready: $what"
}

# launch NAME COMMAND...: start COMMAND (a daemon in its foreground mode) detached (new
# session, no tty, output to a log) and record its PID. Every link of COMMAND execs the
# next, so the PID is the daemon's own.
launch() {
    local name=$1; shift
    if alive "$name"; then
        say "$name already running (pid $(<"$STATE/pids/$name.pid"))"
        return 0
    fi
    setsid "$@" </dev/null >>"$STATE/log/$name.out" 2>&1 9>&- &
    echo $! >"$STATE/pids/$name.pid"
    say "started $name (pid $!)"
}

dump_logs() {
    local f
    for f in "$STATE"/log/* "$MUNGE_DIR"/munged.log; do
        [[ -s $f ]] || continue
        echo "----- tail $f" >&2
        tail -n 15 "$f" >&2
    done
}
fail() { say "FAILED: $*"; dump_logs; die "$*"; }

# render_slurm_conf: print the slurm.conf this script wants (needs slurmd -C).
render_slurm_conf() {
    local REAL_MEM NODE_MEM
    REAL_MEM=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
    [[ -n $REAL_MEM ]] || { echo "could not read RealMemory from 'slurmd -C'" >&2; return 1; }
    # Each node announces most of the machine's memory (they share it, as they share the CPUs):
    # memory stays a consumable per node, and a 2G job fits even on a small machine.
    NODE_MEM=$((REAL_MEM * 9 / 10))
    cat <<EOF
# generated by evosweep tests/slurm/start-cluster.sh -- multi-node test cluster
ClusterName=$CLUSTER
# Only the address in parentheses is used to connect; the name must be this host's.
SlurmctldHost=$HOST($LOGIN_ADDR)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
AuthType=auth/munge
CryptoType=crypto/munge
# Our own munged: daemons, clients and job steps all reach it through this socket.
AuthInfo=socket=$MUNGE_SOCK
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/slurmd/%n
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.%n.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.%n.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups/systemd in this machine.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
# Several jobs share a node; memory is a consumable resource.
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
# Reject requests the partition can never satisfy at submit time.
EnforcePartLimits=ALL
ReturnToService=2
# Accounting through slurmdbd so sacct works (the Snakemake plugin needs it).
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=$LOGIN_ADDR
AccountingStoragePort=$((PORT + 2))
# The munge socket slurmctld and sacctmgr use to reach slurmdbd.
AccountingStoragePass=$MUNGE_SOCK
AccountingStorageEnforce=associations
# Store job comments (the Snakemake plugin puts rule_<name>_wildcards_... there).
AccountingStoreFlags=job_comment
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=5
JobCompType=jobcomp/none
MinJobAge=300
KillWait=10
InactiveLimit=0
SlurmctldTimeout=60
SlurmdTimeout=60
# Nodes announce more CPUs than the machine has (tests ask --ntasks=4 on one node).
SlurmdParameters=config_overrides
NodeName=$NODE_RANGE NodeAddr=$ADDR_RANGE CPUs=$NODE_CPUS Boards=1 SocketsPerBoard=1 CoresPerSocket=$NODE_CPUS ThreadsPerCore=1 RealMemory=$NODE_MEM State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE_RANGE Default=YES MaxTime=INFINITE State=UP
EOF
}

render_slurmdbd_conf() {
    cat <<EOF
# generated by evosweep tests/slurm/start-cluster.sh
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCK
DbdHost=localhost
DbdAddr=$LOGIN_ADDR
DbdPort=$((PORT + 2))
SlurmUser=root
PidFile=$STATE/run/slurmdbd.pid
LogFile=$STATE/log/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=root
StorageLoc=slurm_acct_db
EOF
}

render_hosts_lines() {
    local node
    for node in "${NODES[@]}"; do printf '%s %s %s\n' "$(node_addr "$node")" "$node" "$HOSTS_TAG"; done
}

# ------------------------------------------------------------ already up?
network_ready() {
    local node
    ip -4 -o addr show dev "$BRIDGE" 2>/dev/null | grep -q " $LOGIN_ADDR/24 " || return 1
    for node in "${NODES[@]}"; do
        ip -n "$NETNS_PREFIX$node" -4 -o addr show dev eth0 2>/dev/null |
            grep -q " $(node_addr "$node")/24 " || return 1
    done
    [[ $(grep -- "$HOSTS_TAG\$" /etc/hosts) == "$(render_hosts_lines)" ]]
}
all_alive() {
    local node
    alive munged && alive mariadb && alive slurmdbd && alive slurmctld || return 1
    for node in "${NODES[@]}"; do alive "slurmd-$node" || return 1; done
}
nodes_ready() {
    # every node of the partition responds and takes jobs (not down, drained or "*")
    local states
    states=$(sinfo -h -N -p "$PARTITION" -o '%N %T') || return 1
    [[ $(grep -cE ' (idle|mixed|allocated|completing)$' <<<"$states") -eq $NODE_COUNT ]]
}
cluster_ready() {
    scontrol ping 2>/dev/null | grep -q 'is UP' && nodes_ready &&
        sacctmgr -n -P show association where user=root account="$ACCOUNT" 2>/dev/null | grep -q .
}
if command -v scontrol >/dev/null 2>&1 && [[ -d $STATE/pids ]] && all_alive && network_ready &&
    render_slurm_conf 2>/dev/null | cmp -s - "$SLURM_CONF" && cluster_ready; then
    say "cluster already up (state $STATE, nodes ${NODES[*]}); nothing to do"
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

# ------------------------------------------------ beside another cluster?
# Another cluster's settings would be taken over (its bridge, its slurm.conf) or clash (its
# ports): refuse, naming the setting to change.
other_bridge_addr=$(ip -4 -o addr show dev "$BRIDGE" 2>/dev/null | awk '{print $4}' | grep -vx "$LOGIN_ADDR/24" || true)
[[ -z $other_bridge_addr ]] ||
    die "bridge $BRIDGE carries $other_bridge_addr (another cluster's); set EVOSWEEP_SLURM_BRIDGE and EVOSWEEP_SLURM_NET"
if [[ -e $SLURM_CONF ]] && grep -q 'generated by evosweep' "$SLURM_CONF" &&
    ! grep -qx "StateSaveLocation=$STATE/ctld" "$SLURM_CONF"; then
    die "$SLURM_CONF belongs to the cluster of another state directory; set SLURM_CONF (e.g. $STATE/etc/slurm.conf)"
fi
port_taken() { ss -H -ltn "sport = :$1" | grep -q .; }
if { ! alive slurmctld && port_taken "$PORT"; } || { ! alive slurmdbd && port_taken $((PORT + 2)); }; then
    die "port $PORT or $((PORT + 2)) is in use (another cluster's slurmctld or slurmdbd?); set EVOSWEEP_SLURM_PORT"
fi
mkdir -p "$(dirname "$SLURM_CONF")"
write_instance_file

# ---------------------------------------------------------------- network
# The bridge's /24 must be ours alone: refuse if another interface routes it.
if ip -4 route show "$NET.0/24" | grep -v "dev $BRIDGE " | grep -q .; then
    die "$NET.0/24 is already routed elsewhere ($(ip -4 route show "$NET.0/24")); set EVOSWEEP_SLURM_NET"
fi
if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge || fail "could not create bridge $BRIDGE"
    say "created bridge $BRIDGE"
fi
ip addr replace "$LOGIN_ADDR/24" dev "$BRIDGE"
ip link set "$BRIDGE" up
for node in "${NODES[@]}"; do
    ns=$NETNS_PREFIX$node veth=$VETH_PREFIX$node
    [[ -e /run/netns/$ns ]] || { ip netns add "$ns" && say "created network namespace $ns"; }
    ip -n "$ns" link set lo up
    if ! ip -n "$ns" link show eth0 >/dev/null 2>&1; then
        ip link del "$veth" 2>/dev/null || true
        ip link add "$veth" type veth peer name eth0 netns "$ns" || fail "could not create veth $veth"
    fi
    ip link set "$veth" master "$BRIDGE" up
    ip -n "$ns" addr replace "$(node_addr "$node")/24" dev eth0
    ip -n "$ns" link set eth0 up
done
say "network: $BRIDGE $LOGIN_ADDR/24 (login node), ${NODES[*]} on $ADDR_RANGE"

if [[ $(grep -- "$HOSTS_TAG\$" /etc/hosts) != "$(render_hosts_lines)" ]]; then
    tmp=$(mktemp)
    grep -v -- "$HOSTS_TAG\$" /etc/hosts >"$tmp" || true
    render_hosts_lines >>"$tmp"
    write_hosts "$tmp"
    say "added ${NODES[*]} to /etc/hosts (lines tagged '$HOSTS_TAG')"
fi

# ------------------------------------------------------------ configuration
mkdir -p "$STATE"/{pids,log,run,ctld,mysql}
for node in "${NODES[@]}"; do mkdir -p "$STATE/slurmd/$node"; done
chmod 755 "$STATE"

for f in "$SLURM_CONF" "$SLURMDBD_CONF"; do
    if [[ -e $f ]] && ! grep -q 'generated by evosweep' "$f"; then
        cp -p "$f" "$f.before-evosweep"
        say "kept a copy of the existing $f as $f.before-evosweep"
    fi
done

render_slurm_conf >"$STATE/slurm.conf.new" || fail "could not render slurm.conf"
if ! cmp -s "$STATE/slurm.conf.new" "$SLURM_CONF"; then
    mv "$STATE/slurm.conf.new" "$SLURM_CONF"
    say "wrote $SLURM_CONF"
    # Nodes cannot be added or renamed by `scontrol reconfigure`: restart whatever runs.
    for name in $(stop_order); do
        case $name in slurmd* | slurmctld) stop_one "$name" ;; esac
    done
else
    rm -f "$STATE/slurm.conf.new"
fi

render_slurmdbd_conf >"$STATE/slurmdbd.conf.new"
chmod 600 "$STATE/slurmdbd.conf.new"
if ! cmp -s "$STATE/slurmdbd.conf.new" "$SLURMDBD_CONF"; then
    mv "$STATE/slurmdbd.conf.new" "$SLURMDBD_CONF"
    say "wrote $SLURMDBD_CONF"
    stop_one slurmdbd
else
    rm -f "$STATE/slurmdbd.conf.new"
fi

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
# munged keeps its socket, pid, seed and log in a directory of its own, owned by munge.
mkdir -p "$MUNGE_DIR"
chown munge:munge "$MUNGE_DIR"
chmod 755 "$MUNGE_DIR"
# A munged on another socket (the single-node cluster's) is replaced by ours.
if alive munged && ! tr '\0' ' ' <"/proc/$(<"$STATE/pids/munged.pid")/cmdline" | grep -q -- "--socket=$MUNGE_SOCK"; then
    stop_one munged
fi
# setpriv execs (no fork), so the recorded PID is munged's own.
launch munged setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged --foreground \
    --socket="$MUNGE_SOCK" --pid-file="$MUNGE_DIR/munged.pid" \
    --seed-file="$MUNGE_DIR/munged.seed" --log-file="$MUNGE_DIR/munged.log"
wait_for "munge credentials on $MUNGE_SOCK" \
    bash -c "munge -S '$MUNGE_SOCK' -n | unmunge -S '$MUNGE_SOCK'" || fail "munged did not come up"

# ---------------------------------------------------------------- mariadb
if [[ ! -d $STATE/mysql/mysql ]]; then
    say "initialising the MariaDB datadir $STATE/mysql"
    mariadb-install-db --no-defaults --user=root --datadir="$STATE/mysql" \
        --auth-root-authentication-method=socket --skip-test-db \
        >"$STATE/log/mariadb-install.log" 2>&1 || fail "mariadb-install-db failed (see $STATE/log/mariadb-install.log)"
fi
launch mariadb /usr/sbin/mariadbd --no-defaults --user=root \
    --datadir="$STATE/mysql" --socket="$MYSQL_SOCK" --skip-networking \
    --pid-file="$STATE/run/mariadb.pid" --log-error="$STATE/log/mariadb.log" \
    --innodb-buffer-pool-size=256M --innodb-lock-wait-timeout=900 --max-allowed-packet=64M
wait_for "mariadb on $MYSQL_SOCK" mariadb-admin --no-defaults --socket="$MYSQL_SOCK" ping || fail "mariadb did not come up"
mariadb --no-defaults --socket="$MYSQL_SOCK" -e 'CREATE DATABASE IF NOT EXISTS slurm_acct_db' ||
    fail "could not create slurm_acct_db"

# --------------------------------------------------------------- slurmdbd
# slurmdbd connects to "localhost", i.e. the unix socket; MYSQL_UNIX_PORT
# points the client library at ours.
launch slurmdbd env MYSQL_UNIX_PORT="$MYSQL_SOCK" /usr/sbin/slurmdbd -D
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
launch slurmctld /usr/sbin/slurmctld -D -i
wait_for "slurmctld (scontrol ping)" bash -c 'scontrol ping | grep -q "is UP"' || fail "slurmctld did not come up"
# A cluster whose slurm.conf is not at the default path gets it there on its nodes (a mount
# namespace per slurmd): the Slurm executor plugin drops SLURM_CONF from the environment of the
# srun it starts inside a job, which would then find the default cluster's controller instead.
CONF_DIR=$(dirname "$SLURM_CONF")
for node in "${NODES[@]}"; do
    # Only the network namespace is entered (`ip netns exec` would also remount /sys and
    # hide /sys/fs/cgroup, which slurmd needs); then a new UTS namespace named after the node.
    if [[ $CONF_DIR == /etc/slurm ]]; then
        launch "slurmd-$node" nsenter --net="/run/netns/$NETNS_PREFIX$node" \
            unshare --uts /bin/sh -c 'hostname "$1" && exec /usr/sbin/slurmd -D -N "$1"' sh "$node"
    else
        launch "slurmd-$node" nsenter --net="/run/netns/$NETNS_PREFIX$node" \
            unshare --uts --mount --propagation private /bin/sh -c \
            'mount --bind "$2" /etc/slurm && hostname "$1" && exec /usr/sbin/slurmd -D -N "$1"' \
            sh "$node" "$CONF_DIR"
    fi
done
wait_for "${NODES[*]} up in partition $PARTITION" nodes_ready || {
    sinfo -N -l >&2 || true
    fail "nodes did not become idle"
}
wait_for "slurmctld registered with slurmdbd" \
    bash -c "sacctmgr -n -P show cluster format=cluster,controlhost | grep -q '^$CLUSTER|.'" ||
    fail "slurmctld is not registered with slurmdbd"

# ------------------------------------------------------------ smoke tests
say "smoke test: srun -N$NODE_COUNT -n$NODE_COUNT hostname"
got=$(timeout "$TIMEOUT" srun -A "$ACCOUNT" -p "$PARTITION" -N "$NODE_COUNT" -n "$NODE_COUNT" -t 1 hostname | sort -V | xargs) ||
    fail "srun -N$NODE_COUNT hostname failed"
[[ $got == "${NODES[*]}" ]] || fail "srun -N$NODE_COUNT hostname printed '$got', expected '${NODES[*]}'"
say "smoke test: sbatch -N$NODE_COUNT (polling sacct)"
jobid=$(sbatch --parsable -A "$ACCOUNT" -p "$PARTITION" -N "$NODE_COUNT" -n "$NODE_COUNT" -t 1 -o /dev/null --wrap 'srun true') ||
    fail "sbatch smoke test was rejected"
jobid=${jobid%%;*}
wait_for "job $jobid COMPLETED in sacct" \
    bash -c "sacct -X -n -P -j $jobid -o State | grep -qx COMPLETED" || {
    sacct -j "$jobid" >&2 || true
    fail "smoke-test job $jobid did not complete"
}

say "cluster up in $(($(date +%s) - T0))s: cluster=$CLUSTER partition=$PARTITION account=$ACCOUNT nodes=${NODES[*]} ($ADDR_RANGE) cpus/node=$NODE_CPUS mem/node=$(sed -n "s/.*RealMemory=\\([0-9]*\\).*/\\1/p" "$SLURM_CONF")M login=$LOGIN_ADDR"
say "state, logs and PIDs: $STATE; SLURM_CONF=$SLURM_CONF (stop with EVOSWEEP_SLURM_STATE=$STATE tests/slurm/stop-cluster.sh)"
