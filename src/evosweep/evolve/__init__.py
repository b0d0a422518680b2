"""Evolution stage: DEAP algorithms whose fitness evaluations run on SCOOP workers.

Modules: `problems` (objectives), `algorithms` (CMA-ES, GA, NSGA-II), `parallel` (map backends
with chunked dispatch), `cache` (fitness cache keyed by genome), `checkpoint` (atomic resumable
state), `runner` (run a problem, write its outputs, launch SCOOP), `__main__` (SCOOP entry point).
"""
