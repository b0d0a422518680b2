"""No-op dry run of the default pipeline vs a one-rule Snakefile, measured side by side.

Goal (issue 5): `snakemake -n` on an up-to-date default pipeline costs at most 1.5x the dry run
of a one-rule Snakefile. Run `make run` first so the pipeline is up to date.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
ROUNDS = 5

ONE_RULE = """
rule one:
    output:
        "done.txt",
    shell:
        "touch {output}"
"""


def timed(command, cwd) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"dry run failed: {' '.join(command)}\n{result.stderr[-2000:]}")
    return elapsed


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        Path(scratch, "Snakefile").write_text(ONE_RULE)
        Path(scratch, "done.txt").touch()
        # Targets come first: `--quiet` takes optional values and would swallow them.
        pipeline = [SNAKEMAKE, "all", "-n", "--quiet"]
        one_rule = [SNAKEMAKE, "one", "-n", "--quiet"]
        status = subprocess.run(pipeline, cwd=REPO, capture_output=True, text=True)
        if "Nothing to be done" not in status.stdout + status.stderr:
            print("note: the default pipeline is not up to date; run `make run` first")
        timed(pipeline, REPO), timed(one_rule, scratch)  # warm the file cache
        pipeline_times, one_rule_times = [], []
        for _ in range(ROUNDS):  # interleaved, so machine noise hits both alike
            pipeline_times.append(timed(pipeline, REPO))
            one_rule_times.append(timed(one_rule, scratch))
    pipeline_median = statistics.median(pipeline_times)
    one_rule_median = statistics.median(one_rule_times)
    ratio = pipeline_median / one_rule_median
    print(f"no-op dry run, median of {ROUNDS} interleaved rounds")
    print(f"  default pipeline : {pipeline_median:.2f} s")
    print(f"  one-rule workflow: {one_rule_median:.2f} s")
    print(f"  ratio            : {ratio:.2f}x (goal <= 1.5x) {'OK' if ratio <= 1.5 else 'MISSED'}")


if __name__ == "__main__":
    main()
