"""Helpers for tests that run on the local Slurm test cluster.

The cluster is started by ``tests/slurm/start-cluster.sh`` (root, Debian) and
stopped by ``tests/slurm/stop-cluster.sh``. Tests get it through the
session-scoped ``slurm_cluster`` fixture in ``tests/conftest.py``, which calls
:func:`ensure_cluster`.

The machine's root network namespace is the login node (slurmctld, slurmdbd, Snakemake);
the compute nodes :data:`NODES` each run slurmd in their own network namespace (on a bridge,
address :func:`node_address`) and UTS namespace. :func:`on_node` runs a command in a node's
network namespace, e.g. to reach or disturb a job there from outside Slurm.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import yaml

from helpers import slurm_snakemake
from helpers.waiting import wait_until

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
START_SCRIPT = TESTS / "slurm" / "start-cluster.sh"
STOP_SCRIPT = TESTS / "slurm" / "stop-cluster.sh"
PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
STATE = Path(os.environ.get("EVOSWEEP_SLURM_STATE", "/var/lib/evosweep-slurm"))

# The same names and defaults as tests/slurm/lib.sh; another cluster beside the default one
# (tests/slurm/wide.env) is reached with its variables, SLURM_CONF among them, exported.
NODE_PREFIX = os.environ.get("EVOSWEEP_SLURM_NODE_PREFIX", "node")
NODE_COUNT = int(os.environ.get("EVOSWEEP_SLURM_NODES", "3"))
NODES = [f"{NODE_PREFIX}{i}" for i in range(1, NODE_COUNT + 1)]
NET = os.environ.get("EVOSWEEP_SLURM_NET", "10.77.13")
LOGIN_ADDRESS = f"{NET}.1"
PARTITION = "debug"
ACCOUNT = os.environ.get("EVOSWEEP_SLURM_ACCOUNT", "evosweep")
NETNS_PREFIX = "evosweep-"
# "planned": kept free by the backfill scheduler for a pending job (another test's), and up.
USABLE_STATES = {"idle", "mixed", "allocated", "completing", "planned"}

SACCT_FIELDS = [
    "JobID",
    "JobName",
    "State",
    "NTasks",
    "AllocCPUS",
    "ReqMem",
    "Timelimit",
    "Partition",
    "Account",
    "Comment",
]


def _run(cmd: list[str], timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def node_states() -> dict[str, str]:
    """State of every node sinfo lists (a trailing "*" means it does not respond)."""
    proc = _run(["sinfo", "-h", "-N", "-o", "%N %T"], timeout=15)
    if proc.returncode != 0:
        raise RuntimeError(f"sinfo failed: {proc.stderr}")
    return dict(line.split() for line in proc.stdout.splitlines() if line.strip())


def cluster_is_up() -> bool:
    """True if slurmctld answers, every node of :data:`NODES` takes jobs and slurmdbd answers."""
    if not all(shutil.which(c) for c in ("scontrol", "sinfo", "sacct", "sbatch", "nsenter")):
        return False
    try:
        ping = _run(["scontrol", "ping"], timeout=15)
        if ping.returncode != 0 or "is UP" not in ping.stdout:
            return False
        states = node_states()
        if not all(states.get(node) in USABLE_STATES for node in NODES):
            return False
        if not all(Path(f"/run/netns/{NETNS_PREFIX}{node}").exists() for node in NODES):
            return False
        acct = _run(["sacctmgr", "-n", "-P", "show", "cluster", "format=cluster"], timeout=15)
        return acct.returncode == 0 and bool(acct.stdout.strip())
    except (subprocess.TimeoutExpired, OSError):
        return False


def can_start_cluster() -> tuple[bool, str]:
    """Whether this process may start the cluster itself, and if not why not."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return False, "the Slurm test cluster is not running and starting it needs root"
    if shutil.which("apt-get") is None and shutil.which("slurmctld") is None:
        return False, "the Slurm test cluster is not running and apt-get is not available"
    if not START_SCRIPT.exists():
        return False, f"{START_SCRIPT} is missing"
    return True, ""


