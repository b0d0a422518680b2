"""SCOOP runs started by scoop_launcher, on real processes: every listener on the one address it
was given, CURVE on every port (a crafted pickle executes nothing, from this namespace or from
another one), no process left after the launcher is SIGKILLed, and the result of a serial run.

A run is held mid-way without a clock: its stderr pipe is shrunk to one page and the test stops
taking its lines after the first progress line, so the origin blocks on its next line (its zmq I/O
thread keeps answering handshakes) until the test reads again.
"""

from __future__ import annotations

import fcntl
import json
import os
import pickle
import select
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import zmq
import zmq.auth
from zmq.utils.monitor import recv_monitor_message

from evosweep.evolve import scoop_launcher, scoop_secure
from evosweep.evolve.__main__ import WARM_LINE
from evosweep.evolve.scoop_launcher import ScoopLaunchError, ScoopRun
from evosweep.runtime import rundirs
from evosweep.runtime.addresses import LOOPBACK
from helpers import attacks
from helpers.attacks import (
    ENV,
    HANDSHAKE_END,
    PROBLEM,
    SCOOP_SLURM_LAUNCHER,
    SLURM_PROBLEM,
    assert_rejected,
    attack,
    attack_from,
    bound_host,
    comparable,
    handshake,
    listeners,
    network_namespace,
    payload_frames,
    processes_mentioning,
    tree,
    write_run,
)
from helpers.waiting import wait_until

# Bounds on waits for events that should come much sooner; reaching one fails the test.
EVENT_SECONDS = 60
ORPHAN_SECONDS = 60
PIPE_PAGE = 4096
# A private subnet for this test process's own namespace (other tests and the Slurm test
# cluster use 10.77.x and 10.78.x): one per process, so concurrent sessions never share one.
SUBNET = f"10.79.{os.getpid() % 250 + 1}"
ROOT_ADDRESS = f"{SUBNET}.1"  # this side of the veth pair (network_namespace)


# ----------------------------------------------------------------------------- runs


@pytest.fixture(scope="module")
def serial_result(tmp_path_factory) -> dict:
    return attacks.serial_result(tmp_path_factory.mktemp("serial"))


def held_run(tmp_path: Path, **options) -> tuple[ScoopRun, object, Path]:
    """A started run held at its first progress line (see the module's docstring)."""
    program, result = write_run(tmp_path / "run")
    run = ScoopRun(program, 2, env=ENV, runtime_root=tmp_path / "runtime", **options)
    run.start()
    shrink_stderr_pipe(run.origin.pid)
    lines = run.lines()
    seen = []
    for line in lines:
        seen.append(line)
        if line.startswith("generation "):
            break
    else:
        raise AssertionError("the run ended before its first generation:\n" + "\n".join(seen))
    return run, lines, result


def shrink_stderr_pipe(pid: int) -> None:
    """The stderr pipe that `pid` shares with every process of its run, down to one page."""
    with open(f"/proc/{pid}/fd/2", "wb") as stderr:
        fcntl.fcntl(stderr, fcntl.F_SETPIPE_SZ, PIPE_PAGE)


def finish(run: ScoopRun, lines) -> list[str]:
    rest = list(lines)
    assert run.wait() == 0, "\n".join(rest)
    return rest


def run_processes(run: ScoopRun) -> list[psutil.Process]:
    return [p for process in run.processes for p in tree(process.pid)]


def wait_for_listeners(run: ScoopRun) -> dict[int, list[tuple[str, int]]]:
    """Once the broker has its two sockets and every worker its direct socket."""
    wanted = {run.broker.pid: 2, run.origin.pid: 1, **{w.pid: 1 for w in run.workers_here}}

    def complete() -> dict | None:
        found = listeners(run_processes(run))
        return found if all(len(found.get(p, [])) >= n for p, n in wanted.items()) else None

    found = wait_until(complete, EVENT_SECONDS)
    assert found, f"listeners never all appeared: {listeners(run_processes(run))}"
    return found


# -------------------------------------------------------------------------- attacker


NETNS_PREFIX = "evosweep-scoop-"


@pytest.fixture(scope="module")
def netns():
    """A network namespace joined to this one by a veth pair on a private /24; removed after."""
    with network_namespace(NETNS_PREFIX, SUBNET) as name:
        yield name


