"""What the tests share: the workflow runner, the Slurm test cluster, the browser checker, the
attacker, faulty estimators and engines, and waiting for events."""
