"""Inside a job's sandbox (forked by ``grader.zygote``): execute one notebook, write the executed copy.

The job folder holds ``input.ipynb`` and ``settings.json``; the result is ``output.ipynb``. This is
the only code of ours that shares the sandbox with the student's kernel, so it decides nothing:
the coordinator validates what comes back (same cells, same sources) and applies nbgrader's
IgnorePattern and LimitOutput before nbgrader scores it.

nbclient runs the cells, one at a time, rather than nbgrader's ``Execute`` preprocessor,
because a notebook whose kernel dies (``os._exit``, a crash, the memory cap) or hangs must
still come back with every cell accounted for: cells that never ran get an error output, so
that nbgrader can never score a test that did not run as passed (a test cell without output
counts as a pass).

The kernel is not started by jupyter_client (which would ``exec`` a new Python and import
TensorFlow again) but forked from this warm process (``grader.zygote.start_kernel``);
``ForkedKernel`` is the jupyter_client provisioner that lets nbclient watch, interrupt and kill it
like any kernel it started itself.
"""

import json
import os
import signal
import time
from pathlib import Path

import nbformat
from jupyter_client import AsyncKernelManager
from jupyter_client.connect import write_connection_file
from jupyter_client.provisioning import LocalProvisioner
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbformat.v4 import new_output


class ForkedProcess:
    """The ``subprocess.Popen`` methods jupyter_client's LocalProvisioner uses, for a forked child."""

    def __init__(self, pid):
        self.pid, self.returncode = pid, None
        self.stdin = self.stdout = self.stderr = None

    def poll(self):
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                pid, status = self.pid, 0
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout=None):
        while self.poll() is None:
            time.sleep(0.05)
        return self.returncode

    def send_signal(self, signum):
        if self.poll() is None:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass

    def kill(self):
        self.send_signal(signal.SIGKILL)

    def terminate(self):
        self.send_signal(signal.SIGTERM)


class ForkedKernel(LocalProvisioner):
    """jupyter_client's local provisioner around a kernel that is already running (forked)."""

    async def launch_kernel(self, cmd, **kwargs):  # never called: the kernel exists before the client
        raise RuntimeError("a forked kernel cannot be relaunched")


def attach(connection_file, pid):
    """A kernel manager for the forked kernel ``pid``, as if it had started it."""
    manager = AsyncKernelManager(kernel_name="python3", connection_file=str(connection_file))
    manager.load_connection_file()
    manager.provisioner = ForkedKernel(kernel_id="forked", kernel_spec=manager.kernel_spec, parent=manager)
    manager.provisioner.process = ForkedProcess(pid)
    manager.provisioner.pid = pid
    return manager


def not_run(reason):
    return new_output("error", ename="NotRun", evalue=reason,
                      traceback=[f"\x1b[1;31mNot run:\x1b[0m {reason}"])


# Returned by nbclient as the reply of an interrupted cell, so that a kernel that ignores the
# interrupt cannot make it wait forever (the notebook's wall-clock limit still applies).
TIMEOUT_ERROR = {"ename": "CellTimeoutError", "evalue": "", "traceback": []}


def execute(notebook, settings, folder, kernel_manager):
    # Like nbgrader's Execute: a cell that runs too long is interrupted, gets an error output,
    # and the notebook goes on with the next cell.
    client = NotebookClient(
        notebook, km=kernel_manager, timeout=settings["cell_seconds"], allow_errors=True,
        interrupt_on_timeout=True, error_on_timeout=TIMEOUT_ERROR, raise_on_iopub_timeout=False,
        resources={"metadata": {"path": str(folder)}})
    stopped = None
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type != "code":
                continue
            if stopped:
                cell.outputs = [not_run(stopped)]
                continue
            started = time.monotonic()
            try:
                client.execute_cell(cell, index)
                if time.monotonic() - started >= settings["cell_seconds"]:
                    # nbclient interrupted it; say so, the kernel's KeyboardInterrupt does not.
                    cell.outputs.append(new_output("error", ename="CellTimeoutError",
                                                   evalue=f"a cell ran longer than {settings['cell_seconds']:g} s "
                                                          "and was interrupted",
                                                   traceback=["\x1b[1;31mCellTimeoutError:\x1b[0m this cell ran "
                                                              f"longer than {settings['cell_seconds']:g} s and was "
                                                              "interrupted"]))
            except CellTimeoutError:
                cell.outputs.append(not_run(f"this cell ran longer than {settings['cell_seconds']:g} s"))
                stopped = f"an earlier cell (cell {index}) exceeded the time limit"
            except DeadKernelError:
                cell.outputs.append(not_run("the kernel died while running this cell "
                                            "(sys.exit/os._exit, a crash or the memory limit)"))
                stopped = f"the kernel died in cell {index}"
            except CellExecutionError:  # allow_errors=True: only raised for unusual replies
                pass
    return notebook


def cap_outputs(notebook, max_chars):
    """Cut any one output down to ``max_chars``: nbgrader's LimitOutput counts lines, and a
    single line of 50 MB would otherwise travel into the gradebook and the feedback."""
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream" and len(output.text) > max_chars:
                output.text = output.text[:max_chars] + f"\n... [output cut at {max_chars} characters]\n"
            for mime, value in list(output.get("data", {}).items()):
                if isinstance(value, str) and len(value) > max_chars:
                    output.data[mime] = f"[{mime} output larger than {max_chars} characters removed]"
    return notebook


def main(folder, start_kernel, report_fd):
    """Run ``folder``/input.ipynb on a kernel from ``start_kernel(connection_file, close_fds)``;
    the kernel's pid goes to ``report_fd`` (the zygote kills its PID namespace at the end)."""
    folder = Path(folder)
    settings = json.loads((folder / "settings.json").read_text())
    notebook = nbformat.read(folder / "input.ipynb", as_version=4)
    connection_file = folder / ".home" / "kernel.json"
    connection_file.parent.mkdir(exist_ok=True)
    write_connection_file(str(connection_file), ip="127.0.0.1")
    pid = start_kernel(connection_file, close_fds=(report_fd,))
    os.write(report_fd, f"{pid}\n".encode())
    os.close(report_fd)
    notebook = execute(notebook, settings, folder, attach(connection_file, pid))
    # Nothing of the student's may run while the result is written: kill the kernel's namespace.
    kernel = ForkedProcess(pid)
    kernel.kill()  # nothing if the kernel has already died (and been waited for by nbclient)
    kernel.wait()
    notebook = cap_outputs(notebook, settings.get("max_output_chars", 100_000))
    # A new file renamed into place: whatever the student's code left at that name (a link, a
    # pipe) is replaced, never followed or waited on.
    temporary = folder / f".output-{os.getpid()}.ipynb"
    with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644), "w",
              encoding="utf-8") as file:
        nbformat.write(notebook, file)
    os.replace(temporary, folder / "output.ipynb")
