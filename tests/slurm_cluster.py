"""A single-node SLURM cluster on this machine, for tests: Debian's munged, slurmctld and slurmd
(``make slurm``), with every file they write in one directory and ports picked free, so that it
neither needs nor touches /etc/slurm and can run beside another copy of itself.

    with slurm_cluster(tmp_dir) as cluster:
        subprocess.run(["sbatch", ...], env=cluster.env)
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "sinfo", "scancel")
PARTITION = "debug"


class ClusterError(RuntimeError):
    pass


def which(name: str) -> str | None:
    # Debian puts the daemons in /usr/sbin, which not every PATH has
    return shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))


def unavailable() -> str | None:
    """Why no cluster can be started here (None: it can)."""
    if os.geteuid() != 0:
        return "not root: slurmd must run as root to start jobs (run the tests as root after `make slurm`)"
    missing = [b for b in DAEMONS + CLIENTS if which(b) is None]
    if missing:
        return f"{', '.join(missing)} not installed (`make slurm` installs Debian's slurm-wlm and munge)"
    return None


@dataclass
class SlurmCluster:
    dir: Path
    partition: str = PARTITION
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """The environment for clients (sbatch, squeue, submitit): this cluster's slurm.conf, and no
        SLURM_* variables of an outer job that would leak into the submitted ones."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_"))}
        env["SLURM_CONF"] = str(self.dir / "slurm.conf")
        return env

    def run(self, *cmd: str) -> str:
        done = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=30)
        return done.stdout + done.stderr

    def logs(self, lines: int = 25) -> str:
        """The last lines of the daemons' logs, for error messages: slurmctld.log, slurmd.log (with
        slurmstepd's), and what munged, or a daemon that died, printed (``<daemon>.out``)."""
        paths = sorted(self.dir.glob("*.log"))
        paths += [self.dir / f"{n}.out" for n, p in self.procs.items() if n == "munged" or p.poll() is not None]
        return "\n".join(f"--- {path}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
                         for path in paths)

    def start(self, name: str, *args: str) -> None:
        with open(self.dir / f"{name}.out", "ab") as out:
            self.procs[name] = subprocess.Popen([which(name), *args], stdout=out, stderr=subprocess.STDOUT,
                                                env=self.env, start_new_session=True)

    def wait_for(self, what: str, ready, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            dead = [f"{n} (exit {p.returncode})" for n, p in self.procs.items() if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                why = f"{', '.join(dead)} exited" if dead else f"not after {timeout:.0f} s"
                raise ClusterError(f"SLURM test cluster in {self.dir}: waiting for {what}: {why}\n{self.logs()}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.procs.get("slurmctld") and self.procs["slurmctld"].poll() is None:
            # the controller tells slurmd to kill what still runs; wait for it, or the job's
            # processes outlive the cluster
            self.run("scancel", "--user=root")
            deadline = time.monotonic() + 15
            while self.run("squeue", "-h", "-o", "%A").strip() and time.monotonic() < deadline:
                time.sleep(0.2)
        for name in reversed(DAEMONS):  # slurmd before the controller, munge (their auth) last
            proc = self.procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:  # all bound at once, so that the ports differ
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def slurm_conf(directory: Path, node: str) -> str:
    cpus = len(os.sched_getaffinity(0))
    # slurmd drains a node configured with more memory than it finds, and a job's --mem must fit in it
    with open("/proc/meminfo") as f:
        mem_mb = int(next(line for line in f if line.startswith("MemTotal")).split()[1]) // 1024
    ctld_port, slurmd_port = free_ports(2)
    d = directory
    return f"""\
ClusterName=probing-test
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={d}/munge.socket
SlurmUser=root
SlurmdUser=root
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
MailProg=/bin/true
# no cgroups: containers seldom let a daemon create them; linuxproc follows a job's processes
# through /proc instead, and nothing binds or limits a job's CPUs and memory
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# no slurmdbd, so no accounting: sacct fails and submitit sees a job end by its result file
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={int(mem_mb * 0.9)} State=UNKNOWN
PartitionName={PARTITION} Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""


@contextmanager
def slurm_cluster(directory: Path, timeout: float = 60) -> Iterator[SlurmCluster]:
    """Start munged, slurmctld and slurmd with their files in ``directory``; yield once ``sinfo``
    shows the node idle; cancel what is left in the queue and stop the daemons on the way out."""
    node = socket.gethostname().split(".")[0]
    # slurmd's step sockets (spool/<node>_<job>.<step>) are unix sockets: 107 bytes at most
    if len(f"{directory}/spool/{node}_12345678.4294967291") > 107:
        raise ClusterError(f"{directory}: too long a path for the daemons' sockets; use a shorter TMPDIR")
    directory.mkdir(parents=True, exist_ok=True)
    for sub in ("state", "spool"):
        (directory / sub).mkdir(exist_ok=True)
    (directory / "slurm.conf").write_text(slurm_conf(directory, node))
    key = directory / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    cluster = SlurmCluster(directory)
    try:
        # --force: munged checks the ownership and modes of every directory above its key and
        # socket, which are meant for /etc/munge and /run/munge, not a test's temporary directory
        cluster.start("munged", "-F", "--force", f"--key-file={key}", f"--socket={directory}/munge.socket",
                      f"--pid-file={directory}/munged.pid", f"--seed-file={directory}/munged.seed")
        cluster.wait_for("munged's socket", (directory / "munge.socket").exists, timeout)
        conf = str(directory / "slurm.conf")
        cluster.start("slurmctld", "-D", "-f", conf)
        cluster.start("slurmd", "-D", "-f", conf, "-N", node)
        cluster.wait_for(f"node {node} idle in sinfo",
                         lambda: cluster.run("sinfo", "-h", "-N", "-o", "%T").strip() == "idle", timeout)
        yield cluster
    finally:
        cluster.stop()
