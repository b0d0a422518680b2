#!/usr/bin/env bash
# Stop the Slurm test cluster started by tests/slurm/start-cluster.sh and remove its network.
#
# Jobs still in the partition are cancelled first. Then only the daemons whose PIDs that
# script recorded in $STATE/pids/ are signalled (TERM, poll until gone, then KILL), and
# whatever job processes are still inside a node's network namespace. Finally the node
# namespaces, their veths, the bridge and the tagged /etc/hosts lines are removed, so a
# later start begins from scratch. The state (accounting database, configs, logs) is kept,
# so that start is quick.
set -uo pipefail

# The settings start-cluster.sh recorded for the cluster of this state directory.
READ_INSTANCE_FILE=1
# shellcheck source=tests/slurm/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

say() { printf '[stop-cluster] %s\n' "$*"; }

[[ $(id -u) -eq 0 ]] || { say "must run as root"; exit 1; }
take_lock

# Cancel jobs while slurmctld can still end their steps on the nodes.
if [[ -d $STATE/pids ]] && alive slurmctld && squeue -h -p "$PARTITION" -o %i 2>/dev/null | grep -q .; then
    say "cancelling the jobs in partition $PARTITION"
    scancel -p "$PARTITION" 2>/dev/null
    deadline=$(($(date +%s) + GRACE))
    while squeue -h -p "$PARTITION" -o %i 2>/dev/null | grep -q .; do
        if (($(date +%s) >= deadline)); then
            say "jobs still listed after ${GRACE}s: $(squeue -h -p "$PARTITION" -o %i | xargs)"
            break
        fi
        sleep 0.2
    done
fi

if [[ -d $STATE/pids ]]; then
    for name in $(stop_order); do stop_one "$name"; done
else
    say "no PIDs recorded in $STATE/pids; no daemon to stop"
fi

for ns in $(our_netns); do
    # Job processes left behind by a stopped slurmd (slurmstepd and its tasks).
    mapfile -t pids < <(ip netns pids "$ns" 2>/dev/null)
    if ((${#pids[@]})); then
        say "ending processes left in $ns: ${pids[*]}"
        end_pids "${pids[@]}"
    fi
    ip netns del "$ns" && say "removed network namespace $ns"
done
for link in $(our_links); do
    ip link del "$link" 2>/dev/null && say "removed link $link"
done
if ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link del "$BRIDGE" && say "removed bridge $BRIDGE"
fi
if grep -q -- "$HOSTS_TAG\$" /etc/hosts; then
    remove_hosts_lines && say "removed the lines tagged '$HOSTS_TAG' from /etc/hosts"
fi
say "done (state kept in $STATE)"
