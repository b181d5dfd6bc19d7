"""nbgrader configuration of the course (read by nbgrader's apps and JupyterLab's nbgrader panels
when they run from this folder).

nbgrader's folders map onto the course's layout: the instructor's source notebooks are
``solutions/``, the student release is ``exercises/``.
"""

from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import AssignLatePenalties, CheckCellMetadata, GetGrades, SaveAutoGrades

from grader.preprocessors import ClearHiddenTestsAndTracebacks, KeepHandGrades, RememberHandGrades, SandboxedExecute

c = get_config()  # noqa: F821  (provided by traitlets when nbgrader loads this file)

c.CourseDirectory.course_id = "keras-compile-course"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
# Only notebooks are part of an assignment; READMEs and checkpoints stay out of the release.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback"]

# A test cell scores 0 when it writes to stderr. TensorFlow and absl write log lines there
# (the course kernel silences most of them; see coursekit/install.py): drop those outputs
# before grading so that they can never change a score.
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = (
    r"(^|\n)(WARNING:tensorflow:|WARNING: All log messages before absl::InitializeLog"
    r"|[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w./-]+:\d+\]"
    r"|\S*oneDNN custom operations are on"
    r"|To enable the following instructions: .* rebuild TensorFlow)"  # cpu_feature_guard's second line
)

# The slowest check trains a small model for a few seconds; 60 s leaves room on a busy machine.
c.Execute.timeout = 60

# Every autograde in a course folder — Formgrader's Autograde button and `nbgrader autograde` as well
# as `course-grader autograde` — runs a notebook the same way: rebuilt from the release, in a
# sandboxed worker with per-notebook caps, its tests judged outside the student's kernel
# (grader.preprocessors.SandboxedExecute replaces nbgrader's Execute; IgnorePattern and LimitOutput
# are applied inside it). Hand grades of answers that did not change survive a regrade.
c.Autograde.autograde_preprocessors = [SandboxedExecute, ClearMetadataPreprocessor, RememberHandGrades,
                                       SaveAutoGrades, KeepHandGrades, AssignLatePenalties, CheckCellMetadata]

# Student feedback shows the graded notebook without the hidden tests and without tracebacks that
# quote them (stock nbgrader shows both).
c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTestsAndTracebacks, CSSHTMLHeaderPreprocessor]
