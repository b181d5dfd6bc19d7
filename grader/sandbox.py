"""A worker's sandbox: an empty world with only what a kernel needs in it.

bubblewrap (``bwrap``, Debian's ``bubblewrap`` package; the tool Flatpak uses for exactly this)
builds it. The sandbox starts from an empty root and shows, read-only, an **allow-list**:

* the system's programs and libraries (``/usr``, with Debian's ``/bin``, ``/lib`` links), and of
  ``/etc`` only the dynamic linker's cache, name-service and time-zone files, fonts, and a
  ``passwd``/``group`` that name the sandbox user alone;
* the Python environment, the course's helper package ``coursekit`` and the grader's own code;
* ``/dev`` (bubblewrap's minimal one) and ``/proc`` (every job mounts its own, see ``zygote``).

Nothing else of the host exists inside: no home folder, no other repository, no instructor
workspace, no gradebook, no ``/etc/shadow``. Writable: a fresh ``/tmp`` holding the worker's
spool (``grader.forkserver``) and its cgroups (``grader.cgroups``). New user, network (loopback
only), PID, IPC, UTS and cgroup namespaces.

The sandbox runs as an unprivileged host user: the caller's own, or — when the grader runs as
root — ``grader.limits.SANDBOX_UID``, via ``grader.launch``, which also puts the sandbox in its
worker's cgroups before anything runs in it.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import coursekit

from grader.limits import CGROUPS, KERNEL_VIEW, SANDBOX_UID, Limits

EXTRA_BWRAP_ARGS = []  # test seam: e.g. ["--disable-userns"] makes a machine that cannot nest user namespaces
SYSTEM_LINKS = ("/bin", "/lib", "/lib32", "/lib64", "/libx32", "/sbin")
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "nsswitch.conf", "hosts", "host.conf", "localtime",
             "fonts", "mime.types")


class SandboxUnavailable(RuntimeError):
    pass


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


def as_root():
    return os.geteuid() == 0


def sandbox_user():
    """(uid, gid) the sandbox runs as on the host: never root."""
    return (SANDBOX_UID, SANDBOX_UID) if as_root() else (os.getuid(), os.getgid())


def python_paths():
    """The Python environment and the code a kernel, the driver and the judge import."""
    import grader

    paths = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(),
             Path(sys.executable).resolve().parent.parent,
             Path(coursekit.__file__).resolve().parent, Path(grader.__file__).resolve().parent}
    return sorted(paths, key=lambda p: (len(p.parts), str(p)))


def _read_only_binds():
    """(host path, path inside) of everything shown read-only."""
    binds = [(Path("/usr"), Path("/usr"))]
    binds += [(Path("/etc") / name, Path("/etc") / name) for name in ETC_FILES if (Path("/etc") / name).exists()]
    binds += [(path, path) for path in python_paths()]
    return binds


def _identity_files(folder, uid, gid):
    """A passwd and a group naming only the sandbox user (Python and IPython look the user up)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "passwd").write_text(f"sandbox:x:{uid}:{gid}:sandbox:{KERNEL_VIEW / '.home'}:/usr/sbin/nologin\n")
    (folder / "group").write_text(f"sandbox:x:{gid}:\n")
    for path in (folder, folder / "passwd", folder / "group"):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    return [(folder / "passwd", Path("/etc/passwd")), (folder / "group", Path("/etc/group"))]


def environment():
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "LANG": "C.UTF-8", "MPLBACKEND": "agg",
           # Workers share the machine's cores: one thread per TensorFlow/BLAS pool avoids thrashing.
           "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", **coursekit.QUIET_TENSORFLOW_ENV}
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # set on some machines for correctness
        if name in os.environ:
            env[name] = os.environ[name]
    return env


