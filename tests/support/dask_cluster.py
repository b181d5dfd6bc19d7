"""A real Dask cluster on 127.0.0.1 for tests and benchmarks: one ``dask scheduler`` and N
``dask worker`` processes started with Dask's own command line from this environment, each in
its own process group, on free ports; stopped (and their process groups killed) on exit.

Each ``dask worker`` is a nanny process with one worker process under it (``--nworkers 1``): when
the worker process dies, the nanny starts a new one, as on a real cluster.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DASK = str(Path(sys.executable).with_name("dask"))


class DaskCluster:
    def __init__(self, workers=2, threads=1, scheduler_env=None, worker_env=None, dashboard=True):
        self.n_workers = workers
        self.threads = threads
        self.scheduler_env = scheduler_env or {}
        self.worker_env = worker_env or {}
        self.dashboard = dashboard
        self.folder = Path(tempfile.mkdtemp(prefix="grader-dask-"))
        self.scheduler_file = self.folder / "scheduler.json"
        self.processes = []  # (name, Popen, log file)

    # ------------------------------------------------------------------ start and stop

    def _start(self, name, argv, env):
        log = open(self.folder / f"{name}.log", "wb")
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   cwd=self.folder, env={**os.environ, **env}, start_new_session=True)
        self.processes.append((name, process, log))
        return process

    def start(self, timeout=60):
        dashboard = ["--dashboard-address", "127.0.0.1:0"] if self.dashboard else ["--no-dashboard"]
        self._start("scheduler", [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0",
                                  "--scheduler-file", str(self.scheduler_file), *dashboard], self.scheduler_env)
        deadline = time.monotonic() + timeout
        while not self.scheduler_file.is_file():
            self._check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Dask scheduler did not start:\n{self.logs()}")
            time.sleep(0.1)
        time.sleep(0.2)  # the file is written in one go, but give the writer a moment
        self.address = json.loads(self.scheduler_file.read_text())["address"]
        for index in range(self.n_workers):
            self._start(f"worker-{index}", [DASK, "worker", "--scheduler-file", str(self.scheduler_file),
                                            "--host", "127.0.0.1", "--nworkers", "1",
                                            "--nthreads", str(self.threads), "--no-dashboard",
                                            "--name", f"worker-{index}",
                                            "--local-directory", str(self.folder / f"worker-{index}")],
                        self.worker_env)
        self.wait_for_workers(self.n_workers, timeout=max(0, deadline - time.monotonic()))
        return self

    def _check_alive(self):
        for name, process, _ in self.processes:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{self.logs()}")

    def client(self):
        from distributed import Client

        return Client(self.address, timeout=30)

    def wait_for_workers(self, n, timeout=60):
        with self.client() as client:
            client.wait_for_workers(n, timeout=timeout)

    def stop(self):
        for _, process, _ in reversed(self.processes):  # workers first, then the scheduler
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for _, process, log in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
            try:  # the whole group: a nanny's worker process, a sandbox left behind
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()
            log.close()

    def cleanup(self):
        shutil.rmtree(self.folder, ignore_errors=True)

    def logs(self):
        return "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
                         for path in sorted(self.folder.glob("*.log")))

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()
