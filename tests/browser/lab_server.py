"""A JupyterLab of the project's own environment, on 127.0.0.1, serving a throw-away copy of the course.

The tests never touch the repository's notebooks: the server's root is a temporary folder holding
copies of ``course/``, ``exercises/``, ``solutions/`` and ``nbgrader_config.py`` (nbgrader's panels read
the course from the server's working directory, as they do in an instructor's workspace). Jupyter's
user folders (config, data, runtime) point into the same temporary folder, so the tests see only the
project's kernel and settings, and the user's own ~/.jupyter cannot change what they see.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

from support.notebooks import ROOT

COPIED = ("course", "exercises", "solutions", "nbgrader_config.py")
IGNORED = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "*.egg-info", "gradebook.db")


def stop_server(server):
    """End a Jupyter server (a ``Popen`` in a session of its own) gracefully — it shuts its kernels
    down — then anything it left behind.

    Kernels run in sessions of their own (jupyter_client starts them so), so signalling the
    server's process group does not reach them: they are looked up as its descendants first.
    """
    try:
        descendants = psutil.Process(server.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
    _, alive = psutil.wait_procs(descendants, timeout=10)
    for process in alive:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=10)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class JupyterServerProcess:
    """A Jupyter server started by ``command`` in a session of its own, logging to ``log_path``:
    ``stop()`` ends it and every kernel it started. Subclasses set ``url`` and ``token`` first."""

    def _start(self, command, env, log_path, timeout, cwd=None):
        self.log_path = log_path
        self._log = open(log_path, "w")
        # Its own process group: stop() signals the server and the kernels it started together.
        self.process = subprocess.Popen(command, cwd=cwd, env=env, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_until_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_until_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.api("status")
                return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the Jupyter server exited ({self.process.returncode}):\n{self.log()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the Jupyter server did not answer within {timeout} s:\n{self.log()}")
                time.sleep(0.3)

    def api(self, path, method="GET"):
        request = urllib.request.Request(f"{self.url}/api/{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def log(self):
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self):
        stop_server(self.process)
        self._log.close()


class LabServer(JupyterServerProcess):
    """``jupyter lab`` from the project's environment; ``stop()`` ends it and every kernel it started."""

    def __init__(self, startup_timeout=120, instructor=False):
        """``instructor=True``: a grading configuration folder brings nbgrader's instructor panels back
        (``coursekit.install.enable_instructor_panels``), as an instructor's workspace does."""
        self.scratch = Path(tempfile.mkdtemp(prefix="course-browser-"))
        self.root = self.scratch / "workspace"
        self.root.mkdir()
        for name in COPIED:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, self.root / name, ignore=IGNORED)
            else:
                shutil.copy2(source, self.root / name)
        config_dir = self.scratch / "config"
        config_dir.mkdir()
        # nbgrader's assignment list reads the exchange from Jupyter's config path; keep it in the
        # scratch folder instead of the system-wide default (/usr/local/share/nbgrader/exchange).
        exchange = self.scratch / "exchange"
        exchange.mkdir()
        (config_dir / "nbgrader_config.py").write_text(f"c.Exchange.root = {str(exchange)!r}\n")
        self.port = free_port()
        self.token = "course-browser-test"
        self.url = f"http://127.0.0.1:{self.port}"
        instructor_env = {}
        if instructor:
            from coursekit.install import enable_instructor_panels, instructor_environment

            grading_config = self.scratch / "grading-config"
            enable_instructor_panels(grading_config)
            instructor_env = instructor_environment(grading_config, environ={})
        env = {**os.environ, **instructor_env,
               "JUPYTER_CONFIG_DIR": str(config_dir),
               "JUPYTER_DATA_DIR": str(self.scratch / "data"),
               "JUPYTER_RUNTIME_DIR": str(self.scratch / "runtime"),
               "JUPYTERLAB_WORKSPACES_DIR": str(self.scratch / "workspaces"),
               "PYTHONNOUSERSITE": "1"}
        venv_bin = str(Path(sys.executable).parent)
        env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
        command = [str(Path(venv_bin) / "jupyter"), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
                   f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
                   "--ServerApp.port_retries=0"]
        if os.geteuid() == 0:
            command.append("--allow-root")  # Jupyter refuses root unless told (CI containers run as root)
        self._start(command, env, self.scratch / "jupyterlab.log", startup_timeout, cwd=self.root)

    def lab_url(self, path=""):
        return f"{self.url}/lab/tree/{path}?token={self.token}" if path else f"{self.url}/lab?token={self.token}"

    def kernel_pid(self, notebook_path):
        """The process of the kernel that runs ``notebook_path`` (relative to the server's root)."""
        (kernel_id,) = [session["kernel"]["id"] for session in self.api("sessions") if session["path"] == notebook_path]
        (pid,) = [child.pid for child in psutil.Process(self.process.pid).children(recursive=True)
                  if f"kernel-{kernel_id}.json" in " ".join(child.cmdline())]
        return pid

    def cleanup(self):
        shutil.rmtree(self.scratch, ignore_errors=True)