class Launch:
    """One sandbox to start: its bubblewrap command and, as root, the stage that feeds it."""

    def __init__(self, writable, argv, cgroups=None, chdir=None):
        """``writable``: {host folder: path inside}; ``cgroups``: a ``grader.cgroups.WorkerCgroups``."""
        self.uid, self.gid = sandbox_user()
        self.scratch = Path(tempfile.mkdtemp(prefix="grader-launch-"))
        os.chmod(self.scratch, 0o755)
        binds = [(src, dst, False) for src, dst in _read_only_binds()]
        binds += [(src, dst, False) for src, dst in _identity_files(self.scratch / "etc", self.uid, self.gid)]
        binds += [(Path(src), Path(dst), True) for src, dst in writable.items()]
        if cgroups is not None:
            binds += [(Path(folder), CGROUPS / name, True) for name, folder in cgroups.mounts.items()]
        self.stage = None
        if as_root():
            folder = self.scratch / "stage"
            folder.mkdir()
            self.stage = {"folder": str(folder), "paths": [[str(src), rw] for src, _, rw in binds]}
            binds = [(folder / str(i), dst, rw) for i, (_, dst, rw) in enumerate(binds)]
        cmd = [bwrap_path(), "--unshare-user", "--uid", str(self.uid), "--gid", str(self.gid),
               "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
               "--hostname", "sandbox", "--die-with-parent", "--new-session", "--clearenv",
               "--dev", "/dev", "--bind", "/proc", "/proc", "--tmpfs", "/tmp", "--tmpfs", "/dev/shm",
               "--tmpfs", "/var/tmp", "--dir", str(KERNEL_VIEW), *EXTRA_BWRAP_ARGS]
        for link in SYSTEM_LINKS:
            if Path(link).is_symlink():
                cmd += ["--symlink", os.readlink(link), link]
            elif Path(link).is_dir():
                binds.insert(0, (Path(link), Path(link), False))
        for src, dst, rw in binds:
            cmd += ["--bind" if rw else "--ro-bind", str(src), str(dst)]
        for name, value in environment().items():
            cmd += ["--setenv", name, value]
        if chdir:
            cmd += ["--chdir", str(chdir)]
        self.spec = {"cgroup_procs": [str(p) for p in cgroups.procs_files] if cgroups else [],
                     "uid": self.uid if as_root() else None, "gid": self.gid if as_root() else None,
                     "stage": self.stage, "argv": cmd + ["--", *argv]}
        (self.scratch / "spec.json").write_text(json.dumps(self.spec))

    def popen(self, **kwargs):
        import grader

        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "PYTHONPATH": str(Path(grader.__file__).resolve().parent.parent)}
        return subprocess.Popen([sys.executable, "-m", "grader.launch", str(self.scratch / "spec.json")],
                                env=env, start_new_session=True, **kwargs)

    def cleanup(self):
        shutil.rmtree(self.scratch, ignore_errors=True)


def prepare_writable(folder, uid=None, gid=None):
    """Make ``folder`` (and what is in it) the sandbox user's, so that it can write there."""
    uid, gid = (uid, gid) if uid is not None else sandbox_user()
    for path in [Path(folder), *Path(folder).rglob("*")]:
        if as_root():
            os.chown(path, uid, gid, follow_symlinks=False)
        elif not path.is_symlink():
            os.chmod(path, 0o700 if path.is_dir() else 0o600)


def run(folder, argv, limits=Limits(), cgroups=None):
    """Run ``argv`` in a sandbox around ``folder`` (at ``KERNEL_VIEW``); kill everything at the
    wall-clock limit. For one-off commands (checks); notebooks run in ``grader.forkserver``."""
    folder = Path(folder)
    (folder / ".home").mkdir(exist_ok=True)
    prepare_writable(folder)
    launch = Launch({folder: KERNEL_VIEW}, argv, cgroups=cgroups, chdir=KERNEL_VIEW)
    started = time.monotonic()
    process = launch.popen(stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    timed_out = False
    try:
        _, stderr = process.communicate(timeout=limits.wall_seconds)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(process.pid, 9)
        _, stderr = process.communicate()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 9)
            process.wait()
        launch.cleanup()
    return SandboxResult(process.returncode, time.monotonic() - started, timed_out,
                         stderr.decode("utf-8", "replace")[-4000:])


def check_namespaces():
    """Fail early, with the reason, when bubblewrap cannot make a worker sandbox here or the worker
    cannot give each notebook namespaces of its own (``grader.zygote``)."""
    folder = tempfile.mkdtemp(prefix="grader-check-")
    try:
        result = run(folder, [sys.executable, "-m", "grader.zygote", "--check"], Limits(wall_seconds=60))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        raise SandboxUnavailable(
            f"cannot isolate notebooks on this machine ({lines[-1] if lines else f'exit code {result.returncode}'}); "
            "bubblewrap and nested user namespaces are needed (sysctl user.max_user_namespaces > 0).")
