"""evosweep: parallel hyper-parameter search and evolutionary optimisation on Slurm."""

__version__ = "0.1.0"