# ---------------------------------------------------------------------------- tests


def test_run_equals_a_serial_run_and_leaves_nothing(tmp_path, serial_result):
    program, result = write_run(tmp_path / "run")
    with ScoopRun(program, 2, env=ENV, runtime_root=tmp_path / "runtime") as run:
        processes = run_processes(run)
        lines = list(run.lines())
        assert run.wait() == 0, "\n".join(lines)
    assert comparable(result) == serial_result
    assert pickle.loads(result.read_bytes()).worker_tasks == PROBLEM["generations"] * 4
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in processes)
    assert list((tmp_path / "runtime").iterdir()) == []  # the run's key directory is gone


def test_a_run_is_supervised_without_anyone_reading_its_lines(tmp_path, serial_result):
    """With `on_line`, nobody iterates lines(): the run's threads still tell the origin that the
    workers are ready, end the run once the origin is done, and hand on every line."""
    program, result = write_run(tmp_path / "run")
    seen = []
    runtime = tmp_path / "runtime"
    with ScoopRun(program, 2, env=ENV, runtime_root=runtime, on_line=seen.append) as run:
        assert run.wait() == 0, "\n".join(seen)
    assert sum("all 2 SCOOP workers ready" in line for line in seen) == 1, seen
    assert any(line.startswith("generation ") for line in seen)
    assert comparable(result) == serial_result
    assert list(runtime.iterdir()) == []


def test_the_origin_starts_its_generations_once_every_worker_is_warm(tmp_path):
    program, result = write_run(tmp_path / "run", workers=3)
    with ScoopRun(program, 3, env=ENV, runtime_root=tmp_path / "runtime") as run:
        lines = list(run.lines())
        assert run.wait() == 0, "\n".join(lines)

    def where(prefix: str) -> dict[str, int]:
        """Line numbers of the lines starting with `prefix`, by the pid at their end."""
        return {line.rsplit("pid ", 1)[1]: n for n, line in enumerate(lines) if prefix in line}

    warm, ready = where(WARM_LINE), where(scoop_secure.READY_LINE)
    everyone = [n for n, line in enumerate(lines) if "all 3 SCOOP workers ready" in line]
    first_generation = next(n for n, line in enumerate(lines) if line.startswith("generation "))
    # Each of the two other workers built its objective, then said it took tasks; the origin
    # heard of both before its first generation.
    assert set(warm) == set(ready) and len(ready) == 2, "\n".join(lines)
    assert all(warm[pid] < ready[pid] for pid in ready)
    assert len(everyone) == 1 and max(ready.values()) < everyone[0] < first_generation
    assert pickle.loads(result.read_bytes()).workers == 3


def test_a_worker_that_dies_at_start_does_not_hold_the_origin(tmp_path):
    program = tmp_path / "program.py"
    program.write_text(
        "import os, sys\n"
        "if __name__ == 'SCOOP_WORKER':\n"
        "    os._exit(3)\n"
        "if __name__ == '__main__':\n"
        "    from evosweep.evolve import scoop_secure\n"
        f"    ready = scoop_secure.wait_for_workers({EVENT_SECONDS})\n"
        "    print('workers ready:', ready, file=sys.stderr, flush=True)\n"
    )
    with ScoopRun([str(program)], 2, env=ENV, runtime_root=tmp_path / "runtime") as run:
        lines = list(run.lines())
    # Told at once that a worker left (a lost release would be a TimeoutError here instead).
    assert "workers ready: False" in lines, "\n".join(lines)


