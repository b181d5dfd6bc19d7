"""Fixtures of the browser tests: one JupyterLab and one Chromium per test module, and what a
failing test leaves behind (a screenshot and the console log of every open page, the server log)."""

import re
import shutil

import pytest
from playwright.sync_api import sync_playwright

from browser.jupyterlab import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, BrowserPage
from browser.lab_server import LabServer

_servers = []  # the running server, for the failure report's copy of its log


@pytest.fixture(scope="module")
def lab():
    """JupyterLab from the project's environment on 127.0.0.1, serving a temporary copy of the course."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)  # only this run's failures in there
    yield from _serve(LabServer())


@pytest.fixture(scope="module")
def instructor_lab():
    """JupyterLab started as an instructor's grading workspace starts it: nbgrader's panels switched back on."""
    yield from _serve(LabServer(instructor=True))


def _serve(server):
    _servers.append(server)
    try:
        yield server
    finally:
        _servers.remove(server)
        server.stop()
        server.cleanup()


@pytest.fixture(scope="module")
def chromium():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: the browser tests use Debian's Chromium, which ./run test installs "
                    "(apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            for page in list(BrowserPage.open_pages):
                page.close()
            browser.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed and report.when in ("setup", "call"):
        folder = ARTIFACTS / re.sub(r"[^\w.-]+", "_", item.nodeid)
        shutil.rmtree(folder, ignore_errors=True)
        for page in BrowserPage.open_pages:
            page.save_artifacts(folder)
        for server in _servers:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "jupyterlab.log").write_text(server.log())
        if folder.exists():
            report.sections.append(("browser artifacts", f"screenshots and console logs in {folder}"))
    return report


def pytest_terminal_summary(terminalreporter):
    """Print the widgets' latencies in the browser.

    Only where this conftest is loaded by pytest's controller process, i.e. when tests/browser is
    named on the command line (``./run test tests/browser``); with xdist and no arguments only the
    workers load it. The lessons' run times are in the suite's notebook table either way.
    """
    lines = [value for report in terminalreporter.getreports("passed") + terminalreporter.getreports("failed")
             if report.when == "call" for name, value in report.user_properties if name == "browser_latency"]
    if lines:
        terminalreporter.section("browser: widget latencies, key press or click → new plot image in the page")
        for line in lines:
            terminalreporter.write_line(line)
