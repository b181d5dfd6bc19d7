"""Write the generated parts of the course: lesson navigation, time estimates and the cheat-sheet.

    .venv/bin/python tools/update_course_pages.py            # rewrite them in course/
    .venv/bin/python tools/update_course_pages.py --check    # exit 1 if anything would change

Every lesson (``course/NN-*.ipynb``) gets three generated Markdown cells, each found by the marker
comment on its first line and rewritten in place (or inserted where it belongs if missing):

* ``top`` (after the title cell): lesson N of M, the time estimate, previous/next, the cheat-sheet;
* ``main-path-end`` (just before ``## Going further``, if the lesson has such a section): where the
  main path ends, the link onwards, a note for Binder;
* ``end`` (the last cell): the link onwards and the note for Binder. The last lesson leads to the
  exercises.

The time estimate is reading time, computed from the lesson's own cells so that it stays true when
the text changes: Markdown words at ``WORDS_PER_MINUTE`` (a study pace for technical text) and every
non-empty line of code at ``SECONDS_PER_CODE_LINE`` (read it, run it, glance at its output). Time
spent with the widgets comes on top, and the page says so. The main path is everything before
``## Going further``. Not counted: HTML comments (the claim tags of tests/claims.toml), which are not shown, and
folded answers (``<details>``), which a student opens only to check an answer, like the optional sections.

``course/cheat-sheet.md`` is written from ``coursekit.cheat_sheet``. Running the script again
changes nothing; tests/test_course_pages.py fails when a committed file differs from what it writes.
"""

import argparse
import math
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "course"
EXERCISES_README = "../exercises/README.md"

WORDS_PER_MINUTE = 180
SECONDS_PER_CODE_LINE = 4
GOING_FURTHER = "## Going further"
MARKER = "<!-- course-navigation: {} (written by tools/update_course_pages.py; edit the tool, not this cell) -->"
BINDER_NOTE = ("*On Binder (1–2 GB of memory): before you open the next notebook, shut this lesson's kernel down "
               "with* Kernel → Shut Down Kernel.")


def lessons(course=COURSE):
    return sorted(course.glob("[0-9][0-9]-*.ipynb"))


def short_title(notebook):
    """'Lesson 2 — Optimizers' from the H1 '# Lesson 2 — Optimizers: from gradient descent to Adam'."""
    heading = notebook.cells[0].source.splitlines()[0]
    if not heading.startswith("# "):
        raise ValueError("a lesson's first cell must start with its '# ' title")
    return heading[2:].split(":")[0].strip()


def marker_of(cell):
    match = re.match(r"<!-- course-navigation: ([\w-]+) ", cell.source) if cell.cell_type == "markdown" else None
    return match.group(1) if match else None


def going_further_index(cells):
    return next((i for i, cell in enumerate(cells)
                 if cell.cell_type == "markdown" and cell.source.startswith(GOING_FURTHER)), None)


def reading_minutes(cells):
    """The time estimate of a list of cells, in minutes (not rounded)."""
    words = code_lines = 0
    for cell in cells:
        if marker_of(cell):
            continue
        if cell.cell_type == "markdown":
            shown = re.sub(r"<!--.*?-->|<details>.*?</details>", " ", cell.source, flags=re.S)
            words += len(re.findall(r"\S+", shown))
        elif cell.cell_type == "code":
            code_lines += sum(1 for line in cell.source.splitlines() if line.strip())
    return words / WORDS_PER_MINUTE + code_lines * SECONDS_PER_CODE_LINE / 60


def estimates(notebook):
    """(main path minutes, going-further minutes or 0), to the nearest minute (at least 1)."""
    cells = notebook.cells
    split = going_further_index(cells)
    main = cells if split is None else cells[:split]
    further = [] if split is None else cells[split:]
    def nearest(minutes):
        return max(1, math.floor(minutes + 0.5))

    return nearest(reading_minutes(main)), nearest(reading_minutes(further)) if further else 0


