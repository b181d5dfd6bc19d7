"""Inside a worker's sandbox: import TensorFlow once, then fork one fresh, isolated world per notebook.

    python -m grader.zygote

Importing TensorFlow, IPython and the course's helpers costs a Python process about 3 s of CPU,
more than running a whole exercise notebook. This process (the *zygote*, the name Android gives
the same idea) pays it once per worker: it imports everything, never runs a TensorFlow op (a
child forked after one hangs), and never reads a notebook, a test or a result: the only thing
it learns of a job is its folder's name and its limits (one JSON line on stdin). So the memory
every child starts with holds nothing of any submission or test. Per notebook it forks:

* the **kernel side**: it joins the notebook's cgroup (``grader.cgroups``: memory, process and
  CPU caps for all its processes together), gives itself new user, mount, IPC and cgroup
  namespaces in which only the job's ``kernel/`` folder is visible (at ``KERNEL_VIEW``; a fresh
  ``/tmp``, ``/dev/shm`` and ``/var/tmp`` cover the spool, the cgroups and everything else
  writable), locks these mounts with a second user namespace, and starts the kernel as the
  second process of a new PID namespace with a ``/proc`` of its own (``start_kernel``);
* the **driver** (``grader.driver``), isolated the same way but seeing the whole job folder at
  ``JOB_VIEW``: it runs the notebook's cells in the kernel and, where a test cell stands, judges
  it (``grader.judge``) by asking the kernel for the answers as data. It never runs student
  code, and the kernel can reach neither its files nor its memory (another PID namespace).

When the driver is done, or the wall-clock limit is reached, the zygote kills the kernel's whole
PID namespace and whatever is left in its cgroup, and reports what the notebook hit of its caps.
The zygote is not dumpable (``PR_SET_DUMPABLE`` 0): no child can trace it or read its memory.

Why by hand: bubblewrap builds the worker's sandbox (``grader.sandbox``), but it can only
``exec`` a new program, which throws the imported TensorFlow away; no maintained library forks
a warm Python process into namespaces, so the few system calls below go through ctypes.
"""

import ctypes
import gc
import json
import os
import resource
import select
import signal
import sys
import time
import traceback
from pathlib import Path

from grader.limits import CGROUPS, JOB_VIEW, KERNEL_FILE_BYTES, KERNEL_FOLDER, KERNEL_VIEW, SPOOL, Limits

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWIPC, CLONE_NEWCGROUP = (0x00020000, 0x10000000, 0x20000000,
                                                                          0x08000000, 0x02000000)
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 8, 0x1000, 0x4000, 1 << 18
PRIVATE = (Path("/tmp"), Path("/dev/shm"), Path("/var/tmp"))  # fresh and empty for every job
PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER = 4, 36
CONNECTION_FILE = Path(".home") / "kernel.json"  # relative to the kernel's folder


def _check(result, what):
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def _unshare(flags, what):
    uid, gid = os.getuid(), os.getgid()
    _check(_libc.unshare(flags), f"unshare {what}")
    if flags & CLONE_NEWUSER:  # the same user id inside, so files keep their owner
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1\n")
        Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1\n")


def _mount(source, target, fstype=None, flags=0, data=None):
    encode = lambda value: None if value is None else str(value).encode()  # noqa: E731
    _check(_libc.mount(encode(source), encode(target), encode(fstype), flags, encode(data)), f"mount {target}")


def _needed_paths():
    """What the kernel, driver and judge read: the Python environment and the course's code."""
    from grader.sandbox import python_paths

    return python_paths()


