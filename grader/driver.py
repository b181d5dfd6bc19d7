"""Inside a job (forked by ``grader.zygote``): run a notebook on the student's kernel and judge its tests.

The job folder (``JOB_VIEW``) holds ``job.json`` (the notebook and its settings) and the kernel's
folder; the kernel sees only the latter. Cell by cell, in the notebook's order:

* a code cell that is not an autograded test — the release's given code and the student's
  cells — is sent to the kernel, through nbclient, with nbgrader's semantics (a cell that runs
  too long is interrupted and the notebook goes on; after the kernel dies, nothing runs);
* an autograded test cell is **not** sent to the kernel: it is judged here (``grader.judge``),
  at that point of the notebook, on what the kernel answers to typed requests
  (``KernelChannel``). Its outputs are the judge's.

The results, ``output.ipynb`` (every cell accounted for: a cell that never ran gets an error
output, so nbgrader can never score a test that did not run as passed) and ``verdicts.json``,
are written into the job folder, which the kernel cannot see.

The kernel is not this process's child (the zygote forked it, so that it shares no memory with
a process that has read the tests): ``ForkedProcess`` watches it through a pidfd, and
``ForkedKernel`` is the jupyter_client provisioner that lets nbclient interrupt and kill it like
any kernel it started itself.
"""

import ast
import json
import os
import select
import signal
import time
from pathlib import Path

import nbformat
from jupyter_client import AsyncKernelManager
from jupyter_client.provisioning import LocalProvisioner
from jupyter_core.utils import run_sync
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbformat.v4 import new_output

from grader import judge
from grader.limits import JOB_FILE, OUTPUT_FILE, VERDICTS_FILE

MAX_REPLY_CHARS = 64 * 2**20
INTERRUPT_GRACE_SECONDS = 5.0


