"""nbgrader preprocessors the course adds to nbgrader's own (configured in nbgrader_config.py).

* ``SandboxedExecute`` replaces nbgrader's ``Execute`` in its ``Autograde`` converter, so that
  every way of autograding in a course folder — Formgrader's Autograde button, ``nbgrader
  autograde``, ``course-grader autograde`` — runs the notebook the same way: rebuilt from the
  release, in a sandboxed worker, its tests judged outside the student's kernel.
* ``RememberHandGrades`` and ``KeepHandGrades`` wrap nbgrader's ``SaveAutoGrades``, which puts
  every hand-graded answer back in the grading queue when a notebook is autograded again: an
  answer that did not change keeps its hand grade and its "graded" state.
* ``ClearHiddenTestsAndTracebacks``: feedback without hidden tests, nor tracebacks that quote them.
"""

import hashlib
import json
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import ClearHiddenTests, NbGraderPreprocessor
from nbgrader.utils import is_grade, is_solution
from traitlets import Bool, Float, Integer

from grader.limits import Limits

_DEFAULTS = Limits()


def _grade_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


class ClearHiddenTestsAndTracebacks(ClearHiddenTests):
    """nbgrader's ClearHiddenTests for student feedback, plus the tracebacks of hidden tests.

    Stock ClearHiddenTests removes the hidden region from a cell's source, but when a hidden test
    fails with an ordinary exception (a NameError when the student deleted a function, say),
    IPython's traceback in the cell's output quotes the hidden lines, answer key included. Such
    an error is reduced to its one-line message, which is what a student needs to know.
    """

    def preprocess_cell(self, cell, resources, cell_index):
        had_hidden_tests = cell.cell_type == "code" and self.begin_test_delimeter in cell.source
        cell, resources = super().preprocess_cell(cell, resources, cell_index)
        if had_hidden_tests:
            for output in cell.get("outputs", []):
                if output.output_type == "error":
                    output.traceback = [f"\x1b[1;31m✗ {output.ename}:\x1b[0m {output.evalue}"]
        return cell, resources


class SandboxedExecute(NbGraderPreprocessor):
    """Execute and judge a submitted notebook as ``course-grader autograde`` does, one at a time."""

    cell_seconds = Float(_DEFAULTS.cell_seconds, help="seconds one cell (or one test) may run").tag(config=True)
    wall_seconds = Float(_DEFAULTS.wall_seconds, help="seconds the whole notebook may run").tag(config=True)
    memory_mib = Integer(_DEFAULTS.memory_mib, help="MiB for all processes of one notebook").tag(config=True)
    max_processes = Integer(_DEFAULTS.max_processes, help="processes of one notebook").tag(config=True)
    use_cgroups = Bool(True, help="cap each notebook with cgroups (refuse to grade where there are none)"
                       ).tag(config=True)

    def preprocess(self, nb, resources):
        from grader import execute, forkserver, rebuild, score
        from grader.submissions import Job

        info = resources["nbgrader"]
        coursedir = CourseDirectory(config=self.config)
        release = Path(coursedir.format_path(coursedir.release_directory, ".", info["assignment"])) \
            / f"{info['notebook']}.ipynb"
        rebuilt, notes = rebuild.rebuild_from_release(nb, nbformat.read(release, as_version=4))
        prepared = rebuild.sanitize(self.config, info["db_url"], info["student"], info["assignment"],
                                    info["notebook"], rebuilt)
        limits = Limits(wall_seconds=self.wall_seconds, cell_seconds=self.cell_seconds, memory_mib=self.memory_mib,
                        max_processes=self.max_processes)
        settings = {"cell_seconds": limits.cell_seconds,
                    "ignore_pattern": self.config.IgnorePattern.get("pattern", ""),
                    "max_lines": self.config.LimitOutput.get("max_lines", 1000),
                    "max_traceback": self.config.LimitOutput.get("max_traceback", 100)}
        forkserver.use_cgroups = self.use_cgroups
        if self.use_cgroups and forkserver.cgroup_support().kind is None:
            raise RuntimeError(f"course-grader cannot cap notebooks here ({forkserver.cgroup_support().reason}); "
                               "set c.SandboxedExecute.use_cgroups = False to grade with per-process limits only")
        job = Job(info["student"], info["assignment"], info["notebook"], path=None, prepared=prepared, notes=notes)
        score.accept(job, execute.run_notebook(nbformat.writes(prepared), settings, limits), settings)
        for note in job.notes:
            self.log.warning("%s/%s: %s", info["student"], job.file, note.reason)
        root = Path(coursedir.root)
        score.write_verdicts_to(root / "verdicts", info["assignment"], info["student"], [job])
        if job.failure:
            self.log.error("%s/%s: %s", info["student"], job.file, job.failure.reason)
            return score.failed_notebook(prepared, job.failure), resources
        return job.executed, resources


def _answers_file(config, info):
    """Where the answers' fingerprints of the last autograde are kept (beside the resume state; not in
    ``autograded/``, which nbgrader overwrites before these preprocessors run, and copies into feedback)."""
    coursedir = CourseDirectory(config=config)
    return Path(coursedir.root) / "autograde-state" / info["assignment"] / info["student"] / f"{info['notebook']}.answers.json"


def _fingerprints(nb):
    return {_grade_id(cell): hashlib.sha256(cell.source.encode()).hexdigest() for cell in nb.cells
            if is_grade(cell) or is_solution(cell)}


class RememberHandGrades(NbGraderPreprocessor):
    """Before SaveAutoGrades: which answers have a hand grade, and how they read when last autograded."""

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        graded = set()
        with Gradebook(info["db_url"]) as gradebook:
            try:
                submitted = gradebook.find_submission_notebook(info["notebook"], info["assignment"], info["student"])
                graded = {g.name for g in submitted.grades if g.manual_score is not None and not g.needs_manual_grade}
            except MissingEntry:
                pass
        try:
            previous = json.loads(_answers_file(self.config, info).read_text())
        except (OSError, ValueError):
            previous = {}
        resources["hand_graded"] = {name: previous[name] for name in graded if name in previous}
        return nb, resources


class KeepHandGrades(NbGraderPreprocessor):
    """After SaveAutoGrades: a hand-graded answer whose source did not change stays graded. Records
    the answers' fingerprints for the next regrade."""

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        now = _fingerprints(nb)
        remembered = resources.get("hand_graded") or {}
        if remembered:
            with Gradebook(info["db_url"]) as gradebook:
                submitted = gradebook.find_submission_notebook(info["notebook"], info["assignment"], info["student"])
                for grade in submitted.grades:
                    if grade.name in remembered and remembered[grade.name] == now.get(grade.name):
                        grade.needs_manual_grade = False
                gradebook.db.commit()
        path = _answers_file(self.config, info)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(now))
        temporary.replace(path)
        return nb, resources
