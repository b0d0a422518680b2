# Shared by start-cluster.sh and stop-cluster.sh (sourced, not run).
#
# Layout of the test cluster: the root network namespace plays the login node (munged,
# mariadbd, slurmdbd, slurmctld, Snakemake); compute nodes node1..nodeN each run slurmd in
# their own network namespace (evosweep-nodeK, joined to the bridge by a veth pair) and UTS
# namespace (hostname nodeK). tests/helpers/slurm_cluster.py mirrors these names and defaults.

STATE=${EVOSWEEP_SLURM_STATE:-/var/lib/evosweep-slurm}
NODE_COUNT=${EVOSWEEP_SLURM_NODES:-3}
# First three octets of a private /24 used only on our bridge: .1 is the login node,
# .11, .12, ... are node1, node2, ...
NET=${EVOSWEEP_SLURM_NET:-10.77.13}
BRIDGE=evsw0
NETNS_PREFIX=evosweep-
VETH_PREFIX=evsw-
LOGIN_ADDR=$NET.1
HOSTS_TAG="# evosweep-slurm"
PARTITION=debug
GRACE=${EVOSWEEP_SLURM_STOP_GRACE:-20}

NODES=()
for ((i = 1; i <= NODE_COUNT; i++)); do NODES+=("node$i"); done
node_addr() { echo "$NET.$((10 + ${1#node}))"; }

# Daemons in stop order (compute nodes first), as names of their files in $STATE/pids.
# "slurmd" is the single-node cluster's name, kept so an old cluster is stopped too.
stop_order() {
    local f
    for f in "$STATE"/pids/slurmd-*.pid; do [[ -e $f ]] && basename "$f" .pid; done
    echo slurmd slurmctld slurmdbd mariadb munged
}

# What the command line of each daemon contains (guards against a reused PID).
pattern_of() {
    case $1 in
        slurmd-*) echo "slurmd -D -N ${1#slurmd-}" ;;
        mariadb) echo mariadbd ;;
        *) echo "$1" ;;
    esac
}

# take_lock: one start or stop at a time (a test fixture may start the cluster while a
# script does). Held on fd 9 until the script exits; daemons must not inherit it.
take_lock() {
    mkdir -p "$STATE"
    exec 9>"$STATE/cluster.lock"
    flock -w "${EVOSWEEP_SLURM_LOCK_TIMEOUT:-600}" 9 || { say "another start/stop holds $STATE/cluster.lock"; exit 1; }
}

# gone PID: the process has exited (a zombie counts as exited).
gone() {
    [[ -d /proc/$1 ]] || return 0
    [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) == Z ]]
}

# alive NAME: the recorded PID of NAME is a live process running NAME's binary.
alive() {
    local pidfile=$STATE/pids/$1.pid pid
    [[ -s $pidfile ]] || return 1
    pid=$(<"$pidfile")
    [[ -r /proc/$pid/cmdline ]] && ! gone "$pid" || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$(pattern_of "$1")"
}

# end_pids PID...: TERM, poll until gone, KILL whatever ignored TERM for GRACE seconds.
end_pids() {
    local pid deadline left
    (($#)) || return 0
    kill -TERM "$@" 2>/dev/null
    deadline=$(($(date +%s) + GRACE))
    while :; do
        left=()
        for pid in "$@"; do gone "$pid" || left+=("$pid"); done
        ((${#left[@]})) || return 0
        if (($(date +%s) >= deadline)); then
            say "pid(s) ${left[*]} ignored TERM for ${GRACE}s; sending KILL"
            kill -KILL "${left[@]}" 2>/dev/null
            return 0
        fi
        sleep 0.2
    done
}

# stop_one NAME: stop the daemon recorded in $STATE/pids/NAME.pid, forget its PID.
stop_one() {
    local name=$1 pidfile=$STATE/pids/$1.pid pid
    [[ -s $pidfile ]] || return 0
    pid=$(<"$pidfile")
    if alive "$name"; then
        end_pids "$pid"
        say "stopped $name (pid $pid)"
    else
        say "$name (pid $pid) was not running"
    fi
    rm -f "$pidfile"
}

# write_hosts FILE: replace /etc/hosts' content with FILE's, keeping its inode (it may be
# a bind mount, which a rename would not replace).
write_hosts() { cat "$1" >/etc/hosts && rm -f "$1"; }

remove_hosts_lines() {
    grep -q -- "$HOSTS_TAG\$" /etc/hosts 2>/dev/null || return 0
    local tmp
    tmp=$(mktemp)
    grep -v -- "$HOSTS_TAG\$" /etc/hosts >"$tmp" || true
    write_hosts "$tmp"
}

# Our node namespaces and veths, of any node count ever started; exact names only, since
# other tests create namespaces and links of their own.
our_netns() { ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${NETNS_PREFIX}node[0-9]+\$" || true; }
our_links() {
    ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' |
        grep -E "^${VETH_PREFIX}node[0-9]+\$" || true
}
