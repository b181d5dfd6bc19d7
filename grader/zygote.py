"""Inside a worker's sandbox: import TensorFlow once, then fork one fresh, isolated child per notebook.

    python -m grader.zygote

The coordinator binds its spool folder at ``SPOOL`` (``/tmp/spool``) of the worker's sandbox.

Importing TensorFlow, IPython and the course's helpers costs a Python process about 3 s of CPU,
more than running a whole exercise notebook. This process (the *zygote*, the name Android gives
the same idea) pays it once per worker: it imports everything a kernel and its driver need,
never runs a TensorFlow op (a child forked after one hangs), and then, for each notebook the
coordinator sends (one JSON line on stdin naming a folder of the spool), forks:

* a **driver** that gives itself new user, mount and IPC namespaces, a private ``/tmp``,
  ``/dev/shm`` and ``/var/tmp``, and sees only its own job folder (the spool is covered); it locks
  these mounts (a second user namespace, as bubblewrap does) so nothing below can undo them,
  then runs the notebook with nbclient (``grader.execute_worker``);
* the **kernel**, started by the driver in a new PID namespace (``start_kernel``), so that when the
  notebook ends every process the student's code started dies with it;
* once all of them are dead, the **judge** (``grader.judge``), isolated the same way: it runs the
  test cells again on the answers the kernel recorded, in a process no student code ever ran in.

The zygote is not dumpable (``PR_SET_DUMPABLE`` 0), so the kernel can neither trace it nor read
its memory or its view of the spool through ``/proc``; the kernel cannot signal it either, since
it is outside the kernel's PID namespace. The zygote enforces each notebook's wall-clock limit and
kills the whole PID namespace at the end of every job, so nothing a submission starts outlives it.

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

SPOOL = Path("/tmp/spool")        # the worker's job folders, as the zygote sees them
INSIDE = Path("/tmp/submission")  # the job folder, as the notebook sees it (grader.sandbox.INSIDE)
KERNEL_FILE_BYTES = 512 * 2**20   # the largest file the student's code may write

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWIPC = 0x00020000, 0x10000000, 0x20000000, 0x08000000
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 1 << 18
PRIVATE = (Path("/tmp"), Path("/dev/shm"), Path("/var/tmp"))  # fresh and empty for every job
PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER = 4, 36


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
    _check(_libc.mount(encode(source), encode(target), encode(fstype), flags, encode(data)),
           f"mount {target}")


def _needed_paths():
    """What the kernel, driver and judge read: the Python environment and the course's code."""
    import coursekit

    return sorted({Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(),
                   Path(sys.executable).resolve().parent.parent, Path(coursekit.__file__).resolve().parent,
                   Path(__file__).resolve().parent}, key=lambda p: len(p.parts))


def isolate(job_folder):
    """Turn the calling (driver) process into this job's private world; see the module's doc."""
    _unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWIPC, "for the job")
    _mount("none", "/", flags=MS_REC | MS_PRIVATE)
    # Folders under the private ones that must stay: the job's own, and the Python environment and
    # course code when they live there (a clone in /tmp, say). Held open, so that they can be
    # mounted back once /tmp is covered.
    kept = {INSIDE: os.open(job_folder, os.O_PATH | os.O_DIRECTORY)}
    for path in _needed_paths():
        if any(path.is_relative_to(private) for private in PRIVATE) and path.is_dir():
            kept[path] = os.open(path, os.O_PATH | os.O_DIRECTORY)
    for private in PRIVATE:  # a fresh /tmp also covers the spool below it
        _mount("tmpfs", private, "tmpfs", data="mode=1777")
    for path, fd in kept.items():
        path.mkdir(parents=True, exist_ok=True)
        _mount(f"/proc/self/fd/{fd}", path, flags=MS_BIND)  # read-only stays read-only: a bind keeps it
        os.close(fd)
    # Mounts made in a user namespace can be undone by anyone holding its capabilities; entering a
    # second one locks them (as bubblewrap does), so the student's code cannot uncover the spool.
    _unshare(CLONE_NEWUSER | CLONE_NEWNS, "to lock the mounts")
    os.chdir(INSIDE)
    home = INSIDE / ".home"
    os.environ.update(HOME=str(home), IPYTHONDIR=str(home / ".ipython"), MPLCONFIGDIR=str(home / ".matplotlib"),
                      JUPYTER_RUNTIME_DIR=str(home / "runtime"), JUPYTER_DATA_DIR=str(home / "data"))