@pytest.mark.parametrize("bound", ["loopback", "veth"])
def test_listeners_are_narrow_and_refuse_peers_without_the_key(
    bound, tmp_path, netns, serial_result
):
    """The run binds loopback (a laptop) or the veth's root-side address (standing in for the
    batch node's cluster address). From where the ports are reachable, every handshake without
    the run's key fails and the payload never runs; from elsewhere nothing answers."""
    address = LOOPBACK if bound == "loopback" else ROOT_ADDRESS
    marker = tmp_path / "marker"
    run, lines, result = held_run(tmp_path, address=address)
    try:
        found = wait_for_listeners(run)
        bound_to = {bound_host(ip) for ports in found.values() for ip, _ in ports}
        assert bound_to == {address}, found  # one address, never a wildcard
        ports = sorted(port for ports in found.values() for _, port in ports)

        keys = run.run_dir
        assert keys.stat().st_mode & 0o777 == 0o700
        for name in (scoop_secure.PUBLIC_KEY, scoop_secure.SECRET_KEY):
            assert (keys / name).stat().st_mode & 0o777 == 0o600
        public, secret = zmq.auth.load_certificate(keys / scoop_secure.SECRET_KEY)
        for process in run_processes(run):
            assert secret.decode() not in " ".join(process.cmdline())
            assert not any(secret.decode() in value for value in process.environ().values())

        if bound == "loopback":
            assert_rejected(attack([(address, p) for p in ports], marker, public))
            unreachable = attack_from(netns, [(ROOT_ADDRESS, p) for p in ports], marker, public)
        else:
            assert_rejected(attack_from(netns, [(address, p) for p in ports], marker, public))
            unreachable = attack([(LOOPBACK, p) for p in ports], marker, public)
        assert all(result == {"tcp": "refused"} for result in unreachable.values()), unreachable

        assert all(process.poll() is None for process in run.processes)
        finish(run, lines)
    finally:
        run.stop()
    assert not marker.exists()
    assert comparable(result) == serial_result
    assert pickle.loads(result.read_bytes()).worker_tasks > 0


def test_without_curve_the_same_payload_runs(tmp_path):
    """The control: the attack is real. With CURVE off (narrow binds only), it gets through."""
    marker = tmp_path / "marker"
    run, lines, _ = held_run(tmp_path, protect=False)
    try:
        deadline = time.monotonic() + EVENT_SECONDS
        frames = payload_frames(marker)
        outcome = handshake(run.address, run.ports[0], zmq.DEALER, None, frames, deadline)
        assert outcome == "HANDSHAKE_SUCCEEDED"
        assert wait_until(marker.exists, EVENT_SECONDS)
    finally:
        run.stop()


def test_a_key_holder_is_admitted(tmp_path):
    """The control of the rejections: the same client with the run's own key pair completes the
    handshake with the broker (and sends nothing)."""
    run, lines, _ = held_run(tmp_path)
    try:
        context = zmq.Context.instance()
        dealer = context.socket(zmq.DEALER)
        dealer.linger = 0
        public, secret = zmq.auth.load_certificate(run.run_dir / scoop_secure.SECRET_KEY)
        dealer.curve_publickey, dealer.curve_secretkey, dealer.curve_serverkey = (
            public,
            secret,
            public,
        )
        monitor = dealer.get_monitor_socket()
        dealer.connect(f"tcp://{run.address}:{run.ports[0]}")
        event = None
        while monitor.poll(EVENT_SECONDS * 1000):
            event = recv_monitor_message(monitor)["event"]
            if event & HANDSHAKE_END:
                break
        dealer.disable_monitor()
        monitor.close()
        dealer.close()
        assert event == zmq.EVENT_HANDSHAKE_SUCCEEDED
        finish(run, lines)
    finally:
        run.stop()


IN_PROCESS_LAUNCHER = """
import sys
from pathlib import Path
from evosweep.evolve.scoop_launcher import ScoopRun
with ScoopRun(sys.argv[2:], 2, runtime_root=Path(sys.argv[1])) as run:
    for line in run.lines():
        print(line, flush=True)
"""
# A rule's process running the CLI launcher, as evolve/launch.py does.
CLI_PARENT = """
import os, subprocess, sys
command = [sys.executable, "-m", "evosweep.evolve.scoop_launcher", "-n", "2",
           "--parent", str(os.getpid()), "--runtime-root", sys.argv[1], "--", *sys.argv[2:]]
sys.exit(subprocess.run(command, stderr=sys.stdout).returncode)
"""


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    living = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                living.append(process)
        except psutil.NoSuchProcess:
            pass
    return living


