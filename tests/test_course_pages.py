"""The learner's path: generated navigation and time estimates, links that lead somewhere, no dead end.

tools/update_course_pages.py writes the lessons' navigation cells and course/cheat-sheet.md; these
tests fail when a committed page differs from what it writes, so that "previous/next", the time
estimates and the cheat-sheet cannot drift from the lessons.
"""

import re
import shutil
import sys
from pathlib import Path

import nbformat
import pytest

from support.notebooks import ROOT, notebooks_under

sys.path.insert(0, str(ROOT / "tools"))
import update_course_pages as pages  # noqa: E402

LESSONS = pages.lessons()
MAIN_PATH_MINUTES = 20
# What a student reads: the lessons, the cheat-sheet, the exercises and their guide, the README.
STUDENT_PAGES = [*LESSONS, ROOT / "course" / "cheat-sheet.md", ROOT / "exercises" / "README.md", ROOT / "README.md",
                 *notebooks_under("exercises")]


def markdown_of(path):
    if path.suffix == ".ipynb":
        return "\n".join(cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "markdown")
    return path.read_text()


@pytest.mark.claim("readme.reading-times")
def test_committed_pages_are_what_the_tool_writes():
    assert pages.update_lessons(write=False) == [], "run .venv/bin/python tools/update_course_pages.py"
    assert pages.update_cheat_sheet(write=False) == [], "run .venv/bin/python tools/update_course_pages.py"


def test_the_tool_is_idempotent_and_finds_its_cells_by_their_marker(tmp_path):
    course = tmp_path / "course"
    shutil.copytree(ROOT / "course", course, ignore=shutil.ignore_patterns("coursekit"))
    lesson = course / LESSONS[1].name
    notebook = nbformat.read(lesson, as_version=4)
    top = next(cell for cell in notebook.cells if pages.marker_of(cell) == "top")
    top.source = top.source.replace("Lesson 2 of", "Lesson 9 of")  # an edit by hand
    notebook.cells = [cell for cell in notebook.cells if pages.marker_of(cell) != "end"]  # a cell deleted
    nbformat.write(notebook, lesson)
    assert pages.update_lessons(course) == [lesson]
    assert pages.update_lessons(course) == [], "a second run changes nothing"
    assert lesson.read_text() == LESSONS[1].read_text()


@pytest.mark.claim("readme.navigation")
@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_each_lesson_opens_with_its_place_its_reading_time_and_its_neighbours(path):
    notebook = nbformat.read(path, as_version=4)
    index = LESSONS.index(path)
    assert notebook.cells[0].source.startswith(f"# Lesson {index + 1} — ")
    top = notebook.cells[1]
    assert pages.marker_of(top) == "top"
    main, further = pages.estimates(notebook)
    assert f"Lesson {index + 1} of {len(LESSONS)}" in top.source and f"about {main} min of reading" in top.source
    if index > 0:
        assert f"previous: [{pages.short_title(nbformat.read(LESSONS[index - 1], as_version=4))}]" in top.source
    assert "next: [" in top.source and "(cheat-sheet.md)" in top.source


@pytest.mark.claim("readme.reading-times")
@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_each_lesson_has_a_main_path_of_at_most_20_minutes(path):
    notebook = nbformat.read(path, as_version=4)
    split = pages.going_further_index(notebook.cells)
    main = notebook.cells if split is None else notebook.cells[:split]
    assert pages.reading_minutes(main) <= MAIN_PATH_MINUTES


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_going_further_comes_after_the_main_path_and_the_lesson_ends_with_the_way_on(path):
    notebook = nbformat.read(path, as_version=4)
    sources = [cell.source for cell in notebook.cells]
    check = next(i for i, source in enumerate(sources) if "## Check your understanding" in source)
    split = pages.going_further_index(notebook.cells)
    if split is not None:
        assert check < split and pages.marker_of(notebook.cells[split - 1]) == "main-path-end"
    end = notebook.cells[-1]
    assert pages.marker_of(end) == "end" and "**Next:" in end.source
    assert "Shut Down Kernel" in end.source, "a note for Binder users: one lesson kernel at a time"


@pytest.mark.claim("readme.navigation")
def test_the_last_lesson_leads_to_the_exercises():
    notebook = nbformat.read(LESSONS[-1], as_version=4)
    for cell in (notebook.cells[1], notebook.cells[-1]):
        assert "(../exercises/README.md)" in cell.source
    assert "Back to the start" not in markdown_of(LESSONS[-1])


LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.claim("readme.navigation", "readme.screenshots")
@pytest.mark.parametrize("path", STUDENT_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_a_student_can_click_leads_to_a_file(path):
    for target in LINK.findall(markdown_of(path)):
        if re.match(r"[a-z]+:", target):
            continue  # http(s): and the like
        assert (path.parent / target).resolve().exists(), f"{path.name} links to {target}, which does not exist"


@pytest.mark.claim("readme.exercises-guide")
def test_every_exercise_notebook_is_linked_from_the_exercises_guide():
    guide = markdown_of(ROOT / "exercises" / "README.md")
    linked = {(ROOT / "exercises" / target).resolve() for target in LINK.findall(guide)}
    for notebook in notebooks_under("exercises"):
        assert notebook.resolve() in linked, notebook
    for notebook in notebooks_under("solutions"):
        assert notebook.resolve() in linked, f"the guide says where the answers are: {notebook}"


@pytest.mark.claim("readme.exercises-guide")
def test_the_exercises_guide_describes_the_notebooks_as_they_are():
    """'run its cells from the top: the first code cell loads the checks', and each says what it is worth."""
    for path in notebooks_under("exercises"):
        notebook = nbformat.read(path, as_version=4)
        first_code = next(cell for cell in notebook.cells if cell.cell_type == "code")
        assert "from coursekit import grading as check" in first_code.source, path
        text = markdown_of(path)
        assert re.search(r"\d+ points?", text), f"{path.name} says how many points its parts are worth"


@pytest.mark.claim("readme.navigation")
@pytest.mark.parametrize("path", STUDENT_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_a_student_reads_mentions_work_tracking(path):
    text = path.read_text()
    assert not re.search(r"\b(issue|ticket|PR)\s*#?\d+", text, re.IGNORECASE), path


@pytest.mark.claim("readme.navigation")
def test_every_lesson_and_the_readme_link_the_cheat_sheet():
    for path in LESSONS:
        assert "(cheat-sheet.md)" in markdown_of(path), path
    assert "(course/cheat-sheet.md)" in (ROOT / "README.md").read_text()
    assert Path(ROOT / "course" / "cheat-sheet.md").exists()


@pytest.mark.claim("readme.reading-times")
def test_the_readme_states_the_reading_times_and_how_they_are_estimated():
    text = " ".join((ROOT / "README.md").read_text().split())
    low, high = map(int, re.search(r"main path is about (\d+) to (\d+) minutes of reading", text).groups())
    estimates = [pages.estimates(nbformat.read(path, as_version=4))[0] for path in LESSONS]
    assert (low, high) == (min(estimates), max(estimates))
    words, lines = map(int, re.search(r"at (\d+) words and (\d+) lines of code a minute", text).groups())
    assert (words, lines) == (pages.WORDS_PER_MINUTE, 60 // pages.SECONDS_PER_CODE_LINE)


ITALIC = re.compile(r"(?<![*\w])\*(?!\*)([^*\n]+(?:\n[^*\n]+)*?)\*(?![*\w])")


@pytest.mark.claim("course.chapter-quotes", "l2.chapter-quote")
def test_every_quote_of_the_chapter_is_word_for_word():
    """A lesson quotes the chapter in italics, in a paragraph that names it; every such quote is the chapter's text."""
    from support.chapter import TEXT, words

    quotes = []
    for path in LESSONS:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "markdown" or pages.marker_of(cell):
                continue
            for paragraph in re.split(r"\n\s*\n", re.sub(r"<!--.*?-->", "", cell.source, flags=re.S)):
                if "chapter" in paragraph:
                    quotes += [(path.name, quote) for quote in ITALIC.findall(paragraph) if len(quote.split()) >= 6]
    assert len(quotes) >= 4, quotes
    chapter = words(TEXT)
    assert [(name, quote) for name, quote in quotes if words(quote) not in chapter] == []


@pytest.mark.claim("readme.binder")
def test_the_binder_badge_opens_lesson_1():
    badge = re.search(r"\(https://mybinder\.org/v2/gh/[^)]*urlpath=lab/tree/([^)&]+)\)", (ROOT / "README.md").read_text())
    assert badge and badge.group(1) == "course/01-compiling-a-model.ipynb" and (ROOT / badge.group(1)).exists()
    assert (ROOT / "environment.yml").is_file() and (ROOT / "postBuild").is_file()


@pytest.mark.claim("quiz.chapter-questions")
def test_the_chapters_questions_are_the_quizs_graded_questions():
    """Lessons 1, 3 and 4 ask the chapter's two questions and say that the quiz grades them: it asks both, scores
    the choices automatically and the written explanations by hand."""
    from support.chapter import TEXT, words

    chapter = words(TEXT)
    asked = {path.name: re.findall(r"^\d\. (In the example, why is the \*\*sigmoid\*\*.*|How do the \*\*roles.*)$",
                                   markdown_of(path), re.M) for path in LESSONS}
    assert [len(asked[path.name]) for path in LESSONS] == [2, 0, 1, 1]
    for question in sum(asked.values(), []):  # the chapter's words, but for "provided" and "in the context of ..."
        core = words(question).removeprefix("in the example ").removesuffix(" in compiling and training a model")
        assert core in chapter, question
    quiz = nbformat.read(ROOT / "solutions" / "quiz" / "quiz.ipynb", as_version=4)
    text = markdown_of(ROOT / "solutions" / "quiz" / "quiz.ipynb")
    assert "Why is the sigmoid activation used in the output layer?" in text
    assert "roles of the loss function and the metrics" in text
    graded = {cell.metadata.nbgrader["grade_id"]: cell for cell in quiz.cells if cell.metadata.get("nbgrader", {}).get("grade")}
    assert {"q1_points", "q2_points_ab", "q2_points_cd", "q2_points_ef"} <= set(graded)
    assert all(graded[grade_id].cell_type == "markdown" and graded[grade_id].metadata.nbgrader["solution"]
               for grade_id in ("q1_explain", "q2_explain")), "the explanations are graded by hand"


@pytest.mark.claim("readme.exercise-table")
def test_the_exercises_are_the_ones_readme_lists():
    """README's table: compile models for four tasks; binary cross-entropy and one Adam step in NumPy; tune Adam to
    a target accuracy in 20 epochs."""
    def grade_ids(name):
        notebook = nbformat.read(ROOT / "exercises" / "compile-and-train" / f"{name}.ipynb", as_version=4)
        return {cell.metadata.nbgrader["grade_id"] for cell in notebook.cells
                if cell.metadata.get("nbgrader", {}).get("grade")}

    tasks = {grade_id.split("_")[0] for grade_id in grade_ids("compile-for-the-task")}
    assert tasks == {"binary", "onehot", "integer", "regression"}
    assert {grade_id.split("_")[0] for grade_id in grade_ids("by-hand")} == {"bce", "adam"}
    assert "**20 epochs**" in markdown_of(ROOT / "exercises" / "compile-and-train" / "tune-adam.ipynb")