def start_kernel(connection_file, close_fds=()):
    """Start the kernel in a new PID namespace. Returns the pid of that namespace's first process.

    ``close_fds``: the driver's private descriptors, closed before any of the student's code runs.
    A process that has unshared its PID namespace can no longer start threads (the driver needs
    them for ZeroMQ), so a short-lived middle process unshares it and forks the namespace's first
    process, which forks the kernel. That first process (``_init``) is not the kernel because the
    first process of a namespace ignores signals it has no handler for, even SIGKILL sent to
    itself: a kernel that kills itself must die as it would anywhere else. The driver treats the
    first process as the kernel: it is the driver's child once the middle process has gone (the
    driver is a subreaper), it forwards interrupts to the kernel, exits when the kernel does, and
    killing it kills everything in the namespace.
    """
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    pid_read, pid_write = os.pipe()
    middle = os.fork()
    if middle == 0:
        try:
            os.close(pid_read)
            _unshare(CLONE_NEWPID, "for the kernel")
            init = os.fork()
            if init == 0:
                os.close(pid_write)
                _init(connection_file, close_fds)
            os.write(pid_write, f"{init}\n".encode())
        finally:
            os._exit(0)
    os.close(pid_write)
    with os.fdopen(pid_read) as pipe:
        init = int(pipe.readline())
    os.waitpid(middle, 0)
    return init


def _init(connection_file, close_fds):
    """The first process of the kernel's PID namespace: forwards interrupts, exits with the kernel."""
    try:
        kernel = os.fork()
        if kernel == 0:
            _kernel(connection_file, close_fds)
        for fd in close_fds:
            os.close(fd)
        forward = lambda signum, frame: os.kill(kernel, signum)  # noqa: E731
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, forward)
        while True:
            pid, status = os.waitpid(-1, 0)  # also reaps the kernel's orphans
            if pid == kernel:
                os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
    finally:
        os._exit(1)


def _kernel(connection_file, close_fds):
    try:
        for fd in close_fds:
            os.close(fd)
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        resource.setrlimit(resource.RLIMIT_FSIZE, (KERNEL_FILE_BYTES, KERNEL_FILE_BYTES))
        from coursekit import grading
        from ipykernel.kernelapp import IPKernelApp

        os.environ[grading.TRANSCRIPT_ENV] = str(INSIDE / ".answers")  # what the judge replays

        app = IPKernelApp.instance()
        app.initialize(["-f", str(connection_file), "--HistoryManager.hist_file=:memory:",
                        "--InteractiveShellApp.matplotlib=inline"])
        app.start()
    finally:
        os._exit(0)


def preload():
    """Everything a kernel and its driver import, imported once. No TensorFlow op may run here."""
    import coursekit  # noqa: F401  (sets TensorFlow's quiet logging before it loads)
    import coursekit.grading  # noqa: F401
    import ipykernel.ipkernel  # noqa: F401
    import ipykernel.kernelapp  # noqa: F401
    import keras  # noqa: F401
    import matplotlib
    import matplotlib_inline.backend_inline  # noqa: F401
    import tensorflow  # noqa: F401

    matplotlib.use("agg")
    import matplotlib.pyplot  # noqa: F401

    from grader import execute_worker, judge  # noqa: F401  (nbclient, nbformat, jupyter_client)


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


