import os
import shutil
import tempfile

import pytest

from support.notebooks import run_notebook_once
from support.postgres_server import PostgresServer, PostgresUnavailable

CACHE_VARIABLE = "COURSE_TEST_NOTEBOOK_CACHE"


def pytest_configure(config):
    # The controller makes one folder per test session; pytest-xdist workers inherit the
    # variable, so a notebook runs once per session however many workers inspect it.
    if not hasattr(config, "workerinput"):
        config._notebook_cache = tempfile.mkdtemp(prefix="course-notebooks-")
        os.environ[CACHE_VARIABLE] = config._notebook_cache


def pytest_unconfigure(config):
    if hasattr(config, "_notebook_cache"):
        shutil.rmtree(config._notebook_cache, ignore_errors=True)


@pytest.fixture(scope="session")
def executed_notebooks():
    """A function path -> NotebookRun that executes each notebook once per test session."""
    return lambda path: run_notebook_once(path, os.environ[CACHE_VARIABLE])


def pytest_terminal_summary(terminalreporter):
    """Print the wall time and kernel peak memory of every executed notebook."""
    rows = []
    for report in terminalreporter.getreports("passed") + terminalreporter.getreports("failed"):
        props = dict(report.user_properties)
        if "notebook_wall_seconds" in props and report.when == "call":
            rows.append((props["notebook"], props["notebook_wall_seconds"], props["kernel_peak_mib"]))
    if rows:
        terminalreporter.section("notebooks: wall time and kernel peak memory")
        for name, seconds, mib in sorted(rows):
            terminalreporter.write_line(f"{name:55s} {seconds:7.1f} s {mib:8.0f} MiB")


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
