"""What happens to the processes a job starts, in one place: the ground floor every stage uses.

- `signals`: SIGTERM (a time limit, a cancel), SIGINT and SIGUSR1 (a warning) become one
  exception, `Interrupted` (exit status 128 + signal), so `finally` blocks stop what was started.
  No other module installs a signal handler.
- `lifetime`: a process dies with its parent (the parent-death signal) or with the owner it
  watches (a pidfd), SIGKILL of the owner included. No other module calls prctl.
- `snakemake`: a rule's process stops when a Snakemake ancestor ends (the lifeline), with the one
  test of what a Snakemake process is; `stalelock` removes the lock a killed Snakemake left.
- `rundirs`: private run directories (0700, keys and logs) with an owner record, removed by the
  next run once their owner is gone.
- `addresses`: what a listener binds: loopback on one host, the node's cluster address in a
  Slurm job spanning nodes; never a wildcard. `slurm`: the few questions asked of Slurm.
"""