def _fork(job_folder, log_name, channel, work):
    """Fork a child that isolates itself around the job's folder (``isolate``) and runs ``work``."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        os.close(channel)
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        with open(job_folder / log_name, "w") as log:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
        isolate(job_folder)
        work()
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(code)


def _wait(pid, deadline, reports=None):
    """Wait for child ``pid`` until ``deadline``; returns (wait status or None if time ran out, the
    kernel's pid if ``reports`` delivered it)."""
    kernel, status = None, None
    child = os.pidfd_open(pid)
    try:
        while status is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            watched = [child] if reports is None or kernel or reports.closed else [child, reports]
            ready, _, _ = select.select(watched, [], [], remaining)
            if reports is not None and reports in ready:
                line = reports.readline()
                if line.strip().isdigit():
                    kernel = int(line)
                else:  # the driver failed before starting the kernel
                    reports.close()
            if child in ready:
                _, status = os.waitpid(pid, 0)
    finally:
        os.close(child)
    if status is None:
        _kill(pid)
        os.waitpid(pid, 0)
    return status, kernel


def trusted_tests(job_folder):
    """The autograded test cells [(grade_id, source)] and the cell time limit, read from the files
    the coordinator wrote, before any of the student's code runs (it could change them later)."""
    notebook = json.loads((job_folder / "input.ipynb").read_text(encoding="utf-8"))
    settings = json.loads((job_folder / "settings.json").read_text())
    from grader.judge import is_autograded_test

    tests = []
    for cell in filter(is_autograded_test, notebook.get("cells", [])):
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        tests.append((cell["metadata"]["nbgrader"].get("grade_id"), source))
    return tests, float(settings["cell_seconds"])


def run_job(spool, name, wall_seconds, channel):
    """One notebook: the driver runs it with the student's kernel; once every process of the
    student's is dead, the judge runs the test cells. Enforces the wall-clock limit on both.
    ``channel``: our replies to the coordinator; no child may hold it."""
    from grader import execute_worker, judge

    job_folder = spool / name
    started = time.monotonic()
    deadline = started + wall_seconds
    tests, cell_seconds = trusted_tests(job_folder)
    report_read, report_write = os.pipe()

    def drive():
        os.close(report_read)
        execute_worker.main(INSIDE, start_kernel, report_write)

    driver = _fork(job_folder, "driver-stderr.txt", channel, drive)
    os.close(report_write)
    with os.fdopen(report_read, "rb") as reports:
        # The driver reports the kernel's pid as soon as it has started it, so that we can kill the
        # kernel's PID namespace whatever happens to the driver.
        status, kernel = _wait(driver, deadline, reports)
    if kernel:
        _kill(kernel)  # the first process of the job's PID namespace: everything in it dies
    _reap()
    timed_out, judged = status is None, False
    if not timed_out and tests:
        judge_status, _ = _wait(_fork(job_folder, "judge-stderr.txt", channel,
                                      lambda: judge.main(tests, INSIDE, cell_seconds)), deadline)
        timed_out = judge_status is None
        judged = judge_status is not None and os.waitstatus_to_exitcode(judge_status) == 0
        _reap()
    return {"job": name, "timed_out": timed_out, "judged": judged, "seconds": time.monotonic() - started,
            "returncode": os.waitstatus_to_exitcode(status) if status is not None else None}


def main(spool=SPOOL):
    spool = Path(spool)
    replies = os.fdopen(os.dup(1), "w")  # our only channel to the coordinator
    os.dup2(2, 1)                        # anything else printed goes to the log
    _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    # `python -m` put the spool (our working folder) first on sys.path: a job could plant modules
    # there (its private /tmp) for a lazy import in the driver or the judge to pick up.
    sys.path[:] = [p for p in sys.path if p not in ("", os.getcwd(), str(spool))]
    preload()
    # Every child starts with the objects imported here. Python's garbage collector writes into
    # each object it visits, which would make every child copy the pages of all of them (the
    # copy-on-write that makes forking cheap); frozen objects are never visited again.
    gc.freeze()
    replies.write(json.dumps({"ready": True}) + "\n")
    replies.flush()
    for line in sys.stdin:
        request = json.loads(line)
        try:
            reply = run_job(spool, request["job"], request["wall_seconds"], replies.fileno())
        except Exception as error:  # the zygote itself must survive anything a job does
            reply = {"job": request["job"], "error": f"{type(error).__name__}: {error}"}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


def check():
    """``python -m grader.zygote --check``, in a sandbox around a scratch folder: can this machine give a
    notebook the namespaces of its own that ``run_job`` needs? Exits 0, or 1 with the reason."""
    pid = os.fork()
    if pid == 0:
        try:
            isolate(Path.cwd())
            _unshare(CLONE_NEWPID, "for the kernel")
            os._exit(0)
        except BaseException as error:
            print(f"{type(error).__name__}: {error}", file=sys.stderr)
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    check() if sys.argv[1:] == ["--check"] else main()
