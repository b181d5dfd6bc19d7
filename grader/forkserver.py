"""The coordinator's side of a worker: one long-lived sandbox that forks a fresh child per notebook.

A ``ForkServer`` starts ``grader.zygote`` in a bubblewrap sandbox (``grader.sandbox.command``: no
network, workspace and repository hidden, memory cap) around a private *spool* folder. For each
notebook it writes a job folder into the spool, sends the job's name, and waits for the reply;
the zygote forks an isolated driver and kernel for it (see ``grader.zygote``). What comes back
is read without following links, and the job folder is deleted afterwards.

If the zygote dies or stops answering, the sandbox is killed and a new one is started for the
next notebook; the notebook that was running gets a "grader error" (resume runs it again).
A process keeps its idle servers (``acquire``/``release``); ``prestart`` launches them early, so
that the zygotes import TensorFlow while the coordinator reads and sanitizes the submissions.
"""

import atexit
import json
import os
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from grader import sandbox

SPOOL = Path("/tmp/spool")  # grader.zygote.SPOOL; not imported, so the coordinator never imports TensorFlow
STARTUP_SECONDS = 180.0     # importing TensorFlow in the zygote on a busy machine
GRACE_SECONDS = 30.0        # the zygote enforces the wall-clock limit; this is our own, in case it cannot


class WorkerError(RuntimeError):
    """The worker's sandbox failed (not the notebook's fault)."""


class ForkServer:
    def __init__(self, limits, hidden=()):
        self.memory_mib, self.hidden = limits.memory_mib, tuple(str(p) for p in hidden)
        self.spool = Path(tempfile.mkdtemp(prefix="grader-spool-"))
        os.chmod(self.spool, 0o777)
        self.process, self.log, self.jobs, self.ready = None, None, 0, False

    # ------------------------------------------------------------------ life cycle

    def launch(self):
        """Start the sandbox; the zygote then imports TensorFlow while we do other work."""
        self.log = open(self.spool / "zygote.log", "w+")
        argv = [sys.executable, "-m", "grader.zygote"]
        self.process = subprocess.Popen(sandbox.command(self.spool, argv, self.hidden, inside=SPOOL),
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                        preexec_fn=sandbox.memory_limit(self.memory_mib),
                                        start_new_session=True)
        self.ready = False

    def wait_ready(self):
        if not self.alive():
            self.launch()
        if not self.ready:
            reply = self._read_reply(STARTUP_SECONDS)
            if not reply.get("ready"):
                raise WorkerError(f"the grading sandbox did not start ({self._last_log_line()})")
            self.ready = True

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def close(self):
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()
            self.process = None
        if self.log:
            self.log.close()
            self.log = None

    def remove(self):
        self.close()
        shutil.rmtree(self.spool, ignore_errors=True)

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
        return _last_line(self.spool / "zygote.log", "no message")

    # ------------------------------------------------------------------ one notebook

    def run(self, notebook_json, settings, limits):
        """Execute and judge one notebook. Returns (the executed notebook's JSON, the judge's verdicts'
        JSON: a list, or ``{"error": why}``); raises ``WorkerError`` or ``JobFailed``."""
        self.wait_ready()
        self.jobs += 1
        name = f"job-{self.jobs}"
        folder = self.spool / name
        (folder / ".home").mkdir(parents=True)
        (folder / "input.ipynb").write_text(notebook_json, encoding="utf-8")
        (folder / "settings.json").write_text(json.dumps(settings))
        for path in (folder, folder / ".home", folder / "input.ipynb", folder / "settings.json"):
            os.chmod(path, 0o777 if path.is_dir() else 0o666)
        try:
            try:
                request = json.dumps({"job": name, "wall_seconds": limits.wall_seconds})
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
            if reply["timed_out"]:
                raise JobFailed(f"the notebook ran longer than {limits.wall_seconds:g} s and was stopped: scored 0")
            output = read_regular_file(folder / "output.ipynb", limits.max_output_bytes)
            if output is None:
                raise JobFailed(f"execution failed ({_last_line(folder / 'driver-stderr.txt')}): scored 0")
            verdicts = read_regular_file(folder / "verdicts.json", limits.max_output_bytes) if reply.get("judged") \
                else None
            if verdicts is None:
                verdicts = json.dumps({"error": _last_line(folder / "judge-stderr.txt")})
            return output, verdicts
        finally:
            shutil.rmtree(folder, ignore_errors=True)  # rmtree never follows links out of the folder


class JobFailed(Exception):
    """The notebook itself could not be run to the end: the message is the failure row's reason."""


def read_regular_file(path, max_bytes):
    """The file's text, or None if it is missing or not a regular file: a link the student's code
    put there is never followed. JobFailed if the file is larger than ``max_bytes``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)  # a FIFO must not block us
    except OSError:
        return None
    with os.fdopen(fd, "rb") as file:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            return None
        if status.st_size > max_bytes:
            raise JobFailed(f"outputs larger than {max_bytes // 2**20} MiB: scored 0")
        return file.read(max_bytes + 1).decode("utf-8", "replace")


def _last_line(path, default="the notebook's driver wrote no message"):
    try:
        lines = (read_regular_file(path, 2**20) or "").strip().splitlines()
    except JobFailed:
        lines = []
    return lines[-1][:200] if lines else default


# --------------------------------------------------------------------------- idle servers of this process

_idle = {}  # (memory cap, hidden paths) -> servers not running a notebook now
_all = []
_lock = threading.Lock()


def _key(limits, hidden):
    return limits.memory_mib, tuple(str(p) for p in hidden)


def prestart(limits, hidden=(), count=1):
    """Launch ``count`` servers now, so that their start-up overlaps the coordinator's own work."""
    for _ in range(count):
        server = ForkServer(limits, hidden)
        server.launch()
        with _lock:
            _all.append(server)
            _idle.setdefault(_key(limits, hidden), []).append(server)


def acquire(limits, hidden=()):
    """An idle server for these limits, or a new one: each runs one notebook at a time."""
    with _lock:
        idle = _idle.setdefault(_key(limits, hidden), [])
        if idle:
            return idle.pop(0)
    server = ForkServer(limits, hidden)
    with _lock:
        _all.append(server)
    return server


def release(server, limits, hidden=()):
    with _lock:
        if server in _all:  # not stopped by close_all meanwhile
            _idle.setdefault(_key(limits, hidden), []).append(server)


def close_all():
    """Stop every fork server of this process (the end of a local batch, or exit)."""
    with _lock:
        servers = list(_all)
        _all.clear()
        _idle.clear()
    for server in servers:
        server.remove()


atexit.register(close_all)
