"""The coordinator's side of a worker: one long-lived sandbox that forks a fresh world per notebook.

A ``ForkServer`` starts ``grader.zygote`` in a sandbox (``grader.sandbox``: an empty world with
only what a kernel needs, an unprivileged user, no network) inside cgroups of its own
(``grader.cgroups``), around a private *spool* folder. For each notebook it writes a job folder
into the spool (``job.json``: the notebook and its settings; ``kernel/``: the kernel's empty
folder), sends the job's name and limits, and waits for the reply; the zygote forks the kernel
side and the driver for it. What comes back is read without following links, and the job
folder is deleted afterwards.

If the zygote dies or stops answering, the sandbox is killed and a new one is started for the
next notebook; the notebook that was running gets a grader failure (``--resume`` runs it again).
A process keeps its idle servers (``acquire``/``release``); ``prestart`` launches them early, so
that the zygotes import TensorFlow while the coordinator reads and prepares the submissions, and
a server idle for ``IDLE_SECONDS`` is stopped, giving its memory back (a Dask worker between
batches, say).
"""

import atexit
import json
import os
import select
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from grader import cgroups, sandbox
from grader.limits import JOB_FILE, KERNEL_FOLDER, OUTPUT_FILE, SPOOL, VERDICTS_FILE

STARTUP_SECONDS = 180.0  # importing TensorFlow in the zygote on a busy machine
GRACE_SECONDS = 30.0     # the zygote enforces the wall-clock limit; this is our own, in case it cannot
IDLE_SECONDS = float(os.environ.get("COURSE_GRADER_IDLE_SECONDS", 60))  # an idle server is stopped after this long


class WorkerError(RuntimeError):
    """The worker's sandbox failed (not the notebook's fault)."""


class JobFailed(Exception):
    """The notebook itself could not be run to the end: the message is the failure row's reason."""

    def __init__(self, kind, reason):
        super().__init__(reason)
        self.kind = kind


_support = None


def cgroup_support():
    """What this machine offers for per-notebook caps (detected once per process)."""
    global _support
    if _support is None:
        _support = cgroups.detect()
    return _support


class ForkServer:
    def __init__(self, use_cgroups=True):
        self.spool = Path(tempfile.mkdtemp(prefix="grader-spool-"))
        self.use_cgroups = use_cgroups
        self.process = self.log = self.launch_ = self.cgroups = None
        self.jobs, self.ready, self.idle_since = 0, False, time.monotonic()

    # ------------------------------------------------------------------ life cycle

    def launch(self):
        """Start the sandbox; the zygote then imports TensorFlow while we do other work."""
        sandbox.prepare_writable(self.spool)
        self.log = open(self.spool.with_suffix(".log"), "w+")
        uid, gid = sandbox.sandbox_user()
        if self.use_cgroups:
            support = cgroup_support()
            if support.kind is None:
                raise WorkerError(f"no per-notebook caps: {support.reason}")
            self.cgroups = cgroups.WorkerCgroups(support, self.spool.name, uid, gid)
        self.launch_ = sandbox.Launch({self.spool: SPOOL}, [sys.executable, "-m", "grader.zygote"],
                                      cgroups=self.cgroups, chdir=SPOOL)
        self.process = self.launch_.popen(stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=self.log)
        self.ready = False

    def wait_ready(self):
        if not self.alive():
            self.close()
            self.launch()
        if not self.ready:
            reply = self._read_reply(STARTUP_SECONDS)
            if not reply.get("ready"):
                raise WorkerError(f"the grading sandbox did not start ({self._last_log_line()})")
            if self.use_cgroups and not reply.get("cgroups"):
                raise WorkerError("the grading sandbox started without its cgroups")
            self.ready = True

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def close(self):
        if self.process is not None:
            try:
                os.killpg(self.process.pid, 9)
            except ProcessLookupError:
                pass
            self.process.wait()
            self.process = None
        if self.launch_ is not None:
            self.launch_.cleanup()
            self.launch_ = None
        if self.cgroups is not None:
            self.cgroups.remove()
            self.cgroups = None
        if self.log:
            self.log.close()
            self.log = None

    def remove(self):
        self.close()
        shutil.rmtree(self.spool, ignore_errors=True)
        self.spool.with_suffix(".log").unlink(missing_ok=True)

    def memory_bytes(self):
        return self.cgroups.memory_bytes() if self.cgroups is not None and self.alive() else 0

    def _read_reply(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self.process.stdout], [], [], max(remaining, 0))
            if not ready:
                self.close()
                raise WorkerError(f"the grading sandbox stopped answering after {timeout:g} s")
            line = self.process.stdout.readline()
            if not line:
                self.close()
                raise WorkerError(f"the grading sandbox exited ({self._last_log_line()})")
            try:
                return json.loads(line)
            except ValueError:
                continue  # not ours: the zygote's replies are single JSON lines

    def _last_log_line(self):
        return _last_line(self.spool.with_suffix(".log"), "no message")

    # ------------------------------------------------------------------ one notebook

    def run(self, notebook_json, settings, limits):
        """Execute and judge one notebook. Returns (executed notebook JSON, verdicts as a list of dicts,
        the cgroup usage or None); raises ``WorkerError`` or ``JobFailed``."""
        self.wait_ready()
        self.jobs += 1
        name = f"job-{self.jobs}"
        folder = self.spool / name
        (folder / KERNEL_FOLDER / ".home").mkdir(parents=True)
        (folder / JOB_FILE).write_text(json.dumps({"notebook": notebook_json, "settings": settings}),
                                       encoding="utf-8")
        sandbox.prepare_writable(folder)
        try:
            try:
                request = json.dumps({"job": name, "limits": limits.as_dict()})
                self.process.stdin.write(request.encode() + b"\n")
                self.process.stdin.flush()
            except OSError as error:  # the zygote is gone
                self.close()
                raise WorkerError(f"the grading sandbox failed ({type(error).__name__}: {error})") from None
            reply = self._read_reply(limits.wall_seconds + GRACE_SECONDS)
            if reply.get("job") != name:
                self.close()
                raise WorkerError(f"the grading sandbox answered for another job ({reply})")
            if "error" in reply:
                raise WorkerError(f"the grading sandbox could not run it ({reply['error']})")
            usage = reply.get("usage")
            if reply.get("timed_out"):
                raise JobFailed("timeout", f"the notebook ran longer than {limits.wall_seconds:g} s in all and was "
                                           "stopped: scored 0")
            if not reply.get("kernel_started"):
                raise WorkerError(f"the kernel could not start ({_last_line(folder / 'kernel-start-log.txt')})")
            output = read_regular_file(folder / OUTPUT_FILE, limits.max_output_bytes)
            if output is None:
                raise WorkerError(f"the driver failed ({_last_line(folder / 'driver-log.txt')})")
            verdicts = read_regular_file(folder / VERDICTS_FILE, limits.max_output_bytes)
            try:
                verdicts = json.loads(verdicts) if verdicts else []
            except ValueError:
                verdicts = []
            return output, verdicts if isinstance(verdicts, list) else [], usage
        finally:
            shutil.rmtree(folder, ignore_errors=True)  # rmtree never follows links out of the folder
            self.idle_since = time.monotonic()


