"""The instructor's workspace: an nbgrader course folder whose source is the course's solutions/.

    WORKSPACE/
      nbgrader_config.py   loads the course's nbgrader_config.py, then points nbgrader here
      gradebook.db         nbgrader's gradebook (SQLite), unless a database URL is given
      release/ submitted/ autograded/ feedback/   nbgrader's own folders
      unmatched/           files `collect` could not match to a student or notebook (kept, never dropped)
      reports/             grades CSV, report PNG and text, autograde failure tables
      lms.json             what the LMS knows of each student and assignment (`roster`, `collect`; grader.lms)
      formgrader/          Jupyter config for `course-grader formgrader` (Formgrader enabled)

Due dates live where nbgrader keeps them, in the gradebook (``Assignment.duedate``, naive UTC); they are
set by ``release --due`` or from ``c.CourseGrader.due_dates`` in the workspace's nbgrader_config.py.
Dates without an offset are read in ``c.CourseGrader.timezone`` (default: this machine's zone).
"""

import os
import subprocess
import sys
import warnings
from datetime import timezone
from pathlib import Path

from dateutil import parser as date_parser
from dateutil import tz
from nbgrader.api import Gradebook, MissingEntry
from sqlalchemy.exc import SAWarning
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

# nbgrader's Gradebook.add_submission builds a submission's notebooks and grades before it adds the
# submission to the session; SQLAlchemy 2 warns about each of them during autoflush, then the cascade
# adds them all at `db.add(submission)`, as nbgrader intends. The warning says nothing an instructor can
# act on and buried every run's output under three multi-line blocks: silence exactly that one, for
# this process and for the nbgrader converters it runs in-process (autograde's scoring step).
warnings.filterwarnings("ignore", category=SAWarning,
                        message=r"Object of type <(SubmittedAssignment|SubmittedNotebook|Grade|Comment)> not in session")

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# nbgrader's Gradebook runs `alembic` (its schema migrations) from PATH; when the grader is
# started as .venv/bin/course-grader without activating the environment, that is not on PATH.
if str(BIN) not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
CONFIG_NAME = "nbgrader_config.py"

CONFIG_TEMPLATE = '''\
# Written by `course-grader init`. The course's settings first, then this workspace's folders.
c = get_config()  # noqa: F821
load_subconfig({course_config!r})  # noqa: F821
c.CourseDirectory.root = {root!r}
c.CourseDirectory.source_directory = {solutions!r}
c.CourseDirectory.release_directory = "release"
c.CourseDirectory.db_url = {db_url!r}

# Due dates (also settable with `course-grader release ASSIGNMENT --due "2026-03-01 23:59"`); a date
# without an offset is read in c.CourseGrader.timezone (an IANA name; default: this machine's zone).
# c.CourseGrader.timezone = "Europe/Berlin"
# c.CourseGrader.due_dates = {{"quiz": "2026-03-01 23:59"}}
# Late submissions: nbgrader's late-submission plugin. 'none' (default) records lateness only;
# 'zero' scores a late submission 0. An on-time submission is never penalised.
# c.LateSubmissionPlugin.penalty_method = "zero"
'''


class WorkspaceError(Exception):
    """A problem with the workspace that the instructor can fix; the message says how."""