def start_cluster(timeout: float = 600) -> subprocess.CompletedProcess:
    """Run tests/slurm/start-cluster.sh (idempotent)."""
    return subprocess.run(
        ["bash", str(START_SCRIPT)],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def ensure_cluster() -> tuple[bool, str]:
    """Make sure the cluster is up, starting it if allowed.

    Returns (ok, reason); reason explains a failure.
    """
    if cluster_is_up():
        return True, ""
    ok, reason = can_start_cluster()
    if not ok:
        return False, reason
    proc = start_cluster()
    if proc.returncode != 0 or not cluster_is_up():
        return False, (
            f"{START_SCRIPT.name} failed (exit {proc.returncode}):\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return True, ""


# ------------------------------------------------------------------ nodes
def hostnames(nodelist: str) -> list[str]:
    """Slurm's `node[1-3]` -> ['node1', 'node2', 'node3']."""
    command = ["scontrol", "show", "hostnames", nodelist]
    return subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=30
    ).stdout.split()


def node_address(node: str) -> str:
    """The node's address on the cluster bridge (its /etc/hosts line, as jobs resolve it)."""
    if node not in NODES:
        raise ValueError(f"{node!r} is not one of the test cluster's nodes {NODES}")
    return socket.gethostbyname(node)


def node_netns(node: str) -> Path:
    """The network namespace file of ``node`` (for ``nsenter --net=``)."""
    if node not in NODES:
        raise ValueError(f"{node!r} is not one of the test cluster's nodes {NODES}")
    return Path("/run/netns") / f"{NETNS_PREFIX}{node}"


def on_node_command(node: str, cmd: list[str]) -> list[str]:
    """``cmd`` prefixed so it runs in ``node``'s network namespace (for Popen).

    Only the network namespace is entered (``ip netns exec`` would also remount /sys);
    files, processes and the hostname are the login node's.
    """
    return ["nsenter", f"--net={node_netns(node)}", *cmd]


def on_node(
    node: str, cmd: list[str], timeout: float = 30, **kwargs
) -> subprocess.CompletedProcess:
    """Run ``cmd`` in ``node``'s network namespace; text output captured, no check."""
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    kwargs.setdefault("check", False)
    return subprocess.run(on_node_command(node, cmd), timeout=timeout, **kwargs)


def node_pids(node: str) -> list[int]:
    """PIDs of the processes in ``node``'s network namespace: its slurmd and the job
    processes (slurmstepd and tasks) on that node."""
    proc = _run(["ip", "netns", "pids", node_netns(node).name], timeout=15)
    if proc.returncode != 0:
        raise RuntimeError(f"ip netns pids {node_netns(node).name} failed: {proc.stderr}")
    return [int(pid) for pid in proc.stdout.split()]


def slurmd_pid(node: str) -> int:
    """PID of ``node``'s slurmd, as start-cluster.sh recorded it."""
    return int((STATE / "pids" / f"slurmd-{node}.pid").read_text())


def sacct(
    jobids: str | int | list[str | int] | None = None,
    fields: list[str] | None = None,
    allocations: bool = False,
    extra: list[str] | None = None,
) -> list[dict[str, str]]:
    """Run sacct and return one dict per line (job or step) keyed by field name.

    ``allocations=True`` adds ``-X`` (one line per job, no steps).
    """
    fields = fields or SACCT_FIELDS
    cmd = ["sacct", "--parsable2", "--noheader", "-o", ",".join(fields)]
    if allocations:
        cmd.append("-X")
    if jobids is None:
        cmd += ["-a", "-S", "now-1days"]
    else:
        if not isinstance(jobids, list):
            jobids = [jobids]
        cmd += ["-j", ",".join(str(j) for j in jobids)]
    cmd += extra or []
    proc = _run(cmd)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr}")
    rows = []
    for line in proc.stdout.splitlines():
        if not line.strip():
            continue
        values = line.split("|", len(fields) - 1)
        rows.append(dict(zip(fields, values, strict=True)))
    return rows


def jobs_by_name(name: str, since: str = "now-1days") -> list[dict[str, str]]:
    """Jobs (allocations) of any user whose JobName is ``name`` (the plugin's run UUID)."""
    rows = sacct(allocations=True, extra=["--name", name, "-a", "-S", since])
    return [r for r in rows if r["JobName"] == name]


def jobs_by_comment(prefix: str, **kwargs) -> list[dict[str, str]]:
    """Jobs whose Comment starts with ``prefix``.

    The Snakemake slurm plugin sets the comment to ``rule_<rule>`` or
    ``rule_<rule>_wildcards_<values>``; use :func:`rule_comment_prefix`.
    """
    return [r for r in sacct(allocations=True, **kwargs) if r["Comment"].startswith(prefix)]


def rule_comment_prefix(rule: str) -> str:
    return f"rule_{rule}"