@pytest.mark.parametrize("launcher", ["in-process", "cli-under-a-parent"])
def test_sigkill_of_the_launching_process_leaves_no_process(launcher, tmp_path):
    """SIGKILL the process that launched the run, mid-run (its origin stopped, so the run
    cannot end by itself): every process of the run is gone within ORPHAN_SECONDS."""
    program, _ = write_run(tmp_path / "run")
    runtime = tmp_path / "runtime"
    code = IN_PROCESS_LAUNCHER if launcher == "in-process" else CLI_PARENT
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(runtime), *program],
        env=ENV,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        for line in process.stdout:
            if line.startswith("generation "):
                break
        else:
            raise AssertionError("the run ended before its first generation")
        run = tree(process.pid)[1:]
        origin = [p for p in run if "--origin" in p.cmdline()]
        assert len(origin) == 1 and len(alive(run)) >= 3, run
        origin[0].suspend()  # SIGSTOP: the run cannot finish on its own now
        assert len(list(runtime.glob("run-*"))) == 1
        process.kill()
        process.wait()
        wait_until(lambda: not alive(run), ORPHAN_SECONDS, 0.1)
        assert alive(run) == []
    finally:
        if process.poll() is None:
            process.kill()
        process.stdout.close()
    if launcher == "in-process":
        # Nobody was left to remove the key directory: the next run removes it.
        (stale,) = runtime.glob("run-*")
        assert rundirs.is_stale(stale)
        shutil.rmtree(rundirs.create(runtime, scoop_launcher.RUN_PREFIX))
    assert list(runtime.glob("run-*")) == []