class Workspace:
    def __init__(self, root):
        self.root = Path(root).resolve()
        if not (self.root / CONFIG_NAME).is_file():
            raise WorkspaceError(f"{self.root} is not a grading workspace (no {CONFIG_NAME}); "
                                 f"create one with `course-grader init {root}`.")
        self.config = self._load_config()
        self.db_url = self.config.CourseDirectory.db_url
        self.solutions = Path(self.config.CourseDirectory.source_directory)

    @classmethod
    def create(cls, root, solutions=REPO / "solutions", db_url=None):
        root = Path(root).resolve()
        solutions = Path(solutions).resolve()
        if not solutions.is_dir():
            raise WorkspaceError(f"no solutions folder at {solutions}")
        if (root / CONFIG_NAME).exists():
            raise WorkspaceError(f"{root} already is a workspace; nothing was changed.")
        root.mkdir(parents=True, exist_ok=True)
        for folder in ("submitted", "unmatched", "reports"):
            (root / folder).mkdir(exist_ok=True)
        db_url = db_url or f"sqlite:///{root / 'gradebook.db'}"
        (root / CONFIG_NAME).write_text(CONFIG_TEMPLATE.format(
            course_config=str(REPO / CONFIG_NAME), root=str(root), solutions=str(solutions), db_url=db_url))
        try:
            workspace = cls(root)
            with workspace.gradebook():  # creates the tables (nbgrader's schema, via its own API)
                pass
        except BaseException:
            # A database that cannot be reached must not leave a half-made workspace behind:
            # `init` would then refuse to run again once the URL is fixed.
            (root / CONFIG_NAME).unlink(missing_ok=True)
            raise
        return workspace

    def _load_config(self):
        loader = PyFileConfigLoader(CONFIG_NAME, path=str(self.root))
        config = loader.load_config()
        merged = Config()
        merged.merge(config)
        return merged

    def gradebook(self):
        return Gradebook(self.db_url, self.config.CourseDirectory.course_id)

    # ------------------------------------------------------------------ dates

    @property
    def timezone(self):
        """The zone of dates written without an offset (due dates, Moodle's worksheet times)."""
        name = self.config.CourseGrader.get("timezone")
        if not name:
            return tz.tzlocal()
        zone = tz.gettz(name)
        if zone is None:
            raise WorkspaceError(f"c.CourseGrader.timezone = {name!r} is not a time zone name (e.g. 'Europe/Berlin')")
        return zone

    def parse_date(self, text):
        """An aware datetime from text such as '2026-03-01 23:59', '2026-03-01T23:59:00Z' or with an offset."""
        try:
            value = date_parser.parse(str(text))
        except (ValueError, OverflowError):
            raise WorkspaceError(f"cannot read {text!r} as a date and time (e.g. '2026-03-01 23:59')") from None
        return value if value.tzinfo else value.replace(tzinfo=self.timezone)

    def set_due_date(self, assignment, when):
        """Record an aware datetime as the assignment's due date in nbgrader's gradebook."""
        with self.gradebook() as gradebook:
            try:
                gradebook.find_assignment(assignment)
            except MissingEntry:
                raise WorkspaceError(f"assignment '{assignment}' is not in the gradebook: "
                                     f"run `course-grader release {assignment}` first.") from None
            gradebook.update_or_create_assignment(assignment, duedate=as_naive_utc(when))

    def configured_due_dates(self):
        """{assignment: aware datetime} from c.CourseGrader.due_dates."""
        return {name: self.parse_date(text) for name, text in dict(self.config.CourseGrader.get("due_dates") or {}).items()}

    def due_date(self, assignment):
        """The assignment's due date as an aware UTC datetime, or None."""
        with self.gradebook() as gradebook:
            try:
                due = gradebook.find_assignment(assignment).duedate
            except MissingEntry:
                return None
        return due.replace(tzinfo=timezone.utc) if due else None

    def assignments(self):
        return sorted(p.name for p in self.solutions.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))

    def nbgrader(self, *args):
        """Run one of nbgrader's own apps on this workspace; returns the CompletedProcess."""
        return subprocess.run([str(BIN / "nbgrader"), *args], cwd=self.root, capture_output=True, text=True)

    def folder(self, step, student=".", assignment=""):
        return self.root / step / student / assignment


def as_naive_utc(when):
    """nbgrader stores times as naive UTC."""
    return when.astimezone(timezone.utc).replace(tzinfo=None)


def timestamp_text(when):
    """What nbgrader's timestamp.txt holds (``CourseDirectory.get_existing_timestamp`` reads it back)."""
    return when.astimezone(timezone.utc).isoformat(sep=" ")
