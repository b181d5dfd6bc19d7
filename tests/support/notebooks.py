"""Run notebooks the way a student's "Restart kernel and run all" does, and measure them.

nbclient executes the cells; this module only adds what it does not do: read the kernel's
peak memory (the Binder budget is 1 GB per lesson kernel) and collect error and stderr outputs.
"""

import fcntl
import os
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]


def notebooks_under(*folders):
    """Every .ipynb under the given repo folders, checkpoints excluded, sorted."""
    found = []
    for folder in folders:
        found += [p for p in (ROOT / folder).rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts]
    return sorted(found)


@dataclass
class NotebookRun:
    path: Path
    notebook: nbformat.NotebookNode
    wall_seconds: float
    peak_rss_bytes: int
    errors: list = field(default_factory=list)
    stderr: list = field(default_factory=list)

    def outputs_of(self, cell_index):
        return self.notebook.cells[cell_index].get("outputs", [])

    def code_cell(self, first_line):
        """Index of the one code cell whose source starts with ``first_line``."""
        matches = [i for i, cell in enumerate(self.notebook.cells)
                   if cell.cell_type == "code" and cell.source.startswith(first_line)]
        assert len(matches) == 1, f"expected one cell starting with {first_line!r}, found {matches}"
        return matches[0]

    def text_of(self, cell_index):
        """All text a code cell showed: stream text plus text/plain results."""
        parts = []
        for output in self.outputs_of(cell_index):
            if output.output_type == "stream":
                parts.append(output.text)
            elif "data" in output and "text/plain" in output.data:
                parts.append(output.data["text/plain"])
        return "".join(parts)


def _peak_rss(pid):
    """VmHWM: the kernel process's peak resident memory since it started (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


def run_notebook(path, timeout=600, kernel_name="python3"):
    """Execute a notebook top to bottom on a fresh kernel, in its own folder.

    Raises nbclient's CellExecutionError on the first failing cell, like "Run All" stops.
    """
    path = Path(path)
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=timeout, kernel_name=kernel_name,
                            resources={"metadata": {"path": str(path.parent)}})
    started = time.perf_counter()
    with client.setup_kernel():
        pid = client.km.provisioner.pid
        for index, cell in enumerate(notebook.cells):
            client.execute_cell(cell, index)
        client.set_widgets_metadata()  # what NotebookClient.execute does after the last cell
        peak = _peak_rss(pid)
    run = NotebookRun(path, notebook, time.perf_counter() - started, peak)
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                run.errors.append((index, output.ename, output.evalue))
            elif output.output_type == "stream" and output.name == "stderr":
                run.stderr.append((index, output.text))
    return run


def run_notebook_once(path, cache_dir):
    """``run_notebook`` shared between pytest-xdist workers: the first caller in a test
    session executes the notebook, the others wait on a file lock and read its result."""
    path = Path(path)
    key = str(path.relative_to(ROOT)).replace(os.sep, "__")
    cache_dir = Path(cache_dir)
    with open(cache_dir / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result_file = cache_dir / f"{key}.pickle"
        if result_file.exists():
            return pickle.loads(result_file.read_bytes())
        run = run_notebook(path)
        result_file.write_bytes(pickle.dumps(run))
        return run


def widget_states(run, first_line):
    """The final ipywidgets states of the widget a code cell displayed, and of all its children.

    nbclient records the widgets' state as the kernel reports it (``store_widget_state``), so this is
    what the widget shows once Run All has finished. Returns a list of (model name, state dict).
    """
    states = run.notebook.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    outputs = run.outputs_of(run.code_cell(first_line))
    roots = [output["data"]["application/vnd.jupyter.widget-view+json"]["model_id"] for output in outputs
             if "application/vnd.jupyter.widget-view+json" in output.get("data", {})]
    found, pending = [], list(roots)
    while pending:
        model = states[pending.pop(0)]
        found.append((model["model_name"], model["state"]))
        pending += [child.removeprefix("IPY_MODEL_") for child in model["state"].get("children", [])]
    return found