def test_a_worker_on_another_node_leaves_when_the_broker_is_gone(tmp_path):
    """A worker started with --watch (as srun starts them) and no parent to die with exits by
    itself once its broker's port stops answering."""
    script = tmp_path / "idle.py"
    script.write_text("")
    broker = subprocess.Popen(
        [sys.executable, "-m", scoop_launcher.SECURE_MODULE, "broker", "--address", "127.0.0.1"],
        env=ENV,
        stdout=subprocess.PIPE,
        text=True,
    )
    task_port, info_port = broker.stdout.readline().strip().split(",")
    worker = subprocess.Popen(
        [
            *(sys.executable, "-m", scoop_launcher.SECURE_MODULE, "worker"),
            *("--watch", f"127.0.0.1:{task_port}", "--"),
            *("--size", "2", "--workingDirectory", str(tmp_path)),
            *("--brokerHostname", "127.0.0.1", "--externalBrokerHostname", "127.0.0.1"),
            *("--taskPort", task_port, "--metaPort", info_port, str(script)),
        ],
        env=ENV,
        stdin=subprocess.PIPE,  # as srun gives it: the run's end closes it
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for_listener_of(worker.pid)
        broker.kill()
        broker.wait()
        assert worker.wait(timeout=ORPHAN_SECONDS) == scoop_secure.WATCHDOG_EXIT
        assert "broker 127.0.0.1" in worker.stderr.read()
    finally:
        for process in (broker, worker):
            if process.poll() is None:
                process.kill()
                process.wait()


def wait_for_listener_of(pid: int) -> bool:
    return bool(wait_until(lambda: listeners([psutil.Process(pid)])[pid], EVENT_SECONDS))


def test_wildcards_are_refused():
    with pytest.raises(ScoopLaunchError, match="wildcard"):
        ScoopRun(["x.py"], 2, address="0.0.0.0")
    guard = scoop_secure.Guard(host="127.0.0.1")
    assert guard.endpoint("tcp://*:5555") == "tcp://127.0.0.1:5555"
    assert guard.endpoint("tcp://10.1.2.3:*") == "tcp://10.1.2.3:*"
    for endpoint in ("tcp://0.0.0.0:1", "tcp://[::]:1", "ipc:///tmp/x"):
        with pytest.raises(scoop_secure.WildcardBind):
            scoop_secure.Guard(host="::").endpoint(endpoint)


def test_stale_run_directories_are_recognised(tmp_path):
    """A directory whose owner process is gone (or is another process under a reused PID) is
    stale; one whose owner lives is not."""
    mine = rundirs.create(tmp_path, scoop_launcher.RUN_PREFIX)
    record = json.loads((mine / rundirs.OWNER_FILE).read_text())
    assert record["pid"] == os.getpid() and not rundirs.is_stale(mine)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    for pid, start in ((gone.pid, record["start"]), (os.getpid(), record["start"] + 1)):
        other = tmp_path / f"{scoop_launcher.RUN_PREFIX}{pid}-{start}"
        other.mkdir(mode=0o700)
        owner = {"host": socket.gethostname(), "pid": pid, "start": start, "job": None}
        (other / rundirs.OWNER_FILE).write_text(json.dumps(owner))
        assert rundirs.is_stale(other)
    removed = rundirs.remove_stale(tmp_path, scoop_launcher.RUN_PREFIX)
    assert len(removed) == 2 and mine.exists()
    shutil.rmtree(mine)


# ------------------------------------------------------------------- Slurm (multi-node)

# The batch script starts the launcher, then holds the allocation until the test releases it:
# the test, not the end of the job, must be what ends the run's processes.
SLURM_JOB = """#!/bin/bash
"{python}" -c '{code}' "{runtime}" {program} > "{out}" 2>&1 &
echo $! > "{pid}"
read -r _ < "{release}"
"""


@pytest.mark.slurm
@pytest.mark.parametrize("kill", ["launcher", "launcher-and-srun"])
def test_sigkill_inside_a_slurm_job_leaves_no_process_on_any_node(kill, tmp_path):
    """A 2-node job: the launcher on the batch node is SIGKILLed mid-run (with its srun
    client, for the second case: then only the remote worker's broker watch is left to end
    it). Every process of the run, on both nodes, is gone within ORPHAN_SECONDS."""
    from helpers import slurm_cluster

    if not slurm_cluster.cluster_is_up():
        pytest.skip("the Slurm test cluster is not up (tests/slurm/start-cluster.sh)")
    program, _ = write_run(tmp_path / "run", problem=SLURM_PROBLEM)
    runtime, out, pid_file, release = (
        tmp_path / "runtime",
        tmp_path / "launcher.out",
        tmp_path / "launcher.pid",
        tmp_path / "release",
    )
    os.mkfifo(release)
    os.mkfifo(out)
    # Read-write: opening never waits for the job, and reads wait for its lines.
    reader = os.open(out, os.O_RDWR)
    fcntl.fcntl(reader, fcntl.F_SETPIPE_SZ, PIPE_PAGE)
    script = tmp_path / "job.sh"
    script.write_text(
        SLURM_JOB.format(
            python=sys.executable,
            code=SCOOP_SLURM_LAUNCHER.replace("'", '"'),
            runtime=runtime,
            program=" ".join(f'"{part}"' for part in program),
            out=out,
            pid=pid_file,
            release=release,
        )
    )
    submitted = subprocess.run(
        [
            *("sbatch", "--parsable", "-A", slurm_cluster.ACCOUNT, "-p", slurm_cluster.PARTITION),
            *("-N", "2", "-n", "2", "--ntasks-per-node=1", "-t", "5"),
            *("-o", str(tmp_path / "job.out"), "-D", str(tmp_path), str(script)),
        ],
        env=ENV,
        capture_output=True,
        text=True,
        check=True,
    )
    job = submitted.stdout.strip().split(";")[0]
    try:
        text = b""
        while b"\ngeneration " not in text:
            ready, _, _ = select.select([reader], [], [], 5 * EVENT_SECONDS)
            assert ready, f"no generation line from the job:\n{text.decode()}"
            text += os.read(reader, PIPE_PAGE)
        run = processes_mentioning(str(runtime))
        origin = [p for p in run if "--origin" in p.cmdline()]
        remote = [p for p in run if "--watch" in p.cmdline() and "srun" not in p.cmdline()[0]]
        assert len(origin) == 1 and remote, [p.cmdline() for p in run]
        origin[0].suspend()  # the run cannot end by itself now
        launcher = psutil.Process(int(pid_file.read_text()))
        if kill == "launcher-and-srun":
            for process in run:
                if os.path.basename(process.cmdline()[0]) == "srun":
                    process.kill()
        launcher.kill()
        wait_until(lambda: not processes_mentioning(str(runtime)), ORPHAN_SECONDS, 0.2)
        left = processes_mentioning(str(runtime))
        assert left == [], [p.cmdline() for p in left]
    finally:
        try:  # the batch script reads the FIFO; no reader means the job is gone already
            writer = os.open(release, os.O_WRONLY | os.O_NONBLOCK)
            os.write(writer, b"done\n")
            os.close(writer)
        except OSError:
            pass
        subprocess.run(["scancel", job], capture_output=True)
        os.close(reader)