def read_regular_file(path, max_bytes):
    """The file's text, or None if it is missing or not a regular file (a link is never followed).
    JobFailed if the file is larger than ``max_bytes``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)  # a FIFO must not block us
    except OSError:
        return None
    with os.fdopen(fd, "rb") as file:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            return None
        if status.st_size > max_bytes:
            raise JobFailed("output_too_large", f"outputs larger than {max_bytes // 2**20} MiB: scored 0")
        return file.read(max_bytes + 1).decode("utf-8", "replace")


def _last_line(path, default="no message"):
    try:
        lines = (read_regular_file(path, 2**20) or "").strip().splitlines()
    except JobFailed:
        lines = []
    return lines[-1][:200] if lines else default


# --------------------------------------------------------------------------- the servers of this process

_idle = []  # servers not running a notebook now
_all = []
_lock = threading.Lock()
_reaper = None
use_cgroups = True  # set once per process by the caller (autograde's --no-cgroups, a Dask worker's check)


def prestart(count=1):
    """Launch ``count`` servers now, so that their start-up overlaps the coordinator's own work."""
    for _ in range(count):
        server = ForkServer(use_cgroups)
        server.launch()
        with _lock:
            _all.append(server)
            _idle.append(server)
    _start_reaper()


def acquire():
    """An idle server, or a new one: each runs one notebook at a time."""
    with _lock:
        if _idle:
            return _idle.pop()
    server = ForkServer(use_cgroups)
    with _lock:
        _all.append(server)
    _start_reaper()
    return server


def release(server):
    with _lock:
        if server in _all:  # not stopped by close_all meanwhile
            server.idle_since = time.monotonic()
            _idle.append(server)


def memory_bytes():
    """Memory held by this process's sandboxes (their cgroups), for Dask's accounting."""
    with _lock:
        servers = list(_all)
    return sum(server.memory_bytes() for server in servers)


def _stop_idle():
    while True:
        time.sleep(IDLE_SECONDS / 4)
        with _lock:
            stale = [s for s in _idle if time.monotonic() - s.idle_since > IDLE_SECONDS]
            for server in stale:
                _idle.remove(server)
                _all.remove(server)
        for server in stale:
            server.remove()


def _start_reaper():
    global _reaper
    with _lock:
        if _reaper is None:
            _reaper = threading.Thread(target=_stop_idle, name="forkserver-idle", daemon=True)
            _reaper.start()


def close_all():
    """Stop every fork server of this process (the end of a local batch, or exit)."""
    with _lock:
        servers = list(_all)
        _all.clear()
        _idle.clear()
    for server in servers:
        server.remove()


atexit.register(close_all)
