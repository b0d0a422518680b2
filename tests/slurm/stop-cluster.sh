#!/usr/bin/env bash
# Stop the Slurm test cluster started by tests/slurm/start-cluster.sh.
# Only the processes whose PIDs that script recorded in $STATE/pids/ are
# signalled (TERM, poll until gone, then KILL) -- nothing else is touched.
# The state (accounting database, configs, logs) is kept, so a later
# start-cluster.sh comes back quickly.
set -uo pipefail

STATE=${EVOSWEEP_SLURM_STATE:-/var/lib/evosweep-slurm}
GRACE=${EVOSWEEP_SLURM_STOP_GRACE:-20}

say() { printf '[stop-cluster] %s\n' "$*"; }

if [[ ! -d $STATE/pids ]]; then
    say "no PIDs recorded in $STATE/pids; nothing to stop"
    exit 0
fi

# name -> string its command line must contain (guards against PID reuse)
stop_one() {
    local name=$1 pattern=$2 pidfile=$STATE/pids/$1.pid pid deadline
    [[ -s $pidfile ]] || return 0
    pid=$(<"$pidfile")
    if [[ ! -r /proc/$pid/cmdline ]] || ! tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$pattern"; then
        say "$name (pid $pid) is not running"
        rm -f "$pidfile"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null
    deadline=$(($(date +%s) + GRACE))
    while kill -0 "$pid" 2>/dev/null; do
        # a zombie child of ours counts as gone
        [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]] && break
        if (($(date +%s) >= deadline)); then
            say "$name (pid $pid) ignored TERM for ${GRACE}s; sending KILL"
            kill -KILL "$pid" 2>/dev/null
            break
        fi
        sleep 0.2
    done
    rm -f "$pidfile"
    say "stopped $name (pid $pid)"
}

# Reverse start order: compute node, controller, accounting, database, munge.
stop_one slurmd slurmd
stop_one slurmctld slurmctld
stop_one slurmdbd slurmdbd
stop_one mariadb mariadbd
stop_one munged munged
say "done (state kept in $STATE)"