def isolate(folder, view, dumpable=False):
    """Turn the calling process into a private world where ``folder`` is visible at ``view`` and
    nothing writable of the worker is (see the module's doc).

    The zygote is not dumpable, and its children inherit that; the /proc files of a process that
    is not dumpable belong to root, so a child must become dumpable to write its own user
    namespace's maps. The driver is made undumpable again once isolated (``dumpable`` False); the
    kernel side stays dumpable, as any process is (its /proc files are its own)."""
    _libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
    _unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWIPC, "for the job")
    _mount("none", "/", flags=MS_REC | MS_PRIVATE)
    # Folders under the private ones that must stay: the job's own, and the Python environment and
    # course code when they live there (a clone in /tmp, say). Held open, so that they can be
    # mounted back once /tmp is covered.
    kept = {view: os.open(folder, os.O_PATH | os.O_DIRECTORY)}
    for path in _needed_paths():
        if any(path.is_relative_to(private) for private in PRIVATE) and path.is_dir():
            kept[path] = os.open(path, os.O_PATH | os.O_DIRECTORY)
    for private in PRIVATE:  # a fresh /tmp also covers the spool and the cgroups below it
        _mount("tmpfs", private, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    for path, fd in kept.items():
        path.mkdir(parents=True, exist_ok=True)
        _mount(f"/proc/self/fd/{fd}", path, flags=MS_BIND)  # read-only stays read-only: a bind keeps it
        os.close(fd)
    # Mounts made in a user namespace can be undone by anyone holding its capabilities; entering a
    # second one locks them (as bubblewrap does), so the student's code cannot uncover the spool.
    _unshare(CLONE_NEWUSER | CLONE_NEWNS, "to lock the mounts")
    if not dumpable:
        _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    os.chdir(view)
    home = view / ".home"
    os.environ.update(HOME=str(home), IPYTHONDIR=str(home / ".ipython"), MPLCONFIGDIR=str(home / ".matplotlib"),
                      JUPYTER_RUNTIME_DIR=str(home / "runtime"), JUPYTER_DATA_DIR=str(home / "data"))


def _limit_process(limits):
    resource.setrlimit(resource.RLIMIT_FSIZE, (KERNEL_FILE_BYTES, KERNEL_FILE_BYTES))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    cap = int(limits.address_space_mib) * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def kernel_side(kernel_folder, cgroup, limits, report):
    """The forked kernel side of a job: cgroup, isolation, connection file, then the kernel's PID
    namespace. Writes the pid of that namespace's first process to ``report`` and returns."""
    from jupyter_client.connect import write_connection_file

    if cgroup is not None:
        cgroup.join()
    isolate(kernel_folder, KERNEL_VIEW, dumpable=True)
    if cgroup is not None:
        _unshare(CLONE_NEWCGROUP, "the cgroup namespace")  # its own cgroup looks like the root
    (KERNEL_VIEW / CONNECTION_FILE).parent.mkdir(exist_ok=True)
    write_connection_file(str(KERNEL_VIEW / CONNECTION_FILE), ip="127.0.0.1")
    _limit_process(limits)
    os.environ["NBGRADER_EXECUTION"] = "autograde"  # as nbgrader's autograde sets it (coursekit.selfstudy reads it)
    _unshare(CLONE_NEWPID, "for the kernel")
    init = os.fork()
    if init == 0:
        os.close(report)
        _init(KERNEL_VIEW / CONNECTION_FILE)
    os.write(report, f"{init}\n".encode())


def _init(connection_file):
    """The first process of the kernel's PID namespace: mounts the namespace's own ``/proc``,
    forwards interrupts, exits with the kernel.

    It is not the kernel itself because the first process of a namespace ignores signals it has
    no handler for, even SIGKILL sent to itself: a kernel that kills itself must die as it would
    anywhere else. Killing this process kills everything in the namespace."""
    try:
        _unshare(CLONE_NEWNS, "for /proc")
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        _unshare(CLONE_NEWUSER | CLONE_NEWNS, "to lock /proc")  # the kernel cannot unmount it
        kernel = os.fork()
        if kernel == 0:
            _kernel(connection_file)
        forward = lambda signum, frame: os.kill(kernel, signum)  # noqa: E731
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, forward)
        while True:
            pid, status = os.waitpid(-1, 0)  # also reaps the kernel's orphans
            if pid == kernel:
                os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
    finally:
        os._exit(1)


def _kernel(connection_file):
    try:
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        from ipykernel.kernelapp import IPKernelApp

        app = IPKernelApp.instance()
        app.initialize(["-f", str(connection_file), "--HistoryManager.hist_file=:memory:",
                        "--InteractiveShellApp.matplotlib=inline"])
        app.start()
    finally:
        os._exit(0)


def preload():
    """Everything a kernel and the driver import, imported once. No TensorFlow op may run here."""
    import coursekit  # noqa: F401  (sets TensorFlow's quiet logging before it loads)
    import coursekit.answers  # noqa: F401
    import coursekit.grading  # noqa: F401
    import ipykernel.ipkernel  # noqa: F401
    import ipykernel.kernelapp  # noqa: F401
    import jupyter_client.connect  # noqa: F401
    import keras  # noqa: F401
    import matplotlib
    import matplotlib_inline.backend_inline  # noqa: F401
    import tensorflow  # noqa: F401

    matplotlib.use("agg")
    import matplotlib.pyplot  # noqa: F401

    from grader import driver, judge  # noqa: F401  (nbclient, nbformat, jupyter_client)


def _kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _reap():
    """Collect every finished child; orphans of a job come to us (PR_SET_CHILD_SUBREAPER)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _fork(log_path, channel, work):
    """Fork a child that logs to ``log_path`` and runs ``work``; returns its pid."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        os.close(channel)
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        with open(log_path, "w") as log:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
        work()
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(code)