def navigation_cells(paths, course=COURSE):
    """{path: {marker: source}} for every lesson."""
    notebooks = {path: nbformat.read(path, as_version=4) for path in paths}
    titles = {path: short_title(nb) for path, nb in notebooks.items()}
    cells = {}
    for index, path in enumerate(paths):
        main, further = estimates(notebooks[path])
        previous = paths[index - 1] if index > 0 else None
        following = paths[index + 1] if index + 1 < len(paths) else None
        time = f"about {main} min of reading" + (f" (+ {further} min of *Going further*, optional)" if further else "")
        if "**Try it" in "".join(cell.source for cell in notebooks[path].cells):
            time += ", plus your time with the widgets"
        parts = [f"Lesson {index + 1} of {len(paths)}", time]
        if previous:
            parts.append(f"previous: [{titles[previous]}]({previous.name})")
        if following:
            parts.append(f"next: [{titles[following]}]({following.name})")
        else:
            parts.append(f"next: [the exercises]({EXERCISES_README})")
        parts.append("[cheat-sheet](cheat-sheet.md)")
        onwards = (f"**Next: [{titles[following]}]({following.name})**" if following else
                   f"**Next: [the exercises]({EXERCISES_README})** — the quiz and the compile-and-train notebooks, "
                   "with checks that tell you whether your answer works")
        back = f" · previous: [{titles[previous]}]({previous.name})" if previous else ""
        cells[path] = {
            "top": "*" + " · ".join(parts) + "*",
            "main-path-end": (f"**This is the end of the lesson's main path.** The *Going further* sections below "
                              f"are optional.\n\n{onwards}{back} · [cheat-sheet](cheat-sheet.md)\n\n{BINDER_NOTE}"),
            "end": f"{onwards}{back} · [cheat-sheet](cheat-sheet.md)\n\n{BINDER_NOTE}",
        }
        if further == 0:
            del cells[path]["main-path-end"]
    return cells


def place(notebook, marker, source):
    """Rewrite the cell with ``marker``, or insert it where it belongs."""
    text = MARKER.format(marker) + "\n" + source
    cells = notebook.cells
    existing = [i for i, cell in enumerate(cells) if marker_of(cell) == marker]
    if existing:
        cells[existing[0]].source = text
        return
    cell = nbformat.v4.new_markdown_cell(text)
    cell.id = f"navigation-{marker}"
    if marker == "top":
        cells.insert(1, cell)
    elif marker == "main-path-end":
        cells.insert(going_further_index(cells), cell)
    else:
        cells.append(cell)


def update_lessons(course=COURSE, write=True):
    """Apply the navigation cells; return the lessons whose file would change."""
    changed = []
    paths = lessons(course)
    for path, wanted in navigation_cells(paths, course).items():
        notebook = nbformat.read(path, as_version=4)
        stale = [i for i, cell in enumerate(notebook.cells) if marker_of(cell) and marker_of(cell) not in wanted]
        for index in reversed(stale):
            del notebook.cells[index]
        for marker, source in wanted.items():
            place(notebook, marker, source)
        text = nbformat.writes(notebook) + "\n"
        if text != path.read_text():
            changed.append(path)
            if write:
                path.write_text(text)
    return changed


def update_cheat_sheet(course=COURSE, write=True):
    from coursekit import cheat_sheet

    listing = []
    for path in lessons(course):
        listing.append((path.name, short_title(nbformat.read(path, as_version=4))))
    page = course / cheat_sheet.PAGE
    text = cheat_sheet.markdown(listing)
    if page.exists() and page.read_text() == text:
        return []
    if write:
        page.write_text(text)
    return [page]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a page is out of date")
    parser.add_argument("--course", type=Path, default=COURSE)
    args = parser.parse_args(argv)
    changed = update_lessons(args.course, write=not args.check) + update_cheat_sheet(args.course, write=not args.check)
    for path in changed:
        print(f"{'out of date' if args.check else 'updated'}: {path.relative_to(args.course.parent)}")
    if args.check and changed:
        return 1
    if not changed:
        print("everything up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
