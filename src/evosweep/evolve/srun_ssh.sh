#!/usr/bin/env bash
# ssh stand-in for SCOOP inside a Slurm allocation (python -m scoop --ssh-executable THIS).
# SCOOP calls: THIS [ssh options...] HOST COMMAND...; we run COMMAND as an srun step on HOST,
# so no sshd or keys are needed and Slurm accounts for (and cleans up) every worker.
set -euo pipefail
while [[ $# -gt 0 && $1 == -* ]]; do shift; done # ssh options: -tt, -x, -oKey=value
host=$1
shift
# The broker only routes messages: on the launcher's own node it runs as a plain child, as
# SCOOP's local broker would (SCOOP only calls it remote because getfqdn() differs from the
# Slurm node name), instead of a step that SCOOP has to kill at the end.
if [[ "$*" == *scoop.broker* && ($host == "$(hostname -s)" || $host == "$(hostname)") ]]; then
    exec bash -c "$*"
fi
# SCOOP's worker command launches N workers: give the step N CPUs of the allocation.
cpus=1
if [[ "$*" =~ scoop\.launch\.__main__[[:space:]]+([0-9]+) ]]; then
    cpus=${BASH_REMATCH[1]}
fi
exec srun --overlap --nodes=1 --ntasks=1 --cpus-per-task="$cpus" --nodelist="$host" \
    --job-name="scoop-$host" bash -c "$*"
