"""A worker's sandbox: no network, no view of the instructor's files.

bubblewrap (``bwrap``, Debian's ``bubblewrap`` package) builds the sandbox; it is the tool
Flatpak uses for exactly this and works as root and, through user namespaces, without it. We
only choose what the sandbox sees:

* the whole file system read-only, with fresh, empty ``/tmp``, ``/dev/shm`` and home;
* the instructor's workspace (gradebook, other submissions, results), the course repository
  (solutions, tests and the answer corpus, git history) and the caller's home hidden behind
  empty tmpfs mounts; only the Python environment and the course's helper package are mounted
  back, read-only;
* one writable folder: the worker's spool (``grader.forkserver``);
* new user (``nobody``), network (loopback only), PID and IPC namespaces; every process in it
  dies with the sandbox.

Inside, ``grader.zygote`` gives every notebook namespaces of its own (private ``/tmp``, only its
own job folder, its own PID namespace killed at the end), so that nothing one submission starts
can outlive it or reach the next one in the same worker. ``run`` starts a one-off command in such
a sandbox (used to check that a Dask worker can make one).

Resource limits: an address-space cap (RLIMIT_AS) set before ``bwrap`` starts, inherited by
every process inside; wall-clock limits are enforced by the zygote (per notebook) and here.
"""

import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import coursekit

INSIDE = Path("/tmp/submission")  # where the submission's folder appears inside the sandbox


class SandboxUnavailable(RuntimeError):
    pass


@dataclass
class Limits:
    wall_seconds: float = 300.0      # the whole notebook, kernel start included
    cell_seconds: float = 60.0       # one cell
    memory_mib: int = 4096           # address space: TensorFlow alone maps ~2.2 GiB
    max_output_bytes: int = 20 * 2**20


@dataclass
class SandboxResult:
    returncode: int
    seconds: float
    timed_out: bool
    stderr: str


def bwrap_path():
    path = shutil.which("bwrap")
    if path is None:
        raise SandboxUnavailable(
            "bubblewrap (bwrap) is not installed; it isolates each submission. "
            "Install it with `apt-get install bubblewrap` (./run does this for you).")
    return path


def check_namespaces(hidden=()):
    """Fail early, with the reason, when bubblewrap cannot make a worker sandbox here or the worker
    cannot give each notebook namespaces of its own (``grader.zygote``)."""
    import tempfile

    folder = tempfile.mkdtemp(prefix="grader-check-")
    try:
        result = run(folder, [sys.executable, "-m", "grader.zygote", "--check"], Limits(wall_seconds=60), hidden)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        raise SandboxUnavailable(
            f"cannot isolate notebooks on this machine ({lines[-1] if lines else f'exit code {result.returncode}'}); "
            "bubblewrap and nested user namespaces are needed (sysctl user.max_user_namespaces > 0).")


def _hidden_paths(extra_hidden):
    course_repo = Path(coursekit.__file__).resolve().parents[2]
    hidden = {course_repo, Path.home().resolve(), *map(lambda p: Path(p).resolve(), extra_hidden)}
    return sorted(hidden, key=lambda p: len(p.parts))


def _visible_again():
    """Read-only paths the kernel needs even when they sit under a hidden folder."""
    paths = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(),
             Path(coursekit.__file__).resolve().parent,  # the exercises import coursekit.grading
             Path(__file__).resolve().parent}            # grader.execute_worker (no answers in it)
    python = Path(sys.executable).resolve()
    paths.add(python.parent.parent)  # the base interpreter's prefix (e.g. a pyenv version)
    return sorted(paths, key=lambda p: len(p.parts))


def command(folder, argv, hidden=(), inside=INSIDE):
    """The bwrap command line that runs ``argv`` inside a sandbox around ``folder`` (seen at ``inside``)."""
    cmd = [bwrap_path(), "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
           "--tmpfs", "/tmp", "--tmpfs", "/dev/shm", "--tmpfs", "/var/tmp"]
    for path in _hidden_paths(hidden):
        if path.exists() and path != Path("/"):
            cmd += ["--tmpfs", str(path)]
    for path in _visible_again():
        if path.exists():
            cmd += ["--ro-bind", str(path), str(path)]
    cmd += ["--bind", str(folder), str(inside), "--chdir", str(inside),
            "--unshare-user", "--uid", "65534", "--gid", "65534",
            "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--hostname", "sandbox",
            "--die-with-parent", "--new-session",
            "--clearenv",
            "--setenv", "HOME", str(inside / ".home"),
            "--setenv", "IPYTHONDIR", str(inside / ".home" / ".ipython"),
            "--setenv", "JUPYTER_RUNTIME_DIR", str(inside / ".home" / "runtime"),
            "--setenv", "PATH", f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "--setenv", "MPLBACKEND", "agg",
            # Two workers share two cores: one thread per TensorFlow/BLAS pool avoids thrashing.
            "--setenv", "TF_NUM_INTRAOP_THREADS", "1", "--setenv", "TF_NUM_INTEROP_THREADS", "1",
            "--setenv", "OMP_NUM_THREADS", "1", "--setenv", "OPENBLAS_NUM_THREADS", "1"]
    for name, value in coursekit.QUIET_TENSORFLOW_ENV.items():
        cmd += ["--setenv", name, value]
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # set on some machines for correctness
        if name in os.environ:
            cmd += ["--setenv", name, os.environ[name]]
    return cmd + ["--", *argv]


def memory_limit(memory_mib):
    """A ``preexec_fn`` capping the address space of the sandbox and all it starts (and no core dumps)."""
    def limit():
        cap = memory_mib * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return limit


def run(folder, argv, limits, hidden=()):
    """Run ``argv`` in a sandbox around ``folder``; kill everything at the wall-clock limit."""
    folder = Path(folder)
    (folder / ".home").mkdir(exist_ok=True)
    # The sandbox user (nobody) must be able to write its own folder and nothing else.
    for path in [folder, *folder.rglob("*")]:
        os.chmod(path, 0o777 if path.is_dir() else 0o666)

    started = time.monotonic()
    process = subprocess.Popen(command(folder, argv, hidden), stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               preexec_fn=memory_limit(limits.memory_mib), start_new_session=True)
    timed_out = False
    try:
        _, stderr = process.communicate(timeout=limits.wall_seconds)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(process.pid, signal.SIGKILL)
        _, stderr = process.communicate()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return SandboxResult(process.returncode, time.monotonic() - started, timed_out,
                         stderr.decode("utf-8", "replace")[-4000:])