def _wait(pid, deadline):
    """Wait for child ``pid`` until ``deadline``; its wait status, or None if time ran out (then
    it is killed)."""
    child = os.pidfd_open(pid)
    status = None
    try:
        while status is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            ready, _, _ = select.select([child], [], [], remaining)
            if ready:
                _, status = os.waitpid(pid, 0)
    finally:
        os.close(child)
    if status is None:
        _kill(pid)
        os.waitpid(pid, 0)
    return status


def _read_line(fd, deadline):
    """One line from pipe ``fd`` before ``deadline`` (b"" at its end or when time runs out)."""
    data = b""
    while not data.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            break
        chunk = os.read(fd, 64)
        if not chunk:
            break
        data += chunk
    return data


def _job_cgroup(name, limits):
    if not CGROUPS.is_dir() or not any(CGROUPS.iterdir()):
        return None
    from grader.cgroups import JobCgroup

    return JobCgroup(CGROUPS, name, limits)


def run_job(spool, name, limits, channel):
    """One notebook: the kernel side, then the driver; enforces the wall-clock limit on both.
    ``channel``: our replies to the coordinator; no child may hold it."""
    from grader import driver

    folder = spool / name
    deadline = time.monotonic() + limits.wall_seconds
    started = time.monotonic()
    cgroup = _job_cgroup(name, limits)
    kernel_init = None
    try:
        report_read, report_write = os.pipe()

        def start():
            os.close(report_read)
            kernel_side(folder / KERNEL_FOLDER, cgroup, limits, report_write)

        starter = _fork(folder / "kernel-start-log.txt", channel, start)
        os.close(report_write)
        line = _read_line(report_read, deadline)
        os.close(report_read)
        _wait(starter, deadline)
        kernel_init = int(line) if line.strip().isdigit() else None
        status = None
        if kernel_init:
            def drive():
                isolate(folder, JOB_VIEW)
                driver.main(JOB_VIEW, kernel_init, JOB_VIEW / KERNEL_FOLDER / CONNECTION_FILE)

            status = _wait(_fork(folder / "driver-log.txt", channel, drive), deadline)
    finally:
        if kernel_init:
            _kill(kernel_init)  # the first process of the kernel's PID namespace: everything in it dies
        usage = None
        if cgroup is not None:
            cgroup.kill_all()
            usage = cgroup.usage().as_dict()
            cgroup.remove()
        _reap()
    return {"job": name, "kernel_started": kernel_init is not None, "timed_out": kernel_init is not None and
            status is None, "returncode": os.waitstatus_to_exitcode(status) if status is not None else None,
            "usage": usage, "seconds": time.monotonic() - started}


def main(spool=SPOOL):
    spool = Path(spool)
    replies = os.fdopen(os.dup(1), "w")  # our only channel to the coordinator
    os.dup2(2, 1)                        # anything else printed goes to the log
    _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    # `python -m` put the spool (our working folder) first on sys.path: a job could plant modules
    # there for a lazy import to pick up.
    sys.path[:] = [p for p in sys.path if p not in ("", os.getcwd(), str(spool))]
    preload()
    # Every child starts with the objects imported here. Python's garbage collector writes into
    # each object it visits, which would make every child copy the pages of all of them (the
    # copy-on-write that makes forking cheap); frozen objects are never visited again.
    gc.freeze()
    replies.write(json.dumps({"ready": True, "cgroups": CGROUPS.is_dir() and any(CGROUPS.iterdir())}) + "\n")
    replies.flush()
    for line in sys.stdin:
        request = json.loads(line)
        try:
            reply = run_job(spool, request["job"], Limits.from_dict(request["limits"]), replies.fileno())
        except Exception as error:  # the zygote itself must survive anything a job does
            reply = {"job": request["job"], "error": f"{type(error).__name__}: {error}"}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


def check():
    """``python -m grader.zygote --check``, in a sandbox around a scratch folder: can this machine give a
    notebook the namespaces of its own that ``run_job`` needs (``/proc`` of its own included)?
    Exits 0, or 1 with the reason."""
    pid = os.fork()
    if pid == 0:
        try:
            isolate(Path.cwd(), Path.cwd(), dumpable=True)
            _unshare(CLONE_NEWPID, "for the kernel")
            inner = os.fork()
            if inner == 0:
                try:
                    _unshare(CLONE_NEWNS, "for /proc")
                    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
                    os._exit(0)
                except BaseException as error:
                    print(f"{type(error).__name__}: {error}", file=sys.stderr)
                    os._exit(1)
            _, status = os.waitpid(inner, 0)
            os._exit(os.waitstatus_to_exitcode(status))
        except BaseException as error:
            print(f"{type(error).__name__}: {error}", file=sys.stderr)
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    check() if sys.argv[1:] == ["--check"] else main()
