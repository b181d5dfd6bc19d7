import json
import os
import platform
import shutil
import tempfile
import time
from datetime import date

import pytest

from support.notebooks import run_notebook_once
from support.postgres_server import PostgresServer, PostgresUnavailable

CACHE_VARIABLE = "COURSE_TEST_NOTEBOOK_CACHE"
# COURSE_SUITE_RESULTS=benchmarks/results/test_suite.json ./run test writes the run's figures there (tests,
# time, every notebook's wall time and kernel peak memory) when the whole suite passes; README's are made from
# that file by tools/update_readme_figures.py.
RESULTS_VARIABLE = "COURSE_SUITE_RESULTS"


def pytest_configure(config):
    # The controller makes one folder per test session; pytest-xdist workers inherit the
    # variable, so a notebook runs once per session however many workers inspect it.
    if not hasattr(config, "workerinput"):
        config._suite_started = (time.time(), os.getloadavg()[0])
        config._notebook_cache = tempfile.mkdtemp(prefix="course-notebooks-")
        os.environ[CACHE_VARIABLE] = config._notebook_cache


def pytest_unconfigure(config):
    if hasattr(config, "_notebook_cache"):
        shutil.rmtree(config._notebook_cache, ignore_errors=True)


@pytest.fixture(scope="session")
def executed_notebooks():
    """A function path -> NotebookRun that executes each notebook once per test session."""
    return lambda path: run_notebook_once(path, os.environ[CACHE_VARIABLE])


def notebook_rows(terminalreporter):
    """(name, wall seconds, kernel peak MiB) of every notebook run the tests recorded."""
    rows = []
    for report in terminalreporter.getreports("passed") + terminalreporter.getreports("failed"):
        props = dict(report.user_properties)
        if "notebook_wall_seconds" in props and report.when == "call":
            rows.append((props["notebook"], props["notebook_wall_seconds"], props["kernel_peak_mib"]))
    return sorted(rows)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Print the wall time and kernel peak memory of every executed notebook (and write the run's figures)."""
    rows = notebook_rows(terminalreporter)
    if rows:
        terminalreporter.section("notebooks: wall time and kernel peak memory")
        for name, seconds, mib in rows:
            terminalreporter.write_line(f"{name:55s} {seconds:7.1f} s {mib:8.0f} MiB")
    target = os.environ.get(RESULTS_VARIABLE)
    if target and not hasattr(config, "workerinput"):
        write_suite_results(terminalreporter, config, exitstatus, rows, target)


def write_suite_results(terminalreporter, config, exitstatus, rows, target):
    counts = {outcome: len({r.nodeid for r in terminalreporter.stats.get(outcome, []) if hasattr(r, "nodeid")})
              for outcome in ("passed", "failed", "error", "skipped")}
    tests = os.path.realpath(os.path.join(str(config.rootpath), "tests"))
    whole = all(os.path.realpath(os.path.join(str(config.invocation_params.dir), a)) == tests for a in config.args)
    if exitstatus != 0 or not whole or config.option.keyword or config.option.markexpr:
        terminalreporter.write_line(f"{RESULTS_VARIABLE}: not written (only a whole suite that passes is recorded)")
        return
    started, load_before = config._suite_started
    results = {
        "command": "./run test", "date": date.today().isoformat(), "cpus": os.cpu_count(),
        "platform": platform.platform(), "load_average_before": round(load_before, 2),
        "tests": counts, "seconds": round(time.time() - started, 1),
        "notebooks": {name: {"wall_seconds": round(seconds, 1), "kernel_peak_mib": round(mib)}
                      for name, seconds, mib in rows},
    }
    path = os.path.join(str(config.rootpath), target) if not os.path.isabs(target) else target
    with open(path, "w") as out:
        out.write(json.dumps(results, indent=1) + "\n")
    terminalreporter.write_line(f"{RESULTS_VARIABLE}: the run's figures are in {target}")


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server, started once per test worker and removed at its end."""
    try:
        server = PostgresServer().start()
    except PostgresUnavailable as error:
        pytest.fail(str(error))  # ./run installs the server; a missing one is a set-up bug, not a skip
    try:
        yield server
    finally:
        server.stop()