class ForkedProcess:
    """The ``subprocess.Popen`` methods jupyter_client's LocalProvisioner uses, for a process that
    is not our child: watched through a pidfd, signalled by pid."""

    def __init__(self, pid):
        self.pid, self.returncode = pid, None
        self.stdin = self.stdout = self.stderr = None
        try:
            self.pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            self.pidfd, self.returncode = None, -9

    def poll(self):
        if self.returncode is None and select.select([self.pidfd], [], [], 0)[0]:
            self.returncode = -9  # exited; its status belongs to its parent, the zygote
        return self.returncode

    def wait(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                break
            time.sleep(0.02)
        return self.returncode

    def send_signal(self, signum):
        if self.poll() is None:
            try:
                signal.pidfd_send_signal(self.pidfd, signum)
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


class KernelChannel:
    """Typed requests to the student's kernel: a silent execute request whose only content is a user
    expression calling ``coursekit.answers.respond`` with the request as a JSON string literal.
    The reply is that expression's text value, read with ``ast.literal_eval`` (a string literal,
    nothing else) and then as JSON. Each test cell's requests share ``seconds``."""

    def __init__(self, client, seconds):
        self.client, self.seconds, self.deadline = client, seconds, None

    def start_test(self):
        self.deadline = time.monotonic() + self.seconds

    def request(self, payload):
        expression = f"__import__('coursekit.answers', fromlist=['respond']).respond({json.dumps(payload)!r})"
        return run_sync(self._request)(expression)

    async def _request(self, expression):
        kc, km = self.client.kc, self.client.km
        msg_id = kc.execute("", silent=True, store_history=False, user_expressions={"reply": expression},
                            allow_stdin=False, stop_on_error=False)
        interrupted = None
        while True:
            now = time.monotonic()
            if interrupted is None and now >= self.deadline:
                await km.interrupt_kernel()
                interrupted = now
            if interrupted is not None and now >= interrupted + INTERRUPT_GRACE_SECONDS:
                raise judge.ChannelTimeout(f"the kernel stopped answering: this test ran longer than "
                                           f"{self.seconds:g} s")
            try:
                message = await kc.get_shell_msg(timeout=0.2)
            except Exception:  # queue.Empty (the async client raises it as a plain Empty)
                if not await km.is_alive():
                    raise judge.KernelGone("the kernel died while answering this test") from None
                continue
            if message.get("parent_header", {}).get("msg_id") == msg_id:
                break
        if interrupted is not None:
            raise judge.ChannelTimeout(f"this test ran longer than {self.seconds:g} s and was stopped")
        content = message.get("content", {})
        result = content.get("user_expressions", {}).get("reply", {})
        if content.get("status") != "ok" or result.get("status") != "ok":
            raise judge.ChannelError("the kernel could not answer (its answer module failed)")
        text = result.get("data", {}).get("text/plain", "")
        if not isinstance(text, str) or len(text) > MAX_REPLY_CHARS:
            raise judge.ChannelError("the kernel's answer is too large")
        try:
            return json.loads(ast.literal_eval(text))
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as error:
            raise judge.ChannelError(f"the kernel's answer could not be read ({type(error).__name__})") from None


def not_run(reason):
    return new_output("error", ename="NotRun", evalue=reason, traceback=[f"\x1b[1;31mNot run:\x1b[0m {reason}"])


def verdict_outputs(verdict):
    """A test cell's outputs from its verdict: what the check printed, and an error if it failed
    (nbgrader scores a test cell by its error outputs)."""
    outputs = []
    if verdict.output:
        outputs.append(new_output("stream", name="stdout", text=verdict.output))
    if not verdict.passed:
        ename, evalue, traceback = verdict.error or ("Error", "", [])
        outputs.append(new_output("error", ename=ename, evalue=evalue, traceback=list(traceback)))
    return outputs


# Returned by nbclient as the reply of an interrupted cell, so that a kernel that ignores the
# interrupt cannot make it wait forever (the notebook's wall-clock limit still applies).
TIMEOUT_ERROR = {"ename": "CellTimeoutError", "evalue": "", "traceback": []}


def _cause_of_missing_answers(notebook, upto):
    """The error that stopped the latest answer cell before cell ``upto``, as 'Name: message'."""
    for cell in reversed(notebook.cells[:upto]):
        if cell.cell_type == "code" and cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
            errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
            return f"{errors[-1].ename}: {errors[-1].evalue}"[:300] if errors else None
    return None


def execute(notebook, settings, kernel_manager, folder):
    """Run every cell; judge every autograded test cell. Returns the verdicts."""
    seconds = float(settings["cell_seconds"])
    client = NotebookClient(
        notebook, km=kernel_manager, timeout=seconds, allow_errors=True, interrupt_on_timeout=True,
        error_on_timeout=TIMEOUT_ERROR, raise_on_iopub_timeout=False, resources={"metadata": {"path": str(folder)}})
    channel = KernelChannel(client, seconds)
    verdicts, stopped = [], None
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type != "code":
                continue
            if judge.is_autograded_test(cell):
                grade_id = cell.metadata["nbgrader"].get("grade_id")
                if stopped:
                    verdict = judge.not_judged(grade_id, stopped)
                else:
                    channel.start_test()
                    verdict = judge.judge(grade_id, cell.source, _WithCause(channel, notebook, index))
                    if verdict.kind == "not_run":
                        stopped = "the kernel died before this test"
                    elif verdict.kind == "timeout" and not run_sync(kernel_manager.is_alive)():
                        stopped = "the kernel died after a test ran too long"
                cell.outputs = verdict_outputs(verdict)
                verdicts.append(verdict)
                continue
            if stopped:
                cell.outputs = [not_run(stopped)]
                continue
            started = time.monotonic()
            try:
                client.execute_cell(cell, index)
                if time.monotonic() - started >= seconds:
                    # nbclient interrupted it; say so, the kernel's KeyboardInterrupt does not.
                    cell.outputs.append(new_output(
                        "error", ename="CellTimeoutError",
                        evalue=f"a cell ran longer than {seconds:g} s and was interrupted",
                        traceback=[f"\x1b[1;31mCellTimeoutError:\x1b[0m this cell ran longer than {seconds:g} s "
                                   "and was interrupted"]))
            except CellTimeoutError:
                cell.outputs.append(not_run(f"this cell ran longer than {seconds:g} s"))
                stopped = f"an earlier cell (cell {index}) ran longer than {seconds:g} s and did not stop"
            except DeadKernelError:
                cell.outputs.append(not_run("the kernel died while running this cell "
                                            "(sys.exit/os._exit, a crash or the memory cap)"))
                stopped = f"the kernel died in cell {index}"
            except CellExecutionError:  # allow_errors=True: only raised for unusual replies
                pass
    return verdicts


class _WithCause:
    """The channel, plus what stopped the answer cell when the kernel reports no answer."""

    def __init__(self, channel, notebook, index):
        self.channel, self.notebook, self.index = channel, notebook, index

    def request(self, payload):
        reply = self.channel.request(payload)
        if isinstance(reply, dict) and "no_answer" in reply:
            reply = {**reply, "cause": _cause_of_missing_answers(self.notebook, self.index)}
        return reply


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


def _write(folder, name, text):
    temporary = folder / f".{name}-{os.getpid()}"
    with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644), "w",
              encoding="utf-8") as file:
        file.write(text)
    os.replace(temporary, folder / name)


def main(folder, kernel_pid, connection_file):
    folder = Path(folder)
    job = json.loads((folder / JOB_FILE).read_text(encoding="utf-8"))
    notebook = nbformat.reads(job["notebook"], as_version=4)
    settings = job["settings"]
    kernel = attach(connection_file, kernel_pid)
    verdicts = execute(notebook, settings, kernel, folder)
    ForkedProcess(kernel_pid).kill()  # nothing of the student's runs while the results are written
    notebook = cap_outputs(notebook, settings.get("max_output_chars", 100_000))
    _write(folder, VERDICTS_FILE, json.dumps([v.as_dict() for v in verdicts]))
    _write(folder, OUTPUT_FILE, nbformat.writes(notebook))
