"""A throw-away PostgreSQL server for tests: started from the machine's own binaries, in a
temporary folder, on a free port of 127.0.0.1, and stopped and deleted afterwards.

PostgreSQL refuses to run as root; when the tests run as root (CI, containers), the server runs
as the unprivileged ``nobody`` user (through ``runuser``), with a data folder owned by it.
``./run`` installs the server binaries (Debian's ``postgresql`` package) when they are missing.
"""

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

SUPERUSER = "grader"  # the server's superuser (trust authentication on 127.0.0.1 only)


class PostgresUnavailable(RuntimeError):
    pass


def binaries():
    """The folder with initdb/pg_ctl/postgres: on PATH, or Debian's /usr/lib/postgresql/N/bin."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if candidates:
        return Path(candidates[-1]).parent
    raise PostgresUnavailable("PostgreSQL's server binaries (initdb, pg_ctl) were not found; "
                              "install them with `apt-get install postgresql` (./run does this for you).")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresServer:
    def __init__(self):
        self.bin = binaries()
        self.as_other_user = os.geteuid() == 0
        self.folder = Path(tempfile.mkdtemp(prefix="grader-postgres-"))
        os.chmod(self.folder, 0o755)
        self.data = self.folder / "data"
        self.socket_dir = self.folder / "socket"
        self.log = self.folder / "server.log"
        self.port = None
        self.pid = None

    def _run(self, *args, check=True):
        argv = [str(self.bin / args[0]), *map(str, args[1:])]
        if self.as_other_user:
            argv = ["runuser", "-u", "nobody", "--", *argv]
        result = subprocess.run(argv, capture_output=True, text=True, cwd=self.folder, timeout=120,
                                env={**os.environ, "LC_ALL": "C", "LANG": "C"})
        if check and result.returncode != 0:
            log = self.log.read_text()[-3000:] if self.log.exists() else ""
            raise PostgresUnavailable(f"{' '.join(argv)} failed ({result.returncode}):\n"
                                      f"{result.stdout}\n{result.stderr}\n{log}")
        return result

    def start(self):
        self.socket_dir.mkdir()
        self.log.touch()
        if self.as_other_user:
            for path in (self.folder, self.socket_dir, self.log):
                shutil.chown(path, "nobody", "nogroup" if _group_exists("nogroup") else "nobody")
        self._run("initdb", "-D", self.data, "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8",
                  "--no-sync", "--no-instructions")
        for _ in range(5):  # the port may be taken between choosing and binding: retry
            self.port = free_port()
            options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} "
                       f"-c unix_socket_directories={self.socket_dir} -c fsync=off "
                       f"-c synchronous_commit=off -c full_page_writes=off -c max_connections=40")
            started = self._run("pg_ctl", "-D", self.data, "-l", self.log, "-o", options, "-w", "-t", "60",
                                "start", check=False)
            if started.returncode == 0:
                break
        else:
            raise PostgresUnavailable(f"PostgreSQL did not start:\n{self.log.read_text()[-3000:]}")
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])
        return self

    def url(self, database, driver="psycopg"):
        return f"postgresql+{driver}://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name):
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres",
                             autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self):
        try:
            if self.data.exists() and self.pid:
                self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "30", "stop", check=False)
            if self.pid and alive(self.pid):  # pg_ctl could not stop it: the postmaster takes its children along
                os.kill(self.pid, signal.SIGQUIT)
                deadline = time.monotonic() + 10
                while alive(self.pid) and time.monotonic() < deadline:
                    time.sleep(0.1)
                if alive(self.pid):
                    os.kill(self.pid, signal.SIGKILL)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def alive(pid):
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is not running; the postmaster is not our child, so it is reaped by init
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _group_exists(name):
    import grp

    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False
