"""Inside the sandbox: execute one sanitized notebook and write the executed copy.

    python -m grader.execute_worker FOLDER

FOLDER holds ``input.ipynb`` and ``settings.json``; the result is ``output.ipynb``. This is the
only code of ours that shares the sandbox with the student's kernel, so it decides nothing: the
coordinator validates what comes back (same cells, same sources) before nbgrader scores it.

nbclient runs the cells, one at a time, rather than nbgrader's ``Execute`` preprocessor,
because a notebook whose kernel dies (``os._exit``, a crash, the memory cap) or hangs must
still come back with every cell accounted for: cells that never ran get an error output, so
that nbgrader can never score a test that did not run as passed (a test cell without output
counts as a pass). After execution, nbgrader's own IgnorePattern and LimitOutput
preprocessors run, as in ``nbgrader autograde`` (whose ClearMetadataPreprocessor is disabled
by default).
"""

import json
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbformat.v4 import new_output
from nbgrader.preprocessors import IgnorePattern, LimitOutput


def not_run(reason):
    return new_output("error", ename="NotRun", evalue=reason,
                      traceback=[f"\x1b[1;31mNot run:\x1b[0m {reason}"])


# Returned by nbclient as the reply of an interrupted cell, so that a kernel that ignores the
# interrupt cannot make it wait forever (the notebook's wall-clock limit still applies).
TIMEOUT_ERROR = {"ename": "CellTimeoutError", "evalue": "", "traceback": []}


def execute(notebook, settings, folder):
    # Like nbgrader's Execute: a cell that runs too long is interrupted, gets an error output,
    # and the notebook goes on with the next cell.
    client = NotebookClient(
        notebook, timeout=settings["cell_seconds"], kernel_name="python3", allow_errors=True,
        interrupt_on_timeout=True, error_on_timeout=TIMEOUT_ERROR, raise_on_iopub_timeout=False,
        # The sandbox is thrown away afterwards: no graceful shutdown to wait for (saves ~1 s).
        shutdown_kernel="immediate",
        extra_arguments=["--HistoryManager.hist_file=:memory:"],
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


def main(folder):
    folder = Path(folder)
    settings = json.loads((folder / "settings.json").read_text())
    notebook = nbformat.read(folder / "input.ipynb", as_version=4)
    notebook = cap_outputs(execute(notebook, settings, folder), settings.get("max_output_chars", 100_000))
    resources = {}
    ignore = IgnorePattern(pattern=settings["ignore_pattern"], enabled=True)
    notebook, resources = ignore.preprocess(notebook, resources)
    limit = LimitOutput(max_lines=settings["max_lines"], max_traceback=settings["max_traceback"])
    notebook, resources = limit.preprocess(notebook, resources)
    nbformat.write(notebook, folder / "output.ipynb")


if __name__ == "__main__":
    main(sys.argv[1])
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown; the sandbox and everything in it is discarded
