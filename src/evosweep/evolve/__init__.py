"""Evolution stage: DEAP algorithms whose fitness evaluations run on SCOOP workers.

Public API (the search stage's evolutionary strategy uses it): `spec.build_run` makes a
RunSpec, `launch.launch` runs it and returns a RunResult, `outputs` writes a logbook.

Modules: `stage` (config checks; run one `evolve.problems` entry and write its outputs),
`spec` (RunSpec / RunResult: what crosses into the SCOOP origin and back), `launch` (the parent
side: start SCOOP, stream its log, read the result), `generations` (the loop in the origin, with
checkpoints), `__main__` (the origin's entry point), `problems` (objectives), `algorithms`
(CMA-ES, GA, NSGA-II), `parallel` (map backends with chunked dispatch), `cache` (fitness cache
keyed by genome), `checkpoint` (atomic resumable state), `outputs` (logbook, best, plots).
"""
