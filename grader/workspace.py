"""The instructor's workspace: an nbgrader course folder whose source is the course's solutions/.

    WORKSPACE/
      nbgrader_config.py   loads the course's nbgrader_config.py, then points nbgrader here
      gradebook.db         nbgrader's gradebook (SQLite), unless a database URL is given
      release/ submitted/ autograded/ feedback/   nbgrader's own folders
      unmatched/           files `collect` could not match to a student or notebook (kept, never dropped)
      reports/             grades CSV, report PNG and text, autograde failure tables
"""

import os
import subprocess
import sys
from pathlib import Path

from nbgrader.api import Gradebook
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

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

    def assignments(self):
        return sorted(p.name for p in self.solutions.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))

    def nbgrader(self, *args):
        """Run one of nbgrader's own apps on this workspace; returns the CompletedProcess."""
        return subprocess.run([str(BIN / "nbgrader"), *args], cwd=self.root, capture_output=True, text=True)

    def folder(self, step, student=".", assignment=""):
        return self.root / step / student / assignment
