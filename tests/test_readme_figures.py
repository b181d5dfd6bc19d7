"""README's measured figures are the committed output of the runs that measured them.

tools/update_readme_figures.py writes every figures region of README.md from benchmarks/results/*.json; these
tests fail when README holds a figure no committed run wrote down, and check that every region can be written
from a file shaped as its benchmark writes it (the grader's benchmarks take the whole machine, so the suite
never runs them).
"""

import json
import shutil
import sys

import pytest

from support.notebooks import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import update_readme_figures as figures  # noqa: E402


@pytest.mark.claim("bench.widgets", "figures.browser", "figures.dask", "figures.grader", "figures.kernel",
                   "figures.lms", "figures.suite")
def test_readme_figures_are_what_the_tool_writes():
    assert figures.update(write=False) is False, "run .venv/bin/python tools/update_readme_figures.py"
    names = [match["name"] for match in figures.REGION.finditer(figures.README.read_text())]
    assert sorted(names) == sorted(figures.REGIONS), "every region the tool writes is in README, once"


@pytest.mark.claim("figures.suite")
def test_a_figure_typed_by_hand_is_rewritten_and_a_second_run_changes_nothing(tmp_path):
    readme = tmp_path / "README.md"
    text = figures.README.read_text()
    edited = text.replace("**79.1×**", "**99.9×**") if "**79.1×**" in text else text.replace(" ms (≤", " ms  (≤", 1)
    assert edited != text
    readme.write_text(edited)
    assert figures.update(readme) is True
    assert readme.read_text() == text
    assert figures.update(readme) is False


def test_a_region_the_tool_does_not_know_is_refused():
    with pytest.raises(KeyError, match="made-up"):
        figures.render("<!-- figures: made-up (written by hand) -->\n1 s\n<!-- /figures: made-up -->\n")


SAMPLES = {
    "test_suite.json": {
        "command": "./run test", "date": "2026-12-02", "cpus": 2, "platform": "Linux", "load_average_before": 1.5,
        "tests": {"passed": 470, "failed": 0, "error": 0, "skipped": 1}, "seconds": 1000.4,
        "notebooks": {"course/01-compiling-a-model.ipynb": {"wall_seconds": 20.2, "kernel_peak_mib": 619},
                      "browser: course/01-compiling-a-model.ipynb": {"wall_seconds": 21.0, "kernel_peak_mib": 620},
                      "course/02-optimizers.ipynb": {"wall_seconds": 14.0, "kernel_peak_mib": 833},
                      "solutions/quiz/quiz.ipynb": {"wall_seconds": 1.4, "kernel_peak_mib": 300},
                      "solutions/compile-and-train/tune-adam.ipynb": {"wall_seconds": 7.2, "kernel_peak_mib": 707}}},
    "bench_grader_dask.json": {  # as benchmarks/bench_grader_dask.py writes it
        "command": "benchmarks/bench_grader_dask.py --n 12", "n": 12, "date": "2026-12-02", "cpus": 2,
        "configurations": {name: {"batch_seconds": seconds, "seconds_per_submission": round(seconds / 12, 2),
                                  "submissions_per_minute": round(60 * 12 / seconds, 1)} for name, seconds in (
            ("local, 1 sandbox", 10.56), ("dask, 1 worker", 11.16), ("dask, 2 workers", 8.4),
            ("local, 2 sandboxes", 6.72))},
        "dask_overhead_per_submission_seconds": 0.05, "dask_round_trip_ms": 6.2, "dask_fixed_cost_seconds": 0.31,
        "identical_gradebooks": True,
        "tensorflow": {"first_notebook_seconds": 3.5, "warm_notebook_seconds_local": 1.26,
                       "warm_notebook_seconds_dask": 1.35, "coordinator_seconds_per_submission": 0.16,
                       "worker_threads_for_10000_an_hour": 4, "worker_threads_with_headroom": 5}},
    "bench_grader-n24.json": {
        "command": "benchmarks/bench_grader.py", "date": "2026-12-02", "n": 24, "notebooks": ["compile-for-the-task"],
        "workers": 2, "cores": 2, "stock_seconds": 108.1, "ours_seconds": 21.8, "ratio": 4.96, "target": 4.5,
        "identical_scores": True, "every_score_as_expected": True,
        "profile_seconds": {"course-grader start-up (--help; imports nbgrader)": 0.95,
                            "worker sandbox start: launch, bwrap, zygote imports TensorFlow (once per worker)": 2.4,
                            "one notebook, warm worker: fork kernel side + driver, isolate, kernel ready": 0.44,
                            "  its cells run, its 12 tests judged by requests to the kernel": 0.43,
                            "  kernel killed, cgroup emptied, results back": 0.37,
                            "= one notebook, warm worker, wall": 1.24,
                            "= one notebook, warm worker, CPU of all its processes": 0.98}},
    "bench_grader-n12-whole.json": {
        "command": "benchmarks/bench_grader.py --n 12 --whole", "date": "2026-12-02", "n": 12,
        "notebooks": ["compile-for-the-task", "numpy-losses-and-adam", "tune-adam"], "workers": 2, "cores": 2,
        "stock_seconds": 153.2, "ours_seconds": 36.6, "ratio": 4.19, "target": 4.5, "identical_scores": True,
        "every_score_as_expected": True, "profile_seconds": {}},
}


@pytest.mark.claim("figures.dask", "figures.grader")
def test_every_region_is_written_from_a_file_shaped_as_its_benchmark_writes_it(tmp_path, monkeypatch):
    results = tmp_path / "results"
    shutil.copytree(figures.RESULTS, results)
    for name, sample in SAMPLES.items():
        (results / name).write_text(json.dumps(sample))
    monkeypatch.setattr(figures, "RESULTS", results)
    assert "470 tests passed (1 skipped) in 16 min 40 s" in " ".join(figures.suite().split())
    assert "| lesson 1 | 20 s | 619 MiB | 21 s, 620 MiB |" in figures.suite()
    assert "| solutions (2 notebooks) | 1–7 s each | ≤ 707 MiB | |" in figures.suite()
    dask = " ".join(figures.grader_dask().split())
    assert "| dask, 2 workers | 0.70 | 85.7 |" in dask and "1.33× the throughput of 1" in dask
    assert "need 4 worker threads fully busy, 5 with 25 % headroom" in dask and "27 minutes for 10,000: it fits" in dask
    grader = " ".join(figures.grader_throughput().split())
    assert grader.index("24 `compile-for-the-task`") < grader.index("12 whole assignments"), "single notebooks first"
    assert "**4.96×** (≥ 4.5×)" in grader and "0.98 s of CPU" in grader
    assert "identical in both gradebooks" in grader


@pytest.mark.claim("bench.grader-method")
def test_the_grader_benchmark_mixes_right_wrong_and_broken_submissions():
    """benchmarks/bench_grader.py's submissions, as README describes them: right, wrong and broken, mixed from the
    first dozen on, so that any N grades all three kinds."""
    import importlib.util
    from itertools import islice

    spec = importlib.util.spec_from_file_location("bench_grader", ROOT / "benchmarks" / "bench_grader.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    kinds = [label.split(":")[0] for label, _, _ in islice(bench.kinds(), 12)]
    assert {"right", "wrong", "broken"} <= set(kinds), kinds
