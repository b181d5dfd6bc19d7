"""Every notebook is stored clean, and every lesson runs top to bottom on a fresh kernel."""

import json

import nbformat
import pytest

from support.notebooks import ROOT, notebooks_under

ALL_NOTEBOOKS = notebooks_under("course", "solutions", "exercises")
LESSONS = notebooks_under("course")
# Solutions run top to bottom too: every visible and hidden test must pass on its own solution.
EXECUTED = LESSONS + notebooks_under("solutions")
# A Binder user gets 1-2 GB in all; one lesson kernel must leave room for JupyterLab itself.
KERNEL_MEMORY_BUDGET = 1024 * 1024 * 1024

# Lines TensorFlow and absl print to stderr when their logging is not silenced.
TENSORFLOW_NOISE = ("oneDNN", "absl::InitializeLog", "cpu_feature_guard", "I0000", "W0000", "E0000")


def rel(path):
    return str(path.relative_to(ROOT))


def test_there_are_lessons():
    assert LESSONS, "no notebooks found under course/"


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=rel)
def test_notebook_is_stored_clean(path):
    raw = json.loads(path.read_text())
    notebook = nbformat.reads(path.read_text(), as_version=4)
    nbformat.validate(notebook)
    assert raw["nbformat"] == 4
    assert notebook.metadata.kernelspec.name == "python3"
    assert notebook.metadata.kernelspec.language == "python"
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {index} is stored with outputs"
            assert cell.execution_count is None, f"cell {index} is stored with an execution count"


@pytest.mark.notebook
@pytest.mark.parametrize("path", EXECUTED, ids=rel)
def test_notebook_runs_top_to_bottom(path, executed_notebooks, record_property):
    run = executed_notebooks(path)
    record_property("notebook", rel(path))
    record_property("notebook_wall_seconds", run.wall_seconds)
    record_property("kernel_peak_mib", run.peak_rss_bytes / 2**20)
    assert run.errors == []
    noise = [(i, text) for i, text in run.stderr if any(marker in text for marker in TENSORFLOW_NOISE)]
    assert noise == [], "TensorFlow log lines reached the cell outputs"
    assert run.peak_rss_bytes <= KERNEL_MEMORY_BUDGET, (
        f"kernel peak memory {run.peak_rss_bytes / 2**20:.0f} MiB is over the 1 GiB Binder budget"
    )
