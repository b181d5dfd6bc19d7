"""Driving JupyterLab 4 and ipywidgets 8 in Chromium the way a student does, through the page only.

Every action is what a person does: open a URL, pick a menu item, press a key on a slider, type
into a cell, click a button. Selectors are JupyterLab's and ipywidgets' own classes (see the
course's DOM notes in tests/browser/test_course_in_browser.py).
"""

import os
import re
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import expect

from support.notebooks import ROOT

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package, installed by ./run test
CHROMIUM_ARGS = [
    "--no-sandbox",  # the sandbox needs user namespaces, which root in a container does not get
    "--disable-gpu",
    "--disable-background-networking",  # no calls home: the machine may have no internet
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
# README's pictures are refreshed only on request (UPDATE_SCREENSHOTS=1 ./run test tests/browser):
# a widget's status line shows timings, so every run would otherwise leave the tree dirty.
SCREENSHOTS = (ROOT / "docs" / "screenshots" if os.environ.get("UPDATE_SCREENSHOTS") == "1"
               else ROOT / "test-artifacts" / "screenshots")

IDLE = '.jp-Notebook-ExecutionIndicator[data-status="idle"]'
# JupyterLab 4 renders an error output (traceback) and stderr text with this MIME type.
STDERR_OUTPUT = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
WIDGET_VIEW = ".jp-OutputArea-output > .jupyter-widgets"  # the top-level view of a displayed widget
PLOT = "img.widget-image"  # FigureImage is an ipywidgets.Image: an <img> with a blob: URL
# "New image on screen": the <img> got a new blob: URL, the browser decoded it, and the next
# animation frame (the one that paints it) began. Times are the page's clock (performance.now()).
FRAME_CLOCK_JS = """img => {
    if (img.__frames) return;
    img.__frames = [];
    new MutationObserver(() => {
        const src = img.src;
        img.decode().then(() => requestAnimationFrame(() => {
            if (img.src === src) img.__frames.push(performance.now());
        }), () => {});  // replaced before it was decoded: never on screen
    }).observe(img, {attributes: true, attributeFilter: ['src']});
}"""
# When the student acted: the event's own time stamp (same clock), recorded before any handler runs.
INPUT_CLOCK_JS = """() => {
    if (window.__inputs) return;
    window.__inputs = [];
    for (const type of ['keydown', 'pointerdown', 'pointerup', 'change'])
        document.addEventListener(type, event => window.__inputs.push([type, event.timeStamp]), true);
}"""


class BrowserPage:
    """One browser context and page, with everything its console said (iframes included)."""

    open_pages = []  # what a failing test's report saves a screenshot and console log of

    def __init__(self, browser, name, viewport=None):
        self.name = name
        self.context = browser.new_context(viewport=viewport or {"width": 1500, "height": 1100})
        self.context.set_default_timeout(30_000)
        self.page = self.context.new_page()
        self.console = []
        self.page.on("console", lambda message: self.console.append(
            (message.type, message.text, message.location.get("url", ""))))
        self.page.on("pageerror", lambda error: self.console.append(("pageerror", str(error), "")))
        BrowserPage.open_pages.append(self)

    def errors(self, since=0, harmless=()):
        """Console errors and uncaught exceptions, except those matching a ``harmless`` pattern."""
        return [f"{kind}: {text} ({where})" for kind, text, where in self.console[since:]
                if kind in ("error", "pageerror") and not any(re.search(p, text) for p in harmless)]

    def console_text(self):
        return "\n".join(f"[{kind}] {text}  {where}" for kind, text, where in self.console)

    def save_artifacts(self, folder):
        folder.mkdir(parents=True, exist_ok=True)
        try:
            self.page.screenshot(path=folder / f"{self.name}.png", full_page=True, timeout=10_000)
        except Exception as error:  # a crashed page still gets its console log saved
            (folder / f"{self.name}.screenshot-failed.txt").write_text(repr(error))
        (folder / f"{self.name}.console.log").write_text(self.console_text() + "\n")

    def close(self):
        if self in BrowserPage.open_pages:
            BrowserPage.open_pages.remove(self)
        self.context.close()


def open_lab(session, server, path=None):
    """Open JupyterLab on ``path`` (or the launcher) in a fresh workspace (``?reset``)."""
    url = server.lab_url(path).replace("?token=", "?reset&token=")
    session.page.goto(url)
    if path and path.endswith(".ipynb"):
        wait_for_kernel(session.page, timeout_s=90)
    else:
        session.page.wait_for_selector(".jp-LauncherCard", timeout=90_000)


def menu(page, top, item):
    """Click a main-menu entry, e.g. ``menu(page, "Run", "Run All Cells")``."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{re.escape(top)}$")).click()
    page.locator(".lm-Menu:visible .lm-Menu-item", has_text=re.compile(f"^{re.escape(item)}")).first.click()


def code_prompts(page):
    """The execution-count prompt of every code cell: '[ ]:', '[*]:' or '[12]:'.

    textContent, not innerText: JupyterLab skips rendering cells far outside the viewport
    (``content-visibility``), and innerText of those is empty.
    """
    return page.locator(".jp-CodeCell .jp-InputArea-prompt").evaluate_all(
        "prompts => prompts.map(p => p.textContent.trim())")


def run_all_cells(page, timeout_s=300):
    """Run → Run All Cells, then wait until nothing is queued and the kernel is idle."""
    menu(page, "Run", "Run All Cells")
    page.wait_for_function(
        """idle => {
            const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')]
                .map(p => p.textContent.trim());
            return document.querySelector(idle) !== null && !prompts.includes('[*]:')
                && prompts.some(p => /^\\[\\d+\\]:$/.test(p));
        }""", arg=IDLE, timeout=timeout_s * 1000, polling=250)


def stderr_outputs(page):
    return page.locator(STDERR_OUTPUT).evaluate_all("outputs => outputs.map(o => o.textContent)")


def widget_views(page):
    return page.locator(WIDGET_VIEW)


def assert_widgets_render(page, expected):
    """``expected`` widgets are shown, none is an error or a text fallback, and each plot is a loaded image."""
    views = widget_views(page)
    expect(views).to_have_count(expected, timeout=30_000)
    texts = views.evaluate_all("views => views.map(v => v.textContent)")
    assert not [t for t in texts if "Error displaying widget" in t or "Loading widget" in t], texts
    # Without a widget manager JupyterLab falls back to the text/plain repr, e.g. "VBox(children=..."
    fallbacks = page.locator('.jp-OutputArea-output[data-mime-type="text/plain"]').evaluate_all(
        "outputs => outputs.map(o => o.textContent).filter(t => /^(VBox|HBox|[A-Za-z]*Widget)\\(/.test(t))")
    assert fallbacks == [], f"widgets shown as text, no widget manager? {fallbacks}"
    for index in range(expected):
        plot = views.nth(index).locator(PLOT)
        expect(plot).to_have_count(1)
        plot.scroll_into_view_if_needed()
        page.wait_for_function("img => img.complete && img.naturalWidth > 100", arg=plot.element_handle())


def wait_for_kernel(page, timeout_s):
    """Wait until the notebook's kernel is connected and idle.

    The indicator alone is not enough: a just-opened notebook shows "idle" for a moment before
    its kernel starts (No Kernel → Initializing → Connecting → Idle), and cells run in that
    moment are lost. The status bar names the kernel once it is connected.
    """
    page.wait_for_function(
        """idle => document.querySelector(idle) !== null && [...document.querySelectorAll('.jp-StatusBar-TextItem')]
            .some(item => item.textContent.trim() === 'Python 3 (ipykernel) | Idle')""",
        arg=IDLE, timeout=timeout_s * 1000, polling=100)


def wait_idle(page, timeout_s=60):
    page.wait_for_selector(IDLE, timeout=timeout_s * 1000)


@dataclass
class Latencies:
    """Browser-side latencies of one widget: key press (or click) → new plot image in the page."""

    widget: str
    target_ms: float
    samples_ms: list = field(default_factory=list)

    @property
    def median_ms(self):
        return statistics.median(self.samples_ms)

    def line(self):
        return (f"{self.widget:34s} median {self.median_ms:6.0f} ms  max {max(self.samples_ms):6.0f} ms  "
                f"n={len(self.samples_ms):2d}  (kernel-side target {self.target_ms:.0f} ms)")


class WidgetView:
    """One displayed widget box: its controls and its plot, watched for redraws."""

    def __init__(self, page, locator):
        self.page = page
        self.box = locator
        self.box.scroll_into_view_if_needed()
        self.plot = locator.locator(PLOT)
        self._plot_handle = self.plot.element_handle()
        page.evaluate(INPUT_CLOCK_JS)
        self._plot_handle.evaluate(FRAME_CLOCK_JS)

    def slider_names(self):
        return self.box.locator(".widget-slider .widget-label").all_text_contents()

    def slider(self, name):
        return self.box.locator(".widget-slider").filter(
            has=self.page.locator(".widget-label", has_text=re.compile(f"^{re.escape(name)}$")))

    def readout(self, name):
        return self.slider(name).locator(".widget-readout").text_content().strip()

    def plot_pixels(self):
        """What the plot looks like on screen now (a PNG screenshot of the <img>)."""
        self.plot.scroll_into_view_if_needed()
        return self.plot.screenshot(animations="disabled")

    def frames(self):
        """Page-clock times (ms) at which a new plot image was decoded and about to be painted."""
        return self._plot_handle.evaluate("img => img.__frames.slice()")

    def _changes(self):
        return self._plot_handle.evaluate("img => img.__frames.length")

    def inputs(self):
        """(event type, page-clock time in ms) of every key, pointer and change event so far."""
        return self.page.evaluate("() => window.__inputs.slice()")

    def _act_and_time(self, action, timeout_s, event_types=("keydown", "pointerdown", "change")):
        """Do ``action``; return ms from its first input event until the next plot image was painted."""
        seen = self._changes()
        inputs_seen = len(self.inputs())
        action()
        self.page.wait_for_function("([img, seen]) => img.__frames.length > seen",
                                    arg=[self._plot_handle, seen], timeout=timeout_s * 1000, polling="raf")
        started = next(time for kind, time in self.inputs()[inputs_seen:] if kind in event_types)
        return self.frames()[seen] - started

    def _settle(self, quiet_s=0.3, timeout_s=30):
        """Kernel idle and no new image for ``quiet_s``: the plot shows the controls' final state.

        With continuous updates a redraw for an in-between value can arrive first; a background
        update (lesson 2) may still be running after the kernel went idle.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            wait_idle(self.page, timeout_s)
            count = self._changes()
            time.sleep(quiet_s)
            if self._changes() == count and self.page.locator(IDLE).count():
                return
            assert time.monotonic() < deadline, "the plot kept changing"

    def press_slider(self, name, timeout_s=10, direction=None):
        """Focus the slider's handle and press one arrow key: → (``direction="up"``), ← (``"down"``),
        or by default → unless the handle is at the top of its range. At either end of the range
        the key goes the other way.

        Returns (latency in ms, readout before, readout after) once the plot has settled.
        """
        handle = self.slider(name).locator(".noUi-handle")
        handle.scroll_into_view_if_needed()
        at_bottom, at_top = handle.evaluate(
            """h => [Number(h.getAttribute('aria-valuenow')) <= Number(h.getAttribute('aria-valuemin')),
                     Number(h.getAttribute('aria-valuenow')) >= Number(h.getAttribute('aria-valuemax'))]""")
        up = direction != "down"
        if (up and at_top) or (not up and at_bottom):
            up = not up
        key = "ArrowRight" if up else "ArrowLeft"
        before = self.readout(name)
        handle.focus()
        latency = self._act_and_time(lambda: self.page.keyboard.press(key), timeout_s)
        expect(self.slider(name).locator(".widget-readout")).not_to_have_text(before)
        self._settle()
        return latency, before, self.readout(name)

    def click_and_time(self, locator, timeout_s=10):
        latency = self._act_and_time(locator.click, timeout_s)
        self._settle()
        return latency

    def select_and_time(self, select, value, timeout_s=10):
        latency = self._act_and_time(lambda: select.select_option(value), timeout_s)
        self._settle()
        return latency

    def save_screenshot(self, name):
        """The whole widget (controls and plot) as the README shows it."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        output = self.box.locator("xpath=..")  # the output area around it: a few pixels of margin
        output.scroll_into_view_if_needed()
        output.screenshot(path=SCREENSHOTS / name, animations="disabled")
        return SCREENSHOTS / name