def jobs_for_rule(rule: str, **kwargs) -> list[dict[str, str]]:
    """Jobs the plugin submitted for ``rule`` (comment ``rule_<rule>[_wildcards_...]``)."""
    exact = rule_comment_prefix(rule)
    return [
        r
        for r in jobs_by_comment(exact, **kwargs)
        if r["Comment"] == exact or r["Comment"].startswith(exact + "_wildcards_")
    ]


def wait_for_sacct(predicate, timeout: float = 30, interval: float = 0.5, query=None, **kwargs):
    """Poll ``query(**kwargs)`` (default :func:`sacct`) until ``predicate(rows)``; return rows."""
    query = query or sacct
    rows = []

    def satisfied() -> bool:
        nonlocal rows
        rows = query(**kwargs)
        return predicate(rows)

    wait_until(satisfied, timeout, interval)
    return rows


# ----------------------------------------------------------------- profile
def load_profile(path: Path = PROFILE) -> dict:
    with open(path) as fh:
        return yaml.safe_load(fh)


def rule_resources(rule: str, path: Path = PROFILE) -> dict:
    """default-resources updated by set-resources[rule], as written in the profile."""
    profile = load_profile(path)
    res = dict(profile.get("default-resources") or {})
    res.update((profile.get("set-resources") or {}).get(rule) or {})
    return res


def mem_mb(value) -> int:
    """Megabytes Snakemake makes of a profile memory value ("2G" -> 2000)."""
    from snakemake.resources import Resource

    return int(Resource.parse_human_friendly("mem", value))


def runtime_minutes(value) -> int:
    """Minutes Snakemake makes of a profile runtime value ("30m" -> 30)."""
    from snakemake.resources import Resource

    return int(Resource.parse_human_friendly("runtime", value))


def slurm_timelimit(minutes: int) -> str:
    """The sacct Timelimit string for a limit in minutes ([D-]HH:MM:SS)."""
    days, rest = divmod(int(minutes), 24 * 60)
    hours, mins = divmod(rest, 60)
    text = f"{hours:02d}:{mins:02d}:00"
    return f"{days}-{text}" if days else text


def expected_sacct(rule: str, path: Path = PROFILE) -> dict[str, str]:
    """What sacct -X should show for a job of ``rule`` submitted with the profile."""
    res = rule_resources(rule, path)
    tasks = int(res.get("tasks", 1))
    cpus = int(res.get("cpus_per_task", 1))
    mem = res.get("mem", res.get("mem_mb"))
    out = {
        "Partition": str(res["slurm_partition"]),
        "Account": str(res["slurm_account"]),
        "AllocCPUS": str(tasks * cpus),
        "Timelimit": slurm_timelimit(runtime_minutes(res["runtime"])),
    }
    if mem is not None:
        out["ReqMem"] = f"{mem_mb(mem)}M"
    return out


def derived_profile(directory: Path, set_resources: dict[str, dict], path: Path = PROFILE) -> Path:
    """A copy of profiles/slurm in ``directory`` whose set-resources are updated per rule,
    e.g. ``{"evolve": {"nodes": 2}}`` to spread a rule's tasks over two nodes."""
    profile = load_profile(path)
    rules = profile.setdefault("set-resources", {})
    for rule, resources in set_resources.items():
        rules[rule] = {**(rules.get(rule) or {}), **resources}
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return directory


def run_on_slurm(
    workdir: Path,
    config: dict,
    target: str,
    timeout: float = 900,
    set_resources: dict[str, dict] | None = None,
):
    """Run `target` through profiles/slurm; return (output, run ID the plugin names jobs by).

    ``set_resources`` runs it through a :func:`derived_profile` instead (in workdir).
    """
    import re

    from helpers.workflow_runner import snakemake

    profile = REPO / "profiles" / "slurm"
    if set_resources:
        profile = derived_profile(Path(workdir) / ".slurm-profile", set_resources)
    # The profile polls Slurm at a rate sites accept (every 40 s or more); tests poll faster.
    result = snakemake(
        workdir,
        config,
        "--profile",
        str(profile),
        *slurm_snakemake.FAST_POLLING,
        target,
        timeout=timeout,
        program=slurm_snakemake.COMMAND,
    )
    output = result.stdout + result.stderr
    match = re.search(r"SLURM run ID: ([0-9a-f-]{36})", output)
    assert match, f"no 'SLURM run ID' in snakemake output:\n{output[-4000:]}"
    return output, match.group(1)
