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

# Lines TensorFlow and absl print when their logging is not silenced (on stderr, or through Python's
# logging, e.g. "WARNING:tensorflow:5 out of the last 5 calls ... triggered tf.function retracing").
TENSORFLOW_NOISE = ("oneDNN", "absl::InitializeLog", "cpu_feature_guard", "I0000", "W0000", "E0000",
                    "WARNING:tensorflow", "triggered tf.function retracing")


def rel(path):
    return str(path.relative_to(ROOT))


def test_there_are_lessons():
    assert LESSONS, "no notebooks found under course/"


@pytest.mark.claim("suite.clean-notebooks")
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


@pytest.mark.claim("course.quiet-tensorflow", "course.versions", "readme.kernel-memory", "readme.real-keras")
@pytest.mark.notebook
@pytest.mark.parametrize("path", EXECUTED, ids=rel)
def test_notebook_runs_top_to_bottom(path, executed_notebooks, record_property):
    run = executed_notebooks(path)
    record_property("notebook", rel(path))
    record_property("notebook_wall_seconds", run.wall_seconds)
    record_property("kernel_peak_mib", run.peak_rss_bytes / 2**20)
    assert run.errors == []
    streams = [(i, output.text) for i, cell in enumerate(run.notebook.cells) for output in cell.get("outputs", [])
               if output.output_type == "stream"]
    noise = [(i, text) for i, text in streams if any(marker in text for marker in TENSORFLOW_NOISE)]
    assert noise == [], "TensorFlow log lines reached the cell outputs"
    assert run.peak_rss_bytes <= KERNEL_MEMORY_BUDGET, (
        f"kernel peak memory {run.peak_rss_bytes / 2**20:.0f} MiB is over the 1 GiB Binder budget"
    )


@pytest.mark.claim("course.sharp-figures")
@pytest.mark.notebook
@pytest.mark.parametrize("path", LESSONS, ids=rel)
def test_lesson_figures_have_twice_the_pixels_of_their_size_on_screen(path, executed_notebooks):
    """coursekit.sharp_figures(): every inline PNG is shown at half its pixel size (HiDPI, "retina")."""
    import base64
    import io

    from PIL import Image

    run = executed_notebooks(path)
    images = [(index, output) for index, cell in enumerate(run.notebook.cells) for output in cell.get("outputs", [])
              if "image/png" in output.get("data", {})]
    if "plt." not in "".join(cell.source for cell in run.notebook.cells) and not images:
        pytest.skip("no inline figures")
    assert images
    for index, output in images:
        width, height = Image.open(io.BytesIO(base64.b64decode(output.data["image/png"]))).size
        shown = output.metadata["image/png"]
        assert (shown["width"], shown["height"]) == (width // 2, height // 2), f"cell {index}"


@pytest.mark.parametrize("path", LESSONS, ids=rel)
def test_lesson_code_sets_no_font_below_10_points(path):
    """Inline figures are shown at 100 dpi's size: 10 pt is 13.9 px; Matplotlib's defaults are 10 pt and up."""
    import re

    sources = "".join(cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code")
    sizes = [float(size) for size in re.findall(r"fontsize\s*=\s*([\d.]+)", sources)]
    assert all(size >= 10 for size in sizes), sizes
    assert "rcParams" not in sources and "plt.rc(" not in sources
